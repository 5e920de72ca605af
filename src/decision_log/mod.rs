//! The decision log (`decision_log:` in the config): one JSON line per
//! policy decision, with everything the decision read, for `s3gate replay`.
//!
//! Request threads only serialize the line and hand it to a bounded
//! channel (never blocking: when the writer falls behind, lines are
//! dropped and counted); a dedicated thread writes and rotates the file.

pub mod record;

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::SystemTime;

pub use record::{Decided, DecisionRecord};

use crate::config::DecisionLogConfig;

/// Lines waiting for the writer before new ones are dropped.
const QUEUE: usize = 8192;

pub struct DecisionLog {
    tx: SyncSender<String>,
    dropped: Arc<AtomicU64>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl DecisionLog {
    /// Start the writer thread. The file is opened (and created) by it;
    /// failures are logged, and retried on the next line.
    pub fn open(config: &DecisionLogConfig) -> Self {
        let (tx, rx) = mpsc::sync_channel::<String>(QUEUE);
        let rotate = config.rotate.as_ref().map(|r| (r.max_bytes, r.keep));
        let path = config.path.clone();
        let spawned = std::thread::Builder::new()
            .name("s3gate-decision-log".into())
            .spawn(move || write_loop(&path, rotate, &rx));
        let writer = spawned
            .map_err(|e| tracing::error!("decision log writer cannot start: {e}"))
            .ok();
        DecisionLog {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            writer,
        }
    }

    /// Write what is queued and stop the writer.
    pub fn close(mut self) {
        let writer = self.writer.take();
        drop(self);
        if let Some(w) = writer {
            let _ = w.join();
        }
    }

    /// Record one decision. Never blocks.
    pub fn record(&self, d: &Decided<'_>) {
        let time = crate::auth::time::format_rfc3339(SystemTime::now(), true);
        let rec = DecisionRecord::new(d, time);
        let Ok(mut line) = serde_json::to_string(&rec) else {
            return;
        };
        line.push('\n');
        match self.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(
                        dropped = n,
                        "decision log writer is behind: decisions dropped"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Decisions not written because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

struct Sink {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    size: u64,
    rotate: Option<(u64, u32)>,
}

impl Sink {
    fn writer(&mut self) -> std::io::Result<&mut BufWriter<File>> {
        if self.out.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.size = f.metadata()?.len();
            self.out = Some(BufWriter::new(f));
        }
        Ok(self.out.as_mut().expect("opened"))
    }

    fn write(&mut self, line: &str) -> std::io::Result<()> {
        if let Some((max, keep)) = self.rotate {
            if self.size > 0 && self.size + line.len() as u64 > max {
                self.rotate(keep)?;
            }
        }
        self.writer()?.write_all(line.as_bytes())?;
        self.size += line.len() as u64;
        Ok(())
    }

    /// `log` → `log.1` → … → `log.<keep>`; the oldest falls off.
    fn rotate(&mut self, keep: u32) -> std::io::Result<()> {
        if let Some(mut w) = self.out.take() {
            w.flush()?;
        }
        let nth = |i: u32| rotated(&self.path, i);
        let _ = std::fs::remove_file(nth(keep));
        for i in (1..keep).rev() {
            if nth(i).exists() {
                std::fs::rename(nth(i), nth(i + 1))?;
            }
        }
        std::fs::rename(&self.path, nth(1))?;
        self.size = 0;
        Ok(())
    }

    fn flush(&mut self) {
        if let Some(w) = &mut self.out {
            if let Err(e) = w.flush() {
                tracing::error!(path = %self.path.display(), "decision log: {e}");
                self.out = None;
            }
        }
    }
}

/// The `n`th rotated file of `path` (`decisions.jsonl.1` is the newest).
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn write_loop(path: &Path, rotate: Option<(u64, u32)>, rx: &Receiver<String>) {
    let mut sink = Sink {
        path: path.to_path_buf(),
        out: None,
        size: 0,
        rotate,
    };
    // Block for a line, write what else is queued, flush when idle.
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(line) = next.take() {
            if let Err(e) = sink.write(&line) {
                tracing::error!(path = %path.display(), "decision log: {e}");
                sink.out = None;
            }
            next = rx.try_recv().ok();
        }
        sink.flush();
    }
    sink.flush();
}

#[cfg(test)]
mod tests;
