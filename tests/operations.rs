//! Operating the gateway: metrics after known traffic, health and
//! readiness, graceful shutdown under load, several replicas sharing state.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::raw::Signer;
use common::{
    client, code, data, http_get, start_garage, unique, Audit, BucketRule, Garage, GatewayConfig,
    ALICE_KEY, ALICE_SECRET, BOB_KEY, BOB_SECRET,
};

const POLICY: &str = r#"Version: "2012-10-17"
Statement:
  - Sid: EveryoneWorks
    Effect: Allow
    Principal: "*"
    Action: "s3:*"
    Resource: "*"
  - Sid: NoSecrets
    Effect: Deny
    Principal: bob
    Action: s3:GetObject
    Resource: arn:aws:s3:::ops/secret/*
  - Sid: OnlyInitiatorMayFinishOrAbort
    Effect: Deny
    Principal: "*"
    Action: [s3:AbortMultipartUpload, s3:PutObject, s3:ListMultipartUploadParts]
    Resource: arn:aws:s3:::ops/*
    Condition:
      StringEquals: { s3gate:MultipartInitiator: other }
"#;

/// A gateway named `name`: policies from `dir/policies`, its audit log
/// `dir/audit-<name>.jsonl`.
fn config(garage: &Garage, dir: &Path, name: &str) -> GatewayConfig {
    GatewayConfig::new(garage)
        .alice_and_bob()
        .bucket("ops", BucketRule::upstream("garage"))
        .policy_dir(dir.join("policies"))
        .ownership_s3("garage", "opstate", "owners/")
        .audit(
            Audit::new(dir.join(format!("audit-{name}.jsonl")))
                .fsync("always")
                .on_failure("reject"),
        )
}

fn setup(name: &str) -> (PathBuf, Garage) {
    let dir = std::env::temp_dir().join(format!("s3gate-ops-{name}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("policies")).expect("dir");
    std::fs::write(dir.join("policies/p.yaml"), POLICY).expect("policy");
    let garage = start_garage(&dir, &["ops", "opstate"]);
    (dir, garage)
}

/// The value of the metric line starting with `line_start`; a missing or
/// unreadable metric fails the test (it never reads as 0).
fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("metric `{line_start}` missing from /metrics:\n{text}"))
}

#[tokio::test]
async fn metrics_count_known_traffic_and_probes_answer() {
    let (dir, garage) = setup("metrics");
    let gw = config(&garage, &dir, "metrics").start(&dir);
    let admin = gw.admin_port;
    assert_eq!(http_get(admin, "/healthz").0, 200);
    assert_eq!(http_get(admin, "/readyz").0, 200);
    let alice = client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    let bob = client(&gw.endpoint(), "us-east-1", BOB_KEY, BOB_SECRET, true);
    let key = unique("secret/m");
    alice
        .put_object()
        .bucket("ops")
        .key(&key)
        .body(ByteStream::from(data(10_000, 1)))
        .send()
        .await
        .expect("put");
    alice
        .get_object()
        .bucket("ops")
        .key(&key)
        .send()
        .await
        .expect("get");
    let denied = bob
        .get_object()
        .bucket("ops")
        .key(&key)
        .send()
        .await
        .expect_err("denied")
        .into_service_error();
    assert_eq!(denied.meta().code(), Some("AccessDenied"), "{denied:?}");
    let wrong = client(&gw.endpoint(), "us-east-1", ALICE_KEY, "wrong", true);
    let refused = wrong
        .head_object()
        .bucket("ops")
        .key(&key)
        .send()
        .await
        .expect_err("bad signature");
    assert_eq!(
        refused.raw_response().map(|r| r.status().as_u16()),
        Some(403),
        "{refused:?}"
    );
    let id = alice
        .create_multipart_upload()
        .bucket("ops")
        .key(&key)
        .send()
        .await
        .expect("create")
        .upload_id()
        .expect("id")
        .to_string();
    alice
        .abort_multipart_upload()
        .bucket("ops")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("abort");

    // Sub-resource operations are named in S3's words (whatever Garage
    // answers to them).
    let _ = alice
        .get_object_tagging()
        .bucket("ops")
        .key(&key)
        .send()
        .await;
    let _ = alice
        .get_bucket_lifecycle_configuration()
        .bucket("ops")
        .send()
        .await;

    // A request is counted once its answer went out: wait until both
    // sub-resource requests are.
    let wanted = ["GetObjectTagging", "GetBucketLifecycleConfiguration"];
    let deadline = Instant::now() + Duration::from_secs(5);
    let m = loop {
        let (status, m) = http_get(admin, "/metrics");
        assert_eq!(status, 200);
        let counted = wanted
            .iter()
            .all(|op| m.contains(&format!("s3gate_requests_total{{operation=\"{op}\",")));
        if counted || Instant::now() >= deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(50)); // metrics poll interval
    };
    assert_eq!(
        metric(
            &m,
            "s3gate_requests_total{operation=\"PutObject\",status=\"200\"}"
        ),
        1.0,
        "{m}"
    );
    for op in wanted {
        assert!(
            m.contains(&format!("s3gate_requests_total{{operation=\"{op}\",")),
            "{op}: {m}"
        );
    }
    let log = gw.log();
    assert!(log.contains("GetObjectTagging"), "{log}");
    assert_eq!(
        metric(
            &m,
            "s3gate_requests_total{operation=\"GetObject\",status=\"403\"}"
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "s3gate_auth_failures_total{reason=\"SignatureDoesNotMatch\"}"
        ),
        1.0,
        "{m}"
    );
    assert!(
        m.contains("s3gate_policy_decisions_total{effect=\"Deny\",statement=\""),
        "{m}"
    );
    assert!(m.contains("#NoSecrets\"} 1"), "{m}");
    assert_eq!(
        metric(&m, "s3gate_aborts_total{outcome=\"aborted\"}"),
        1.0,
        "{m}"
    );
    assert!(metric(&m, "s3gate_bytes_in_total") >= 10_000.0, "{m}");
    assert!(metric(&m, "s3gate_bytes_out_total") >= 10_000.0, "{m}");
    assert!(
        metric(
            &m,
            "s3gate_upstream_latency_seconds_count{upstream=\"garage\"}"
        ) >= 2.0,
        "{m}"
    );
    assert!(metric(&m, "s3gate_audit_write_seconds_count") >= 1.0, "{m}");
    assert_eq!(metric(&m, "s3gate_in_flight_requests"), 0.0, "{m}");
    assert!(
        m.contains("s3gate_policy_reloads_total{result=\"failed\"} 0"),
        "{m}"
    );
}

#[tokio::test]
async fn sigterm_lets_a_long_upload_finish_and_exits_cleanly() {
    let (dir, garage) = setup("sigterm");
    // Started directly: the signal goes to the gateway, its status is ours.
    let gw = config(&garage, &dir, "sigterm").start_direct(&dir);
    let port = gw.port;
    // An abort first, so the audit log has something to verify.
    let alice = client(
        &format!("http://127.0.0.1:{port}"),
        "us-east-1",
        ALICE_KEY,
        ALICE_SECRET,
        true,
    );
    let k = unique("term/a");
    let id = alice
        .create_multipart_upload()
        .bucket("ops")
        .key(&k)
        .send()
        .await
        .expect("create")
        .upload_id()
        .expect("id")
        .to_string();
    alice
        .abort_multipart_upload()
        .bucket("ops")
        .key(&k)
        .upload_id(&id)
        .send()
        .await
        .expect("abort");

    let key = unique("term/big");
    let len: u64 = 256 << 20;
    let pid = gw.pid();
    let key2 = key.clone();
    // The upload thread stops at the 32nd MiB and tells us; it goes on when
    // we say so: the test controls the body.
    let (paused_tx, paused) = std::sync::mpsc::channel::<()>();
    let (go, go_rx) = std::sync::mpsc::channel::<()>();
    let upload = std::thread::spawn(move || {
        let target = format!("/ops/{key2}");
        let host = format!("127.0.0.1:{port}");
        let s = Signer {
            key: ALICE_KEY,
            secret: ALICE_SECRET,
            region: "us-east-1",
            time: SystemTime::now(),
        };
        let headers = vec![
            ("host".to_string(), host),
            (
                "x-amz-content-sha256".to_string(),
                "UNSIGNED-PAYLOAD".to_string(),
            ),
            ("content-length".to_string(), len.to_string()),
        ];
        let (headers, _) = s.sign_headers("PUT", &target, headers, "UNSIGNED-PAYLOAD");
        let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let mut head = format!("PUT {target} HTTP/1.1\r\n");
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        conn.write_all(head.as_bytes()).expect("head");
        let chunk = vec![7u8; 1 << 20];
        for i in 0..(len >> 20) {
            if i == 32 {
                paused_tx.send(()).expect("tell the test");
                go_rx.recv().expect("wait for the test");
            }
            conn.write_all(&chunk)
                .expect("body keeps flowing after SIGTERM");
        }
        let mut resp = String::new();
        let _ = conn.read_to_string(&mut resp);
        resp
    });
    paused.recv().expect("the upload is streaming");
    // SIGTERM while the upload is in flight, half sent.
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    // New connections are refused while the upload is still in flight.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "listener still accepting after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20)); // poll interval
    }
    assert!(
        !upload.is_finished() && gw.try_wait().is_none(),
        "the upload is still in flight when the listener is closed"
    );
    go.send(()).expect("resume the upload");
    let resp = upload.join().expect("upload thread");
    assert!(
        resp.starts_with("HTTP/1.1 200"),
        "the in-flight upload completes: {}",
        resp.lines().next().unwrap_or("")
    );
    let status = loop {
        if let Some(s) = gw.try_wait() {
            break s;
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(30),
            "gateway did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status:?}");
    let direct = client(
        &garage.endpoint,
        "garage",
        &garage.access_key_id,
        &garage.secret_access_key,
        true,
    );
    let head = direct
        .head_object()
        .bucket("ops")
        .key(&key)
        .send()
        .await
        .expect("stored upstream");
    assert_eq!(head.content_length(), Some(len as i64));
    let audit = dir.join("audit-sigterm.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_s3gate"))
        .args(["audit", "verify"])
        .arg(&audit)
        .output()
        .expect("verify");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn three_replicas_share_uploads_and_the_initiator_rule() {
    let (dir, garage) = setup("replicas");
    let gws: Vec<common::Gateway> = (0..3)
        .map(|i| config(&garage, &dir, &format!("r{i}")).start(&dir.join(format!("r{i}"))))
        .collect();
    let alice: Vec<_> = gws
        .iter()
        .map(|g| client(&g.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true))
        .collect();
    let bob: Vec<_> = gws
        .iter()
        .map(|g| client(&g.endpoint(), "us-east-1", BOB_KEY, BOB_SECRET, true))
        .collect();
    let key = unique("replicas/obj");
    let id = alice[0]
        .create_multipart_upload()
        .bucket("ops")
        .key(&key)
        .send()
        .await
        .expect("create on r0")
        .upload_id()
        .expect("id")
        .to_string();
    let mut parts = Vec::new();
    for (n, c) in [(1, &alice[1]), (2, &alice[2])] {
        let body = data(if n == 1 { 5 << 20 } else { 1000 }, n as u8);
        let r = c
            .upload_part()
            .bucket("ops")
            .key(&key)
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(body))
            .send()
            .await
            .expect("part");
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().expect("etag"))
                .build(),
        );
    }
    for b in &bob {
        let e = b
            .upload_part()
            .bucket("ops")
            .key(&key)
            .upload_id(&id)
            .part_number(3)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect_err("bob");
        assert_eq!(code(&e.into_service_error()), Some("AccessDenied"));
        let e = b
            .abort_multipart_upload()
            .bucket("ops")
            .key(&key)
            .upload_id(&id)
            .send()
            .await
            .expect_err("bob");
        assert_eq!(code(&e.into_service_error()), Some("AccessDenied"));
    }
    alice[2]
        .complete_multipart_upload()
        .bucket("ops")
        .key(&key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("complete on r2");
    let got = alice[1]
        .get_object()
        .bucket("ops")
        .key(&key)
        .send()
        .await
        .expect("get")
        .content_length();
    assert_eq!(got, Some((5 << 20) + 1000));
}
