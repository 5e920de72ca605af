//! Live reload: an edited policy changes decisions within 2 s; a broken
//! edit keeps the old decisions and is reported with file:line:column; a
//! Kubernetes ConfigMap-style symlink swap is picked up too.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::{
    client, start_garage, unique, BucketRule, Credentials, GatewayConfig, Secret, Upstream,
    ALICE_KEY, ALICE_SECRET,
};

const ALLOW: &str = r#"Version: "2012-10-17"
Statement:
  - Sid: AliceEverything
    Effect: Allow
    Principal: alice
    Action: "s3:*"
    Resource: "*"
"#;

const DENY_PUT: &str = r#"
  - Sid: NoMorePuts
    Effect: Deny
    Principal: alice
    Action: s3:PutObject
    Resource: arn:aws:s3:::rld/*
"#;

/// Write a ConfigMap-like layout: dir/..v1/main.yaml, dir/..data -> ..v1,
/// dir/main.yaml -> ..data/main.yaml.
fn configmap(dir: &Path, version: &str, text: &str) {
    let v = dir.join(format!("..{version}"));
    std::fs::create_dir_all(&v).expect("mkdir");
    std::fs::write(v.join("main.yaml"), text).expect("write");
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(format!("..{version}"), &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap");
    let link = dir.join("main.yaml");
    if std::fs::symlink_metadata(&link).is_err() {
        symlink("..data/main.yaml", &link).expect("link");
    }
}

async fn put_allowed(c: &aws_sdk_s3::Client) -> bool {
    c.put_object()
        .bucket("rld")
        .key(unique("k"))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .is_ok()
}

async fn wait_for(c: &aws_sdk_s3::Client, want: bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if put_allowed(c).await == want {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval
    }
    panic!("decision did not become {want} within 5 s");
}

#[tokio::test]
async fn edits_reload_within_two_seconds_and_broken_edits_keep_the_old_policies() {
    let dir = std::env::temp_dir().join(format!("s3gate-reload-{}", std::process::id()));
    let pol = dir.join("policies");
    std::fs::create_dir_all(&pol).expect("dir");
    configmap(&pol, "v1", ALLOW);
    let garage = start_garage(&dir, &["rld"]);
    let gw = GatewayConfig::new(&garage)
        .principal("alice", ALICE_KEY, ALICE_SECRET)
        .bucket("*", BucketRule::upstream("garage"))
        .policy_dir("policies")
        .start(&dir);
    let alice = client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    assert!(put_allowed(&alice).await);

    // An edit (ConfigMap symlink swap) takes effect within 2 s.
    configmap(&pol, "v2", &format!("{ALLOW}{DENY_PUT}"));
    let took = wait_for(&alice, false).await;
    assert!(took < Duration::from_secs(2), "reload took {took:?}");

    // A broken edit is reported with file:line:column; old decisions stay.
    configmap(
        &pol,
        "v3",
        &format!("{ALLOW}{DENY_PUT}").replace("s3:PutObject", "s3:PutObjekt"),
    );
    let start = Instant::now();
    while !gw.log().contains("policy reload failed") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no reload error logged: {}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = gw.log();
    assert!(log.contains("main.yaml:12:5: s3:PutObjekt is not an S3 action s3gate knows — did you mean s3:PutObject?"), "{log}");
    assert!(
        !put_allowed(&alice).await,
        "the last good policies stay in force"
    );

    // Fixing it (a plain in-place write this time) restores the allow.
    std::fs::write(pol.join("..v3/main.yaml"), ALLOW).expect("fix");
    let took = wait_for(&alice, true).await;
    assert!(took < Duration::from_secs(2), "reload took {took:?}");
}

/// alice (with `key`) in front of an upstream `u` nobody answers at; the
/// secrets come from `$HOME`.
fn unreachable_upstream(key: &str) -> GatewayConfig {
    GatewayConfig::empty()
        .principal("alice", key, Secret::env("HOME"))
        .upstream(
            "u",
            Upstream::s3_compatible(
                "http://127.0.0.1:1",
                Credentials::keys("a", Secret::env("HOME")),
            ),
        )
        .bucket("*", BucketRule::upstream("u"))
}

#[test]
fn broken_policy_stops_the_gateway_at_start_with_every_error() {
    let dir = std::env::temp_dir().join(format!("s3gate-badstart-{}", std::process::id()));
    let cfg = unreachable_upstream("AKIAA")
        .policy("Version: \"2012-10-17\"\nStatement:\n  - Effect: Alow\n    Principal: nobody\n    Action: s3:GetObjekt\n")
        .write(&dir);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_s3gate"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("p.yaml:3:5: Effect must be Allow or Deny, not `Alow`"),
        "{err}"
    );
    assert!(
        err.contains("p.yaml:4:5: principal `nobody` does not exist"),
        "{err}"
    );
    assert!(err.contains("p.yaml:5:5: s3:GetObjekt is not an S3 action s3gate knows — did you mean s3:GetObject?"), "{err}");
}

#[test]
fn sighup_reloads() {
    let dir = std::env::temp_dir().join(format!("s3gate-sighup-{}", std::process::id()));
    // Started directly, so that the signal goes to the gateway.
    let gw = unreachable_upstream(ALICE_KEY)
        .policy(ALLOW)
        .start_direct(&dir);
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status();
    let start = Instant::now();
    let text = loop {
        let text = gw.log();
        if text.contains("policies reloaded") || start.elapsed() > Duration::from_secs(5) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50)); // poll interval
    };
    gw.stop();
    assert!(
        text.contains("policies reloaded") && text.contains("SIGHUP"),
        "{text}"
    );
}
