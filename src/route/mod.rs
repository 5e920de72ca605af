//! Client-visible bucket → upstream, and where on that upstream a request
//! goes (Host and path), per the upstream's kind and addressing style.
//!
//! Each upstream kind decides its own host names and signing name; the
//! `aws`, `cos` and `outposts` specifics plug in here (issue 5).

pub mod arn;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{Addressing, BucketConfig, Config, UpstreamKind};
use crate::resign::credentials::UpstreamCredentials;
use crate::s3::uri::encode_path;
use crate::s3::{err, S3ErrorCode, S3Result};
pub use arn::Arn;

/// `scheme://host[:port]` of an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("`{s}` must start with http:// or https://"));
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.is_empty() {
            return Err(format!("`{s}` must be scheme://host[:port] without a path"));
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if rest.starts_with('[') {
            let (h, p) = rest
                .split_once(']')
                .ok_or_else(|| format!("`{s}`: unclosed IPv6 literal"))?;
            let port = match p.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("`{s}`: invalid port"))?,
                None => default_port,
            };
            (format!("{h}]"), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| format!("`{s}`: invalid port"))?,
                ),
                None => (rest.to_string(), default_port),
            }
        };
        Ok(Endpoint { tls, host, port })
    }

    /// The authority for a Host header: the port only when not the default.
    pub fn authority(&self, host: &str) -> String {
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host.to_string()
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// A configured upstream, ready to receive requests.
#[derive(Debug)]
pub struct Upstream {
    pub name: String,
    pub kind: UpstreamKind,
    pub endpoint: Endpoint,
    pub region: String,
    pub addressing: Addressing,
    pub connect_to: Option<SocketAddr>,
    pub credentials: UpstreamCredentials,
    /// SigV4 signing name: `s3`, or `s3-outposts` for Outposts.
    pub service: &'static str,
    /// Whether aws-chunked bodies with a checksum trailer are re-framed so
    /// the upstream receives the client's checksum.
    pub checksum_trailers: bool,
    /// AWS dual-stack / FIPS endpoints.
    pub dualstack: bool,
    pub fips: bool,
    /// Roots to trust for this upstream's TLS (`tls.ca_file`); None: the system's.
    pub ca: Option<Arc<pingora::protocols::tls::CaType>>,
}

impl Upstream {
    /// Host header and path for a request on `bucket`/`key` (key unencoded).
    /// A bucket that is an access point or Outposts ARN has a host of its own.
    pub fn locate(&self, bucket: Option<&str>, key: Option<&str>) -> (String, String) {
        let key_path = key.map(encode_path).unwrap_or_default();
        if let Some(arn) =
            bucket.and_then(|b| b.starts_with("arn:").then(|| Arn::parse(b).ok()).flatten())
        {
            return (
                self.endpoint
                    .authority(&arn.host(self.dualstack, self.fips)),
                format!("/{key_path}"),
            );
        }
        match (bucket, self.addressing) {
            (Some(b), Addressing::Virtual) => (
                self.endpoint
                    .authority(&format!("{b}.{}", self.endpoint.host)),
                format!("/{key_path}"),
            ),
            (Some(b), Addressing::Path) => {
                let path = if key.is_some() {
                    format!("/{}/{key_path}", encode_path(b))
                } else {
                    format!("/{}", encode_path(b))
                };
                (self.endpoint.authority(&self.endpoint.host), path)
            }
            (None, _) => (
                self.endpoint.authority(&self.endpoint.host),
                "/".to_string(),
            ),
        }
    }

    /// Region and signing name for requests on `bucket` (an ARN brings its own).
    pub fn signing(&self, bucket: Option<&str>) -> (String, &'static str) {
        match bucket
            .filter(|b| b.starts_with("arn:"))
            .and_then(|b| Arn::parse(b).ok())
        {
            Some(arn) => (arn.region().to_string(), arn.service()),
            None => (self.region.clone(), self.service),
        }
    }
}

/// How to reach `up` for a request on `bucket`: the address (`connect_to`
/// or DNS of the request's host), TLS, SNI (the Host's name) and timeouts.
pub async fn peer(
    up: &Upstream,
    bucket: Option<&str>,
    t: &crate::config::TimeoutsConfig,
) -> S3Result<pingora::upstreams::peer::HttpPeer> {
    let (authority, _) = up.locate(bucket, None);
    let sni = crate::s3::addressing::strip_port(&authority)
        .trim_matches(['[', ']'])
        .to_string();
    let addr = match up.connect_to {
        Some(a) => a,
        None => tokio::net::lookup_host((sni.clone(), up.endpoint.port))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| {
                err(
                    S3ErrorCode::BadGateway,
                    format!("The upstream {} ({sni}) cannot be resolved", up.name),
                )
            })?,
    };
    let mut peer = pingora::upstreams::peer::HttpPeer::new(addr, up.endpoint.tls, sni);
    peer.options.ca = up.ca.clone();
    peer.options.connection_timeout = Some(std::time::Duration::from_secs(t.connect_secs));
    peer.options.read_timeout = Some(std::time::Duration::from_secs(t.read_secs));
    peer.options.write_timeout = Some(std::time::Duration::from_secs(t.read_secs));
    peer.options.idle_timeout = Some(std::time::Duration::from_secs(t.idle_secs));
    Ok(peer)
}

/// The certificates of a PEM file, as roots to trust for one upstream.
pub fn load_ca(path: &std::path::Path) -> Result<Arc<pingora::protocols::tls::CaType>, String> {
    use base64::Engine as _;
    let pem = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut certs = Vec::new();
    for block in pem.split("-----BEGIN CERTIFICATE-----").skip(1) {
        let body = block
            .split("-----END CERTIFICATE-----")
            .next()
            .unwrap_or("");
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("{}: bad PEM: {e}", path.display()))?;
        certs.push(pingora::utils::tls::WrappedX509::new(
            der,
            pingora::utils::tls::parse_x509,
        ));
    }
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", path.display()));
    }
    Ok(Arc::from(certs.into_boxed_slice()))
}

/// Where one client-visible bucket goes.
#[derive(Debug, Clone)]
pub struct Route {
    pub upstream: Arc<Upstream>,
    /// The bucket name upstream.
    pub target: String,
    pub rules: Arc<BucketConfig>,
}

#[derive(Debug, Default)]
pub struct Router {
    buckets: HashMap<String, (Arc<Upstream>, Arc<BucketConfig>)>,
    catch_all: Option<(Arc<Upstream>, Arc<BucketConfig>)>,
    pub upstreams: BTreeMap<String, Arc<Upstream>>,
}

impl Router {
    pub fn new(config: &Config) -> Result<Router, String> {
        let mut upstreams = BTreeMap::new();
        for (name, u) in &config.upstreams {
            let endpoint = match (&u.endpoint, u.kind) {
                (Some(e), _) => Endpoint::parse(e)?,
                // AWS's regional endpoint (dual-stack / FIPS on request).
                (None, UpstreamKind::Aws | UpstreamKind::Outposts) => {
                    let region = u.region.as_deref().unwrap_or("us-east-1");
                    Endpoint {
                        tls: true,
                        host: arn::aws_s3_host(region, u.dualstack, u.fips),
                        port: 443,
                    }
                }
                (None, _) => return Err(format!("upstream {name} needs an endpoint")),
            };
            let region = u.region.clone().unwrap_or_else(|| "us-east-1".into());
            let credentials = match (
                config.upstream_credentials.get(name),
                config.upstream_sources.get(name),
            ) {
                (Some(c), _) => UpstreamCredentials::Static(c.clone()),
                (None, Some(src)) => UpstreamCredentials::dynamic(name, &region, src.clone()),
                (None, None) => return Err(format!("upstream {name} has no usable credentials")),
            };
            let addressing = u.addressing.unwrap_or(match u.kind {
                UpstreamKind::Aws => Addressing::Virtual,
                _ => Addressing::Path,
            });
            let up = Upstream {
                name: name.clone(),
                kind: u.kind,
                region: u.region.clone().unwrap_or_else(|| "us-east-1".into()),
                addressing,
                connect_to: u.connect_to.as_deref().and_then(|c| c.parse().ok()),
                credentials,
                service: if u.kind == UpstreamKind::Outposts {
                    "s3-outposts"
                } else {
                    "s3"
                },
                checksum_trailers: u.checksum_trailers.unwrap_or(true),
                ca: match u.tls.as_ref().and_then(|t| t.ca_file.as_ref()) {
                    Some(f) => {
                        Some(load_ca(f).map_err(|e| format!("upstream {name}: tls.ca_file: {e}"))?)
                    }
                    None => None,
                },
                dualstack: u.dualstack,
                fips: u.fips,
                endpoint,
            };
            upstreams.insert(name.clone(), Arc::new(up));
        }
        let mut router = Router {
            upstreams,
            ..Default::default()
        };
        for (bucket, b) in &config.buckets {
            let up = router
                .upstreams
                .get(&b.upstream)
                .cloned()
                .ok_or_else(|| format!("bucket {bucket}: unknown upstream {}", b.upstream))?;
            let entry = (up, Arc::new(b.clone()));
            if bucket == "*" {
                router.catch_all = Some(entry);
            } else {
                router.buckets.insert(bucket.clone(), entry);
            }
        }
        Ok(router)
    }

    /// The route of a client-visible bucket; unlisted buckets are refused
    /// unless there is a `"*"` catch-all.
    pub fn route(&self, bucket: &str) -> S3Result<Route> {
        let (up, rules) = self
            .buckets
            .get(bucket)
            .or(self.catch_all.as_ref())
            .ok_or_else(|| {
                err(
                    S3ErrorCode::AccessDenied,
                    format!("Bucket {bucket} is not served by this gateway"),
                )
                .with_resource(format!("/{bucket}"))
            })?;
        Ok(Route {
            upstream: up.clone(),
            target: rules.target.clone().unwrap_or_else(|| bucket.to_string()),
            rules: rules.clone(),
        })
    }

    /// Where ListBuckets goes: the catch-all's upstream, if any.
    pub fn service_upstream(&self) -> Option<Arc<Upstream>> {
        self.catch_all.as_ref().map(|(u, _)| u.clone())
    }

    /// The client-visible buckets named in the config (for a local ListBuckets).
    pub fn named_buckets(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.buckets.keys().map(String::as_str).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:3900").unwrap();
        assert_eq!((e.tls, e.host.as_str(), e.port), (false, "127.0.0.1", 3900));
        let e = Endpoint::parse("https://s3.eu-de.cloud-object-storage.appdomain.cloud/").unwrap();
        assert_eq!(e.port, 443);
        assert_eq!(
            e.authority(&e.host),
            "s3.eu-de.cloud-object-storage.appdomain.cloud"
        );
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("http://x/path").is_err());
    }

    #[test]
    fn locate_path_and_virtual() {
        let mk = |addressing| Upstream {
            name: "u".into(),
            kind: UpstreamKind::S3Compatible,
            endpoint: Endpoint::parse("http://store.local:3900").unwrap(),
            region: "r".into(),
            addressing,
            connect_to: None,
            credentials: UpstreamCredentials::Static(crate::config::ResolvedCredentials {
                access_key_id: "a".into(),
                secret_access_key: crate::auth::Secret::new("s".into()),
                session_token: None,
            }),
            service: "s3",
            checksum_trailers: true,
            dualstack: false,
            fips: false,
            ca: None,
        };
        let p = mk(Addressing::Path);
        assert_eq!(
            p.locate(Some("b"), Some("a b/ü+=")),
            ("store.local:3900".into(), "/b/a%20b/%C3%BC%2B%3D".into())
        );
        assert_eq!(
            p.locate(Some("b"), None),
            ("store.local:3900".into(), "/b".into())
        );
        let v = mk(Addressing::Virtual);
        assert_eq!(
            v.locate(Some("b"), Some("k//x")),
            ("b.store.local:3900".into(), "/k//x".into())
        );
    }
}
