//! Browser-based uploads (POST Object): the signature lives in the form,
//! not in a header. The client signs the base64 POST policy itself:
//!
//! - SigV4: `x-amz-algorithm`, `x-amz-credential`, `x-amz-date`,
//!   `x-amz-signature` = hex HMAC-SHA256(signing key, policy)
//!   (AWS docs, "Calculating a Signature" for browser-based uploads);
//! - SigV2: `AWSAccessKeyId`, `signature` = base64 HMAC-SHA1(secret, policy).
//!
//! The policy's expiration and conditions are checked by the caller
//! (`post::policy`); here only who signed it.

use std::time::SystemTime;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::crypto::{cached_signing_key, constant_time_eq, hmac_sha256};
use super::time::parse_amz_date;
use super::{AuthError, AuthMethod, Authenticated, PayloadMode, Principals};
use crate::s3::{err, S3ErrorCode};

fn invalid(msg: impl Into<String>) -> AuthError {
    AuthError::new(err(S3ErrorCode::InvalidArgument, msg), None)
}

fn mismatch(akid: &str) -> AuthError {
    AuthError::new(
        err(
            S3ErrorCode::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ),
        Some(akid),
    )
}

/// Who signed the form whose fields `field` reads (names compared without
/// regard to case); `Ok(None)`: an anonymous form (no policy, no signature).
pub fn verify_form<'a>(
    field: impl Fn(&str) -> Option<&'a str>,
    principals: &Principals,
    region: &str,
    now: SystemTime,
) -> Result<Option<Authenticated>, AuthError> {
    let policy = field("policy");
    let v4 = field("x-amz-signature").is_some() || field("x-amz-algorithm").is_some();
    let v2 = field("AWSAccessKeyId").is_some() || field("signature").is_some();
    if v4 && v2 {
        return Err(invalid(
            "Only one authentication mechanism may be used in a POST form",
        ));
    }
    if !v4 && !v2 {
        if policy.is_some() {
            return Err(invalid(
                "Bucket POST must contain a field named 'x-amz-signature' (or 'signature') when it carries a policy",
            ));
        }
        return Ok(None);
    }
    let Some(policy) = policy else {
        return Err(invalid(
            "Bucket POST must contain a field named 'policy'. If it is specified, please check the order of the fields.",
        ));
    };
    if v4 {
        verify_v4(&field, policy, principals, region).map(Some)
    } else {
        verify_v2(&field, policy, principals, now).map(Some)
    }
}

fn required<'a>(
    field: &impl Fn(&str) -> Option<&'a str>,
    name: &str,
) -> Result<&'a str, AuthError> {
    field(name).ok_or_else(|| {
        invalid(format!(
            "Bucket POST must contain a field named '{name}'. If it is specified, please check the order of the fields."
        ))
    })
}

fn verify_v4<'a>(
    field: &impl Fn(&str) -> Option<&'a str>,
    policy: &str,
    principals: &Principals,
    region: &str,
) -> Result<Authenticated, AuthError> {
    let algorithm = required(field, "x-amz-algorithm")?;
    if algorithm != super::sigv4::ALGORITHM {
        return Err(invalid(format!(
            "x-amz-algorithm must be {}",
            super::sigv4::ALGORITHM
        )));
    }
    let credential = required(field, "x-amz-credential")?;
    let amz_date = required(field, "x-amz-date")?;
    let signature = required(field, "x-amz-signature")?;
    let mut parts = credential.split('/');
    let (Some(akid), Some(date), Some(cred_region), Some(service), Some("aws4_request"), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(invalid(
            "x-amz-credential must be <key>/<yyyymmdd>/<region>/s3/aws4_request",
        ));
    };
    if service != "s3" {
        return Err(invalid(format!(
            "x-amz-credential names the service \"{service}\"; this endpoint belongs to \"s3\""
        )));
    }
    if cred_region != region {
        return Err(AuthError::new(
            err(
                S3ErrorCode::AuthorizationHeaderMalformed,
                format!("The authorization header is malformed; the region '{cred_region}' is wrong; expecting '{region}'"),
            )
            .with_region(region),
            None,
        ));
    }
    let signed_at = parse_amz_date(amz_date)
        .ok_or_else(|| invalid("x-amz-date must be an ISO 8601 basic date (yyyymmddThhmmssZ)"))?;
    if date.len() != 8 || !amz_date.starts_with(date) {
        return Err(invalid(
            "The date of x-amz-credential does not match x-amz-date",
        ));
    }
    let principal = principals.lookup(akid)?;
    let key = cached_signing_key(akid, principal.secret.expose(), date, region, service);
    let expected = hex::encode(hmac_sha256(&key, policy.as_bytes()));
    if !constant_time_eq(
        expected.as_bytes(),
        signature.to_ascii_lowercase().as_bytes(),
    ) {
        return Err(mismatch(akid));
    }
    Ok(Authenticated {
        principal,
        method: AuthMethod::V4Post,
        payload: PayloadMode::Unsigned,
        signed_at,
    })
}

fn verify_v2<'a>(
    field: &impl Fn(&str) -> Option<&'a str>,
    policy: &str,
    principals: &Principals,
    now: SystemTime,
) -> Result<Authenticated, AuthError> {
    let akid = required(field, "AWSAccessKeyId")?;
    let signature = required(field, "signature")?;
    let principal = principals.lookup(akid)?;
    let mut mac = Hmac::<Sha1>::new_from_slice(principal.secret.expose().as_bytes())
        .map_err(|_| mismatch(akid))?;
    mac.update(policy.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(mismatch(akid));
    }
    Ok(Authenticated {
        principal,
        method: AuthMethod::V2Post,
        payload: PayloadMode::Unsigned,
        // A SigV2 form carries no signing time: the policy's expiration
        // bounds it.
        signed_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Principal, Secret};

    fn principals() -> Principals {
        Principals::new(vec![Principal {
            name: "alice".into(),
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()),
        }])
    }

    fn lookup<'a>(fields: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<&'a str> {
        move |n| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
        }
    }

    #[test]
    fn v4_form_signature_verifies_and_a_forged_one_does_not() {
        let policy = "eyJleHBpcmF0aW9uIjoiMjAxNS0xMi0zMFQxMjowMDowMC4wMDBaIn0=";
        let key = crate::auth::crypto::signing_key(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "20151229",
            "us-east-1",
            "s3",
        );
        let sig = hex::encode(hmac_sha256(&key, policy.as_bytes()));
        let mut fields = vec![
            ("Policy", policy.to_string()),
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_string()),
            (
                "x-amz-credential",
                "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request".to_string(),
            ),
            ("x-amz-date", "20151229T000000Z".to_string()),
            ("x-amz-signature", sig.clone()),
        ];
        let now = SystemTime::now();
        let a = verify_form(lookup(&fields), &principals(), "us-east-1", now)
            .unwrap()
            .unwrap();
        assert_eq!(a.method, AuthMethod::V4Post);
        assert_eq!(a.principal.name, "alice");
        fields[4].1 = sig.replace('a', "b").replace('0', "1");
        let e = verify_form(lookup(&fields), &principals(), "us-east-1", now).unwrap_err();
        assert_eq!(e.error.code, S3ErrorCode::SignatureDoesNotMatch);
        let e = verify_form(lookup(&fields), &principals(), "eu-west-1", now).unwrap_err();
        assert_eq!(e.error.code, S3ErrorCode::AuthorizationHeaderMalformed);
    }

    #[test]
    fn v2_form_signature_verifies() {
        let policy = "eyJleHBpcmF0aW9uIjoiMjAwNy0xMi0wMVQxMjowMDowMC4wMDBaIn0=";
        let mut mac =
            Hmac::<Sha1>::new_from_slice(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY").unwrap();
        mac.update(policy.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let fields = vec![
            ("policy", policy.to_string()),
            ("AWSAccessKeyId", "AKIAIOSFODNN7EXAMPLE".to_string()),
            ("signature", sig),
        ];
        let a = verify_form(
            lookup(&fields),
            &principals(),
            "us-east-1",
            SystemTime::now(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(a.method, AuthMethod::V2Post);
    }

    #[test]
    fn anonymous_and_incomplete_forms() {
        let none: Vec<(&str, String)> = vec![("key", "k".into())];
        assert!(
            verify_form(lookup(&none), &principals(), "us-east-1", SystemTime::now())
                .unwrap()
                .is_none()
        );
        let no_policy = vec![("x-amz-signature", "00".to_string())];
        let e = verify_form(
            lookup(&no_policy),
            &principals(),
            "us-east-1",
            SystemTime::now(),
        )
        .unwrap_err();
        assert_eq!(e.error.code, S3ErrorCode::InvalidArgument);
        let unsigned = vec![("policy", "e30=".to_string())];
        assert!(verify_form(
            lookup(&unsigned),
            &principals(),
            "us-east-1",
            SystemTime::now()
        )
        .is_err());
    }

    /// The credential's date must be the day of x-amz-date, eight digits:
    /// a form signed with a key for another (or a truncated) date is
    /// refused even when its signature is right for that key.
    #[test]
    fn v4_form_credential_date_must_be_the_day_of_x_amz_date() {
        let policy = "eyJleHBpcmF0aW9uIjoiMjAxNS0xMi0zMFQxMjowMDowMC4wMDBaIn0=";
        for date in ["2015122", "20151230"] {
            let key = crate::auth::crypto::signing_key(
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                date,
                "us-east-1",
                "s3",
            );
            let fields = vec![
                ("policy", policy.to_string()),
                ("x-amz-algorithm", "AWS4-HMAC-SHA256".to_string()),
                (
                    "x-amz-credential",
                    format!("AKIAIOSFODNN7EXAMPLE/{date}/us-east-1/s3/aws4_request"),
                ),
                ("x-amz-date", "20151229T000000Z".to_string()),
                (
                    "x-amz-signature",
                    hex::encode(hmac_sha256(&key, policy.as_bytes())),
                ),
            ];
            let e = verify_form(
                lookup(&fields),
                &principals(),
                "us-east-1",
                SystemTime::now(),
            )
            .unwrap_err();
            assert_eq!(
                e.error.message, "The date of x-amz-credential does not match x-amz-date",
                "{date}"
            );
        }
    }
}
