//! tracing setup (human or JSON) and the per-request log line.
//!
//! Never logged: secrets, signatures, Authorization headers, query strings
//! (a presigned URL's query is a bearer credential).

use pingora::Error;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::context::RequestCtx;

pub fn init(format: LogFormat, level: Option<&str>) {
    let filter = EnvFilter::try_from_env("S3GATE_LOG")
        .or_else(|_| EnvFilter::try_new(level.unwrap_or("info")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// One line per request.
pub fn access(ctx: &RequestCtx, e: Option<&Error>) {
    let principal = ctx.principal.as_ref().map_or("-", |p| p.name.as_str());
    let upstream = ctx.route.as_ref().map_or("-", |r| r.upstream.name.as_str());
    let code = ctx.error_code.unwrap_or("-");
    let status = if ctx.status == 0 && e.is_some() {
        499
    } else {
        ctx.status
    };
    tracing::info!(
        target: "s3gate::access",
        request_id = %ctx.request_id,
        principal,
        operation = ctx.operation_name(),
        bucket = ctx.bucket.as_deref().unwrap_or("-"),
        key = ctx.key.as_deref().unwrap_or("-"),
        upstream,
        status,
        error = code,
        bytes_in = ctx.bytes_in,
        bytes_out = ctx.bytes_out,
        duration_ms = ctx.started.elapsed().as_millis() as u64,
        "request"
    );
}
