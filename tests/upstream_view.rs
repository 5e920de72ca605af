//! What the upstream receives and what the client gets back, observed with
//! stand-in upstreams (docs/guarantees.md): preflights forwarded without
//! `cors`, upstream answers relayed as they are (a 200 whose body is an
//! error included), an abort repeated while parts remain, empty optional
//! parameters dropped, the expected bucket owner passed through by default,
//! the bucket region header rewritten, a chunked body sent with a fixed
//! Content-Length.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use common::{
    client, code, raw, BucketRule, Credentials, GatewayConfig, Upstream, ALICE_KEY, ALICE_SECRET,
};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "s3gate-upstream-view-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&d).expect("dir");
    d
}

/// An upstream that answers 200 to everything and records request heads.
fn recorder() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match s.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
            // The body, whole, before the answer (as a store that checks it).
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            let _ = s.read_exact(&mut body);
            if let Ok(mut g) = log.lock() {
                g.push(head);
            }
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\naccess-control-allow-origin: http://app.example.test\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });
    (port, seen)
}

/// README (CORS): "Without `cors`, preflights are forwarded to the upstream
/// bucket's own CORS configuration."
#[test]
fn preflights_without_cors_go_to_the_upstream_bucket() {
    let d = dir("preflight");
    let (port, seen) = recorder();
    let gw = GatewayConfig::empty()
        .alice_and_bob()
        .upstream(
            "recorder",
            Upstream::s3_compatible(
                format!("http://127.0.0.1:{port}"),
                Credentials::keys("R", "r"),
            )
            .region("us-east-1"),
        )
        .bucket(
            "site",
            BucketRule::upstream("recorder").target("site-upstream"),
        )
        .start(&d);
    let r = raw::send(
        gw.port,
        "OPTIONS",
        "/site/page.html",
        &[
            ("host".into(), format!("127.0.0.1:{}", gw.port)),
            ("origin".into(), "http://app.example.test".into()),
            ("access-control-request-method".into(), "PUT".into()),
        ],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://app.example.test"),
        "the upstream's answer is relayed"
    );
    let heads = seen.lock().map(|g| g.clone()).unwrap_or_default();
    let preflight = heads
        .iter()
        .find(|h| h.starts_with("options "))
        .unwrap_or_else(|| panic!("no preflight reached the upstream: {heads:?}"));
    assert!(
        preflight.starts_with("options /site-upstream/page.html "),
        "to the upstream's bucket: {preflight}"
    );
    assert!(
        preflight.contains("origin: http://app.example.test"),
        "{preflight}"
    );
    assert!(
        preflight.contains("access-control-request-method: put"),
        "{preflight}"
    );
}

/// A stand-in S3 for relaying: CreateMultipartUpload gets an upload id,
/// CompleteMultipartUpload a 200 whose body is an `<Error>` (after the
/// whitespace S3 sends meanwhile), GetObject a 404 `NoSuchKey` with a header
/// of its own.
fn scripted_upstream() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match s.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            let _ = s.read_exact(&mut body);
            let line = head.lines().next().unwrap_or_default().to_string();
            let (status, extra, xml) = if line.starts_with("post ") && line.contains("?uploads") {
                (
                    "200 OK",
                    "",
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult><Bucket>relay-up</Bucket><Key>k</Key><UploadId>SCRIPTED-UPLOAD-1</UploadId></InitiateMultipartUploadResult>".to_string(),
                )
            } else if line.starts_with("post ") && line.contains("uploadid=") {
                (
                    "200 OK",
                    "",
                    format!(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message><RequestId>UP-1</RequestId></Error>",
                        " ".repeat(64)
                    ),
                )
            } else if line.starts_with("head /relay-up ") {
                (
                    "200 OK",
                    "x-amz-bucket-region: upstream-region-1\r\n",
                    String::new(),
                )
            } else {
                (
                    "404 Not Found",
                    "x-amz-id-2: upstream-host-id\r\nx-upstream-marker: kept\r\n",
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>k</Key></Error>".to_string(),
                )
            };
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/xml\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{xml}",
                    xml.len()
                )
                .as_bytes(),
            );
        }
    });
    port
}

/// Guarantees: "Upstream answers are relayed as they are: status, headers,
/// XML, errors, including a `CompleteMultipartUpload` 200 whose body is an
/// error."
#[tokio::test]
async fn upstream_answers_are_relayed_as_they_are_even_a_200_error() {
    let d = dir("relay");
    let port = scripted_upstream();
    let gw = GatewayConfig::empty()
        .alice_and_bob()
        .upstream(
            "scripted",
            Upstream::s3_compatible(
                format!("http://127.0.0.1:{port}"),
                Credentials::keys("R", "r"),
            )
            .region("us-east-1"),
        )
        .bucket("relay", BucketRule::upstream("scripted").target("relay-up"))
        .start(&d);
    let alice = client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    let up = alice
        .create_multipart_upload()
        .bucket("relay")
        .key("k")
        .send()
        .await
        .expect("create");
    assert_eq!(up.upload_id(), Some("SCRIPTED-UPLOAD-1"));

    // The SDK reads a 200 with an <Error> body as the error it is: the
    // gateway passed the body on unchanged (and did not make it a success).
    let e = alice
        .complete_multipart_upload()
        .bucket("relay")
        .key("k")
        .upload_id("SCRIPTED-UPLOAD-1")
        .send()
        .await
        .expect_err("a 200 whose body is an error");
    assert_eq!(code(&e), Some("InternalError"), "{e:?}");
    let raw = e.raw_response().expect("raw response");
    assert_eq!(raw.status().as_u16(), 200, "the status is the upstream's");
    let body = raw
        .body()
        .bytes()
        .map(|b| String::from_utf8_lossy(b).to_string());
    assert!(
        body.as_deref()
            .is_some_and(|b| b.contains("<RequestId>UP-1</RequestId>")),
        "the upstream's document: {body:?}"
    );

    let e = alice
        .get_object()
        .bucket("relay")
        .key("k")
        .send()
        .await
        .expect_err("404");
    assert_eq!(code(&e), Some("NoSuchKey"));
    let raw = e.raw_response().expect("raw response");
    assert_eq!(raw.status().as_u16(), 404);
    assert_eq!(raw.headers().get("x-upstream-marker"), Some("kept"));
    let body = raw
        .body()
        .bytes()
        .map(|b| String::from_utf8_lossy(b).to_string());
    assert!(
        body.as_deref()
            .is_some_and(|b| b.contains("<Message>The specified key does not exist.</Message>")),
        "the upstream's message: {body:?}"
    );
}

/// A stand-in S3 whose first abort leaves a part behind (as a part upload
/// that lands late would): ListParts still lists it until the second abort.
/// Returns the port and the number of aborts received.
fn sticky_upstream() -> (u16, Arc<Mutex<u32>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let aborts = Arc::new(Mutex::new(0u32));
    let seen = aborts.clone();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match s.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let line = head.lines().next().unwrap_or_default().to_string();
            let done = seen.lock().map(|n| *n).unwrap_or(0);
            let (status, xml) = if line.starts_with("post ") && line.contains("?uploads") {
                ("200 OK", "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>STICKY-1</UploadId></InitiateMultipartUploadResult>".to_string())
            } else if line.starts_with("delete ") {
                if let Ok(mut n) = seen.lock() {
                    *n += 1;
                }
                ("204 No Content", String::new())
            } else if line.starts_with("get ") && done < 2 {
                ("200 OK", "<ListPartsResult><IsTruncated>false</IsTruncated><Part><PartNumber>1</PartNumber><Size>5</Size></Part></ListPartsResult>".to_string())
            } else {
                ("404 Not Found", "<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>".to_string())
            };
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{xml}",
                    xml.len()
                )
                .as_bytes(),
            );
        }
    });
    (port, aborts)
}

/// README (Multipart uploads and aborts): the abort flow "verifies with
/// ListParts and aborts again while parts remain", and answers as S3 would.
#[tokio::test]
async fn an_abort_that_leaves_parts_is_repeated_until_none_remain() {
    let d = dir("sticky");
    let (port, aborts) = sticky_upstream();
    let audit = d.join("audit.jsonl");
    let gw = GatewayConfig::empty()
        .alice_and_bob()
        .upstream(
            "sticky",
            Upstream::s3_compatible(
                format!("http://127.0.0.1:{port}"),
                Credentials::keys("R", "r"),
            )
            .region("us-east-1"),
        )
        .bucket("sticky", BucketRule::upstream("sticky"))
        .audit(common::Audit::new(&audit))
        .start(&d);
    let alice = client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    let up = alice
        .create_multipart_upload()
        .bucket("sticky")
        .key("k")
        .send()
        .await
        .expect("create");
    assert_eq!(up.upload_id(), Some("STICKY-1"));
    alice
        .abort_multipart_upload()
        .bucket("sticky")
        .key("k")
        .upload_id("STICKY-1")
        .send()
        .await
        .expect("the abort succeeds once no part remains");
    assert_eq!(
        aborts.lock().map(|n| *n).unwrap_or(0),
        2,
        "a part remained after the first abort: aborted again, then verified gone"
    );
    let text = std::fs::read_to_string(&audit).expect("audit log");
    let record: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|r: &serde_json::Value| r["event"] == "AbortMultipartUpload")
        .unwrap_or_else(|| panic!("no abort record:\n{text}"));
    assert_eq!(record["attempts"], 2, "{record}");
    assert_eq!(record["outcome"], "aborted", "{record}");
}

/// What a recording upstream received, through a gateway whose bucket keeps
/// the default rules.
fn recorded_through(
    name: &str,
    method: &str,
    target: &str,
    extra: &[(&str, &str)],
) -> (raw::Response, Vec<String>) {
    let d = dir(name);
    let (port, seen) = recorder();
    let gw = GatewayConfig::empty()
        .alice_and_bob()
        .upstream(
            "recorder",
            Upstream::s3_compatible(
                format!("http://127.0.0.1:{port}"),
                Credentials::keys("R", "r"),
            )
            .region("us-east-1"),
        )
        .bucket(
            "site",
            BucketRule::upstream("recorder").target("site-upstream"),
        )
        .start(&d);
    let signer = raw::Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: std::time::SystemTime::now(),
    };
    let mut headers = vec![
        ("host".to_string(), format!("127.0.0.1:{}", gw.port)),
        ("x-amz-content-sha256".to_string(), raw::sha256_hex(b"")),
    ];
    headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    let (headers, _) = signer.sign_headers(method, target, headers, &raw::sha256_hex(b""));
    let r = raw::send(gw.port, method, target, &headers, b"");
    let heads = seen.lock().map(|g| g.clone()).unwrap_or_default();
    (r, heads)
}

/// Guarantees: "Empty optional parameters (`prefix=`, `marker=`) mean
/// \"absent\" to S3 and are dropped."
#[test]
fn empty_optional_parameters_are_dropped_upstream() {
    let (r, heads) = recorded_through(
        "empty-params",
        "GET",
        "/site?delimiter=&marker=&prefix=",
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let line = heads
        .iter()
        .map(|h| h.lines().next().unwrap_or_default().to_string())
        .find(|l| l.starts_with("get /site-upstream"))
        .unwrap_or_else(|| panic!("no ListObjects upstream: {heads:?}"));
    assert!(
        !line.contains("prefix") && !line.contains("marker") && !line.contains("delimiter"),
        "empty parameters are dropped: {line}"
    );
}

/// Bucket rules: "`expected_bucket_owner: passthrough` — forward the
/// client's `x-amz-expected-bucket-owner` as is (default)".
#[test]
fn the_expected_bucket_owner_passes_through_by_default() {
    let (r, heads) = recorded_through(
        "passthrough",
        "GET",
        "/site/k",
        &[("x-amz-expected-bucket-owner", "444455556666")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let head = heads
        .iter()
        .find(|h| h.starts_with("get /site-upstream/k"))
        .unwrap_or_else(|| panic!("no GetObject upstream: {heads:?}"));
    assert!(
        head.contains("x-amz-expected-bucket-owner: 444455556666"),
        "{head}"
    );
}

/// Guarantees: "`x-amz-bucket-region` carries [the gateway's region] too, so
/// clients that discover the region … sign for the region the gateway
/// verifies."
#[tokio::test]
async fn the_bucket_region_header_names_the_gateways_region() {
    let d = dir("region");
    let port = scripted_upstream();
    let gw = GatewayConfig::empty()
        .alice_and_bob()
        .upstream(
            "scripted",
            Upstream::s3_compatible(
                format!("http://127.0.0.1:{port}"),
                Credentials::keys("R", "r"),
            )
            .region("upstream-region-1"),
        )
        .bucket("relay", BucketRule::upstream("scripted").target("relay-up"))
        .start(&d);
    let alice = client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    let head = alice
        .head_bucket()
        .bucket("relay")
        .send()
        .await
        .expect("head bucket");
    assert_eq!(
        head.bucket_region(),
        Some("us-east-1"),
        "the upstream's region is not passed on"
    );
}

/// Guarantees: "The upstream request always has a fixed `Content-Length`":
/// a signed aws-chunked PUT goes upstream as its decoded bytes with their
/// length, never chunked.
#[test]
fn a_chunked_body_goes_upstream_with_a_fixed_content_length() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (port, seen) = recorder();
    let d = dir("fixed-length");
    let gw = GatewayConfig::empty()
        .alice_and_bob()
        .upstream(
            "recorder",
            Upstream::s3_compatible(
                format!("http://127.0.0.1:{port}"),
                Credentials::keys("R", "r"),
            )
            .region("us-east-1"),
        )
        .bucket("site", BucketRule::upstream("recorder"))
        .start(&d);
    let signer = raw::Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: std::time::SystemTime::now(),
    };
    let mode = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
    let probe = signer.aws_chunked(&data, 64 * 1024, Some(&"0".repeat(64)), None);
    let target = "/site/chunked";
    let headers = vec![
        ("host".to_string(), format!("127.0.0.1:{}", gw.port)),
        ("x-amz-content-sha256".to_string(), mode.to_string()),
        ("content-length".to_string(), probe.len().to_string()),
        ("content-encoding".to_string(), "aws-chunked".to_string()),
        (
            "x-amz-decoded-content-length".to_string(),
            data.len().to_string(),
        ),
    ];
    let (headers, seed) = signer.sign_headers("PUT", target, headers, mode);
    let body = signer.aws_chunked(&data, 64 * 1024, Some(&seed), None);
    let r = raw::send(gw.port, "PUT", target, &headers, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let heads = seen.lock().map(|g| g.clone()).unwrap_or_default();
    let put = heads
        .iter()
        .find(|h| h.starts_with("put /site/chunked"))
        .unwrap_or_else(|| panic!("no PUT upstream: {heads:?}"));
    assert!(
        put.contains(&format!("content-length: {}\r\n", data.len())),
        "the decoded length: {put}"
    );
    assert!(!put.contains("transfer-encoding"), "never chunked: {put}");
    assert!(
        !put.contains("aws-chunked"),
        "the framing is decoded: {put}"
    );
}

/// README (Upstreams): upstream connections are pooled and reused. Twenty
/// GETs (the gateway's own relay) and twenty PUTs (pingora's proxy path),
/// from one kept-alive client and from fresh client connections, reach the
/// upstream over one connection per path: a gateway that opened a
/// connection per request would show forty.
#[tokio::test]
async fn upstream_connections_are_reused_across_requests_and_clients() {
    use common::standin::{Action, StandIn};
    let up = StandIn::start(|r| {
        if r.method == "GET" {
            Action::Reply {
                status: 200,
                headers: vec![("etag".into(), "\"e\"".into())],
                body: b"hello".to_vec(),
            }
        } else {
            Action::status(200)
        }
    });
    let gw = GatewayConfig::empty()
        .alice_and_bob()
        .upstream(
            "up",
            Upstream::s3_compatible(up.endpoint(), Credentials::keys("R", "r")).region("us-east-1"),
        )
        .bucket("*", BucketRule::upstream("up"))
        // One runtime thread: the pools are per thread.
        .extra_yaml("threads: 1")
        .start(&dir("pool"));
    let alice = client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    for i in 0..10 {
        let got = alice
            .get_object()
            .bucket("pool")
            .key(format!("k{i}"))
            .send()
            .await
            .expect("get");
        let body = got.body.collect().await.expect("body").into_bytes();
        assert_eq!(&body[..], b"hello");
        alice
            .put_object()
            .bucket("pool")
            .key(format!("k{i}"))
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
            .send()
            .await
            .expect("put");
    }
    // Fresh client connections, one request each.
    let signer = raw::Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: std::time::SystemTime::now(),
    };
    for i in 0..10 {
        for method in ["GET", "PUT"] {
            let target = format!("/pool/fresh-{i}");
            let mut headers = vec![
                ("host".to_string(), format!("127.0.0.1:{}", gw.port)),
                ("x-amz-content-sha256".to_string(), raw::sha256_hex(b"")),
            ];
            if method == "PUT" {
                headers.push(("content-length".to_string(), "0".to_string()));
            }
            let (headers, _) = signer.sign_headers(method, &target, headers, &raw::sha256_hex(b""));
            let r = raw::send(gw.port, method, &target, &headers, b"");
            assert_eq!(r.status, 200, "{method} {target}: {}", r.body);
        }
    }
    assert_eq!(up.requests().len(), 40);
    let conns = up.conns().len();
    assert!(
        conns <= 2,
        "40 requests took {conns} upstream connections (one per path expected)"
    );
}
