//! The ledger end to end: the chain, its head, tampering, rotation, rate limits.

use crate::audit::record::{EventKind, Outcome};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::RotateConfig;

fn cfg(path: &Path, rotate: Option<RotateConfig>) -> AuditConfig {
    AuditConfig {
        path: path.to_path_buf(),
        events: vec![],
        fsync: Fsync::Always,
        on_failure: OnFailure::Reject,
        rotate,
    }
}

fn ev(n: u32) -> Event {
    Event {
        event: EventKind::AbortMultipartUpload,
        request_id: format!("R{n}"),
        outcome: Outcome::Aborted,
        attempts: n,
        ..Default::default()
    }
}

#[tokio::test]
async fn chain_verifies_and_detects_every_kind_of_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&cfg(&p, None), "gw");
    for i in 0..5 {
        log.write(ev(i)).await.unwrap();
    }
    assert!(verify::verify(std::slice::from_ref(&p)).ok());
    let text = std::fs::read_to_string(&p).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let check = |body: String, want: &str| {
        let q = dir.path().join("t.jsonl");
        std::fs::write(&q, body).unwrap();
        let r = verify::verify(&[q]);
        let all = [r.problems.clone(), r.torn.clone()].concat().join("\n");
        assert!(all.contains(want), "want {want:?} in {all}");
    };
    // edited
    check(
        text.replace("\"attempts\":2", "\"attempts\":3"),
        "t.jsonl:3: record seq 2 was changed",
    );
    // deleted
    check(
        [lines[0], lines[1], lines[3], lines[4]].join("\n") + "\n",
        "t.jsonl:3: record seq 3 does not follow",
    );
    // reordered
    check(
        [lines[0], lines[2], lines[1], lines[3], lines[4]].join("\n") + "\n",
        "t.jsonl:2: record seq 2 does not follow",
    );
    // truncated
    check(
        format!("{}\n{}", lines[..4].join("\n"), &lines[4][..20]),
        "t.jsonl:5: torn last record",
    );
}

fn problems(r: &verify::Report) -> String {
    [r.problems.clone(), r.torn.clone()].concat().join("\n")
}

fn drop_last_lines(p: &Path, n: usize) {
    let text = std::fs::read_to_string(p).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let kept = lines[..lines.len() - n].join("\n") + "\n";
    std::fs::write(p, kept).unwrap();
}

#[tokio::test]
async fn the_head_names_the_last_record_and_verify_finds_removed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&cfg(&p, None), "gw");
    for i in 0..4 {
        log.write(ev(i)).await.unwrap();
    }
    let h = head::read(&p)
        .unwrap()
        .expect("a head after the first record");
    assert_eq!((h.seq, h.file.as_str()), (3, "audit.jsonl"));
    let last = std::fs::read_to_string(&p).unwrap();
    let last: serde_json::Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
    assert_eq!(last["hash"], h.hash.as_str());
    let r = verify::verify(std::slice::from_ref(&p));
    assert!(r.ok() && r.notes.is_empty(), "{r:?}");
    drop(log);

    // The last record removed: what remains still chains, the head tells.
    let copy = |name: &str, drop_n: usize| {
        let q = dir.path().join(name);
        std::fs::copy(&p, &q).unwrap();
        std::fs::copy(head::path_for(&p), head::path_for(&q)).unwrap();
        drop_last_lines(&q, drop_n);
        q
    };
    let one = copy("one.jsonl", 1);
    let r = verify::verify(std::slice::from_ref(&one));
    assert!(!r.ok());
    let all = problems(&r);
    assert!(
        all.contains("one.jsonl: 1 record(s) missing at the end (seq 3)"),
        "{all}"
    );
    assert!(all.contains("one.jsonl.head"), "{all}");
    let two = copy("two.jsonl", 2);
    let all = problems(&verify::verify(&[two]));
    assert!(
        all.contains("2 record(s) missing at the end (seq 2..=3)"),
        "{all}"
    );
    let none = copy("none.jsonl", 4);
    let all = problems(&verify::verify(&[none]));
    assert!(all.contains("no whole record"), "{all}");

    // The last record replaced by a well-chained forgery: the head's hash differs.
    let forged = dir.path().join("forged.jsonl");
    std::fs::copy(&p, &forged).unwrap();
    std::fs::copy(head::path_for(&p), head::path_for(&forged)).unwrap();
    drop_last_lines(&forged, 1);
    let text = std::fs::read_to_string(&forged).unwrap();
    let prev: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let (line, _) = record::seal(&ev(9), VERSION, 3, "gw", prev["hash"].as_str().unwrap());
    std::fs::write(&forged, format!("{text}{line}\n")).unwrap();
    let all = problems(&verify::verify(&[forged]));
    assert!(
        all.contains("record seq 3 does not match the head's hash"),
        "{all}"
    );

    // No head: verified as before, and said so.
    let bare = dir.path().join("bare.jsonl");
    std::fs::copy(&p, &bare).unwrap();
    let r = verify::verify(std::slice::from_ref(&bare));
    assert!(r.ok(), "{r:?}");
    assert!(r.notes[0].contains("no head file"), "{:?}", r.notes);
}

#[tokio::test]
async fn a_restart_after_removal_keeps_the_gap_visible() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    {
        let log = AuditLog::open(&cfg(&p, None), "gw");
        for i in 0..3 {
            log.write(ev(i)).await.unwrap();
        }
    }
    // Let the first writer thread finish before tampering.
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop_last_lines(&p, 1);
    let log = AuditLog::open(&cfg(&p, None), "gw");
    log.write(ev(7)).await.unwrap();
    // The writer continued from the head (seq 3 after seq 2), so the new
    // head matches but the removed record shows as a break in the chain.
    let all = problems(&verify::verify(std::slice::from_ref(&p)));
    assert!(
        all.contains("audit.jsonl:3: record seq 3 does not follow"),
        "{all}"
    );
}

#[tokio::test]
async fn with_fsync_interval_the_head_follows_each_sync() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let mut c = cfg(&p, None);
    c.fsync = Fsync::Interval;
    let log = AuditLog::open(&c, "gw");
    log.write(ev(0)).await.unwrap();
    log.write(ev(1)).await.unwrap();
    log.sync().await.unwrap();
    assert_eq!(head::read(&p).unwrap().map(|h| h.seq), Some(1));
    assert!(verify::verify(std::slice::from_ref(&p)).ok());
}

fn auth_failed(n: u32) -> Event {
    Event {
        outcome: Outcome::AuthFailed,
        ..ev(n)
    }
}

fn dropped_metric() -> u64 {
    let text = crate::metrics::get().render();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("s3gate_audit_records_dropped_total{reason=\"rate_limited\"} ")
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn auth_failed_records_are_rate_limited_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let mut c = cfg(&p, None);
    c.fsync = Fsync::Interval;
    let log = AuditLog::open(&c, "gw");
    let before = dropped_metric();
    for i in 0..300 {
        log.write(auth_failed(i)).await.unwrap();
    }
    // Other outcomes are never limited.
    for i in 0..5 {
        log.write(ev(i)).await.unwrap();
    }
    // After a pause, the next auth_failed one is written and counts the dropped.
    tokio::time::sleep(Duration::from_millis(250)).await;
    log.write(auth_failed(1000)).await.unwrap();
    log.sync().await.unwrap();
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let failed: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["outcome"] == "auth_failed")
        .collect();
    let written = failed.len() as u64;
    assert!((100..200).contains(&written), "{written} written");
    assert_eq!(records.len() as u64, written + 5);
    let dropped = 301 - written;
    let suppressed: u64 = failed.iter().filter_map(|r| r["suppressed"].as_u64()).sum();
    assert_eq!(
        suppressed, dropped,
        "every dropped one is counted in a later record"
    );
    assert!(failed.last().unwrap()["suppressed"].as_u64() > Some(0));
    assert_eq!(dropped_metric() - before, dropped);
    assert!(verify::verify(std::slice::from_ref(&p)).ok());
}

#[tokio::test]
async fn free_text_is_bounded_and_the_initiator_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&cfg(&p, None), "gw");
    let mut e = ev(1);
    e.user_agent = Some("é".repeat(300));
    e.key = Some("k".repeat(5000));
    e.upload_id = Some("u".repeat(1024));
    e.initiator = Some("unknown".into());
    e.resolve_initiator = Some(record::InitiatorLookup::new(|| async {
        Some("alice".to_string())
    }));
    log.write(e).await.unwrap();
    let mut e = ev(2);
    e.resolve_initiator = Some(record::InitiatorLookup::new(|| async { None }));
    log.write(e).await.unwrap();
    let text = std::fs::read_to_string(&p).unwrap();
    let r: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ua = r[0]["user_agent"].as_str().unwrap();
    assert!(
        ua.len() <= 256 && ua.ends_with('…') && ua.starts_with("éé"),
        "{ua}"
    );
    let key = r[0]["key"].as_str().unwrap();
    assert!(key.len() <= 1024 && key.ends_with('…'), "{}", key.len());
    assert_eq!(
        r[0]["upload_id"].as_str().map(str::len),
        Some(1024),
        "not cut"
    );
    assert_eq!(r[0]["truncated"], serde_json::json!(["user_agent", "key"]));
    assert_eq!(r[0]["initiator"], "alice");
    assert_eq!(r[1]["truncated"], serde_json::Value::Null);
    assert_eq!(r[1]["initiator"], "unknown");
    assert!(r[1].get("suppressed").is_some() && r[1].get("resolve_initiator").is_none());
    assert!(verify::verify(std::slice::from_ref(&p)).ok());
}

#[tokio::test]
async fn torn_line_is_survived_and_rotation_keeps_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("audit.jsonl");
    {
        let log = AuditLog::open(&cfg(&p, None), "gw");
        log.write(ev(1)).await.unwrap();
    }
    // A crash mid-write leaves half a line.
    let mut f = OpenOptions::new().append(true).open(&p).unwrap();
    f.write_all(b"{\"v\":1,\"seq\":1,\"ti").unwrap();
    drop(f);
    let log = AuditLog::open(
        &cfg(
            &p,
            Some(RotateConfig {
                max_bytes: 1300,
                keep: 5,
            }),
        ),
        "gw",
    );
    for i in 2..8 {
        log.write(ev(i)).await.unwrap();
    }
    let files: Vec<PathBuf> = (1..=5)
        .rev()
        .map(|i| rotated(&p, i))
        .filter(|f| f.exists())
        .chain([p.clone()])
        .collect();
    assert!(files.len() >= 2, "rotated: {files:?}");
    let r = verify::verify(&files);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    // The head names the current file's last record.
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    assert_eq!(head::read(&p).unwrap().map(|h| h.seq), Some(6));
    assert_eq!(r.torn.len(), 1, "the torn line is reported: {:?}", r.torn);
    assert!(r.torn[0].contains(":2: torn record"), "{:?}", r.torn);
    assert_eq!(r.records, 7);
}
