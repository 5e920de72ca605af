//! Upstream faults: down, resetting mid-body, too slow. Each gives the
//! client an S3 error (never a truncated success) within the configured
//! timeout, and the next request succeeds once the upstream is back.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::raw::{send, sha256_hex, Signer};
use common::{
    BucketRule, ClosedPort, Credentials, GatewayConfig, Upstream, ALICE_KEY, ALICE_SECRET,
};

const NORMAL: u8 = 0;
const RESET_RESPONSE: u8 = 1;
const SLOW: u8 = 2;
const RESET_REQUEST: u8 = 3;
/// A body long enough to be spliced (`BIG` bytes), whole.
const BIG_BODY: u8 = 4;
/// The same announced, then a reset after a quarter of it.
const RESET_BIG_BODY: u8 = 5;
const BIG: usize = 4 << 20;
/// An informational answer (103 Early Hints) before the real one.
const EARLY_HINTS: u8 = 6;
/// A 200 with a chunked body that breaks off (a reset) mid-body.
const RESET_CHUNKED_RESPONSE: u8 = 7;

/// A stand-in upstream whose behaviour the test switches; its port.
fn upstream(mode: Arc<AtomicU8>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let port = l.local_addr().expect("addr").port();
    serve_on(l, mode);
    port
}

/// Serve `l` as the stand-in upstream.
fn serve_on(l: TcpListener, mode: Arc<AtomicU8>) {
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let mode = mode.clone();
            std::thread::spawn(move || serve(conn, mode.load(Ordering::SeqCst)));
        }
    });
}

/// Drop the connection in the middle of a transfer. Unread data in the
/// socket makes the kernel answer with a reset.
fn reset(s: TcpStream) {
    let _ = s.shutdown(std::net::Shutdown::Both);
    drop(s);
}

fn serve(s: TcpStream, mode: u8) {
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut s = s;
    match mode {
        RESET_REQUEST => {
            let mut buf = vec![0u8; len.min(1000)];
            let _ = r.read_exact(&mut buf);
            reset(s);
        }
        SLOW => std::thread::sleep(Duration::from_secs(10)),
        RESET_RESPONSE => {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n");
            let _ = s.write_all(&[b'x'; 100_000]);
            let _ = s.flush();
            reset(s);
        }
        RESET_CHUNKED_RESPONSE => {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
            for _ in 0..10 {
                let _ = s.write_all(format!("{:x}\r\n", 10_000).as_bytes());
                let _ = s.write_all(&[b'y'; 10_000]);
                let _ = s.write_all(b"\r\n");
            }
            // Half of one more chunk, then the break.
            let _ = s.write_all(format!("{:x}\r\n", 10_000).as_bytes());
            let _ = s.write_all(&[b'y'; 5_000]);
            let _ = s.flush();
            reset(s);
        }
        EARLY_HINTS => {
            let _ = s.write_all(
                b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
            );
        }
        BIG_BODY | RESET_BIG_BODY => {
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {BIG}\r\n\r\n");
            let _ = s.write_all(head.as_bytes());
            let sent = if mode == BIG_BODY { BIG } else { BIG / 4 };
            let body: Vec<u8> = (0..sent).map(|i| b'a' + (i % 26) as u8).collect();
            let _ = s.write_all(&body);
            let _ = s.flush();
            if mode == RESET_BIG_BODY {
                reset(s);
            }
        }
        _ => {
            let mut buf = vec![0u8; len];
            let _ = r.read_exact(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
            );
        }
    }
}

fn gateway(upstream_port: u16) -> common::Gateway {
    config(upstream_port).start(&dir(upstream_port))
}

fn dir(upstream_port: u16) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "s3gate-faults-{}-{upstream_port}",
        std::process::id()
    ))
}

fn config(upstream_port: u16) -> GatewayConfig {
    GatewayConfig::empty()
        .principal("alice", ALICE_KEY, ALICE_SECRET)
        .upstream(
            "flaky",
            Upstream::s3_compatible(
                format!("http://127.0.0.1:{upstream_port}"),
                Credentials::keys("a", "b"),
            )
            .region("us-east-1"),
        )
        .bucket("*", BucketRule::upstream("flaky"))
        .timeouts(2, 1, 5)
}

fn request(gw: &common::Gateway, method: &str, body: &[u8]) -> (common::raw::Response, Duration) {
    let s = Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: SystemTime::now(),
    };
    let host = format!("127.0.0.1:{}", gw.port);
    let mut headers = vec![
        ("host".to_string(), host),
        ("x-amz-content-sha256".to_string(), sha256_hex(body)),
    ];
    if method == "PUT" {
        headers.push(("content-length".into(), body.len().to_string()));
    }
    let (headers, _) = s.sign_headers(method, "/bucket/key", headers, &sha256_hex(body));
    let start = Instant::now();
    let r = send(gw.port, method, "/bucket/key", &headers, body);
    (r, start.elapsed())
}

#[test]
fn upstream_down_then_back() {
    // Bound but not listening: connections are refused.
    let up = ClosedPort::new();
    let gw = gateway(up.port());
    let (r, took) = request(&gw, "GET", b"");
    assert_eq!(
        (r.status, r.code().as_deref()),
        (502, Some("BadGateway")),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("flaky") && took < Duration::from_secs(3),
        "{took:?} {}",
        r.body
    );
    let mode = Arc::new(AtomicU8::new(NORMAL));
    serve_on(up.listen(), mode);
    let (r, _) = request(&gw, "GET", b"");
    assert_eq!(r.status, 200, "the next request succeeds: {}", r.body);
}

#[test]
fn upstream_too_slow_then_fast() {
    let mode = Arc::new(AtomicU8::new(SLOW));
    let up = upstream(mode.clone());
    let gw = gateway(up);
    let (r, took) = request(&gw, "GET", b"");
    assert_eq!(
        (r.status, r.code().as_deref()),
        (504, Some("GatewayTimeout")),
        "{}",
        r.body
    );
    assert!(
        took < Duration::from_secs(4),
        "answered within the read timeout: {took:?}"
    );
    mode.store(NORMAL, Ordering::SeqCst);
    assert_eq!(request(&gw, "GET", b"").0.status, 200);
}

#[test]
fn upstream_reset_during_the_request_body() {
    let mode = Arc::new(AtomicU8::new(RESET_REQUEST));
    let up = upstream(mode.clone());
    let gw = gateway(up);
    let (r, _) = request(&gw, "PUT", &vec![b'z'; 4 << 20]);
    assert_eq!(
        r.status, 502,
        "an S3 error, not a success: {} {}",
        r.status, r.body
    );
    assert_eq!(r.code().as_deref(), Some("BadGateway"));
    mode.store(NORMAL, Ordering::SeqCst);
    assert_eq!(request(&gw, "PUT", b"small").0.status, 200);
}

#[test]
fn upstream_reset_during_the_response_is_never_a_complete_success() {
    let mode = Arc::new(AtomicU8::new(RESET_RESPONSE));
    let up = upstream(mode.clone());
    let gw = gateway(up);
    let (r, _) = request(&gw, "GET", b"");
    // The 200 header may already be out; the body must then end short of
    // its Content-Length, so the client sees a failed transfer.
    let complete = r.status == 200 && r.header("content-length") == Some(&r.body.len().to_string());
    assert!(!complete, "a truncated body must not look complete");
    if r.status == 200 {
        assert!(r.body.len() < 1_000_000, "truncated: {}", r.body.len());
    } else {
        assert_eq!(r.status, 502);
    }
    mode.store(NORMAL, Ordering::SeqCst);
    assert_eq!(request(&gw, "GET", b"").0.status, 200);
}

/// The chunked-encoding counterpart of the test above, with zero copy on
/// (the default) and off: the client never sees the terminating 0-chunk of
/// a body the upstream broke off.
#[test]
fn a_chunked_response_that_breaks_off_never_looks_complete() {
    let up = upstream(Arc::new(AtomicU8::new(RESET_CHUNKED_RESPONSE)));
    for zero_copy in [true, false] {
        let gw = config(up)
            .zero_copy(zero_copy)
            .start(&dir(up).join(format!("zero-copy-{zero_copy}")));
        let (r, _) = request(&gw, "GET", b"");
        let chunked = r
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"));
        let complete = if chunked {
            // The last-chunk (`0`, optional extensions, CRLF, trailers, CRLF).
            r.body.contains("\r\n0\r\n") || r.body.starts_with("0\r\n")
        } else if let Some(len) = r.header("content-length") {
            r.status == 200 && len == r.body.len().to_string()
        } else {
            // Delimited by the close: indistinguishable from complete.
            r.status == 200
        };
        assert!(
            !complete,
            "zero_copy {zero_copy}: a broken-off chunked body looks complete ({} {:?}, {} bytes)",
            r.status,
            r.headers,
            r.body.len()
        );
        if r.status == 200 {
            assert!(r.body.len() < 110_000, "truncated: {}", r.body.len());
        } else {
            assert_eq!(r.status, 502, "{}", r.body);
        }
    }
}

fn big_body() -> String {
    (0..BIG).map(|i| (b'a' + (i % 26) as u8) as char).collect()
}

#[test]
fn a_large_object_is_spliced_whole_and_its_connection_ends() {
    let up = upstream(Arc::new(AtomicU8::new(BIG_BODY)));
    let gw = gateway(up);
    let (r, _) = request(&gw, "GET", b"");
    assert_eq!(r.status, 200);
    assert!(
        r.body == big_body(),
        "{} of {BIG} bytes, or other bytes",
        r.body.len()
    );
    // Spliced: pingora could not count the bytes, so the client is told.
    assert_eq!(r.header("connection"), Some("close"));
    assert!(r.header("x-s3gate-request-id").is_some());
}

/// Two signed GETs on one kept-alive connection: whether each was answered
/// 200 with its whole body.
fn two_gets_on_one_connection(gw: &common::Gateway) -> (bool, bool) {
    let mut conn = TcpStream::connect(("127.0.0.1", gw.port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut answered = [false; 2];
    for ok in answered.iter_mut() {
        let s = Signer {
            key: ALICE_KEY,
            secret: ALICE_SECRET,
            region: "us-east-1",
            time: SystemTime::now(),
        };
        let headers = vec![
            ("host".to_string(), format!("127.0.0.1:{}", gw.port)),
            ("x-amz-content-sha256".to_string(), sha256_hex(b"")),
        ];
        let (headers, _) = s.sign_headers("GET", "/bucket/key", headers, &sha256_hex(b""));
        let mut head = "GET /bucket/key HTTP/1.1\r\n".to_string();
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        if conn.write_all(head.as_bytes()).is_err() {
            break;
        }
        let mut r = BufReader::new(&conn);
        let (mut status, mut len) = (String::new(), 0usize);
        if r.read_line(&mut status).unwrap_or(0) == 0 {
            break;
        }
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; len];
        *ok = status.starts_with("HTTP/1.1 200") && r.read_exact(&mut body).is_ok() && len == BIG;
    }
    (answered[0], answered[1])
}

#[test]
fn a_spliced_answer_ends_its_connection_and_without_zero_copy_it_is_kept() {
    let up = upstream(Arc::new(AtomicU8::new(BIG_BODY)));
    let spliced = gateway(up);
    assert_eq!(two_gets_on_one_connection(&spliced), (true, false));
    let proxied = config(up).zero_copy(false).start(&dir(up).join("proxied"));
    assert_eq!(two_gets_on_one_connection(&proxied), (true, true));
}

#[test]
fn a_spliced_body_that_breaks_off_never_looks_complete() {
    let up = upstream(Arc::new(AtomicU8::new(RESET_BIG_BODY)));
    let gw = gateway(up);
    let (r, _) = request(&gw, "GET", b"");
    assert_eq!(r.status, 200, "the header was out before the break");
    assert_eq!(r.header("content-length"), Some(BIG.to_string().as_str()));
    assert!(r.body.len() < BIG, "truncated: {} of {BIG}", r.body.len());
}

#[test]
fn an_informational_answer_before_the_real_one_is_skipped() {
    let up = upstream(Arc::new(AtomicU8::new(EARLY_HINTS)));
    let gw = gateway(up);
    let (r, _) = request(&gw, "GET", b"");
    assert_eq!((r.status, r.body.as_str()), (200, "hello"));
}

/// Upstreams: "A connection that could not be made is retried once for
/// idempotent operations (GET, HEAD, PUT, DELETE) — nothing has been sent
/// then; nothing else is retried." The upstream's accept queue is kept full,
/// so each connection attempt hangs until `connect_secs` (1 s) gives up: a
/// GET fails after two attempts (about 2 s), a CompleteMultipartUpload (a
/// POST) after one (about 1 s).
#[tokio::test]
async fn a_connection_that_could_not_be_made_is_retried_once_for_idempotent_requests_only() {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
        .expect("bind");
    // Backlog 0: the kernel queues one connection, then drops SYNs.
    let full = socket.listen(0).expect("listen");
    let port = full.local_addr().expect("addr").port();
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let mut fillers = Vec::new();
    while let Ok(c) = TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
        fillers.push(c);
        assert!(fillers.len() < 64, "the accept queue never filled");
    }
    assert!(
        !fillers.is_empty(),
        "the queue takes at least one connection"
    );

    let gw = config(port)
        .timeouts(1, 5, 5)
        .start(&dir(port).join("retry"));
    let s = Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: SystemTime::now(),
    };
    let host = format!("127.0.0.1:{}", gw.port);
    let send_signed = |method: &str, target: &str, body: &[u8]| {
        let mut headers = vec![
            ("host".to_string(), host.clone()),
            ("x-amz-content-sha256".to_string(), sha256_hex(body)),
            ("content-length".to_string(), body.len().to_string()),
        ];
        if method == "GET" {
            headers.pop();
        }
        let (headers, _) = s.sign_headers(method, target, headers, &sha256_hex(body));
        let start = Instant::now();
        let r = send(gw.port, method, target, &headers, body);
        (r, start.elapsed())
    };
    let (put, put_took) = send_signed("PUT", "/bucket/key", b"put");
    assert!(
        put.status == 502 || put.status == 504,
        "{} {}",
        put.status,
        put.body
    );
    // A GET takes the gateway's own relay (zero_copy), a PUT pingora's
    // proxy: both retry.
    let (get, get_took) = send_signed("GET", "/bucket/key", b"");
    assert!(
        get.status == 502 || get.status == 504,
        "{} {}",
        get.status,
        get.body
    );
    let complete = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"e\"</ETag></Part></CompleteMultipartUpload>";
    let (post, post_took) = send_signed("POST", "/bucket/key?uploadId=U1", complete);
    assert!(
        post.status == 502 || post.status == 504,
        "{} {}",
        post.status,
        post.body
    );
    // Two attempts of 1 s, and one; with room for a loaded machine.
    for (what, took) in [("GET", get_took), ("PUT", put_took)] {
        assert!(
            took >= Duration::from_millis(1900) && took < Duration::from_millis(2900),
            "a {what} is tried twice: {took:?}"
        );
    }
    assert!(
        post_took >= Duration::from_millis(900) && post_took < Duration::from_millis(1900),
        "a POST is tried once: {post_took:?}"
    );
    drop(fillers);
}
