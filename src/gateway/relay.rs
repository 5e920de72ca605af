//! GetObject relayed by the gateway itself when both legs are plain TCP
//! (`zero_copy: true`, the default). pingora's proxy moves every body byte
//! through user space twice (a read into its buffer, a copy into a task, a
//! write), all on the one thread that owns the connection, so a large GET
//! was bound to half of what the kernel can do. Here the upstream request
//! is rendered and signed as for any forwarded request, the answer's header
//! goes through the gateway's own response filters, and then:
//!
//! - a 200/206 answer with a `Content-Length` of at least [`SPLICE_MIN`]
//!   moves from the upstream socket to the client's with splice(2), through
//!   a pipe, never entering user space; the client is told `Connection:
//!   close`, since pingora cannot count bytes it did not write;
//! - anything else (small objects, errors, 304, chunked answers) is relayed
//!   piece by piece through the same body filter as a proxied answer.
//!
//! Whatever breaks after the header was sent ends the client's connection
//! without completing the body: a short answer never looks whole.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::fcntl::{splice, SpliceFFlags};
use pingora::proxy::{ProxyHttp, Session};
use pingora::Result;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::{fail, Gateway};
use crate::context::RequestCtx;
use crate::s3::{err, Operation, S3Error, S3ErrorCode};
use crate::upstream_client::OpenError;

/// Bodies at least this long are spliced; shorter ones are relayed.
pub const SPLICE_MIN: u64 = 1 << 20;
/// The pipe between the two sockets (the kernel may give less).
const PIPE_BYTES: usize = 1 << 20;

/// Whether this request takes the relay: a GetObject without a body, on a
/// plain-TCP HTTP/1 client connection, to a plain-HTTP upstream.
pub fn eligible(gw: &Gateway, session: &Session, ctx: &RequestCtx) -> bool {
    if !gw.state.config.zero_copy || !matches!(ctx.operation, Some(Operation::GetObject { .. })) {
        return false;
    }
    let req = session.req_header();
    let bodiless = req.headers.get("transfer-encoding").is_none()
        && req
            .headers
            .get("content-length")
            .is_none_or(|v| v.as_bytes() == b"0");
    let plain_client = session.downstream_session.stream().is_some()
        && session
            .downstream_session
            .digest()
            .is_none_or(|d| d.ssl_digest.is_none());
    let plain_upstream = ctx
        .plan
        .route
        .as_ref()
        .is_some_and(|r| !r.upstream.endpoint.tls);
    req.method == http::Method::GET
        && bodiless
        && plain_client
        && plain_upstream
        && plain_hop(&req.headers)
}

/// Headers that would change the connection rather than the request
/// (`Expect`, `Upgrade`, `TE`, `Connection` naming other headers): such
/// requests take pingora's path, which knows what to do with them.
fn plain_hop(headers: &http::HeaderMap) -> bool {
    let unusual = ["expect", "upgrade", "te", "http2-settings", "trailer"];
    let connection_ok = headers.get_all("connection").iter().all(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').all(|t| {
                let t = t.trim();
                t.is_empty()
                    || t.eq_ignore_ascii_case("close")
                    || t.eq_ignore_ascii_case("keep-alive")
            })
        })
    });
    connection_ok && unusual.iter().all(|h| !headers.contains_key(*h))
}

/// The client's request as the upstream gets it before re-addressing:
/// HTTP/1.1, without the hop-by-hop headers pingora's proxy removes.
fn upstream_copy(req: &pingora::http::RequestHeader) -> pingora::http::RequestHeader {
    let mut out = req.clone();
    out.set_version(http::Version::HTTP_11);
    for h in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
    ] {
        out.remove_header(h);
    }
    out
}

/// Relay the decided GetObject. `Ok(())`: answered (the client's
/// connection may be reused unless the body was spliced). `Err`: nothing
/// was answered (pingora writes the S3 error) or the answer broke off
/// (pingora drops the connection).
pub async fn relay(gw: &Gateway, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
    let Some(route) = ctx.plan.route.clone() else {
        return Err(fail(ctx, err(S3ErrorCode::InternalError, "no route")));
    };
    let credentials = match route.upstream.credentials.get().await {
        Ok(c) => c,
        Err(e) => return Err(fail(ctx, e)),
    };
    ctx.plan.upstream_key_id = Some(credentials.access_key_id.clone());
    let mut req = upstream_copy(session.req_header());
    if let Err(e) = crate::forward::rewrite(&mut req, ctx, &credentials) {
        return Err(fail(ctx, e));
    }
    ctx.outcome.upstream_started = Some(Instant::now());
    let client = gw.state.client.clone();
    let mut reply = match client
        .open(&route.upstream, route.target.as_deref(), req)
        .await
    {
        Ok(r) => r,
        Err(OpenError::S3(e)) => return Err(fail(ctx, e)),
        Err(OpenError::Proxy(e)) => {
            let name = &route.upstream.name;
            let s3 = crate::respond::from_proxy_error(&e, name)
                .unwrap_or_else(|| bad_gateway(name, "no answer"));
            return Err(fail(ctx, s3));
        }
    };
    let Some(mut resp) = reply.session.response_header().cloned() else {
        return Err(fail(ctx, bad_gateway(&route.upstream.name, "no answer")));
    };
    gw.response_filter(session, &mut resp, ctx).await?;
    let length = resp
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let spliced = match length {
        Some(n) if n >= SPLICE_MIN => {
            ctx.outcome.error_body.is_none()
                && matches!(resp.status.as_u16(), 200 | 206)
                && resp.headers.get("transfer-encoding").is_none()
        }
        _ => false,
    };
    // Everything the splice needs is set up before anything is written:
    // if it cannot be, the answer takes the copying path instead.
    let splicer = if spliced {
        match Splicer::new(session, &reply) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(request_id = %ctx.request_id, error = %e.message, "cannot splice; copying instead");
                None
            }
        }
    } else {
        None
    };
    if let Some(splicer) = splicer {
        // pingora writes nothing of this answer (it could not count the
        // spliced bytes): the header, what it already read of the body and
        // the rest go straight to the socket, and the connection closes.
        session.set_keepalive(None);
        let total = length.unwrap_or(0);
        let head = render_head(&resp);
        let first = match reply.session.read_response_body().await {
            Ok(first) => first,
            // Nothing written yet: the client gets the S3 error.
            Err(e) => return Err(e.into_up()),
        };
        let read_timeout = gw.state.config.timeouts.read;
        if let Err(e) = splicer.run(head, first, total, read_timeout, ctx).await {
            // The client's connection ends without the rest of the body
            // (short of its Content-Length); the log line says why.
            tracing::warn!(request_id = %ctx.request_id, error = %e.message, "spliced body broke off");
            ctx.outcome.error_code = Some(e.code);
            ctx.outcome.error = Some(e);
        }
        // The upstream connection's body reader never saw these bytes:
        // it is not returned to the pool.
        return Ok(());
    }
    session
        .write_response_header(Box::new(resp), false)
        .await
        .map_err(|e| e.into_down())?;
    loop {
        let mut piece = reply
            .session
            .read_response_body()
            .await
            .map_err(|e| e.into_up())?;
        let end = piece.is_none() || reply.session.response_done();
        gw.response_body_filter(session, &mut piece, end, ctx)?;
        if piece.is_some() || end {
            session
                .write_response_body(piece, end)
                .await
                .map_err(|e| e.into_down())?;
        }
        if end {
            break;
        }
    }
    client.release(reply).await;
    Ok(())
}

fn bad_gateway(upstream: &str, what: &str) -> S3Error {
    err(
        S3ErrorCode::BadGateway,
        format!("The upstream {upstream} failed ({what})"),
    )
}

/// The two sockets (our own descriptors, watched by the runtime beside
/// pingora's, which nobody polls meanwhile) and the pipe between them.
struct Splicer {
    from: AsyncFd<OwnedFd>,
    to: AsyncFd<OwnedFd>,
    pipe_out: OwnedFd,
    pipe_in: OwnedFd,
    /// What the pipe holds (the kernel may give less than asked).
    capacity: usize,
}

impl Splicer {
    fn new(
        session: &Session,
        reply: &crate::upstream_client::ReadingReply,
    ) -> Result<Self, S3Error> {
        let broke = |what: &str, e: &dyn std::fmt::Display| {
            err(
                S3ErrorCode::InternalError,
                format!("cannot splice ({what}: {e})"),
            )
        };
        let client_fd = session
            .downstream_session
            .stream()
            .map(|s| s.id())
            .ok_or_else(|| broke("client", &"not a plain connection"))?;
        let upstream_fd = match &reply.session {
            pingora::protocols::http::client::HttpSession::H1(h) => h.stream().id(),
            _ => return Err(broke("upstream", &"not HTTP/1")),
        };
        // SAFETY (both): an `OwnedFd` stays open, and names the same
        // socket, for as long as the `AsyncFd` that owns it.
        let from =
            unsafe { AsyncFd::register_with_interest(duplicate(upstream_fd)?, Interest::READABLE) }
                .map_err(|e| broke("upstream", &e))?;
        let to =
            unsafe { AsyncFd::register_with_interest(duplicate(client_fd)?, Interest::WRITABLE) }
                .map_err(|e| broke("client", &e))?;
        let (pipe_out, pipe_in) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .map_err(|e| broke("pipe", &e))?;
        // A bigger pipe means fewer calls; the default still works.
        let _ = nix::fcntl::fcntl(
            &pipe_in,
            nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_BYTES as i32),
        );
        let capacity = nix::fcntl::fcntl(&pipe_in, nix::fcntl::FcntlArg::F_GETPIPE_SZ)
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(1 << 16);
        Ok(Splicer {
            from,
            to,
            pipe_out,
            pipe_in,
            capacity,
        })
    }

    /// Write the header and the body's first piece to the client's socket,
    /// then move the rest of the `total` body bytes from the upstream's.
    async fn run(
        self,
        head: Vec<u8>,
        first: Option<bytes::Bytes>,
        total: u64,
        read_timeout: Duration,
        ctx: &mut RequestCtx,
    ) -> Result<(), S3Error> {
        let broke = |what: &str, e: &dyn std::fmt::Display| {
            err(
                S3ErrorCode::BadGateway,
                format!("The object's body broke off ({what}: {e})"),
            )
        };
        let Splicer {
            from,
            to,
            pipe_out,
            pipe_in,
            capacity,
        } = self;
        write_all(&to, &head, read_timeout)
            .await
            .map_err(|e| broke("client", &e))?;
        let first = first.unwrap_or_default();
        let first_len = (first.len() as u64).min(total);
        write_all(&to, &first[..first_len as usize], read_timeout)
            .await
            .map_err(|e| broke("client", &e))?;
        ctx.outcome.bytes_out += first_len;
        let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
        // Bytes still to come from the upstream, and bytes in the pipe. Both
        // directions move whenever they can, so the upstream keeps sending
        // while the client is slow and the other way round.
        let (mut unread, mut in_pipe) = (total - first_len, 0usize);
        while unread > 0 || in_pipe > 0 {
            let mut can_read = false;
            if unread > 0 {
                let want = unread.min(capacity as u64) as usize;
                match splice(from.get_ref(), None, &pipe_in, None, want, flags) {
                    Ok(0) => return Err(broke("upstream", &"closed early")),
                    Ok(n) => {
                        unread -= n as u64;
                        in_pipe += n;
                    }
                    // Nothing to read yet, or the pipe is full.
                    Err(nix::errno::Errno::EAGAIN) => can_read = in_pipe == 0,
                    Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(broke("upstream", &e)),
                }
            }
            let mut can_write = false;
            if in_pipe > 0 {
                let more = if unread > 0 {
                    SpliceFFlags::SPLICE_F_MORE
                } else {
                    SpliceFFlags::empty()
                };
                match splice(&pipe_out, None, to.get_ref(), None, in_pipe, flags | more) {
                    Ok(0) => return Err(broke("client", &"closed")),
                    Ok(n) => {
                        in_pipe -= n;
                        ctx.outcome.bytes_out += n as u64;
                        continue;
                    }
                    Err(nix::errno::Errno::EAGAIN) => can_write = true,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(broke("client", &e)),
                }
            }
            // Neither side could move: wait for whichever can next. (A full
            // pipe with a blocked client waits on the client alone.)
            let waited = tokio::time::timeout(read_timeout, async {
                match (can_read || (unread > 0 && in_pipe < capacity), can_write) {
                    (true, true) => tokio::select! {
                        r = from.readable() => r.map(|mut g| g.clear_ready()),
                        w = to.writable() => w.map(|mut g| g.clear_ready()),
                    },
                    (true, false) => from.readable().await.map(|mut g| g.clear_ready()),
                    (false, true) => to.writable().await.map(|mut g| g.clear_ready()),
                    (false, false) => Ok(()),
                }
            })
            .await;
            match waited {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(broke("socket", &e)),
                Err(_) => return Err(broke("relay", &"timed out")),
            }
        }
        Ok(())
    }
}

/// The answer's header as HTTP/1.1, announcing the connection's end.
fn render_head(resp: &pingora::http::ResponseHeader) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(resp.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(resp.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in resp.headers.iter() {
        if matches!(
            name.as_str(),
            "connection" | "keep-alive" | "transfer-encoding"
        ) {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out
}

/// Write all of `data` to a non-blocking socket.
async fn write_all(
    to: &AsyncFd<OwnedFd>,
    mut data: &[u8],
    timeout: Duration,
) -> std::io::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(to.get_ref(), data) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EAGAIN) => {
                let mut ready = tokio::time::timeout(timeout, to.writable())
                    .await
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
                ready.clear_ready();
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A descriptor of our own for a socket pingora owns.
fn duplicate(fd: RawFd) -> Result<OwnedFd, S3Error> {
    // SAFETY: `fd` is the socket of a stream that pingora's session owns
    // and keeps open for the whole call (the session is borrowed by the
    // caller); the borrow ends before this function returns, and what it
    // returns is a new descriptor (dup) closed when dropped.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    nix::unistd::dup(borrowed.as_fd()).map_err(|e| {
        err(
            S3ErrorCode::InternalError,
            format!("could not duplicate a socket ({e})"),
        )
    })
}
