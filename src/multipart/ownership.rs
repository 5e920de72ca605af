//! Who started each multipart upload, so policies can say "only the
//! initiator may complete or abort it" (`s3gate:MultipartInitiator`).
//!
//! `s3` keeps one small object per upload in a state bucket on an upstream:
//! durable, strongly consistent, shared by every replica, no new
//! infrastructure. `memory` is for a single replica. A moka cache keeps the
//! creating replica's hot path free of extra round trips. Records go on
//! Complete and Abort; memory records expire after a week, and for `s3` an
//! expiration lifecycle rule on the state prefix does the same (README).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::route::Upstream;
use crate::s3::{err, S3Error, S3ErrorCode};
use crate::upstream_client::{Call, UpstreamClient};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    pub principal: String,
    pub bucket: String,
    pub key: String,
    pub upload_id: String,
    /// Unix seconds.
    pub created: u64,
}

pub enum Backend {
    Memory,
    S3 {
        upstream: Arc<Upstream>,
        bucket: String,
        prefix: String,
    },
}

pub struct Ownership {
    backend: Backend,
    cache: moka::future::Cache<String, Arc<Record>>,
    client: Arc<UpstreamClient>,
}

/// Records are found without regard to the case of the upload id, as
/// Garage finds uploads (hex ids in either case): a spelling the upstream
/// treats as the same upload finds the record, and the gateway then
/// refuses any spelling but the one issued (`Record::upload_id`).
fn cache_key(bucket: &str, upload_id: &str) -> String {
    format!("{bucket}\n{}", upload_id.to_ascii_lowercase())
}

/// `s3gate:MultipartInitiator` for `principal`, given the record.
pub fn initiator(principal: &str, record: Option<&Record>) -> &'static str {
    match record {
        None => "unknown",
        Some(r) if r.principal == principal => "self",
        Some(_) => "other",
    }
}

/// How long the cache keeps a record.
fn record_ttl(backend: &Backend) -> Duration {
    match backend {
        // The only copy: keep it for a week (S3's usual abort-incomplete rule).
        Backend::Memory => Duration::from_secs(7 * 24 * 3600),
        // A cache of the durable copy.
        Backend::S3 { .. } => Duration::from_secs(3600),
    }
}

impl Ownership {
    pub fn new(backend: Backend, client: Arc<UpstreamClient>) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(1_000_000)
            .time_to_live(record_ttl(&backend))
            .build();
        Ownership {
            backend,
            cache,
            client,
        }
    }

    fn object_key(prefix: &str, bucket: &str, upload_id: &str) -> String {
        // Upload ids are opaque and may be long: name the object by a hash
        // of the id in lower case (see `cache_key`).
        Self::legacy_object_key(prefix, bucket, &upload_id.to_ascii_lowercase())
    }

    /// Where records written before ids were case-folded live.
    fn legacy_object_key(prefix: &str, bucket: &str, upload_id: &str) -> String {
        format!(
            "{prefix}{bucket}/{}",
            crate::auth::crypto::sha256_hex(upload_id.as_bytes())
        )
    }

    fn store_error(what: &str, detail: impl std::fmt::Display) -> S3Error {
        err(
            S3ErrorCode::ServiceUnavailable,
            format!("The multipart ownership store could not {what} ({detail}); please retry"),
        )
    }

    pub async fn record(&self, r: Record) -> Result<(), S3Error> {
        let key = cache_key(&r.bucket, &r.upload_id);
        if let Backend::S3 {
            upstream,
            bucket,
            prefix,
        } = &self.backend
        {
            let body =
                Bytes::from(serde_json::to_vec(&r).map_err(|e| Self::store_error("encode", e))?);
            let call = Call {
                method: "PUT",
                bucket: Some(bucket),
                key: Some(&Self::object_key(prefix, &r.bucket, &r.upload_id)),
                query: vec![],
                headers: vec![("content-type", "application/json".into())],
                body,
            };
            let reply = self.client.send(upstream, call).await?;
            if reply.status != 200 {
                return Err(Self::store_error(
                    "record the upload",
                    format!(
                        "status {} {}",
                        reply.status,
                        reply.error_code().unwrap_or_default()
                    ),
                ));
            }
        }
        self.cache.insert(key, Arc::new(r)).await;
        Ok(())
    }

    pub async fn lookup(
        &self,
        bucket: &str,
        upload_id: &str,
    ) -> Result<Option<Arc<Record>>, S3Error> {
        let key = cache_key(bucket, upload_id);
        if let Some(r) = self.cache.get(&key).await {
            return Ok(Some(r));
        }
        let Backend::S3 {
            upstream,
            bucket: state,
            prefix,
        } = &self.backend
        else {
            return Ok(None);
        };
        let mut names = vec![Self::object_key(prefix, bucket, upload_id)];
        let legacy = Self::legacy_object_key(prefix, bucket, upload_id);
        if legacy != names[0] {
            names.push(legacy);
        }
        for name in &names {
            let call = Call {
                method: "GET",
                bucket: Some(state),
                key: Some(name),
                query: vec![],
                headers: vec![],
                body: Bytes::new(),
            };
            let reply = self.client.send(upstream, call).await?;
            if reply.status == 404 {
                continue;
            }
            return self.read_record(key, reply.status, &reply.body).await;
        }
        Ok(None)
    }

    async fn read_record(
        &self,
        key: String,
        status: u16,
        body: &[u8],
    ) -> Result<Option<Arc<Record>>, S3Error> {
        match status {
            200 => {
                let r: Record = serde_json::from_slice(body)
                    .map_err(|e| Self::store_error("read a record", e))?;
                let r = Arc::new(r);
                self.cache.insert(key, r.clone()).await;
                Ok(Some(r))
            }
            s => Err(Self::store_error(
                "look up the upload",
                format!("status {s}"),
            )),
        }
    }

    /// The state bucket, when records are kept in one (the reaper keeps
    /// its lease there).
    pub fn state_bucket(&self) -> Option<(&Arc<Upstream>, &str, &str)> {
        match &self.backend {
            Backend::S3 {
                upstream,
                bucket,
                prefix,
            } => Some((upstream, bucket.as_str(), prefix.as_str())),
            Backend::Memory => None,
        }
    }

    /// Every record of `bucket` (for the reaper's sweep of records whose
    /// upload is gone). The durable store is listed and each record read.
    pub async fn records(&self, bucket: &str) -> Result<Vec<Record>, S3Error> {
        let Backend::S3 {
            upstream,
            bucket: state,
            prefix,
        } = &self.backend
        else {
            return Ok(self
                .cache
                .iter()
                .filter(|(_, r)| r.bucket == bucket)
                .map(|(_, r)| (*r).clone())
                .collect());
        };
        let folder = format!("{prefix}{bucket}/");
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2".to_string()), ("prefix", folder.clone())];
            if let Some(t) = &token {
                query.push(("continuation-token", t.clone()));
            }
            let call = Call {
                method: "GET",
                bucket: Some(state),
                key: None,
                query,
                headers: vec![],
                body: Bytes::new(),
            };
            let reply = self.client.send(upstream, call).await?;
            if reply.status != 200 {
                return Err(Self::store_error(
                    "list records",
                    format!("status {}", reply.status),
                ));
            }
            names.extend(crate::s3::xml::all_text(&reply.body, "Key", usize::MAX));
            let truncated = crate::s3::xml::first_text(&reply.body, "IsTruncated")
                .is_some_and(|t| t.trim() == "true");
            match crate::s3::xml::first_text(&reply.body, "NextContinuationToken") {
                Some(t) if truncated && Some(&t) != token.as_ref() => token = Some(t),
                _ => break,
            }
        }
        let mut out = Vec::new();
        for name in names {
            let call = Call {
                method: "GET",
                bucket: Some(state),
                key: Some(&name),
                query: vec![],
                headers: vec![],
                body: Bytes::new(),
            };
            let reply = self.client.send(upstream, call).await?;
            if reply.status != 200 {
                continue;
            }
            match serde_json::from_slice::<Record>(&reply.body) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!(bucket, "unreadable ownership record skipped: {e}"),
            }
        }
        Ok(out)
    }

    pub async fn forget(&self, bucket: &str, upload_id: &str) {
        self.cache.invalidate(&cache_key(bucket, upload_id)).await;
        if let Backend::S3 {
            upstream,
            bucket: state,
            prefix,
        } = &self.backend
        {
            let call = Call {
                method: "DELETE",
                bucket: Some(state),
                key: Some(&Self::object_key(prefix, bucket, upload_id)),
                query: vec![],
                headers: vec![],
                body: Bytes::new(),
            };
            match self.client.send(upstream, call).await {
                Ok(r) if r.status < 300 || r.status == 404 => {}
                Ok(r) => tracing::warn!(
                    bucket,
                    status = r.status,
                    "could not delete an ownership record"
                ),
                Err(e) => tracing::warn!(
                    bucket,
                    "could not delete an ownership record: {}",
                    e.message
                ),
            }
        }
    }
}

#[cfg(test)]
mod ttl_tests {
    use super::*;

    #[test]
    fn memory_records_expire_after_a_week() {
        assert_eq!(
            record_ttl(&Backend::Memory),
            Duration::from_secs(7 * 24 * 3600)
        );
    }
}
