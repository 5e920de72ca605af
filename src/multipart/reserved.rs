//! The gateway's own state space: the multipart ownership records' bucket
//! and prefix (`multipart.ownership`, store s3), which clients never reach,
//! whatever routes and policies say.

use crate::config::{Config, OwnershipStore};
use crate::route::Route;
use crate::s3::{err, Operation, S3Error, S3ErrorCode, S3Request};

/// Where the gateway keeps its own state (the multipart ownership
/// records): never reachable by clients, whatever routes and policies say.
#[derive(Debug, Clone)]
pub struct Reserved {
    pub upstream: String,
    pub bucket: String,
    pub prefix: String,
}

impl Reserved {
    /// The ownership store of a config (`multipart.ownership`, store s3).
    pub fn from_config(config: &Config) -> Option<Reserved> {
        match &config.multipart.ownership {
            OwnershipStore::S3 {
                upstream,
                bucket,
                prefix,
            } => Some(Reserved {
                upstream: upstream.clone(),
                bucket: bucket.clone(),
                prefix: prefix.clone(),
            }),
            OwnershipStore::Memory => None,
        }
    }

    /// `s3gate check` warnings: bucket routes that lead to the state bucket.
    /// Client requests there are refused anyway; a dedicated bucket, served
    /// by no route, is the safer layout.
    pub fn warnings(&self, config: &Config) -> Vec<String> {
        let mut out = Vec::new();
        for (name, b) in &config.buckets {
            if b.upstream != self.upstream {
                continue;
            }
            let target = b.target.as_deref().unwrap_or(name);
            if name == "*" || target == self.bucket {
                out.push(format!(
                    "bucket route `{name}` can reach the multipart ownership state (bucket `{}`, prefix `{}` on upstream `{}`): s3gate refuses client requests to it, but a bucket no route serves is safer",
                    self.bucket, self.prefix, self.upstream
                ));
            }
        }
        out
    }

    fn holds(&self, route: &Route) -> bool {
        route.upstream.name == self.upstream
            && route.target.as_deref() == Some(self.bucket.as_str())
    }

    /// Whether a key of `route` lies in the reserved space.
    pub fn covers(&self, route: &Route, key: &str) -> bool {
        self.holds(route) && key.starts_with(&self.prefix)
    }

    /// Whether a bucket-level request on `route` could see or change the
    /// reserved space (listings whose prefix cannot reach it are fine).
    pub fn reaches_bucket(&self, route: &Route, req: &S3Request) -> bool {
        if !self.holds(route) {
            return false;
        }
        if self.prefix.is_empty() {
            return true;
        }
        match req.op {
            Operation::ListObjects
            | Operation::ListObjectsV2
            | Operation::ListObjectVersions
            | Operation::ListMultipartUploads => {
                let p = req.param("prefix").unwrap_or("");
                p.starts_with(&self.prefix) || self.prefix.starts_with(p)
            }
            Operation::HeadBucket | Operation::DeleteObjects => false,
            _ => true,
        }
    }
}

pub fn reserved_error() -> S3Error {
    err(
        S3ErrorCode::AccessDenied,
        "Access Denied (reserved for the gateway's own state)",
    )
}
