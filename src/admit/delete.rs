//! The DeleteObjects stage: the keys are in the body, so each is decided on
//! its own (`s3:DeleteObject`, or `s3:DeleteObjectVersion` with a
//! VersionId), as S3 does. Only the allowed keys go upstream, in a body the
//! gateway writes (with its own checksum); the refused ones come back as
//! per-key `AccessDenied` errors merged into the `DeleteResult`.

use base64::Engine as _;
use bytes::Bytes;
use pingora::proxy::Session;
use sha2::{Digest, Sha256};

use super::body::{self, BodyPlan};
use super::decide::Decider;
use crate::auth::PayloadMode;
use crate::context::RequestCtx;
use crate::policy::actions::delete_needs;
use crate::policy::condition::ContextKeys;
use crate::s3::delete::{self as doc, DeleteEntry};
use crate::s3::{err, S3ErrorCode, S3Result};
use crate::state::GatewayState;
use crate::upstream_client::Reply;

/// Headers of the client's body that describe a body the upstream will
/// not receive.
const BODY_HEADERS: &[&str] = &[
    "content-md5",
    "x-amz-checksum-crc32",
    "x-amz-checksum-crc32c",
    "x-amz-checksum-crc64nvme",
    "x-amz-checksum-sha1",
    "x-amz-checksum-sha256",
    "x-amz-checksum-type",
    "x-amz-sdk-checksum-algorithm",
    "x-amz-trailer",
    "x-amz-decoded-content-length",
    "content-encoding",
    "transfer-encoding",
    "expect",
];

/// Which keys may be deleted: `Ok` allowed, `Err` the refusal. Each key's
/// policy decision goes to the decision log when there is one.
pub fn decide_keys<'a>(
    d: &Decider<'_>,
    log: Option<&crate::decision_log::DecisionLog>,
    ctx: &RequestCtx,
    principal: &str,
    keys: &ContextKeys,
    headers: &http::HeaderMap,
    objects: &'a [DeleteEntry],
) -> Vec<(&'a DeleteEntry, Result<(), &'static str>)> {
    let bucket = ctx.bucket.as_deref().unwrap_or("");
    let set = d.policies.clone();
    objects
        .iter()
        .map(|o| {
            let reserved = match (d.reserved, &ctx.plan.route) {
                (Some(r), Some(route)) => r.covers(route, &o.key),
                _ => false,
            };
            if reserved {
                return (o, Err("reserved"));
            }
            let unversioned = ctx
                .plan
                .route
                .as_ref()
                .is_some_and(|r| !r.upstream.versioning);
            if unversioned && o.version_id.as_deref().is_some_and(|v| v != "null") {
                return (o, Err("unversioned"));
            }
            let Some(set) = &set else {
                return (o, Ok(()));
            };
            let mut k = keys.clone();
            if let Some(v) = &o.version_id {
                k.insert("s3:versionid".into(), vec![v.clone()]);
            }
            let needs = delete_needs(bucket, &o.key, o.version_id.as_deref(), headers);
            let decision = set.decide(principal, &needs, &k);
            if let Some(log) = log {
                log.record(&crate::decision_log::Decided {
                    request_id: &ctx.request_id,
                    operation: "DeleteObjects",
                    principal,
                    bucket: Some(bucket),
                    key: Some(&o.key),
                    needs: &needs,
                    keys: &k,
                    rules: ctx
                        .plan
                        .route
                        .as_ref()
                        .map(|r| (r.upstream.name.as_str(), r.rules.as_ref())),
                    decision: &decision,
                    shadow: d.shadow && !decision.allowed(),
                    policy_version: Some(set.version.as_str()),
                });
            }
            if decision.allowed() || d.shadow {
                (o, Ok(()))
            } else {
                (o, Err("denied"))
            }
        })
        .collect()
}

pub async fn delete_objects(
    state: &GatewayState,
    session: &mut Session,
    ctx: &mut RequestCtx,
    payload: &PayloadMode,
    principal: &str,
    keys: &ContextKeys,
    decider: &Decider<'_>,
) -> S3Result<Reply> {
    let (content_length, _) = body::length_facts(&session.req_header().headers)?;
    if content_length.is_some_and(|l| l > doc::MAX_BODY as u64) {
        return Err(err(
            S3ErrorCode::MalformedXML,
            "The DeleteObjects document is larger than 1,000 keys can be",
        ));
    }
    // The body is small: read and verify it whole before anything goes up.
    let (_, plan) = body::prepare(session, payload, false, false).await?;
    let xml = match plan {
        BodyPlan::Empty => Bytes::new(),
        BodyPlan::Prebuffered(b) => b.unwrap_or_default(),
        BodyPlan::Verify { mut verifier, .. } => {
            body::send_continue(session).await?;
            body::read_verified(session, &mut verifier, doc::MAX_BODY).await?
        }
        BodyPlan::Form(_) => {
            return Err(err(
                S3ErrorCode::InternalError,
                "DeleteObjects carries no form",
            ))
        }
    };
    ctx.outcome.bytes_in += xml.len() as u64;
    let request = doc::parse(&xml)?;
    let headers = session.req_header().headers.clone();
    let log = state.decision_log.as_ref();
    let decided = decide_keys(
        decider,
        log,
        ctx,
        principal,
        keys,
        &headers,
        &request.objects,
    );
    let allowed: Vec<&DeleteEntry> = decided
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(o, _)| *o)
        .collect();
    let refused: Vec<(&DeleteEntry, &str, &str)> = decided
        .iter()
        .filter_map(|(o, r)| match r {
            Ok(()) => None,
            Err("unversioned") => Some((
                *o,
                "InvalidArgument",
                "The upstream keeps no object versions: this VersionId cannot be honoured",
            )),
            Err(_) => Some((*o, "AccessDenied", "Access Denied")),
        })
        .collect();
    if !refused.is_empty() {
        tracing::info!(
            request_id = %ctx.request_id,
            principal,
            refused = refused.len(),
            allowed = allowed.len(),
            "DeleteObjects: keys denied by policy"
        );
    }
    let errors = doc::render_errors(&refused);
    if allowed.is_empty() {
        let body = doc::merge_result(None, &errors).unwrap_or_default();
        return Ok(Reply {
            status: 200,
            headers: xml_headers(),
            body: Bytes::from(body),
        });
    }
    // On a store without versions the null version is the current object:
    // decided as a version delete, sent without it.
    let unversioned = ctx
        .plan
        .route
        .as_ref()
        .is_some_and(|r| !r.upstream.versioning);
    let sent: Vec<DeleteEntry> = allowed
        .iter()
        .map(|o| DeleteEntry {
            key: o.key.clone(),
            version_id: o.version_id.clone().filter(|_| !unversioned),
        })
        .collect();
    let new_body = Bytes::from(doc::render(request.quiet, &sent.iter().collect::<Vec<_>>()));
    let digest = Sha256::digest(&new_body);
    let mut req = session.req_header().clone();
    for h in BODY_HEADERS {
        req.remove_header(*h);
    }
    req.insert_header(
        "x-amz-checksum-sha256",
        base64::engine::general_purpose::STANDARD.encode(digest),
    )
    .map_err(|_| err(S3ErrorCode::InternalError, "invalid header value"))?;
    ctx.plan.framing = body::Framing {
        upstream_length: Some(new_body.len() as u64),
        payload_hash: hex::encode(digest),
        ..body::Framing::default()
    };
    let route = ctx
        .plan
        .route
        .as_ref()
        .ok_or_else(|| err(S3ErrorCode::InternalError, "no route"))?;
    let credentials = route.upstream.credentials.get().await?;
    crate::forward::rewrite(&mut req, ctx, &credentials)?;
    let target = route.target.as_deref();
    let reply = state
        .client
        .send_prepared(&route.upstream, target, req, new_body)
        .await?;
    if reply.status != 200 || refused.is_empty() {
        return Ok(reply);
    }
    match doc::merge_result(Some(&reply.body), &errors) {
        Some(merged) => Ok(Reply {
            body: Bytes::from(merged),
            ..reply
        }),
        None => Err(err(
            S3ErrorCode::BadGateway,
            "The upstream's DeleteResult could not be read",
        )),
    }
}

fn xml_headers() -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    h
}
