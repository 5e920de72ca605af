//! CreateMultipartUpload and AbortMultipartUpload, which the gateway runs
//! itself rather than proxying: the UploadId must be recorded before the
//! client hears of it, and an abort is a flow of several upstream calls.

use crate::audit::record::{EventKind, Outcome};
use std::time::SystemTime;

use bytes::Bytes;
use pingora::proxy::Session;

use crate::audit::record::{
    DecisionInfo, Event, HeaderRule, InitiatorLookup, StatementRef, UpstreamInfo,
};
use crate::context::RequestCtx;
use crate::forward;
use crate::multipart::abort::{self, Target};
use crate::multipart::ownership::{Ownership, Record};
use crate::s3::{err, Operation, S3Error, S3ErrorCode, S3Result};
use crate::state::GatewayState;
use crate::upstream_client::{Call, Reply};

fn no_route() -> S3Error {
    err(S3ErrorCode::InternalError, "no route")
}

/// Forward CreateMultipartUpload, record the initiator, then answer.
pub async fn create(state: &GatewayState, session: &Session, ctx: &RequestCtx) -> S3Result<Reply> {
    let route = ctx.plan.route.as_ref().ok_or_else(no_route)?;
    let mut req = session.req_header().clone();
    let credentials = route.upstream.credentials.get().await?;
    forward::rewrite(&mut req, ctx, &credentials)?;
    let started = std::time::Instant::now();
    let reply = state
        .client
        .send_prepared(&route.upstream, route.target.as_deref(), req, Bytes::new())
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
        .identity
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
    let undo = || async {
        let call = Call {
            method: "DELETE",
            bucket: route.target.as_deref(),
            key: Some(key),
            query: vec![("uploadId", upload_id.clone())],
            headers: vec![],
            body: Bytes::new(),
        };
        let _ = state.client.send(&route.upstream, call).await;
    };
    if let Err(e) = state.ownership.record(record).await {
        // Without a record the initiator rule could not hold: undo.
        undo().await;
        return Err(e);
    }
    // A record this late might have missed the reaper's last look for an
    // orphan (`multipart.reaper.orphans_after`): undo rather than hand out
    // an id the reaper may be aborting.
    let deadline = state
        .reaper
        .as_ref()
        .and_then(|r| r.record_deadline(bucket));
    if deadline.is_some_and(|d| started.elapsed() >= d) {
        tracing::warn!(bucket = %bucket, took = ?started.elapsed(), "create: the initiator was recorded later than half of multipart.reaper.orphans_after; undone");
        undo().await;
        state.ownership.forget(bucket, &upload_id).await;
        return Err(err(
            S3ErrorCode::ServiceUnavailable,
            "The upload's initiator could not be recorded in time; nothing was created. Please retry.",
        ));
    }
    Ok(reply)
}

/// Run the abort flow and write its audit record.
pub async fn abort(
    state: &GatewayState,
    session: &Session,
    ctx: &RequestCtx,
) -> S3Result<(Reply, Event)> {
    let route = ctx.plan.route.as_ref().ok_or_else(no_route)?;
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
    if let Some(o) = ctx.decided.inject_owner.clone().or_else(|| {
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
        bucket: route.target.as_deref().unwrap_or_default(),
        key,
        upload_id,
        headers,
    };
    // Named before the flow: a finished abort forgets the ownership record.
    let initiator = match initiator(ctx, EventKind::AbortMultipartUpload) {
        Initiator::Known(name) => name,
        Initiator::LookUp if state.audit.is_some() => Some(
            initiator_principal(&state.ownership, bucket, upload_id)
                .await
                .unwrap_or_else(|| "unknown".to_string()),
        ),
        Initiator::LookUp => None,
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
    if result.outcome != Outcome::UpstreamError {
        state.ownership.forget(bucket, upload_id).await;
    }
    let mut event = event(
        state,
        session,
        ctx,
        EventKind::AbortMultipartUpload,
        result.outcome,
    );
    event.initiator = initiator;
    event.resolve_initiator = None;
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
    let route = ctx.plan.route.as_ref();
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
        bucket: route.and_then(|r| r.target.clone()),
        status: reply.map(|r| r.status),
        request_id: reply.and_then(|r| r.header("x-amz-request-id").map(str::to_string)),
        host_id: reply.and_then(|r| r.header("x-amz-id-2").map(str::to_string)),
    }
}

/// What the record can say about the upload's initiator now.
enum Initiator {
    /// The principal's name, `unknown`, or null (no upload involved).
    Known(Option<String>),
    /// The ownership record has to be read (an await).
    LookUp,
}

fn upload_id_of(ctx: &RequestCtx) -> Option<&str> {
    match &ctx.operation {
        Some(
            Operation::AbortMultipartUpload { upload_id }
            | Operation::CompleteMultipartUpload { upload_id }
            | Operation::ListParts { upload_id }
            | Operation::UploadPart { upload_id, .. }
            | Operation::UploadPartCopy { upload_id, .. },
        ) => Some(upload_id),
        _ => None,
    }
}

/// The audit `initiator` names the principal that started the upload
/// (`unknown` without an ownership record), never the policy's `self` /
/// `other`.
fn initiator(ctx: &RequestCtx, kind: EventKind) -> Initiator {
    let own_name = || ctx.identity.principal.as_ref().map(|p| p.name.clone());
    if let Some(name) = &ctx.decided.initiator_principal {
        return Initiator::Known(Some(name.clone()));
    }
    if kind == EventKind::CreateMultipartUpload {
        return Initiator::Known(own_name());
    }
    if ctx.bucket.is_none() || upload_id_of(ctx).is_none() {
        return Initiator::Known(None);
    }
    match ctx.decided.initiator.as_deref() {
        Some("self") => match own_name() {
            Some(name) => Initiator::Known(Some(name)),
            None => Initiator::LookUp,
        },
        Some("unknown") => Initiator::Known(Some("unknown".to_string())),
        // `other`, or not decided (authentication failed first).
        _ => Initiator::LookUp,
    }
}

/// The principal that started `upload_id`, if its record can be read.
async fn initiator_principal(
    ownership: &Ownership,
    bucket: &str,
    upload_id: &str,
) -> Option<String> {
    match ownership.lookup(bucket, upload_id).await {
        Ok(r) => r.map(|r| r.principal.clone()),
        Err(e) => {
            tracing::warn!(
                bucket,
                "audit: the upload's initiator could not be looked up: {}",
                e.message
            );
            None
        }
    }
}

/// The parts of an audit record every event kind shares.
pub fn event(
    state: &GatewayState,
    session: &Session,
    ctx: &RequestCtx,
    kind: EventKind,
    outcome: Outcome,
) -> Event {
    let h = &session.req_header().headers;
    let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let rules = ctx.plan.route.as_ref().map(|r| r.rules.clone());
    let owner_action = match (&rules, &ctx.decided.inject_owner) {
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
    // Resolved when the record is written (`AuditLog::write` awaits it).
    let (initiator, resolve_initiator) = match initiator(ctx, kind) {
        Initiator::Known(name) => (name, None),
        Initiator::LookUp => {
            let ownership = state.ownership.clone();
            let bucket = ctx.bucket.clone().unwrap_or_default();
            let upload_id = upload_id_of(ctx).unwrap_or_default().to_string();
            let lookup = InitiatorLookup::new(move || {
                let (ownership, bucket, upload_id) =
                    (ownership.clone(), bucket.clone(), upload_id.clone());
                async move { initiator_principal(&ownership, &bucket, &upload_id).await }
            });
            (Some("unknown".to_string()), Some(lookup))
        }
    };
    Event {
        time: crate::auth::time::format_rfc3339(ctx.arrived, true),
        event: kind,
        request_id: ctx.request_id.clone(),
        principal: ctx.identity.principal.as_ref().map(|p| p.name.clone()),
        access_key_id: ctx
            .identity
            .principal
            .as_ref()
            .map(|p| p.access_key_id.clone())
            .or_else(|| ctx.identity.access_key_id.clone()),
        source_ip: session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip().to_string()),
        user_agent: header("user-agent"),
        bucket: ctx.bucket.clone(),
        key: ctx.key.clone(),
        upload_id,
        upstream: Some(upstream_info(ctx, None)),
        decision: ctx.decided.decision.as_ref().map(|d| DecisionInfo {
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
        initiator,
        parts_before: None,
        attempts: 0,
        parts_remaining: None,
        outcome,
        error: ctx.outcome.error_code.map(|c| c.as_str().to_string()),
        duration_ms: ctx.started.elapsed().as_millis() as u64,
        truncated: None,
        suppressed: None,
        reason: None,
        resolve_initiator,
    }
}
