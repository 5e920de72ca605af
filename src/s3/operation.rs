//! Every request is named as an S3 operation before anything else happens.
//! A request the gateway cannot name is refused (501), never forwarded
//! unchecked.

use super::addressing::Addressed;
use super::error::{err, S3ErrorCode, S3Result};
use super::uri::{decode_path, Query};

/// The source of a copy (`x-amz-copy-source`), as the client named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

/// S3 operations, with the parameters that identify what they act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    ListBuckets,
    // Bucket level.
    CreateBucket,
    DeleteBucket,
    HeadBucket,
    ListObjects,
    ListObjectsV2,
    ListObjectVersions,
    ListMultipartUploads,
    DeleteObjects,
    GetBucketSubresource {
        sub: &'static str,
    },
    PutBucketSubresource {
        sub: &'static str,
    },
    DeleteBucketSubresource {
        sub: &'static str,
    },
    // Object level.
    GetObject {
        version_id: Option<String>,
    },
    HeadObject {
        version_id: Option<String>,
    },
    PutObject,
    CopyObject {
        source: CopySource,
    },
    DeleteObject {
        version_id: Option<String>,
    },
    GetObjectAttributes,
    RestoreObject,
    SelectObjectContent,
    GetObjectSubresource {
        sub: &'static str,
    },
    PutObjectSubresource {
        sub: &'static str,
    },
    DeleteObjectSubresource {
        sub: &'static str,
    },
    // Multipart.
    CreateMultipartUpload,
    UploadPart {
        upload_id: String,
        part_number: u16,
    },
    UploadPartCopy {
        upload_id: String,
        part_number: u16,
        source: CopySource,
    },
    CompleteMultipartUpload {
        upload_id: String,
    },
    AbortMultipartUpload {
        upload_id: String,
    },
    ListParts {
        upload_id: String,
    },
}

const BUCKET_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "tagging",
    "versioning",
    "website",
];

const OBJECT_SUBRESOURCES: &[&str] = &["acl", "tagging", "retention", "legal-hold", "torrent"];

impl Operation {
    /// Name the operation of a request.
    pub fn parse(
        method: &str,
        addr: &Addressed,
        query: &Query,
        copy_source: Option<&str>,
    ) -> S3Result<Operation> {
        check_unambiguous(query)?;
        let op = Self::parse_named(method, addr, query, copy_source)?;
        // A copy source on anything but a copy would be forwarded (and
        // vouched for by our signature) without being routed or decided.
        if copy_source.is_some() && op.copy_source().is_none() {
            return Err(err(
                S3ErrorCode::InvalidRequest,
                format!(
                    "x-amz-copy-source is only valid on CopyObject and UploadPartCopy, not on {}",
                    op.name()
                ),
            ));
        }
        Ok(op)
    }

    fn parse_named(
        method: &str,
        addr: &Addressed,
        query: &Query,
        copy_source: Option<&str>,
    ) -> S3Result<Operation> {
        use Operation::*;
        let Some(bucket) = &addr.bucket else {
            return match method {
                "GET" => Ok(ListBuckets),
                _ => Err(not_implemented(method, "/")),
            };
        };
        if addr.key.is_none() {
            return Self::parse_bucket(method, query)
                .ok_or_else(|| not_implemented(method, bucket));
        }
        let upload_id = query.get("uploadId").map(str::to_string);
        let version_id = query.get("versionId").map(str::to_string);
        let part_number = match query.get("partNumber") {
            Some(p) => Some(parse_part_number(p)?),
            None => None,
        };
        let op = match (method, upload_id, part_number) {
            ("PUT", Some(upload_id), Some(part_number)) => match copy_source {
                Some(src) => UploadPartCopy {
                    upload_id,
                    part_number,
                    source: parse_copy_source(src)?,
                },
                None => UploadPart {
                    upload_id,
                    part_number,
                },
            },
            ("POST", Some(upload_id), None) => CompleteMultipartUpload { upload_id },
            ("DELETE", Some(upload_id), None) => AbortMultipartUpload { upload_id },
            ("GET", Some(upload_id), None) => ListParts { upload_id },
            (_, Some(_), _) => return Err(not_implemented(method, bucket)),
            ("POST", None, _) if query.has("uploads") => CreateMultipartUpload,
            ("POST", None, _) if query.has("restore") => RestoreObject,
            ("POST", None, _) if query.has("select") => SelectObjectContent,
            ("GET", None, _) if query.has("attributes") => GetObjectAttributes,
            (m, None, _) if object_sub(query).is_some() => {
                let sub = object_sub(query).unwrap_or_default();
                match m {
                    "GET" => GetObjectSubresource { sub },
                    "PUT" => PutObjectSubresource { sub },
                    "DELETE" => DeleteObjectSubresource { sub },
                    _ => return Err(not_implemented(method, bucket)),
                }
            }
            ("GET", None, _) => GetObject { version_id },
            ("HEAD", None, _) => HeadObject { version_id },
            ("PUT", None, _) => match copy_source {
                Some(src) => CopyObject {
                    source: parse_copy_source(src)?,
                },
                None => PutObject,
            },
            ("DELETE", None, _) => DeleteObject { version_id },
            _ => return Err(not_implemented(method, bucket)),
        };
        Ok(op)
    }

    fn parse_bucket(method: &str, query: &Query) -> Option<Operation> {
        use Operation::*;
        let sub = BUCKET_SUBRESOURCES.iter().copied().find(|s| query.has(s));
        Some(match (method, sub) {
            ("GET", None) if query.has("uploads") => ListMultipartUploads,
            ("GET", None) if query.has("versions") => ListObjectVersions,
            ("GET", None) if query.get("list-type") == Some("2") => ListObjectsV2,
            ("GET", None) => ListObjects,
            ("HEAD", None) => HeadBucket,
            ("PUT", None) => CreateBucket,
            ("DELETE", None) => DeleteBucket,
            ("POST", None) if query.has("delete") => DeleteObjects,
            ("GET", Some(sub)) => GetBucketSubresource { sub },
            ("PUT", Some(sub)) => PutBucketSubresource { sub },
            ("DELETE", Some(sub)) => DeleteBucketSubresource { sub },
            _ => return None,
        })
    }

    /// The operation's name as S3's API reference spells it.
    pub fn name(&self) -> &'static str {
        use Operation::*;
        match self {
            ListBuckets => "ListBuckets",
            CreateBucket => "CreateBucket",
            DeleteBucket => "DeleteBucket",
            HeadBucket => "HeadBucket",
            ListObjects => "ListObjects",
            ListObjectsV2 => "ListObjectsV2",
            ListObjectVersions => "ListObjectVersions",
            ListMultipartUploads => "ListMultipartUploads",
            DeleteObjects => "DeleteObjects",
            GetBucketSubresource { .. } => "GetBucketSubresource",
            PutBucketSubresource { .. } => "PutBucketSubresource",
            DeleteBucketSubresource { .. } => "DeleteBucketSubresource",
            GetObject { .. } => "GetObject",
            HeadObject { .. } => "HeadObject",
            PutObject => "PutObject",
            CopyObject { .. } => "CopyObject",
            DeleteObject { .. } => "DeleteObject",
            GetObjectAttributes => "GetObjectAttributes",
            RestoreObject => "RestoreObject",
            SelectObjectContent => "SelectObjectContent",
            GetObjectSubresource { .. } => "GetObjectSubresource",
            PutObjectSubresource { .. } => "PutObjectSubresource",
            DeleteObjectSubresource { .. } => "DeleteObjectSubresource",
            CreateMultipartUpload => "CreateMultipartUpload",
            UploadPart { .. } => "UploadPart",
            UploadPartCopy { .. } => "UploadPartCopy",
            CompleteMultipartUpload { .. } => "CompleteMultipartUpload",
            AbortMultipartUpload { .. } => "AbortMultipartUpload",
            ListParts { .. } => "ListParts",
        }
    }

    /// Whether the request carries a body that becomes stored data or a
    /// document (and so must be verified before it completes upstream).
    pub fn has_request_body(&self) -> bool {
        use Operation::*;
        matches!(
            self,
            PutObject
                | UploadPart { .. }
                | CompleteMultipartUpload { .. }
                | DeleteObjects
                | PutBucketSubresource { .. }
                | PutObjectSubresource { .. }
                | CreateBucket
                | RestoreObject
                | SelectObjectContent
        )
    }

    pub fn copy_source(&self) -> Option<&CopySource> {
        match self {
            Operation::CopyObject { source } | Operation::UploadPartCopy { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}

/// Query parameters that choose the operation. Upstreams disagree on which
/// wins when several are present, so a request naming more than one (or any
/// parameter twice) is refused: the operation decided here must be the one
/// the upstream runs.
fn check_unambiguous(query: &Query) -> S3Result<()> {
    let mut seen = std::collections::HashSet::new();
    for p in &query.params {
        if !seen.insert(p.name.as_str()) {
            return Err(err(
                S3ErrorCode::InvalidArgument,
                format!("The query parameter {} appears more than once", p.name),
            ));
        }
    }
    const SELECTORS: &[&str] = &[
        "uploads",
        "uploadId",
        "attributes",
        "restore",
        "select",
        "delete",
        "versions",
        "list-type",
    ];
    let chosen: Vec<&str> = query
        .params
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| {
            SELECTORS.contains(n)
                || BUCKET_SUBRESOURCES.contains(n)
                || OBJECT_SUBRESOURCES.contains(n)
        })
        .collect();
    if chosen.len() > 1 {
        return Err(err(
            S3ErrorCode::InvalidRequest,
            format!(
                "The request names more than one sub-resource ({}); send one per request",
                chosen.join(", ")
            ),
        ));
    }
    Ok(())
}

fn object_sub(query: &Query) -> Option<&'static str> {
    OBJECT_SUBRESOURCES.iter().copied().find(|s| query.has(s))
}

fn not_implemented(method: &str, resource: &str) -> crate::s3::error::S3Error {
    err(
        S3ErrorCode::NotImplemented,
        format!("s3gate does not implement this request ({method} with these parameters)"),
    )
    .with_resource(resource.to_string())
}

fn parse_part_number(p: &str) -> S3Result<u16> {
    match p.parse::<u16>() {
        Ok(n) if (1..=10_000).contains(&n) => Ok(n),
        _ => Err(err(
            S3ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        )),
    }
}

/// `x-amz-copy-source: [/]bucket/key[?versionId=...]`, URL-encoded.
pub fn parse_copy_source(raw: &str) -> S3Result<CopySource> {
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    let bad = || {
        err(
            S3ErrorCode::InvalidArgument,
            "Invalid copy source: expected bucket/key",
        )
    };
    let path = decode_path(path).ok_or_else(bad)?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    let (bucket, key) = path.split_once('/').ok_or_else(bad)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(bad());
    }
    let version_id = Query::parse(query)
        .ok_or_else(bad)?
        .get("versionId")
        .map(str::to_string);
    Ok(CopySource {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::addressing::address;

    fn op(method: &str, path: &str, query: &str, copy: Option<&str>) -> S3Result<Operation> {
        let a = address(Some("localhost"), path, &[]).unwrap();
        let q = Query::parse(Some(query)).unwrap();
        Operation::parse(method, &a, &q, copy)
    }

    // Examples from the S3 API reference, one per operation.
    #[test]
    fn multipart_operations() {
        use Operation::*;
        assert_eq!(
            op("POST", "/bkt/k", "uploads", None).unwrap(),
            CreateMultipartUpload
        );
        assert_eq!(
            op(
                "PUT",
                "/bkt/k",
                "partNumber=3&uploadId=U1&x-id=UploadPart",
                None
            )
            .unwrap(),
            UploadPart {
                upload_id: "U1".into(),
                part_number: 3
            }
        );
        assert!(matches!(
            op("PUT", "/bkt/k", "partNumber=1&uploadId=U1", Some("/src/a%20b?versionId=v1")).unwrap(),
            UploadPartCopy { source: CopySource { ref key, ref version_id, .. }, .. }
                if key == "a b" && version_id.as_deref() == Some("v1")
        ));
        assert_eq!(
            op("POST", "/bkt/k", "uploadId=U1", None).unwrap(),
            CompleteMultipartUpload {
                upload_id: "U1".into()
            }
        );
        assert_eq!(
            op("DELETE", "/bkt/k", "uploadId=U1", None).unwrap(),
            AbortMultipartUpload {
                upload_id: "U1".into()
            }
        );
        assert_eq!(
            op("GET", "/bkt/k", "uploadId=U1&max-parts=2", None).unwrap(),
            ListParts {
                upload_id: "U1".into()
            }
        );
        assert_eq!(
            op("GET", "/bkt", "uploads&prefix=x", None).unwrap(),
            ListMultipartUploads
        );
    }

    #[test]
    fn object_and_bucket_operations() {
        use Operation::*;
        assert_eq!(op("GET", "/", "", None).unwrap(), ListBuckets);
        assert_eq!(
            op("GET", "/bkt", "list-type=2", None).unwrap(),
            ListObjectsV2
        );
        assert_eq!(op("GET", "/bkt/", "", None).unwrap(), ListObjects);
        assert_eq!(
            op("GET", "/bkt", "versions", None).unwrap(),
            ListObjectVersions
        );
        assert_eq!(op("HEAD", "/bkt", "", None).unwrap(), HeadBucket);
        assert_eq!(op("PUT", "/bkt", "", None).unwrap(), CreateBucket);
        assert_eq!(op("DELETE", "/bkt", "", None).unwrap(), DeleteBucket);
        assert_eq!(op("POST", "/bkt", "delete", None).unwrap(), DeleteObjects);
        assert_eq!(
            op("GET", "/bkt", "tagging", None).unwrap(),
            GetBucketSubresource { sub: "tagging" }
        );
        assert_eq!(
            op("GET", "/bkt/k", "", None).unwrap(),
            GetObject { version_id: None }
        );
        assert_eq!(
            op("HEAD", "/bkt/k", "versionId=3", None).unwrap(),
            HeadObject {
                version_id: Some("3".into())
            }
        );
        assert_eq!(op("PUT", "/bkt/k", "", None).unwrap(), PutObject);
        assert!(matches!(
            op("PUT", "/bkt/k", "", Some("s/k")).unwrap(),
            CopyObject { .. }
        ));
        assert_eq!(
            op("DELETE", "/bkt/k", "", None).unwrap(),
            DeleteObject { version_id: None }
        );
        assert_eq!(
            op("GET", "/bkt/k", "attributes", None).unwrap(),
            GetObjectAttributes
        );
        assert_eq!(
            op("PUT", "/bkt/k", "acl", None).unwrap(),
            PutObjectSubresource { sub: "acl" }
        );
        assert_eq!(
            op("GET", "/bkt/k", "tagging", None).unwrap(),
            GetObjectSubresource { sub: "tagging" }
        );
    }

    #[test]
    fn ambiguous_requests_are_refused() {
        let code = |m, p, q, c| op(m, p, q, c).unwrap_err().code;
        // Several sub-resources: the upstream may pick another one than we did.
        assert_eq!(
            code("PUT", "/bkt", "notification&policy", None),
            S3ErrorCode::InvalidRequest
        );
        assert_eq!(
            code("DELETE", "/bkt", "lifecycle&policy", None),
            S3ErrorCode::InvalidRequest
        );
        assert_eq!(
            code("PUT", "/bkt/k", "tagging&acl", None),
            S3ErrorCode::InvalidRequest
        );
        // A parameter twice: we would decide on one value, the upstream use another.
        assert_eq!(
            code("GET", "/bkt", "list-type=2&prefix=app/&prefix=", None),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code("PUT", "/bkt/k", "partNumber=1&uploadId=a&uploadId=b", None),
            S3ErrorCode::InvalidArgument
        );
        // A copy source on something that is not a copy.
        assert_eq!(
            code("PUT", "/bkt/k", "torrent", Some("/other/secret")),
            S3ErrorCode::InvalidRequest
        );
        assert_eq!(
            code("PUT", "/bkt/k", "retention", Some("/other/secret")),
            S3ErrorCode::InvalidRequest
        );
        // The legitimate combinations still parse.
        assert!(op(
            "PUT",
            "/bkt/k",
            "partNumber=1&uploadId=a&x-id=UploadPart",
            None
        )
        .is_ok());
        assert!(op("GET", "/bkt/k", "versionId=3&response-content-type=a", None).is_ok());
    }

    #[test]
    fn unknown_requests_are_refused() {
        let e = op("PATCH", "/bkt/k", "", None).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::NotImplemented);
        assert_eq!(
            op("POST", "/bkt", "", None).unwrap_err().code,
            S3ErrorCode::NotImplemented
        );
        assert_eq!(
            op("PUT", "/", "", None).unwrap_err().code,
            S3ErrorCode::NotImplemented
        );
        assert_eq!(
            op("PUT", "/bkt/k", "partNumber=0&uploadId=u", None)
                .unwrap_err()
                .code,
            S3ErrorCode::InvalidArgument
        );
    }
}
