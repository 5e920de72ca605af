//! The reaper: a background task that aborts multipart uploads left
//! incomplete longer than their bucket's `abort_incomplete_after`, through
//! the same abort flow as a client's abort (drain, ListParts, abort,
//! verify, retry), each with an audit record whose principal is
//! `s3gate:reaper` and whose `reason` is `expired`.
//!
//! Every `multipart.reaper.every`: take the lease (when there is a state
//! bucket) → per bucket, ListMultipartUploads page by page → abort those
//! initiated before now − limit → remove ownership records of uploads
//! that no longer exist upstream. It runs on a runtime of its own (a
//! pingora background service), never on request threads, and stops
//! between uploads when the gateway shuts down.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::watch;

use super::abort::{self, AbortSettings, Target};
use super::inflight::InFlight;
use super::lease::Lease;
use super::ownership::Ownership;
use super::reaper_audit::{reaper_event, Reaped};
use crate::audit::record::Outcome;
use crate::audit::AuditLog;
use crate::route::Route;
use crate::s3::xml::ListedUpload;
use crate::s3::{err, S3Error, S3ErrorCode};
use crate::upstream_client::{Call, UpstreamClient};

/// The principal named in the reaper's audit records.
pub const PRINCIPAL: &str = "s3gate:reaper";

/// Ownership records younger than the listing by less than this are kept:
/// their upload may have been created after the listing passed its key
/// (and replicas' clocks may differ a little).
const ORPHAN_MARGIN: Duration = Duration::from_secs(10);

/// One bucket to reap.
pub struct Job {
    /// The client-visible name (ownership records and audit use it).
    pub bucket: String,
    pub route: Route,
    pub limit: Duration,
    /// Where the limit is written (`buckets.logs.abort_incomplete_after`).
    pub rule: String,
}

pub struct Reaper {
    pub jobs: Vec<Job>,
    pub every: Duration,
    pub client: Arc<UpstreamClient>,
    pub ownership: Arc<Ownership>,
    pub inflight: Arc<InFlight>,
    pub audit: Option<Arc<AuditLog>>,
    pub abort: AbortSettings,
    pub lease: Option<Lease>,
    /// The config file, named as the decision's statement file.
    pub config_file: String,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Reaper {
    /// Run rounds every `every` until `shutdown` turns true. The first
    /// round waits a random part of `every`, so replicas started together
    /// do not race for the lease in the same instant.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        use rand::Rng;
        let jitter = self
            .every
            .mul_f64(rand::thread_rng().gen_range(0.0..1.0))
            .min(Duration::from_secs(60));
        let mut wait = jitter;
        tracing::info!(buckets = self.jobs.len(), every = ?self.every, lease = self.lease.as_ref().map(|l| l.holder_name()), "reaper started");
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = tokio::time::sleep(wait) => {}
            }
            if *shutdown.borrow() {
                break;
            }
            self.round(&shutdown).await;
            wait = self.every;
        }
        tracing::info!("reaper stopped");
    }

    /// One round over every bucket.
    pub async fn round(&self, shutdown: &watch::Receiver<bool>) {
        let m = crate::metrics::get();
        if let Some(lease) = &self.lease {
            match lease.acquire(&self.client).await {
                Ok(true) => {}
                Ok(false) => {
                    m.reaper_runs.inc(&["standby"]);
                    return;
                }
                Err(e) => {
                    tracing::warn!(
                        "reaper: the lease could not be read or written: {}",
                        e.message
                    );
                    m.reaper_runs.inc(&["error"]);
                    return;
                }
            }
        }
        let mut ok = true;
        for job in &self.jobs {
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.bucket(job, shutdown).await {
                ok = false;
                tracing::warn!(bucket = %job.bucket, "reaper: {}", e.message);
            }
        }
        m.reaper_runs.inc(&[if ok { "ok" } else { "error" }]);
    }

    async fn bucket(&self, job: &Job, shutdown: &watch::Receiver<bool>) -> Result<(), S3Error> {
        let listed_at = SystemTime::now();
        let uploads = self.list(job).await?;
        let deadline = listed_at.checked_sub(job.limit).unwrap_or(UNIX_EPOCH);
        let mut live: HashSet<String> = HashSet::new();
        for u in &uploads {
            // Reaped ones lose their record in `reap`; the others keep it.
            live.insert(u.upload_id.to_ascii_lowercase());
            let initiated = crate::auth::time::parse_rfc3339(&u.initiated);
            if initiated.is_some_and(|t| t < deadline) {
                if *shutdown.borrow() {
                    return Ok(());
                }
                self.reap(job, u).await;
            }
        }
        self.sweep(job, &live, listed_at).await;
        Ok(())
    }

    /// ListMultipartUploads, every page.
    async fn list(&self, job: &Job) -> Result<Vec<ListedUpload>, S3Error> {
        let target = job.route.target.as_deref();
        let mut out = Vec::new();
        let mut marker: Option<(String, String)> = None;
        loop {
            let mut query = vec![("uploads", String::new())];
            if let Some((k, id)) = &marker {
                query.push(("key-marker", k.clone()));
                if !id.is_empty() {
                    query.push(("upload-id-marker", id.clone()));
                }
            }
            let call = Call {
                method: "GET",
                bucket: target,
                key: None,
                query,
                headers: owner_header(&job.route),
                body: Bytes::new(),
            };
            let reply = self.client.send(&job.route.upstream, call).await?;
            if reply.status != 200 {
                return Err(err(
                    S3ErrorCode::BadGateway,
                    format!(
                        "ListMultipartUploads on upstream {} answered {} {}",
                        job.route.upstream.name,
                        reply.status,
                        reply.error_code().unwrap_or_default()
                    ),
                ));
            }
            let page = crate::s3::xml::list_uploads(&reply.body).ok_or_else(|| {
                err(
                    S3ErrorCode::BadGateway,
                    "ListMultipartUploads answered a listing that does not parse",
                )
            })?;
            out.extend(page.uploads);
            match page.next {
                Some(n) if Some(&n) != marker.as_ref() => marker = Some(n),
                _ => return Ok(out),
            }
        }
    }

    /// Abort one expired upload and audit it.
    async fn reap(&self, job: &Job, u: &ListedUpload) {
        let started = Instant::now();
        let arrived = SystemTime::now();
        let m = crate::metrics::get();
        if let Some(audit) = &self.audit {
            if audit.reject_on_failure && audit.probe().await.is_err() {
                tracing::error!(bucket = %job.bucket, "reaper: the audit log is unwritable (on_failure: reject); nothing aborted");
                return;
            }
        }
        let initiator = match self.ownership.lookup(&job.bucket, &u.upload_id).await {
            Ok(Some(r)) => r.principal.clone(),
            Ok(None) => "unknown".to_string(),
            Err(e) => {
                tracing::warn!(bucket = %job.bucket, "reaper: initiator not looked up: {}", e.message);
                "unknown".to_string()
            }
        };
        let result = match self.abort_upload(job, u).await {
            Ok(r) => r,
            Err(e) => {
                m.aborts.inc(&["upstream_error"]);
                tracing::warn!(bucket = %job.bucket, "reaper: abort failed: {}", e.message);
                return;
            }
        };
        let freed = result.parts_before.map_or(0, |p| p.bytes);
        match result.outcome {
            Outcome::Aborted => {
                m.reaper_reaped.inc(&[&job.bucket]);
                m.reaper_bytes_freed.add(&[&job.bucket], freed);
            }
            // Another replica (or the client) aborted it since the listing.
            Outcome::NoSuchUpload => m.reaper_duplicates.inc(&[&job.bucket]),
            _ => {}
        }
        m.aborts.inc(&[result.outcome.as_str()]);
        if result.outcome != Outcome::UpstreamError {
            self.ownership.forget(&job.bucket, &u.upload_id).await;
        }
        tracing::info!(bucket = %job.bucket, outcome = result.outcome.as_str(), initiator = %initiator, bytes = freed, "reaper: expired upload aborted");
        let Some(audit) = &self.audit else { return };
        let event = reaper_event(Reaped {
            job,
            upload: u,
            result: &result,
            initiator,
            arrived,
            duration: started.elapsed(),
            config_file: &self.config_file,
        });
        if let Err(e) = audit.write(event).await {
            tracing::error!(bucket = %job.bucket, "reaper: audit record not written: {e}");
        }
    }

    async fn abort_upload(
        &self,
        job: &Job,
        u: &ListedUpload,
    ) -> Result<abort::AbortResult, S3Error> {
        let up = &job.route.upstream;
        let bucket = job.route.target.as_deref().unwrap_or(&job.bucket);
        let target = Target {
            upstream: up,
            bucket,
            key: &u.key,
            upload_id: &u.upload_id,
            headers: owner_header(&job.route),
        };
        let credentials = up.credentials.get().await?;
        let inflight_key = format!("{}\n{}", job.bucket, u.upload_id);
        abort::run(
            &self.client,
            &self.inflight,
            &inflight_key,
            &target,
            &self.abort,
            || {
                let call = Call {
                    method: "DELETE",
                    bucket: Some(bucket),
                    key: Some(&u.key),
                    query: vec![("uploadId", u.upload_id.clone())],
                    headers: target.headers.clone(),
                    body: Bytes::new(),
                };
                UpstreamClient::prepare(up, &call, &credentials)
            },
        )
        .await
    }

    /// Remove ownership records of uploads that no longer exist upstream
    /// (aborted or completed behind the gateway's back, or lost records of
    /// an abort whose `forget` failed).
    async fn sweep(&self, job: &Job, live: &HashSet<String>, listed_at: SystemTime) {
        let before = unix(listed_at).saturating_sub(ORPHAN_MARGIN.as_secs());
        let records = match self.ownership.records(&job.bucket).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(bucket = %job.bucket, "reaper: ownership records not listed: {}", e.message);
                return;
            }
        };
        for r in records {
            if r.created < before && !live.contains(&r.upload_id.to_ascii_lowercase()) {
                self.ownership.forget(&job.bucket, &r.upload_id).await;
                crate::metrics::get()
                    .reaper_records_removed
                    .inc(&[&job.bucket]);
            }
        }
    }
}

/// The owner a bucket's rule names, sent as `x-amz-expected-bucket-owner`
/// on the reaper's calls (enforced as on clients').
pub fn owner_header_value(route: &Route) -> Option<&str> {
    use crate::config::ExpectedBucketOwnerRule as R;
    match (&route.rules.owner, route.rules.expected_bucket_owner) {
        (Some(owner), R::Enforce | R::Require | R::Inject) => Some(owner),
        _ => None,
    }
}

fn owner_header(route: &Route) -> Vec<(&'static str, String)> {
    owner_header_value(route)
        .map(|o| vec![("x-amz-expected-bucket-owner", o.to_string())])
        .unwrap_or_default()
}
