//! Nothing secret reaches the gateway's log at the production level, not
//! even through pingora's own error lines (which print the request target
//! with its query), and no field can forge a log line.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_s3::presigning::PresigningConfig;
use common::{client, start_garage, unique, Gateway, GatewayConfig, ALICE_KEY, ALICE_SECRET};

const FORGED: &str = "2030-01-01T00:00:00.000000Z  INFO s3gate::access: FORGED-LINE principal=root";

fn gateway(dir: &Path, name: &str, config: GatewayConfig) -> Gateway {
    // Production level: info for everything, pingora's crates included.
    config.start_with_env(&dir.join(name), &[("S3GATE_LOG", "info".to_string())])
}

/// A presigned PUT whose body is broken off: headers announce 1 MiB, 100 KiB
/// are sent, the connection is closed. Returns the signature and the path.
async fn broken_presigned_put(gw: &Gateway) -> (String, String) {
    let alice = client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    let key = unique("secrecy/big");
    let put = alice
        .put_object()
        .bucket("sdk")
        .key(&key)
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("cfg"))
        .await
        .expect("presign");
    let uri = put.uri().to_string();
    let sig = uri
        .split("X-Amz-Signature=")
        .nth(1)
        .expect("a presigned URL")
        .split('&')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(sig.len() >= 64, "{uri}");
    let target = uri
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_string()))
        .expect("target");
    let mut head = format!("PUT {target} HTTP/1.1\r\n");
    for (n, v) in put.headers() {
        if !n.eq_ignore_ascii_case("content-length") {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    if !put.headers().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("host: 127.0.0.1:{}\r\n", gw.port));
    }
    head.push_str("content-length: 1048576\r\n\r\n");
    let port = gw.port;
    tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.write_all(head.as_bytes()).expect("head");
        s.write_all(&vec![b'x'; 100 * 1024]).expect("body");
        s.flush().ok();
        // Let the gateway start streaming upstream, then break off.
        std::thread::sleep(Duration::from_millis(500));
        drop(s);
    })
    .await
    .expect("join");
    (sig, format!("/sdk/{key}"))
}

fn wait_for(gw: &Gateway, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = gw.log();
        if log.contains(what) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(100)); // log poll interval
    }
}

async fn check(gw: &Gateway) {
    let (sig, path) = broken_presigned_put(gw).await;
    // A key with a newline and a fake log line in it.
    let alice = client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    let forged_key = format!("secrecy/x\n{FORGED}");
    let _ = alice
        .get_object()
        .bucket("sdk")
        .key(&forged_key)
        .send()
        .await
        .expect_err("no such key");
    let _ = wait_for(gw, "FORGED-LINE");
    // pingora's error line for the broken body names the request target.
    let log = wait_for(gw, &path);
    for line in log.lines() {
        assert!(!line.contains(&sig), "the signature was logged: {line}");
        assert!(
            !line.to_ascii_lowercase().contains("x-amz-signature"),
            "X-Amz-Signature was logged: {line}"
        );
        assert!(
            !line.contains(ALICE_SECRET),
            "the secret was logged: {line}"
        );
        assert!(
            !line
                .trim_start()
                .trim_start_matches('"')
                .starts_with("2030-01-01"),
            "a field forged a log line: {line}"
        );
    }
    assert!(
        log.contains(&format!("{path}?[redacted]")),
        "pingora's line about the broken presigned upload, its query cut:\n{log}"
    );
    assert!(
        log.lines().any(|l| l.contains("FORGED-LINE")),
        "the request with the forged key is logged:\n{log}"
    );
}

#[tokio::test]
async fn no_secret_in_any_log_line_and_no_forged_line() {
    let dir = std::env::temp_dir().join(format!("s3gate-logsecrecy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let garage = start_garage(&dir, &["sdk"]);
    let human = gateway(&dir, "human", GatewayConfig::shared(&garage));
    check(&human).await;
    human.stop();
    let json = gateway(
        &dir,
        "json",
        GatewayConfig::shared(&garage).log_format("json"),
    );
    check(&json).await;
    json.stop();
    // Every line of the JSON log is still JSON.
    for line in json.log().lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
}
