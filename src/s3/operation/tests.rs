//! Naming requests as S3 operations, and refusing what cannot be named.

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
    // A presigned GetObject of the AWS SDK for JavaScript v3 (issue 17).
    (
        "GET",
        "/bkt/k",
        "x-amz-checksum-mode=ENABLED&x-id=GetObject",
        "GetObject",
        "x-amz-checksum-mode=ENABLED",
    ),
    (
        "HEAD",
        "/bkt/k",
        "x-amz-checksum-mode=ENABLED",
        "HeadObject",
        "x-amz-checksum-mode=ENABLED",
    ),
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
    assert_eq!(
        code("GET", "/bkt/k", "x-amz-checksum-mode=on"),
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

#[test]
fn null_versions_are_dropped_others_kept() {
    let mut get = op("GET", "/bkt/k", "versionId=null", None).unwrap();
    assert!(!get.drop_null_versions());
    assert_eq!(get.version_id(), None);
    let mut copy = op("PUT", "/bkt/k", "", Some("src/k?versionId=null")).unwrap();
    assert!(!copy.drop_null_versions());
    assert_eq!(copy.copy_source().unwrap().version_id, None);
    let mut del = op("DELETE", "/bkt/k", "versionId=v1", None).unwrap();
    assert!(del.drop_null_versions());
}
