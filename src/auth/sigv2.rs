//! Legacy SigV2 (`Authorization: AWS key:sig` and `?AWSAccessKeyId=&Signature=&Expires=`).
//!
//! AWS deprecated it, but real clients still send it: boto3's
//! `generate_presigned_url` makes V2 URLs for a custom endpoint unless told
//! to use s3v4. It is verified here and always re-signed upstream with V4;
//! policies can refuse it with `s3:signatureversion`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::crypto::constant_time_eq;
use super::time::{distance, MAX_SKEW};
use super::{AuthError, AuthMethod, Authenticated, PayloadMode, Principals, RequestView};
use crate::s3::{err, Addressed, S3ErrorCode};

/// The longest a presigned URL may be valid, as for SigV4 (`X-Amz-Expires`).
const MAX_PRESIGNED_VALIDITY: Duration = Duration::from_secs(604_800);

pub fn verify_header(
    req: &RequestView<'_>,
    cred: &str,
    addr: &Addressed,
    principals: &Principals,
    now: SystemTime,
) -> Result<Authenticated, AuthError> {
    let (akid, signature) = cred.split_once(':').ok_or_else(|| {
        AuthError::new(
            err(
                S3ErrorCode::AuthorizationHeaderMalformed,
                "The authorization header is malformed",
            ),
            None,
        )
    })?;
    let principal = principals.lookup(akid)?;
    let fail = |e| AuthError::new(e, Some(akid));
    let h = |n: &str| req.headers.get(n).and_then(|v| v.to_str().ok());
    let date = h("x-amz-date").or_else(|| h("date"));
    let signed_at = date.and_then(super::time::parse_http_date).ok_or_else(|| {
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
    // With x-amz-date present, the Date line of the string to sign is empty.
    let date_line = if h("x-amz-date").is_some() {
        ""
    } else {
        h("date").unwrap_or("")
    };
    let sts = string_to_sign(req, addr, date_line);
    check(principal.secret.expose(), &sts, signature).map_err(fail)?;
    Ok(Authenticated {
        principal,
        method: AuthMethod::V2Header,
        payload: PayloadMode::Unsigned,
        signed_at,
    })
}

pub fn verify_presigned(
    req: &RequestView<'_>,
    addr: &Addressed,
    principals: &Principals,
    now: SystemTime,
) -> Result<Authenticated, AuthError> {
    let q = req.query;
    let (Some(akid), Some(signature), Some(expires)) = (
        q.get("AWSAccessKeyId"),
        q.get("Signature"),
        q.get("Expires"),
    ) else {
        return Err(AuthError::new(err(S3ErrorCode::AccessDenied, "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"), None));
    };
    let principal = principals.lookup(akid)?;
    let fail = |e| AuthError::new(e, Some(akid));
    let expires_at = expires
        .parse::<u64>()
        .ok()
        .and_then(|secs| UNIX_EPOCH.checked_add(Duration::from_secs(secs)))
        .ok_or_else(|| {
            fail(err(
                S3ErrorCode::AccessDenied,
                "Invalid date (should be seconds since epoch)",
            ))
        })?;
    if now > expires_at {
        return Err(fail(err(S3ErrorCode::AccessDenied, "Request has expired")));
    }
    if now
        .checked_add(MAX_PRESIGNED_VALIDITY)
        .is_some_and(|latest| expires_at > latest)
    {
        return Err(fail(err(
            S3ErrorCode::AccessDenied,
            "Expires must be at most 604800 seconds (7 days) from now: a presigned URL is valid for 7 days at most",
        )));
    }
    let sts = string_to_sign(req, addr, expires);
    check(principal.secret.expose(), &sts, signature).map_err(fail)?;
    Ok(Authenticated {
        principal,
        method: AuthMethod::V2Presigned,
        payload: PayloadMode::Unsigned,
        signed_at: presigned_signing_time(expires_at, now),
    })
}

/// When a SigV2 presigned URL was signed, for `s3:signatureAge`.
///
/// SigV2 URLs carry no signing time, only `Expires`. AWS documents the age
/// of a SigV2 signature as always 0, which would let a V2 URL of any age
/// through a policy such as "deny presigned requests older than ten
/// minutes". Instead the URL is taken to have been signed with the longest
/// validity it may have (7 days, as for SigV4): `Expires - 7 days`. That is
/// the oldest it can be if it obeys the 7-day rule, so age conditions fail
/// closed: a V2 URL looks at least as old as it really is, never younger.
fn presigned_signing_time(expires_at: SystemTime, now: SystemTime) -> SystemTime {
    expires_at
        .checked_sub(MAX_PRESIGNED_VALIDITY)
        .map_or(now, |t| t.min(now))
}

fn check(secret: &str, sts: &str, signature: &str) -> Result<(), crate::s3::S3Error> {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).map_err(|e| {
        err(
            S3ErrorCode::InternalError,
            format!("HMAC key rejected: {e}"),
        )
    })?;
    mac.update(sts.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        Ok(())
    } else {
        Err(err(S3ErrorCode::SignatureDoesNotMatch, "The request signature we calculated does not match the signature you provided. Check your key and signing method."))
    }
}

fn string_to_sign(req: &RequestView<'_>, addr: &Addressed, date_line: &str) -> String {
    let h = |n: &str| {
        req.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let mut s = format!(
        "{}\n{}\n{}\n{}\n",
        req.method,
        h("content-md5"),
        h("content-type"),
        date_line
    );
    let mut amz: Vec<(String, String)> = Vec::new();
    for name in req.headers.keys() {
        let n = name.as_str();
        if n.starts_with("x-amz-") {
            let values: Vec<String> = req
                .headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
                .collect();
            amz.push((n.to_string(), values.join(",")));
        }
    }
    amz.sort();
    for (n, v) in amz {
        s.push_str(&n);
        s.push(':');
        s.push_str(&v);
        s.push('\n');
    }
    if addr.virtual_host {
        if let Some(b) = &addr.bucket {
            s.push('/');
            s.push_str(b);
        }
    }
    s.push_str(req.raw_path);
    let mut subs: Vec<(&str, &str)> = req
        .query
        .params
        .iter()
        .filter(|p| crate::s3::subresource::sigv2_subresource(&p.name))
        .map(|p| (p.name.as_str(), p.value.as_str()))
        .collect();
    subs.sort();
    for (i, (n, v)) in subs.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(n);
        if !v.is_empty() {
            s.push('=');
            s.push_str(v);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::test_support::example_principals;
    use crate::s3::addressing::address;
    use crate::s3::Query;
    use http::HeaderMap;

    #[test]
    fn verifies_aws_documentation_v2_get_example() {
        // "Example Object GET" from the S3 SigV2 (RESTAuthentication) documentation.
        let p = example_principals();
        let mut h = HeaderMap::new();
        h.insert(
            "host",
            "awsexamplebucket1.us-west-1.s3.amazonaws.com"
                .parse()
                .unwrap(),
        );
        h.insert("date", "Tue, 27 Mar 2007 19:36:42 +0000".parse().unwrap());
        let q = Query::parse(None).unwrap();
        let hostnames = vec!["us-west-1.s3.amazonaws.com".to_string()];
        let addr = address(
            Some("awsexamplebucket1.us-west-1.s3.amazonaws.com"),
            "/photos/puppy.jpg",
            &hostnames,
        )
        .unwrap();
        let req = RequestView {
            method: "GET",
            raw_path: "/photos/puppy.jpg",
            query: &q,
            headers: &h,
        };
        let sts = string_to_sign(&req, &addr, "Tue, 27 Mar 2007 19:36:42 +0000");
        assert_eq!(
            sts,
            "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg"
        );
        let now = crate::auth::time::parse_http_date("Tue, 27 Mar 2007 19:40:00 +0000").unwrap();
        verify_header(
            &req,
            "AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g=",
            &addr,
            &p,
            now,
        )
        .unwrap();
        let e = verify_header(
            &req,
            "AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1h=",
            &addr,
            &p,
            now,
        )
        .unwrap_err();
        assert_eq!(e.error.code, S3ErrorCode::SignatureDoesNotMatch);
    }

    fn presigned_request(expires: &str, secret: &str) -> (String, HeaderMap) {
        let mut h = HeaderMap::new();
        h.insert(
            "host",
            "awsexamplebucket1.s3.amazonaws.com".parse().unwrap(),
        );
        let sts = format!("GET\n\n\n{expires}\n/awsexamplebucket1/photos/puppy.jpg");
        let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(sts.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let sig = percent_encoding::utf8_percent_encode(&sig, percent_encoding::NON_ALPHANUMERIC);
        (
            format!("AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires={expires}&Signature={sig}"),
            h,
        )
    }

    fn verify_presigned_at(expires: &str, now: SystemTime) -> Result<Authenticated, AuthError> {
        let (raw, h) = presigned_request(expires, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let q = Query::parse(Some(&raw)).unwrap();
        let addr = address(
            Some("awsexamplebucket1.s3.amazonaws.com"),
            "/photos/puppy.jpg",
            &["s3.amazonaws.com".to_string()],
        )
        .unwrap();
        let req = RequestView {
            method: "GET",
            raw_path: "/photos/puppy.jpg",
            query: &q,
            headers: &h,
        };
        verify_presigned(&req, &addr, &example_principals(), now)
    }

    fn secs(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    #[test]
    fn presigned_within_seven_days_verifies_and_ages_from_the_longest_validity() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let expires = secs(now) + 3600;
        let a = verify_presigned_at(&expires.to_string(), now).unwrap();
        assert_eq!(a.method, AuthMethod::V2Presigned);
        // Signed at the latest 7 days before it expires: 7 days less an hour ago.
        let age = now.duration_since(a.signed_at).unwrap();
        assert_eq!(age, MAX_PRESIGNED_VALIDITY - Duration::from_secs(3600));
        // Exactly 7 days is still allowed; the age is then 0.
        let a = verify_presigned_at(&(secs(now) + 604_800).to_string(), now).unwrap();
        assert_eq!(a.signed_at, now);
    }

    #[test]
    fn presigned_longer_than_seven_days_is_refused() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let e = verify_presigned_at(&(secs(now) + 604_801).to_string(), now).unwrap_err();
        assert_eq!(e.error.code, S3ErrorCode::AccessDenied);
        assert!(e.error.message.contains("7 days"), "{}", e.error.message);
    }

    #[test]
    fn absurd_expires_values_are_refused_without_panicking() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for expires in [
            "18446744073709551615",
            "18446744073709551616",
            "9223372036854775807",
            "9223372036854775808",
            "-1",
            "",
            "1e9",
        ] {
            let e = verify_presigned_at(expires, now).unwrap_err();
            assert_eq!(e.error.code, S3ErrorCode::AccessDenied, "{expires}");
        }
        let e = verify_presigned_at("1000", now).unwrap_err();
        assert_eq!(e.error.message, "Request has expired");
    }

    #[test]
    fn header_signature_outside_fifteen_minutes_is_skewed() {
        let p = example_principals();
        let mut h = HeaderMap::new();
        h.insert(
            "host",
            "awsexamplebucket1.us-west-1.s3.amazonaws.com"
                .parse()
                .unwrap(),
        );
        h.insert("date", "Tue, 27 Mar 2007 19:36:42 +0000".parse().unwrap());
        let q = Query::parse(None).unwrap();
        let addr = address(
            Some("awsexamplebucket1.us-west-1.s3.amazonaws.com"),
            "/photos/puppy.jpg",
            &["us-west-1.s3.amazonaws.com".to_string()],
        )
        .unwrap();
        let req = RequestView {
            method: "GET",
            raw_path: "/photos/puppy.jpg",
            query: &q,
            headers: &h,
        };
        let signed = crate::auth::time::parse_http_date("Tue, 27 Mar 2007 19:36:42 +0000").unwrap();
        let cred = "AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g=";
        for now in [
            signed + Duration::from_secs(15 * 60 + 1),
            signed - Duration::from_secs(15 * 60 + 1),
        ] {
            let e = verify_header(&req, cred, &addr, &p, now).unwrap_err();
            assert_eq!(e.error.code, S3ErrorCode::RequestTimeTooSkewed);
        }
        let a =
            verify_header(&req, cred, &addr, &p, signed + Duration::from_secs(14 * 60)).unwrap();
        assert_eq!(a.signed_at, signed);
    }

    /// `Expires` is the last second the URL is good for: a request at
    /// that very second verifies, one second later it has expired.
    #[test]
    fn presigned_is_valid_up_to_its_expires_second() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert!(verify_presigned_at(&secs(now).to_string(), now).is_ok());
        let e = verify_presigned_at(&(secs(now) - 1).to_string(), now).unwrap_err();
        assert_eq!(e.error.message, "Request has expired");
    }
}
