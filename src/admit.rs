//! The stages before anything goes upstream: name the S3 operation,
//! authenticate the client, decide, route, and prepare body verification.
//! Each returns an S3 error that the gateway answers with.

use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use pingora::proxy::Session;

use crate::auth::checksum::ChecksumAlgorithm;
use crate::auth::payload::BodyVerifier;
use crate::auth::{authenticate, Authenticated, Identity, PayloadMode, RequestView};
use crate::config::PolicyMode;
use crate::context::RequestCtx;
use crate::policy::actions;
use crate::policy::context::Facts;
use crate::reframe::Reframer;
use crate::rules;
use crate::s3::addressing::address;
use crate::s3::{err, Operation, Query, S3ErrorCode, S3Result};
use crate::state::GatewayState;

/// What `admit` concluded.
pub enum Admission {
    /// Forward the request upstream.
    Forward,
    /// Answer locally with this S3 XML body (status 200).
    Answer(String),
    /// Run CreateMultipartUpload here (the UploadId is recorded first).
    Create,
    /// Run the abort flow.
    Abort,
}

/// The largest aws-chunked framing accepted for an empty object, which is
/// read and verified before the request goes upstream.
const MAX_PREBUFFER: usize = 64 * 1024;

pub async fn admit(
    state: &GatewayState,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> S3Result<Admission> {
    let now = SystemTime::now();
    let auth = identify(state, session, ctx, now)?;
    let op = ctx
        .operation
        .clone()
        .ok_or_else(|| err(S3ErrorCode::InternalError, "operation not parsed"))?;
    let principal = auth
        .as_ref()
        .map_or("anonymous", |a| a.principal.name.as_str())
        .to_string();
    if let Operation::ListBuckets = op {
        decide(state, session, ctx, &op, &auth, None, now)?;
        return match state.router.service_upstream() {
            Some(up) => {
                ctx.route = Some(crate::route::Route {
                    upstream: up,
                    target: String::new(),
                    rules: std::sync::Arc::new(crate::config::BucketConfig {
                        upstream: String::new(),
                        target: None,
                        owner: None,
                        expected_bucket_owner: Default::default(),
                        request_payer: Default::default(),
                    }),
                });
                Ok(Admission::Forward)
            }
            None => Ok(Admission::Answer(list_buckets_xml(
                &state.router.named_buckets(),
                &principal,
            ))),
        };
    }
    let bucket = ctx
        .bucket
        .clone()
        .ok_or_else(|| err(S3ErrorCode::InternalError, "no bucket"))?;
    let route = state.router.route(&bucket)?;
    let mut source_rules = None;
    if let Some(src) = op.copy_source() {
        let src_route = state.router.route(&src.bucket)?;
        if src_route.upstream.name != route.upstream.name {
            return Err(err(
                S3ErrorCode::NotImplemented,
                format!(
                    "Copying between buckets on different upstreams ({} and {}) is not supported",
                    src_route.upstream.name, route.upstream.name
                ),
            ));
        }
        ctx.copy_source_target = Some(src_route.target.clone());
        source_rules = Some(src_route.rules);
    }
    if let Some(upload_id) = upload_id_of(&op) {
        let record = state.ownership.lookup(&bucket, upload_id).await?;
        let who = crate::multipart::ownership::initiator(&principal, record.as_deref());
        ctx.initiator = Some(if record.is_some() {
            who.to_string()
        } else {
            "unknown".to_string()
        });
    }
    decide(state, session, ctx, &op, &auth, Some(&route), now)?;
    let actions = rules::apply(
        &op,
        &session.req_header().headers,
        &ctx.query,
        &route.rules,
        source_rules.as_deref(),
    )?;
    ctx.inject_owner = actions.inject_owner;
    ctx.route = Some(route);
    match &op {
        Operation::CreateMultipartUpload => return Ok(Admission::Create),
        Operation::AbortMultipartUpload { .. } => return Ok(Admission::Abort),
        Operation::UploadPart { upload_id, .. } | Operation::UploadPartCopy { upload_id, .. } => {
            // An abort of this upload on this replica refuses new parts.
            let guard = state
                .inflight
                .begin_part(&format!("{bucket}\n{upload_id}"))
                .ok_or_else(|| {
                    err(
                        S3ErrorCode::NoSuchUpload,
                        "The specified multipart upload is being aborted.",
                    )
                    .with_resource(format!("/{bucket}/{}", ctx.key.as_deref().unwrap_or("")))
                })?;
            ctx.part_guard = Some(guard);
        }
        _ => {}
    }
    let payload = auth.map_or(PayloadMode::Unsigned, |a| a.payload);
    prepare_body(session, ctx, &payload).await?;
    Ok(Admission::Forward)
}

/// The policy decision. Without policies, every authenticated principal is
/// allowed and unsigned requests are refused.
fn decide(
    state: &GatewayState,
    session: &Session,
    ctx: &mut RequestCtx,
    op: &Operation,
    auth: &Option<Authenticated>,
    route: Option<&crate::route::Route>,
    now: SystemTime,
) -> S3Result<()> {
    let Some(store) = &state.policies else {
        return match auth {
            Some(_) => Ok(()),
            None => Err(err(S3ErrorCode::AccessDenied, "Anonymous access is not allowed by this gateway; sign the request with a key it issued")),
        };
    };
    let principal = auth
        .as_ref()
        .map_or("anonymous", |a| a.principal.name.as_str());
    let tls = session
        .digest()
        .and_then(|d| d.ssl_digest.as_ref())
        .map(|t| t.version.to_string());
    let facts = Facts {
        principal,
        auth: auth.as_ref().map(|a| (a.method, a.signed_at)),
        source_ip: session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip()),
        tls: tls.as_deref(),
        headers: &session.req_header().headers,
        query: &ctx.query,
        operation: op,
        upstream: route.map(|r| r.upstream.name.as_str()),
        owner: route.and_then(|r| r.rules.owner.as_deref()),
        initiator: ctx.initiator.as_deref(),
    };
    let keys = crate::policy::context::build(&facts, now);
    let mut needs = actions::needs(op, ctx.bucket.as_deref(), ctx.key.as_deref());
    needs.extend(actions::header_needs(
        op,
        &session.req_header().headers,
        ctx.bucket.as_deref(),
        ctx.key.as_deref(),
    ));
    let set = store.current();
    let decision = set.decide(principal, &needs, &keys);
    let shadow = state.mode == PolicyMode::Shadow;
    ctx.decision = Some(decision.clone());
    let m = crate::metrics::get();
    if decision.statements.is_empty() {
        m.decisions.inc(&[decision.effect.as_str(), ""]);
    }
    for s in &decision.statements {
        m.decisions.inc(&[decision.effect.as_str(), s]);
    }
    if decision.allowed() {
        return Ok(());
    }
    let by = if decision.statements.is_empty() {
        "no statement allows it".to_string()
    } else {
        decision.statements.join(", ")
    };
    let needed: Vec<String> = needs
        .iter()
        .map(|n| format!("{} on {}", n.action, n.resource))
        .collect();
    tracing::info!(
        request_id = %ctx.request_id,
        principal,
        operation = op.name(),
        needs = %needed.join(", "),
        statements = %by,
        mode = if shadow { "shadow" } else { "enforce" },
        "access denied by policy"
    );
    if shadow {
        return Ok(());
    }
    Err(err(S3ErrorCode::AccessDenied, "Access Denied"))
}

/// The upload an operation acts on.
pub fn upload_id_of(op: &Operation) -> Option<&str> {
    match op {
        Operation::UploadPart { upload_id, .. }
        | Operation::UploadPartCopy { upload_id, .. }
        | Operation::CompleteMultipartUpload { upload_id }
        | Operation::AbortMultipartUpload { upload_id }
        | Operation::ListParts { upload_id } => Some(upload_id),
        _ => None,
    }
}

/// Parse the request into an S3 operation and authenticate it. `None`:
/// an unsigned (anonymous) request.
fn identify(
    state: &GatewayState,
    session: &Session,
    ctx: &mut RequestCtx,
    now: SystemTime,
) -> S3Result<Option<Authenticated>> {
    let req = session.req_header();
    let headers = &req.headers;
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri.authority().map(|a| a.as_str()));
    let raw_path = req.uri.path();
    let query = Query::parse(req.uri.query()).ok_or_else(|| {
        err(
            S3ErrorCode::InvalidArgument,
            "The query string is not valid UTF-8",
        )
    })?;
    let addr = address(host, raw_path, &state.config.hostnames)?;
    check_headers(headers)?;
    let copy_source = headers
        .get("x-amz-copy-source")
        .and_then(|v| v.to_str().ok());
    let op = Operation::parse(req.method.as_str(), &addr, &query, copy_source)?;
    ctx.bucket = addr.bucket.clone();
    ctx.key = addr.key.clone();
    ctx.operation = Some(op);
    let view = RequestView {
        method: req.method.as_str(),
        raw_path,
        query: &query,
        headers,
    };
    let identity = authenticate(&view, &addr, &state.principals, &state.config.region, now);
    ctx.query = query;
    match identity {
        Ok(Identity::Signed(a)) => {
            ctx.principal = Some(a.principal.clone());
            ctx.auth_method = Some(a.method);
            Ok(Some(a))
        }
        Ok(Identity::Anonymous) => Ok(None),
        Err(e) => {
            crate::metrics::get()
                .auth_failures
                .inc(&[e.error.code.as_str()]);
            ctx.access_key_id = e.access_key_id;
            Err(e.error)
        }
    }
}

/// Every `x-amz-*` header must be visible ASCII and appear once: a value
/// the verifier and the re-signer would read differently, or a second
/// copy the upstream might prefer, must not reach the upstream.
fn check_headers(headers: &http::HeaderMap) -> S3Result<()> {
    for name in headers.keys() {
        let n = name.as_str();
        if !n.starts_with("x-amz-") && n != "host" {
            continue;
        }
        let mut values = headers.get_all(name).iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(err(
                S3ErrorCode::InvalidArgument,
                format!("The header {n} appears more than once"),
            ));
        }
        if first.is_some_and(|v| v.to_str().is_err()) {
            return Err(err(
                S3ErrorCode::InvalidArgument,
                format!("The header {n} must be ASCII (encode non-ASCII metadata, e.g. RFC 2047)"),
            ));
        }
    }
    Ok(())
}

fn header_u64(session: &Session, name: &str) -> S3Result<Option<u64>> {
    match session.req_header().headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| {
                err(
                    S3ErrorCode::InvalidArgument,
                    format!("{name} is not a number"),
                )
            }),
    }
}

/// Decide the upstream framing and set up verification of the body.
async fn prepare_body(
    session: &mut Session,
    ctx: &mut RequestCtx,
    payload: &PayloadMode,
) -> S3Result<()> {
    let content_length = header_u64(session, "content-length")?;
    let headers = &session.req_header().headers;
    let chunked_te = headers
        .get("transfer-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let has_body = content_length.map_or(chunked_te, |l| l > 0);
    ctx.upstream_payload_hash = match &payload {
        PayloadMode::Sha256(h) => hex::encode(h),
        _ => "UNSIGNED-PAYLOAD".into(),
    };
    if payload.is_aws_chunked() {
        ctx.aws_chunked = true;
        let decoded = header_u64(session, "x-amz-decoded-content-length")?.ok_or_else(|| {
            err(
                S3ErrorCode::MissingContentLength,
                "aws-chunked uploads must send x-amz-decoded-content-length",
            )
        })?;
        if !has_body {
            return Err(err(
                S3ErrorCode::IncompleteBody,
                "The aws-chunked body is empty",
            ));
        }
        let mut verifier = BodyVerifier::new(payload, headers, Some(decoded))?;
        ctx.upstream_length = Some(decoded);
        let trailer = headers
            .get("x-amz-trailer")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| ChecksumAlgorithm::from_header(t.trim()));
        let reframe = ctx
            .route
            .as_ref()
            .is_some_and(|r| r.upstream.checksum_trailers);
        if let (Some(alg), true) = (trailer, reframe) {
            // The client's checksum goes upstream in a trailer of our own
            // framing; the final chunk only leaves once the body verified.
            let r = Reframer::new(alg);
            ctx.upstream_length = Some(r.encoded_length(decoded)?);
            ctx.decoded_length = Some(decoded);
            ctx.upstream_payload_hash = "STREAMING-UNSIGNED-PAYLOAD-TRAILER".into();
            ctx.reframer = Some(r);
            ctx.verifier = Some(verifier);
        } else if decoded == 0 {
            // Nothing would be left to hold back: read and verify the whole
            // (small) body before the upstream sees a complete request.
            ctx.continue_sent = send_continue(session).await?;
            ctx.body_prebuffered = Some(prebuffer(session, &mut verifier).await?);
        } else {
            ctx.verifier = Some(verifier);
        }
        return Ok(());
    }
    if has_body {
        let Some(len) = content_length else {
            return Err(err(
                S3ErrorCode::MissingContentLength,
                "You must provide the Content-Length HTTP header.",
            ));
        };
        ctx.upstream_length = Some(len);
        ctx.verifier = Some(BodyVerifier::new(payload, headers, Some(len))?);
        return Ok(());
    }
    if let PayloadMode::Sha256(h) = &payload {
        if hex::encode(h) != crate::auth::crypto::EMPTY_SHA256 {
            return Err(err(
                S3ErrorCode::XAmzContentSHA256Mismatch,
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
    }
    if content_length.is_some() {
        ctx.upstream_length = Some(0);
    }
    Ok(())
}

/// Answer `Expect: 100-continue` ourselves when we read the body before
/// there is an upstream to answer it.
async fn send_continue(session: &mut Session) -> S3Result<bool> {
    let expects = session
        .req_header()
        .headers
        .get("expect")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if !expects {
        return Ok(false);
    }
    let h = pingora::http::ResponseHeader::build(100, Some(0))
        .map_err(|_| err(S3ErrorCode::InternalError, "cannot build 100 Continue"))?;
    session
        .write_response_header(Box::new(h), false)
        .await
        .map_err(|_| err(S3ErrorCode::IncompleteBody, "the client went away"))?;
    Ok(true)
}

async fn prebuffer(session: &mut Session, verifier: &mut BodyVerifier) -> S3Result<Bytes> {
    let mut out = BytesMut::new();
    let mut seen = 0usize;
    loop {
        let piece = session
            .downstream_session
            .read_request_body()
            .await
            .map_err(|_| {
                err(
                    S3ErrorCode::IncompleteBody,
                    "The request body terminated unexpectedly",
                )
            })?;
        let eos = piece.is_none();
        if let Some(p) = &piece {
            seen += p.len();
            if seen > MAX_PREBUFFER {
                return Err(err(
                    S3ErrorCode::InvalidRequest,
                    "aws-chunked framing of an empty object is too long",
                ));
            }
        }
        out.extend_from_slice(&verifier.filter(piece, eos)?);
        if eos {
            return Ok(out.freeze());
        }
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
