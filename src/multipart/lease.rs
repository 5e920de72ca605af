//! Which replica reaps: a lease object in the ownership store's state
//! bucket (`<prefix>_reaper/lease`; bucket names have no `_`, so it never
//! meets a bucket's records). S3 has no compare-and-swap that every store
//! offers, so the lease is taken by writing it and reading it back: the
//! last writer holds it. Two replicas that write in the same instant may
//! both believe they hold it for one round; the reaper's aborts stay
//! harmless then (the second finds `NoSuchUpload`, counted as a duplicate).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::route::Upstream;
use crate::s3::S3Error;
use crate::upstream_client::{Call, UpstreamClient};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Held {
    holder: String,
    /// Unix milliseconds.
    expires: u64,
}

pub struct Lease {
    upstream: Arc<Upstream>,
    bucket: String,
    key: String,
    /// This replica: its name and a random suffix (replicas may share a name).
    me: String,
    ttl: Duration,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Lease {
    pub fn new(
        upstream: Arc<Upstream>,
        bucket: &str,
        prefix: &str,
        gateway: &str,
        ttl: Duration,
    ) -> Self {
        use rand::Rng;
        Lease {
            upstream,
            bucket: bucket.to_string(),
            key: format!("{prefix}_reaper/lease"),
            me: format!("{gateway}/{:08x}", rand::thread_rng().gen::<u32>()),
            ttl,
        }
    }

    pub fn holder_name(&self) -> &str {
        &self.me
    }

    async fn read(&self, client: &UpstreamClient) -> Result<Option<Held>, S3Error> {
        let call = Call {
            method: "GET",
            bucket: Some(&self.bucket),
            key: Some(&self.key),
            query: vec![],
            headers: vec![],
            body: Bytes::new(),
        };
        let reply = client.send(&self.upstream, call).await?;
        Ok(match reply.status {
            200 => serde_json::from_slice(&reply.body).ok(),
            _ => None,
        })
    }

    /// Take or renew the lease; true when this replica holds it now.
    pub async fn acquire(&self, client: &UpstreamClient) -> Result<bool, S3Error> {
        let now = now_ms();
        if let Some(h) = self.read(client).await? {
            if h.holder != self.me && h.expires > now {
                return Ok(false);
            }
        }
        let held = Held {
            holder: self.me.clone(),
            expires: now + self.ttl.as_millis() as u64,
        };
        let body = Bytes::from(serde_json::to_vec(&held).unwrap_or_default());
        let call = Call {
            method: "PUT",
            bucket: Some(&self.bucket),
            key: Some(&self.key),
            query: vec![],
            headers: vec![("content-type", "application/json".into())],
            body,
        };
        let reply = client.send(&self.upstream, call).await?;
        if reply.status >= 300 {
            return Ok(false);
        }
        Ok(self
            .read(client)
            .await?
            .is_some_and(|h| h.holder == self.me))
    }
}
