//! POST Object as the upstream sees it, through a recording stand-in
//! upstream: the PutObject carries the file's exact Content-Length (AWS S3
//! refuses chunked uploads without one), never chunked framing; a POST
//! without Content-Length is refused (411, as S3); a form that does not
//! close right after its file never completes upstream.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::raw::{form_close, form_open, Signer};
use common::{BucketRule, Credentials, GatewayConfig, Upstream, ALICE_KEY, ALICE_SECRET};

const POLICY: &str = r#"Version: "2012-10-17"
Statement:
  - Sid: AliceUploads
    Effect: Allow
    Principal: alice
    Action: s3:PutObject
    Resource: arn:aws:s3:::forms/*
"#;

const BOUNDARY: &str = "----WebKitFormBoundaryQ9xZ1";

/// One request the stand-in upstream received.
#[derive(Debug, Clone)]
struct Seen {
    head: String,
    body: Vec<u8>,
    /// The whole announced body arrived.
    complete: bool,
}

impl Seen {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A stand-in S3 upstream that records every request and answers 200 with
/// an ETag once it has the whole body.
fn recording_upstream(log: Log) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let log = log.clone();
            std::thread::spawn(move || serve(conn, log));
        }
    });
    port
}

fn serve(s: TcpStream, log: Log) {
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut seen = Seen {
            head,
            body: Vec::new(),
            complete: false,
        };
        let len: usize = seen
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if seen
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            // Recorded as such (and read through, so the test can tell).
            seen.complete = read_chunked(&mut r, &mut seen.body);
        } else {
            let _ = r.by_ref().take(len as u64).read_to_end(&mut seen.body);
            seen.complete = seen.body.len() == len;
        }
        let complete = seen.complete;
        log.lock().expect("log").push(seen);
        if !complete {
            return;
        }
        let mut s = &s;
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\netag: \"0123456789abcdef0123456789abcdef\"\r\ncontent-length: 0\r\n\r\n",
        );
    }
}

fn read_chunked(r: &mut impl BufRead, out: &mut Vec<u8>) -> bool {
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        let Ok(n) = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16) else {
            return false;
        };
        let mut chunk = vec![0; n + 2];
        if r.read_exact(&mut chunk).is_err() {
            return false;
        }
        out.extend_from_slice(&chunk[..n]);
        if n == 0 {
            return true;
        }
    }
}

fn start(name: &str) -> (common::Gateway, Log) {
    let log: Log = Arc::default();
    let port = recording_upstream(log.clone());
    let dir = std::env::temp_dir().join(format!(
        "s3gate-post-upstream-{}-{name}",
        std::process::id()
    ));
    let gw = GatewayConfig::empty()
        .principal("alice", ALICE_KEY, ALICE_SECRET)
        .upstream(
            "recorder",
            Upstream::s3_compatible(
                format!("http://127.0.0.1:{port}"),
                Credentials::keys("a", "b"),
            )
            .region("us-east-1"),
        )
        .bucket("*", BucketRule::upstream("recorder"))
        .policy(POLICY)
        .start(&dir);
    (gw, log)
}

fn fields(key: &str, conditions: &[&str]) -> Vec<(String, String)> {
    Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: SystemTime::now(),
    }
    .post_fields("forms", key, conditions)
}

/// POST `body` to /forms in pieces (the file streams), with the headers
/// given; the status and body of the answer.
fn post(port: u16, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut head = format!(
        "POST /forms HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: multipart/form-data; boundary={BOUNDARY}\r\nconnection: close\r\n"
    );
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("head");
    for piece in body.chunks(256 * 1024) {
        if s.write_all(piece).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn length(body: &[u8]) -> Vec<(&'static str, String)> {
    vec![("content-length", body.len().to_string())]
}

fn file(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 253) as u8).collect()
}

fn form(key: &str, data: &[u8]) -> Vec<u8> {
    let mut body = form_open(
        BOUNDARY,
        &fields(key, &["[\"content-length-range\", 0, 10485760]"]),
        "f.bin",
    );
    body.extend_from_slice(data);
    body.extend_from_slice(&form_close(BOUNDARY));
    body
}

fn seen_for(log: &Log, key: &str) -> Vec<Seen> {
    let path = format!(" /forms/{key} ");
    log.lock()
        .expect("log")
        .iter()
        .filter(|s| s.head.contains(&path))
        .cloned()
        .collect()
}

#[test]
fn the_upstream_put_carries_the_files_content_length() {
    let (gw, log) = start("length");
    // Streamed (3 MiB and a bit, sent in pieces) and small (read whole).
    for (key, len) in [("big.bin", (3 << 20) + 7), ("small.bin", 10)] {
        let data = file(len);
        let body = form(key, &data);
        let (status, answer) = post(gw.port, &length(&body), &body);
        assert_eq!(status, 204, "{answer}");
        let seen = seen_for(&log, key);
        assert_eq!(seen.len(), 1, "{seen:?}");
        let up = &seen[0];
        assert!(
            up.head.starts_with(&format!("PUT /forms/{key} HTTP/1.1")),
            "{}",
            up.head
        );
        assert_eq!(
            up.header("content-length"),
            Some(len.to_string()),
            "{}",
            up.head
        );
        assert_eq!(up.header("transfer-encoding"), None, "{}", up.head);
        // Streamed: unsigned payload; read whole: its hash.
        let hash = up.header("x-amz-content-sha256").unwrap_or_default();
        assert!(hash == "UNSIGNED-PAYLOAD" || hash.len() == 64, "{hash}");
        assert!(
            up.complete && up.body == data,
            "{key}: the file, byte-exact"
        );
    }
}

#[test]
fn a_post_without_content_length_is_refused() {
    let (gw, log) = start("chunked");
    let data = file(1000);
    let body = form("chunked.bin", &data);
    let mut chunked = format!("{:x}\r\n", body.len()).into_bytes();
    chunked.extend_from_slice(&body);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let (status, answer) = post(
        gw.port,
        &[("transfer-encoding", "chunked".to_string())],
        &chunked,
    );
    assert_eq!(status, 411, "{answer}");
    assert!(
        answer.contains("<Code>MissingContentLength</Code>"),
        "{answer}"
    );
    assert!(seen_for(&log, "chunked.bin").is_empty());
}

#[test]
fn a_form_that_does_not_close_right_after_the_file_never_completes_upstream() {
    let (gw, log) = start("unclosed");
    let data = file(2 << 20);
    let close = form_close(BOUNDARY);
    // An epilogue after the closing delimiter; fields after the file; the
    // closing delimiter without its CRLF (the announced length assumed it).
    let mut epilogue = form("epilogue.bin", &data);
    epilogue.extend_from_slice(b"epilogue");
    let mut after = form("after.bin", &data);
    after.truncate(after.len() - close.len());
    after.extend_from_slice(
        format!("\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv")
            .as_bytes(),
    );
    after.extend_from_slice(&close);
    let mut bare = form("bare.bin", &data);
    bare.truncate(bare.len() - 2);
    for (key, body) in [
        ("epilogue.bin", epilogue),
        ("after.bin", after),
        ("bare.bin", bare),
    ] {
        let (status, answer) = post(gw.port, &length(&body), &body);
        assert_eq!(status, 400, "{key}: {answer}");
        assert!(
            answer.contains("<Code>MalformedPOSTRequest</Code>"),
            "{key}: {answer}"
        );
        std::thread::sleep(Duration::from_millis(100));
        for up in seen_for(&log, key) {
            assert!(!up.complete, "{key}: the upstream got a whole body");
            assert!(up.body.len() < data.len(), "{key}");
        }
    }
}

#[test]
fn fields_before_the_file_are_bounded_and_nothing_goes_upstream() {
    let (gw, log) = start("predata");
    let mut fields = fields_of("predata.bin");
    // 21 KiB of fields before the file: over S3's 20 KiB.
    fields.push(("x-amz-meta-note".into(), "n".repeat(21 * 1024)));
    let mut body = form_open(BOUNDARY, &fields, "f.bin");
    body.extend_from_slice(&file(1000));
    body.extend_from_slice(&form_close(BOUNDARY));
    let (status, answer) = post(gw.port, &length(&body), &body);
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.contains("<Code>MaxPostPreDataLengthExceeded</Code>"),
        "{answer}"
    );
    assert!(seen_for(&log, "predata.bin").is_empty());

    // The same form with a short note is stored.
    let mut fields = fields_of("predata-ok.bin");
    fields.push(("x-amz-meta-note".into(), "n".repeat(1024)));
    let mut body = form_open(BOUNDARY, &fields, "f.bin");
    body.extend_from_slice(&file(1000));
    body.extend_from_slice(&form_close(BOUNDARY));
    let (status, answer) = post(gw.port, &length(&body), &body);
    assert_eq!(status, 204, "{answer}");
    assert_eq!(seen_for(&log, "predata-ok.bin").len(), 1);
}

fn fields_of(key: &str) -> Vec<(String, String)> {
    fields(
        key,
        &[
            "[\"content-length-range\", 0, 10485760]",
            "[\"starts-with\", \"$x-amz-meta-note\", \"\"]",
        ],
    )
}
