//! The audit ledger: one JSON line per AbortMultipartUpload attempt (and
//! optional other events), hash-chained across rotated files, fsynced before
//! the client hears the answer (`fsync: always`).
//!
//! Writes happen on a dedicated thread (file I/O and fsync block); requests
//! wait for their record on a oneshot channel, never blocking an async
//! worker.
//!
//! Next to the log, `<path>.head` names the last record written (see
//! `head`); `auth_failed` records are rate limited (a flood of bad
//! signatures must not fill the disk nor drown the ledger).

pub mod head;
pub mod record;
pub mod verify;

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use record::Event;
use tokio::sync::oneshot;

use crate::config::{AuditConfig, AuditEvent, OnFailure};

const VERSION: u32 = 1;

/// `auth_failed` records written per second at most, on average…
pub const AUTH_FAILED_RATE: f64 = 10.0;
/// …and in a burst.
pub const AUTH_FAILED_BURST: f64 = 100.0;

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    dropped: u64,
}

/// What the bucket said.
#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    /// Go ahead; this many were dropped since the previous one that went.
    Admitted(u64),
    /// Dropped; `true` for the first of a run.
    Dropped(bool),
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
            dropped: 0,
        }
    }

    pub fn take(&mut self, now: Instant) -> Take {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = self.last.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Take::Admitted(std::mem::take(&mut self.dropped))
        } else {
            self.dropped += 1;
            Take::Dropped(self.dropped == 1)
        }
    }
}

pub use crate::config::Fsync;

enum Job {
    Write(Box<Event>, oneshot::Sender<Result<(), String>>),
    Sync(oneshot::Sender<Result<(), String>>),
    /// Is the file writable now (reopening it if needed)?
    Probe(oneshot::Sender<Result<(), String>>),
}

pub struct AuditLog {
    tx: Mutex<mpsc::Sender<Job>>,
    events: Vec<AuditEvent>,
    auth_failed: Mutex<TokenBucket>,
    pub reject_on_failure: bool,
    pub path: PathBuf,
}

struct Writer {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    next_seq: u64,
    prev: String,
    fsync: Fsync,
    rotate: Option<(u64, u32)>,
    gateway: String,
    dirty: bool,
    /// Records were written since the head was last replaced.
    head_stale: bool,
}

impl AuditLog {
    pub fn open(cfg: &AuditConfig, gateway: &str) -> AuditLog {
        let fsync = cfg.fsync;
        let mut w = Writer {
            path: cfg.path.clone(),
            file: None,
            size: 0,
            next_seq: 0,
            prev: String::new(),
            fsync,
            rotate: cfg.rotate.as_ref().map(|r| (r.max_bytes, r.keep)),
            gateway: gateway.to_string(),
            dirty: false,
            head_stale: false,
        };
        if let Err(e) = w.ensure_open() {
            tracing::error!(path = %cfg.path.display(), "audit log cannot be opened: {e}");
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || w.run(rx));
        if let Err(e) = spawned {
            tracing::error!("cannot start the audit writer: {e}");
        }
        let mut events = cfg.events.clone();
        if !events.contains(&AuditEvent::AbortMultipartUpload) {
            events.push(AuditEvent::AbortMultipartUpload);
        }
        AuditLog {
            tx: Mutex::new(tx),
            events,
            auth_failed: Mutex::new(TokenBucket::new(
                AUTH_FAILED_RATE,
                AUTH_FAILED_BURST,
                Instant::now(),
            )),
            reject_on_failure: cfg.on_failure == OnFailure::Reject,
            path: cfg.path.clone(),
        }
    }

    pub fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|e| e.as_str() == event)
    }

    fn submit(&self, job: Job) -> bool {
        match self.tx.lock() {
            Ok(tx) => tx.send(job).is_ok(),
            Err(_) => false,
        }
    }

    /// Append a record; returns once it is written (and fsynced with
    /// `fsync: always`). `auth_failed` records beyond the rate limit are
    /// dropped (counted in `s3gate_audit_records_dropped_total`, and in the
    /// next written one's `suppressed`). Free-text fields are bounded, and
    /// a deferred initiator lookup is resolved here.
    pub async fn write(&self, mut event: Event) -> Result<(), String> {
        if event.outcome == "auth_failed" {
            let take = match self.auth_failed.lock() {
                Ok(mut bucket) => bucket.take(Instant::now()),
                Err(_) => Take::Admitted(0),
            };
            match take {
                Take::Admitted(n) => event.suppressed = (n > 0).then_some(n),
                Take::Dropped(first) => {
                    crate::metrics::get().audit_dropped.inc(&["rate_limited"]);
                    if first {
                        tracing::warn!(
                            "auth_failed audit records are being rate limited ({AUTH_FAILED_RATE}/s, burst {AUTH_FAILED_BURST}); the next one written counts the dropped ones"
                        );
                    }
                    return Ok(());
                }
            }
        }
        if let Some(lookup) = event.resolve_initiator.take() {
            event.initiator = Some(
                lookup
                    .resolve()
                    .await
                    .unwrap_or_else(|| "unknown".to_string()),
            );
        }
        event.bound_free_text();
        let started = Instant::now();
        let (done, wait) = oneshot::channel();
        if !self.submit(Job::Write(Box::new(event), done)) {
            return Err("the audit writer is not running".into());
        }
        let r = wait
            .await
            .unwrap_or_else(|_| Err("the audit writer stopped".into()));
        crate::metrics::get()
            .audit_write
            .observe(&[], started.elapsed());
        r
    }

    /// Flush to disk (used at shutdown with `fsync: interval`).
    pub async fn sync(&self) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        if !self.submit(Job::Sync(done)) {
            return Err("the audit writer is not running".into());
        }
        wait.await
            .unwrap_or_else(|_| Err("the audit writer stopped".into()))
    }

    /// Whether a record could be written now.
    pub async fn probe(&self) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        if !self.submit(Job::Probe(done)) {
            return Err("the audit writer is not running".into());
        }
        wait.await
            .unwrap_or_else(|_| Err("the audit writer stopped".into()))
    }
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        let mut last_sync = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(Job::Write(event, done)) => {
                    let r = self.append(&event);
                    if let Err(e) = &r {
                        tracing::error!(path = %self.path.display(), "audit record not written: {e}");
                    }
                    let _ = done.send(r);
                }
                Ok(Job::Sync(done)) => {
                    self.sync();
                    let _ = done.send(Ok(()));
                }
                Ok(Job::Probe(done)) => {
                    let _ = done.send(self.ensure_open());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.sync();
                    return;
                }
            }
            if self.fsync == Fsync::Interval
                && self.dirty
                && last_sync.elapsed() >= Duration::from_secs(1)
            {
                self.sync();
                last_sync = Instant::now();
            }
        }
    }

    fn sync(&mut self) {
        if let Some(f) = &self.file {
            if let Err(e) = f.sync_data() {
                tracing::error!("audit fsync failed: {e}");
                self.dirty = false;
                return;
            }
        }
        self.dirty = false;
        // The head never gets ahead of what is on disk.
        self.update_head();
    }

    /// Replace `<path>.head` with the chain's last record.
    fn update_head(&mut self) {
        if !self.head_stale {
            return;
        }
        let Some(seq) = self.next_seq.checked_sub(1) else {
            return;
        };
        let h = head::Head {
            v: VERSION,
            file: head::file_name(&self.path),
            seq,
            hash: self.prev.clone(),
        };
        match head::write(&self.path, &h) {
            Ok(()) => self.head_stale = false,
            Err(e) => tracing::error!("audit head not written: {e}"),
        }
    }

    /// Open the file and find where the chain stands: the last whole
    /// record's seq and hash. A torn last line (crash mid-write) is closed
    /// with a newline and reported; the chain continues after it.
    fn ensure_open(&mut self) -> Result<(), String> {
        if self.file.is_some() {
            return Ok(());
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        let mut text = Vec::new();
        f.read_to_end(&mut text)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        if !text.is_empty() && text.last() != Some(&b'\n') {
            tracing::warn!(path = %self.path.display(), "audit log ends in a torn record (crash mid-write); continuing the chain after it");
            f.write_all(b"\n").map_err(|e| e.to_string())?;
            text.push(b'\n');
        }
        let (seq, prev) = match last_record(&text) {
            Some(x) => x,
            None => match self.previous_file_tail() {
                Some(x) => x,
                None => (None, genesis()),
            },
        };
        let (seq, prev) = self.reconcile_with_head(seq, prev);
        self.next_seq = seq.map_or(0, |s| s + 1);
        self.prev = prev;
        self.size = f.seek(SeekFrom::End(0)).unwrap_or(text.len() as u64);
        self.file = Some(f);
        Ok(())
    }

    /// Compare the chain's tail on disk with the head. Records removed from
    /// the end (or a replaced last record) are reported, and the chain
    /// continues from the head, so the gap stays visible to `audit verify`
    /// instead of being papered over by a fresh head.
    fn reconcile_with_head(&self, seq: Option<u64>, prev: String) -> (Option<u64>, String) {
        let h = match head::read(&self.path) {
            Ok(Some(h)) if h.file == head::file_name(&self.path) => h,
            Ok(_) => return (seq, prev),
            Err(e) => {
                tracing::error!("audit head unreadable, ignored: {e}");
                return (seq, prev);
            }
        };
        let path = self.path.display();
        match seq {
            Some(s) if s > h.seq => (seq, prev),
            Some(s) if s == h.seq && prev == h.hash => (seq, prev),
            Some(s) if s == h.seq => {
                tracing::error!(%path, seq = s, "the audit log's last record does not match its head (it was replaced); the chain continues from the head");
                (Some(h.seq), h.hash)
            }
            _ => {
                tracing::error!(%path, log_seq = ?seq, head_seq = h.seq, "the audit log is shorter than its head (its last records were removed); the chain continues from the head");
                (Some(h.seq), h.hash)
            }
        }
    }

    /// The chain's tail in the newest rotated file (for an empty current file).
    fn previous_file_tail(&self) -> Option<(Option<u64>, String)> {
        let text = std::fs::read(rotated(&self.path, 1)).ok()?;
        last_record(&text)
    }

    fn append(&mut self, event: &Event) -> Result<(), String> {
        self.ensure_open()?;
        let (line, hash) = record::seal(event, VERSION, self.next_seq, &self.gateway, &self.prev);
        if let Some((max, keep)) = self.rotate {
            if self.size > 0 && self.size + line.len() as u64 + 1 > max {
                self.rotate_files(keep)?;
            }
        }
        let f = self.file.as_mut().ok_or("audit log not open")?;
        let mut bytes = line.into_bytes();
        bytes.push(b'\n');
        let r = f.write_all(&bytes).and_then(|_| {
            if self.fsync == Fsync::Always {
                f.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = r {
            // Reopen next time; the chain resumes from what is on disk.
            self.file = None;
            return Err(format!("{}: {e}", self.path.display()));
        }
        self.dirty = self.fsync == Fsync::Interval;
        self.size += bytes.len() as u64;
        self.next_seq += 1;
        self.prev = hash;
        self.head_stale = true;
        if self.fsync == Fsync::Always {
            self.update_head();
        }
        Ok(())
    }

    fn rotate_files(&mut self, keep: u32) -> Result<(), String> {
        self.sync();
        self.file = None;
        let keep = keep.max(1);
        let _ = std::fs::remove_file(rotated(&self.path, keep));
        for i in (1..keep).rev() {
            let _ = std::fs::rename(rotated(&self.path, i), rotated(&self.path, i + 1));
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))
            .map_err(|e| format!("rotating {}: {e}", self.path.display()))?;
        let (seq, prev) = (self.next_seq, self.prev.clone());
        self.ensure_open()?;
        // The new file's first record links to the last hash of the old one.
        self.next_seq = seq;
        self.prev = prev;
        Ok(())
    }
}

pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn genesis() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::thread_rng().gen();
    hex::encode(bytes)
}

/// (seq, hash) of the last whole record in `text`.
fn last_record(text: &[u8]) -> Option<(Option<u64>, String)> {
    let text = String::from_utf8_lossy(text);
    text.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        Some((v.get("seq")?.as_u64(), v.get("hash")?.as_str()?.to_string()))
    })
}

#[cfg(test)]
mod tests {
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
            event: "AbortMultipartUpload".into(),
            request_id: format!("R{n}"),
            outcome: "aborted".into(),
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

    #[test]
    fn token_bucket_admits_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 100.0, t0);
        let admitted = (0..150)
            .filter(|_| matches!(b.take(t0), Take::Admitted(_)))
            .count();
        assert_eq!(admitted, 100);
        // 0.1 s later: one more token, and the 50 dropped are counted.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(b.take(t1), Take::Admitted(50));
        assert_eq!(b.take(t1), Take::Dropped(true));
        assert_eq!(b.take(t1), Take::Dropped(false));
        // Never more than the burst saved up.
        let t2 = t1 + Duration::from_secs(3600);
        let admitted = (0..150)
            .filter(|_| matches!(b.take(t2), Take::Admitted(_)))
            .count();
        assert_eq!(admitted, 100);
    }

    fn auth_failed(n: u32) -> Event {
        Event {
            outcome: "auth_failed".into(),
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
                    max_bytes: 1200,
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
}
