//! A log reader that stops reading never stalls requests. The gateway's
//! stderr is a pipe nobody reads (a stuck log collector); it fills after a
//! few hundred access lines (64 KiB). Per-request lines go through the
//! gateway's own writer thread, which drops them once its queue is full,
//! so every request is still answered, promptly; writing them in place
//! would block the runtime thread on the full pipe, and with it every
//! connection on that thread.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::raw::{send, sha256_hex, Signer};
use common::{
    free_port, http_get, BucketRule, Credentials, GatewayConfig, Upstream, ALICE_KEY, ALICE_SECRET,
};

/// Far more access lines than a pipe holds (~300 bytes each).
const REQUESTS: usize = 1500;

/// A stand-in upstream answering every request with a small 200.
fn upstream() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().expect("clone"));
                let mut w = conn;
                loop {
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                    }
                    if w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Kills the gateway when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_stuck_log_reader_never_stalls_requests() {
    let up = upstream();
    let (port, admin) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("s3gate-logpipe-{}", std::process::id()));
    let config = GatewayConfig::empty()
        .principal("alice", ALICE_KEY, ALICE_SECRET)
        .upstream(
            "up",
            Upstream::s3_compatible(
                format!("http://127.0.0.1:{up}"),
                Credentials::keys("a", "b"),
            )
            .region("us-east-1"),
        )
        .bucket("*", BucketRule::upstream("up"))
        .listen_on(&format!("127.0.0.1:{port}"), &format!("127.0.0.1:{admin}"))
        .write(&dir);
    let child = Command::new(env!("CARGO_BIN_EXE_s3gate"))
        .args(["serve", "--config"])
        .arg(&config)
        // Production's level: one access line per request.
        .env("S3GATE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gateway");
    let mut child = Killed(child);
    // Held open and never read: the pipe fills and stays full.
    let _stuck = child.0.stderr.take();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(admin, "/readyz").0 != 200 {
        assert!(Instant::now() < deadline, "the gateway did not get ready");
        assert!(
            child.0.try_wait().ok().flatten().is_none(),
            "the gateway exited"
        );
        std::thread::sleep(Duration::from_millis(50)); // readiness poll interval
    }

    let signer = Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: SystemTime::now(),
    };
    let started = Instant::now();
    for i in 0..REQUESTS {
        let target = format!("/bucket/key-{i}");
        let headers = vec![
            ("host".to_string(), format!("127.0.0.1:{port}")),
            ("x-amz-content-sha256".to_string(), sha256_hex(b"")),
        ];
        let (headers, _) = signer.sign_headers("GET", &target, headers, &sha256_hex(b""));
        // `send` gives up after 30 s without an answer (status 0).
        let r = send(port, "GET", &target, &headers, b"");
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "ok"),
            "request {i} of {REQUESTS}, {:?} in",
            started.elapsed()
        );
    }
}
