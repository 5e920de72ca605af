//! The request context keys policies see (docs/policy.example.yaml).

use std::net::IpAddr;
use std::time::SystemTime;

use http::HeaderMap;

use super::condition::ContextKeys;
use crate::auth::AuthMethod;
use crate::s3::{Operation, S3Request};

/// What is known of a request when it is decided.
pub struct Facts<'a> {
    pub principal: &'a str,
    pub auth: Option<(AuthMethod, SystemTime)>,
    pub source_ip: Option<IpAddr>,
    /// TLS version when the client connected over TLS.
    pub tls: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// The request as named: its operation and validated parameters.
    pub request: &'a S3Request,
    pub upstream: Option<&'a str>,
    /// The bucket's configured owner (s3:ResourceAccount).
    pub owner: Option<&'a str>,
    /// self | other | unknown, for operations on an upload.
    pub initiator: Option<&'a str>,
    /// The body length the gateway verifies (never a declared, unchecked one).
    pub content_length: Option<u64>,
}

fn put(c: &mut ContextKeys, key: &str, value: impl Into<String>) {
    c.insert(key.to_ascii_lowercase(), vec![value.into()]);
}

pub fn build(f: &Facts<'_>, now: SystemTime) -> ContextKeys {
    let mut c = ContextKeys::new();
    let header = |n: &str| f.headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(ip) = f.source_ip {
        put(&mut c, "aws:SourceIp", ip.to_string());
    }
    put(
        &mut c,
        "aws:SecureTransport",
        if f.tls.is_some() { "true" } else { "false" },
    );
    let epoch = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    put(&mut c, "aws:EpochTime", epoch.to_string());
    put(
        &mut c,
        "aws:CurrentTime",
        crate::auth::time::format_rfc3339(now, false),
    );
    if f.principal != "anonymous" {
        put(&mut c, "aws:username", f.principal);
        put(&mut c, "aws:PrincipalType", "User");
    } else {
        put(&mut c, "aws:PrincipalType", "Anonymous");
    }
    if let Some(ua) = header("user-agent") {
        put(&mut c, "aws:UserAgent", ua);
    }
    let op = &f.request.op;
    if matches!(
        op,
        Operation::ListObjects
            | Operation::ListObjectsV2
            | Operation::ListObjectVersions
            | Operation::ListMultipartUploads
    ) {
        for (q, key) in [
            ("prefix", "s3:prefix"),
            ("delimiter", "s3:delimiter"),
            ("max-keys", "s3:max-keys"),
        ] {
            if let Some(v) = f.request.param(q) {
                put(&mut c, key, v);
            }
        }
    }
    for (h, key) in [
        ("x-amz-content-sha256", "s3:x-amz-content-sha256"),
        ("x-amz-storage-class", "s3:x-amz-storage-class"),
        (
            "x-amz-server-side-encryption",
            "s3:x-amz-server-side-encryption",
        ),
        ("x-amz-acl", "s3:x-amz-acl"),
        ("x-amz-expected-bucket-owner", "s3gate:ExpectedBucketOwner"),
    ] {
        if let Some(v) = header(h) {
            put(&mut c, key, v);
        }
    }
    if let Some(v) = header("x-amz-request-payer").or(f.request.payer_in_query.as_deref()) {
        put(&mut c, "s3gate:RequestPayer", v);
    }
    if let Some(v) = op.version_id() {
        put(&mut c, "s3:VersionId", v);
    }
    if let Some(o) = f.owner {
        put(&mut c, "s3:ResourceAccount", o);
    }
    if let Some((method, signed_at)) = f.auth {
        put(&mut c, "s3:authType", method.auth_type());
        put(&mut c, "s3:signatureversion", method.signature_version());
        let age = now.duration_since(signed_at).map_or(0, |d| d.as_millis());
        put(&mut c, "s3:signatureAge", age.to_string());
    }
    if let Some(t) = f.tls {
        put(&mut c, "s3:TlsVersion", t);
    }
    if let Some(i) = f.initiator {
        put(&mut c, "s3gate:MultipartInitiator", i);
    }
    if let Operation::UploadPart { part_number, .. }
    | Operation::UploadPartCopy { part_number, .. } = op
    {
        put(&mut c, "s3gate:PartNumber", part_number.to_string());
    }
    if let Some(l) = f.content_length {
        put(&mut c, "s3gate:ContentLength", l.to_string());
    }
    if let Some(u) = f.upstream {
        put(&mut c, "s3gate:Upstream", u);
    }
    c
}
