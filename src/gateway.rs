//! The gateway as a pingora proxy. Each phase is a few lines calling one
//! stage of the pipeline; the order is pingora's (docs/pingora-notes.md):
//!
//! request_filter        → admit: operation, authentication, decision, route, body setup
//! upstream_peer         → where the route's upstream is
//! upstream_request_filter → forward::rewrite: re-address, strip, re-sign (every attempt)
//! request_body_filter   → stream the body through its verifier
//! response phases       → relay faithfully, add our request id
//! fail_to_proxy         → S3 error XML
//! logging               → one line per request

mod handlers;
mod relay;

use crate::audit::record::{EventKind, Outcome};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};

use crate::admit::{admit, Admission};
use crate::context::RequestCtx;
use crate::s3::{err, S3Error, S3ErrorCode};
use crate::state::GatewayState;
use crate::{forward, respond};

/// Write an optional event record (when the config enables its kind).
async fn audit_event(
    state: &GatewayState,
    session: &Session,
    ctx: &RequestCtx,
    kind: EventKind,
    outcome: Outcome,
    upload_id: Option<String>,
) {
    let Some(audit) = &state.audit else { return };
    if !audit.wants(kind) {
        return;
    }
    let mut event = handlers::event(state, session, ctx, kind, outcome);
    if upload_id.is_some() {
        event.upload_id = upload_id;
    }
    if let Err(e) = audit.write(event).await {
        tracing::error!(request_id = %ctx.request_id, "audit record not written: {e}");
    }
}

/// Aborts refused before the flow (denied, failed authentication with a
/// known key, …) are audited too; so is every denial when `Denied` is on.
async fn audit_refusal(state: &GatewayState, session: &Session, ctx: &RequestCtx) {
    let is_abort = matches!(
        ctx.operation,
        Some(crate::s3::Operation::AbortMultipartUpload { .. })
    );
    let authenticated = ctx.identity.principal.is_some();
    let known_key = ctx.identity.access_key_id.is_some();
    let denied = ctx.outcome.error_code == Some(S3ErrorCode::AccessDenied);
    if is_abort && (authenticated || known_key) {
        let outcome = match (authenticated, ctx.outcome.error_code) {
            (false, _) => Outcome::AuthFailed,
            (true, Some(S3ErrorCode::AccessDenied)) => Outcome::Denied,
            (true, Some(S3ErrorCode::NoSuchUpload)) => Outcome::NoSuchUpload,
            (true, _) => Outcome::UpstreamError,
        };
        crate::metrics::get().aborts.inc(&[outcome.as_str()]);
        if let Some(audit) = &state.audit {
            let event = handlers::event(
                state,
                session,
                ctx,
                EventKind::AbortMultipartUpload,
                outcome,
            );
            if let Err(e) = audit.write(event).await {
                tracing::error!(request_id = %ctx.request_id, "abort audit record not written: {e}");
            }
        }
    } else if denied {
        audit_event(
            state,
            session,
            ctx,
            EventKind::Denied,
            Outcome::Denied,
            None,
        )
        .await;
    }
}

/// Whether `<Error>` appears in the response so far; `tail` keeps the last
/// bytes of the previous piece so a split tag is still seen.
fn scan_for_error(tail: &mut Vec<u8>, piece: &[u8]) -> bool {
    const TAG: &[u8] = b"<Error>";
    let mut joined = std::mem::take(tail);
    joined.extend_from_slice(&piece[..piece.len().min(TAG.len() * 2)]);
    let found =
        joined.windows(TAG.len()).any(|w| w == TAG) || piece.windows(TAG.len()).any(|w| w == TAG);
    let keep = piece.len().min(TAG.len() - 1);
    *tail = piece[piece.len() - keep..].to_vec();
    found
}

pub struct Gateway {
    pub state: Arc<GatewayState>,
}

fn fail(ctx: &mut RequestCtx, e: S3Error) -> Box<Error> {
    let status = e.status();
    ctx.outcome.error = Some(e);
    Error::explain(ErrorType::HTTPStatus(status), "s3gate refused the request")
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    /// Runs when a request starts: its context, empty (every stage fills
    /// its own part; the body plan starts as `Empty`, which refuses bytes).
    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new()
    }

    /// Runs once the request header is read: admission (parse,
    /// authenticate, route, decide, body plan). `Ok(false)`: go upstream;
    /// `Ok(true)`: the gateway answered (an S3 error, or an operation it
    /// runs itself: Create, Abort, DeleteObjects, GetBucketLocation).
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let state = &self.state;
        ctx.in_flight = Some(crate::context::InFlightGuard::new());
        let result: Result<(), S3Error> = match admit(state, session, ctx).await {
            Ok(Admission::Forward) if relay::eligible(self, session, ctx) => {
                return relay::relay(self, session, ctx).await.map(|()| true);
            }
            Ok(Admission::Forward) => return Ok(false),
            Ok(Admission::Answer(xml)) => {
                respond::xml(session, ctx, xml).await;
                return Ok(true);
            }
            Ok(Admission::Relay(reply)) => {
                respond::relay(session, ctx, &reply, &state.config.region).await;
                return Ok(true);
            }
            Ok(Admission::Create) => match handlers::create(state, session, ctx).await {
                Ok(reply) => {
                    respond::relay(session, ctx, &reply, &state.config.region).await;
                    if reply.status == 200 {
                        let upload_id = crate::s3::xml::first_text(&reply.body, "UploadId");
                        audit_event(
                            state,
                            session,
                            ctx,
                            EventKind::CreateMultipartUpload,
                            Outcome::Created,
                            upload_id,
                        )
                        .await;
                    }
                    return Ok(true);
                }
                Err(e) => Err(e),
            },
            Ok(Admission::Abort) => match handlers::abort(state, session, ctx).await {
                Ok((reply, event)) => {
                    crate::metrics::get().aborts.inc(&[event.outcome.as_str()]);
                    // The record is on disk before the client hears the answer.
                    if let Some(audit) = &state.audit {
                        if let Err(e) = audit.write(event).await {
                            if audit.reject_on_failure {
                                tracing::error!(request_id = %ctx.request_id, "abort audit record not written, abort not acknowledged: {e}");
                            } else {
                                tracing::error!(request_id = %ctx.request_id, "abort audit record not written (on_failure: continue, abort acknowledged): {e}");
                            }
                            // With on_failure: reject, an abort without its
                            // record is never acknowledged (the probe before
                            // it passed, then the write failed).
                            if audit.reject_on_failure {
                                respond::error(session, ctx, &unaudited_abort(reply.status)).await;
                                return Ok(true);
                            }
                        }
                    }
                    respond::relay(session, ctx, &reply, &state.config.region).await;
                    return Ok(true);
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            respond::error(session, ctx, &e).await;
            audit_refusal(state, session, ctx).await;
        }
        Ok(true)
    }

    /// Runs before each connect: where the route's upstream listens
    /// (`connect_to` overrides DNS), with its TLS and timeouts. `Err`: the
    /// upstream cannot be reached (502).
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let Some(route) = &ctx.plan.route else {
            return Err(fail(ctx, err(S3ErrorCode::InternalError, "no route")));
        };
        let bucket = route.target.as_deref();
        ctx.outcome.upstream_started = Some(std::time::Instant::now());
        match crate::route::peer(&route.upstream, bucket, &self.state.config.timeouts).await {
            Ok(peer) => Ok(Box::new(peer)),
            Err(e) => Err(fail(ctx, e)),
        }
    }

    /// Runs after each connect, before the header goes upstream: the
    /// upstream request rendered from the decided operation and re-signed
    /// (on every attempt). `Err`: nothing was sent.
    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(route) = &ctx.plan.route else {
            return Err(fail(ctx, err(S3ErrorCode::InternalError, "no route")));
        };
        let credentials = match route.upstream.credentials.get().await {
            Ok(c) => c,
            Err(e) => return Err(fail(ctx, e)),
        };
        ctx.plan.upstream_key_id = Some(credentials.access_key_id.clone());
        forward::rewrite(upstream_request, ctx, &credentials).map_err(|e| fail(ctx, e))
    }

    /// Runs for each piece of the client's body, after the request header
    /// went upstream. The piece passes through the body plan (verified,
    /// re-framed; the last piece held back until the whole body verified).
    /// `Err`: the body failed verification; pingora abandons the upstream
    /// request, which never sees a complete body.
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        match ctx.plan.body.next(body.take(), end_of_stream) {
            Ok((out, data)) => {
                ctx.outcome.bytes_in += data;
                // Some(empty) writes nothing before the end; at the end,
                // None ends the body without an empty write (which pingora
                // would log as a warning on every request without a body).
                *body = if end_of_stream && out.is_empty() {
                    None
                } else {
                    Some(out)
                };
                Ok(())
            }
            Err(e) => {
                tracing::warn!(request_id = %ctx.request_id, code = e.code.as_str(), "request body failed verification; upstream request abandoned");
                Err(fail(ctx, e))
            }
        }
    }

    /// Runs for each upstream response header (informational ones too):
    /// status and latency recorded, the gateway's region and request id
    /// set, error documents marked for reading whole.
    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // pingora closes a connection whose response header is written
        // before the request body was read — including `100 Continue`,
        // which would cost every Expect: 100-continue client its
        // connection. Only the final header may decide that.
        session
            .downstream_session
            .set_close_on_response_before_downstream_finish(!resp.status.is_informational());
        if !resp.status.is_informational() {
            ctx.outcome.status = resp.status.as_u16();
            if let (Some(t), Some(r)) = (ctx.outcome.upstream_started.take(), &ctx.plan.route) {
                crate::metrics::get()
                    .upstream_latency
                    .observe(&[r.upstream.name.as_str()], t.elapsed());
            }
        }
        // Upstream error documents are read whole (up to a bound) so that
        // their message names no upstream identity and the log line can
        // carry their code; their length changes, so they are re-framed
        // (chunked, or close-delimited for HTTP/1.0 clients).
        if resp.status.as_u16() >= 400 && session.req_header().method != http::Method::HEAD {
            resp.remove_header("content-length");
            if session.req_header().version >= http::Version::HTTP_11 {
                let _ = resp.insert_header("transfer-encoding", "chunked");
            } else {
                session.set_keepalive(None);
            }
            ctx.outcome.error_body = Some(BytesMut::new());
            ctx.outcome.error_body_overflow = false;
        }
        if ctx
            .plan
            .route
            .as_ref()
            .is_some_and(|r| !r.upstream.versioning)
        {
            // A store without versions (`versioning: false`) has no version
            // ids a client could use: one it hands out would only come back
            // as a `versionId` the gateway refuses (rclone reads its
            // uploads back by version).
            resp.remove_header("x-amz-version-id");
        }
        if resp.headers.contains_key("x-amz-bucket-region") {
            // Clients sign for the region they are told: the gateway's.
            let _ = resp.insert_header("x-amz-bucket-region", self.state.config.region.as_str());
        }
        if resp.headers.get("x-amz-request-id").is_none() {
            let _ = resp.insert_header("x-amz-request-id", ctx.request_id.as_str());
        }
        let _ = resp.insert_header("x-s3gate-request-id", ctx.request_id.as_str());
        respond::add_cors(resp, ctx);
        if let Some(post) = ctx.post.as_deref_mut() {
            crate::post::answer::rewrite(post, resp);
        }
        Ok(())
    }

    /// Runs for each piece of the upstream's response body: counted, error
    /// documents redacted, a CompleteMultipartUpload `<Error>` noticed.
    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        eos: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        if let Some(held) = &mut ctx.outcome.error_body {
            use crate::s3::upstream_error::{rewrite, withheld, MAX_ERROR_BODY};
            if let Some(b) = body.take() {
                if held.len() + b.len() <= MAX_ERROR_BODY {
                    held.extend_from_slice(&b);
                } else {
                    // Too long to redact whole: its message is withheld.
                    ctx.outcome.error_body_overflow = true;
                }
            }
            if eos {
                let whole = std::mem::take(held);
                ctx.outcome.error_body = None;
                let (out, code) = rewrite(&whole, ctx.plan.upstream_key_id.as_deref());
                let out = if ctx.outcome.error_body_overflow {
                    withheld(code.as_deref(), &ctx.request_id)
                } else {
                    ctx.localize_error(out, &self.state.config.region)
                };
                if ctx.outcome.error_code.is_none() {
                    ctx.outcome.upstream_error_code = code;
                }
                *body = Some(Bytes::from(out));
            }
        }
        if let Some(post) = ctx.post.as_deref_mut() {
            crate::post::answer::replace_body(post, body, eos);
        }
        if let Some(b) = body {
            ctx.outcome.bytes_out += b.len() as u64;
            // A CompleteMultipartUpload may answer 200 and then an <Error>
            // (S3 keeps the connection alive with whitespace meanwhile),
            // possibly split across two pieces.
            if matches!(
                ctx.operation,
                Some(crate::s3::Operation::CompleteMultipartUpload { .. })
            ) && !ctx.outcome.complete_error
            {
                ctx.outcome.complete_error = scan_for_error(&mut ctx.outcome.complete_tail, b);
            }
        }
        Ok(None)
    }

    /// Runs when proxying failed (a stage's error or pingora's): the S3
    /// error XML, unless a response was already under way.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let upstream = ctx
            .plan
            .route
            .as_ref()
            .map_or("-", |r| r.upstream.name.as_str())
            .to_string();
        let s3 = ctx
            .outcome
            .error
            .take()
            .or_else(|| respond::from_proxy_error(e, &upstream));
        // A `100 Continue` already sent is no answer: the error still is.
        let answered = session
            .response_written()
            .filter(|h| !h.status.is_informational());
        let code = match (&s3, answered) {
            (Some(s3), None) => {
                if s3.status() >= 500 {
                    tracing::warn!(request_id = %ctx.request_id, upstream, error = %e, "proxying failed");
                }
                respond::error(session, ctx, s3).await;
                s3.status()
            }
            (Some(s3), Some(_)) => {
                ctx.outcome.error = Some(s3.clone());
                0
            }
            (None, _) => 0,
        };
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// A connection that could not be made sent nothing: retry it, but only
    /// for idempotent operations (POST — Create/Complete/DeleteObjects — is not).
    fn fail_to_connect(
        &self,
        session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let idempotent = matches!(
            session.req_header().method,
            http::Method::GET | http::Method::HEAD | http::Method::PUT | http::Method::DELETE
        );
        if idempotent && !ctx.outcome.retried {
            ctx.outcome.retried = true;
            e.set_retry(true);
        } else {
            e.set_retry(false);
        }
        e
    }

    /// Whether pingora's own error line is left out: our refusals are
    /// logged by `logging` with their S3 code.
    fn suppress_error_log(&self, _session: &Session, ctx: &RequestCtx, _error: &Error) -> bool {
        // Our own refusals are logged by `logging` with their S3 code.
        ctx.outcome.error.is_some() || ctx.outcome.status > 0
    }

    /// Runs last, whatever happened: the in-flight gauge and part guard
    /// released, metrics, the Complete record forgotten, the access line.
    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        ctx.part_guard = None;
        ctx.in_flight = None;
        let m = crate::metrics::get();
        let status = if ctx.outcome.status == 0 && e.is_some() {
            499
        } else {
            ctx.outcome.status
        };
        m.requests.inc(&[ctx.operation_name(), &status.to_string()]);
        m.bytes_in
            .fetch_add(ctx.outcome.bytes_in, std::sync::atomic::Ordering::Relaxed);
        m.bytes_out
            .fetch_add(ctx.outcome.bytes_out, std::sync::atomic::Ordering::Relaxed);
        if let (Some(crate::s3::Operation::CompleteMultipartUpload { upload_id }), Some(bucket)) =
            (&ctx.operation, &ctx.bucket)
        {
            if ctx.outcome.status == 200 && !ctx.outcome.complete_error && e.is_none() {
                self.state.ownership.forget(bucket, upload_id).await;
                audit_event(
                    &self.state,
                    session,
                    ctx,
                    EventKind::CompleteMultipartUpload,
                    Outcome::Completed,
                    None,
                )
                .await;
            }
        }
        crate::logging::access(ctx, e);
    }
}

/// The answer to an abort whose audit record could not be written
/// (`on_failure: reject`): 503, not the upstream's answer.
fn unaudited_abort(upstream_status: u16) -> crate::s3::S3Error {
    let done = if upstream_status < 300 {
        "The upload was aborted upstream, but the abort could not be audited, so it is not acknowledged; a retry answers NoSuchUpload once the audit log is writable."
    } else {
        "The abort could not be audited; it is not acknowledged. Please retry."
    };
    err(S3ErrorCode::ServiceUnavailable, done)
}

#[cfg(test)]
mod tests {
    use super::{scan_for_error, unaudited_abort};

    #[test]
    fn an_unaudited_abort_is_not_acknowledged() {
        for upstream in [204, 404, 500] {
            let e = unaudited_abort(upstream);
            assert_eq!(e.status(), 503);
            assert!(e.message.contains("not acknowledged"), "{}", e.message);
        }
    }

    #[test]
    fn finds_an_error_split_across_pieces() {
        let mut tail = Vec::new();
        assert!(!scan_for_error(&mut tail, b"<?xml?>\n   <Er"));
        assert!(scan_for_error(&mut tail, b"ror><Code>InternalError</Code>"));
        let mut tail = Vec::new();
        assert!(!scan_for_error(
            &mut tail,
            b"<CompleteMultipartUploadResult>"
        ));
        assert!(!scan_for_error(&mut tail, b"<ETag>x</ETag>"));
        let mut tail = Vec::new();
        assert!(scan_for_error(&mut tail, b"   <Error><Code>"));
    }
}
