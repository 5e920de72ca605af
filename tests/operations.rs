//! Operating the gateway: metrics after known traffic, health and
//! readiness, graceful shutdown under load, several replicas sharing state.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::raw::Signer;
use common::{
    client, code, data, free_port, start_garage, start_gateway, unique, wait_for_port, Garage,
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

fn config(port: u16, admin: u16, garage: &Garage, dir: &Path) -> String {
    format!(
        r#"listen: [{{ address: 127.0.0.1:{port} }}]
region: us-east-1
principals:
  - {{ name: alice, access_key_id: {ALICE_KEY}, secret_access_key: {ALICE_SECRET} }}
  - {{ name: bob, access_key_id: {BOB_KEY}, secret_access_key: {BOB_SECRET} }}
upstreams:
  garage: {{ kind: s3-compatible, endpoint: "{ep}", region: garage, credentials: {{ access_key_id: {ak}, secret_access_key: {sk} }} }}
buckets:
  ops: {{ upstream: garage }}
policies: {{ paths: [{pol}] }}
multipart:
  ownership: {{ store: s3, upstream: garage, bucket: opstate, prefix: owners/ }}
audit: {{ path: {audit}, fsync: always, on_failure: reject }}
admin: {{ address: 127.0.0.1:{admin} }}
"#,
        ep = garage.endpoint,
        ak = garage.access_key_id,
        sk = garage.secret_access_key,
        pol = dir.join("policies").display(),
        audit = dir.join(format!("audit-{port}.jsonl")).display(),
    )
}

fn setup(name: &str) -> (PathBuf, Garage) {
    let dir = std::env::temp_dir().join(format!("s3gate-ops-{name}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("policies")).expect("dir");
    std::fs::write(dir.join("policies/p.yaml"), POLICY).expect("policy");
    let garage = start_garage(&dir, &["ops", "opstate"]);
    (dir, garage)
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (
        status,
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}

fn metric(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_known_traffic_and_probes_answer() {
    let (dir, garage) = setup("metrics");
    let (port, admin) = (free_port(), free_port());
    let gw = start_gateway(&dir, port, &config(port, admin, &garage, &dir));
    wait_for_port(admin, &gw.log_path);
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
    assert!(
        bob.get_object()
            .bucket("ops")
            .key(&key)
            .send()
            .await
            .is_err(),
        "denied"
    );
    let wrong = client(&gw.endpoint(), "us-east-1", ALICE_KEY, "wrong", true);
    assert!(wrong
        .head_object()
        .bucket("ops")
        .key(&key)
        .send()
        .await
        .is_err());
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

    let (status, m) = http_get(admin, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        metric(
            &m,
            "s3gate_requests_total{operation=\"PutObject\",status=\"200\"}"
        ),
        1.0,
        "{m}"
    );
    for op in ["GetObjectTagging", "GetBucketLifecycleConfiguration"] {
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

fn spawn_direct(dir: &Path, port: u16, config: &str) -> Child {
    let path = dir.join(format!("gw-{port}.yaml"));
    std::fs::write(&path, config).expect("config");
    let log = std::fs::File::create(dir.join(format!("gw-{port}.log"))).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_s3gate"))
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn");
    wait_for_port(port, &dir.join(format!("gw-{port}.log")));
    child
}

#[tokio::test]
async fn sigterm_lets_a_long_upload_finish_and_exits_cleanly() {
    let (dir, garage) = setup("sigterm");
    let (port, admin) = (free_port(), free_port());
    let mut child = spawn_direct(&dir, port, &config(port, admin, &garage, &dir));
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
    let pid = child.id();
    let key2 = key.clone();
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
                // SIGTERM while the upload is streaming.
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            conn.write_all(&chunk)
                .expect("body keeps flowing after SIGTERM");
        }
        let mut resp = String::new();
        let _ = conn.read_to_string(&mut resp);
        resp
    });
    let resp = upload.join().expect("upload thread");
    assert!(
        resp.starts_with("HTTP/1.1 200"),
        "the in-flight upload completes: {}",
        resp.lines().next().unwrap_or("")
    );
    // New connections are refused once the listener is closed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "listener still accepting after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
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
    let audit = dir.join(format!("audit-{port}.jsonl"));
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
        .map(|i| {
            let (port, admin) = (free_port(), free_port());
            start_gateway(
                &dir.join(format!("r{i}")),
                port,
                &config(port, admin, &garage, &dir),
            )
        })
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
