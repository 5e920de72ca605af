//! POST Object admission (browser-based uploads). The signature, the key
//! and the object's headers are in the form, so this stage reads the
//! fields before the file part (bounded), then runs the same stages as
//! every request: authenticate (the form's signature), check the POST
//! policy, route, and decide the request as the PutObject it becomes — on
//! the final key, with the headers its fields imply (an `acl` field needs
//! `s3:PutObjectAcl`), with the bucket rules applied. The file part then
//! streams upstream (`post::FormBody`) as a PutObject whose Content-Length
//! is the file's exact length, known from the request's (which is required,
//! as S3 requires it); a form read whole already (small) is sent by the
//! gateway itself.

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use pingora::http::RequestHeader;
use pingora::proxy::Session;

use super::decide::{self, Inputs, Who};
use super::view::RequestView;
use super::Admission;
use crate::context::{BodyPlan, Framing, RequestCtx};
use crate::post::form::{boundary, FormHead, HeadParser};
use crate::post::policy::PostPolicy;
use crate::post::{answer, upstream_headers, FormBody, PostUpload};
use crate::s3::{err, Addressed, Operation, S3ErrorCode, S3Request, S3Result};
use crate::state::GatewayState;
use crate::upstream_client::Reply;

/// Whether a request is a POST Object: `POST /bucket` without a query.
pub fn is_post_object(view: &RequestView<'_>, addr: &Addressed) -> bool {
    view.method == "POST"
        && addr.bucket.is_some()
        && addr.key.is_none()
        && view.raw_query.is_none_or(|q| q.is_empty())
}

/// Read the form up to the file part's content: its fields, the bytes
/// read past them, and how many bytes of the body were read in all.
async fn read_head(session: &mut Session, boundary: &str) -> S3Result<(FormHead, Bytes, u64)> {
    let mut parser = HeadParser::new(boundary);
    let mut read = 0u64;
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
        let Some(piece) = piece else {
            return Err(parser.finish());
        };
        read += piece.len() as u64;
        if let Some((head, rest)) = parser.push(&piece)? {
            return Ok((head, rest, read));
        }
    }
}

/// `${filename}` in the key stands for the file's name (without the
/// folders some browsers send).
fn final_key(key: &str, filename: Option<&str>) -> String {
    let name = filename.unwrap_or("");
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    key.replace("${filename}", base)
}

/// The headers the decision reads: the form's object headers and the
/// client's own descriptive ones.
fn decision_headers(view: &RequestView<'_>, post: &PostUpload) -> HeaderMap {
    let mut h = HeaderMap::new();
    for n in ["host", "user-agent", "referer", "origin"] {
        if let Some(v) = view.headers.get(n) {
            h.insert(n, v.clone());
        }
    }
    for (n, v) in &post.headers {
        h.insert(n.clone(), v.clone());
    }
    h
}

pub async fn admit(
    state: &GatewayState,
    session: &mut Session,
    ctx: &mut RequestCtx,
    view: &RequestView<'_>,
    addr: &Addressed,
    now: SystemTime,
) -> S3Result<Admission> {
    let bucket = addr.bucket.clone().unwrap_or_default();
    let resource = format!("/{bucket}");
    let ct = view.header("content-type").unwrap_or("");
    let boundary = boundary(ct).map_err(|e| e.with_resource(resource.clone()))?;
    // S3 requires a POST's length; the file's exact length, and so the
    // upstream PutObject's Content-Length, follows from it.
    let content_length = match super::body::length_facts(view.headers)? {
        (Some(n), false) => n,
        _ => {
            return Err(err(
                S3ErrorCode::MissingContentLength,
                "You must provide the Content-Length HTTP header.",
            ))
        }
    };
    let continue_sent = super::body::send_continue(session).await?;
    let (head, rest, read) = read_head(session, &boundary).await?;
    let before = read.saturating_sub(rest.len() as u64);
    let fields: Vec<(String, String)> =
        head.fields.into_iter().map(|f| (f.name, f.value)).collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if fields
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("bucket") && *v != bucket)
    {
        return Err(err(
            S3ErrorCode::InvalidArgument,
            "The bucket field does not name the bucket the form was posted to",
        ));
    }
    let key_field = field("key").ok_or_else(|| {
        err(
            S3ErrorCode::InvalidArgument,
            "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.",
        )
    })?;
    let key = final_key(key_field, head.file.filename.as_deref());
    if key.is_empty() {
        return Err(err(
            S3ErrorCode::InvalidArgument,
            "The key must not be empty",
        ));
    }
    crate::s3::operation::check_key(&key)?;
    ctx.operation = Some(Operation::PutObject);
    ctx.bucket = Some(bucket.clone());
    ctx.key = Some(key.clone());
    // 2. authenticate: the form's signature of its policy.
    let auth =
        match crate::auth::post::verify_form(field, &state.principals, &state.config.region, now) {
            Ok(a) => a,
            Err(e) => {
                crate::metrics::get()
                    .auth_failures
                    .inc(&[e.error.code.as_str()]);
                ctx.identity.access_key_id = e.access_key_id;
                return Err(e.error);
            }
        };
    // The policy's conditions read the key as it will be stored.
    let checked: Vec<(String, String)> = fields
        .iter()
        .map(|(n, v)| {
            let v = if n.eq_ignore_ascii_case("key") {
                key.clone()
            } else {
                v.clone()
            };
            (n.clone(), v)
        })
        .collect();
    let mut range = None;
    if let (Some(_), Some(doc)) = (&auth, field("policy")) {
        let policy = PostPolicy::parse(doc)?;
        policy.check(&checked, &bucket, now)?;
        range = policy.length_range();
    }
    if let Some(a) = &auth {
        ctx.identity.principal = Some(a.principal.clone());
        ctx.identity.method = Some(a.method);
    }
    let host = view.host.unwrap_or("localhost");
    let scheme = if view.tls.is_some() { "https" } else { "http" };
    let upload = PostUpload {
        bucket: bucket.clone(),
        key: key.clone(),
        status: answer::success_status(field("success_action_status")),
        redirect: answer::redirect(field("success_action_redirect").or(field("redirect"))),
        origin: format!("{scheme}://{host}"),
        headers: upstream_headers(&fields)?,
        answer_body: None,
    };
    // 3. route, 4. decide: as the PutObject it becomes.
    let req = S3Request {
        op: Operation::PutObject,
        bucket: Some(bucket.clone()),
        key: Some(key.clone()),
        params: Vec::new(),
        payer_in_query: None,
    };
    let headers = decision_headers(view, &upload);
    let put_view = RequestView {
        method: "PUT",
        raw_path: view.raw_path,
        raw_query: None,
        host: view.host,
        headers: &headers,
        source_ip: view.source_ip,
        tls: view.tls,
    };
    let decider = state.decider();
    let routed = decide::route(&decider, &req)?;
    let who = Who::of(auth.as_ref());
    let verdict = decide::decide(
        &decider,
        &Inputs {
            view: &put_view,
            request: &req,
            who,
            routed: &routed,
            initiator: None,
            content_length: None,
            now,
        },
    );
    super::record_decision(ctx, &req, who.principal, &verdict, decider.shadow);
    if let Some(log) = &state.decision_log {
        super::log_decision(
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
    ctx.plan.route = routed.route.clone();
    ctx.request = Some(req);
    ctx.post = Some(Box::new(upload));
    // 5. body: the file part only, streamed (or, read whole already, sent
    // by the gateway).
    let file_length = crate::post::file_length(content_length, before, &boundary, true)?;
    let form = FormBody::new(&boundary, rest, range).expect(file_length)?;
    let framing = Framing {
        continue_sent,
        upstream_length: Some(file_length),
        ..Framing::default()
    };
    ctx.plan.framing = framing;
    if session.is_body_done() {
        return send_whole(state, ctx, form).await.map(Admission::Relay);
    }
    ctx.plan.body = BodyPlan::Form(Box::new(form));
    Ok(Admission::Forward)
}

/// A form read to its end during admission: the gateway sends the
/// PutObject itself (rendered and signed as a forwarded one) and answers.
async fn send_whole(state: &GatewayState, ctx: &mut RequestCtx, form: FormBody) -> S3Result<Reply> {
    let file = form.whole()?;
    ctx.outcome.bytes_in += file.len() as u64;
    ctx.plan.framing.upstream_length = Some(file.len() as u64);
    ctx.plan.framing.payload_hash = crate::auth::crypto::sha256_hex(&file);
    let route = ctx
        .plan
        .route
        .clone()
        .ok_or_else(|| err(S3ErrorCode::InternalError, "no route"))?;
    let credentials = route.upstream.credentials.get().await?;
    let mut req = RequestHeader::build("PUT", b"/", None).map_err(|_| {
        err(
            S3ErrorCode::InternalError,
            "cannot build the upstream request",
        )
    })?;
    ctx.plan.upstream_key_id = Some(credentials.access_key_id.clone());
    crate::forward::rewrite(&mut req, ctx, &credentials)?;
    let reply = state
        .client
        .send_prepared(&route.upstream, route.target.as_deref(), req, file)
        .await?;
    let Some(post) = ctx.post.as_deref() else {
        return Ok(reply);
    };
    if reply.status != 200 {
        return Ok(reply);
    }
    let a = answer::success(post, reply.header("etag"));
    let mut headers = HeaderMap::new();
    for (n, v) in a.headers {
        headers.insert(n, v);
    }
    if let Some(v) = reply
        .header("x-amz-version-id")
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        headers.insert("x-amz-version-id", v);
    }
    Ok(Reply {
        status: a.status,
        headers,
        body: Bytes::from(a.body),
    })
}
