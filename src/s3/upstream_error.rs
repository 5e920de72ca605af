//! Upstream error documents as clients see them: the code and the shape
//! stay, but nothing in the message may tell a client who the gateway is
//! upstream. Garage names its access key (`Access key GK… is not allowed
//! …`), AWS names IAM users, roles and account ids (`User:
//! arn:aws:iam::123456789012:user/x is not authorized …`).

/// The largest error document rewritten; larger ones pass unchanged.
pub const MAX_ERROR_BODY: usize = 64 * 1024;

/// What stands in for a redacted word.
const REDACTED: &str = "[upstream identity]";

/// Whether a word names an upstream identity: an ARN, a 12-digit account
/// id, an AWS access key id, a Garage key id, or the upstream's own key.
fn is_identity(word: &str, own_key: Option<&str>) -> bool {
    let upper_alnum = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    word.starts_with("arn:")
        || (word.len() == 12 && word.bytes().all(|b| b.is_ascii_digit()))
        || (word.len() == 20
            && (word.starts_with("AKIA") || word.starts_with("ASIA"))
            && upper_alnum(word))
        || (word.len() == 26
            && word.starts_with("GK")
            && word[2..].bytes().all(|b| b.is_ascii_hexdigit()))
        || own_key.is_some_and(|k| !k.is_empty() && word.contains(k))
}

/// Characters that make up the words checked above.
fn in_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '_' | '-' | '+' | '=' | '.' | '@' | '*')
}

/// The text with every identity word replaced.
pub fn redact(text: &str, own_key: Option<&str>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        // A trailing period ends the sentence, not the word.
        let trimmed = word.trim_end_matches('.');
        if is_identity(trimmed, own_key) {
            out.push_str(REDACTED);
            out.push_str(&word[trimmed.len()..]);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if in_word(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// An upstream error document, rewritten: the `<Message>` (and any other
/// text) redacted. Returns the new body and the S3 error code, if any.
pub fn rewrite(body: &[u8], own_key: Option<&str>) -> (Vec<u8>, Option<String>) {
    let code = super::xml::first_text(body, "Code");
    // Bytes that are not UTF-8 cannot hide a name from the redaction.
    let text = String::from_utf8_lossy(body);
    (redact(&text, own_key).into_bytes(), code)
}

/// The document sent instead of an upstream error too long to redact:
/// its code, without the message.
pub fn withheld(code: Option<&str>, request_id: &str) -> Vec<u8> {
    let code = code
        .filter(|c| c.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or("InternalError");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>The upstream's error message is not shown (too long to check)</Message><RequestId>{request_id}</RequestId></Error>"
    )
    .into_bytes()
}

/// An upstream error document in the gateway's terms: `<Region>` names the
/// gateway's region (as `x-amz-bucket-region` does), and `<Resource>` and
/// `<BucketName>` name the client's bucket, not its `target` upstream.
pub fn localize(
    body: Vec<u8>,
    region: &str,
    target: Option<&str>,
    visible: Option<&str>,
) -> Vec<u8> {
    let text = match String::from_utf8(body) {
        Ok(t) => t,
        Err(e) => return e.into_bytes(),
    };
    let mut escaped_region = String::new();
    super::error::xml_escape_into(&mut escaped_region, region);
    let mut out = map_elements(&text, "Region", |_| escaped_region.clone());
    if let (Some(t), Some(v)) = (target, visible) {
        if t != v {
            let mut escaped = String::new();
            super::error::xml_escape_into(&mut escaped, v);
            // `/<bucket>/<key>`: the first segment only (a key may
            // repeat the name).
            out = map_elements(&out, "Resource", |inner| {
                match inner.strip_prefix('/').and_then(|r| r.strip_prefix(t)) {
                    Some(key) if key.is_empty() || key.starts_with('/') => {
                        format!("/{escaped}{key}")
                    }
                    _ => inner.to_string(),
                }
            });
            out = map_elements(&out, "BucketName", |inner| {
                if inner == t {
                    escaped.clone()
                } else {
                    inner.to_string()
                }
            });
        }
    }
    out.into_bytes()
}

/// The text with the content of every `<name>…</name>` passed through `f`.
fn map_elements(text: &str, name: &str, f: impl Fn(&str) -> String) -> String {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(&open) {
        let inner_start = i + open.len();
        let Some(len) = rest[inner_start..].find(&close) else {
            break;
        };
        out.push_str(&rest[..inner_start]);
        out.push_str(&f(&rest[inner_start..inner_start + len]));
        out.push_str(&close);
        rest = &rest[inner_start + len + close.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_the_upstream_are_redacted_and_the_rest_stays() {
        let garage = "<Error><Code>AccessDenied</Code><Message>Access key GK31c2f218a2e44f485b94239e is not allowed to create buckets</Message></Error>";
        let (out, code) = rewrite(garage.as_bytes(), None);
        let out = String::from_utf8(out).unwrap();
        assert_eq!(code.as_deref(), Some("AccessDenied"));
        assert!(
            out.contains("Access key [upstream identity] is not allowed to create buckets"),
            "{out}"
        );
        let aws = "User: arn:aws:iam::123456789012:user/gateway is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::b/k because no identity-based policy allows it. Account 123456789012.";
        let out = redact(aws, None);
        assert!(!out.contains("123456789012"), "{out}");
        assert!(!out.contains("user/gateway"), "{out}");
        assert!(
            out.contains("is not authorized to perform: s3:PutObject"),
            "{out}"
        );
        assert!(out.ends_with("Account [upstream identity]."), "{out}");
        assert_eq!(
            redact(
                "The AWS Access Key Id AKIAIOSFODNN7EXAMPLE does not exist",
                None
            ),
            "The AWS Access Key Id [upstream identity] does not exist"
        );
        assert_eq!(
            redact("key minio-admin denied", Some("minio-admin")),
            "key [upstream identity] denied"
        );
        assert_eq!(
            redact("The specified key does not exist.", None),
            "The specified key does not exist."
        );
    }

    #[test]
    fn region_and_bucket_are_the_gateways() {
        let garage = b"<Error><Code>NoSuchKey</Code><Resource>/ops-real/a/ops-real</Resource><BucketName>ops-real</BucketName><Region>garage</Region></Error>".to_vec();
        let out = String::from_utf8(localize(garage, "us-east-1", Some("ops-real"), Some("ops")))
            .unwrap();
        assert_eq!(out, "<Error><Code>NoSuchKey</Code><Resource>/ops/a/ops-real</Resource><BucketName>ops</BucketName><Region>us-east-1</Region></Error>");
        let plain = b"<Error><Resource>/b/k</Resource></Error>".to_vec();
        assert_eq!(localize(plain.clone(), "r", Some("b"), Some("b")), plain);
    }

    #[test]
    fn bytes_that_are_not_utf8_and_long_documents() {
        let (out, _) = rewrite(
            b"<Message>\xff arn:aws:iam::123456789012:user/gw</Message>",
            None,
        );
        assert!(!String::from_utf8_lossy(&out).contains("123456789012"));
        let w = String::from_utf8(withheld(Some("AccessDenied"), "R1")).unwrap();
        assert!(
            w.contains("<Code>AccessDenied</Code>") && w.contains("R1"),
            "{w}"
        );
    }
}
