//! What real clients need from the gateway beyond the core pipeline: the
//! gateway's region where clients discover one, a whole-object checksum on
//! CompleteMultipartUpload, and `Expect: 100-continue` without losing the
//! connection.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use common::raw::{send, sha256_hex, Signer};
use common::*;

const BUCKET: &str = "sdk";

fn signer() -> Signer<'static> {
    Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: SystemTime::now(),
    }
}

/// Read one HTTP response (status, headers, body by Content-Length).
fn read_response(r: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).expect("header");
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0usize);
    let mut body = vec![0; len];
    r.read_exact(&mut body).expect("body");
    (status, headers, body)
}

#[tokio::test]
async fn get_bucket_location_answers_the_gateways_region() {
    let e = env();
    // Garage's own region is `garage`; clients must be told the gateway's.
    let out = e
        .alice()
        .get_bucket_location()
        .bucket(BUCKET)
        .send()
        .await
        .expect("location");
    let constraint = out.location_constraint().map(|c| c.as_str().to_string());
    assert!(
        constraint.as_deref().is_none_or(str::is_empty),
        "us-east-1 is the empty constraint, got {constraint:?}"
    );
    let missing = e
        .alice()
        .get_bucket_location()
        .bucket("no-such-bucket-here")
        .send()
        .await
        .expect_err("missing bucket");
    assert_eq!(code(&missing), Some("NoSuchBucket"));
    // HeadBucket's region header, when the upstream sends one, is ours too.
    let head = e
        .alice()
        .head_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("head");
    if let Some(r) = head.bucket_region() {
        assert_eq!(r, "us-east-1");
    }
}

#[tokio::test]
async fn a_whole_object_checksum_on_complete_is_not_checked_against_the_body() {
    let e = env();
    let c = e.alice();
    let key = unique("complete-checksum");
    let id = c
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .expect("create")
        .upload_id()
        .expect("id")
        .to_string();
    let part = c
        .upload_part()
        .bucket(BUCKET)
        .key(&key)
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(data(1000, 3)))
        .send()
        .await
        .expect("part");
    let etag = part.e_tag().expect("etag").to_string();
    let body = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag}</ETag></Part></CompleteMultipartUpload>"
    );
    let target = format!("/{BUCKET}/{key}?uploadId={id}");
    let port = e.gateway.port;
    let sha = sha256_hex(body.as_bytes());
    let headers = vec![
        ("host".to_string(), format!("127.0.0.1:{port}")),
        ("x-amz-content-sha256".to_string(), sha.clone()),
        ("content-length".to_string(), body.len().to_string()),
        // The checksum of the whole object (as minio-go and boto3's
        // ChecksumType=FULL_OBJECT send it), not of this XML body.
        ("x-amz-checksum-crc32".to_string(), "AAAAAA==".to_string()),
        ("x-amz-checksum-type".to_string(), "FULL_OBJECT".to_string()),
    ];
    let (headers, _) = signer().sign_headers("POST", &target, headers, &sha);
    let r = send(port, "POST", &target, &headers, body.as_bytes());
    // Whatever the upstream makes of the checksum, the gateway did not
    // refuse the request for it.
    assert!(
        !r.body.contains("<HostId>s3gate</HostId>"),
        "the gateway refused: {} {}",
        r.status,
        r.body
    );
    let _ = c
        .abort_multipart_upload()
        .bucket(BUCKET)
        .key(&key)
        .upload_id(&id)
        .send()
        .await;
}

#[tokio::test]
async fn expect_100_continue_keeps_the_connection() {
    let e = env();
    let port = e.gateway.port;
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut w = stream.try_clone().expect("clone");
    let mut r = BufReader::new(stream);
    for round in 0..2 {
        let key = unique("expect");
        let target = format!("/{BUCKET}/{key}");
        let body = data(4096, round);
        let sha = sha256_hex(&body);
        let headers = vec![
            ("host".to_string(), format!("127.0.0.1:{port}")),
            ("x-amz-content-sha256".to_string(), sha.clone()),
            ("content-length".to_string(), body.len().to_string()),
            ("expect".to_string(), "100-continue".to_string()),
        ];
        let (headers, _) = signer().sign_headers("PUT", &target, headers, &sha);
        let mut head = format!("PUT {target} HTTP/1.1\r\n");
        for (n, v) in &headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        w.write_all(head.as_bytes()).expect("head");
        let (status, _, _) = read_response(&mut r);
        assert_eq!(status, 100, "round {round}: 100 Continue first");
        w.write_all(&body).expect("body");
        let (status, headers, _) = read_response(&mut r);
        assert_eq!(status, 200, "round {round}");
        let connection = headers
            .iter()
            .find(|(n, _)| n == "connection")
            .map(|(_, v)| v.to_ascii_lowercase());
        assert_ne!(
            connection.as_deref(),
            Some("close"),
            "round {round}: the connection must stay open"
        );
    }
}

#[tokio::test]
async fn upstream_errors_name_no_upstream_identity_and_are_logged() {
    let e = env();
    // Garage's key may not create buckets: its error names the key.
    let bucket = unique("nope").to_ascii_lowercase();
    let err = e
        .alice()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect_err("Garage refuses");
    let message = aws_sdk_s3::error::ProvideErrorMetadata::message(&err)
        .unwrap_or_default()
        .to_string();
    assert!(
        !message.contains(&e.garage.access_key_id),
        "the upstream's key reached the client: {message}"
    );
    assert!(message.contains("[upstream identity]"), "{message}");
    let code = code(&err).map(str::to_string).expect("a code");
    // The access log carries the upstream's code (its line is written
    // after the answer: poll for it).
    let wanted = format!("error=\"{code}\"");
    let found = |log: &str| {
        log.lines()
            .any(|l| l.contains("CreateBucket") && l.contains(&bucket) && l.contains(&wanted))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !found(&e.gateway.log()) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await; // poll interval
    }
    let log = e.gateway.log();
    assert!(found(&log), "{log}");
}

#[tokio::test]
async fn a_body_that_fails_after_100_continue_still_gets_its_s3_error() {
    let e = env();
    let port = e.gateway.port;
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut w = stream.try_clone().expect("clone");
    let mut r = BufReader::new(stream);
    let key = unique("expect-bad");
    let target = format!("/{BUCKET}/{key}");
    let body = data(4096, 9);
    let sha = sha256_hex(&body);
    let headers = vec![
        ("host".to_string(), format!("127.0.0.1:{port}")),
        ("x-amz-content-sha256".to_string(), sha.clone()),
        ("content-length".to_string(), body.len().to_string()),
        ("expect".to_string(), "100-continue".to_string()),
    ];
    let (headers, _) = signer().sign_headers("PUT", &target, headers, &sha);
    let mut head = format!("PUT {target} HTTP/1.1\r\n");
    for (n, v) in &headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes()).expect("head");
    let (status, _, _) = read_response(&mut r);
    assert_eq!(status, 100);
    let mut tampered = body.clone();
    tampered[100] ^= 1;
    w.write_all(&tampered).expect("body");
    let (status, _, text) = read_response(&mut r);
    let text = String::from_utf8_lossy(&text);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("XAmzContentSHA256Mismatch"), "{text}");
    assert!(
        !common::object_exists(&e.direct(), BUCKET, &key).await,
        "nothing stored"
    );
}
