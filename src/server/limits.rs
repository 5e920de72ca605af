//! What one client connection may cost, enforced around pingora's HTTP/1
//! sessions.
//!
//! pingora 0.9 reads a request head with a fresh timeout for every read
//! (its 60 s keep-alive), so a client that sends a byte now and then holds a
//! connection, a task and a head buffer for as long as it likes; it accepts
//! heads up to 1 MiB; and it takes every connection it is offered. It has no
//! hook before it reads a head, so the gateway's listeners run this
//! `ServerApp` in front of pingora's own. For each accepted connection:
//!
//! 1. it takes one of its listener's `max_connections` permits, or is
//!    answered 503 SlowDown and closed at once;
//! 2. the gateway reads each request head itself, under one deadline for the
//!    whole head (`request_head_timeout`) and a size limit
//!    (`max_header_bytes`); between requests a kept-alive connection waits
//!    at most `idle_timeout` for the next one, holding no buffer meanwhile;
//! 3. the complete head goes to pingora as the session's already-read bytes
//!    (`set_pipelined_prefix`): pingora parses it without reading the socket
//!    again, and everything after the head (the proxy phases, the body, the
//!    keep-alive decision) is pingora's as before.
//!
//! HTTP/2 connections (ALPN `h2`) keep pingora's handling; the gateway's TLS
//! listeners offer HTTP/1.1 only.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::BytesMut;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::config::Limits;

/// First allocation for a request head; it grows up to the head limit.
const HEAD_BUFFER: usize = 4096;
/// How long a refusal may take to write before the connection is dropped.
const REFUSAL_WRITE_TIME: Duration = Duration::from_secs(1);
/// After refusing a head, how much of the rest to read (and discard) so the
/// client sees the answer instead of a reset.
const REFUSAL_DRAIN_BYTES: usize = 256 * 1024;
/// At most one "connection limit reached" warning per listener this often.
const WARN_EVERY_SECS: u64 = 10;

/// The listeners' connection permits: one pool per listen address.
struct Listener {
    address: SocketAddr,
    permits: Arc<Semaphore>,
    last_warning: AtomicU64,
}

/// pingora's HTTP application `A` behind the connection limits.
pub struct Limited<A> {
    app: Arc<A>,
    limits: Limits,
    listeners: Vec<Listener>,
}

impl<A> Limited<A> {
    /// `addresses`: the listen addresses of the service, each with its own
    /// `max_connections`.
    pub fn new(app: A, limits: Limits, addresses: &[SocketAddr]) -> Self {
        let listeners = addresses
            .iter()
            .map(|&address| Listener {
                address,
                permits: Arc::new(Semaphore::new(limits.max_connections)),
                last_warning: AtomicU64::new(0),
            })
            .collect();
        Limited {
            app: Arc::new(app),
            limits,
            listeners,
        }
    }

    /// The listener a connection came in on, by its local address: the
    /// exact address, else a wildcard listener on the same port, else the
    /// first (a listener on port 0 cannot be told apart).
    fn listener(&self, stream: &Stream) -> Option<&Listener> {
        let local = stream
            .get_socket_digest()
            .and_then(|d| d.local_addr().and_then(|a| a.as_inet()).copied());
        let by = |f: &dyn Fn(&SocketAddr) -> bool| self.listeners.iter().find(|l| f(&l.address));
        local
            .and_then(|local| {
                by(&|a| *a == local)
                    .or_else(|| by(&|a| a.port() == local.port() && a.ip().is_unspecified()))
            })
            .or_else(|| self.listeners.first())
    }
}

impl Listener {
    fn warn_full(&self, max: usize) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.last_warning.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= WARN_EVERY_SECS
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                listener = %self.address,
                max_connections = max,
                "connection limit reached: refusing new connections (limits.max_connections)"
            );
        }
    }
}

#[async_trait]
impl<A> ServerApp for Limited<A>
where
    A: HttpServerApp + Send + Sync + 'static,
{
    async fn process_new(
        self: &Arc<Self>,
        mut stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // Held until this connection is closed.
        let _permit = match self.listener(&stream) {
            Some(l) => match l.permits.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    l.warn_full(self.limits.max_connections);
                    // Boxed, like every rarely taken branch here: the state
                    // of this future is allocated for every connection.
                    Box::pin(refuse(stream, Refusal::Busy)).await;
                    return None;
                }
            },
            None => None,
        };
        if matches!(stream.selected_alpn_proto(), Some(p) if p != ALPN::H1) {
            return ServerApp::process_new(&self.app, stream, shutdown).await;
        }
        let keepalive_secs = self.limits.idle_timeout.as_secs().max(1);
        let mut carried: Option<HttpPersistentSettings> = None;
        let mut first = true;
        loop {
            let head = match read_head(&mut stream, &self.limits, first, shutdown).await {
                Ok(head) => head,
                Err(Some(refusal)) => {
                    Box::pin(refuse(stream, refusal)).await;
                    return None;
                }
                Err(None) => return None,
            };
            let mut session = ServerSession::new_http1(stream);
            match carried.take() {
                Some(settings) => settings.apply_to_session(&mut session),
                None => session.set_keepalive_reuses_remaining(
                    self.app
                        .server_options()
                        .and_then(|o| o.keepalive_request_limit),
                ),
            }
            // pingora's own keep-alive wait is never reached (the next head
            // is read here), but it also decides whether to keep the
            // connection; stop reuse once the service is shutting down.
            session.set_keepalive((!*shutdown.borrow()).then_some(keepalive_secs));
            session.set_pipelined_prefix(head);
            let reused = self.app.process_new_http(session, shutdown).await?;
            let (next, settings) = reused.consume();
            stream = next;
            carried = settings;
            first = false;
        }
    }

    async fn cleanup(&self) {
        self.app.http_cleanup().await;
    }
}

/// Why a connection is answered and closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The listener is at `max_connections`.
    Busy,
    /// The head is longer than `max_header_bytes`.
    TooLarge,
    /// The head did not arrive within `request_head_timeout`.
    Timeout,
}

/// Read one request head: `Ok` with the bytes read (the whole head, perhaps
/// the start of the body); `Err(None)` to close quietly (the client left,
/// stayed idle too long, or the service is shutting down); `Err(Some(_))` to
/// answer and close.
async fn read_head(
    stream: &mut Stream,
    limits: &Limits,
    first: bool,
    shutdown: &ShutdownWatch,
) -> Result<BytesMut, Option<Refusal>> {
    let started = Instant::now();
    // Wait for the first byte without a head buffer: an idle connection
    // costs its socket and this task, nothing more.
    let mut byte = [0u8; 1];
    let n = if first {
        match tokio::time::timeout(limits.request_head_timeout, stream.read(&mut byte)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) | Err(_) => return Err(None),
        }
    } else {
        let mut shutdown = shutdown.clone();
        tokio::select! {
            r = tokio::time::timeout(limits.idle_timeout, stream.read(&mut byte)) => match r {
                Ok(Ok(n)) => n,
                Ok(Err(_)) | Err(_) => return Err(None),
            },
            _ = shutting_down(&mut shutdown) => return Err(None),
        }
    };
    if n == 0 {
        return Err(None);
    }
    // A new connection's head is due `request_head_timeout` after it was
    // accepted; a kept-alive one's after its first byte.
    let deadline = if first { started } else { Instant::now() } + limits.request_head_timeout;
    let mut buf = BytesMut::with_capacity(HEAD_BUFFER.min(limits.max_header_bytes + 1));
    buf.extend_from_slice(&byte);
    let mut scan = HeadScan::default();
    loop {
        if let Some(end) = scan.end(&buf) {
            return if end > limits.max_header_bytes {
                Err(Some(Refusal::TooLarge))
            } else {
                Ok(buf)
            };
        }
        if buf.len() > limits.max_header_bytes {
            return Err(Some(Refusal::TooLarge));
        }
        if buf.capacity() == buf.len() {
            buf.reserve(HEAD_BUFFER.min(limits.max_header_bytes + 1 - buf.len()));
        }
        let read = tokio::time::timeout_at(deadline.into(), stream.read_buf(&mut buf));
        match read.await {
            Ok(Ok(0)) | Ok(Err(_)) => return Err(None),
            Ok(Ok(_)) => {}
            Err(_) => return Err(Some(Refusal::Timeout)),
        }
    }
}

/// Resolves once the service is shutting down (or its watch is gone).
async fn shutting_down(watch: &mut ShutdownWatch) {
    loop {
        if *watch.borrow_and_update() {
            return;
        }
        if watch.changed().await.is_err() {
            return;
        }
    }
}

/// Finds the end of a request head (just past its empty line) as bytes
/// arrive, looking at each byte a bounded number of times however the head
/// is split. Empty lines before the request line are skipped, as HTTP
/// parsers do (RFC 9112 §2.2); the empty line that ends the head is LF LF
/// or LF CR LF, which covers CRLF and bare-LF line endings alike.
#[derive(Debug, Default)]
struct HeadScan {
    /// Where to look next.
    next: usize,
    /// Whether the request line has begun.
    started: bool,
}

impl HeadScan {
    fn end(&mut self, buf: &[u8]) -> Option<usize> {
        let rest = buf.get(self.next..)?;
        if !self.started {
            match rest.iter().position(|&b| b != b'\r' && b != b'\n') {
                Some(p) => {
                    self.started = true;
                    self.next += p;
                }
                None => {
                    self.next = buf.len();
                    return None;
                }
            }
        }
        let mut i = self.next;
        while let Some(p) = buf
            .get(i..)
            .and_then(|r| r.iter().position(|&b| b == b'\n'))
        {
            let lf = i + p;
            match (buf.get(lf + 1), buf.get(lf + 2)) {
                (Some(b'\n'), _) => return Some(lf + 2),
                (Some(b'\r'), Some(b'\n')) => return Some(lf + 3),
                (None, _) | (Some(b'\r'), None) => {
                    // Not decided until more arrives.
                    self.next = lf;
                    return None;
                }
                _ => i = lf + 1,
            }
        }
        self.next = buf.len();
        None
    }
}

/// Answer with an S3 error and close. Best effort, within a bounded time:
/// a client that does not read its answer does not hold the connection.
async fn refuse(mut stream: Stream, why: Refusal) {
    use crate::s3::{err, S3ErrorCode};
    let e = match why {
        Refusal::Busy => err(
            S3ErrorCode::SlowDown,
            "Please reduce your request rate: the gateway is at its connection limit.",
        ),
        Refusal::TooLarge => err(
            S3ErrorCode::RequestHeaderSectionTooLarge,
            "Your request header section exceeds the maximum allowed size.",
        ),
        Refusal::Timeout => err(
            S3ErrorCode::RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period.",
        ),
    };
    let code = e.code.as_str();
    tracing::debug!(code, "connection refused before its request");
    let id = crate::util::request_id();
    let body = e.to_xml(&id);
    let status = e.status();
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nx-amz-request-id: {id}\r\nx-s3gate-request-id: {id}\r\nserver: s3gate\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.flush().await?;
        AsyncWriteExt::shutdown(&mut stream).await
    };
    if !matches!(
        tokio::time::timeout(REFUSAL_WRITE_TIME, write).await,
        Ok(Ok(()))
    ) {
        return;
    }
    if why == Refusal::Busy {
        return;
    }
    // The client may still be sending its head: read a little of it so the
    // close does not reset the connection before the answer is read.
    let drain = async {
        let mut sink = [0u8; 2048];
        let mut total = 0usize;
        while total < REFUSAL_DRAIN_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIME, drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end_of(pieces: &[&[u8]]) -> Option<usize> {
        let mut scan = HeadScan::default();
        let mut buf = Vec::new();
        for p in pieces {
            buf.extend_from_slice(p);
            if let Some(e) = scan.end(&buf) {
                return Some(e);
            }
        }
        None
    }

    #[test]
    fn finds_the_end_of_a_head_however_it_is_split() {
        let head = b"GET /b/k HTTP/1.1\r\nHost: x\r\n\r\nBODY";
        let whole = head.len() - 4;
        assert_eq!(end_of(&[head]), Some(whole));
        let bytes: Vec<&[u8]> = head.chunks(1).collect();
        assert_eq!(end_of(&bytes), Some(whole));
        for split in 1..head.len() {
            assert_eq!(
                end_of(&[&head[..split], &head[split..]]),
                Some(whole),
                "{split}"
            );
        }
        // Bare LF line endings, and a mix.
        assert_eq!(end_of(&[b"GET / HTTP/1.1\nHost: x\n\n"]), Some(24));
        assert_eq!(end_of(&[b"GET / HTTP/1.1\r\nHost: x\n\r\n"]), Some(26));
    }

    #[test]
    fn any_split_of_any_bytes_finds_the_same_end() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..3000 {
            let len = rng.gen_range(0..60);
            let bytes: Vec<u8> = (0..len)
                .map(|_| [b'\r', b'\n', b'a', b':'][rng.gen_range(0..4)])
                .collect();
            let whole = end_of(&[&bytes]);
            let mut pieces = Vec::new();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = rng.gen_range(1..=rest.len());
                pieces.push(&rest[..n]);
                rest = &rest[n..];
            }
            assert_eq!(end_of(&pieces), whole, "{bytes:?}");
        }
    }

    #[test]
    fn unfinished_heads_and_leading_empty_lines() {
        assert_eq!(
            end_of(&[b"GET /sdk/x HTTP/1.1\r\nHost: localhost\r\nX-Pad: aaaa"]),
            None
        );
        assert_eq!(end_of(&[b"GET / HTTP/1.1\r\nHost: x\r\n\r"]), None);
        // Empty lines before the request line do not end the head.
        assert_eq!(end_of(&[b"\r\n\r\n\n", b"GET / HTTP/1.1\r\n"]), None);
        assert_eq!(end_of(&[b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"]), Some(22));
    }
}
