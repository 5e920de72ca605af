//! Answers the gateway gives itself: S3 error XML and local results, each
//! with the gateway's request id.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType};

use crate::context::RequestCtx;
use crate::s3::{err, S3Error, S3ErrorCode};

/// Write an S3 error response; the connection is not reused, since the
/// client's body may not have been read.
pub async fn error(session: &mut Session, ctx: &mut RequestCtx, e: &S3Error) {
    ctx.outcome.status = e.status();
    ctx.outcome.error_code = Some(e.code);
    session.set_keepalive(None);
    let body = if session.req_header().method == http::Method::HEAD {
        String::new()
    } else {
        e.to_xml(&ctx.request_id)
    };
    write(session, ctx, e.status(), body, true).await;
}

/// The CORS headers of the bucket's rule matching the request's origin.
pub fn add_cors(h: &mut ResponseHeader, ctx: &RequestCtx) {
    for (n, v) in &ctx.cors {
        let _ = h.insert_header(n.clone(), v.clone());
    }
}

/// Write a 200 with an XML document.
pub async fn xml(session: &mut Session, ctx: &mut RequestCtx, body: String) {
    ctx.outcome.status = 200;
    write(session, ctx, 200, body, false).await;
}

async fn write(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: u16,
    body: String,
    close: bool,
) {
    let Ok(mut h) = ResponseHeader::build(status, Some(6)) else {
        return;
    };
    let len = body.len();
    let _ = h.insert_header("content-type", "application/xml");
    let _ = h.insert_header("content-length", len.to_string());
    let _ = h.insert_header("x-amz-request-id", ctx.request_id.as_str());
    let _ = h.insert_header("x-s3gate-request-id", ctx.request_id.as_str());
    let _ = h.insert_header("server", "s3gate");
    add_cors(&mut h, ctx);
    if close {
        let _ = h.insert_header("connection", "close");
    }
    ctx.outcome.bytes_out += len as u64;
    if session
        .write_response_header(Box::new(h), len == 0)
        .await
        .is_err()
    {
        return;
    }
    if len > 0 {
        let _ = session
            .write_response_body(Some(Bytes::from(body)), true)
            .await;
    }
}

/// The S3 error for a proxy failure that none of our stages explained.
pub fn from_proxy_error(e: &Error, upstream: &str) -> Option<S3Error> {
    use ErrorType::*;
    let s3 = match e.etype() {
        ConnectTimedout => err(
            S3ErrorCode::GatewayTimeout,
            format!("The upstream {upstream} did not accept a connection in time"),
        ),
        ConnectRefused | ConnectNoRoute | ConnectError | ConnectProxyFailure
        | TLSHandshakeFailure | InvalidCert => err(
            S3ErrorCode::BadGateway,
            format!("The upstream {upstream} is unreachable"),
        ),
        ReadTimedout | WriteTimedout => err(
            S3ErrorCode::GatewayTimeout,
            format!("The upstream {upstream} did not answer in time"),
        ),
        HTTPStatus(code) if *code < 500 => err(
            S3ErrorCode::InvalidRequest,
            "The request could not be processed",
        ),
        _ => match e.esource() {
            // The client went away or sent something unreadable.
            ErrorSource::Downstream => match e.etype() {
                ReadError | WriteError | ConnectionClosed => return None,
                _ => err(
                    S3ErrorCode::IncompleteBody,
                    "The request body could not be read",
                ),
            },
            ErrorSource::Upstream => err(
                S3ErrorCode::BadGateway,
                format!("The upstream {upstream} failed while answering"),
            ),
            _ => err(
                S3ErrorCode::InternalError,
                "We encountered an internal error. Please try again.",
            ),
        },
    };
    Some(s3)
}

/// Relay an upstream answer that the gateway fetched itself.
pub async fn relay(
    session: &mut Session,
    ctx: &mut RequestCtx,
    reply: &crate::upstream_client::Reply,
    region: &str,
) {
    ctx.outcome.status = reply.status;
    let Ok(mut h) = ResponseHeader::build(reply.status, Some(reply.headers.len() + 3)) else {
        return;
    };
    for (name, value) in reply.headers.iter() {
        if matches!(
            name.as_str(),
            "connection" | "transfer-encoding" | "content-length" | "keep-alive"
        ) {
            continue;
        }
        let _ = h.append_header(name.clone(), value.clone());
    }
    let is_head = session.req_header().method == http::Method::HEAD;
    let body = if is_head || reply.status == 204 || reply.status == 304 {
        Bytes::new()
    } else if reply.status >= 400 {
        // As for proxied answers: no upstream identity in the message.
        let (out, code) = crate::s3::upstream_error::rewrite(&reply.body, None);
        if ctx.outcome.error_code.is_none() {
            ctx.outcome.upstream_error_code = code;
        }
        Bytes::from(ctx.localize_error(out, region))
    } else {
        reply.body.clone()
    };
    if reply.status != 204 {
        let _ = h.insert_header("content-length", body.len().to_string());
    }
    if h.headers.get("x-amz-request-id").is_none() {
        let _ = h.insert_header("x-amz-request-id", ctx.request_id.as_str());
    }
    let _ = h.insert_header("x-s3gate-request-id", ctx.request_id.as_str());
    add_cors(&mut h, ctx);
    ctx.outcome.bytes_out += body.len() as u64;
    let end = body.is_empty();
    if session
        .write_response_header(Box::new(h), end)
        .await
        .is_err()
    {
        return;
    }
    if !end {
        let _ = session.write_response_body(Some(body), true).await;
    }
}
