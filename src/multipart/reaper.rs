//! The reaper: a background task that aborts multipart uploads left
//! incomplete longer than their bucket's `abort_incomplete_after`, through
//! the same abort flow as a client's abort (drain, ListParts, abort,
//! verify, retry), each with an audit record whose principal is
//! `s3gate:reaper` and whose `reason` is `expired`.
//!
//! It also aborts **orphans** (`reason: orphaned`, initiator `unknown`):
//! uploads with no ownership record initiated longer ago than
//! `multipart.reaper.orphans_after` — made upstream by a create whose
//! record was never written (the gateway killed between Garage's answer
//! and the record, or the upstream gone before the record and its undo).
//! No client ever learnt their ids. Only with a durable, shared store
//! (`ownership.store: s3`): the memory store's records are one replica's.
//!
//! Every `multipart.reaper.every`: take the lease (when there is a state
//! bucket) → per bucket, ListMultipartUploads page by page → abort those
//! initiated before now − limit → list the ownership records → abort the
//! uploads initiated before now − orphans_after that have none, each
//! looked up again right before its abort (a create on another replica
//! may have recorded it since) → remove ownership records of uploads that
//! no longer exist upstream. It runs on a runtime of its own (a pingora
//! background service), never on request threads, and stops between
//! uploads when the gateway shuts down.

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
const STALE_RECORD_MARGIN: Duration = Duration::from_secs(10);

/// Why the reaper aborts an upload (the audit record's `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Older than its bucket's `abort_incomplete_after`.
    Expired,
    /// Nobody on record, older than `orphans_after`.
    Orphaned,
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Expired => "expired",
            Why::Orphaned => "orphaned",
        }
    }
}

/// What one listed upload is to the reaper, by its age alone (whether an
/// orphan candidate has a record is asked of the store afterwards).
#[derive(Debug, PartialEq, Eq)]
pub enum Age {
    Expired,
    /// Old enough to be an orphan, if nobody is on record for it.
    OrphanAge,
    Young,
}

/// `initiated` (the listing's RFC 3339 `Initiated`) against the bucket's
/// limit and, when orphans are reaped, `orphans_after`, both counted back
/// from `listed_at`. An `Initiated` that does not parse is young.
pub fn age(
    initiated: &str,
    listed_at: SystemTime,
    limit: Duration,
    orphans_after: Option<Duration>,
) -> Age {
    let Some(t) = crate::auth::time::parse_rfc3339(initiated) else {
        return Age::Young;
    };
    let before = |d: Duration| t < listed_at.checked_sub(d).unwrap_or(UNIX_EPOCH);
    if before(limit) {
        Age::Expired
    } else if orphans_after.is_some_and(before) {
        Age::OrphanAge
    } else {
        Age::Young
    }
}

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
    /// `multipart.reaper.orphans_after`; None when off or without a
    /// durable ownership store.
    pub orphans_after: Option<Duration>,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Reaper {
    /// How long a create in `bucket` may take from its upstream request to
    /// its ownership record before the gateway undoes it rather than hand
    /// out the id: half of `orphans_after`, when this reaper reaps the
    /// bucket's orphans. A record written within it is on the store before
    /// any listing could count the upload as an orphan (the other half
    /// absorbs clocks that differ between replicas and the upstream).
    pub fn record_deadline(&self, bucket: &str) -> Option<Duration> {
        let after = self.orphans_after?;
        self.jobs
            .iter()
            .any(|j| j.bucket == bucket)
            .then_some(after / 2)
    }

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
        tracing::info!(buckets = self.jobs.len(), every = ?self.every, orphans_after = ?self.orphans_after, lease = self.lease.as_ref().map(|l| l.holder_name()), "reaper started");
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
        let mut live: HashSet<String> = HashSet::new();
        let mut candidates = Vec::new();
        for u in &uploads {
            // Reaped ones lose their record in `reap`; the others keep it.
            live.insert(u.upload_id.to_ascii_lowercase());
            match age(&u.initiated, listed_at, job.limit, self.orphans_after) {
                Age::Expired => {
                    if *shutdown.borrow() {
                        return Ok(());
                    }
                    self.reap(job, u, Why::Expired).await;
                }
                Age::OrphanAge => candidates.push(u),
                Age::Young => {}
            }
        }
        // Listed after the uploads: a record written before this listing
        // is seen here, one written after it by the lookup in `reap`.
        let records = match self.ownership.records(&job.bucket).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(bucket = %job.bucket, "reaper: ownership records not listed (no orphan reaped, no record swept): {}", e.message);
                return Ok(());
            }
        };
        if !candidates.is_empty() {
            let recorded: HashSet<String> = records
                .iter()
                .map(|r| r.upload_id.to_ascii_lowercase())
                .collect();
            for u in candidates {
                if recorded.contains(&u.upload_id.to_ascii_lowercase()) {
                    continue;
                }
                if *shutdown.borrow() {
                    return Ok(());
                }
                self.reap(job, u, Why::Orphaned).await;
            }
        }
        self.sweep(job, &live, listed_at, records).await;
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

    /// Abort one expired or orphaned upload and audit it.
    async fn reap(&self, job: &Job, u: &ListedUpload, why: Why) {
        let started = Instant::now();
        let arrived = SystemTime::now();
        let m = crate::metrics::get();
        if let Some(audit) = &self.audit {
            if audit.reject_on_failure && audit.probe().await.is_err() {
                tracing::error!(bucket = %job.bucket, "reaper: the audit log is unwritable (on_failure: reject); nothing aborted");
                return;
            }
        }
        // Right before the abort: for an orphan, the store must say now
        // that nobody is on record (a create on another replica may have
        // written its record since the listing).
        let initiator = match (self.ownership.lookup(&job.bucket, &u.upload_id).await, why) {
            (Ok(Some(r)), Why::Expired) => r.principal.clone(),
            (Ok(Some(r)), Why::Orphaned) => {
                tracing::info!(bucket = %job.bucket, initiator = %r.principal, "reaper: an orphan candidate has a record now; left alone");
                m.reaper_orphans_spared.inc(&[&job.bucket]);
                return;
            }
            (Ok(None), _) => "unknown".to_string(),
            (Err(e), Why::Expired) => {
                tracing::warn!(bucket = %job.bucket, "reaper: initiator not looked up: {}", e.message);
                "unknown".to_string()
            }
            (Err(e), Why::Orphaned) => {
                tracing::warn!(bucket = %job.bucket, "reaper: orphan candidate not looked up, left for the next round: {}", e.message);
                return;
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
                match why {
                    Why::Expired => m.reaper_reaped.inc(&[&job.bucket]),
                    Why::Orphaned => m.reaper_orphans_reaped.inc(&[&job.bucket]),
                }
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
        tracing::info!(bucket = %job.bucket, outcome = result.outcome.as_str(), initiator = %initiator, bytes = freed, reason = why.as_str(), "reaper: upload aborted");
        let Some(audit) = &self.audit else { return };
        let event = reaper_event(Reaped {
            job,
            upload: u,
            result: &result,
            initiator,
            why,
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
    async fn sweep(
        &self,
        job: &Job,
        live: &HashSet<String>,
        listed_at: SystemTime,
        records: Vec<super::ownership::Record>,
    ) {
        let before = unix(listed_at).saturating_sub(STALE_RECORD_MARGIN.as_secs());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        let listed = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let at = |secs_ago: u64| {
            crate::auth::time::format_rfc3339(listed - Duration::from_secs(secs_ago), false)
        };
        let day = Duration::from_secs(86_400);
        let five = Some(Duration::from_secs(300));
        assert_eq!(age(&at(2 * 86_400), listed, day, five), Age::Expired);
        assert_eq!(age(&at(2 * 86_400), listed, day, None), Age::Expired);
        assert_eq!(age(&at(301), listed, day, five), Age::OrphanAge);
        assert_eq!(age(&at(301), listed, day, None), Age::Young);
        assert_eq!(age(&at(299), listed, day, five), Age::Young);
        assert_eq!(age("yesterday", listed, day, five), Age::Young);
        // A limit shorter than orphans_after: expired first.
        let short = Duration::from_secs(60);
        assert_eq!(age(&at(120), listed, short, five), Age::Expired);
    }

    #[test]
    fn why_names_the_reason() {
        assert_eq!(Why::Expired.as_str(), "expired");
        assert_eq!(Why::Orphaned.as_str(), "orphaned");
    }
}
