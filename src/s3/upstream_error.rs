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
