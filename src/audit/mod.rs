//! The audit ledger: one JSON line per AbortMultipartUpload attempt (and
//! optional other events), hash-chained across rotated files, fsynced before
//! the client hears the answer (`fsync: always`).
//!
//! Writes happen on a dedicated thread (file I/O and fsync block); requests
//! wait for their record on a oneshot channel, never blocking an async
//! worker.

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

use crate::config::AuditConfig;

const VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    Always,
    Interval,
}

enum Job {
    Write(Box<Event>, oneshot::Sender<Result<(), String>>),
    Sync(oneshot::Sender<Result<(), String>>),
    /// Is the file writable now (reopening it if needed)?
    Probe(oneshot::Sender<Result<(), String>>),
}

pub struct AuditLog {
    tx: Mutex<mpsc::Sender<Job>>,
    events: Vec<String>,
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
}

impl AuditLog {
    pub fn open(cfg: &AuditConfig, gateway: &str) -> AuditLog {
        let fsync = if cfg.fsync.as_deref() == Some("interval") {
            Fsync::Interval
        } else {
            Fsync::Always
        };
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
        if !events.iter().any(|e| e == "AbortMultipartUpload") {
            events.push("AbortMultipartUpload".into());
        }
        AuditLog {
            tx: Mutex::new(tx),
            events,
            reject_on_failure: cfg.on_failure.as_deref() != Some("continue"),
            path: cfg.path.clone(),
        }
    }

    pub fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }

    fn submit(&self, job: Job) -> bool {
        match self.tx.lock() {
            Ok(tx) => tx.send(job).is_ok(),
            Err(_) => false,
        }
    }

    /// Append a record; returns once it is written (and fsynced with
    /// `fsync: always`).
    pub async fn write(&self, event: Event) -> Result<(), String> {
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
            }
        }
        self.dirty = false;
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
        self.next_seq = seq.map_or(0, |s| s + 1);
        self.prev = prev;
        self.size = f.seek(SeekFrom::End(0)).unwrap_or(text.len() as u64);
        self.file = Some(f);
        Ok(())
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
            fsync: Some("always".into()),
            on_failure: None,
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
        assert_eq!(r.torn.len(), 1, "the torn line is reported: {:?}", r.torn);
        assert!(r.torn[0].contains(":2: torn record"), "{:?}", r.torn);
        assert_eq!(r.records, 7);
    }
}
