//! Fuzz targets for POST Object: the `multipart/form-data` stream parser
//! and the POST policy document.

use std::time::{Duration, UNIX_EPOCH};

use crate::post::form::{FileStream, HeadParser};
use crate::post::policy::PostPolicy;
use crate::post::FormBody;

/// Input: first byte = where to cut the rest into two pieces (scaled),
/// second byte = boundary length (1..=16 of `fuzzboundary0123`), then the
/// body. Properties: never panics; the file bytes read are the same
/// whether the body arrives whole or cut in two; the fields before the file
/// stay within their bound; a body that does not hold the closing delimiter
/// is never accepted; the file's length computed from the body's length
/// is exact.
pub fn form(data: &[u8]) {
    let [cut, blen, body @ ..] = data else {
        return;
    };
    let boundary = &"fuzzboundary0123"[..1 + (*blen as usize % 16)];
    let at = if body.is_empty() {
        0
    } else {
        *cut as usize * body.len() / 256
    };
    let whole = run(boundary, &[body]);
    let split = run(boundary, &[&body[..at], &body[at..]]);
    assert_eq!(whole.is_ok(), split.is_ok(), "a cut changed the outcome");
    if let (Ok(a), Ok(b)) = (&whole, &split) {
        assert_eq!(a, b, "a cut changed the file");
        let mut close = b"\r\n--".to_vec();
        close.extend_from_slice(boundary.as_bytes());
        assert!(
            body.windows(close.len()).any(|w| w == close.as_slice())
                || body.starts_with(&close[2..]),
            "accepted a form without a delimiter"
        );
    }
    // The streaming body plan agrees with the parser; held to the length
    // the gateway announces upstream (computed from the Content-Length),
    // it gives the same file when the form closes with a CRLF, and
    // refuses it otherwise.
    if let Ok((_, file)) = &whole {
        let mut head = HeadParser::new(boundary);
        if let Ok(Some((_, rest))) = head.push(body) {
            let form = FormBody::new(boundary, rest.clone(), None);
            assert_eq!(form.whole().ok().as_deref(), Some(file.as_slice()));
            let before = (body.len() - rest.len()) as u64;
            let held = crate::post::file_length(body.len() as u64, before, boundary, true)
                .and_then(|n| FormBody::new(boundary, rest, None).expect(n))
                .and_then(FormBody::whole);
            if body.ends_with(b"--\r\n") {
                assert_eq!(held.ok().as_deref(), Some(file.as_slice()));
            } else {
                assert!(held.is_err(), "announced a length the form did not have");
            }
        }
    }
}

fn run(boundary: &str, pieces: &[&[u8]]) -> Result<(usize, Vec<u8>), ()> {
    let mut head = HeadParser::new(boundary);
    let mut file: Option<FileStream> = None;
    let mut out = Vec::new();
    let mut fields = 0;
    for p in pieces {
        match &mut file {
            Some(f) => out.extend_from_slice(&f.push(p).map_err(|_| ())?),
            None => {
                if let Some((h, rest)) = head.push(p).map_err(|_| ())? {
                    let size: usize = h.fields.iter().map(|f| f.name.len() + f.value.len()).sum();
                    assert!(size <= crate::post::form::MAX_FIELDS_BYTES);
                    fields = h.fields.len();
                    let mut f = FileStream::new(boundary);
                    out.extend_from_slice(&f.push(&rest).map_err(|_| ())?);
                    file = Some(f);
                }
            }
        }
    }
    let f = file.ok_or(())?;
    f.finish().map_err(|_| ())?;
    Ok((fields, out))
}

/// Input: a POST policy document (JSON, base64-encoded here), then after a
/// NUL byte, form fields as `name=value` lines. Properties: never panics;
/// an expired policy never admits a form.
pub fn post_policy(data: &[u8]) {
    use base64::Engine as _;
    let (doc, rest) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(doc);
    let Ok(policy) = PostPolicy::parse(&b64) else {
        return;
    };
    let fields: Vec<(String, String)> = String::from_utf8_lossy(rest)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _ = policy.length_range();
    let far = UNIX_EPOCH + Duration::from_secs(1 << 40);
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let _ = policy.check(&fields, "bucket", now);
    if policy.expiration < far {
        assert!(
            policy.check(&fields, "bucket", far).is_err(),
            "an expired policy admitted a form"
        );
    }
}
