//! Every request is named as an S3 operation before anything else happens,
//! with every query parameter it carries checked against what that
//! operation defines. A request the gateway cannot name precisely is
//! refused, never forwarded unchecked: the upstream request is later
//! rendered from this naming (`S3Request::upstream_query`), so what the
//! upstream runs is what was decided.

use super::addressing::Addressed;
use super::error::{err, S3Error, S3ErrorCode, S3Result};
pub use super::params::{check_key, parse_copy_source, MAX_KEY_BYTES};
use super::params::{check_query, check_value, parse_part_number, shorten};
use super::subresource::{self, Level, SubOp};
use super::uri::{encode_component, is_auth_param, Query};

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
    /// `?tagging`, `?lifecycle`, … on a bucket (see `subresource::TABLE`).
    BucketSub(&'static SubOp),
    // Object level.
    GetObject {
        version_id: Option<String>,
        part_number: Option<u16>,
    },
    HeadObject {
        version_id: Option<String>,
        part_number: Option<u16>,
    },
    PutObject,
    CopyObject {
        source: CopySource,
    },
    DeleteObject {
        version_id: Option<String>,
    },
    /// `?tagging`, `?acl`, `?attributes`, `?restore`, … on an object.
    ObjectSub {
        sub: &'static SubOp,
        version_id: Option<String>,
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

/// A request named as an S3 operation, with the parameters it may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Request {
    pub op: Operation,
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// The optional parameters the operation defines (`prefix`,
    /// `max-keys`, `response-content-type`, …), sorted by name; an empty
    /// value means "absent" to S3 and to the upstreams, so it is dropped.
    pub params: Params,
    /// `x-amz-request-payer` sent in the query (presigned URLs); it goes
    /// upstream as the header.
    pub payer_in_query: Option<String>,
}

/// Validated optional parameters, sorted by name.
pub type Params = Vec<(&'static str, String)>;

/// The optional parameters of GetObject and HeadObject: the `response-*`
/// overrides, and `x-amz-checksum-mode`, a header that presigners hoist into
/// the query (the AWS SDK for JavaScript v3 signs it into every presigned
/// GetObject URL).
const GET_OBJECT_PARAMS: &[&str] = &[
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "x-amz-checksum-mode",
];

impl S3Request {
    /// Name the operation of a request and check every query parameter.
    pub fn parse(
        method: &str,
        addr: &Addressed,
        query: &Query,
        copy_source: Option<&str>,
    ) -> S3Result<S3Request> {
        check_query(query)?;
        if let Some(key) = &addr.key {
            check_key(key)?;
        }
        let op = Operation::parse_named(method, addr, query, copy_source)?;
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
        let (params, payer_in_query) = op.collect_params(query)?;
        Ok(S3Request {
            op,
            bucket: addr.bucket.clone(),
            key: addr.key.clone(),
            params,
            payer_in_query,
        })
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The upstream query string, rendered from the operation: its selector
    /// and identifiers, then its optional parameters, canonically encoded
    /// and sorted by name. Nothing is copied from the client's query.
    pub fn upstream_query(&self) -> String {
        let mut pairs: Vec<(&str, String)> = self.op.selectors();
        for (n, v) in &self.params {
            pairs.push((n, encode_component(v)));
        }
        pairs.sort();
        let mut out = String::new();
        for (i, (n, v)) in pairs.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(n);
            out.push('=');
            out.push_str(v);
        }
        out
    }
}

impl Operation {
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
                .map_err(|e| e.with_resource(format!("/{bucket}")));
        }
        let has = |n: &str| query.has(n);
        let version_id = query.get("versionId").map(str::to_string);
        if let Some(found) = subresource::find(Level::Object, method, has) {
            let sub = found.map_err(|_| not_implemented(method, bucket))?;
            return Ok(ObjectSub { sub, version_id });
        }
        let upload_id = query.get("uploadId").map(str::to_string);
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
            ("POST", None, None) if query.has("uploads") => CreateMultipartUpload,
            ("GET", None, part_number) => GetObject {
                version_id,
                part_number,
            },
            ("HEAD", None, part_number) => HeadObject {
                version_id,
                part_number,
            },
            ("PUT", None, None) => match copy_source {
                Some(src) => CopyObject {
                    source: parse_copy_source(src)?,
                },
                None => PutObject,
            },
            ("DELETE", None, None) => DeleteObject { version_id },
            _ => return Err(not_implemented(method, bucket)),
        };
        Ok(op)
    }

    fn parse_bucket(method: &str, query: &Query) -> S3Result<Operation> {
        use Operation::*;
        if let Some(found) = subresource::find(Level::Bucket, method, |n| query.has(n)) {
            return found
                .map(BucketSub)
                .map_err(|_| not_implemented(method, ""));
        }
        Ok(match method {
            "GET" if query.has("uploads") => ListMultipartUploads,
            "GET" if query.has("versions") => ListObjectVersions,
            "GET" => match query.get("list-type") {
                None => ListObjects,
                Some("2") => ListObjectsV2,
                Some(_) => {
                    return Err(err(
                        S3ErrorCode::InvalidArgument,
                        "list-type must be 2 (or absent for ListObjects)",
                    ))
                }
            },
            "HEAD" => HeadBucket,
            "PUT" => CreateBucket,
            "DELETE" => DeleteBucket,
            "POST" if query.has("delete") => DeleteObjects,
            _ => return Err(not_implemented(method, "")),
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
            BucketSub(s) | ObjectSub { sub: s, .. } => s.name,
            GetObject { .. } => "GetObject",
            HeadObject { .. } => "HeadObject",
            PutObject => "PutObject",
            CopyObject { .. } => "CopyObject",
            DeleteObject { .. } => "DeleteObject",
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
        match self {
            BucketSub(s) | ObjectSub { sub: s, .. } => s.body,
            PutObject
            | UploadPart { .. }
            | CompleteMultipartUpload { .. }
            | DeleteObjects
            | CreateBucket => true,
            _ => false,
        }
    }

    pub fn copy_source(&self) -> Option<&CopySource> {
        match self {
            Operation::CopyObject { source } | Operation::UploadPartCopy { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }

    /// The upload an operation acts on.
    pub fn upload_id(&self) -> Option<&str> {
        match self {
            Operation::UploadPart { upload_id, .. }
            | Operation::UploadPartCopy { upload_id, .. }
            | Operation::CompleteMultipartUpload { upload_id }
            | Operation::AbortMultipartUpload { upload_id }
            | Operation::ListParts { upload_id } => Some(upload_id),
            _ => None,
        }
    }

    /// Forget a `versionId=null` (on a store without versions, the null
    /// version is the current object); returns whether a version other
    /// than `null` is still named.
    pub fn drop_null_versions(&mut self) -> bool {
        use Operation::*;
        let clear = |v: &mut Option<String>| {
            if v.as_deref() == Some("null") {
                *v = None;
            }
            v.is_some()
        };
        match self {
            GetObject { version_id, .. }
            | HeadObject { version_id, .. }
            | DeleteObject { version_id }
            | ObjectSub { version_id, .. } => clear(version_id),
            CopyObject { source } | UploadPartCopy { source, .. } => clear(&mut source.version_id),
            _ => false,
        }
    }

    /// Whether the operation (or its copy source) names a version.
    pub fn names_version(&self) -> bool {
        self.version_id().is_some() || self.copy_source().is_some_and(|s| s.version_id.is_some())
    }

    /// The version an operation names.
    pub fn version_id(&self) -> Option<&str> {
        match self {
            Operation::GetObject { version_id, .. }
            | Operation::HeadObject { version_id, .. }
            | Operation::DeleteObject { version_id }
            | Operation::ObjectSub { version_id, .. } => version_id.as_deref(),
            _ => None,
        }
    }

    /// The selector and identifier parameters, encoded, as the upstream
    /// must receive them.
    fn selectors(&self) -> Vec<(&'static str, String)> {
        use Operation::*;
        let mut out: Vec<(&'static str, String)> = Vec::new();
        let mut push = |n: &'static str, v: &str| out.push((n, encode_component(v)));
        match self {
            ListObjectsV2 => push("list-type", "2"),
            ListObjectVersions => push("versions", ""),
            ListMultipartUploads | CreateMultipartUpload => push("uploads", ""),
            DeleteObjects => push("delete", ""),
            BucketSub(s) => push(s.selector, ""),
            ObjectSub { sub, .. } => push(sub.selector, ""),
            UploadPart {
                upload_id,
                part_number,
            }
            | UploadPartCopy {
                upload_id,
                part_number,
                ..
            } => {
                push("partNumber", &part_number.to_string());
                push("uploadId", upload_id);
            }
            CompleteMultipartUpload { upload_id }
            | AbortMultipartUpload { upload_id }
            | ListParts { upload_id } => push("uploadId", upload_id),
            GetObject { part_number, .. } | HeadObject { part_number, .. } => {
                if let Some(p) = part_number {
                    push("partNumber", &p.to_string());
                }
            }
            _ => {}
        }
        if let Some(v) = self.version_id() {
            out.push(("versionId", encode_component(v)));
        }
        out
    }

    /// The names the operation consumed into its own fields.
    fn consumed(&self, name: &str) -> bool {
        use Operation::*;
        match self {
            ListObjectsV2 => name == "list-type",
            ListObjectVersions => name == "versions",
            ListMultipartUploads | CreateMultipartUpload => name == "uploads",
            DeleteObjects => name == "delete",
            BucketSub(s) => name == s.selector,
            ObjectSub { sub, .. } => name == sub.selector || name == "versionId",
            UploadPart { .. } | UploadPartCopy { .. } => {
                matches!(name, "partNumber" | "uploadId")
            }
            CompleteMultipartUpload { .. } | AbortMultipartUpload { .. } | ListParts { .. } => {
                name == "uploadId"
            }
            GetObject { .. } | HeadObject { .. } => matches!(name, "versionId" | "partNumber"),
            DeleteObject { .. } => name == "versionId",
            _ => false,
        }
    }

    /// The optional parameters the operation defines.
    fn optional_params(&self) -> &'static [&'static str] {
        use Operation::*;
        match self {
            ListBuckets => &[
                "bucket-region",
                "continuation-token",
                "max-buckets",
                "prefix",
            ],
            ListObjects => &["delimiter", "encoding-type", "marker", "max-keys", "prefix"],
            ListObjectsV2 => &[
                "continuation-token",
                "delimiter",
                "encoding-type",
                "fetch-owner",
                "max-keys",
                "prefix",
                "start-after",
            ],
            ListObjectVersions => &[
                "delimiter",
                "encoding-type",
                "key-marker",
                "max-keys",
                "prefix",
                "version-id-marker",
            ],
            ListMultipartUploads => &[
                "delimiter",
                "encoding-type",
                "key-marker",
                "max-uploads",
                "prefix",
                "upload-id-marker",
            ],
            BucketSub(s) => s.params,
            ObjectSub { sub, .. } => sub.params,
            GetObject { .. } | HeadObject { .. } => GET_OBJECT_PARAMS,
            ListParts { .. } => &["max-parts", "part-number-marker"],
            _ => &[],
        }
    }

    /// Check every query parameter against what the operation defines.
    fn collect_params(&self, query: &Query) -> S3Result<(Params, Option<String>)> {
        let mut params = Vec::new();
        let mut payer = None;
        let defined = self.optional_params();
        for p in &query.params {
            let name = p.name.as_str();
            if is_auth_param(name) || name == "x-id" || self.consumed(name) {
                continue;
            }
            if name.eq_ignore_ascii_case("x-amz-request-payer") {
                if payer.is_some() {
                    return Err(err(
                        S3ErrorCode::InvalidArgument,
                        "The query parameter x-amz-request-payer appears more than once",
                    ));
                }
                payer = Some(p.value.clone());
                continue;
            }
            let Some(&known) = defined.iter().find(|d| **d == name) else {
                return Err(err(
                    S3ErrorCode::InvalidArgument,
                    format!(
                        "The query parameter {} is not defined for {}",
                        shorten(name),
                        self.name()
                    ),
                ));
            };
            if p.value.is_empty() {
                continue;
            }
            check_value(known, &p.value)?;
            params.push((known, p.value.clone()));
        }
        params.sort();
        Ok((params, payer))
    }
}

fn not_implemented(method: &str, resource: &str) -> S3Error {
    let e = err(
        S3ErrorCode::NotImplemented,
        format!("s3gate does not implement this request ({method} with these parameters)"),
    );
    if resource.is_empty() {
        e
    } else {
        e.with_resource(resource.to_string())
    }
}

#[cfg(test)]
mod tests;
