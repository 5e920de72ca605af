//! IAM actions: the ones s3gate knows, and which an operation needs.
//!
//! Mapping as IAM defines it: multipart parts and completion are
//! s3:PutObject; copies also need s3:GetObject on the source; bucket-level
//! actions act on the bucket ARN.

use crate::s3::Operation;

/// Every IAM action an S3 operation of the gateway can need.
pub const KNOWN: &[&str] = &[
    "s3:AbortMultipartUpload",
    "s3:BypassGovernanceRetention",
    "s3:CreateBucket",
    "s3:DeleteBucket",
    "s3:DeleteBucketPolicy",
    "s3:DeleteBucketWebsite",
    "s3:DeleteObject",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectVersionTagging",
    "s3:GetAccelerateConfiguration",
    "s3:GetAnalyticsConfiguration",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketLocation",
    "s3:GetBucketLogging",
    "s3:GetBucketNotification",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:GetBucketPolicyStatus",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketRequestPayment",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetBucketWebsite",
    "s3:GetEncryptionConfiguration",
    "s3:GetIntelligentTieringConfiguration",
    "s3:GetInventoryConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetMetricsConfiguration",
    "s3:GetObject",
    "s3:GetObjectAcl",
    "s3:GetObjectAttributes",
    "s3:GetObjectLegalHold",
    "s3:GetObjectRetention",
    "s3:GetObjectTagging",
    "s3:GetObjectTorrent",
    "s3:GetObjectVersion",
    "s3:GetObjectVersionAcl",
    "s3:GetObjectVersionAttributes",
    "s3:GetObjectVersionTagging",
    "s3:GetReplicationConfiguration",
    "s3:ListAllMyBuckets",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:ListBucketVersions",
    "s3:ListMultipartUploadParts",
    "s3:PutAccelerateConfiguration",
    "s3:PutAnalyticsConfiguration",
    "s3:PutBucketAcl",
    "s3:PutBucketCORS",
    "s3:PutBucketLogging",
    "s3:PutBucketNotification",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPolicy",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketRequestPayment",
    "s3:PutBucketTagging",
    "s3:PutBucketVersioning",
    "s3:PutBucketWebsite",
    "s3:PutEncryptionConfiguration",
    "s3:PutIntelligentTieringConfiguration",
    "s3:PutInventoryConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:PutMetricsConfiguration",
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectLegalHold",
    "s3:PutObjectRetention",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionAcl",
    "s3:PutObjectVersionTagging",
    "s3:PutReplicationConfiguration",
    "s3:RestoreObject",
];

/// The canonical spelling of a known action (IAM action names are
/// case-insensitive).
pub fn canonical(action: &str) -> Option<&'static str> {
    KNOWN
        .iter()
        .copied()
        .find(|k| k.eq_ignore_ascii_case(action))
}

/// One permission a request needs: an action on a resource ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub action: &'static str,
    pub resource: String,
}

pub fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

pub fn object_arn(bucket: &str, key: &str) -> String {
    format!("arn:aws:s3:::{bucket}/{key}")
}

/// What `op` on `bucket`/`key` needs; every need must be allowed.
pub fn needs(op: &Operation, bucket: Option<&str>, key: Option<&str>) -> Vec<Need> {
    use Operation::*;
    let b = bucket.unwrap_or("*");
    let bucket_res = bucket_arn(b);
    let obj = object_arn(b, key.unwrap_or(""));
    let on_bucket = |action| {
        vec![Need {
            action,
            resource: bucket_res.clone(),
        }]
    };
    let on_object = |action| {
        vec![Need {
            action,
            resource: obj.clone(),
        }]
    };
    let with_source = |action, src: &crate::s3::CopySource| {
        let read = if src.version_id.is_some() {
            "s3:GetObjectVersion"
        } else {
            "s3:GetObject"
        };
        vec![
            Need {
                action,
                resource: obj.clone(),
            },
            Need {
                action: read,
                resource: object_arn(&src.bucket, &src.key),
            },
        ]
    };
    match op {
        ListBuckets => vec![Need {
            action: "s3:ListAllMyBuckets",
            resource: "arn:aws:s3:::*".into(),
        }],
        CreateBucket => on_bucket("s3:CreateBucket"),
        DeleteBucket => on_bucket("s3:DeleteBucket"),
        HeadBucket | ListObjects | ListObjectsV2 => on_bucket("s3:ListBucket"),
        ListObjectVersions => on_bucket("s3:ListBucketVersions"),
        ListMultipartUploads => on_bucket("s3:ListBucketMultipartUploads"),
        // The keys are in the body: each is decided on its own
        // (`delete_needs`), and a request with nothing decided is denied.
        DeleteObjects => Vec::new(),
        BucketSub(s) => on_bucket(s.action),
        ObjectSub { sub, version_id } => {
            let mut n = on_object(match (version_id, sub.version_action) {
                (Some(_), Some(v)) => v,
                _ => sub.action,
            });
            // GetObjectAttributes reads the object's metadata: S3 requires
            // s3:GetObject(Version) too — and an upstream that ignores
            // `?attributes` (Garage) returns the object itself.
            if sub.selector == "attributes" {
                n.push(Need {
                    action: if version_id.is_some() {
                        "s3:GetObjectVersion"
                    } else {
                        "s3:GetObject"
                    },
                    resource: obj.clone(),
                });
            }
            n
        }
        GetObject { version_id, .. } | HeadObject { version_id, .. } => {
            on_object(if version_id.is_some() {
                "s3:GetObjectVersion"
            } else {
                "s3:GetObject"
            })
        }
        DeleteObject { version_id } => on_object(if version_id.is_some() {
            "s3:DeleteObjectVersion"
        } else {
            "s3:DeleteObject"
        }),
        PutObject | CreateMultipartUpload | UploadPart { .. } | CompleteMultipartUpload { .. } => {
            on_object("s3:PutObject")
        }
        CopyObject { source } | UploadPartCopy { source, .. } => {
            with_source("s3:PutObject", source)
        }
        AbortMultipartUpload { .. } => on_object("s3:AbortMultipartUpload"),
        ListParts { .. } => on_object("s3:ListMultipartUploadParts"),
    }
}

/// What deleting one key of a DeleteObjects request needs: as for
/// DeleteObject (S3 decides each key of the body on its own).
pub fn delete_needs(
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    headers: &http::HeaderMap,
) -> Vec<Need> {
    let op = Operation::DeleteObject {
        version_id: version_id.map(str::to_string),
    };
    let mut out = needs(&op, Some(bucket), Some(key));
    out.extend(header_needs(&op, headers, Some(bucket), Some(key)));
    out
}

/// Headers that ask for more than the operation itself: S3 checks these
/// permissions too, and the gateway's own credentials would otherwise grant
/// them.
pub fn header_needs(
    op: &Operation,
    headers: &http::HeaderMap,
    bucket: Option<&str>,
    key: Option<&str>,
) -> Vec<Need> {
    use Operation::*;
    let has = |n: &str| headers.contains_key(n);
    let obj = object_arn(bucket.unwrap_or("*"), key.unwrap_or(""));
    let mut out = Vec::new();
    if let CreateBucket = op {
        // CreateBucket headers that configure more than the bucket (AWS:
        // "CreateBucket" permissions).
        let bucket_res = bucket_arn(bucket.unwrap_or("*"));
        let mut on_bucket = |action| {
            out.push(Need {
                action,
                resource: bucket_res.clone(),
            })
        };
        if has("x-amz-acl")
            || headers
                .keys()
                .any(|n| n.as_str().starts_with("x-amz-grant-"))
        {
            on_bucket("s3:PutBucketAcl");
        }
        if has("x-amz-object-ownership") {
            on_bucket("s3:PutBucketOwnershipControls");
        }
        if headers
            .get("x-amz-bucket-object-lock-enabled")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            on_bucket("s3:PutBucketObjectLockConfiguration");
            on_bucket("s3:PutBucketVersioning");
        }
        return out;
    }
    let mut need = |action| {
        out.push(Need {
            action,
            resource: obj.clone(),
        })
    };
    if headers
        .get("x-amz-bypass-governance-retention")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        need("s3:BypassGovernanceRetention");
    }
    if matches!(op, PutObject | CopyObject { .. } | CreateMultipartUpload) {
        if has("x-amz-object-lock-mode") || has("x-amz-object-lock-retain-until-date") {
            need("s3:PutObjectRetention");
        }
        if has("x-amz-object-lock-legal-hold") {
            need("s3:PutObjectLegalHold");
        }
        if has("x-amz-tagging") {
            need("s3:PutObjectTagging");
        }
        if has("x-amz-acl")
            || headers
                .keys()
                .any(|n| n.as_str().starts_with("x-amz-grant-"))
        {
            need("s3:PutObjectAcl");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::CopySource;

    #[test]
    fn multipart_mapping_as_iam_defines_it() {
        let n = needs(
            &Operation::UploadPart {
                upload_id: "u".into(),
                part_number: 1,
            },
            Some("b"),
            Some("k"),
        );
        assert_eq!(
            n,
            vec![Need {
                action: "s3:PutObject",
                resource: "arn:aws:s3:::b/k".into()
            }]
        );
        let src = CopySource {
            bucket: "s".into(),
            key: "a".into(),
            version_id: None,
        };
        let n = needs(
            &Operation::UploadPartCopy {
                upload_id: "u".into(),
                part_number: 1,
                source: src,
            },
            Some("b"),
            Some("k"),
        );
        assert_eq!(
            n[1],
            Need {
                action: "s3:GetObject",
                resource: "arn:aws:s3:::s/a".into()
            }
        );
        assert_eq!(
            needs(&Operation::ListMultipartUploads, Some("b"), None)[0].resource,
            "arn:aws:s3:::b"
        );
        assert_eq!(
            needs(
                &Operation::AbortMultipartUpload {
                    upload_id: "u".into()
                },
                Some("b"),
                Some("k")
            )[0]
            .action,
            "s3:AbortMultipartUpload"
        );
        assert_eq!(
            needs(
                &Operation::ListParts {
                    upload_id: "u".into()
                },
                Some("b"),
                Some("k")
            )[0]
            .action,
            "s3:ListMultipartUploadParts"
        );
        let mut h = http::HeaderMap::new();
        h.insert("x-amz-bypass-governance-retention", "true".parse().unwrap());
        h.insert("x-amz-tagging", "a=b".parse().unwrap());
        h.insert("x-amz-grant-read", "id=x".parse().unwrap());
        let extra: Vec<&str> = header_needs(&Operation::PutObject, &h, Some("b"), Some("k"))
            .iter()
            .map(|n| n.action)
            .collect();
        assert_eq!(
            extra,
            vec![
                "s3:BypassGovernanceRetention",
                "s3:PutObjectTagging",
                "s3:PutObjectAcl"
            ]
        );
        for a in KNOWN {
            assert_eq!(canonical(&a.to_ascii_lowercase()), Some(*a));
        }
    }

    #[test]
    fn every_sub_resource_action_is_known() {
        for s in crate::s3::subresource::TABLE {
            assert!(canonical(s.action).is_some(), "{}", s.action);
            if let Some(v) = s.version_action {
                assert!(canonical(v).is_some(), "{v}");
            }
        }
    }
}

#[cfg(test)]
mod create_bucket_tests {
    use super::*;

    #[test]
    fn get_object_attributes_needs_get_object_too() {
        let a = crate::s3::subresource::TABLE
            .iter()
            .find(|s| s.name == "GetObjectAttributes")
            .unwrap();
        let op = Operation::ObjectSub {
            sub: a,
            version_id: None,
        };
        let got: Vec<&str> = needs(&op, Some("b"), Some("k"))
            .iter()
            .map(|n| n.action)
            .collect();
        assert_eq!(got, vec!["s3:GetObjectAttributes", "s3:GetObject"]);
    }

    #[test]
    fn create_bucket_headers_need_their_permissions() {
        let mut h = http::HeaderMap::new();
        h.insert("x-amz-acl", "public-read".parse().unwrap());
        h.insert("x-amz-object-ownership", "ObjectWriter".parse().unwrap());
        h.insert("x-amz-bucket-object-lock-enabled", "true".parse().unwrap());
        let got: Vec<&str> = header_needs(&Operation::CreateBucket, &h, Some("b"), None)
            .iter()
            .map(|n| n.action)
            .collect();
        assert_eq!(
            got,
            vec![
                "s3:PutBucketAcl",
                "s3:PutBucketOwnershipControls",
                "s3:PutBucketObjectLockConfiguration",
                "s3:PutBucketVersioning"
            ]
        );
    }
}

#[cfg(test)]
mod version_and_header_tests {
    use super::*;

    fn sub(name: &str) -> &'static crate::s3::subresource::SubOp {
        crate::s3::subresource::TABLE
            .iter()
            .find(|s| s.name == name)
            .unwrap()
    }

    fn actions(n: &[Need]) -> Vec<&'static str> {
        n.iter().map(|n| n.action).collect()
    }

    /// IAM: a sub-resource on a specific version needs the Version action
    /// (GetObjectVersionTagging), the plain one otherwise.
    #[test]
    fn a_versioned_sub_resource_needs_the_version_action() {
        let op = |version_id: Option<&str>| Operation::ObjectSub {
            sub: sub("GetObjectTagging"),
            version_id: version_id.map(str::to_string),
        };
        assert_eq!(
            needs(&op(Some("v1")), Some("b"), Some("k")),
            vec![Need {
                action: "s3:GetObjectVersionTagging",
                resource: "arn:aws:s3:::b/k".into()
            }]
        );
        assert_eq!(
            actions(&needs(&op(None), Some("b"), Some("k"))),
            ["s3:GetObjectTagging"]
        );
    }

    /// Each key of a DeleteObjects body is decided as a DeleteObject of
    /// that key: DeleteObjectVersion with a VersionId, and the headers'
    /// extra permissions (governance bypass) on the same key.
    #[test]
    fn each_key_of_a_multi_delete_needs_what_delete_object_needs() {
        let none = http::HeaderMap::new();
        assert_eq!(
            delete_needs("b", "a/k", None, &none),
            vec![Need {
                action: "s3:DeleteObject",
                resource: "arn:aws:s3:::b/a/k".into()
            }]
        );
        let mut h = http::HeaderMap::new();
        h.insert("x-amz-bypass-governance-retention", "TRUE".parse().unwrap());
        assert_eq!(
            delete_needs("b", "k", Some("v1"), &h),
            vec![
                Need {
                    action: "s3:DeleteObjectVersion",
                    resource: "arn:aws:s3:::b/k".into()
                },
                Need {
                    action: "s3:BypassGovernanceRetention",
                    resource: "arn:aws:s3:::b/k".into()
                }
            ]
        );
    }

    /// Any one of the headers asks for its permission: a canned ACL alone,
    /// a grant alone, a lock mode or a retain-until date alone.
    #[test]
    fn each_permission_header_alone_needs_its_permission() {
        let one = |op: &Operation, name: &'static str, value: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(name, value.parse().unwrap());
            actions(&header_needs(op, &h, Some("b"), Some("k")))
        };
        let put = Operation::PutObject;
        assert_eq!(one(&put, "x-amz-acl", "private"), ["s3:PutObjectAcl"]);
        assert_eq!(one(&put, "x-amz-grant-read", "id=x"), ["s3:PutObjectAcl"]);
        assert_eq!(
            one(&put, "x-amz-object-lock-mode", "GOVERNANCE"),
            ["s3:PutObjectRetention"]
        );
        assert_eq!(
            one(
                &put,
                "x-amz-object-lock-retain-until-date",
                "2030-01-01T00:00:00Z"
            ),
            ["s3:PutObjectRetention"]
        );
        assert_eq!(
            one(&put, "x-amz-object-lock-legal-hold", "ON"),
            ["s3:PutObjectLegalHold"]
        );
        assert_eq!(
            one(&Operation::CreateBucket, "x-amz-grant-write", "id=x"),
            ["s3:PutBucketAcl"]
        );
        // Headers that configure nothing ask for nothing more, and an
        // ACL header on a read is not a write of the ACL.
        assert!(one(&put, "x-amz-bypass-governance-retention", "false").is_empty());
        let get = Operation::GetObject {
            version_id: None,
            part_number: None,
        };
        assert!(one(&get, "x-amz-acl", "private").is_empty());
    }
}
