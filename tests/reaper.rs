//! The reaper (`multipart.reaper`, `abort_incomplete_after`) against
//! Garage: expired uploads are aborted through the abort flow and audited
//! as `s3gate:reaper` naming the initiator; ownership records of reaped
//! uploads and of uploads gone upstream are removed; two replicas on one
//! state bucket abort an upload once; uploads nobody is on record for
//! (created behind the gateway's back, as a create whose record was never
//! written leaves them) are aborted as orphans after `orphans_after`, with
//! the durable store only.

mod common;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use common::{
    client, http_get, start_garage, Audit, BucketRule, Garage, Gateway, GatewayConfig, ALICE_KEY,
    ALICE_SECRET,
};

/// How long the reaper may take to act on an expired upload (it is 3 s old
/// after 3 s, and the reaper looks every second; generous for slow CI).
const PATIENCE: Duration = Duration::from_secs(60);

fn config(garage: &Garage, name: &str, audit: &Path) -> GatewayConfig {
    GatewayConfig::new(garage)
        .gateway_name(name)
        .alice_and_bob()
        .bucket(
            "reap",
            BucketRule::upstream("garage").abort_incomplete_after("3s"),
        )
        // The default limit applies to `keep`: its uploads never expire here.
        .bucket("keep", BucketRule::upstream("garage"))
        .abort_incomplete_after("1h")
        .ownership_s3("garage", "state", "owners/")
        .abort("5s", true, 5)
        .reaper("1s")
        .audit(Audit::new(audit).fsync("always"))
}

fn direct(g: &Garage) -> aws_sdk_s3::Client {
    client(
        &g.endpoint,
        "garage",
        &g.access_key_id,
        &g.secret_access_key,
        true,
    )
}

fn alice(gw: &Gateway) -> aws_sdk_s3::Client {
    client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true)
}

/// Poll `f` until it gives a value, or panic after `PATIENCE`.
async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
    }
}

async fn uploads(g: &Garage, bucket: &str) -> Vec<String> {
    let out = direct(g)
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .expect("list uploads");
    out.uploads()
        .iter()
        .filter_map(|u| u.upload_id().map(str::to_string))
        .collect()
}

async fn records(g: &Garage, bucket: &str) -> usize {
    let out = direct(g)
        .list_objects_v2()
        .bucket("state")
        .prefix(format!("owners/{bucket}/"))
        .send()
        .await
        .expect("list records");
    out.contents().len()
}

/// Start an upload with one part of `len` bytes through the gateway.
async fn start_upload(gw: &Gateway, bucket: &str, key: &str, len: usize) -> String {
    let c = alice(gw);
    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("create");
    let id = up.upload_id().expect("upload id").to_string();
    c.upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(common::data(len, 7)))
        .send()
        .await
        .expect("part");
    id
}

fn ledger(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn reaper_records(path: &Path, upload_id: &str) -> Vec<serde_json::Value> {
    ledger(path)
        .into_iter()
        .filter(|r| r["principal"] == "s3gate:reaper" && r["upload_id"] == upload_id)
        .collect()
}

/// The value of a metric line `name{labels} value` on a gateway's /metrics.
fn metric(gw: &Gateway, series: &str) -> u64 {
    let (_, body) = http_get(gw.admin_port, "/metrics");
    body.lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaper_aborts_expired_uploads_audits_them_and_cleans_records() {
    let dir = tempfile::tempdir().expect("dir");
    let garage = start_garage(dir.path(), &["reap", "keep", "state"]);
    let audit = dir.path().join("audit.jsonl");
    let gw = config(&garage, "reaper-one", &audit).start(&dir.path().join("gw"));

    // An upload whose record will outlive it: aborted behind the gateway's back.
    let orphan = start_upload(&gw, "keep", "orphan.bin", 10).await;
    assert_eq!(records(&garage, "keep").await, 1);
    direct(&garage)
        .abort_multipart_upload()
        .bucket("keep")
        .key("orphan.bin")
        .upload_id(&orphan)
        .send()
        .await
        .expect("direct abort");
    // One that is young for its bucket's limit (1h): left alone.
    let young = start_upload(&gw, "keep", "young.bin", 10).await;

    let started = SystemTime::now();
    let id = start_upload(&gw, "reap", "big/object.bin", 1234).await;
    assert_eq!(
        records(&garage, "reap").await,
        1,
        "the initiator is recorded"
    );

    wait_for("the upload to be gone upstream", || async {
        (!uploads(&garage, "reap").await.contains(&id)).then_some(())
    })
    .await;
    let r = wait_for("the reaper's audit record", || async {
        reaper_records(&audit, &id).into_iter().next()
    })
    .await;
    assert_eq!(r["event"], "AbortMultipartUpload");
    assert_eq!(r["principal"], "s3gate:reaper");
    assert_eq!(r["reason"], "expired");
    assert_eq!(r["initiator"], "alice", "{r}");
    assert_eq!(r["outcome"], "aborted", "{r}");
    assert_eq!(r["bucket"], "reap");
    assert_eq!(r["key"], "big/object.bin");
    assert_eq!(r["parts_before"]["count"], 1);
    assert_eq!(r["parts_before"]["bytes"], 1234);
    assert_eq!(r["parts_remaining"], 0);
    assert_eq!(
        r["decision"]["statements"][0]["sid"],
        "buckets.reap.abort_incomplete_after"
    );
    // Not before its time: the record is at least 3 s after the upload began
    // (Initiated has whole seconds).
    let at = r["time"].as_str().expect("time");
    let began = s3gate::auth::time::format_rfc3339(started + Duration::from_secs(2), true);
    assert!(at >= began.as_str(), "reaped at {at}, began ~{began}");

    wait_for("the reaped upload's ownership record to go", || async {
        (records(&garage, "reap").await == 0).then_some(())
    })
    .await;
    assert_eq!(
        metric(&gw, "s3gate_reaper_uploads_reaped_total{bucket=\"reap\"}"),
        1
    );
    assert_eq!(
        metric(&gw, "s3gate_reaper_bytes_freed_total{bucket=\"reap\"}"),
        1234
    );

    // The orphan's record goes once it is older than the listing's margin;
    // the young upload and its record stay.
    wait_for("the orphaned record to be swept", || async {
        (records(&garage, "keep").await == 1).then_some(())
    })
    .await;
    assert!(uploads(&garage, "keep").await.contains(&young));
    assert!(
        metric(
            &gw,
            "s3gate_reaper_ownership_records_removed_total{bucket=\"keep\"}"
        ) >= 1
    );
    assert!(reaper_records(&audit, &young).is_empty());

    // The ledger with the reaper's records still verifies.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_s3gate"))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_abort_an_expired_upload_once() {
    let dir = tempfile::tempdir().expect("dir");
    let garage = start_garage(dir.path(), &["reap", "keep", "state"]);
    let (audit_a, audit_b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    let a = config(&garage, "replica-a", &audit_a).start(&dir.path().join("a"));
    let b = config(&garage, "replica-b", &audit_b).start(&dir.path().join("b"));

    let id = start_upload(&a, "reap", "shared.bin", 100).await;
    wait_for("the upload to be gone upstream", || async {
        (!uploads(&garage, "reap").await.contains(&id)).then_some(())
    })
    .await;
    // Let both replicas finish the rounds that may have seen the upload.
    let rounds = |gw: &Gateway| metric(gw, "s3gate_reaper_runs_total");
    let (ra, rb) = (rounds(&a), rounds(&b));
    wait_for("two more rounds on each replica", || async {
        (rounds(&a) >= ra + 2 && rounds(&b) >= rb + 2).then_some(())
    })
    .await;

    let all: Vec<_> = reaper_records(&audit_a, &id)
        .into_iter()
        .chain(reaper_records(&audit_b, &id))
        .collect();
    let aborted = all.iter().filter(|r| r["outcome"] == "aborted").count();
    assert_eq!(aborted, 1, "aborted once: {all:?}");
    let reaped = metric(&a, "s3gate_reaper_uploads_reaped_total")
        + metric(&b, "s3gate_reaper_uploads_reaped_total");
    assert_eq!(reaped, 1);
    // A duplicate attempt (both replicas holding the lease in one instant)
    // is harmless, and visible: NoSuchUpload, counted.
    let duplicates =
        metric(&a, "s3gate_reaper_duplicates_total") + metric(&b, "s3gate_reaper_duplicates_total");
    assert_eq!(all.len() as u64, 1 + duplicates, "{all:?}");
    for r in all.iter().filter(|r| r["outcome"] != "aborted") {
        assert_eq!(r["outcome"], "no_such_upload", "{r}");
    }
    // Only one replica held the lease at a time: the other stood by.
    let standby = metric(&a, "s3gate_reaper_runs_total{result=\"standby\"}")
        + metric(&b, "s3gate_reaper_runs_total{result=\"standby\"}");
    assert!(standby > 0, "one replica stood by");
}

/// An upload created at Garage directly, with one part of `len` bytes: no
/// ownership record, as a create the gateway never recorded leaves it.
async fn start_direct_upload(g: &Garage, bucket: &str, key: &str, len: usize) -> String {
    let c = direct(g);
    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("direct create");
    let id = up.upload_id().expect("upload id").to_string();
    c.upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(common::data(len, 3)))
        .send()
        .await
        .expect("direct part");
    id
}

fn orphan_config(garage: &Garage, name: &str, audit: &Path) -> GatewayConfig {
    GatewayConfig::new(garage)
        .gateway_name(name)
        .alice_and_bob()
        // A long limit: only orphans are young enough to go here.
        .bucket(
            "keep",
            BucketRule::upstream("garage").abort_incomplete_after("1d"),
        )
        .abort("5s", true, 5)
        .reaper("1s")
        .orphans_after("2s")
        .audit(Audit::new(audit).fsync("always"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaper_aborts_orphans_and_spares_recorded_uploads() {
    let dir = tempfile::tempdir().expect("dir");
    let garage = start_garage(dir.path(), &["keep", "state"]);
    let audit = dir.path().join("audit.jsonl");
    let gw = orphan_config(&garage, "reaper-orphans", &audit)
        .ownership_s3("garage", "state", "owners/")
        .start(&dir.path().join("gw"));

    let orphan = start_direct_upload(&garage, "keep", "orphan.bin", 321).await;
    let recorded = start_upload(&gw, "keep", "recorded.bin", 10).await;
    assert_eq!(records(&garage, "keep").await, 1, "only one is on record");

    wait_for("the orphan to be gone upstream", || async {
        (!uploads(&garage, "keep").await.contains(&orphan)).then_some(())
    })
    .await;
    let r = wait_for("the reaper's audit record of the orphan", || async {
        reaper_records(&audit, &orphan).into_iter().next()
    })
    .await;
    assert_eq!(r["event"], "AbortMultipartUpload");
    assert_eq!(r["principal"], "s3gate:reaper");
    assert_eq!(r["reason"], "orphaned", "{r}");
    assert_eq!(r["initiator"], "unknown", "{r}");
    assert_eq!(r["outcome"], "aborted", "{r}");
    assert_eq!(r["key"], "orphan.bin");
    assert_eq!(r["parts_before"]["count"], 1);
    assert_eq!(r["parts_before"]["bytes"], 321);
    assert_eq!(r["parts_remaining"], 0);
    assert_eq!(
        r["decision"]["statements"][0]["sid"],
        "multipart.reaper.orphans_after"
    );

    // The recorded upload stays, round after round, once well past
    // orphans_after (and far from its 1d limit).
    let rounds = || metric(&gw, "s3gate_reaper_runs_total{result=\"ok\"}");
    let before = rounds();
    wait_for("three more rounds", || async {
        (rounds() >= before + 3).then_some(())
    })
    .await;
    assert!(uploads(&garage, "keep").await.contains(&recorded));
    assert!(reaper_records(&audit, &recorded).is_empty());
    assert_eq!(records(&garage, "keep").await, 1, "its record stays");
    assert_eq!(
        metric(&gw, "s3gate_reaper_orphans_reaped_total{bucket=\"keep\"}"),
        1
    );
    assert_eq!(metric(&gw, "s3gate_reaper_uploads_reaped_total"), 0);
    assert_eq!(
        metric(&gw, "s3gate_reaper_bytes_freed_total{bucket=\"keep\"}"),
        321
    );
    // Its initiator may still finish it.
    let c = alice(&gw);
    let parts = c
        .list_parts()
        .bucket("keep")
        .key("recorded.bin")
        .upload_id(&recorded)
        .send()
        .await
        .expect("alice lists her parts");
    assert_eq!(parts.parts().len(), 1);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_s3gate"))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_orphans_are_reaped_with_the_memory_store() {
    let dir = tempfile::tempdir().expect("dir");
    let garage = start_garage(dir.path(), &["keep"]);
    let audit = dir.path().join("audit.jsonl");
    // The memory store's records are this replica's alone: an upload
    // another replica (or this one before a restart) recorded would look
    // like an orphan, so none is reaped.
    let gw = orphan_config(&garage, "reaper-memory", &audit).start(&dir.path().join("gw"));
    let unrecorded = start_direct_upload(&garage, "keep", "unrecorded.bin", 10).await;
    tokio::time::sleep(Duration::from_secs(3)).await; // past orphans_after
    let rounds = || metric(&gw, "s3gate_reaper_runs_total{result=\"ok\"}");
    let before = rounds();
    wait_for("two more rounds", || async {
        (rounds() >= before + 2).then_some(())
    })
    .await;
    assert!(uploads(&garage, "keep").await.contains(&unrecorded));
    assert!(reaper_records(&audit, &unrecorded).is_empty());
    assert!(
        gw.log().contains("orphans_after has no effect"),
        "the config warning is shown"
    );
}
