//! Part uploads in flight on this replica, so an abort can refuse new parts
//! for its upload and wait for the ones already streaming.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Default)]
struct Entry {
    parts: u32,
    aborting: bool,
}

#[derive(Default)]
pub struct InFlight {
    state: Mutex<HashMap<String, Entry>>,
    changed: Notify,
}

/// Held while a part upload streams; dropping it ends the part.
pub struct PartGuard {
    owner: Arc<InFlight>,
    key: String,
}

/// Held while an abort runs; new parts are refused meanwhile.
pub struct AbortGuard {
    owner: Arc<InFlight>,
    key: String,
}

impl InFlight {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Entry>) -> R) -> R {
        match self.state.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Start a part; None when the upload is being aborted.
    pub fn begin_part(self: &Arc<Self>, key: &str) -> Option<PartGuard> {
        self.with(|m| {
            let e = m.entry(key.to_string()).or_default();
            if e.aborting {
                return None;
            }
            e.parts += 1;
            Some(PartGuard {
                owner: self.clone(),
                key: key.to_string(),
            })
        })
    }

    pub fn begin_abort(self: &Arc<Self>, key: &str) -> AbortGuard {
        self.with(|m| m.entry(key.to_string()).or_default().aborting = true);
        AbortGuard {
            owner: self.clone(),
            key: key.to_string(),
        }
    }

    fn parts(&self, key: &str) -> u32 {
        self.with(|m| m.get(key).map_or(0, |e| e.parts))
    }

    /// Wait until no part of `key` is in flight, or `limit` passes;
    /// returns how many are still in flight.
    pub async fn drain(&self, key: &str, limit: Duration) -> u32 {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.changed.notified();
            let n = self.parts(key);
            if n == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.parts(key);
            }
        }
    }

    fn tidy(m: &mut HashMap<String, Entry>, key: &str) {
        if m.get(key).is_some_and(|e| e.parts == 0 && !e.aborting) {
            m.remove(key);
        }
    }
}

impl Drop for PartGuard {
    fn drop(&mut self) {
        self.owner.with(|m| {
            if let Some(e) = m.get_mut(&self.key) {
                e.parts = e.parts.saturating_sub(1);
            }
            InFlight::tidy(m, &self.key);
        });
        self.owner.changed.notify_waiters();
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        self.owner.with(|m| {
            if let Some(e) = m.get_mut(&self.key) {
                e.aborting = false;
            }
            InFlight::tidy(m, &self.key);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn abort_refuses_new_parts_and_waits_for_running_ones() {
        let f = Arc::new(InFlight::default());
        let p = f.begin_part("b\nu").unwrap();
        let a = f.begin_abort("b\nu");
        assert!(
            f.begin_part("b\nu").is_none(),
            "new parts are refused while aborting"
        );
        let f2 = f.clone();
        let waiter = tokio::spawn(async move { f2.drain("b\nu", Duration::from_secs(5)).await });
        drop(p);
        assert_eq!(waiter.await.unwrap(), 0);
        let _p2 = f.begin_part("x").unwrap();
        assert_eq!(
            f.drain("x", Duration::from_millis(20)).await,
            1,
            "times out with the part still running"
        );
        drop(a);
        assert!(f.begin_part("b\nu").is_some());
    }
}
