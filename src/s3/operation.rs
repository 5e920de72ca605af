//! Every request is named as an S3 operation before anything else happens,
//! with every query parameter it carries checked against what that
//! operation defines. A request the gateway cannot name precisely is
//! refused, never forwarded unchecked: the upstream request is later
//! rendered from this naming (`S3Request::upstream_query`), so what the
//! upstream runs is what was decided.

use super::addressing::{valid_bucket_name, Addressed};
use super::error::{err, S3Error, S3ErrorCode, S3Result};
use super::subresource::{self, Level, SubOp};
use super::uri::{decode_query_component, encode_component, is_auth_param, Query};

/// The longest object key S3 accepts (bytes of UTF-8).
pub const MAX_KEY_BYTES: usize = 1024;

/// The longest upload id or version id accepted (S3's are < 200 bytes).
const MAX_ID_BYTES: usize = 1024;

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

/// `response-*` overrides of GetObject and HeadObject.
pub const RESPONSE_OVERRIDES: &[&str] = &[
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
];

/// Parameters that name what an operation acts on: an empty value is not
/// "absent" here but a different request to some upstreams (Garage reads
/// `?uploadId=` as no upload id at all), so it is refused.
const IDENTIFIERS: &[&str] = &[
    "uploadId",
    "versionId",
    "partNumber",
    "id",
    "list-type",
    "select-type",
];

/// Parameters that choose the operation. Upstreams disagree on which wins
/// when several are present, so a request naming more than one is refused.
fn is_selector(name: &str) -> bool {
    matches!(
        name,
        "uploads" | "uploadId" | "delete" | "versions" | "list-type"
    ) || subresource::is_selector(name)
}

/// Numeric parameters: digits only, so no upstream reads them differently.
const NUMERIC: &[&str] = &[
    "max-keys",
    "max-uploads",
    "max-parts",
    "max-buckets",
    "part-number-marker",
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
            GetObject { .. } | HeadObject { .. } => RESPONSE_OVERRIDES,
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

fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Every parameter at most once, at most one selector, identifiers
/// non-empty.
fn check_query(query: &Query) -> S3Result<()> {
    let mut seen = std::collections::HashSet::new();
    let mut chosen: Vec<&str> = Vec::new();
    for p in &query.params {
        let name = p.name.as_str();
        if !seen.insert(name) {
            return Err(err(
                S3ErrorCode::InvalidArgument,
                format!(
                    "The query parameter {} appears more than once",
                    shorten(name)
                ),
            ));
        }
        if IDENTIFIERS.contains(&name) {
            if p.value.is_empty() {
                return Err(err(
                    S3ErrorCode::InvalidArgument,
                    format!("The query parameter {name} must not be empty"),
                ));
            }
            check_id(name, &p.value)?;
        }
        if is_selector(name) {
            chosen.push(name);
        }
    }
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

/// Upload and version ids are opaque, but only visible ASCII: anything
/// else is not an id any S3 server issued.
fn check_id(name: &str, v: &str) -> S3Result<()> {
    if v.len() > MAX_ID_BYTES || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(err(
            S3ErrorCode::InvalidArgument,
            format!("The query parameter {name} is not a valid identifier"),
        ));
    }
    Ok(())
}

fn check_value(name: &str, v: &str) -> S3Result<()> {
    let ok = if NUMERIC.contains(&name) {
        v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit())
    } else {
        match name {
            "encoding-type" => v == "url",
            "fetch-owner" => v == "true" || v == "false",
            "select-type" => v == "2",
            "id" => v.len() <= 64,
            _ => true,
        }
    };
    if ok {
        Ok(())
    } else {
        Err(err(
            S3ErrorCode::InvalidArgument,
            format!("The value of the query parameter {name} is not valid"),
        ))
    }
}

/// Keys are non-empty, at most 1 KiB, and do not start with `/`: upstreams
/// disagree on what a leading slash means (Garage trims it and runs a
/// bucket operation), so the gateway cannot name such a request precisely.
pub fn check_key(key: &str) -> S3Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(err(S3ErrorCode::KeyTooLongError, "Your key is too long"));
    }
    if key.is_empty() || key.starts_with('/') {
        return Err(err(
            S3ErrorCode::InvalidArgument,
            "Object keys must not be empty or start with '/' (upstreams disagree on what that means)",
        ));
    }
    Ok(())
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

fn parse_part_number(p: &str) -> S3Result<u16> {
    let n = if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) {
        p.parse::<u16>().ok()
    } else {
        None
    };
    match n {
        Some(n) if (1..=10_000).contains(&n) => Ok(n),
        _ => Err(err(
            S3ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        )),
    }
}

/// `x-amz-copy-source: [/]bucket/key[?versionId=...]`, URL-encoded. The
/// bucket must be a bucket name and the key a key as for any request.
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
    // URL-encoded as a form value: S3 reads `+` as a space here (s5cmd
    // sends `a+b.txt` for the key `a b.txt`); a literal plus is `%2B`.
    let path = decode_query_component(path).ok_or_else(bad)?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    let (bucket, key) = path.split_once('/').ok_or_else(bad)?;
    if !valid_bucket_name(bucket) {
        return Err(err(
            S3ErrorCode::InvalidArgument,
            "Invalid copy source: the bucket is not a valid bucket name",
        ));
    }
    check_key(key)?;
    let q = Query::parse(query).ok_or_else(bad)?;
    let mut version_id = None;
    for p in &q.params {
        match p.name.as_str() {
            "versionId" if version_id.is_none() && !p.value.is_empty() => {
                check_id("versionId", &p.value)?;
                version_id = Some(p.value.clone());
            }
            _ => {
                return Err(err(
                    S3ErrorCode::InvalidArgument,
                    "Invalid copy source: only one non-empty versionId may follow the key",
                ))
            }
        }
    }
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

    fn req(method: &str, path: &str, query: &str, copy: Option<&str>) -> S3Result<S3Request> {
        let a = address(Some("localhost"), path, &[]).unwrap();
        let q = Query::parse(Some(query)).unwrap();
        S3Request::parse(method, &a, &q, copy)
    }

    fn op(method: &str, path: &str, query: &str, copy: Option<&str>) -> S3Result<Operation> {
        req(method, path, query, copy).map(|r| r.op)
    }

    /// Requests as the S3 API reference shows them (one per operation):
    /// method, path, query → the operation's name, and the upstream query
    /// the gateway renders from it.
    const EXAMPLES: &[(&str, &str, &str, &str, &str)] = &[
        ("GET", "/", "", "ListBuckets", ""),
        (
            "GET",
            "/",
            "max-buckets=10&x-id=ListBuckets",
            "ListBuckets",
            "max-buckets=10",
        ),
        ("PUT", "/bkt", "", "CreateBucket", ""),
        ("DELETE", "/bkt", "", "DeleteBucket", ""),
        ("HEAD", "/bkt", "", "HeadBucket", ""),
        ("GET", "/bkt/", "", "ListObjects", ""),
        (
            "GET",
            "/bkt",
            "prefix=a%2Fb&marker=&max-keys=5",
            "ListObjects",
            "max-keys=5&prefix=a%2Fb",
        ),
        (
            "GET",
            "/bkt",
            "list-type=2&prefix=&delimiter=%2F&encoding-type=url",
            "ListObjectsV2",
            "delimiter=%2F&encoding-type=url&list-type=2",
        ),
        (
            "GET",
            "/bkt",
            "versions&prefix=p",
            "ListObjectVersions",
            "prefix=p&versions=",
        ),
        (
            "GET",
            "/bkt",
            "uploads&max-uploads=3",
            "ListMultipartUploads",
            "max-uploads=3&uploads=",
        ),
        ("POST", "/bkt", "delete", "DeleteObjects", "delete="),
        ("GET", "/bkt", "tagging", "GetBucketTagging", "tagging="),
        (
            "PUT",
            "/bkt",
            "lifecycle",
            "PutBucketLifecycleConfiguration",
            "lifecycle=",
        ),
        (
            "DELETE",
            "/bkt",
            "lifecycle",
            "DeleteBucketLifecycle",
            "lifecycle=",
        ),
        ("PUT", "/bkt", "cors", "PutBucketCors", "cors="),
        ("PUT", "/bkt", "website", "PutBucketWebsite", "website="),
        ("GET", "/bkt", "location", "GetBucketLocation", "location="),
        (
            "GET",
            "/bkt",
            "metrics&id=m1",
            "GetBucketMetricsConfiguration",
            "id=m1&metrics=",
        ),
        (
            "GET",
            "/bkt",
            "metrics",
            "ListBucketMetricsConfigurations",
            "metrics=",
        ),
        ("GET", "/bkt/k", "", "GetObject", ""),
        (
            "GET",
            "/bkt/k",
            "versionId=3&response-content-type=text%2Fplain",
            "GetObject",
            "response-content-type=text%2Fplain&versionId=3",
        ),
        ("GET", "/bkt/k", "partNumber=2", "GetObject", "partNumber=2"),
        ("HEAD", "/bkt/k", "versionId=3", "HeadObject", "versionId=3"),
        ("PUT", "/bkt/k", "x-id=PutObject", "PutObject", ""),
        (
            "DELETE",
            "/bkt/k",
            "versionId=v%2B1",
            "DeleteObject",
            "versionId=v%2B1",
        ),
        (
            "GET",
            "/bkt/k",
            "attributes",
            "GetObjectAttributes",
            "attributes=",
        ),
        (
            "POST",
            "/bkt/k",
            "restore&versionId=v",
            "RestoreObject",
            "restore=&versionId=v",
        ),
        (
            "POST",
            "/bkt/k",
            "select&select-type=2",
            "SelectObjectContent",
            "select=&select-type=2",
        ),
        ("PUT", "/bkt/k", "acl", "PutObjectAcl", "acl="),
        (
            "GET",
            "/bkt/k",
            "tagging&versionId=7",
            "GetObjectTagging",
            "tagging=&versionId=7",
        ),
        (
            "DELETE",
            "/bkt/k",
            "tagging",
            "DeleteObjectTagging",
            "tagging=",
        ),
        (
            "PUT",
            "/bkt/k",
            "retention",
            "PutObjectRetention",
            "retention=",
        ),
        (
            "GET",
            "/bkt/k",
            "legal-hold",
            "GetObjectLegalHold",
            "legal-hold=",
        ),
        (
            "POST",
            "/bkt/k",
            "uploads",
            "CreateMultipartUpload",
            "uploads=",
        ),
        (
            "PUT",
            "/bkt/k",
            "partNumber=3&uploadId=U1&x-id=UploadPart",
            "UploadPart",
            "partNumber=3&uploadId=U1",
        ),
        (
            "POST",
            "/bkt/k",
            "uploadId=U1",
            "CompleteMultipartUpload",
            "uploadId=U1",
        ),
        (
            "DELETE",
            "/bkt/k",
            "uploadId=U1",
            "AbortMultipartUpload",
            "uploadId=U1",
        ),
        (
            "GET",
            "/bkt/k",
            "uploadId=U1&max-parts=2&part-number-marker=",
            "ListParts",
            "max-parts=2&uploadId=U1",
        ),
    ];

    #[test]
    fn api_reference_examples_name_and_render() {
        for (m, p, q, name, rendered) in EXAMPLES {
            let r = req(m, p, q, None).unwrap_or_else(|e| panic!("{m} {p}?{q}: {e}"));
            assert_eq!(r.op.name(), *name, "{m} {p}?{q}");
            assert_eq!(r.upstream_query(), *rendered, "{m} {p}?{q}");
            // What is rendered parses back to the same request.
            let again = req(m, p, rendered, None).unwrap();
            assert_eq!(again.op, r.op, "{m} {p}?{rendered}");
            assert_eq!(again.params, r.params, "{m} {p}?{rendered}");
        }
    }

    #[test]
    fn copies() {
        let r = req(
            "PUT",
            "/bkt/k",
            "partNumber=1&uploadId=U1",
            Some("/src/a%20b?versionId=v1"),
        )
        .unwrap();
        assert!(matches!(
            r.op,
            Operation::UploadPartCopy { source: CopySource { ref key, ref version_id, .. }, .. }
                if key == "a b" && version_id.as_deref() == Some("v1")
        ));
        assert_eq!(
            op("PUT", "/bkt/k", "", Some("s3b/k")).unwrap().name(),
            "CopyObject"
        );
        let plus = |c| match op("PUT", "/bkt/k", "", Some(c)).unwrap() {
            Operation::CopyObject { source } => source.key,
            other => panic!("{other:?}"),
        };
        assert_eq!(plus("src/a+b.txt"), "a b.txt");
        assert_eq!(plus("src/a%2Bb.txt"), "a+b.txt");
        let code = |c| op("PUT", "/bkt/k", "", Some(c)).unwrap_err().code;
        assert_eq!(code("NotABucket!/k"), S3ErrorCode::InvalidArgument);
        assert_eq!(code("src//k"), S3ErrorCode::InvalidArgument);
        assert_eq!(code("src/k?versionId="), S3ErrorCode::InvalidArgument);
        assert_eq!(code("src/k?uploadId=x"), S3ErrorCode::InvalidArgument);
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
            code("PUT", "/bkt/k", "retention", Some("/other/secret")),
            S3ErrorCode::InvalidRequest
        );
    }

    /// What Garage reads differently: empty identifiers (ignored there),
    /// leading slashes in keys (trimmed there), parameters the operation
    /// does not define (forwarded as they were, before).
    #[test]
    fn requests_upstreams_read_differently_are_refused() {
        let code = |m, p, q| op(m, p, q, None).unwrap_err().code;
        assert_eq!(
            code("GET", "/bkt/k", "uploadId="),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code("DELETE", "/bkt/k", "uploadId"),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code("GET", "/bkt/k", "versionId="),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code("DELETE", "/bkt/k", "versionId="),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code("PUT", "/bkt/k", "partNumber=&uploadId=u"),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code("GET", "/bkt", "metrics&id="),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code("GET", "/bkt", "list-type="),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code("GET", "/bkt", "list-type=1"),
            S3ErrorCode::InvalidArgument
        );
        for path in ["/bkt//k", "/bkt//", "/bkt///lifecycle"] {
            assert_eq!(
                code("PUT", path, ""),
                S3ErrorCode::InvalidArgument,
                "{path}"
            );
        }
        assert_eq!(
            code("GET", "/bkt/k", "uploads"),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(code("PUT", "/bkt", "uploads"), S3ErrorCode::InvalidArgument);
        assert_eq!(
            code("GET", "/bkt/k", "prefix=a"),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code("PUT", "/bkt/k", "x-amz-acl=public-read"),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code("GET", "/bkt", "max-keys=+5"),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code("PUT", "/bkt/k", "partNumber=+3&uploadId=u"),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code("GET", "/bkt/k", "uploadId=a%0Ab"),
            S3ErrorCode::InvalidArgument
        );
        let long = format!("/bkt/{}", "k".repeat(1025));
        assert_eq!(code("PUT", &long, ""), S3ErrorCode::KeyTooLongError);
        // Authentication parameters and x-id are accepted, never rendered.
        let r = req(
            "GET",
            "/bkt/k",
            "X-Amz-Signature=abc&X-Amz-Credential=c&x-id=GetObject",
            None,
        )
        .unwrap();
        assert_eq!(r.upstream_query(), "");
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
            op("POST", "/bkt", "cors", None).unwrap_err().code,
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
