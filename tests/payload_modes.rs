//! Every payload mode with a correct and a tampered body. A tampered body
//! gets its S3 error and a direct look at Garage shows no object or part.

mod common;

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use common::raw::{send, sha256_hex, Signer};
use common::{data, env, unique, ALICE_KEY, ALICE_SECRET};

const BUCKET: &str = "payload";

fn signer() -> Signer<'static> {
    Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: SystemTime::now(),
    }
}

fn host() -> String {
    format!("127.0.0.1:{}", env().gateway.port)
}

/// Present upstream; absent only on 404 (any other failure panics).
async fn exists(key: &str) -> bool {
    common::object_exists(&env().direct(), BUCKET, key).await
}

fn crc32(d: &[u8]) -> String {
    let mut c = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32IsoHdlc);
    c.update(d);
    base64::engine::general_purpose::STANDARD.encode((c.finalize() as u32).to_be_bytes())
}

/// The checksums S3 knows, computed independently for the trailer tests.
fn checksum(alg: &str, d: &[u8]) -> String {
    use sha1::Digest as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match alg {
        "crc32" => crc32(d),
        "crc32c" => {
            let mut c = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
            c.update(d);
            b64(&(c.finalize() as u32).to_be_bytes())
        }
        "crc64nvme" => {
            let mut c = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme);
            c.update(d);
            b64(&c.finalize().to_be_bytes())
        }
        "sha1" => b64(&sha1::Sha1::digest(d)),
        "sha256" => b64(&sha2::Sha256::digest(d)),
        _ => unreachable!(),
    }
}

/// PUT `body` (already framed) with the given mode headers; returns the response.
fn put(
    key: &str,
    content_sha: &str,
    mut extra: Vec<(String, String)>,
    body: &[u8],
    s: &Signer<'_>,
) -> (common::raw::Response, String) {
    let target = format!("/{BUCKET}/{key}");
    let mut headers = vec![
        ("host".to_string(), host()),
        ("x-amz-content-sha256".to_string(), content_sha.to_string()),
        ("content-length".to_string(), body.len().to_string()),
    ];
    headers.append(&mut extra);
    let (headers, seed) = s.sign_headers("PUT", &target, headers, content_sha);
    (
        send(env().gateway.port, "PUT", &target, &headers, body),
        seed,
    )
}

fn tamper(mut b: Vec<u8>, at: usize) -> Vec<u8> {
    b[at] ^= 0x01;
    b
}

#[tokio::test]
async fn hex_sha256_payload() {
    let d = data(200_000, 1);
    let s = signer();
    let key = unique("hex-good");
    let (r, _) = put(&key, &sha256_hex(&d), vec![], &d, &s);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(exists(&key).await);
    let key = unique("hex-bad");
    let (r, _) = put(
        &key,
        &sha256_hex(&d),
        vec![],
        &tamper(d.clone(), 150_000),
        &s,
    );
    assert_eq!(
        (r.status, r.code().as_deref()),
        (400, Some("XAmzContentSHA256Mismatch")),
        "{}",
        r.body
    );
    assert!(
        !exists(&key).await,
        "a tampered body must not become an object"
    );
}

#[tokio::test]
async fn unsigned_payload_with_checksum_header() {
    let d = data(120_000, 2);
    let s = signer();
    let key = unique("unsigned-good");
    let (r, _) = put(
        &key,
        "UNSIGNED-PAYLOAD",
        vec![("x-amz-checksum-crc32".into(), crc32(&d))],
        &d,
        &s,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(exists(&key).await);
    let key = unique("unsigned-bad");
    let (r, _) = put(
        &key,
        "UNSIGNED-PAYLOAD",
        vec![("x-amz-checksum-crc32".into(), crc32(&d))],
        &tamper(d.clone(), 7),
        &s,
    );
    assert_eq!(
        (r.status, r.code().as_deref()),
        (400, Some("BadDigest")),
        "{}",
        r.body
    );
    assert!(!exists(&key).await);
}

fn chunked_headers(decoded: usize, trailer: Option<&str>) -> Vec<(String, String)> {
    let mut h = vec![
        ("content-encoding".to_string(), "aws-chunked".to_string()),
        (
            "x-amz-decoded-content-length".to_string(),
            decoded.to_string(),
        ),
    ];
    if let Some(t) = trailer {
        h.push(("x-amz-trailer".into(), t.into()));
    }
    h
}

/// Signed chunks need the seed signature before framing: sign the header
/// first, then frame with it.
fn signed_chunked_put(
    key: &str,
    d: &[u8],
    trailer: Option<(&str, String)>,
    corrupt: Option<usize>,
) -> common::raw::Response {
    let s = signer();
    let mode = if trailer.is_some() {
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    } else {
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    };
    // Framing length does not depend on signature values: frame once to size it.
    let probe = s.aws_chunked(
        d,
        64 * 1024,
        Some(&"0".repeat(64)),
        trailer.as_ref().map(|(n, v)| (*n, v.as_str())),
    );
    let target = format!("/{BUCKET}/{key}");
    let mut headers = vec![
        ("host".to_string(), host()),
        ("x-amz-content-sha256".to_string(), mode.to_string()),
        ("content-length".to_string(), probe.len().to_string()),
    ];
    headers.extend(chunked_headers(d.len(), trailer.as_ref().map(|(n, _)| *n)));
    let (headers, seed) = s.sign_headers("PUT", &target, headers, mode);
    let mut body = s.aws_chunked(
        d,
        64 * 1024,
        Some(&seed),
        trailer.as_ref().map(|(n, v)| (*n, v.as_str())),
    );
    assert_eq!(body.len(), probe.len());
    if let Some(at) = corrupt {
        // Corrupt a data byte (skip the first chunk header).
        body[at] ^= 0x01;
    }
    send(env().gateway.port, "PUT", &target, &headers, &body)
}

#[tokio::test]
async fn signed_aws_chunked() {
    let d = data(300_000, 3);
    let key = unique("chunked-good");
    let r = signed_chunked_put(&key, &d, None, None);
    assert_eq!(r.status, 200, "{}", r.body);
    let got = env()
        .direct()
        .get_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .expect("get")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    assert!(
        got == d,
        "stored object is exactly the client's bytes (no aws-chunked framing)"
    );
    for at in [200, 250_000] {
        let key = unique("chunked-bad");
        let r = signed_chunked_put(&key, &d, None, Some(at));
        assert_eq!(
            (r.status, r.code().as_deref()),
            (403, Some("SignatureDoesNotMatch")),
            "{}",
            r.body
        );
        assert!(!exists(&key).await);
    }
}

#[tokio::test]
async fn signed_aws_chunked_with_trailer() {
    let d = data(150_000, 4);
    let key = unique("chunked-trailer-good");
    let r = signed_chunked_put(&key, &d, Some(("x-amz-checksum-crc32", crc32(&d))), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(exists(&key).await);
    // Data tampered: the chunk signature fails.
    let key = unique("chunked-trailer-bad-data");
    let r = signed_chunked_put(
        &key,
        &d,
        Some(("x-amz-checksum-crc32", crc32(&d))),
        Some(100_000),
    );
    assert_eq!(
        r.code().as_deref(),
        Some("SignatureDoesNotMatch"),
        "{}",
        r.body
    );
    assert!(!exists(&key).await);
    // Checksum wrong but signed as such: BadDigest.
    let key = unique("chunked-trailer-bad-sum");
    let r = signed_chunked_put(
        &key,
        &d,
        Some(("x-amz-checksum-crc32", crc32(b"other"))),
        None,
    );
    assert_eq!(
        (r.status, r.code().as_deref()),
        (400, Some("BadDigest")),
        "{}",
        r.body
    );
    assert!(!exists(&key).await);
}

#[tokio::test]
async fn unsigned_trailer_every_checksum() {
    let d = data(100_000, 5);
    let s = signer();
    for alg in ["crc32", "crc32c", "crc64nvme", "sha1", "sha256"] {
        let name = format!("x-amz-checksum-{alg}");
        let value = checksum(alg, &d);
        let body = s.aws_chunked(&d, 16 * 1024, None, Some((&name, &value)));
        let key = unique(&format!("trailer-{alg}-good"));
        let (r, _) = put(
            &key,
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            chunked_headers(d.len(), Some(&name)),
            &body,
            &s,
        );
        assert_eq!(r.status, 200, "{alg}: {}", r.body);
        let got = env()
            .direct()
            .get_object()
            .bucket(BUCKET)
            .key(&key)
            .send()
            .await
            .expect("get")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        assert!(got == d, "{alg}: stored bytes");
        // The client's checksum travelled on to the upstream, which stored it.
        let head = env()
            .direct()
            .head_object()
            .bucket(BUCKET)
            .key(&key)
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .expect("head");
        let stored = match alg {
            "crc32" => head.checksum_crc32(),
            "crc32c" => head.checksum_crc32_c(),
            "crc64nvme" => head.checksum_crc64_nvme(),
            "sha1" => head.checksum_sha1(),
            _ => head.checksum_sha256(),
        };
        assert_eq!(
            stored,
            Some(value.as_str()),
            "{alg}: checksum stored upstream"
        );
        let key = unique(&format!("trailer-{alg}-bad"));
        let body = tamper(body, 5000);
        let (r, _) = put(
            &key,
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            chunked_headers(d.len(), Some(&name)),
            &body,
            &s,
        );
        assert_eq!(
            (r.status, r.code().as_deref()),
            (400, Some("BadDigest")),
            "{alg}: {}",
            r.body
        );
        assert!(!exists(&key).await, "{alg}");
    }
}

#[tokio::test]
async fn tampered_upload_part_leaves_no_part() {
    let e = env();
    let key = unique("part-bad");
    let up = e
        .alice()
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .expect("create");
    let id = up.upload_id().expect("id").to_string();
    let d = data(5 * 1024 * 1024, 6);
    let s = signer();
    let target = format!(
        "/{BUCKET}/{key}?partNumber=1&uploadId={}",
        percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC)
    );
    let headers = vec![
        ("host".to_string(), host()),
        ("x-amz-content-sha256".to_string(), sha256_hex(&d)),
        ("content-length".to_string(), d.len().to_string()),
    ];
    let (headers, _) = s.sign_headers("PUT", &target, headers, &sha256_hex(&d));
    let r = send(
        e.gateway.port,
        "PUT",
        &target,
        &headers,
        &tamper(d.clone(), d.len() - 1),
    );
    assert_eq!(
        r.code().as_deref(),
        Some("XAmzContentSHA256Mismatch"),
        "{}",
        r.body
    );
    let parts = e
        .direct()
        .list_parts()
        .bucket(BUCKET)
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("list parts");
    assert!(
        parts.parts().is_empty(),
        "no part may appear upstream: {:?}",
        parts.parts()
    );
    let r = send(e.gateway.port, "PUT", &target, &headers, &d);
    assert_eq!(
        r.status, 200,
        "the untampered part goes through: {}",
        r.body
    );
    e.alice()
        .abort_multipart_upload()
        .bucket(BUCKET)
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("abort");
}

#[tokio::test]
async fn empty_aws_chunked_object_is_verified_first() {
    let s = signer();
    let key = unique("empty-chunked");
    let target = format!("/{BUCKET}/{key}");
    let mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
    let probe = s.aws_chunked(&[], 64 * 1024, Some(&"0".repeat(64)), None);
    let mut headers = vec![
        ("host".to_string(), host()),
        ("x-amz-content-sha256".to_string(), mode.to_string()),
        ("content-length".to_string(), probe.len().to_string()),
    ];
    headers.extend(chunked_headers(0, None));
    let (headers, _seed) = s.sign_headers("PUT", &target, headers, mode);
    // A body signed with the wrong seed: the final chunk's signature fails.
    let bad = s.aws_chunked(&[], 64 * 1024, Some(&"1".repeat(64)), None);
    let r = send(env().gateway.port, "PUT", &target, &headers, &bad);
    assert_eq!(
        r.code().as_deref(),
        Some("SignatureDoesNotMatch"),
        "{}",
        r.body
    );
    assert!(
        !exists(&key).await,
        "an empty object with a bad signature must not be created"
    );
    let _ = Duration::from_secs(0);
}
