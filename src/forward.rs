//! The upstream request: path and query rendered from the decided
//! operation (never copied from the client), the client's headers without
//! its authentication and aws-chunked framing, re-signed with the
//! upstream's credentials.

use std::time::SystemTime;

use pingora::http::RequestHeader;

use crate::context::RequestCtx;
use crate::resign::sign_request;
use crate::s3::uri::{encode_component, encode_path};
use crate::s3::{err, Operation, S3ErrorCode, S3Result};

/// Headers of the client's own authentication and framing, never forwarded.
const CLIENT_ONLY: &[&str] = &[
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// Headers some servers read as "run another method": never forwarded,
/// since the gateway's signature would vouch for them.
const METHOD_OVERRIDES: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
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
        .plan
        .route
        .as_ref()
        .ok_or_else(|| err(S3ErrorCode::InternalError, "no route"))?;
    let up = &route.upstream;
    let bucket = route.target.as_deref();
    let decided = ctx
        .request
        .as_ref()
        .ok_or_else(|| err(S3ErrorCode::InternalError, "no decided request"))?;
    // On a store without versions, `versionId=null` names the current
    // object: decided as asked (the version's permission), sent without it.
    let unversioned;
    let request = if up.versioning || !decided.op.names_version() {
        decided
    } else {
        let mut r = decided.clone();
        r.op.drop_null_versions();
        unversioned = r;
        &unversioned
    };
    let (host, path) = up.locate(bucket, request.key.as_deref());
    let query = request.upstream_query();
    let path_and_query = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let uri: http::Uri = path_and_query.parse().map_err(|e| {
        err(
            S3ErrorCode::InvalidRequest,
            format!("The request cannot be re-addressed upstream ({e})"),
        )
    })?;
    req.set_uri(uri);
    let bad_header = |e: pingora::BError| {
        err(
            S3ErrorCode::InternalError,
            format!("invalid header value: {e}"),
        )
    };
    if let Some(post) = &ctx.post {
        post_object_headers(req, post, ctx.plan.framing.upstream_length.is_none())?;
    }
    req.insert_header("host", host.as_str())
        .map_err(bad_header)?;
    for h in CLIENT_ONLY.iter().chain(METHOD_OVERRIDES) {
        req.remove_header(*h);
    }
    let framing = &ctx.plan.framing;
    if framing.aws_chunked {
        for h in CHUNKED_ONLY {
            req.remove_header(*h);
        }
        strip_aws_chunked_encoding(req)?;
        let reframer = match &ctx.plan.body {
            crate::context::BodyPlan::Verify {
                reframer: Some(r), ..
            } => Some(r),
            _ => None,
        };
        match (reframer, framing.reframed_decoded) {
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
    // COS names the service instance a new bucket belongs to, and whose
    // buckets a listing shows, by this header (IAM tokens span instances).
    if let (Some(id), Operation::CreateBucket | Operation::ListBuckets) =
        (&up.service_instance_id, &request.op)
    {
        req.insert_header("ibm-service-instance-id", id.as_str())
            .map_err(bad_header)?;
    }
    if let Some(owner) = &ctx.decided.inject_owner {
        req.insert_header("x-amz-expected-bucket-owner", owner.as_str())
            .map_err(bad_header)?;
    }
    if let Some(payer) = &request.payer_in_query {
        // A presigned URL's payer parameter goes upstream as the header.
        req.insert_header("x-amz-request-payer", payer.as_str())
            .map_err(bad_header)?;
    }
    if framing.continue_sent {
        req.remove_header("expect");
    }
    if let Some(len) = framing.upstream_length {
        req.remove_header("transfer-encoding");
        req.insert_header("content-length", len.to_string())
            .map_err(bad_header)?;
    }
    if let (Some(op_src), Some(target)) = (request.op.copy_source(), &ctx.plan.copy_source_target) {
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
    req.insert_header("x-amz-content-sha256", framing.payload_hash.as_str())
        .map_err(bad_header)?;
    let scheme = if up.endpoint.tls { "https" } else { "http" };
    let full_uri = format!(
        "{scheme}://{host}{}",
        req.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    // An access point or Outposts ARN brings its own region and signing name.
    let (region, service) = up.signing(bucket);
    let signed = sign_request(
        req.method.as_str(),
        &full_uri,
        &req.headers,
        &framing.payload_hash,
        &crate::resign::SignFor {
            region: &region,
            service,
            credentials,
        },
        SystemTime::now(),
    )?;
    for (name, value) in signed {
        req.insert_header(name, value).map_err(bad_header)?;
    }
    Ok(())
}

/// A POST Object goes upstream as PutObject: none of the client's headers
/// (the form's are not signed by its policy: only its fields are), but the
/// object headers its fields decided. Its length is known (the file's, from
/// the request's Content-Length): chunked only when it is not.
fn post_object_headers(
    req: &mut RequestHeader,
    post: &crate::post::PostUpload,
    chunked: bool,
) -> S3Result<()> {
    let bad_header = |e: pingora::BError| {
        err(
            S3ErrorCode::InternalError,
            format!("invalid header value: {e}"),
        )
    };
    req.set_method(http::Method::PUT);
    let names: Vec<http::HeaderName> = req.headers.keys().cloned().collect();
    for n in names {
        if n != http::header::USER_AGENT {
            req.remove_header(&n);
        }
    }
    for (n, v) in &post.headers {
        req.insert_header(n.clone(), v.clone())
            .map_err(bad_header)?;
    }
    if chunked {
        req.insert_header("transfer-encoding", "chunked")
            .map_err(bad_header)?;
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
        req.insert_header("content-encoding", joined).map_err(|e| {
            err(
                S3ErrorCode::InternalError,
                format!("invalid header value: {e}"),
            )
        })?;
    }
    Ok(())
}
