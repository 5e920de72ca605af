//! Admission: everything before a request goes upstream, as a linear
//! pipeline of stages, each in its own file and each writing its typed
//! result into the request context:
//!
//! 1. `parse`        — name the S3 operation and check its parameters
//! 2. `authenticate` — verify the client's signature (SigV4, SigV2)
//! 3. `decide::route`— the upstream and target bucket (and copy source's)
//! 4. `decide`       — policy statements, bucket rules, initiator rule
//! 5. `body`         — how the body is verified on its way upstream
//!
//! Stages 1–4 read a `RequestView`, not the pingora session, so
//! `s3gate explain` runs them unchanged. Only the body stage (and the
//! DeleteObjects stage, which reads its small body) touch the session.

pub mod authenticate;
pub mod body;
pub mod cors;
pub mod decide;
pub mod delete;
pub mod parse;
pub mod post;
pub mod view;

use std::time::SystemTime;

use pingora::proxy::Session;

use crate::auth::{Authenticated, PayloadMode};
use crate::context::RequestCtx;
use crate::s3::{err, Operation, S3ErrorCode, S3Request, S3Result};
use crate::state::GatewayState;
use crate::upstream_client::Reply;
use decide::{Inputs, Who};
use view::RequestView;

/// What `admit` concluded.
pub enum Admission {
    /// Forward the request upstream.
    Forward,
    /// Answer locally with this S3 XML body (status 200).
    Answer(String),
    /// Relay this answer, fetched by the gateway itself.
    Relay(Reply),
    /// Run CreateMultipartUpload here (the UploadId is recorded first).
    Create,
    /// Run the abort flow.
    Abort,
}

pub async fn admit(
    state: &GatewayState,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> S3Result<Admission> {
    let now = SystemTime::now();
    let tls = session
        .digest()
        .and_then(|d| d.ssl_digest.as_ref())
        .map(|t| t.version.to_string());
    let source_ip = session
        .client_addr()
        .and_then(|a| a.as_inet())
        // An IPv4 client of a dual-stack listener is `::ffff:a.b.c.d`:
        // policies name it as IPv4.
        .map(|a| a.ip().to_canonical());
    if matches!(
        session.req_header().method,
        http::Method::OPTIONS | http::Method::POST
    ) {
        // The form is read from the session while its header is in use.
        let header = session.req_header().clone();
        let view = RequestView::of(&header, source_ip, tls.as_deref());
        if let Some(special) = browser_request(state, session, ctx, &view, now).await? {
            return Ok(special);
        }
    }
    let view = RequestView::of(session.req_header(), source_ip, tls.as_deref());
    // 1. parse
    let parsed = parse::parse(&view, &state.config.hostnames)?;
    let req = parsed.request.clone();
    ctx.cors = cors::headers_for(state, &view, req.bucket.as_deref());
    ctx.operation = Some(req.op.clone());
    ctx.bucket = req.bucket.clone();
    ctx.key = req.key.clone();
    // 2. authenticate
    let auth = match authenticate::authenticate(
        &view,
        &parsed,
        &state.principals,
        &state.config.region,
        now,
    ) {
        Ok(a) => a,
        Err(e) => {
            crate::metrics::get()
                .auth_failures
                .inc(&[e.error.code.as_str()]);
            ctx.identity.access_key_id = e.access_key_id;
            return Err(e.error);
        }
    };
    if let Some(a) = &auth {
        ctx.identity.principal = Some(a.principal.clone());
        ctx.identity.method = Some(a.method);
    }
    let payload = auth
        .as_ref()
        .map_or(PayloadMode::Unsigned, |a| a.payload.clone());
    let content_length = body::verified_length(view.headers, &payload)?;
    // 3. route
    let decider = state.decider();
    let routed = decide::route(&decider, &req)?;
    // The initiator rule needs the upload's record: read only for
    // authenticated requests.
    let (initiator, initiator_principal) = initiator(state, &req, auth.as_ref()).await?;
    ctx.decided.initiator = initiator.clone();
    ctx.decided.initiator_principal = initiator_principal;
    // 4. decide
    let who = Who::of(auth.as_ref());
    let verdict = decide::decide(
        &decider,
        &Inputs {
            view: &view,
            request: &req,
            who,
            routed: &routed,
            initiator: initiator.as_deref(),
            content_length,
            now,
        },
    );
    record_decision(ctx, &req, who.principal, &verdict, decider.shadow);
    if let Some(log) = &state.decision_log {
        log_decision(
            log,
            ctx,
            &req,
            who.principal,
            &verdict,
            &routed,
            decider.shadow,
        );
    }
    if let Some(e) = verdict.refusal {
        return Err(e);
    }
    ctx.decided.inject_owner = verdict.inject_owner.clone();
    ctx.plan.copy_source_target = routed.source.as_ref().and_then(|s| s.target.clone());
    ctx.plan.route = routed.route.clone();
    let route_upstream_trailers = ctx
        .plan
        .route
        .as_ref()
        .is_some_and(|r| r.upstream.checksum_trailers);
    ctx.request = Some(req.clone());
    match &req.op {
        Operation::ListBuckets if ctx.plan.route.is_none() => {
            return Ok(Admission::Answer(list_buckets_xml(
                &state.router.named_buckets(),
                who.principal,
            )))
        }
        Operation::BucketSub(sub) if sub.name == "GetBucketLocation" => {
            return bucket_location(state, ctx, &req).await;
        }
        Operation::CreateMultipartUpload => return Ok(Admission::Create),
        Operation::AbortMultipartUpload { .. } => return Ok(Admission::Abort),
        Operation::DeleteObjects => {
            let keys = verdict.keys;
            let principal = who.principal.to_string();
            let reply =
                delete::delete_objects(state, session, ctx, &payload, &principal, &keys, &decider)
                    .await?;
            return Ok(Admission::Relay(reply));
        }
        Operation::UploadPart { upload_id, .. } | Operation::UploadPartCopy { upload_id, .. } => {
            // An abort of this upload on this replica refuses new parts.
            let bucket = req.bucket.as_deref().unwrap_or("");
            let guard = state
                .inflight
                .begin_part(&format!("{bucket}\n{upload_id}"))
                .ok_or_else(|| {
                    err(
                        S3ErrorCode::NoSuchUpload,
                        "The specified multipart upload is being aborted.",
                    )
                    .with_resource(format!("/{bucket}/{}", req.key.as_deref().unwrap_or("")))
                })?;
            ctx.part_guard = Some(guard);
        }
        _ => {}
    }
    // 5. body
    let whole_object_checksum = matches!(req.op, Operation::CompleteMultipartUpload { .. });
    let (framing, plan) = body::prepare(
        session,
        &payload,
        route_upstream_trailers,
        whole_object_checksum,
    )
    .await?;
    ctx.plan.framing = framing;
    ctx.plan.body = plan;
    Ok(Admission::Forward)
}

/// What browsers send besides S3 requests: CORS preflights (`OPTIONS`)
/// and POST Object forms (`post`). `None`: an ordinary request.
async fn browser_request(
    state: &GatewayState,
    session: &mut Session,
    ctx: &mut RequestCtx,
    view: &RequestView<'_>,
    now: SystemTime,
) -> S3Result<Option<Admission>> {
    if view.method == "OPTIONS" {
        return cors::answer_preflight(state, view)
            .await
            .map(|r| Some(Admission::Relay(r)));
    }
    if view.method != "POST" {
        return Ok(None);
    }
    let addr = crate::s3::addressing::address(view.host, view.raw_path, &state.config.hostnames)?;
    if !post::is_post_object(view, &addr) {
        return Ok(None);
    }
    ctx.cors = cors::headers_for(state, view, addr.bucket.as_deref());
    post::admit(state, session, ctx, view, &addr, now)
        .await
        .map(Some)
}

/// `s3gate:MultipartInitiator` (self | other | unknown) and the principal
/// on record, for operations on an upload.
async fn initiator(
    state: &GatewayState,
    req: &S3Request,
    auth: Option<&Authenticated>,
) -> S3Result<(Option<String>, Option<String>)> {
    let (Some(upload_id), Some(bucket)) = (req.op.upload_id(), req.bucket.as_deref()) else {
        return Ok((None, None));
    };
    let Some(me) = auth.map(|a| a.principal.name.as_str()) else {
        return Ok((Some("unknown".into()), None));
    };
    let record = state.ownership.lookup(bucket, upload_id).await?;
    match record {
        // The store matches ids without regard to case (Garage does too):
        // a spelling other than the one issued is not that upload.
        Some(r) if r.upload_id != upload_id => Err(err(
            S3ErrorCode::NoSuchUpload,
            "The specified upload does not exist (upload ids are case-sensitive).",
        )
        .with_resource(format!("/{bucket}/{}", req.key.as_deref().unwrap_or("")))),
        Some(r) => {
            let who = if r.principal == me { "self" } else { "other" };
            Ok((Some(who.into()), Some(r.principal.clone())))
        }
        None => Ok((Some("unknown".into()), None)),
    }
}

/// Metrics and the log line of a policy decision.
pub(super) fn record_decision(
    ctx: &mut RequestCtx,
    req: &S3Request,
    principal: &str,
    v: &decide::Verdict,
    shadow: bool,
) {
    let Some(decision) = &v.decision else { return };
    ctx.decided.decision = Some(decision.clone());
    let m = crate::metrics::get();
    if decision.statements.is_empty() {
        m.decisions.inc(&[decision.effect.as_str(), ""]);
    }
    for s in &decision.statements {
        m.decisions.inc(&[decision.effect.as_str(), s]);
    }
    if decision.allowed() {
        return;
    }
    let by = if decision.statements.is_empty() {
        "no statement allows it".to_string()
    } else {
        decision.statements.join(", ")
    };
    let needed: Vec<String> = v
        .needs
        .iter()
        .map(|n| format!("{} on {}", n.action, n.resource))
        .collect();
    tracing::info!(
        request_id = %ctx.request_id,
        principal,
        operation = req.op.name(),
        needs = %needed.join(", "),
        statements = %by,
        mode = if shadow { "shadow" } else { "enforce" },
        "access denied by policy"
    );
}

/// The decision log's line: what the decision read and what it decided.
pub(super) fn log_decision(
    log: &crate::decision_log::DecisionLog,
    ctx: &RequestCtx,
    req: &S3Request,
    principal: &str,
    v: &decide::Verdict,
    routed: &decide::Routed,
    shadow: bool,
) {
    let Some(decision) = &v.decision else { return };
    log.record(&crate::decision_log::Decided {
        request_id: &ctx.request_id,
        operation: req.op.name(),
        principal,
        bucket: req.bucket.as_deref(),
        key: req.key.as_deref(),
        needs: &v.needs,
        keys: &v.keys,
        rules: routed
            .route
            .as_ref()
            .map(|r| (r.upstream.name.as_str(), r.rules.as_ref())),
        decision,
        shadow: shadow && !decision.allowed(),
        policy_version: v.policy_version.as_deref(),
    });
}

/// GetBucketLocation answers the gateway's region, whatever the upstream
/// says: clients (minio-go, MinIO's SDKs, s3cmd) sign for the region they
/// are told, and the gateway verifies its own. The bucket must exist
/// upstream, as S3 answers NoSuchBucket otherwise.
async fn bucket_location(
    state: &GatewayState,
    ctx: &RequestCtx,
    req: &S3Request,
) -> S3Result<Admission> {
    let route = ctx
        .plan
        .route
        .as_ref()
        .ok_or_else(|| err(S3ErrorCode::InternalError, "no route"))?;
    let call = crate::upstream_client::Call {
        method: "HEAD",
        bucket: route.target.as_deref(),
        key: None,
        query: vec![],
        headers: vec![],
        body: bytes::Bytes::new(),
    };
    let reply = state.client.send(&route.upstream, call).await?;
    let bucket = req.bucket.as_deref().unwrap_or("");
    match reply.status {
        200 => {
            let region = state.config.region.as_str();
            let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
            if region == "us-east-1" {
                // S3's answer for us-east-1: an empty constraint.
                xml.push_str(
                    "<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"/>",
                );
            } else {
                xml.push_str(
                    "<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
                );
                crate::s3::error::xml_escape_into(&mut xml, region);
                xml.push_str("</LocationConstraint>");
            }
            Ok(Admission::Answer(xml))
        }
        404 => Err(err(
            S3ErrorCode::NoSuchBucket,
            "The specified bucket does not exist",
        )
        .with_resource(format!("/{bucket}"))),
        403 => Err(err(S3ErrorCode::AccessDenied, "Access Denied")),
        s => Err(err(
            S3ErrorCode::BadGateway,
            format!(
                "The upstream {} answered {s} for the bucket",
                route.upstream.name
            ),
        )),
    }
}

fn list_buckets_xml(buckets: &[&str], owner: &str) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>");
    crate::s3::error::xml_escape_into(&mut s, owner);
    s.push_str("</ID><DisplayName>");
    crate::s3::error::xml_escape_into(&mut s, owner);
    s.push_str("</DisplayName></Owner><Buckets>");
    for b in buckets {
        s.push_str("<Bucket><Name>");
        crate::s3::error::xml_escape_into(&mut s, b);
        s.push_str("</Name><CreationDate>1970-01-01T00:00:00.000Z</CreationDate></Bucket>");
    }
    s.push_str("</Buckets></ListAllMyBucketsResult>");
    s
}
