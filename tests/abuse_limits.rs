//! What one client may cost the gateway: request heads that never finish,
//! oversized heads, more connections than a listener allows, idle keep-alive
//! connections, and inputs that used to panic a request.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::primitives::ByteStream;
use common::raw::{send, sha256_hex, Signer};
use common::{
    client, start_garage, Garage, Gateway, GatewayConfig, Limits, ALICE_KEY, ALICE_SECRET,
};

const BUCKET: &str = "abuse";

/// One Garage for every gateway of this file.
fn garage() -> &'static (PathBuf, Garage) {
    static G: OnceLock<(PathBuf, Garage)> = OnceLock::new();
    G.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("s3gate-abuse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let garage = start_garage(&dir, &[BUCKET]);
        (dir, garage)
    })
}

/// A gateway of its own (with its admin listener, as every test gateway)
/// and `limits`.
fn gateway(name: &str, limits: Limits) -> Gateway {
    let (dir, garage) = garage();
    GatewayConfig::shared(garage)
        .limits(limits)
        .start(&dir.join(name))
}

/// The s3gate process serving `config` (tests start it through tether.py).
fn gateway_pid(config: &Path) -> u32 {
    let config = config.as_os_str().as_bytes();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if args.first().is_some_and(|a| a.ends_with(b"/s3gate")) && args.contains(&config) {
            return pid;
        }
    }
    panic!(
        "no s3gate process serves {}",
        String::from_utf8_lossy(config)
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

fn signer() -> Signer<'static> {
    Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: SystemTime::now(),
    }
}

/// A signed HeadBucket on a kept-alive connection; its status.
fn head_bucket(s: &mut TcpStream, port: u16) -> u16 {
    let target = format!("/{BUCKET}");
    let headers = vec![
        ("host".to_string(), format!("127.0.0.1:{port}")),
        ("x-amz-content-sha256".to_string(), sha256_hex(b"")),
    ];
    let (headers, _) = signer().sign_headers("HEAD", &target, headers, &sha256_hex(b""));
    let mut req = format!("HEAD {target} HTTP/1.1\r\n");
    for (n, v) in &headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head)
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn metric(port: u16, name: &str) -> Option<f64> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_heads_cost_little_and_are_closed_at_the_deadline() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const HELD: usize = 1500;
    const DEADLINE: Duration = Duration::from_secs(3);
    let g = gateway("heads", Limits::default().request_head_timeout("3s"));
    let pid = gateway_pid(&g.config_path);
    let alice = client(&g.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    alice
        .put_object()
        .bucket(BUCKET)
        .key("x")
        .body(ByteStream::from_static(b"held"))
        .send()
        .await
        .expect("put");
    let before = rss_kib(pid);

    let port = g.port;
    let written = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut holders = Vec::with_capacity(HELD);
    for _ in 0..HELD {
        let written = written.clone();
        holders.push(tokio::spawn(async move {
            // The gateway's deadline starts after it accepts, so after this.
            let connecting = Instant::now();
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect");
            let head = format!(
                "GET /{BUCKET}/x HTTP/1.1\r\nHost: localhost\r\nX-Pad: {}",
                "a".repeat(1024)
            );
            s.write_all(head.as_bytes()).await.expect("write");
            written.fetch_add(1, Ordering::SeqCst);
            let mut answer = Vec::new();
            // EOF or a reset: either way the gateway closed it.
            let closed = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut answer))
                .await
                .is_ok();
            (closed.then(|| connecting.elapsed()), answer)
        }));
    }
    while written.load(Ordering::SeqCst) < HELD {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "holders not connected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all_held = started.elapsed();

    // A normal signed request is still answered promptly meanwhile.
    let t = Instant::now();
    let got = alice
        .get_object()
        .bucket(BUCKET)
        .key("x")
        .send()
        .await
        .expect("get while heads are held");
    let answered = t.elapsed();
    let body = got.body.collect().await.expect("body").into_bytes();
    assert_eq!(&body[..], b"held");
    let peak = (0..3)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            rss_kib(pid)
        })
        .max()
        .unwrap_or(0);
    let measured_at = started.elapsed();
    let growth_kib = peak.saturating_sub(before);
    eprintln!(
        "{HELD} half-sent heads: held after {all_held:?}, RSS {before} KiB -> {peak} KiB (+{growth_kib} KiB, {:.1} KiB each) measured at {measured_at:?}; signed GET answered in {answered:?}",
        growth_kib as f64 / HELD as f64,
    );

    let mut closes = Vec::with_capacity(HELD);
    for h in holders {
        let (closed, answer) = h.await.expect("holder");
        let after = closed.expect("a held connection was not closed within 30 s");
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.is_empty() || text.contains("<Code>RequestTimeout</Code>"),
            "{text}"
        );
        closes.push(after);
    }
    closes.sort();
    eprintln!(
        "{HELD} half-sent heads closed after {:?} (first) / {:?} (median) / {:?} (last)",
        closes[0],
        closes[HELD / 2],
        closes[HELD - 1],
    );
    assert!(
        measured_at < DEADLINE,
        "memory measured after the deadline ({measured_at:?}): the machine is too slow for this test"
    );
    assert!(growth_kib < 80 * 1024, "RSS grew by {growth_kib} KiB");
    assert!(answered < Duration::from_secs(2), "GET took {answered:?}");
    assert!(
        closes[0] >= DEADLINE - Duration::from_millis(20),
        "closed early: {:?}",
        closes[0]
    );
    assert!(
        closes[HELD - 1] <= DEADLINE + Duration::from_secs(3),
        "closed late: {:?}",
        closes[HELD - 1]
    );
}

#[test]
fn oversized_heads_are_refused_with_an_s3_error() {
    let g = gateway("big", Limits::default().max_header_bytes("16KiB"));
    let host = ("host".to_string(), "localhost".to_string());
    let big = ("x-pad".to_string(), "b".repeat(20 * 1024));
    let r = send(
        g.port,
        "GET",
        &format!("/{BUCKET}/x"),
        &[host.clone(), big],
        b"",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(
        r.code().as_deref(),
        Some("RequestHeaderSectionTooLarge"),
        "{}",
        r.body
    );
    assert!(r.header("x-amz-request-id").is_some());
    // A head within the limit goes through to authentication as usual.
    let fits = ("x-pad".to_string(), "b".repeat(8 * 1024));
    let r = send(g.port, "GET", &format!("/{BUCKET}/x"), &[host, fits], b"");
    assert_eq!(r.code().as_deref(), Some("AccessDenied"), "{}", r.body);
}

#[test]
fn connections_beyond_the_listener_limit_are_refused_at_once() {
    const MAX: usize = 8;
    let g = gateway("few", Limits::default().max_connections(MAX));
    let port = g.port;
    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        s
    };
    // Each held connection has been served, so it holds its permit.
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while held.len() < MAX {
        let mut s = connect();
        if head_bucket(&mut s, port) == 200 {
            held.push(s);
        } else {
            // Not served: try again until the deadline.
            assert!(
                Instant::now() < deadline,
                "could not open {MAX} connections"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let t = Instant::now();
    let mut extra = connect();
    let mut answer = String::new();
    let _ = extra.read_to_string(&mut answer);
    let refused_in = t.elapsed();
    assert!(refused_in < Duration::from_secs(2), "{refused_in:?}");
    assert!(
        answer.is_empty() || (answer.starts_with("HTTP/1.1 503") && answer.contains("SlowDown")),
        "{answer}"
    );
    // The held connections still work, and a freed slot is usable again.
    assert_eq!(head_bucket(&mut held[0], port), 200);
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = connect();
        if head_bucket(&mut s, port) == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot was not reused");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn idle_keepalive_connections_are_closed_after_the_idle_timeout() {
    let g = gateway("idle", Limits::default().idle_timeout("2s"));
    let port = g.port;
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    // Kept alive between requests…
    assert_eq!(head_bucket(&mut s, port), 200);
    assert_eq!(head_bucket(&mut s, port), 200);
    // …and closed once idle for the idle timeout.
    let t = Instant::now();
    let mut rest = Vec::new();
    let r = s.read_to_end(&mut rest);
    let idle = t.elapsed();
    assert!(r.is_ok() && rest.is_empty(), "{r:?} {rest:?}");
    assert!(
        idle >= Duration::from_millis(1800) && idle < Duration::from_secs(5),
        "closed after {idle:?}"
    );
}

#[tokio::test]
async fn sigv2_presigned_with_absurd_expires_is_refused_and_the_gateway_keeps_serving() {
    let g = gateway("sigv2", Limits::default().idle_timeout("60s"));
    let port = g.port;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let host = ("host".to_string(), format!("127.0.0.1:{port}"));
    for (expires, message) in [
        ("18446744073709551615".to_string(), "Invalid date"),
        ((now + 8 * 86_400).to_string(), "7 days"),
    ] {
        let target =
            format!("/{BUCKET}/x?AWSAccessKeyId={ALICE_KEY}&Expires={expires}&Signature=c2ln%3D");
        let r = send(port, "GET", &target, std::slice::from_ref(&host), b"");
        assert_eq!(r.status, 403, "{expires}: {}", r.body);
        assert_eq!(r.code().as_deref(), Some("AccessDenied"), "{}", r.body);
        assert!(r.body.contains(message), "{}", r.body);
    }
    // Still serving.
    let alice = client(&g.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    alice
        .head_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("head bucket after the refusals");
    // Nothing was left counted as in flight.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v = metric(g.admin_port, "s3gate_in_flight_requests ");
        if v == Some(0.0) {
            break;
        }
        assert!(Instant::now() < deadline, "in flight: {v:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
