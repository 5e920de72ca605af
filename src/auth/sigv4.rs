//! SigV4 verification for S3: the Authorization header and presigned URLs.
//!
//! The canonical request is rebuilt from what the client says it signed
//! (`SignedHeaders`), with S3's rules: the path is encoded once and never
//! normalized.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

use super::crypto::{cached_signing_key, constant_time_eq, hmac_sha256, sha256_hex};
use super::time::{distance, format_amz_date, parse_amz_date, MAX_SKEW};
use super::{
    AuthError, AuthMethod, Authenticated, ChunkSigning, PayloadMode, Principals, RequestView,
};
use crate::s3::uri::{decode_path, encode_path};
use crate::s3::{err, S3ErrorCode};

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const MAX_PRESIGN_EXPIRES: u64 = 604_800;

/// The parts of a SigV4 signature, from the header or the query.
struct Signature<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn parse_credential(cred: &str) -> Option<(&str, &str, &str, &str)> {
    let mut it = cred.split('/');
    let (akid, date, region, service, term) =
        (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
    (term == "aws4_request" && it.next().is_none()).then_some((akid, date, region, service))
}

fn malformed(msg: &str) -> AuthError {
    AuthError::new(
        err(S3ErrorCode::AuthorizationHeaderMalformed, msg.to_string()),
        None,
    )
}

/// `AWS4-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..`
fn parse_authorization(value: &str) -> Result<Signature<'_>, AuthError> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .ok_or_else(|| malformed("Unsupported authorization algorithm"))?;
    let (mut cred, mut sh, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            cred = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            sh = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            sig = Some(v);
        }
    }
    let (Some(cred), Some(signed_headers), Some(signature)) = (cred, sh, sig) else {
        return Err(malformed("The authorization header is malformed; it must name Credential, SignedHeaders and Signature"));
    };
    let (access_key_id, date, region, service) = parse_credential(cred).ok_or_else(|| {
        malformed("The authorization header is malformed; the Credential is mal-formed")
    })?;
    Ok(Signature {
        access_key_id,
        date,
        region,
        service,
        signed_headers,
        signature,
    })
}

/// Verify `Authorization: AWS4-HMAC-SHA256 ...`.
pub fn verify_header(
    req: &RequestView<'_>,
    auth: &str,
    principals: &Principals,
    region: &str,
    now: SystemTime,
) -> Result<Authenticated, AuthError> {
    let sig = parse_authorization(auth)?;
    let principal = principals.lookup(sig.access_key_id)?;
    let fail = |e| AuthError::new(e, Some(sig.access_key_id));
    let amz_date = match header(req.headers, "x-amz-date") {
        Some(d) => d.to_string(),
        None => match header(req.headers, "date").and_then(super::time::parse_http_date) {
            Some(t) => format_amz_date(t),
            None => {
                return Err(fail(err(
                    S3ErrorCode::AccessDenied,
                    "AWS authentication requires a valid Date or x-amz-date header",
                )))
            }
        },
    };
    let signed_at = parse_amz_date(&amz_date).ok_or_else(|| {
        fail(err(
            S3ErrorCode::AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header",
        ))
    })?;
    if distance(signed_at, now) > MAX_SKEW {
        return Err(fail(err(
            S3ErrorCode::RequestTimeTooSkewed,
            "The difference between the request time and the current time is too large.",
        )));
    }
    check_scope(&sig, &amz_date, region).map_err(fail)?;
    let content_sha = header(req.headers, "x-amz-content-sha256").ok_or_else(|| {
        fail(err(
            S3ErrorCode::InvalidRequest,
            "Missing required header for this request: x-amz-content-sha256",
        ))
    })?;
    let payload = PayloadMode::from_content_sha256(content_sha).map_err(fail)?;
    check_signed_headers(req.headers, sig.signed_headers, false).map_err(fail)?;

    let key = cached_signing_key(
        &principal.access_key_id,
        principal.secret.expose(),
        sig.date,
        sig.region,
        sig.service,
    );
    let query = req.query.canonical(|_| false);
    verify_signature(req, &query, &sig, content_sha, &amz_date, &key).map_err(fail)?;
    let payload = match payload {
        PayloadMode::SignedChunks { trailer, .. } => PayloadMode::SignedChunks {
            trailer,
            signing: Box::new(ChunkSigning {
                signing_key: key,
                amz_date: amz_date.clone(),
                scope: scope(&sig),
                seed_signature: sig.signature.to_ascii_lowercase(),
            }),
        },
        p => p,
    };
    Ok(Authenticated {
        principal,
        method: AuthMethod::V4Header,
        payload,
        signed_at,
    })
}

/// Verify a presigned URL (`X-Amz-Signature` in the query).
pub fn verify_presigned(
    req: &RequestView<'_>,
    principals: &Principals,
    region: &str,
    now: SystemTime,
) -> Result<Authenticated, AuthError> {
    let q = req.query;
    let get = |n: &str| q.get(n);
    if get("X-Amz-Algorithm") != Some(ALGORITHM) {
        return Err(AuthError::new(
            err(
                S3ErrorCode::AuthorizationQueryParametersError,
                "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
            ),
            None,
        ));
    }
    let missing = || {
        AuthError::new(err(S3ErrorCode::AuthorizationQueryParametersError, "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."), None)
    };
    let (Some(cred), Some(amz_date), Some(expires), Some(signed_headers), Some(signature)) = (
        get("X-Amz-Credential"),
        get("X-Amz-Date"),
        get("X-Amz-Expires"),
        get("X-Amz-SignedHeaders"),
        get("X-Amz-Signature"),
    ) else {
        return Err(missing());
    };
    let (access_key_id, date, cregion, service) = parse_credential(cred).ok_or_else(missing)?;
    let principal = principals.lookup(access_key_id)?;
    let fail = |e| AuthError::new(e, Some(access_key_id));
    let sig = Signature {
        access_key_id,
        date,
        region: cregion,
        service,
        signed_headers,
        signature,
    };
    let expires: u64 = expires
        .parse()
        .ok()
        .filter(|e| (1..=MAX_PRESIGN_EXPIRES).contains(e))
        .ok_or_else(|| {
            fail(err(
                S3ErrorCode::AuthorizationQueryParametersError,
                "X-Amz-Expires must be a number of seconds between 1 and 604800 (7 days)",
            ))
        })?;
    let signed_at = parse_amz_date(amz_date).ok_or_else(|| {
        fail(err(
            S3ErrorCode::AuthorizationQueryParametersError,
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"",
        ))
    })?;
    if signed_at > now + MAX_SKEW {
        return Err(fail(err(
            S3ErrorCode::AccessDenied,
            "Request is not valid yet",
        )));
    }
    if now > signed_at + Duration::from_secs(expires) {
        return Err(fail(err(S3ErrorCode::AccessDenied, "Request has expired")));
    }
    check_scope(&sig, amz_date, region).map_err(fail)?;
    check_signed_headers(req.headers, signed_headers, true).map_err(fail)?;
    let content_sha = get("X-Amz-Content-Sha256").unwrap_or("UNSIGNED-PAYLOAD");
    let key = cached_signing_key(
        &principal.access_key_id,
        principal.secret.expose(),
        date,
        cregion,
        service,
    );
    let query = q.canonical(|n| n == "X-Amz-Signature");
    verify_signature(req, &query, &sig, content_sha, amz_date, &key).map_err(fail)?;
    Ok(Authenticated {
        principal,
        method: AuthMethod::V4Presigned,
        payload: PayloadMode::Unsigned,
        signed_at,
    })
}

fn scope(sig: &Signature<'_>) -> String {
    format!("{}/{}/{}/aws4_request", sig.date, sig.region, sig.service)
}

fn check_scope(
    sig: &Signature<'_>,
    amz_date: &str,
    region: &str,
) -> Result<(), crate::s3::S3Error> {
    if sig.service != "s3" {
        return Err(err(S3ErrorCode::AuthorizationHeaderMalformed, format!("The authorization header is malformed; incorrect service \"{}\". This endpoint belongs to \"s3\".", sig.service)));
    }
    if sig.region != region {
        return Err(err(S3ErrorCode::AuthorizationHeaderMalformed, format!("The authorization header is malformed; the region '{}' is wrong; expecting '{region}'", sig.region)).with_region(region));
    }
    if !amz_date.starts_with(sig.date) || sig.date.len() != 8 {
        return Err(err(S3ErrorCode::AuthorizationHeaderMalformed, "The authorization header is malformed; the credential date does not match the request date"));
    }
    Ok(())
}

/// `host` must be signed, and every `x-amz-*` header present must be, or a
/// client could add an unsigned header that our re-signature would vouch for.
fn check_signed_headers(
    headers: &HeaderMap,
    signed: &str,
    presigned: bool,
) -> Result<(), crate::s3::S3Error> {
    let list: Vec<&str> = signed.split(';').collect();
    if !list.contains(&"host") {
        return Err(err(
            S3ErrorCode::AccessDenied,
            "The host header must be signed",
        ));
    }
    for name in headers.keys() {
        let n = name.as_str();
        if n.starts_with("x-amz-") && !list.contains(&n) {
            // A presigned URL cannot sign headers its user adds later, but
            // S3 requires them signed all the same.
            let _ = presigned;
            return Err(err(
                S3ErrorCode::AccessDenied,
                format!("There were headers present in the request which were not signed: {n}"),
            ));
        }
    }
    Ok(())
}

fn verify_signature(
    req: &RequestView<'_>,
    canonical_query: &str,
    sig: &Signature<'_>,
    payload_hash: &str,
    amz_date: &str,
    key: &[u8; 32],
) -> Result<(), crate::s3::S3Error> {
    let headers = canonical_headers(req.headers, sig.signed_headers);
    let scope = scope(sig);
    let decoded = decode_path(req.raw_path).map(|p| encode_path(&p));
    // The canonical URI is the path encoded once. Clients encode their keys
    // differently on the wire (some leave `=` or `!` raw), so the canonical
    // form of the decoded path is tried first, then the path exactly as sent.
    let candidates = decoded
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(req.raw_path));
    let mut last = String::new();
    for uri in candidates {
        let creq = format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            req.method, uri, canonical_query, headers, sig.signed_headers, payload_hash
        );
        let sts = format!(
            "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
            sha256_hex(creq.as_bytes())
        );
        let expected = hex::encode(hmac_sha256(key, sts.as_bytes()));
        if constant_time_eq(
            expected.as_bytes(),
            sig.signature.to_ascii_lowercase().as_bytes(),
        ) {
            return Ok(());
        }
        last = creq;
    }
    tracing::debug!(canonical_request = %redact_creq(&last), "SigV4 signature mismatch");
    Err(err(S3ErrorCode::SignatureDoesNotMatch, "The request signature we calculated does not match the signature you provided. Check your key and signing method."))
}

/// The canonical request for a debug log, with query values (which may
/// hold a presigned signature or token) removed.
fn redact_creq(creq: &str) -> String {
    let mut lines: Vec<&str> = creq.lines().collect();
    if lines.len() > 2 {
        lines[2] = "<query redacted>";
    }
    lines.join("\\n")
}

fn canonical_headers(headers: &HeaderMap, signed: &str) -> String {
    let mut out = String::with_capacity(256);
    for name in signed.split(';') {
        out.push_str(name);
        out.push(':');
        let mut first = true;
        for v in headers.get_all(name) {
            if !first {
                out.push(',');
            }
            first = false;
            push_trimmed(&mut out, &String::from_utf8_lossy(v.as_bytes()));
        }
        out.push('\n');
    }
    out
}

/// Trim, and collapse runs of spaces into one (SigV4 canonical header value).
fn push_trimmed(out: &mut String, v: &str) {
    let mut prev_space = false;
    for c in v.trim().chars() {
        if c == ' ' {
            if !prev_space {
                out.push(' ');
            }
            prev_space = true;
        } else {
            out.push(c);
            prev_space = false;
        }
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_support::*;

    #[test]
    fn verifies_aws_documentation_example_get_object() {
        // "Example: GET Object" from the S3 SigV4 header-auth documentation.
        let (p, h) = doc_example_get_object();
        let q = crate::s3::Query::parse(None).unwrap();
        let req = RequestView {
            method: "GET",
            raw_path: "/test.txt",
            query: &q,
            headers: &h,
        };
        let now = parse_amz_date("20130524T000000Z").unwrap();
        let auth = h
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let a = verify_header(&req, &auth, &p, "us-east-1", now).unwrap();
        assert_eq!(a.principal.name, "example");
        // One byte changed in the Range header breaks it.
        let mut h2 = h.clone();
        h2.insert("range", "bytes=0-8".parse().unwrap());
        let req2 = RequestView {
            headers: &h2,
            ..req
        };
        let e = verify_header(&req2, &auth, &p, "us-east-1", now).unwrap_err();
        assert_eq!(e.error.code, S3ErrorCode::SignatureDoesNotMatch);
    }

    #[test]
    fn wrong_region_names_the_right_one() {
        // S3 puts <Region> in the error; s3cmd without `bucket_location`
        // signs for "US", reads it and signs again (issue 17).
        let (p, h) = doc_example_get_object();
        let q = crate::s3::Query::parse(None).unwrap();
        let req = RequestView {
            method: "GET",
            raw_path: "/test.txt",
            query: &q,
            headers: &h,
        };
        let auth = h.get("authorization").unwrap().to_str().unwrap();
        let now = parse_amz_date("20130524T000000Z").unwrap();
        let e = verify_header(&req, auth, &p, "eu-west-1", now).unwrap_err();
        assert_eq!(e.error.code, S3ErrorCode::AuthorizationHeaderMalformed);
        assert!(e.error.to_xml("R").contains("<Region>eu-west-1</Region>"));
    }

    #[test]
    fn refuses_skew_and_unsigned_amz_headers() {
        let (p, h) = doc_example_get_object();
        let q = crate::s3::Query::parse(None).unwrap();
        let req = RequestView {
            method: "GET",
            raw_path: "/test.txt",
            query: &q,
            headers: &h,
        };
        let auth = h
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let late = parse_amz_date("20130524T001600Z").unwrap();
        let e = verify_header(&req, &auth, &p, "us-east-1", late).unwrap_err();
        assert_eq!(e.error.code, S3ErrorCode::RequestTimeTooSkewed);
        let mut h2 = h.clone();
        h2.insert("x-amz-meta-evil", "1".parse().unwrap());
        let req2 = RequestView {
            headers: &h2,
            ..req
        };
        let now = parse_amz_date("20130524T000000Z").unwrap();
        let e = verify_header(&req2, &auth, &p, "us-east-1", now).unwrap_err();
        assert_eq!(e.error.code, S3ErrorCode::AccessDenied);
    }

    #[test]
    fn verifies_aws_documentation_presigned_example() {
        // "Example: Presigned URL" from the S3 SigV4 query-auth documentation.
        let p = example_principals();
        let raw = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
        let q = crate::s3::Query::parse(Some(raw)).unwrap();
        let mut h = HeaderMap::new();
        h.insert("host", "examplebucket.s3.amazonaws.com".parse().unwrap());
        let req = RequestView {
            method: "GET",
            raw_path: "/test.txt",
            query: &q,
            headers: &h,
        };
        let now = parse_amz_date("20130524T010000Z").unwrap();
        verify_presigned(&req, &p, "us-east-1", now).unwrap();
        let expired = parse_amz_date("20130525T000001Z").unwrap();
        let e = verify_presigned(&req, &p, "us-east-1", expired).unwrap_err();
        assert_eq!(e.error.code, S3ErrorCode::AccessDenied);
        assert_eq!(e.error.message, "Request has expired");
    }

    /// The debug log of a mismatch shows the canonical request without its
    /// query line, which may carry a presigned signature or a token.
    #[test]
    fn logged_canonical_requests_hide_the_query() {
        let creq = "GET\n/b/k\nX-Amz-Credential=AKID%2F20130524&X-Amz-Signature=abc\nhost:h\n\nhost\nUNSIGNED-PAYLOAD";
        assert_eq!(
            redact_creq(creq),
            "GET\\n/b/k\\n<query redacted>\\nhost:h\\n\\nhost\\nUNSIGNED-PAYLOAD"
        );
        assert_eq!(redact_creq("GET\n/b/k"), "GET\\n/b/k");
    }
}
