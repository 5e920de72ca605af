//! Multipart ownership, the abort flow and the audit ledger, through real
//! gateway processes to Garage (which also holds the ownership state).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use aws_sdk_s3::primitives::ByteStream;
use common::{
    client, code, data, start_garage, unique, Audit, BucketRule, Garage, Gateway, GatewayConfig,
    ALICE_KEY, ALICE_SECRET, BOB_KEY, BOB_SECRET,
};

const POLICY: &str = r#"Version: "2012-10-17"
Statement:
  - Sid: EveryoneWorks
    Effect: Allow
    Principal: "*"
    Action: "s3:*"
    Resource: "*"
  - Sid: OnlyInitiatorMayFinishOrAbort
    Effect: Deny
    Principal: "*"
    Action: [s3:AbortMultipartUpload, s3:PutObject, s3:ListMultipartUploadParts]
    Resource: arn:aws:s3:::mpa/*
    Condition:
      StringEquals: { s3gate:MultipartInitiator: other }
"#;

struct Env {
    dir: PathBuf,
    garage: Garage,
    a: Gateway,
    b: Gateway,
}

fn config(garage: &Garage, audit: &Path, on_failure: &str) -> GatewayConfig {
    GatewayConfig::new(garage)
        // Each gateway process under its own name.
        .gateway_name(&unique("gw"))
        .alice_and_bob()
        .bucket("mpa", BucketRule::upstream("garage"))
        .policy(POLICY)
        .ownership_s3("garage", "state", "owners/")
        .abort("10s", true, 5)
        .audit(
            Audit::new(audit)
                .events(&["AbortMultipartUpload", "CreateMultipartUpload"])
                .fsync("always")
                .on_failure(on_failure),
        )
}

fn gateway(dir: &Path, name: &str, garage: &Garage, audit: &Path, on_failure: &str) -> Gateway {
    config(garage, audit, on_failure).start(&dir.join(name))
}

fn env() -> &'static Env {
    static E: OnceLock<Env> = OnceLock::new();
    E.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("s3gate-mpa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let garage = start_garage(&dir, &["mpa", "state"]);
        let a = gateway(&dir, "a", &garage, &dir.join("a/audit.jsonl"), "reject");
        let b = gateway(&dir, "b", &garage, &dir.join("b/audit.jsonl"), "reject");
        Env { dir, garage, a, b }
    })
}

fn as_user(gw: &Gateway, who: &str) -> aws_sdk_s3::Client {
    match who {
        "alice" => client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true),
        _ => client(&gw.endpoint(), "us-east-1", BOB_KEY, BOB_SECRET, true),
    }
}

fn direct() -> aws_sdk_s3::Client {
    let g = &env().garage;
    client(
        &g.endpoint,
        "garage",
        &g.access_key_id,
        &g.secret_access_key,
        true,
    )
}

fn audit_records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn verify(files: &[&Path]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_s3gate"))
        .args(["audit", "verify"])
        .args(files)
        .output()
        .expect("run");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

#[tokio::test]
async fn initiator_rule_across_replicas_and_the_audit_of_each_abort() {
    let e = env();
    let key = unique("shared/obj");
    // alice creates through A.
    let up = as_user(&e.a, "alice")
        .create_multipart_upload()
        .bucket("mpa")
        .key(&key)
        .send()
        .await
        .expect("create via A");
    let id = up.upload_id().expect("id").to_string();
    // Parts through B: alice (the initiator) may, bob may not.
    as_user(&e.b, "alice")
        .upload_part()
        .bucket("mpa")
        .key(&key)
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(data(1000, 1)))
        .send()
        .await
        .expect("alice's part via B");
    let err = as_user(&e.b, "bob")
        .upload_part()
        .bucket("mpa")
        .key(&key)
        .upload_id(&id)
        .part_number(2)
        .body(ByteStream::from(data(1000, 2)))
        .send()
        .await
        .expect_err("bob's part via B");
    assert_eq!(code(&err.into_service_error()), Some("AccessDenied"));
    // bob's abort through A is denied; the upload stays upstream.
    let err = as_user(&e.a, "bob")
        .abort_multipart_upload()
        .bucket("mpa")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect_err("bob aborts");
    assert_eq!(code(&err.into_service_error()), Some("AccessDenied"));
    let parts = direct()
        .list_parts()
        .bucket("mpa")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("still there");
    assert_eq!(parts.parts().len(), 1);
    // bob's key with a wrong secret: authentication fails, the attempt is audited.
    let err = client(
        &e.a.endpoint(),
        "us-east-1",
        BOB_KEY,
        "not-bobs-secret",
        true,
    )
    .abort_multipart_upload()
    .bucket("mpa")
    .key(&key)
    .upload_id(&id)
    .send()
    .await
    .expect_err("bad signature");
    assert_eq!(
        code(&err.into_service_error()),
        Some("SignatureDoesNotMatch")
    );
    // alice's abort through A: 204, and the upstream no longer knows the upload.
    as_user(&e.a, "alice")
        .abort_multipart_upload()
        .bucket("mpa")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("alice aborts");
    let err = direct()
        .list_parts()
        .bucket("mpa")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect_err("gone");
    assert_eq!(code(&err.into_service_error()), Some("NoSuchUpload"));

    let audit = e.dir.join("a/audit.jsonl");
    let records = audit_records(&audit);
    let mine: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["upload_id"] == id.as_str() && r["event"] == "AbortMultipartUpload")
        .collect();
    assert_eq!(mine.len(), 3, "one record per abort attempt: {records:#?}");
    // Every abort record names the upload's initiator by principal name.
    for r in &mine {
        assert_eq!(r["initiator"], "alice", "{r}");
    }
    let denied = mine[0];
    assert_eq!(denied["principal"], "bob");
    assert_eq!(denied["access_key_id"], BOB_KEY);
    assert_eq!(denied["outcome"], "denied");
    assert_eq!(denied["error"], "AccessDenied");
    assert_eq!(denied["decision"]["effect"], "Deny");
    assert_eq!(
        denied["decision"]["statements"][0]["sid"],
        "OnlyInitiatorMayFinishOrAbort"
    );
    let failed = mine[1];
    assert_eq!(failed["outcome"], "auth_failed");
    assert_eq!(failed["principal"], serde_json::Value::Null);
    assert_eq!(failed["access_key_id"], BOB_KEY);
    let done = mine[2];
    assert_eq!(done["principal"], "alice");
    assert_eq!(done["outcome"], "aborted");
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["parts_before"]["count"], 1);
    assert_eq!(done["parts_before"]["bytes"], 1000);
    assert_eq!(done["parts_remaining"], 0);
    assert_eq!(done["upstream"]["status"], 204);
    // Garage sends no x-amz-request-id: the field is there, null.
    assert!(done["upstream"].get("request_id").is_some(), "{done}");
    assert_eq!(done["decision"]["statements"][0]["sid"], "EveryoneWorks");
    for field in [
        "v",
        "seq",
        "time",
        "request_id",
        "gateway",
        "source_ip",
        "user_agent",
        "bucket",
        "key",
        "expected_bucket_owner",
        "request_payer",
        "duration_ms",
        "prev",
        "hash",
    ] {
        assert!(done.get(field).is_some(), "field {field} present");
    }
    let create = records
        .iter()
        .find(|r| r["event"] == "CreateMultipartUpload" && r["upload_id"] == id.as_str())
        .expect("CreateMultipartUpload events are on");
    assert_eq!(create["initiator"], "alice");
    let (ok, out) = verify(&[&audit]);
    assert!(ok, "{out}");
}

#[tokio::test]
async fn verify_uses_the_head_to_find_a_removed_last_record() {
    let e = env();
    let dir = e.dir.join("head");
    let audit = dir.join("audit.jsonl");
    let gw = gateway(&dir, "gw", &e.garage, &audit, "reject");
    let key = unique("head/obj");
    let alice = as_user(&gw, "alice");
    let up = alice
        .create_multipart_upload()
        .bucket("mpa")
        .key(&key)
        .send()
        .await
        .expect("create");
    let id = up.upload_id().expect("id").to_string();
    // bob of alice's upload: denied by the policy, audited naming alice.
    let _ = as_user(&gw, "bob")
        .abort_multipart_upload()
        .bucket("mpa")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect_err("bob");
    alice
        .abort_multipart_upload()
        .bucket("mpa")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("alice");
    let records = audit_records(&audit);
    let aborts: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["event"] == "AbortMultipartUpload")
        .collect();
    assert_eq!(aborts.len(), 2, "{records:#?}");
    assert_eq!(aborts[0]["principal"], "bob");
    assert_eq!(aborts[0]["outcome"], "denied");
    assert!(
        aborts.iter().all(|r| r["initiator"] == "alice"),
        "{aborts:#?}"
    );
    let head: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("audit.jsonl.head")).expect("a head file"),
    )
    .expect("head JSON");
    assert_eq!(head["seq"], aborts[1]["seq"]);
    assert_eq!(head["hash"], aborts[1]["hash"]);
    let (ok, out) = verify(&[&audit]);
    assert!(ok && !out.contains("NOTE"), "{out}");
    gw.stop();

    // The ledger with its last record removed (and its head): what remains
    // still chains, but the head says one more record was written.
    let cut = dir.join("cut.jsonl");
    let text = std::fs::read_to_string(&audit).expect("audit");
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&cut, lines[..lines.len() - 1].join("\n") + "\n").expect("write");
    std::fs::copy(dir.join("audit.jsonl.head"), dir.join("cut.jsonl.head")).expect("head");
    let (ok, out) = verify(&[&cut]);
    assert!(!ok, "{out}");
    let seq = head["seq"].as_u64().expect("seq");
    assert!(
        out.contains(&format!(
            "cut.jsonl: 1 record(s) missing at the end (seq {seq})"
        )),
        "{out}"
    );
}

#[tokio::test]
async fn initiator_survives_a_restart() {
    let e = env();
    let dir = e.dir.join("restart");
    let audit = dir.join("audit.jsonl");
    let key = unique("restart/obj");
    let first = gateway(&dir, "one", &e.garage, &audit, "reject");
    let up = as_user(&first, "alice")
        .create_multipart_upload()
        .bucket("mpa")
        .key(&key)
        .send()
        .await
        .expect("create");
    let id = up.upload_id().expect("id").to_string();
    first.stop();
    let second = gateway(&dir, "two", &e.garage, &audit, "reject");
    let err = as_user(&second, "bob")
        .abort_multipart_upload()
        .bucket("mpa")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect_err("bob");
    assert_eq!(
        code(&err.into_service_error()),
        Some("AccessDenied"),
        "the initiator is still known after a restart"
    );
    as_user(&second, "alice")
        .abort_multipart_upload()
        .bucket("mpa")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("alice");
    let (ok, out) = verify(&[&audit]);
    assert!(ok, "the chain continues across the restart: {out}");
}

/// The gateway's `s3gate_in_flight_requests` gauge.
fn in_flight(gw: &Gateway) -> i64 {
    let (_, body) = common::http_get(gw.admin_port, "/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix("s3gate_in_flight_requests "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1)
}

/// Wait (polling the gateway's metrics) until `n` requests are in flight.
async fn wait_in_flight(gw: &Gateway, n: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while in_flight(gw) < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{n} requests never were in flight (now {})",
            in_flight(gw)
        );
        // Poll interval.
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn abort_while_parts_are_in_flight_frees_everything() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let e = env();
    // A gateway of its own, so that its in-flight gauge counts only ours.
    let audit = e.dir.join("inflight/audit.jsonl");
    let gw = gateway(&e.dir, "inflight", &e.garage, &audit, "reject");
    let key = unique("inflight/obj");
    let alice = as_user(&gw, "alice");
    let up = alice
        .create_multipart_upload()
        .bucket("mpa")
        .key(&key)
        .send()
        .await
        .expect("create");
    let id = up.upload_id().expect("id").to_string();
    // Part 1 lands before the abort.
    alice
        .upload_part()
        .bucket("mpa")
        .key(&key)
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(data(5 << 20, 1)))
        .send()
        .await
        .expect("part 1");
    // Part 2's body is held by the test: half of it is sent, the rest
    // only once the abort is waiting. It is in flight when the abort comes.
    let body = data(8 << 20, 2);
    let target = format!("/mpa/{key}?partNumber=2&uploadId={id}");
    let signer = common::raw::Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: std::time::SystemTime::now(),
    };
    let headers = vec![
        ("host".to_string(), format!("127.0.0.1:{}", gw.port)),
        (
            "x-amz-content-sha256".to_string(),
            "UNSIGNED-PAYLOAD".to_string(),
        ),
        ("content-length".to_string(), body.len().to_string()),
    ];
    let (headers, _) = signer.sign_headers("PUT", &target, headers, "UNSIGNED-PAYLOAD");
    let mut head = format!("PUT {target} HTTP/1.1\r\n");
    for (n, v) in &headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("connection: close\r\n\r\n");
    let mut part = tokio::net::TcpStream::connect(("127.0.0.1", gw.port))
        .await
        .expect("connect");
    part.write_all(head.as_bytes()).await.expect("head");
    part.write_all(&body[..body.len() / 2]).await.expect("half");
    wait_in_flight(&gw, 1).await;
    let abort = {
        let (c, k, i) = (alice.clone(), key.clone(), id.clone());
        tokio::spawn(async move {
            c.abort_multipart_upload()
                .bucket("mpa")
                .key(k)
                .upload_id(i)
                .send()
                .await
        })
    };
    // The abort arrived and waits for the part: two requests in flight.
    wait_in_flight(&gw, 2).await;
    assert!(
        !abort.is_finished(),
        "the abort waits for the part in flight"
    );
    part.write_all(&body[body.len() / 2..]).await.expect("rest");
    let mut answer = Vec::new();
    part.read_to_end(&mut answer).await.expect("part answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the part in flight was drained, not cut: {answer}"
    );
    abort.await.expect("task").expect("abort answers 204");
    let err = direct()
        .list_parts()
        .bucket("mpa")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect_err("no upload");
    assert_eq!(code(&err.into_service_error()), Some("NoSuchUpload"));
    let uploads = direct()
        .list_multipart_uploads()
        .bucket("mpa")
        .prefix(&key)
        .send()
        .await
        .expect("list");
    assert!(uploads.uploads().is_empty(), "no upload left upstream");
    let records = audit_records(&audit);
    let r = records
        .iter()
        .find(|r| r["upload_id"] == id.as_str() && r["event"] == "AbortMultipartUpload")
        .expect("audited");
    assert_eq!(r["outcome"], "aborted", "{r}");
    assert!(r["attempts"].as_u64().unwrap_or(0) >= 1);
    assert_eq!(r["parts_remaining"], 0);
    // Both parts, the drained one included, were freed by the abort.
    assert_eq!(r["parts_before"]["count"].as_u64(), Some(2), "{r}");
}

#[tokio::test]
async fn unwritable_audit_log_rejects_aborts() {
    let e = env();
    let dir = e.dir.join("unwritable");
    // A directory where the file should be: it cannot be opened for appending.
    let audit = dir.join("audit-is-a-dir");
    std::fs::create_dir_all(&audit).expect("dir");
    let gw = gateway(&dir, "gw", &e.garage, &audit, "reject");
    let key = unique("reject/obj");
    let c = as_user(&gw, "alice");
    let up = c
        .create_multipart_upload()
        .bucket("mpa")
        .key(&key)
        .send()
        .await
        .expect("create");
    let id = up.upload_id().expect("id").to_string();
    let err = c
        .abort_multipart_upload()
        .bucket("mpa")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect_err("503");
    let err = err.into_service_error();
    assert_eq!(code(&err), Some("ServiceUnavailable"));
    direct()
        .list_parts()
        .bucket("mpa")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("nothing was aborted upstream");
    as_user(&e.a, "alice")
        .abort_multipart_upload()
        .bucket("mpa")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("clean up via A");
}

#[tokio::test]
async fn torn_last_line_is_reported_and_the_chain_continues() {
    let e = env();
    let dir = e.dir.join("torn");
    let audit = dir.join("audit.jsonl");
    let key = unique("torn/obj");
    let gw = gateway(&dir, "one", &e.garage, &audit, "reject");
    let c = as_user(&gw, "alice");
    let id = c
        .create_multipart_upload()
        .bucket("mpa")
        .key(&key)
        .send()
        .await
        .expect("create")
        .upload_id()
        .expect("id")
        .to_string();
    c.abort_multipart_upload()
        .bucket("mpa")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("abort");
    gw.stop();
    // What a kill -9 in the middle of a write leaves behind.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&audit)
        .expect("open");
    f.write_all(b"{\"v\":1,\"seq\":99,\"time\":\"2026-")
        .expect("torn");
    drop(f);
    let (ok, out) = verify(&[&audit]);
    assert!(!ok && out.contains("torn last record"), "{out}");
    let gw = gateway(&dir, "two", &e.garage, &audit, "reject");
    let c = as_user(&gw, "alice");
    let id = c
        .create_multipart_upload()
        .bucket("mpa")
        .key(&key)
        .send()
        .await
        .expect("create")
        .upload_id()
        .expect("id")
        .to_string();
    c.abort_multipart_upload()
        .bucket("mpa")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("abort");
    let (ok, out) = verify(&[&audit]);
    assert!(!ok, "the torn line stays reported: {out}");
    assert!(
        out.contains("torn record") && !out.contains("FAIL"),
        "the chain continues after it: {out}"
    );
}
