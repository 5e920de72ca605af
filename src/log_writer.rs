//! Where log lines go: stderr, with the per-request lines (target
//! `s3gate::access`, one per request) handed to a thread of their own, so a
//! request never waits on a slow log reader (a full pipe to a log
//! collector would otherwise stall the runtime thread writing to it, and
//! every connection on that thread). Every other line (start-up, errors,
//! shutdown) is written in place, in order, and so is never lost when the
//! process exits.
//!
//! The writer thread is woken by the first line after a quiet spell only;
//! while lines keep coming it gathers them for [`GATHER`] at a time and
//! writes them with one call, so the queue costs fewer system calls than
//! writing each line in place.
//!
//! At most [`QUEUE`] lines wait; when the reader falls that far behind, new
//! access lines are dropped rather than waited for, and a warning line says
//! how many once the queue drains again.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use tracing::Metadata;
use tracing_subscriber::fmt::MakeWriter;

/// Access lines that may wait for the writer thread.
pub const QUEUE: usize = 16 * 1024;
/// The target whose lines are queued.
pub const QUEUED_TARGET: &str = "s3gate::access";

/// A `MakeWriter` for stderr that queues access lines.
#[derive(Clone)]
pub struct Stderr {
    queue: Option<SyncSender<Vec<u8>>>,
    dropped: Arc<AtomicU64>,
}

impl Stderr {
    /// Start the writer thread (if it cannot start, every line is written
    /// in place).
    pub fn start() -> Self {
        Self::start_with(QUEUE, std::io::stderr)
    }

    /// The writer thread writes to `sink()`; `queue` lines may wait.
    pub fn start_with<W: Write>(queue: usize, sink: impl Fn() -> W + Send + 'static) -> Self {
        let (tx, rx) = sync_channel::<Vec<u8>>(queue);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        let spawned = std::thread::Builder::new()
            .name("s3gate-log".into())
            .spawn(move || drain(rx, counter, sink));
        Stderr {
            queue: spawned.ok().map(|_| tx),
            dropped,
        }
    }

    /// Access lines dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// How long the writer thread lets lines gather while they keep coming:
/// it is not woken per line, and writes them in one go.
const GATHER: Duration = Duration::from_millis(2);
/// Write out once this much has gathered.
const BATCH: usize = 64 * 1024;

fn drain<W: Write>(rx: Receiver<Vec<u8>>, dropped: Arc<AtomicU64>, sink: impl Fn() -> W) {
    let mut reported = 0;
    let mut batch = Vec::with_capacity(BATCH);
    // Idle: block until a line comes (one wake-up).
    while let Ok(first) = rx.recv() {
        batch.extend_from_slice(&first);
        // Busy: gather what arrives meanwhile, without being woken.
        loop {
            let mut open = true;
            loop {
                match rx.try_recv() {
                    Ok(line) => {
                        batch.extend_from_slice(&line);
                        if batch.len() >= BATCH {
                            let _ = sink().write_all(&batch);
                            batch.clear();
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            }
            if batch.is_empty() {
                break;
            }
            let _ = sink().write_all(&batch);
            batch.clear();
            let now = dropped.load(Ordering::Relaxed);
            if now != reported {
                tracing::warn!(
                    dropped = now - reported,
                    "access log lines dropped: the log reader fell {QUEUE} lines behind"
                );
                reported = now;
            }
            if !open {
                return;
            }
            std::thread::sleep(GATHER);
        }
    }
}

/// One line's way out.
pub enum Out {
    Queue(SyncSender<Vec<u8>>, Arc<AtomicU64>),
    Direct(std::io::Stderr),
}

impl Write for Out {
    /// Takes one whole line (the caller writes each line with one call).
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Out::Queue(tx, dropped) => {
                match tx.try_send(b.to_vec()) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TrySendError::Disconnected(line)) => {
                        std::io::stderr().write_all(&line)?;
                    }
                }
                Ok(b.len())
            }
            Out::Direct(e) => e.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Out::Queue(..) => Ok(()),
            Out::Direct(e) => e.flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Out;
    fn make_writer(&'a self) -> Out {
        Out::Direct(std::io::stderr())
    }
    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Out {
        match &self.queue {
            Some(tx) if meta.target() == QUEUED_TARGET => {
                Out::Queue(tx.clone(), self.dropped.clone())
            }
            _ => self.make_writer(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Condvar, Mutex};

    /// A sink that blocks until released, then records what it got.
    #[derive(Clone, Default)]
    struct Gate {
        open: Arc<(Mutex<bool>, Condvar)>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let (open, cv) = &*self.open;
            let mut o = open.lock().unwrap();
            while !*o {
                o = cv.wait(o).unwrap();
            }
            self.got.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn queued(w: &Stderr) -> Out {
        match &w.queue {
            Some(tx) => Out::Queue(tx.clone(), w.dropped.clone()),
            None => panic!("no writer thread"),
        }
    }

    #[test]
    fn a_stalled_reader_never_blocks_a_request_and_drops_are_counted() {
        let gate = Gate::default();
        let sink = gate.clone();
        let w = Stderr::start_with(2, move || sink.clone());
        // The reader is stalled: the thread holds one line, two wait, the
        // rest are dropped; none of these writes blocks.
        for i in 0..10 {
            queued(&w)
                .write_all(format!("line {i}\n").as_bytes())
                .unwrap();
        }
        assert!(w.dropped() >= 7, "{}", w.dropped());
        {
            let (open, cv) = &*gate.open;
            *open.lock().unwrap() = true;
            cv.notify_all();
        }
        // What was queued arrives, in order, whole lines only.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let got = String::from_utf8(gate.got.lock().unwrap().clone()).unwrap();
            if got.lines().count() as u64 + w.dropped() == 10 {
                assert!(got.starts_with("line 0\nline 1\n"), "{got}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{got}");
            std::thread::yield_now();
        }
    }
}
