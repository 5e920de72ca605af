//! Live reload: watch the policy paths, debounce, validate, swap
//! atomically; SIGHUP reloads too. A failed reload keeps the last good set,
//! logs every error and is counted. A request takes one `Arc<PolicySet>`
//! and is decided under it, whatever happens meanwhile.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use super::PolicySet;

pub struct PolicyStore {
    current: RwLock<Arc<PolicySet>>,
    paths: Vec<PathBuf>,
    principals: Vec<String>,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
}

/// How often the files are looked at, and how long they must be quiet.
const POLL: Duration = Duration::from_millis(250);
const DEBOUNCE: Duration = Duration::from_millis(200);

type Fingerprint = Vec<(PathBuf, Option<SystemTime>, u64)>;

impl PolicyStore {
    pub fn new(set: PolicySet, paths: Vec<PathBuf>, principals: Vec<String>) -> Self {
        PolicyStore {
            current: RwLock::new(Arc::new(set)),
            paths,
            principals,
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        }
    }

    /// The policy set in force now.
    pub fn current(&self) -> Arc<PolicySet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Load the files again; swap only when every file validates.
    pub fn reload(&self, why: &str) -> bool {
        match super::load(&self.paths, Some(&self.principals)) {
            Ok(set) => {
                let n = set.statements.len();
                let version = set.version.clone();
                match self.current.write() {
                    Ok(mut g) => *g = Arc::new(set),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(set),
                }
                self.reloads_ok.fetch_add(1, Ordering::Relaxed);
                tracing::info!(reason = why, statements = n, version, "policies reloaded");
                true
            }
            Err(errors) => {
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                for e in &errors {
                    tracing::error!(
                        reason = why,
                        "policy reload failed, keeping the last good policies: {e}"
                    );
                }
                false
            }
        }
    }

    fn fingerprint(&self) -> Fingerprint {
        let files = super::files(&self.paths).unwrap_or_default();
        files
            .into_iter()
            .map(|f| {
                // metadata() follows symlinks, so a ConfigMap's `..data`
                // swap shows up as a change of the files it points to.
                let m = std::fs::metadata(&f).ok();
                let mtime = m.as_ref().and_then(|m| m.modified().ok());
                let len = m.map_or(0, |m| m.len());
                (f, mtime, len)
            })
            .collect()
    }

    /// Watch the files from a background thread.
    pub fn watch(self: &Arc<Self>) {
        let store = self.clone();
        let spawned = std::thread::Builder::new()
            .name("policy-watch".into())
            .spawn(move || {
                let mut last = store.fingerprint();
                loop {
                    std::thread::sleep(POLL);
                    let now = store.fingerprint();
                    if now == last {
                        continue;
                    }
                    // Debounce: wait until the files stop changing.
                    let mut settled = now;
                    loop {
                        std::thread::sleep(DEBOUNCE);
                        let again = store.fingerprint();
                        if again == settled {
                            break;
                        }
                        settled = again;
                    }
                    store.reload("files changed");
                    last = settled;
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the policy watcher: {e}");
        }
    }

    /// Reload on SIGHUP.
    pub fn reload_on_sighup(self: &Arc<Self>) {
        let store = self.clone();
        // The handler is in place before this returns (so before the
        // gateway says it listens): a SIGHUP sent right after start-up
        // reloads instead of finding no handler.
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("policy-sighup".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!("cannot listen for SIGHUP: {e}");
                        return;
                    }
                };
                rt.block_on(async move {
                    let hup =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
                    let _ = ready_tx.send(());
                    let Ok(mut hup) = hup else {
                        tracing::error!("cannot listen for SIGHUP");
                        return;
                    };
                    while hup.recv().await.is_some() {
                        store.reload("SIGHUP");
                    }
                });
            });
        if spawned.is_ok() {
            // Err: the thread ended without a handler (logged there).
            let _ = ready_rx.recv();
        }
        if let Err(e) = spawned {
            tracing::error!("cannot start the SIGHUP listener: {e}");
        }
    }
}
