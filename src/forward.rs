//! The upstream request: the client's request re-addressed to the
//! upstream's bucket, stripped of the client's authentication and of the
//! aws-chunked framing, then re-signed with the upstream's credentials.

use std::time::SystemTime;

use pingora::http::RequestHeader;

use crate::auth::is_auth_query_param;
use crate::context::RequestCtx;
use crate::resign::sign_request;
use crate::s3::uri::{encode_component, encode_path};
use crate::s3::{err, S3ErrorCode, S3Result};

/// Headers of the client's own authentication and framing, never forwarded.
const CLIENT_ONLY: &[&str] = &[
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// Headers that only describe aws-chunked framing.
const CHUNKED_ONLY: &[&str] = &[
    "x-amz-decoded-content-length",
    "x-amz-trailer",
    "transfer-encoding",
];

pub fn rewrite(
    req: &mut RequestHeader,
    ctx: &RequestCtx,
    credentials: &crate::config::ResolvedCredentials,
) -> S3Result<()> {
    let route = ctx
        .route
        .as_ref()
        .ok_or_else(|| err(S3ErrorCode::InternalError, "no route"))?;
    let up = &route.upstream;
    let bucket = (!route.target.is_empty()).then_some(route.target.as_str());
    let (host, path) = up.locate(bucket, ctx.key.as_deref());
    let query = ctx.query.canonical(is_auth_query_param);
    let path_and_query = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let uri: http::Uri = path_and_query.parse().map_err(|_| {
        err(
            S3ErrorCode::InvalidRequest,
            "The request cannot be re-addressed upstream",
        )
    })?;
    req.set_uri(uri);
    let bad_header = |_| err(S3ErrorCode::InternalError, "invalid header value");
    req.insert_header("host", host.as_str())
        .map_err(bad_header)?;
    for h in CLIENT_ONLY {
        req.remove_header(*h);
    }
    if ctx.aws_chunked {
        for h in CHUNKED_ONLY {
            req.remove_header(*h);
        }
        strip_aws_chunked_encoding(req)?;
        match (&ctx.reframer, ctx.decoded_length) {
            (Some(r), Some(decoded)) => {
                // Our own aws-chunked framing, carrying the client's checksum.
                let enc = match req
                    .headers
                    .get("content-encoding")
                    .and_then(|v| v.to_str().ok())
                {
                    Some(rest) => format!("aws-chunked,{rest}"),
                    None => "aws-chunked".to_string(),
                };
                req.insert_header("content-encoding", enc)
                    .map_err(bad_header)?;
                req.insert_header("x-amz-decoded-content-length", decoded.to_string())
                    .map_err(bad_header)?;
                req.insert_header("x-amz-trailer", r.trailer_name())
                    .map_err(bad_header)?;
            }
            // The checksum arrives after the headers have gone upstream and
            // cannot follow: the gateway verifies it itself.
            _ => {
                req.remove_header("x-amz-sdk-checksum-algorithm");
            }
        }
    }
    if let Some(owner) = &ctx.inject_owner {
        req.insert_header("x-amz-expected-bucket-owner", owner.as_str())
            .map_err(bad_header)?;
    }
    if ctx.continue_sent {
        req.remove_header("expect");
    }
    if let Some(len) = ctx.upstream_length {
        req.remove_header("transfer-encoding");
        req.insert_header("content-length", len.to_string())
            .map_err(bad_header)?;
    }
    if let (Some(op_src), Some(target)) = (
        ctx.operation.as_ref().and_then(|o| o.copy_source()),
        &ctx.copy_source_target,
    ) {
        // An access point or Outposts source is named `<arn>/object/<key>`.
        let mut v = if target.starts_with("arn:") {
            format!("{}/object/{}", target, encode_path(&op_src.key))
        } else {
            format!("/{}/{}", encode_path(target), encode_path(&op_src.key))
        };
        if let Some(ver) = &op_src.version_id {
            v.push_str("?versionId=");
            v.push_str(&encode_component(ver));
        }
        req.insert_header("x-amz-copy-source", v)
            .map_err(bad_header)?;
    }
    req.insert_header("x-amz-content-sha256", ctx.upstream_payload_hash.as_str())
        .map_err(bad_header)?;
    let scheme = if up.endpoint.tls { "https" } else { "http" };
    let full_uri = format!(
        "{scheme}://{host}{}",
        req.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let signed = sign_request(
        req.method.as_str(),
        &full_uri,
        &req.headers,
        &ctx.upstream_payload_hash,
        &crate::resign::SignFor {
            upstream: up,
            bucket,
            credentials,
        },
        SystemTime::now(),
    )?;
    for (name, value) in signed {
        req.insert_header(name, value).map_err(bad_header)?;
    }
    Ok(())
}

/// `Content-Encoding: aws-chunked[,gzip]` → `gzip` (or no header).
fn strip_aws_chunked_encoding(req: &mut RequestHeader) -> S3Result<()> {
    let Some(v) = req
        .headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let rest: Vec<&str> = v
        .split(',')
        .map(str::trim)
        .filter(|e| !e.eq_ignore_ascii_case("aws-chunked") && !e.is_empty())
        .collect();
    if rest.is_empty() {
        req.remove_header("content-encoding");
    } else {
        let joined = rest.join(",");
        req.insert_header("content-encoding", joined)
            .map_err(|_| err(S3ErrorCode::InternalError, "invalid header value"))?;
    }
    Ok(())
}
