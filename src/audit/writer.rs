//! The writer thread: appends sealed records, fsyncs, keeps the head file
//! current, rotates files, and finds where the chain stands when it
//! (re)opens the log.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{head, record, AuditError, Event, Fsync, VERSION};

pub(super) enum Job {
    Write(Box<Event>, oneshot::Sender<Result<(), AuditError>>),
    Sync(oneshot::Sender<Result<(), AuditError>>),
    /// Is the file writable now (reopening it if needed)?
    Probe(oneshot::Sender<Result<(), AuditError>>),
}

/// Free bytes below which `probe` reports the log unwritable (about 30
/// records), so `on_failure: reject` refuses aborts before they go upstream.
const MIN_FREE: u64 = 64 * 1024;

pub(super) struct Writer {
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

impl Writer {
    /// Open the log (reporting, not failing, when it cannot be opened yet:
    /// each write tries again) and start the writer thread.
    pub(super) fn start(
        path: PathBuf,
        fsync: Fsync,
        rotate: Option<(u64, u32)>,
        gateway: &str,
    ) -> mpsc::Sender<Job> {
        let mut w = Writer {
            path,
            file: None,
            size: 0,
            next_seq: 0,
            prev: String::new(),
            fsync,
            rotate,
            gateway: gateway.to_string(),
            dirty: false,
            head_stale: false,
        };
        if let Err(e) = w.ensure_open() {
            tracing::error!(path = %w.path.display(), "audit log cannot be opened: {e}");
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || w.run(rx));
        if let Err(e) = spawned {
            tracing::error!("cannot start the audit writer: {e}");
        }
        tx
    }

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
                    let _ = done.send(self.ensure_open().and_then(|()| self.room()));
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
    fn ensure_open(&mut self) -> Result<(), AuditError> {
        if self.file.is_some() {
            return Ok(());
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(AuditError::io(dir))?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(AuditError::io(&self.path))?;
        let mut text = Vec::new();
        f.read_to_end(&mut text)
            .map_err(AuditError::io(&self.path))?;
        if !text.is_empty() && text.last() != Some(&b'\n') {
            tracing::warn!(path = %self.path.display(), "audit log ends in a torn record (crash mid-write); continuing the chain after it");
            f.write_all(b"\n").map_err(AuditError::io(&self.path))?;
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

    /// Whether the log's filesystem has room for records: at least
    /// [`MIN_FREE`] bytes available (a full filesystem fails writes, even
    /// root's, which permissions do not stop).
    fn room(&self) -> Result<(), AuditError> {
        let st = nix::sys::statvfs::statvfs(&self.path).map_err(|e| AuditError::Io {
            path: self.path.clone(),
            source: e.into(),
        })?;
        let free = (st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64);
        if free < MIN_FREE {
            return Err(AuditError::Io {
                path: self.path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    format!("{free} bytes free on the audit log's filesystem"),
                ),
            });
        }
        Ok(())
    }

    fn append(&mut self, event: &Event) -> Result<(), AuditError> {
        self.ensure_open()?;
        let (line, hash) = record::seal(event, VERSION, self.next_seq, &self.gateway, &self.prev);
        if let Some((max, keep)) = self.rotate {
            if self.size > 0 && self.size + line.len() as u64 + 1 > max {
                self.rotate_files(keep)?;
            }
        }
        let f = self.file.as_mut().ok_or(AuditError::NotOpen)?;
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
            // A write that failed part-way (ENOSPC) left part of the record
            // in the file: take it back, so a failure never leaves a torn
            // line. Then reopen next time; the chain resumes from what is
            // on disk.
            if let Err(t) = f.set_len(self.size) {
                tracing::error!(path = %self.path.display(), "could not remove a partly written audit record: {t}");
            }
            self.file = None;
            return Err(AuditError::Io {
                path: self.path.clone(),
                source: e,
            });
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

    fn rotate_files(&mut self, keep: u32) -> Result<(), AuditError> {
        self.sync();
        self.file = None;
        let keep = keep.max(1);
        let _ = std::fs::remove_file(rotated(&self.path, keep));
        for i in (1..keep).rev() {
            let _ = std::fs::rename(rotated(&self.path, i), rotated(&self.path, i + 1));
        }
        std::fs::rename(&self.path, rotated(&self.path, 1)).map_err(|source| {
            AuditError::Rotate {
                path: self.path.clone(),
                source,
            }
        })?;
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
