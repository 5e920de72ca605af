//! Nothing secret reaches the gateway's log at the production level, on
//! the failure paths too, and no field can forge a log line.
//!
//! Each gateway here is dedicated (its own log, nothing else writes to it)
//! and starts with an empty environment: no `S3GATE_LOG` or `RUST_LOG`, so
//! the filter is the gateway's default (`info` for everything, pingora's
//! crates included) — the level production runs at. The test drives the
//! paths where libraries log on their own: an upstream that refuses
//! connections (a retried connect), one that answers garbage, one that
//! never answers, a client that breaks off mid-body, bad signatures; with
//! presigned URLs (signature and credential in the query) and Authorization
//! headers. Then every line of the log is searched for the secrets (the
//! principals' and the upstream's), every signature sent (the clients' and
//! the gateway's own to the upstream, as the stand-in received it), the
//! credentials and the presigned query strings. The failure lines must be
//! in the log, so their absence of secrets means something.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use common::raw::{send, Signer};
use common::standin::{wait_until, Action, Recorded, StandIn};
use common::{
    client, BucketRule, ClosedPort, Credentials, Gateway, GatewayConfig, Upstream, ALICE_KEY,
    ALICE_SECRET, BOB_SECRET,
};

const FORGED: &str = "2030-01-01T00:00:00.000000Z  INFO s3gate::access: FORGED-LINE principal=root";
const UPSTREAM_KEY: &str = "GKUPSTREAMKEY000000000001";
const UPSTREAM_SECRET: &str = "upstream-secret-never-logged-0000000000001";

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir()
        .join(format!("s3gate-logsecrecy-{}", std::process::id()))
        .join(name);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

fn upstream(endpoint: String) -> Upstream {
    Upstream::s3_compatible(endpoint, Credentials::keys(UPSTREAM_KEY, UPSTREAM_SECRET))
        .region("garage")
        .addressing("path")
}

/// A store: PUT and GET succeed, a key with a newline is not there.
fn store(r: &Recorded) -> Action {
    if r.target.contains("FORGED") {
        return Action::xml(
            404,
            "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>no</Message></Error>",
        );
    }
    match r.method.as_str() {
        "PUT" => Action::Reply {
            status: 200,
            headers: vec![("etag".into(), "\"e\"".into())],
            body: Vec::new(),
        },
        _ => Action::Reply {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"stored".to_vec(),
        },
    }
}

struct Upstreams {
    good: StandIn,
    _junk: StandIn,
    _hang: StandIn,
    _down: ClosedPort,
    config: GatewayConfig,
}

/// Buckets `okb` (a working store), `down` (connections refused), `junk`
/// (answers garbage), `slow` (never answers; read timeout 1 s).
fn upstreams() -> Upstreams {
    let good = StandIn::start(store);
    let junk =
        StandIn::start(|_| Action::Raw(b"NOT HTTP AT ALL\r\n\x00\x01garbage\r\n\r\n".to_vec()));
    let hang = StandIn::start(|_| Action::Hang);
    let down = ClosedPort::new();
    let config = GatewayConfig::empty()
        .alice_and_bob()
        .upstream("good", upstream(good.endpoint()))
        .upstream("junk", upstream(junk.endpoint()))
        .upstream("slow", upstream(hang.endpoint()))
        .upstream(
            "down",
            upstream(format!("http://127.0.0.1:{}", down.port())),
        )
        .bucket("okb", BucketRule::upstream("good"))
        .bucket("junk", BucketRule::upstream("junk"))
        .bucket("slow", BucketRule::upstream("slow"))
        .bucket("down", BucketRule::upstream("down"))
        .timeouts(2, 1, 60)
        .clean_env();
    Upstreams {
        good,
        _junk: junk,
        _hang: hang,
        _down: down,
        config,
    }
}

fn signer() -> Signer<'static> {
    Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: SystemTime::now(),
    }
}

/// What was sent that must never be logged.
#[derive(Default)]
struct Sent {
    /// Signatures (clients' and the gateway's to the upstream).
    signatures: Vec<String>,
    /// Presigned query strings, whole.
    queries: Vec<String>,
}

fn query_param(target: &str, name: &str) -> String {
    target
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default()
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} in {target}"))
        .to_string()
}

/// A presigned request (signature and credential in the query).
fn presigned(gw: &Gateway, sent: &mut Sent, method: &str, path: &str, body: &[u8]) -> u16 {
    let host = format!("127.0.0.1:{}", gw.port);
    let target = signer().presign(method, &host, path, Duration::from_secs(300));
    sent.signatures
        .push(query_param(&target, "X-Amz-Signature"));
    sent.queries
        .push(target.split_once('?').expect("query").1.to_string());
    let headers = vec![
        ("host".to_string(), host),
        ("content-length".to_string(), body.len().to_string()),
    ];
    send(gw.port, method, &target, &headers, body).status
}

/// A request signed in the Authorization header.
fn header_signed(gw: &Gateway, sent: &mut Sent, method: &str, path: &str) -> u16 {
    let headers = vec![
        ("host".to_string(), format!("127.0.0.1:{}", gw.port)),
        (
            "x-amz-content-sha256".to_string(),
            "UNSIGNED-PAYLOAD".to_string(),
        ),
    ];
    let (headers, sig) = signer().sign_headers(method, path, headers, "UNSIGNED-PAYLOAD");
    sent.signatures.push(sig);
    send(gw.port, method, path, &headers, b"").status
}

/// A presigned PUT whose body is broken off: headers announce 1 MiB,
/// 100 KiB are sent, the connection is closed.
fn broken_presigned_put(gw: &Gateway, sent: &mut Sent, path: &str) {
    let host = format!("127.0.0.1:{}", gw.port);
    let target = signer().presign("PUT", &host, path, Duration::from_secs(300));
    sent.signatures
        .push(query_param(&target, "X-Amz-Signature"));
    sent.queries
        .push(target.split_once('?').expect("query").1.to_string());
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).expect("connect");
    write!(
        s,
        "PUT {target} HTTP/1.1\r\nhost: {host}\r\ncontent-length: 1048576\r\n\r\n"
    )
    .expect("head");
    s.write_all(&vec![b'x'; 100 * 1024]).expect("body");
    s.flush().ok();
    // Let the gateway start streaming upstream, then break off.
    std::thread::sleep(Duration::from_millis(300)); // time for the body to flow
}

async fn drive(gw: &Gateway, ups: &Upstreams) -> Sent {
    let mut sent = Sent::default();
    // Upstream down: connection refused (the connect of an idempotent
    // request is retried once). GETs may take the gateway's own relay
    // (zero_copy), PUTs and DELETEs go through pingora's proxy.
    for method in ["GET", "PUT", "DELETE"] {
        let body: &[u8] = if method == "PUT" { b"data" } else { b"" };
        assert_eq!(
            presigned(gw, &mut sent, method, "/down/k", body),
            502,
            "{method}"
        );
        assert_eq!(
            header_signed(gw, &mut sent, method, "/down/k2"),
            502,
            "{method}"
        );
        // Upstream answering garbage.
        assert_eq!(
            presigned(gw, &mut sent, method, "/junk/k", body),
            502,
            "{method}"
        );
        assert_eq!(
            header_signed(gw, &mut sent, method, "/junk/k2"),
            502,
            "{method}"
        );
        // Upstream never answering.
        assert_eq!(
            presigned(gw, &mut sent, method, "/slow/k", body),
            504,
            "{method}"
        );
    }
    // A bad signature, presigned and in the header.
    let host = format!("127.0.0.1:{}", gw.port);
    let bad = Signer {
        secret: BOB_SECRET,
        ..signer()
    };
    let target = bad.presign("GET", &host, "/okb/k", Duration::from_secs(300));
    sent.signatures
        .push(query_param(&target, "X-Amz-Signature"));
    sent.queries
        .push(target.split_once('?').expect("query").1.to_string());
    let r = send(
        gw.port,
        "GET",
        &target,
        &[("host".into(), host.clone())],
        b"",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    // Through an SDK (Authorization headers), on every failing upstream.
    let alice = client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    for bucket in ["down", "junk"] {
        let e = alice
            .get_object()
            .bucket(bucket)
            .key("sdk")
            .send()
            .await
            .expect_err("upstream fails");
        let status = e.raw_response().map(|r| r.status().as_u16());
        assert!(matches!(status, Some(502 | 504)), "{bucket}: {e:?}");
    }
    // An SDK-presigned URL too.
    let url = alice
        .get_object()
        .bucket("down")
        .key("sdk-presigned")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("cfg"))
        .await
        .expect("presign");
    let target = url
        .uri()
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
        .expect("target");
    sent.signatures
        .push(query_param(&target, "X-Amz-Signature"));
    sent.queries
        .push(target.split_once('?').expect("query").1.to_string());
    let r = send(
        gw.port,
        "GET",
        &target,
        &[("host".into(), host.clone())],
        b"",
    );
    assert_eq!(r.status, 502, "{}", r.body);
    // A client breaking off mid-body.
    broken_presigned_put(gw, &mut sent, "/okb/broken");
    // A key with a newline and a fake log line in it.
    let _ = alice
        .get_object()
        .bucket("okb")
        .key(format!("secrecy/x\n{FORGED}"))
        .send()
        .await
        .expect_err("no such key");
    // A working request, presigned: the gateway's own upstream signature.
    assert_eq!(presigned(gw, &mut sent, "GET", "/okb/fine", b""), 200);
    for r in ups.good.requests() {
        let auth = r.header("authorization").expect("signed upstream");
        let sig = auth.rsplit("Signature=").next().expect("Signature=");
        sent.signatures.push(sig.to_string());
    }
    sent
}

fn check(gw: &Gateway, sent: &Sent, json: bool) {
    let mut log = String::new();
    // The broken upload's line comes last; the log is another process's.
    wait_until(Duration::from_secs(20), || {
        log = gw.log();
        log.contains("/okb/broken") && log.contains("FORGED-LINE")
    });
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() > 15, "the log has the traffic's lines:\n{log}");
    // The failure lines are there (so what is absent from them means something).
    let has = |what: &str| lines.iter().any(|l| l.contains(what));
    // An access line with these fields (human `k="v"` / `k=v`, or JSON).
    let access = |fields: &[(&str, &str)]| {
        lines.iter().any(|l| {
            l.contains("s3gate::access")
                && fields.iter().all(|(k, v)| {
                    l.contains(&format!("{k}=\"{v}\""))
                        || l.contains(&format!("{k}={v} "))
                        || l.contains(&format!("\"{k}\":\"{v}\""))
                        || l.contains(&format!("\"{k}\":{v}"))
                })
        })
    };
    for (bucket, status, why) in [
        ("down", "502", "the refused connection"),
        ("junk", "502", "the garbage answer"),
        ("slow", "504", "the timed-out answer"),
        ("okb", "403", "the bad signature"),
        ("okb", "499", "the broken-off upload"),
    ] {
        for op in ["GetObject", "PutObject", "DeleteObject"] {
            let op = if status == "499" {
                "PutObject"
            } else if status == "403" {
                "GetObject"
            } else {
                op
            };
            assert!(
                access(&[("bucket", bucket), ("status", status), ("operation", op)]),
                "{why} ({op}) is logged:\n{log}"
            );
        }
    }
    for (what, why) in [
        ("FORGED-LINE", "the forged key's request"),
        ("written inline", "the inline secrets of the config"),
        ("Connection refused", "the refused connection's cause"),
        ("garbage", "the garbage answer's cause"),
    ] {
        assert!(has(what), "{why} is logged:\n{log}");
    }
    assert!(
        has("pingora"),
        "pingora's own lines (its crates at info) are in the log:\n{log}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Fail to proxy") && l.contains("retry: true")),
        "pingora's warning about the retried connection:\n{log}"
    );
    assert!(!sent.signatures.is_empty() && sent.signatures.iter().all(|s| s.len() >= 64));
    for line in &lines {
        for secret in [ALICE_SECRET, BOB_SECRET, UPSTREAM_SECRET] {
            assert!(!line.contains(secret), "a secret was logged: {line}");
        }
        for sig in &sent.signatures {
            assert!(
                !line.contains(sig.as_str()),
                "a signature was logged: {line}"
            );
        }
        for q in &sent.queries {
            assert!(
                !line.contains(q.as_str()),
                "a presigned query was logged: {line}"
            );
        }
        let lower = line.to_ascii_lowercase();
        for name in [
            "x-amz-signature=",
            "x-amz-credential=",
            "x-amz-algorithm=",
            "aws4-hmac-sha256 credential",
            "signature=",
            "aws4_request",
        ] {
            assert!(!lower.contains(name), "`{name}` was logged: {line}");
        }
        if json {
            assert!(
                serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object()),
                "not JSON: {line}"
            );
        } else {
            assert!(
                !line
                    .trim_start()
                    .trim_start_matches('"')
                    .starts_with("2030-01-01"),
                "a field forged a log line: {line}"
            );
        }
    }
    // The lines that carried them are there, cut.
    assert!(
        has("PUT /down/k?[redacted]"),
        "that warning names the presigned request, its query cut:\n{log}"
    );
    assert!(
        has("/okb/broken?[redacted]"),
        "pingora's line about the broken presigned upload, its query cut:\n{log}"
    );
}

#[tokio::test]
async fn no_secret_in_any_log_line_on_the_failure_paths() {
    for (format, json) in [("human", false), ("json", true)] {
        let ups = upstreams();
        let gw = ups.config.clone().log_format(format).start(&dir(format));
        let sent = drive(&gw, &ups).await;
        check(&gw, &sent, json);
        gw.stop();
    }
}
