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

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn request(op: Operation, params: &[(&'static str, &str)]) -> S3Request {
        S3Request {
            op,
            bucket: Some("b".into()),
            key: None,
            params: params.iter().map(|(n, v)| (*n, v.to_string())).collect(),
            payer_in_query: None,
        }
    }

    fn keys(c: &ContextKeys) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> =
            c.iter().map(|(k, v)| (k.clone(), v.join(","))).collect();
        v.sort();
        v
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = p
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.sort();
        v
    }

    /// A signed, TLS listing with every fact known: each documented key,
    /// lower-cased (condition keys are case-insensitive), with its value.
    #[test]
    fn every_fact_becomes_its_condition_key() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut headers = HeaderMap::new();
        for (n, v) in [
            ("user-agent", "aws-cli/2"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("x-amz-storage-class", "STANDARD"),
            ("x-amz-server-side-encryption", "AES256"),
            ("x-amz-acl", "private"),
            ("x-amz-expected-bucket-owner", "111122223333"),
            ("x-amz-request-payer", "requester"),
        ] {
            headers.insert(n, v.parse().unwrap());
        }
        let req = request(
            Operation::ListObjectsV2,
            &[("delimiter", "/"), ("max-keys", "5"), ("prefix", "a/")],
        );
        let facts = Facts {
            principal: "alice",
            auth: Some((AuthMethod::V4Presigned, now - Duration::from_secs(5))),
            source_ip: Some("192.0.2.1".parse().unwrap()),
            tls: Some("TLSv1.3"),
            headers: &headers,
            request: &req,
            upstream: Some("garage"),
            owner: Some("111122223333"),
            initiator: Some("self"),
            content_length: Some(42),
        };
        assert_eq!(
            keys(&build(&facts, now)),
            pairs(&[
                ("aws:sourceip", "192.0.2.1"),
                ("aws:securetransport", "true"),
                ("aws:epochtime", "1700000000"),
                ("aws:currenttime", "2023-11-14T22:13:20Z"),
                ("aws:username", "alice"),
                ("aws:principaltype", "User"),
                ("aws:useragent", "aws-cli/2"),
                ("s3:prefix", "a/"),
                ("s3:delimiter", "/"),
                ("s3:max-keys", "5"),
                ("s3:x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
                ("s3:x-amz-storage-class", "STANDARD"),
                ("s3:x-amz-server-side-encryption", "AES256"),
                ("s3:x-amz-acl", "private"),
                ("s3gate:expectedbucketowner", "111122223333"),
                ("s3gate:requestpayer", "requester"),
                ("s3:resourceaccount", "111122223333"),
                ("s3:authtype", "REST-QUERY-STRING"),
                ("s3:signatureversion", "AWS4-HMAC-SHA256"),
                ("s3:signatureage", "5000"),
                ("s3:tlsversion", "TLSv1.3"),
                ("s3gate:multipartinitiator", "self"),
                ("s3gate:contentlength", "42"),
                ("s3gate:upstream", "garage"),
            ])
        );
    }

    /// An unsigned plain-HTTP request is Anonymous, has no aws:username and
    /// is not SecureTransport; listing keys exist only on listings, the
    /// payer may come from the query, the part number and version from the
    /// operation.
    #[test]
    fn anonymous_plain_requests_and_operation_keys() {
        let now = UNIX_EPOCH + Duration::from_secs(60);
        let headers = HeaderMap::new();
        let mut req = request(
            Operation::UploadPart {
                upload_id: "u".into(),
                part_number: 7,
            },
            &[("prefix", "not-a-listing")],
        );
        req.payer_in_query = Some("requester".into());
        let facts = Facts {
            principal: "anonymous",
            auth: None,
            source_ip: None,
            tls: None,
            headers: &headers,
            request: &req,
            upstream: None,
            owner: None,
            initiator: None,
            content_length: None,
        };
        assert_eq!(
            keys(&build(&facts, now)),
            pairs(&[
                ("aws:securetransport", "false"),
                ("aws:epochtime", "60"),
                ("aws:currenttime", "1970-01-01T00:01:00Z"),
                ("aws:principaltype", "Anonymous"),
                ("s3gate:requestpayer", "requester"),
                ("s3gate:partnumber", "7"),
            ])
        );
        let get = request(
            Operation::GetObject {
                version_id: Some("v1".into()),
                part_number: None,
            },
            &[],
        );
        let facts = Facts {
            request: &get,
            ..facts
        };
        let c = build(&facts, now);
        assert_eq!(c.get("s3:versionid"), Some(&vec!["v1".to_string()]));
        assert_eq!(c.get("s3gate:partnumber"), None);
    }
}
