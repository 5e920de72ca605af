//! The `buckets` section: which client-visible buckets go to which
//! upstream, under which name (a bucket, or an access point ARN), with
//! which owner and payer rules.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::diagnostics::{hint, k, Ctx};
use super::{Arn, BucketConfig, ExpectedBucketOwnerRule, RequestPayerRule, UpstreamKind};

/// A bucket name on an upstream that is an access point ARN.
pub(super) struct AccessPoint {
    pub upstream: String,
    pub name: String,
    pub arn: Arn,
}

pub(super) fn buckets(
    cx: &mut Ctx<'_>,
    v: Option<&Value>,
    declared: &[String],
    kinds: &BTreeMap<String, UpstreamKind>,
) -> (BTreeMap<String, BucketConfig>, Vec<AccessPoint>) {
    let buckets: BTreeMap<String, BucketConfig> = cx.map_section("buckets", v);
    let mut access_points = Vec::new();
    if v.is_none() {
        cx.error(
            &[],
            "missing section `buckets` (which buckets clients may use, and where they go)",
        );
    }
    for (name, b) in &buckets {
        let at = |f: &str| [k("buckets"), k(name), k(f)];
        let kind = kinds.get(&b.upstream).copied();
        if let Some(t) = b.target.as_deref().filter(|t| t.starts_with("arn:")) {
            match (Arn::parse(t), kind) {
                (Err(e), _) => cx.error(&at("target"), format!("buckets.{name}.target: {e}")),
                (Ok(Arn::Outposts { .. }), Some(k)) if k != UpstreamKind::Outposts => cx.error(
                    &at("target"),
                    format!(
                        "buckets.{name}.target: an Outposts ARN needs an upstream of kind outposts"
                    ),
                ),
                (Ok(Arn::AccessPoint { .. }), Some(k)) if k != UpstreamKind::Aws => cx.error(
                    &at("target"),
                    format!(
                        "buckets.{name}.target: an access point ARN needs an upstream of kind aws"
                    ),
                ),
                (Ok(arn), _) => access_points.push(AccessPoint {
                    upstream: b.upstream.clone(),
                    name: t.to_string(),
                    arn,
                }),
            }
        } else if kind == Some(UpstreamKind::Outposts) && name != "*" {
            cx.error(&at("target"), format!("buckets.{name}: an outposts upstream is reached through an Outposts access point ARN as `target`"));
        }
        if kind == Some(UpstreamKind::Cos) {
            // IBM COS documents both headers as "ignored by COS if present".
            if b.expected_bucket_owner == ExpectedBucketOwnerRule::Passthrough {
                cx.warn(&at("upstream"), format!("buckets.{name}: COS ignores x-amz-expected-bucket-owner; with `passthrough` no owner check happens — use `enforce` or `require` (with `owner`)"));
            }
            if b.request_payer == RequestPayerRule::Allow {
                cx.warn(&at("upstream"), format!("buckets.{name}: COS ignores x-amz-request-payer; `request_payer: allow` forwards a header nobody checks — use `deny` or `require` to make it a rule"));
            }
        }
        if !declared.contains(&b.upstream) {
            let known: Vec<&str> = declared.iter().map(String::as_str).collect();
            let hint = hint(&b.upstream, &known);
            cx.error(
                &at("upstream"),
                format!(
                    "buckets.{name}: upstream `{}` is not defined in `upstreams`{hint}",
                    b.upstream
                ),
            );
        }
        if name == "*" && b.target.is_some() {
            cx.error(
                &at("target"),
                "buckets.\"*\": the catch-all cannot have a target (each bucket keeps its name)",
            );
        }
        if b.expected_bucket_owner != ExpectedBucketOwnerRule::Passthrough && b.owner.is_none() {
            cx.error(
                &at("expected_bucket_owner"),
                format!(
                    "buckets.{name}: expected_bucket_owner {:?} needs `owner`",
                    b.expected_bucket_owner
                ),
            );
        }
        if let Some(rules) = &b.cors {
            super::cors::check(cx, name, rules);
        }
        if name != "*" && !crate::s3::addressing::valid_bucket_name(name) {
            cx.error(
                &[k("buckets"), k(name)],
                format!("buckets.{name}: not a valid S3 bucket name"),
            );
        }
    }
    (buckets, access_points)
}
