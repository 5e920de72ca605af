//! How S3 answers a successful POST Object: `success_action_redirect` →
//! 303 to that URL with `bucket`, `key` and `etag` added to its query;
//! else `success_action_status` 200 (empty), 201 (a `PostResponse`
//! document) or 204 (the default, also for any other value).

use http::{HeaderName, HeaderValue};

use super::PostUpload;
use crate::s3::uri::{encode_component, encode_path};

/// The status a form asks for (`success_action_status`).
pub fn success_status(field: Option<&str>) -> u16 {
    match field.map(str::trim) {
        Some("200") => 200,
        Some("201") => 201,
        _ => 204,
    }
}

/// The redirect a form asks for, when it is an absolute http(s) URL that
/// can be a header value (S3 ignores others).
pub fn redirect(field: Option<&str>) -> Option<String> {
    let v = field?.trim();
    let lower = v.to_ascii_lowercase();
    let absolute = lower.starts_with("http://") || lower.starts_with("https://");
    (absolute && HeaderValue::from_str(v).is_ok()).then(|| v.to_string())
}

/// The answer to a POST whose PutObject succeeded with this ETag.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: String,
}

pub fn success(up: &PostUpload, etag: Option<&str>) -> Answer {
    let etag = etag.unwrap_or("");
    let location = format!(
        "{}/{}/{}",
        up.origin,
        encode_path(&up.bucket),
        encode_path(&up.key)
    );
    let mut headers = Vec::new();
    let mut push = |n: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            headers.push((HeaderName::from_static(n), v));
        }
    };
    if !etag.is_empty() {
        push("etag", etag);
    }
    if let Some(to) = &up.redirect {
        let sep = if to.contains('?') { '&' } else { '?' };
        let target = format!(
            "{to}{sep}bucket={}&key={}&etag={}",
            encode_component(&up.bucket),
            encode_component(&up.key),
            encode_component(etag)
        );
        push("location", &target);
        return Answer {
            status: 303,
            headers,
            body: String::new(),
        };
    }
    push("location", &location);
    if up.status != 201 {
        return Answer {
            status: up.status,
            headers,
            body: String::new(),
        };
    }
    push("content-type", "application/xml");
    let mut body = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse>");
    for (tag, value) in [
        ("Location", location.as_str()),
        ("Bucket", up.bucket.as_str()),
        ("Key", up.key.as_str()),
        ("ETag", etag),
    ] {
        body.push('<');
        body.push_str(tag);
        body.push('>');
        crate::s3::error::xml_escape_into(&mut body, value);
        body.push_str("</");
        body.push_str(tag);
        body.push('>');
    }
    body.push_str("</PostResponse>");
    Answer {
        status: 201,
        headers,
        body,
    }
}

/// The upstream's answer header to a forwarded POST Object: a PutObject
/// that succeeded (200) becomes the answer the form asked for; its body
/// (empty) is replaced by `replace_body`. Errors pass as they are.
pub fn rewrite(up: &mut PostUpload, resp: &mut pingora::http::ResponseHeader) {
    if resp.status != http::StatusCode::OK {
        return;
    }
    let etag = resp
        .headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let a = success(up, etag.as_deref());
    let _ = resp.set_status(a.status);
    resp.remove_header("content-length");
    resp.remove_header("transfer-encoding");
    for (n, v) in a.headers {
        let _ = resp.insert_header(n, v);
    }
    if a.status != 204 {
        let _ = resp.insert_header("content-length", a.body.len().to_string());
    }
    up.answer_body = Some(bytes::Bytes::from(a.body));
}

/// The body of a rewritten answer: the upstream's pieces are dropped, the
/// answer's document goes out at the end.
pub fn replace_body(up: &mut PostUpload, body: &mut Option<bytes::Bytes>, eos: bool) {
    if up.answer_body.is_none() {
        return;
    }
    *body = None;
    if eos {
        if let Some(b) = up.answer_body.take().filter(|b| !b.is_empty()) {
            *body = Some(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(status: u16, redirect: Option<&str>) -> PostUpload {
        PostUpload {
            bucket: "b".into(),
            key: "dir/a b&.txt".into(),
            status,
            redirect: redirect.map(str::to_string),
            origin: "http://127.0.0.1:9000".into(),
            headers: vec![],
            answer_body: None,
        }
    }

    #[test]
    fn statuses_as_s3_answers_them() {
        assert_eq!(success_status(None), 204);
        assert_eq!(success_status(Some("201")), 201);
        assert_eq!(success_status(Some("200")), 200);
        assert_eq!(success_status(Some("302")), 204);
        let a = success(&upload(201, None), Some("\"abc\""));
        assert_eq!(a.status, 201);
        assert!(a.body.contains("<Key>dir/a b&amp;.txt</Key>"));
        assert!(a.body.contains("<ETag>&quot;abc&quot;</ETag>"));
        assert!(a
            .body
            .contains("<Location>http://127.0.0.1:9000/b/dir/a%20b%26.txt</Location>"));
        let a = success(&upload(204, None), Some("\"abc\""));
        assert_eq!((a.status, a.body.as_str()), (204, ""));
    }

    #[test]
    fn redirect_carries_bucket_key_and_etag() {
        assert_eq!(redirect(Some("javascript:alert(1)")), None);
        let a = success(
            &upload(201, Some("https://example.com/done?x=1")),
            Some("\"e\""),
        );
        assert_eq!(a.status, 303);
        let loc = a
            .headers
            .iter()
            .find(|(n, _)| n == "location")
            .map(|(_, v)| v.to_str().unwrap().to_string())
            .unwrap();
        assert_eq!(
            loc,
            "https://example.com/done?x=1&bucket=b&key=dir%2Fa%20b%26.txt&etag=%22e%22"
        );
    }
}
