//! Path-style and virtual-hosted-style addressing: which bucket and key a
//! request names.

use super::error::{err, S3ErrorCode, S3Result};
use super::uri::decode_path;

/// The bucket and key a request names, as the client named them (decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressed {
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// Whether the bucket came from the Host header (virtual-hosted style).
    pub virtual_host: bool,
}

/// Resolve bucket and key from the Host header and raw request path.
///
/// A host `<bucket>.<hostname>` for one of the configured `hostnames` is
/// virtual-hosted style; any other host is path style (`/bucket/key`).
pub fn address(host: Option<&str>, raw_path: &str, hostnames: &[String]) -> S3Result<Addressed> {
    let path = decode_path(raw_path).ok_or_else(|| {
        err(
            S3ErrorCode::InvalidRequest,
            "The request path is not valid UTF-8",
        )
    })?;
    let Some(rest) = path.strip_prefix('/') else {
        return Err(err(
            S3ErrorCode::InvalidRequest,
            "The request path must start with '/'",
        ));
    };
    let a = address_unchecked(host, rest, hostnames);
    // Bucket names from clients are S3 bucket names: nothing else (an ARN
    // say) may be taken for a target by a catch-all route.
    if let Some(b) = &a.bucket {
        if !valid_bucket_name(b) {
            return Err(err(
                S3ErrorCode::InvalidBucketName,
                "The specified bucket is not valid.",
            )
            .with_resource(format!("/{b}")));
        }
    }
    Ok(a)
}

fn address_unchecked(host: Option<&str>, rest: &str, hostnames: &[String]) -> Addressed {
    if let Some(bucket) = host.and_then(|h| vhost_bucket(h, hostnames)) {
        return Addressed {
            bucket: Some(bucket.to_string()),
            key: (!rest.is_empty()).then(|| rest.to_string()),
            virtual_host: true,
        };
    }
    if rest.is_empty() {
        return Addressed {
            bucket: None,
            key: None,
            virtual_host: false,
        };
    }
    let (bucket, key) = match rest.split_once('/') {
        Some((b, k)) => (b, (!k.is_empty()).then(|| k.to_string())),
        None => (rest, None),
    };
    Addressed {
        bucket: Some(bucket.to_string()),
        key,
        virtual_host: false,
    }
}

fn vhost_bucket<'a>(host: &'a str, hostnames: &[String]) -> Option<&'a str> {
    let host = strip_port(host);
    hostnames.iter().find_map(|base| {
        let prefix = host.strip_suffix(base.as_str())?.strip_suffix('.')?;
        (!prefix.is_empty()).then_some(prefix)
    })
}

/// `host:port` → `host`, keeping bracketed IPv6 literals whole.
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    })
}

/// S3's bucket naming rules, loosely: refuse what cannot be a bucket name.
pub fn valid_bucket_name(b: &str) -> bool {
    (3..=63).contains(&b.len())
        && b.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.' || c == b'_'
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hn() -> Vec<String> {
        vec!["s3.internal.example".into(), "localhost".into()]
    }

    #[test]
    fn path_style() {
        let a = address(Some("127.0.0.1:9000"), "/bkt/a%20b//c/../d", &hn()).unwrap();
        assert_eq!(a.bucket.as_deref(), Some("bkt"));
        assert_eq!(a.key.as_deref(), Some("a b//c/../d"));
        assert!(!a.virtual_host);
    }

    #[test]
    fn virtual_hosted() {
        let a = address(Some("bkt.s3.internal.example:9000"), "/k%2B1", &hn()).unwrap();
        assert_eq!(a.bucket.as_deref(), Some("bkt"));
        assert_eq!(a.key.as_deref(), Some("k+1"));
        assert!(a.virtual_host);
        let a = address(Some("my.dotted.bucket.localhost"), "/", &hn()).unwrap();
        assert_eq!(a.bucket.as_deref(), Some("my.dotted.bucket"));
        assert_eq!(a.key, None);
    }

    #[test]
    fn service_level() {
        let a = address(Some("localhost:9000"), "/", &hn()).unwrap();
        assert_eq!(a.bucket, None);
    }

    #[test]
    fn bucket_only_with_slash() {
        let a = address(None, "/bkt/", &hn()).unwrap();
        assert_eq!(a.bucket.as_deref(), Some("bkt"));
        assert_eq!(a.key, None);
    }
}
