//! Bucket rules from the gateway config: `expected_bucket_owner` and
//! `request_payer`. `enforce` is what makes owner checks real on upstreams
//! that ignore the header (COS, Garage, moto).

use http::HeaderMap;

use crate::config::{BucketConfig, ExpectedBucketOwnerRule, RequestPayerRule};
use crate::s3::{err, Operation, S3ErrorCode, S3Result};

/// What the rules decided to do to the upstream request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RuleActions {
    /// Add `x-amz-expected-bucket-owner` with this value.
    pub inject_owner: Option<String>,
}

fn denied(msg: &str) -> crate::s3::S3Error {
    err(S3ErrorCode::AccessDenied, msg.to_string())
}

/// Apply the bucket's rules, and the copy source bucket's owner rule.
pub fn apply(
    op: &Operation,
    headers: &HeaderMap,
    payer: Option<&str>,
    rules: &BucketConfig,
    source_rules: Option<&BucketConfig>,
) -> S3Result<RuleActions> {
    let mut actions = RuleActions::default();
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    // S3 ignores the header on CreateBucket and ListBuckets.
    if !matches!(op, Operation::CreateBucket | Operation::ListBuckets) {
        let sent = header("x-amz-expected-bucket-owner");
        actions.inject_owner = owner_rule(rules, sent, "x-amz-expected-bucket-owner")?;
        if let Some(src) = source_rules {
            let sent = header("x-amz-source-expected-bucket-owner");
            // Injection applies to the destination only.
            owner_rule(src, sent, "x-amz-source-expected-bucket-owner")?;
        }
    }
    match (rules.request_payer, payer) {
        (RequestPayerRule::Deny, Some(_)) => {
            return Err(denied(
                "Requester-pays requests are not allowed on this bucket by the gateway",
            ))
        }
        (RequestPayerRule::Require, None) => {
            return Err(denied(
                "This bucket requires x-amz-request-payer: requester",
            ))
        }
        _ => {}
    }
    Ok(actions)
}

fn owner_rule(rules: &BucketConfig, sent: Option<&str>, name: &str) -> S3Result<Option<String>> {
    let owner = rules.owner.as_deref();
    match (rules.expected_bucket_owner, sent, owner) {
        (ExpectedBucketOwnerRule::Passthrough, _, _) => Ok(None),
        (ExpectedBucketOwnerRule::Require, None, _) => {
            Err(denied(&format!("This bucket requires the {name} header")))
        }
        (ExpectedBucketOwnerRule::Enforce | ExpectedBucketOwnerRule::Require, Some(s), Some(o))
            if s != o =>
        {
            Err(denied("Access Denied"))
        }
        (ExpectedBucketOwnerRule::Inject, None, Some(o)) => Ok(Some(o.to_string())),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(owner_rule: ExpectedBucketOwnerRule, payer: RequestPayerRule) -> BucketConfig {
        BucketConfig {
            upstream: "u".into(),
            target: None,
            owner: Some("111122223333".into()),
            expected_bucket_owner: owner_rule,
            request_payer: payer,
            cors: None,
            abort_incomplete_after: None,
        }
    }

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    #[test]
    fn owner_rules() {
        let q: Option<&str> = None;
        let op = Operation::PutObject;
        let enforce = rules(ExpectedBucketOwnerRule::Enforce, RequestPayerRule::Allow);
        assert!(apply(
            &op,
            &h(&[("x-amz-expected-bucket-owner", "999")]),
            q,
            &enforce,
            None
        )
        .is_err());
        assert!(apply(
            &op,
            &h(&[("x-amz-expected-bucket-owner", "111122223333")]),
            q,
            &enforce,
            None
        )
        .is_ok());
        assert!(apply(&op, &h(&[]), q, &enforce, None).is_ok());
        let require = rules(ExpectedBucketOwnerRule::Require, RequestPayerRule::Allow);
        assert!(apply(&op, &h(&[]), q, &require, None).is_err());
        let inject = rules(ExpectedBucketOwnerRule::Inject, RequestPayerRule::Allow);
        assert_eq!(
            apply(&op, &h(&[]), q, &inject, None)
                .unwrap()
                .inject_owner
                .as_deref(),
            Some("111122223333")
        );
        // Copies: the source bucket's rule applies to the source header.
        assert!(apply(
            &op,
            &h(&[("x-amz-source-expected-bucket-owner", "999")]),
            q,
            &inject,
            Some(&enforce)
        )
        .is_err());
    }

    #[test]
    fn payer_rules() {
        let q: Option<&str> = None;
        let op = Operation::GetObject {
            version_id: None,
            part_number: None,
        };
        let deny = rules(ExpectedBucketOwnerRule::Passthrough, RequestPayerRule::Deny);
        assert!(apply(
            &op,
            &h(&[("x-amz-request-payer", "requester")]),
            Some("requester"),
            &deny,
            None
        )
        .is_err());
        assert!(apply(&op, &h(&[]), q, &deny, None).is_ok());
        let require = rules(
            ExpectedBucketOwnerRule::Passthrough,
            RequestPayerRule::Require,
        );
        assert!(apply(&op, &h(&[]), q, &require, None).is_err());
        assert!(apply(
            &op,
            &h(&[("x-amz-request-payer", "requester")]),
            Some("requester"),
            &require,
            None
        )
        .is_ok());
    }
}
