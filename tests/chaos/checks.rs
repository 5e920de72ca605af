//! The history against what the upstream, the ledger and the decision log
//! hold afterwards. Each violated property is one line of the report.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::workload::{Entry, Op, Res, BUCKET};

pub type Violations = Vec<String>;

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Every abort answered 204 has exactly one `aborted` record (with the
/// request id the client got); no upload is recorded aborted twice.
pub fn aborts(history: &[Entry], ledger: &Path, v: &mut Violations) -> usize {
    let records = lines(ledger);
    let mut aborted: HashMap<String, Vec<String>> = HashMap::new();
    for r in &records {
        if r["event"] == "AbortMultipartUpload" && r["outcome"] == "aborted" {
            aborted
                .entry(r["upload_id"].as_str().unwrap_or_default().to_string())
                .or_default()
                .push(r["request_id"].as_str().unwrap_or_default().to_string());
        }
    }
    for (id, rids) in &aborted {
        if rids.len() > 1 {
            v.push(format!("upload {id} has {} `aborted` records", rids.len()));
        }
    }
    let mut acked = 0;
    for e in history
        .iter()
        .filter(|e| e.op == Op::Abort && e.res == Res::Ok)
    {
        acked += 1;
        let id = e.upload_id.as_deref().unwrap_or_default();
        match aborted.get(id) {
            None => v.push(format!(
                "abort of {id} by client {} (request {:?}, phase {}, {}–{} ms) answered 204 without an `aborted` record",
                e.client, e.request_id, e.phase, e.start_ms, e.end_ms
            )),
            Some(rids) if e.request_id.as_ref().is_some_and(|r| !rids.contains(r)) => {
                v.push(format!("abort of {id}: the record names another request"))
            }
            Some(_) => {}
        }
    }
    acked
}

/// `s3gate audit verify` passes, or fails only on torn lines where a
/// kill fell: the records around a torn line were written by different
/// gateway processes (each incarnation has its own `gateway` name), i.e.
/// the process that was writing it was killed.
pub fn verify(ledger: &Path, current: &str, v: &mut Violations) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_s3gate"))
        .args(["audit", "verify"])
        .arg(ledger)
        .output()
        .expect("audit verify");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if text.lines().any(|l| l.starts_with("FAIL")) {
        v.push(format!("audit verify:\n{text}"));
    }
    let raw = std::fs::read_to_string(ledger).unwrap_or_default();
    let rows: Vec<Option<String>> = raw
        .lines()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).ok()?;
            Some(r["gateway"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    let mut torn = 0;
    for (i, row) in rows.iter().enumerate() {
        if row.is_some() {
            continue;
        }
        torn += 1;
        let before = rows[..i].iter().rev().find_map(|r| r.clone());
        let after = rows[i + 1..].iter().find_map(|r| r.clone());
        let killed = match (&before, &after) {
            (Some(b), Some(a)) => a != b,
            (Some(b), None) => b != current,
            (None, _) => false,
        };
        if !killed {
            v.push(format!(
                "ledger line {} is torn, but no kill fell there (written by {before:?}, next {after:?})",
                i + 1
            ));
        }
    }
    let verified = text.lines().last().unwrap_or_default();
    if !out.status.success() && torn == 0 {
        v.push(format!("audit verify:\n{text}"));
    }
    format!("{verified} ({torn} torn line(s))")
}

/// Every complete answered 200 is upstream with the size and ETag the
/// client was told; no read returned other bytes than stored.
pub async fn completes(history: &[Entry], direct: &aws_sdk_s3::Client, v: &mut Violations) {
    for e in history {
        if let Res::Corrupt(what) = &e.res {
            v.push(format!("GetObject {} answered 200 with {what}", e.key));
        }
        if e.op != Op::Complete || e.res != Res::Ok {
            continue;
        }
        match direct.head_object().bucket(BUCKET).key(&e.key).send().await {
            Ok(h) => {
                let size = h.content_length().unwrap_or(-1) as u64;
                if size != e.size || h.e_tag() != e.etag.as_deref() {
                    v.push(format!(
                        "complete of {} acknowledged ({} bytes, {:?}), upstream holds {size} bytes, {:?}",
                        e.key, e.size, e.etag, h.e_tag()
                    ));
                }
            }
            Err(err) => v.push(format!(
                "complete of {} acknowledged, upstream has no object: {err:?}",
                e.key
            )),
        }
    }
}

/// The uploads still open upstream: (key, upload id).
pub async fn open_uploads(direct: &aws_sdk_s3::Client) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
    loop {
        let page = direct
            .list_multipart_uploads()
            .bucket(BUCKET)
            .set_key_marker(key_marker.clone())
            .set_upload_id_marker(id_marker.clone())
            .send()
            .await
            .expect("list uploads upstream");
        for u in page.uploads() {
            out.push((
                u.key().unwrap_or_default().to_string(),
                u.upload_id().unwrap_or_default().to_string(),
            ));
        }
        if !page.is_truncated().unwrap_or(false) {
            return out;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        id_marker = page.next_upload_id_marker().map(str::to_string);
    }
}

/// The ownership record of an upload, read straight from the state bucket.
pub async fn owner_record(direct: &aws_sdk_s3::Client, upload_id: &str) -> Option<String> {
    use sha2::Digest;
    let name = hex::encode(sha2::Sha256::digest(
        upload_id.to_ascii_lowercase().as_bytes(),
    ));
    let o = direct
        .get_object()
        .bucket("state")
        .key(format!("owners/{BUCKET}/{name}"))
        .send()
        .await
        .ok()?;
    let b = o.body.collect().await.ok()?.into_bytes();
    let r: serde_json::Value = serde_json::from_slice(&b).ok()?;
    r["principal"].as_str().map(str::to_string)
}

/// Initiator figures: uploads open upstream, those whose create was
/// acknowledged, and orphans (created upstream, the answer lost to a kill).
#[derive(Debug, Default)]
pub struct Owners {
    pub open: usize,
    pub acknowledged: usize,
    pub orphans: usize,
    pub orphans_without_record: usize,
    /// Orphans by the phase and answer of the create that made them.
    pub orphan_causes: std::collections::BTreeMap<String, usize>,
}

/// Every upload open upstream whose create the client saw answered has
/// its initiator on record, and (through the restarted gateway) only the
/// initiator may list its parts. An upload without a record is refused to
/// everyone (fail-closed `unknown`) until the reaper aborts it as an
/// orphan (`orphans_reaped`).
pub async fn owners(
    history: &[Entry],
    direct: &aws_sdk_s3::Client,
    alice: &aws_sdk_s3::Client,
    bob: &aws_sdk_s3::Client,
    v: &mut Violations,
) -> Owners {
    let created: HashMap<String, &'static str> = history
        .iter()
        .filter(|e| e.op == Op::Create && e.res == Res::Ok)
        .filter_map(|e| Some((e.upload_id.clone()?, e.principal)))
        .collect();
    let mut o = Owners::default();
    for (key, id) in open_uploads(direct).await {
        o.open += 1;
        let record = owner_record(direct, &id).await;
        let expected = created.get(&id).copied();
        match expected {
            Some(_) => o.acknowledged += 1,
            None => o.orphans += 1,
        }
        if expected.is_some() && record.as_deref() != expected {
            v.push(format!(
                "upload {id} ({key}) acknowledged to {expected:?}, on record: {record:?}"
            ));
        }
        if record.is_none() && expected.is_none() {
            o.orphans_without_record += 1;
            let cause = history
                .iter()
                .find(|e| e.op == Op::Create && e.key == key)
                .map_or("no create in the history".to_string(), |e| {
                    format!("phase {} answer {:?}", e.phase, e.res)
                });
            *o.orphan_causes.entry(cause).or_default() += 1;
        }
        for (who, c) in [("alice", alice), ("bob", bob)] {
            let r = c
                .list_parts()
                .bucket(BUCKET)
                .key(&key)
                .upload_id(&id)
                .send()
                .await;
            // Refused means AccessDenied; any other error is neither
            // an answer that allows nor one that denies.
            let allowed = match &r {
                Ok(_) => true,
                Err(e) if crate::common::code(e) == Some("AccessDenied") => false,
                Err(e) => {
                    v.push(format!(
                        "ListParts of {id} by {who}: neither allowed nor denied: {}",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    ));
                    continue;
                }
            };
            let should = record.as_deref() == Some(who);
            if allowed != should {
                v.push(format!(
                    "ListParts of {id} by {who}: allowed={allowed}, initiator on record {record:?}: {:?}",
                    r.err().map(|e| aws_sdk_s3::error::DisplayErrorContext(e).to_string())
                ));
            }
        }
    }
    o
}

/// During the storm, every decision names one of the two whole versions,
/// and bob's reads were answered as that version decides.
pub fn storm(
    history: &[Entry],
    phase: usize,
    decisions: &Path,
    versions: &[String],
    v: &mut Violations,
) -> (usize, usize, HashSet<String>) {
    let recs: HashMap<String, serde_json::Value> = lines(decisions)
        .into_iter()
        .filter_map(|r| Some((r["request_id"].as_str()?.to_string(), r)))
        .collect();
    let (mut decided, mut unlogged) = (0, 0);
    let mut seen = HashSet::new();
    for e in history.iter().filter(|e| e.phase == phase) {
        let Some(r) = e.request_id.as_ref().and_then(|id| recs.get(id)) else {
            unlogged += 1;
            continue;
        };
        decided += 1;
        let ver = r["policy_version"].as_str().unwrap_or("none").to_string();
        seen.insert(ver.clone());
        let Some(which) = versions.iter().position(|x| *x == ver) else {
            v.push(format!(
                "request {:?} decided by policy version {ver}, neither of {versions:?}",
                e.request_id
            ));
            continue;
        };
        if e.op == Op::Get && e.principal == "bob" {
            let denied_by_b = which == 1;
            let denied = r["effect"] == "Deny";
            let answered_denied = matches!(&e.res, Res::Fail(403, _));
            if denied != denied_by_b || (e.res == Res::Ok) == denied || answered_denied != denied {
                v.push(format!(
                    "bob's read {:?} under version {ver}: decision {}, answer {:?}",
                    e.request_id, r["effect"], e.res
                ));
            }
        }
    }
    (decided, unlogged, seen)
}

/// What the reaper replica did after the faults.
#[derive(Debug, Default)]
pub struct Reaped {
    /// Its `orphaned` records with outcome `aborted`.
    pub orphans_aborted: usize,
    /// Uploads still open upstream with nobody on record afterwards.
    pub left_without_record: usize,
}

/// After a reaper round with a short `orphans_after`: every upload open
/// upstream has its initiator on record; every upload the reaper aborted
/// was an orphan (`reason: orphaned`, initiator `unknown`), never one a
/// client was told of; its ledger verifies.
pub async fn orphans_reaped(
    history: &[Entry],
    direct: &aws_sdk_s3::Client,
    ledger: &Path,
    v: &mut Violations,
) -> Reaped {
    let acknowledged: HashSet<String> = history
        .iter()
        .filter(|e| e.op == Op::Create && e.res == Res::Ok)
        .filter_map(|e| e.upload_id.clone())
        .collect();
    let mut r = Reaped::default();
    for rec in lines(ledger) {
        let id = rec["upload_id"].as_str().unwrap_or_default();
        if rec["principal"] != "s3gate:reaper" {
            continue;
        }
        if rec["reason"] != "orphaned" || rec["initiator"] != "unknown" {
            v.push(format!(
                "the reaper aborted {id} with reason {} and initiator {} (only orphans were due)",
                rec["reason"], rec["initiator"]
            ));
        }
        if acknowledged.contains(id) {
            v.push(format!(
                "the reaper aborted {id} as an orphan, but its create was acknowledged"
            ));
        }
        if rec["outcome"] == "aborted" {
            r.orphans_aborted += 1;
        } else {
            v.push(format!(
                "the reaper's abort of {id}: outcome {}",
                rec["outcome"]
            ));
        }
    }
    for (key, id) in open_uploads(direct).await {
        if owner_record(direct, &id).await.is_none() {
            r.left_without_record += 1;
            v.push(format!(
                "upload {id} ({key}) is open upstream with no initiator on record after a reaper round"
            ));
        }
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_s3gate"))
        .args(["audit", "verify"])
        .arg(ledger)
        .output()
        .expect("audit verify");
    if !out.status.success() {
        v.push(format!(
            "audit verify of the reaper's ledger:\n{}",
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    r
}
