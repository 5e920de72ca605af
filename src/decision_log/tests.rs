use std::collections::HashMap;

use super::*;
use crate::config::{BucketConfig, RotateConfig};
use crate::policy::actions::Need;
use crate::policy::{Decision, Effect};

fn decide_and_log(log: &DecisionLog, n: usize) {
    let needs = vec![Need {
        action: "s3:GetObject",
        resource: format!("arn:aws:s3:::b/k{n}"),
    }];
    let mut keys = HashMap::new();
    keys.insert("aws:username".to_string(), vec!["etl".to_string()]);
    keys.insert(
        "s3gate:expectedbucketowner".to_string(),
        vec!["1".to_string()],
    );
    let rules = BucketConfig {
        upstream: "lab".into(),
        target: None,
        owner: Some("1".into()),
        expected_bucket_owner: Default::default(),
        request_payer: Default::default(),
        cors: None,
        abort_incomplete_after: None,
    };
    let decision = Decision {
        effect: Effect::Allow,
        statements: vec!["p.yaml#Read".into()],
    };
    log.record(&Decided {
        request_id: "r1",
        operation: "GetObject",
        principal: "etl",
        bucket: Some("b"),
        key: Some(&format!("k{n}")),
        needs: &needs,
        keys: &keys,
        rules: Some(("lab", &rules)),
        decision: &decision,
        shadow: false,
        policy_version: Some("0123456789ab"),
    });
}

#[test]
fn lines_round_trip_and_rotate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("d/decisions.jsonl");
    let log = DecisionLog::open(&DecisionLogConfig {
        path: path.clone(),
        rotate: Some(RotateConfig {
            max_bytes: 1000,
            keep: 2,
        }),
    });
    for n in 0..20 {
        decide_and_log(&log, n);
    }
    log.close();
    let text = std::fs::read_to_string(&path).expect("log");
    let last: DecisionRecord =
        serde_json::from_str(text.lines().last().expect("a line")).expect("JSON");
    assert_eq!(last.key.as_deref(), Some("k19"));
    assert_eq!(last.statements, vec!["p.yaml#Read"]);
    assert_eq!(last.policy_version.as_deref(), Some("0123456789ab"));
    assert_eq!(last.context["s3gate:expectedbucketowner"], vec!["1"]);
    let rules = last.bucket_rules.as_ref().expect("rules");
    assert_eq!(rules.expected_bucket_owner, "passthrough");
    let (needs, keys) = last.decision_inputs().expect("inputs");
    assert_eq!(needs[0].action, "s3:GetObject");
    assert_eq!(keys["aws:username"], vec!["etl"]);
    assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
    assert!(!rotated(&path, 3).exists(), "only `keep` rotated files");
    for p in [path.clone(), rotated(&path, 1)] {
        let len = std::fs::metadata(&p).expect("file").len();
        assert!(len <= 1000, "{} is {len} bytes", p.display());
    }
}

#[test]
fn a_stalled_writer_drops_and_counts_decisions_and_never_blocks() {
    // A FIFO nobody reads yet: the writer thread blocks opening it, as it
    // would on a stuck disk.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("decisions.jsonl");
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let log = DecisionLog::open(&DecisionLogConfig {
        path: path.clone(),
        rotate: None,
    });
    let total = QUEUE + 100;
    let started = std::time::Instant::now();
    for n in 0..total {
        decide_and_log(&log, n);
    }
    // Every call returned although nothing could be written.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let dropped = log.dropped() as usize;
    assert!((99..=100).contains(&dropped), "dropped {dropped}");
    // Once the file can be written, what was queued arrives whole.
    let reader = std::thread::spawn(move || std::fs::read_to_string(&path).expect("read fifo"));
    log.close();
    let text = reader.join().expect("reader");
    assert_eq!(text.lines().count() + dropped, total);
    assert!(text
        .lines()
        .all(|l| serde_json::from_str::<DecisionRecord>(l).is_ok()));
}
