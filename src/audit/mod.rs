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

mod error;
pub mod export;
pub mod head;
mod rate;
pub mod record;
pub mod verify;
mod writer;

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::oneshot;

pub use crate::config::Fsync;
use crate::config::{AuditConfig, AuditEvent, OnFailure};
pub use error::AuditError;
pub use rate::{Take, TokenBucket};
pub use record::{Event, Outcome};
pub use writer::rotated;
use writer::{Job, Writer};

/// The record format's version.
const VERSION: u32 = 1;

/// `auth_failed` records written per second at most, on average…
pub const AUTH_FAILED_RATE: f64 = 10.0;
/// …and in a burst.
pub const AUTH_FAILED_BURST: f64 = 100.0;

/// The ledger of one gateway: hands records to the writer thread.
pub struct AuditLog {
    tx: Mutex<mpsc::Sender<Job>>,
    events: Vec<AuditEvent>,
    auth_failed: Mutex<TokenBucket>,
    pub reject_on_failure: bool,
    pub path: PathBuf,
}

impl AuditLog {
    pub fn open(cfg: &AuditConfig, gateway: &str) -> AuditLog {
        let rotate = cfg.rotate.as_ref().map(|r| (r.max_bytes, r.keep));
        let tx = Writer::start(cfg.path.clone(), cfg.fsync, rotate, gateway);
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

    pub fn wants(&self, event: AuditEvent) -> bool {
        self.events.contains(&event)
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
    pub async fn write(&self, mut event: Event) -> Result<(), AuditError> {
        if event.outcome == Outcome::AuthFailed {
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
            return Err(AuditError::NotRunning);
        }
        let r = wait.await.unwrap_or(Err(AuditError::Stopped));
        crate::metrics::get()
            .audit_write
            .observe(&[], started.elapsed());
        if r.is_err() {
            crate::metrics::get().audit_dropped.inc(&["write_failed"]);
        }
        r
    }

    /// Flush to disk (used at shutdown with `fsync: interval`).
    pub async fn sync(&self) -> Result<(), AuditError> {
        let (done, wait) = oneshot::channel();
        if !self.submit(Job::Sync(done)) {
            return Err(AuditError::NotRunning);
        }
        wait.await.unwrap_or(Err(AuditError::Stopped))
    }

    /// Whether a record could be written now.
    pub async fn probe(&self) -> Result<(), AuditError> {
        let (done, wait) = oneshot::channel();
        if !self.submit(Job::Probe(done)) {
            return Err(AuditError::NotRunning);
        }
        wait.await.unwrap_or(Err(AuditError::Stopped))
    }
}

#[cfg(test)]
mod tests;
