//! Broken authentication gets S3's error, and nothing reaches the upstream.

mod common;

use std::time::{Duration, SystemTime};

use common::raw::{send, sha256_hex, Signer};
use common::{env, unique, ALICE_KEY, ALICE_SECRET};

const BUCKET: &str = "authz";

fn host() -> String {
    format!("127.0.0.1:{}", env().gateway.port)
}

fn signed_put(
    s: &Signer<'_>,
    key: &str,
    extra: &[(&str, &str)],
    sign_extra: bool,
) -> common::raw::Response {
    let body = b"payload".to_vec();
    let target = format!("/{BUCKET}/{key}");
    let mut headers = vec![
        ("host".to_string(), host()),
        ("x-amz-content-sha256".to_string(), sha256_hex(&body)),
        ("content-length".to_string(), body.len().to_string()),
    ];
    if sign_extra {
        headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    }
    let (mut headers, _) = s.sign_headers("PUT", &target, headers, &sha256_hex(&body));
    if !sign_extra {
        headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    }
    send(env().gateway.port, "PUT", &target, &headers, &body)
}

/// Absent upstream: 404 there; any other failure of the look panics.
async fn absent(key: &str) -> bool {
    !common::object_exists(&env().direct(), BUCKET, key).await
}

fn now_signer<'a>(key: &'a str, secret: &'a str) -> Signer<'a> {
    Signer {
        key,
        secret,
        region: "us-east-1",
        time: SystemTime::now(),
    }
}

#[tokio::test]
async fn correct_signature_is_accepted() {
    let key = unique("ok");
    let r = signed_put(
        &now_signer(ALICE_KEY, ALICE_SECRET),
        &key,
        &[("x-amz-meta-note", "signed")],
        true,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!absent(&key).await);
}

#[tokio::test]
async fn wrong_secret() {
    let key = unique("wrong-secret");
    let r = signed_put(&now_signer(ALICE_KEY, "not-the-secret"), &key, &[], true);
    assert_eq!(
        (r.status, r.code().as_deref()),
        (403, Some("SignatureDoesNotMatch"))
    );
    assert!(r.header("x-amz-request-id").is_some());
    assert!(absent(&key).await);
}

#[tokio::test]
async fn unknown_key() {
    let key = unique("unknown-key");
    let r = signed_put(&now_signer("AKIANOBODY0000000000", "x"), &key, &[], true);
    assert_eq!(
        (r.status, r.code().as_deref()),
        (403, Some("InvalidAccessKeyId"))
    );
    assert!(absent(&key).await);
}

#[tokio::test]
async fn skewed_clock() {
    let key = unique("skewed");
    let s = Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: SystemTime::now() - Duration::from_secs(16 * 60),
    };
    let r = signed_put(&s, &key, &[], true);
    assert_eq!(
        (r.status, r.code().as_deref()),
        (403, Some("RequestTimeTooSkewed"))
    );
    assert!(absent(&key).await);
}

#[tokio::test]
async fn expired_presigned_url() {
    let s = Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: SystemTime::now() - Duration::from_secs(120),
    };
    let target = s.presign(
        "GET",
        &host(),
        &format!("/{BUCKET}/whatever"),
        Duration::from_secs(60),
    );
    let r = send(
        env().gateway.port,
        "GET",
        &target,
        &[("host".into(), host())],
        b"",
    );
    assert_eq!(
        (r.status, r.code().as_deref()),
        (403, Some("AccessDenied")),
        "{}",
        r.body
    );
    assert!(r.body.contains("Request has expired"));
    // The same URL, still valid, works (and its query never reaches the log).
    let s = now_signer(ALICE_KEY, ALICE_SECRET);
    let key = unique("presigned");
    env()
        .alice()
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
        .send()
        .await
        .expect("put");
    let target = s.presign(
        "GET",
        &host(),
        &format!("/{BUCKET}/{key}"),
        Duration::from_secs(60),
    );
    let r = send(
        env().gateway.port,
        "GET",
        &target,
        &[("host".into(), host())],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let sig = target.split("X-Amz-Signature=").nth(1).expect("sig");
    assert!(
        !env().gateway.log().contains(sig),
        "a presigned signature appeared in the log"
    );
}

#[tokio::test]
async fn unsigned_amz_header() {
    let key = unique("unsigned-header");
    let r = signed_put(
        &now_signer(ALICE_KEY, ALICE_SECRET),
        &key,
        &[("x-amz-meta-evil", "added-after-signing")],
        false,
    );
    assert_eq!(
        (r.status, r.code().as_deref()),
        (403, Some("AccessDenied")),
        "{}",
        r.body
    );
    assert!(absent(&key).await);
}

#[tokio::test]
async fn no_authentication() {
    let key = unique("anonymous");
    let r = send(
        env().gateway.port,
        "PUT",
        &format!("/{BUCKET}/{key}"),
        &[
            ("host".into(), host()),
            ("content-length".into(), "1".into()),
        ],
        b"x",
    );
    assert_eq!((r.status, r.code().as_deref()), (403, Some("AccessDenied")));
    assert!(absent(&key).await);
}

#[tokio::test]
async fn unknown_operation_is_not_forwarded() {
    let s = now_signer(ALICE_KEY, ALICE_SECRET);
    let target = format!("/{BUCKET}/k?uploadId=x&partNumber=1");
    let headers = vec![
        ("host".to_string(), host()),
        ("x-amz-content-sha256".to_string(), sha256_hex(b"")),
    ];
    let (headers, _) = s.sign_headers("PATCH", &target, headers, &sha256_hex(b""));
    let r = send(env().gateway.port, "PATCH", &target, &headers, b"");
    assert_eq!(
        (r.status, r.code().as_deref()),
        (501, Some("NotImplemented"))
    );
}

#[test]
fn secrets_never_logged() {
    let e = env();
    let _ = signed_put(
        &now_signer(ALICE_KEY, ALICE_SECRET),
        &unique("log"),
        &[],
        true,
    );
    let log = e.gateway.log();
    assert!(!log.contains(ALICE_SECRET));
    assert!(!log.contains(&e.garage.secret_access_key));
    assert!(!log.to_ascii_lowercase().contains("signature="));
}

/// A request the upstream could read as another operation than the one
/// decided here is refused before anything goes upstream.
#[tokio::test]
async fn ambiguous_requests_are_refused() {
    let s = now_signer(ALICE_KEY, ALICE_SECRET);
    let send_signed = |method: &str, target: &str, extra: Vec<(String, String)>| {
        let mut headers = vec![
            ("host".to_string(), host()),
            ("x-amz-content-sha256".to_string(), sha256_hex(b"")),
        ];
        headers.extend(extra);
        let (headers, _) = s.sign_headers(method, target, headers, &sha256_hex(b""));
        send(env().gateway.port, method, target, &headers, b"")
    };
    // A copy source on a request that is not a copy (it would be a copy upstream).
    let key = unique("smuggled");
    let r = send_signed(
        "PUT",
        &format!("/{BUCKET}/{key}?tagging"),
        vec![("x-amz-copy-source".into(), "/sdk/anything".into())],
    );
    assert_eq!(
        (r.status, r.code().as_deref()),
        (400, Some("InvalidRequest")),
        "{}",
        r.body
    );
    assert!(absent(&key).await);
    // Two sub-resources, and a repeated parameter.
    let r = send_signed("PUT", &format!("/{BUCKET}?notification&policy"), vec![]);
    assert_eq!(r.code().as_deref(), Some("InvalidRequest"), "{}", r.body);
    let r = send_signed(
        "GET",
        &format!("/{BUCKET}?list-type=2&prefix=a&prefix=b"),
        vec![],
    );
    assert_eq!(r.code().as_deref(), Some("InvalidArgument"), "{}", r.body);
    // A client bucket name that is not a bucket name (an ARN, say).
    let r = send_signed(
        "GET",
        "/arn:aws:s3:us-east-1:123456789012:accesspoint:x/k",
        vec![],
    );
    assert_eq!(r.code().as_deref(), Some("InvalidBucketName"), "{}", r.body);
}
