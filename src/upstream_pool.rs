//! Idle upstream connections of the GetObject relay, kept per thread.
//!
//! pingora's connector pools connections across threads: every connection
//! it takes back is watched by a task spawned on a random thread of the
//! gateway's runtimes, and handing it out again races that task (pingora's
//! "failed to acquire reusable stream": the connection is dropped and a new
//! one made, for about 3% of small GETs under load) and wakes the other
//! thread twice per request. The gateway runs one single-threaded runtime
//! per thread, and a request never leaves its thread, so the relay keeps
//! the connections it releases on that thread and takes them back there:
//! no task, no lock, no wake-up. An idle connection is checked when it is
//! taken (one the upstream closed, or that has unexpected data, is
//! dropped), and dropped once idle longer than the route's idle timeout.

use std::cell::RefCell;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use pingora::connectors::TransportConnector;
use pingora::protocols::http::client::HttpSession;
use pingora::protocols::http::v1::client::HttpSession as Http1Session;
use pingora::protocols::Stream;
use pingora::upstreams::peer::{HttpPeer, Peer};
use tokio::io::{AsyncRead, ReadBuf};

/// Idle connections kept per thread, over all upstreams; the oldest goes.
const PER_THREAD: usize = 64;

struct Idle {
    key: u64,
    since: Instant,
    stream: Stream,
}

thread_local! {
    static IDLE: RefCell<Vec<Idle>> = const { RefCell::new(Vec::new()) };
}

/// Opens connections; keeps idle ones per thread.
pub struct ThreadPool {
    transport: TransportConnector,
}

impl Default for ThreadPool {
    fn default() -> Self {
        ThreadPool {
            transport: TransportConnector::new(None),
        }
    }
}

impl ThreadPool {
    /// An HTTP/1 session to `peer`: one of this thread's idle connections,
    /// else a new one; and whether it was reused.
    pub async fn session(
        &self,
        peer: &HttpPeer,
        idle: Duration,
    ) -> pingora::Result<(HttpSession, bool)> {
        if let Some(stream) = take(peer.reuse_hash(), idle) {
            return Ok((
                HttpSession::H1(Http1Session::new_with_options(stream, peer)),
                true,
            ));
        }
        let stream = self.transport.new_stream(peer).await?;
        Ok((
            HttpSession::H1(Http1Session::new_with_options(stream, peer)),
            false,
        ))
    }

    /// Keep `session`'s connection for the next request to `peer` on this
    /// thread, if its answer was read whole and the upstream keeps it open.
    pub async fn release(&self, session: HttpSession, peer: &HttpPeer, idle: Duration) {
        let HttpSession::H1(mut h1) = session else {
            return;
        };
        h1.respect_keepalive();
        if let Some(stream) = h1.reuse().await {
            put(peer.reuse_hash(), stream, idle);
        }
    }
}

/// The newest idle connection to `key` that is still usable.
fn take(key: u64, idle: Duration) -> Option<Stream> {
    IDLE.with(|pool| {
        let mut pool = pool.borrow_mut();
        while let Some(i) = pool.iter().rposition(|c| c.key == key) {
            let mut c = pool.remove(i);
            if c.since.elapsed() < idle && quiet(&mut c.stream) {
                return Some(c.stream);
            }
        }
        None
    })
}

fn put(key: u64, stream: Stream, idle: Duration) {
    IDLE.with(|pool| {
        let mut pool = pool.borrow_mut();
        let now = Instant::now();
        pool.retain(|c| now.duration_since(c.since) < idle);
        if pool.len() >= PER_THREAD {
            pool.remove(0);
        }
        pool.push(Idle {
            key,
            since: now,
            stream,
        });
    });
}

/// Whether an idle connection has nothing to read: not closed by the
/// upstream, no stray bytes. (A close still in flight is caught by the
/// caller's retry on a reused connection.)
fn quiet(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    let mut buf = ReadBuf::new(&mut byte);
    let mut cx = Context::from_waker(Waker::noop());
    matches!(Pin::new(stream).poll_read(&mut cx, &mut buf), Poll::Pending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (Stream, tokio::net::TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        (Box::new(pingora::protocols::l4::stream::Stream::from(a)), b)
    }

    /// Let the runtime poll its reactor, so the socket's readiness (the
    /// close or the byte, already in the kernel on loopback) is known.
    async fn reactor_turn() {
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_connection_comes_back_on_its_thread_while_quiet_and_young() {
        let (s, _far) = pair().await;
        put(7, s, Duration::from_secs(60));
        assert!(take(8, Duration::from_secs(60)).is_none(), "another peer's");
        assert!(take(7, Duration::from_secs(60)).is_some());
        assert!(take(7, Duration::from_secs(60)).is_none(), "taken once");
    }

    #[tokio::test]
    async fn closed_noisy_and_old_connections_are_dropped() {
        let (s, far) = pair().await;
        put(1, s, Duration::from_secs(60));
        drop(far);
        reactor_turn().await;
        assert!(take(1, Duration::from_secs(60)).is_none(), "closed");

        let (s, mut far) = pair().await;
        put(2, s, Duration::from_secs(60));
        far.write_all(b"x").await.unwrap();
        reactor_turn().await;
        assert!(take(2, Duration::from_secs(60)).is_none(), "stray bytes");

        let (s, _far) = pair().await;
        put(3, s, Duration::from_secs(60));
        assert!(take(3, Duration::ZERO).is_none(), "idle too long");
    }

    #[tokio::test]
    async fn at_most_per_thread_idle_connections_are_kept() {
        let mut far = Vec::new();
        for k in 0..=PER_THREAD as u64 {
            let (s, f) = pair().await;
            far.push(f);
            put(100 + k, s, Duration::from_secs(60));
        }
        assert!(
            take(100, Duration::from_secs(60)).is_none(),
            "the oldest went"
        );
        assert!(take(100 + PER_THREAD as u64, Duration::from_secs(60)).is_some());
    }
}
