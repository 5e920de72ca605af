//! CreateMultipartUpload and AbortMultipartUpload, which the gateway runs
//! itself rather than proxying: the UploadId must be recorded before the
//! client hears of it, and an abort is a flow of several upstream calls.

use std::time::SystemTime;

use bytes::Bytes;
use pingora::proxy::Session;

use super::abort::{self, Target};
use super::ownership::Record;
use crate::audit::record::{DecisionInfo, Event, HeaderRule, StatementRef, UpstreamInfo};
use crate::context::RequestCtx;
use crate::forward;
use crate::s3::{err, Operation, S3Error, S3ErrorCode, S3Result};
use crate::state::GatewayState;
use crate::upstream_client::{Call, Reply};

fn no_route() -> S3Error {
    err(S3ErrorCode::InternalError, "no route")
}

/// Forward CreateMultipartUpload, record the initiator, then answer.
pub async fn create(state: &GatewayState, session: &Session, ctx: &RequestCtx) -> S3Result<Reply> {
    let route = ctx.route.as_ref().ok_or_else(no_route)?;
    let mut req = session.req_header().clone();
    let credentials = route.upstream.credentials.get().await?;
    forward::rewrite(&mut req, ctx, &credentials)?;
    let reply = state
        .client
        .send_prepared(&route.upstream, Some(&route.target), req, Bytes::new())
        .await?;
    if reply.status != 200 {
        return Ok(reply);
    }
    let Some(upload_id) = crate::s3::xml::first_text(&reply.body, "UploadId") else {
        return Ok(reply);
    };
    let (Some(bucket), Some(key)) = (&ctx.bucket, &ctx.key) else {
        return Ok(reply);
    };
    let principal = ctx
        .principal
        .as_ref()
        .map_or("anonymous", |p| p.name.as_str())
        .to_string();
    let created = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let record = Record {
        principal,
        bucket: bucket.clone(),
        key: key.clone(),
        upload_id: upload_id.clone(),
        created,
    };
    if let Err(e) = state.ownership.record(record).await {
        // Without a record the initiator rule could not hold: undo.
        let call = Call {
            method: "DELETE",
            bucket: Some(&route.target),
            key: Some(key),
            query: vec![("uploadId", upload_id)],
            headers: vec![],
            body: Bytes::new(),
        };
        let _ = state.client.send(&route.upstream, call).await;
        return Err(e);
    }
    Ok(reply)
}

/// Run the abort flow and write its audit record.
pub async fn abort(
    state: &GatewayState,
    session: &Session,
    ctx: &RequestCtx,
) -> S3Result<(Reply, Event)> {
    let route = ctx.route.as_ref().ok_or_else(no_route)?;
    let (Some(bucket), Some(key), Some(Operation::AbortMultipartUpload { upload_id })) =
        (&ctx.bucket, &ctx.key, &ctx.operation)
    else {
        return Err(err(S3ErrorCode::InternalError, "not an abort"));
    };
    if let Some(audit) = &state.audit {
        if audit.reject_on_failure {
            if let Err(e) = audit.probe().await {
                tracing::error!("audit log unwritable, abort refused (on_failure: reject): {e}");
                return Err(err(
                    S3ErrorCode::ServiceUnavailable,
                    "The abort cannot be audited right now; nothing was aborted. Please retry.",
                ));
            }
        }
    }
    let h = &session.req_header().headers;
    let mut headers = Vec::new();
    if let Some(o) = ctx.inject_owner.clone().or_else(|| {
        h.get("x-amz-expected-bucket-owner")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }) {
        headers.push(("x-amz-expected-bucket-owner", o));
    }
    if let Some(p) = h.get("x-amz-request-payer").and_then(|v| v.to_str().ok()) {
        headers.push(("x-amz-request-payer", p.to_string()));
    }
    let target = Target {
        upstream: &route.upstream,
        bucket: &route.target,
        key,
        upload_id,
        headers,
    };
    let inflight_key = format!("{bucket}\n{upload_id}");
    let client_request = session.req_header().clone();
    let credentials = route.upstream.credentials.get().await?;
    let result = abort::run(
        &state.client,
        &state.inflight,
        &inflight_key,
        &target,
        &state.abort,
        || {
            let mut r = client_request.clone();
            forward::rewrite(&mut r, ctx, &credentials)?;
            Ok(r)
        },
    )
    .await?;
    if result.outcome != "upstream_error" {
        state.ownership.forget(bucket, upload_id).await;
    }
    let mut event = event(state, session, ctx, "AbortMultipartUpload", result.outcome);
    event.upstream = Some(upstream_info(ctx, Some(&result.reply)));
    event.parts_before = result.parts_before;
    event.attempts = result.attempts;
    event.parts_remaining = result.parts_remaining;
    if result.reply.status >= 300 {
        event.error = result.reply.error_code();
    }
    Ok((result.reply, event))
}

pub fn upstream_info(ctx: &RequestCtx, reply: Option<&Reply>) -> UpstreamInfo {
    let route = ctx.route.as_ref();
    UpstreamInfo {
        name: route.map(|r| r.upstream.name.clone()),
        endpoint: route.map(|r| {
            let e = &r.upstream.endpoint;
            format!(
                "{}://{}",
                if e.tls { "https" } else { "http" },
                e.authority(&e.host)
            )
        }),
        bucket: route.map(|r| r.target.clone()),
        status: reply.map(|r| r.status),
        request_id: reply.and_then(|r| r.header("x-amz-request-id").map(str::to_string)),
        host_id: reply.and_then(|r| r.header("x-amz-id-2").map(str::to_string)),
    }
}

/// The parts of an audit record every event kind shares.
pub fn event(
    state: &GatewayState,
    session: &Session,
    ctx: &RequestCtx,
    kind: &str,
    outcome: &str,
) -> Event {
    let h = &session.req_header().headers;
    let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let rules = ctx.route.as_ref().map(|r| r.rules.clone());
    let owner_action = match (&rules, &ctx.inject_owner) {
        (_, Some(_)) => "injected".to_string(),
        (Some(r), None) => format!("{:?}", r.expected_bucket_owner).to_ascii_lowercase(),
        (None, None) => "passthrough".to_string(),
    };
    let payer_action = rules.as_ref().map_or("allow".to_string(), |r| {
        format!("{:?}", r.request_payer).to_ascii_lowercase()
    });
    let upload_id = match &ctx.operation {
        Some(
            Operation::AbortMultipartUpload { upload_id }
            | Operation::CompleteMultipartUpload { upload_id }
            | Operation::ListParts { upload_id },
        ) => Some(upload_id.clone()),
        _ => None,
    };
    Event {
        time: crate::auth::time::format_rfc3339(ctx.arrived, true),
        event: kind.to_string(),
        request_id: ctx.request_id.clone(),
        principal: ctx.principal.as_ref().map(|p| p.name.clone()),
        access_key_id: ctx
            .principal
            .as_ref()
            .map(|p| p.access_key_id.clone())
            .or_else(|| ctx.access_key_id.clone()),
        source_ip: session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip().to_string()),
        user_agent: header("user-agent"),
        bucket: ctx.bucket.clone(),
        key: ctx.key.clone(),
        upload_id,
        upstream: Some(upstream_info(ctx, None)),
        decision: ctx.decision.as_ref().map(|d| DecisionInfo {
            effect: d.effect.as_str().to_string(),
            statements: d
                .statements
                .iter()
                .map(|s| match s.rsplit_once('#') {
                    Some((file, sid)) => StatementRef {
                        file: file.to_string(),
                        sid: sid.to_string(),
                    },
                    None => StatementRef {
                        file: s.clone(),
                        sid: String::new(),
                    },
                })
                .collect(),
            mode: format!("{:?}", state.mode).to_ascii_lowercase(),
        }),
        expected_bucket_owner: Some(HeaderRule {
            sent: header("x-amz-expected-bucket-owner"),
            action: owner_action,
        }),
        request_payer: Some(HeaderRule {
            sent: header("x-amz-request-payer"),
            action: payer_action,
        }),
        initiator: ctx.initiator.clone(),
        parts_before: None,
        attempts: 0,
        parts_remaining: None,
        outcome: outcome.to_string(),
        error: ctx.error_code.map(str::to_string),
        duration_ms: ctx.started.elapsed().as_millis() as u64,
    }
}
