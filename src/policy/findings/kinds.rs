//! What an action acts on (the service, a bucket, an object) and which
//! operation-specific condition keys a request for it can carry: the facts
//! the findings read, derived from the same tables the decisions use.

use crate::policy::actions::KNOWN;
use crate::policy::glob;
use crate::s3::subresource::{Level, TABLE};

/// The kind of resource ARN an action is decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// `arn:aws:s3:::*` (ListAllMyBuckets).
    Service,
    /// `arn:aws:s3:::bucket`.
    Bucket,
    /// `arn:aws:s3:::bucket/key`.
    Object,
}

impl ResourceKind {
    pub fn example(self) -> &'static str {
        match self {
            ResourceKind::Service => "arn:aws:s3:::*",
            ResourceKind::Bucket => "arn:aws:s3:::BUCKET",
            ResourceKind::Object => "arn:aws:s3:::BUCKET/KEY-PATTERN",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::Service => "the service (arn:aws:s3:::*)",
            ResourceKind::Bucket => "a bucket ARN",
            ResourceKind::Object => "an object ARN",
        }
    }
}

/// Object actions of operations that are not sub-resources (`actions::needs`).
const OBJECT_ACTIONS: &[&str] = &[
    "s3:AbortMultipartUpload",
    "s3:BypassGovernanceRetention",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
];

/// The resource kind of a known action (canonical spelling).
pub fn action_kind(action: &str) -> ResourceKind {
    if action == "s3:ListAllMyBuckets" {
        return ResourceKind::Service;
    }
    let object_sub = TABLE
        .iter()
        .filter(|s| s.level == Level::Object)
        .any(|s| s.action == action || s.version_action == Some(action));
    if object_sub || OBJECT_ACTIONS.contains(&action) {
        ResourceKind::Object
    } else {
        ResourceKind::Bucket
    }
}

/// Whether a Resource pattern can match some ARN of `kind`.
pub fn pattern_reaches(pattern: &str, kind: ResourceKind) -> bool {
    if pattern == "*" {
        return true;
    }
    let rest = pattern.strip_prefix("arn:aws:s3:::").unwrap_or(pattern);
    match kind {
        ResourceKind::Service => glob::matches(pattern, "arn:aws:s3:::*"),
        ResourceKind::Bucket => !rest.contains('/'),
        // `*` also matches `/`: `arn:aws:s3:::logs*` reaches `logs/x`.
        ResourceKind::Object => rest.contains('/') || rest.contains('*'),
    }
}

/// The actions whose requests can carry an operation-specific condition
/// key (lower-cased), or None for a key any request may carry (headers,
/// connection facts, the principal).
pub fn key_carriers(key: &str) -> Option<Vec<&'static str>> {
    let list: Vec<&'static str> = match key {
        // policy/context.rs: only listings set them.
        "s3:prefix" | "s3:delimiter" | "s3:max-keys" => vec![
            "s3:ListBucket",
            "s3:ListBucketVersions",
            "s3:ListBucketMultipartUploads",
        ],
        // Operations on an upload: UploadPart(Copy), Complete, Abort,
        // ListParts; UploadPartCopy also needs s3:GetObject(Version).
        "s3gate:multipartinitiator" => vec![
            "s3:PutObject",
            "s3:GetObject",
            "s3:GetObjectVersion",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
        ],
        "s3gate:partnumber" => vec!["s3:PutObject", "s3:GetObject", "s3:GetObjectVersion"],
        // A request naming a version is decided on the version action.
        "s3:versionid" => {
            let mut v = vec![
                "s3:GetObjectVersion",
                "s3:DeleteObjectVersion",
                "s3:BypassGovernanceRetention",
            ];
            for s in TABLE.iter().filter(|s| s.level == Level::Object) {
                v.push(s.version_action.unwrap_or(s.action));
            }
            v
        }
        _ => return None,
    };
    Some(list)
}

/// The known actions a statement's action patterns name.
pub fn expand(matches: impl Fn(&str) -> bool) -> Vec<&'static str> {
    KNOWN.iter().copied().filter(|a| matches(a)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::actions::{canonical, needs};
    use crate::s3::Operation;

    /// The kinds agree with the resources `actions::needs` decides on.
    #[test]
    fn kinds_agree_with_needs() {
        let bucket = "arn:aws:s3:::b";
        for s in TABLE {
            let op = match s.level {
                Level::Bucket => Operation::BucketSub(s),
                Level::Object => Operation::ObjectSub {
                    sub: s,
                    version_id: Some("v".into()),
                },
            };
            for n in needs(&op, Some("b"), Some("k")) {
                let want = if n.resource == bucket {
                    ResourceKind::Bucket
                } else {
                    ResourceKind::Object
                };
                assert_eq!(action_kind(n.action), want, "{}", n.action);
            }
        }
        for op in [
            Operation::ListObjects,
            Operation::ListMultipartUploads,
            Operation::ListObjectVersions,
            Operation::CreateBucket,
        ] {
            for n in needs(&op, Some("b"), None) {
                assert_eq!(action_kind(n.action), ResourceKind::Bucket);
            }
        }
        assert_eq!(action_kind("s3:ListAllMyBuckets"), ResourceKind::Service);
        for a in OBJECT_ACTIONS {
            assert!(canonical(a).is_some(), "{a}");
        }
    }

    #[test]
    fn patterns_reach_kinds() {
        let o = ResourceKind::Object;
        let b = ResourceKind::Bucket;
        assert!(pattern_reaches("arn:aws:s3:::b/*", o));
        assert!(!pattern_reaches("arn:aws:s3:::b/*", b));
        assert!(pattern_reaches("arn:aws:s3:::b", b));
        assert!(!pattern_reaches("arn:aws:s3:::b", o));
        assert!(pattern_reaches("arn:aws:s3:::b*", o));
        assert!(pattern_reaches("*", ResourceKind::Service));
        assert!(!pattern_reaches("arn:aws:s3:::b", ResourceKind::Service));
    }

    #[test]
    fn key_carriers_are_known_actions() {
        for k in [
            "s3:prefix",
            "s3gate:multipartinitiator",
            "s3gate:partnumber",
            "s3:versionid",
        ] {
            for a in key_carriers(k).unwrap() {
                assert!(canonical(a).is_some(), "{a}");
            }
        }
        assert!(key_carriers("aws:sourceip").is_none());
    }
}
