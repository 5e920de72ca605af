//! The one table of S3 sub-resources (`?tagging`, `?lifecycle`, …): which
//! operation each (level, selector, method) names, in S3's own words, and
//! which IAM action it needs. Operation parsing, SigV2's canonical resource
//! and IAM action mapping all read this table, so they cannot drift apart.
//!
//! Names and actions: the Amazon S3 API Reference ("Actions") and the
//! Service Authorization Reference ("Actions defined by Amazon S3").

/// Whether a sub-resource applies to a bucket (`/bucket?x`) or an object
/// (`/bucket/key?x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Bucket,
    Object,
}

/// One operation on a sub-resource.
#[derive(Debug, PartialEq, Eq)]
pub struct SubOp {
    pub level: Level,
    /// The query parameter that selects the sub-resource.
    pub selector: &'static str,
    pub method: &'static str,
    /// The operation's name in the S3 API reference.
    pub name: &'static str,
    /// The IAM action it needs.
    pub action: &'static str,
    /// The IAM action when the request names a `versionId`.
    pub version_action: Option<&'static str>,
    /// Query parameters the operation defines besides its selector.
    pub params: &'static [&'static str],
    /// Carries a body that must be verified before it completes upstream.
    pub body: bool,
    /// Only matches when `id` is present (`true`) or absent (`false`);
    /// `None`: either. Distinguishes Get…Configuration from List…Configurations.
    pub with_id: Option<bool>,
}

const fn op(
    level: Level,
    selector: &'static str,
    method: &'static str,
    name: &'static str,
    action: &'static str,
) -> SubOp {
    SubOp {
        level,
        selector,
        method,
        name,
        action,
        version_action: None,
        params: &[],
        body: matches!(method.as_bytes(), b"PUT" | b"POST"),
        with_id: None,
    }
}

const fn b(sel: &'static str, m: &'static str, name: &'static str, act: &'static str) -> SubOp {
    op(Level::Bucket, sel, m, name, act)
}

const fn with_id(mut o: SubOp, id: bool) -> SubOp {
    o.with_id = Some(id);
    o.params = if id { &["id"] } else { &["continuation-token"] };
    o
}

const fn versioned(mut o: SubOp, version_action: &'static str) -> SubOp {
    o.version_action = Some(version_action);
    o.params = &["versionId"];
    o
}

const fn o(sel: &'static str, m: &'static str, name: &'static str, act: &'static str) -> SubOp {
    op(Level::Object, sel, m, name, act)
}

/// Every sub-resource operation the gateway names.
#[rustfmt::skip]
pub static TABLE: &[SubOp] = &[
    b("accelerate", "GET", "GetBucketAccelerateConfiguration", "s3:GetAccelerateConfiguration"),
    b("accelerate", "PUT", "PutBucketAccelerateConfiguration", "s3:PutAccelerateConfiguration"),
    b("acl", "GET", "GetBucketAcl", "s3:GetBucketAcl"),
    b("acl", "PUT", "PutBucketAcl", "s3:PutBucketAcl"),
    with_id(b("analytics", "GET", "GetBucketAnalyticsConfiguration", "s3:GetAnalyticsConfiguration"), true),
    with_id(b("analytics", "GET", "ListBucketAnalyticsConfigurations", "s3:GetAnalyticsConfiguration"), false),
    with_id(b("analytics", "PUT", "PutBucketAnalyticsConfiguration", "s3:PutAnalyticsConfiguration"), true),
    with_id(b("analytics", "DELETE", "DeleteBucketAnalyticsConfiguration", "s3:PutAnalyticsConfiguration"), true),
    b("cors", "GET", "GetBucketCors", "s3:GetBucketCORS"),
    b("cors", "PUT", "PutBucketCors", "s3:PutBucketCORS"),
    b("cors", "DELETE", "DeleteBucketCors", "s3:PutBucketCORS"),
    b("encryption", "GET", "GetBucketEncryption", "s3:GetEncryptionConfiguration"),
    b("encryption", "PUT", "PutBucketEncryption", "s3:PutEncryptionConfiguration"),
    b("encryption", "DELETE", "DeleteBucketEncryption", "s3:PutEncryptionConfiguration"),
    with_id(b("intelligent-tiering", "GET", "GetBucketIntelligentTieringConfiguration", "s3:GetIntelligentTieringConfiguration"), true),
    with_id(b("intelligent-tiering", "GET", "ListBucketIntelligentTieringConfigurations", "s3:GetIntelligentTieringConfiguration"), false),
    with_id(b("intelligent-tiering", "PUT", "PutBucketIntelligentTieringConfiguration", "s3:PutIntelligentTieringConfiguration"), true),
    with_id(b("intelligent-tiering", "DELETE", "DeleteBucketIntelligentTieringConfiguration", "s3:PutIntelligentTieringConfiguration"), true),
    with_id(b("inventory", "GET", "GetBucketInventoryConfiguration", "s3:GetInventoryConfiguration"), true),
    with_id(b("inventory", "GET", "ListBucketInventoryConfigurations", "s3:GetInventoryConfiguration"), false),
    with_id(b("inventory", "PUT", "PutBucketInventoryConfiguration", "s3:PutInventoryConfiguration"), true),
    with_id(b("inventory", "DELETE", "DeleteBucketInventoryConfiguration", "s3:PutInventoryConfiguration"), true),
    b("lifecycle", "GET", "GetBucketLifecycleConfiguration", "s3:GetLifecycleConfiguration"),
    b("lifecycle", "PUT", "PutBucketLifecycleConfiguration", "s3:PutLifecycleConfiguration"),
    b("lifecycle", "DELETE", "DeleteBucketLifecycle", "s3:PutLifecycleConfiguration"),
    b("location", "GET", "GetBucketLocation", "s3:GetBucketLocation"),
    b("logging", "GET", "GetBucketLogging", "s3:GetBucketLogging"),
    b("logging", "PUT", "PutBucketLogging", "s3:PutBucketLogging"),
    with_id(b("metrics", "GET", "GetBucketMetricsConfiguration", "s3:GetMetricsConfiguration"), true),
    with_id(b("metrics", "GET", "ListBucketMetricsConfigurations", "s3:GetMetricsConfiguration"), false),
    with_id(b("metrics", "PUT", "PutBucketMetricsConfiguration", "s3:PutMetricsConfiguration"), true),
    with_id(b("metrics", "DELETE", "DeleteBucketMetricsConfiguration", "s3:PutMetricsConfiguration"), true),
    b("notification", "GET", "GetBucketNotificationConfiguration", "s3:GetBucketNotification"),
    b("notification", "PUT", "PutBucketNotificationConfiguration", "s3:PutBucketNotification"),
    b("object-lock", "GET", "GetObjectLockConfiguration", "s3:GetBucketObjectLockConfiguration"),
    b("object-lock", "PUT", "PutObjectLockConfiguration", "s3:PutBucketObjectLockConfiguration"),
    b("ownershipControls", "GET", "GetBucketOwnershipControls", "s3:GetBucketOwnershipControls"),
    b("ownershipControls", "PUT", "PutBucketOwnershipControls", "s3:PutBucketOwnershipControls"),
    b("ownershipControls", "DELETE", "DeleteBucketOwnershipControls", "s3:PutBucketOwnershipControls"),
    b("policy", "GET", "GetBucketPolicy", "s3:GetBucketPolicy"),
    b("policy", "PUT", "PutBucketPolicy", "s3:PutBucketPolicy"),
    b("policy", "DELETE", "DeleteBucketPolicy", "s3:DeleteBucketPolicy"),
    b("policyStatus", "GET", "GetBucketPolicyStatus", "s3:GetBucketPolicyStatus"),
    b("publicAccessBlock", "GET", "GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock"),
    b("publicAccessBlock", "PUT", "PutPublicAccessBlock", "s3:PutBucketPublicAccessBlock"),
    b("publicAccessBlock", "DELETE", "DeletePublicAccessBlock", "s3:PutBucketPublicAccessBlock"),
    b("replication", "GET", "GetBucketReplication", "s3:GetReplicationConfiguration"),
    b("replication", "PUT", "PutBucketReplication", "s3:PutReplicationConfiguration"),
    b("replication", "DELETE", "DeleteBucketReplication", "s3:PutReplicationConfiguration"),
    b("requestPayment", "GET", "GetBucketRequestPayment", "s3:GetBucketRequestPayment"),
    b("requestPayment", "PUT", "PutBucketRequestPayment", "s3:PutBucketRequestPayment"),
    b("tagging", "GET", "GetBucketTagging", "s3:GetBucketTagging"),
    b("tagging", "PUT", "PutBucketTagging", "s3:PutBucketTagging"),
    b("tagging", "DELETE", "DeleteBucketTagging", "s3:PutBucketTagging"),
    b("versioning", "GET", "GetBucketVersioning", "s3:GetBucketVersioning"),
    b("versioning", "PUT", "PutBucketVersioning", "s3:PutBucketVersioning"),
    b("website", "GET", "GetBucketWebsite", "s3:GetBucketWebsite"),
    b("website", "PUT", "PutBucketWebsite", "s3:PutBucketWebsite"),
    b("website", "DELETE", "DeleteBucketWebsite", "s3:DeleteBucketWebsite"),
    versioned(o("acl", "GET", "GetObjectAcl", "s3:GetObjectAcl"), "s3:GetObjectVersionAcl"),
    versioned(o("acl", "PUT", "PutObjectAcl", "s3:PutObjectAcl"), "s3:PutObjectVersionAcl"),
    versioned(o("tagging", "GET", "GetObjectTagging", "s3:GetObjectTagging"), "s3:GetObjectVersionTagging"),
    versioned(o("tagging", "PUT", "PutObjectTagging", "s3:PutObjectTagging"), "s3:PutObjectVersionTagging"),
    versioned(o("tagging", "DELETE", "DeleteObjectTagging", "s3:DeleteObjectTagging"), "s3:DeleteObjectVersionTagging"),
    versioned(o("retention", "GET", "GetObjectRetention", "s3:GetObjectRetention"), "s3:GetObjectRetention"),
    versioned(o("retention", "PUT", "PutObjectRetention", "s3:PutObjectRetention"), "s3:PutObjectRetention"),
    versioned(o("legal-hold", "GET", "GetObjectLegalHold", "s3:GetObjectLegalHold"), "s3:GetObjectLegalHold"),
    versioned(o("legal-hold", "PUT", "PutObjectLegalHold", "s3:PutObjectLegalHold"), "s3:PutObjectLegalHold"),
    o("torrent", "GET", "GetObjectTorrent", "s3:GetObjectTorrent"),
    versioned(o("attributes", "GET", "GetObjectAttributes", "s3:GetObjectAttributes"), "s3:GetObjectVersionAttributes"),
    versioned(o("restore", "POST", "RestoreObject", "s3:RestoreObject"), "s3:RestoreObject"),
    SubOp { params: &["select-type"],
    ..o("select", "POST", "SelectObjectContent", "s3:GetObject") },
];

/// Every selector of a level (parsing refuses a request naming two).
pub fn is_selector(name: &str) -> bool {
    TABLE.iter().any(|s| s.selector == name)
}

/// The sub-resource operation a request names, if its query selects one.
/// `Err(())`: a sub-resource is selected but not with this method.
pub fn find(
    level: Level,
    method: &str,
    has: impl Fn(&str) -> bool,
) -> Option<Result<&'static SubOp, &'static str>> {
    let selector = TABLE
        .iter()
        .find(|s| s.level == level && has(s.selector))?
        .selector;
    let found = TABLE.iter().find(|s| {
        s.level == level
            && s.selector == selector
            && s.method == method
            && s.with_id.is_none_or(|id| id == has("id"))
    });
    Some(found.ok_or(selector))
}

/// Query parameters that are part of SigV2's canonical resource: every
/// selector above plus the multipart and response-override parameters
/// (AWS "Signing and authenticating REST requests", CanonicalizedResource).
pub fn sigv2_subresource(name: &str) -> bool {
    is_selector(name)
        || matches!(
            name,
            "delete"
                | "lifecycle"
                | "partNumber"
                | "uploadId"
                | "uploads"
                | "versionId"
                | "versioning"
                | "versions"
                | "select-type"
                | "response-cache-control"
                | "response-content-disposition"
                | "response-content-encoding"
                | "response-content-language"
                | "response-content-type"
                | "response-expires"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_per_level_selector_method_and_id() {
        for (i, a) in TABLE.iter().enumerate() {
            for bb in &TABLE[i + 1..] {
                assert!(
                    !(a.level == bb.level
                        && a.selector == bb.selector
                        && a.method == bb.method
                        && a.with_id == bb.with_id),
                    "{} and {} collide",
                    a.name,
                    bb.name
                );
            }
        }
    }

    #[test]
    fn finds_by_method_and_id() {
        let q = |names: &'static [&'static str]| move |n: &str| names.contains(&n);
        let f = find(Level::Bucket, "GET", q(&["metrics"]))
            .unwrap()
            .unwrap();
        assert_eq!(f.name, "ListBucketMetricsConfigurations");
        let f = find(Level::Bucket, "GET", q(&["metrics", "id"]))
            .unwrap()
            .unwrap();
        assert_eq!(f.name, "GetBucketMetricsConfiguration");
        assert_eq!(
            find(Level::Bucket, "POST", q(&["cors"])).unwrap(),
            Err("cors")
        );
        assert!(find(Level::Bucket, "GET", q(&["prefix"])).is_none());
        let f = find(Level::Object, "DELETE", q(&["tagging"]))
            .unwrap()
            .unwrap();
        assert_eq!(f.name, "DeleteObjectTagging");
    }
}
