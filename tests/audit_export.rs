//! `s3gate audit export --format cloudtrail` on a real ledger: aborts
//! through the gateway (allowed, denied by policy, and the reaper's) to
//! Garage, then every record exported as a CloudTrail S3 data event with
//! its fields present and right; `audit verify` still passes on the ledger.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::{
    client, start_garage, Audit, BucketRule, Gateway, GatewayConfig, ALICE_KEY, ALICE_SECRET,
    BOB_KEY, BOB_SECRET,
};
use serde_json::Value;

const POLICY: &str = r#"Version: "2012-10-17"
Statement:
  - Sid: EveryoneWorks
    Effect: Allow
    Principal: "*"
    Action: "s3:*"
    Resource: "*"
  - Sid: OnlyInitiatorAborts
    Effect: Deny
    Principal: "*"
    Action: s3:AbortMultipartUpload
    Resource: "*"
    Condition:
      StringEquals: { s3gate:MultipartInitiator: other }
"#;

fn as_user(gw: &Gateway, key: &str, secret: &str) -> aws_sdk_s3::Client {
    client(&gw.endpoint(), "us-east-1", key, secret, true)
}

async fn upload(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    let id = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("create")
        .upload_id()
        .expect("id")
        .to_string();
    c.upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(vec![b'x'; 321]))
        .send()
        .await
        .expect("part");
    id
}

fn ledger(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudtrail_export_maps_every_record_of_a_real_ledger() {
    let dir = tempfile::tempdir().expect("dir");
    let garage = start_garage(dir.path(), &["mpa", "reap", "state"]);
    let audit = dir.path().join("audit.jsonl");
    let gw = GatewayConfig::new(&garage)
        .gateway_name("export-gw")
        .alice_and_bob()
        .bucket("mpa", BucketRule::upstream("garage"))
        .bucket(
            "reap",
            BucketRule::upstream("garage").abort_incomplete_after("2s"),
        )
        .policy(POLICY)
        .ownership_s3("garage", "state", "owners/")
        .reaper("1s")
        .audit(
            Audit::new(&audit)
                .events(&["AbortMultipartUpload", "CreateMultipartUpload"])
                .fsync("always"),
        )
        .start(&dir.path().join("gw"));
    let alice = as_user(&gw, ALICE_KEY, ALICE_SECRET);
    let bob = as_user(&gw, BOB_KEY, BOB_SECRET);

    let aborted = upload(&alice, "mpa", "one.bin").await;
    alice
        .abort_multipart_upload()
        .bucket("mpa")
        .key("one.bin")
        .upload_id(&aborted)
        .send()
        .await
        .expect("alice aborts her upload");
    let kept = upload(&alice, "mpa", "two.bin").await;
    let denied = bob
        .abort_multipart_upload()
        .bucket("mpa")
        .key("two.bin")
        .upload_id(&kept)
        .send()
        .await;
    assert!(denied.is_err(), "bob may not abort alice's upload");
    let reaped = upload(&alice, "reap", "old.bin").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ledger(&audit)
        .iter()
        .any(|r| r["upload_id"] == reaped.as_str() && r["principal"] == "s3gate:reaper")
    {
        assert!(
            Instant::now() < deadline,
            "the reaper never aborted the upload"
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
    }
    gw.stop();

    let records = ledger(&audit);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_s3gate"))
        .args([
            "audit",
            "export",
            "--format",
            "cloudtrail",
            "--region",
            "eu-de",
        ])
        .arg(&audit)
        .output()
        .expect("export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Value> = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(events.len(), records.len(), "every record exported");
    assert!(
        records.len() >= 6,
        "3 creates, 3 aborts at least: {records:#?}"
    );

    let mut ids = HashSet::new();
    for (r, e) in records.iter().zip(&events) {
        assert_eq!(e["eventVersion"], "1.09");
        assert_eq!(e["eventSource"], "s3.amazonaws.com");
        assert_eq!(e["eventType"], "AwsApiCall");
        assert_eq!(e["awsRegion"], "eu-de");
        assert_eq!(e["eventName"], r["event"]);
        let time = r["time"].as_str().expect("time");
        assert_eq!(
            e["eventTime"].as_str(),
            Some(&format!("{}Z", &time[..19])[..])
        );
        let id = e["eventID"].as_str().expect("eventID");
        assert_eq!(id.len(), 36, "{id}");
        assert!(ids.insert(id.to_string()), "eventIDs are unique");
        assert_eq!(e["requestID"], r["request_id"]);
        assert_eq!(e["userIdentity"]["principalId"], r["principal"]);
        assert_eq!(e["userIdentity"]["invokedBy"], "export-gw");
        assert_eq!(e["requestParameters"]["bucketName"], r["bucket"]);
        assert_eq!(e["requestParameters"]["key"], r["key"]);
        assert_eq!(e["requestParameters"]["uploadId"], r["upload_id"]);
        assert!(e.get("responseElements").is_some());
        let extra = &e["additionalEventData"];
        assert_eq!(extra["outcome"], r["outcome"]);
        assert_eq!(extra["decision"], r["decision"]);
        assert_eq!(extra["reason"], r["reason"]);
        assert_eq!(extra["initiator"], r["initiator"]);
        assert_eq!(extra["ledger"]["hash"], r["hash"]);
        if r["principal"] == "s3gate:reaper" {
            assert_eq!(e["sourceIPAddress"], "s3gate");
            assert_eq!(e["userAgent"], "s3gate");
        } else {
            assert_eq!(e["sourceIPAddress"], "127.0.0.1");
            assert_eq!(e["userIdentity"]["accessKeyId"], r["access_key_id"]);
            assert_eq!(e["userAgent"], r["user_agent"]);
        }
    }
    let find = |upload: &str, name: &str| {
        records
            .iter()
            .zip(&events)
            .filter(|(r, _)| r["upload_id"] == upload && r["event"] == name)
            .map(|(_, e)| e.clone())
            .collect::<Vec<_>>()
    };
    let a = &find(&aborted, "AbortMultipartUpload")[0];
    assert_eq!(a["additionalEventData"]["partsFreed"]["bytes"], 321);
    assert!(a.get("errorCode").is_none());
    let created = &find(&aborted, "CreateMultipartUpload")[0];
    assert_eq!(created["responseElements"]["uploadId"], aborted.as_str());
    let d = &find(&kept, "AbortMultipartUpload")[0];
    assert_eq!(d["errorCode"], "AccessDenied");
    assert_eq!(d["userIdentity"]["principalId"], "bob");
    assert_eq!(d["additionalEventData"]["partsFreed"], Value::Null);
    assert_eq!(d["additionalEventData"]["decision"]["effect"], "Deny");
    let reap = &find(&reaped, "AbortMultipartUpload")[0];
    assert_eq!(reap["userIdentity"]["principalId"], "s3gate:reaper");
    assert_eq!(reap["additionalEventData"]["reason"], "expired");
    assert_eq!(reap["additionalEventData"]["initiator"], "alice");
    assert_eq!(reap["additionalEventData"]["partsFreed"]["count"], 1);

    // The ledger itself still verifies.
    let v = std::process::Command::new(env!("CARGO_BIN_EXE_s3gate"))
        .args(["audit", "verify"])
        .arg(&audit)
        .output()
        .expect("verify");
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}
