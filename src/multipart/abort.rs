//! The abort flow. An abort is not instant: a part upload in flight may
//! still land, so S3 advises checking ListParts and aborting again.
//!
//! refuse new parts here → wait for in-flight parts (drain_in_flight) →
//! ListParts (what is being freed) → abort upstream → ListParts to verify →
//! while parts remain, abort again with backoff (max_attempts) → answer as
//! S3 would.

use std::time::Duration;

use bytes::Bytes;
use pingora::http::RequestHeader;

use super::inflight::InFlight;
use crate::audit::record::Parts;
use crate::route::Upstream;
use crate::s3::S3Error;
use crate::upstream_client::{Call, Reply, UpstreamClient};

/// `multipart.abort` of the config.
pub use crate::config::AbortSettings;

/// What happened, for the client and the audit record.
pub struct AbortResult {
    /// The upstream answer to relay (the first error, or the abort's reply).
    pub reply: Reply,
    pub parts_before: Option<Parts>,
    pub attempts: u32,
    pub parts_remaining: Option<u64>,
    /// aborted | no_such_upload | parts_remaining | upstream_error
    pub outcome: crate::audit::record::Outcome,
}

/// Where the upload lives upstream, and the headers every call carries.
pub struct Target<'a> {
    pub upstream: &'a Upstream,
    pub bucket: &'a str,
    pub key: &'a str,
    pub upload_id: &'a str,
    /// x-amz-expected-bucket-owner / x-amz-request-payer to send along.
    pub headers: Vec<(&'static str, String)>,
}

/// ListParts: Some(parts) or None when the upload no longer exists.
async fn list_parts(
    client: &UpstreamClient,
    t: &Target<'_>,
) -> Result<Result<Option<Parts>, Reply>, S3Error> {
    let mut parts = Parts { count: 0, bytes: 0 };
    let mut marker: Option<String> = None;
    loop {
        let mut query = vec![("uploadId", t.upload_id.to_string())];
        if let Some(m) = &marker {
            query.push(("part-number-marker", m.clone()));
        }
        let call = Call {
            method: "GET",
            bucket: Some(t.bucket),
            key: Some(t.key),
            query,
            headers: t.headers.clone(),
            body: Bytes::new(),
        };
        let reply = client.send(t.upstream, call).await?;
        if reply.status == 404 {
            return Ok(Ok(None));
        }
        if reply.status != 200 {
            return Ok(Err(reply));
        }
        let (sizes, truncated) = crate::s3::xml::list_parts(&reply.body);
        parts.count += sizes.len() as u64;
        parts.bytes += sizes.iter().sum::<u64>();
        let next = crate::s3::xml::first_text(&reply.body, "NextPartNumberMarker");
        match (truncated, next) {
            (true, Some(n)) if Some(&n) != marker.as_ref() => marker = Some(n),
            _ => return Ok(Ok(Some(parts))),
        }
    }
}

/// Run the flow. `abort_request` builds a freshly signed upstream abort
/// request for each attempt.
pub async fn run(
    client: &UpstreamClient,
    inflight: &std::sync::Arc<InFlight>,
    inflight_key: &str,
    t: &Target<'_>,
    settings: &AbortSettings,
    abort_request: impl Fn() -> Result<RequestHeader, S3Error>,
) -> Result<AbortResult, S3Error> {
    let _refusing_parts = inflight.begin_abort(inflight_key);
    let still = inflight.drain(inflight_key, settings.drain_in_flight).await;
    if still > 0 {
        tracing::warn!(
            upload_id = t.upload_id,
            in_flight = still,
            "aborting with part uploads still in flight on this replica"
        );
    }
    // An error listing parts does not stop the abort; it is reported as unknown.
    let parts_before = list_parts(client, t).await?.unwrap_or_default();
    let mut attempts = 0u32;
    let mut backoff = Duration::from_millis(100);
    loop {
        attempts += 1;
        let reply = client
            .send_prepared(t.upstream, Some(t.bucket), abort_request()?, Bytes::new())
            .await?;
        let gone = reply.status == 404 && reply.error_code().as_deref() == Some("NoSuchUpload");
        if !(reply.status < 300 || (gone && attempts > 1)) {
            let outcome = if gone {
                crate::audit::record::Outcome::NoSuchUpload
            } else {
                crate::audit::record::Outcome::UpstreamError
            };
            return Ok(AbortResult {
                reply,
                parts_before,
                attempts,
                parts_remaining: None,
                outcome,
            });
        }
        if !settings.verify {
            return Ok(AbortResult {
                reply,
                parts_before,
                attempts,
                parts_remaining: None,
                outcome: crate::audit::record::Outcome::Aborted,
            });
        }
        let remaining = match list_parts(client, t).await? {
            Ok(None) => 0,
            Ok(Some(p)) => p.count,
            Err(_) => u64::MAX,
        };
        if remaining == 0 {
            return Ok(AbortResult {
                reply: success(reply),
                parts_before,
                attempts,
                parts_remaining: Some(0),
                outcome: crate::audit::record::Outcome::Aborted,
            });
        }
        if attempts >= settings.max_attempts.max(1) {
            let known = (remaining != u64::MAX).then_some(remaining);
            return Ok(AbortResult {
                reply: success(reply),
                parts_before,
                attempts,
                parts_remaining: known,
                outcome: crate::audit::record::Outcome::PartsRemaining,
            });
        }
        tracing::info!(
            upload_id = t.upload_id,
            attempts,
            remaining,
            "parts remain after abort; aborting again"
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// The client sees S3's answer to an abort: 204, even when a repeated
/// abort found the upload already gone.
fn success(mut reply: Reply) -> Reply {
    if reply.status >= 300 {
        reply.status = 204;
        reply.body = Bytes::new();
    }
    reply
}
