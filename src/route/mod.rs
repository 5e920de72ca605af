//! Client-visible bucket → upstream, and where on that upstream a request
//! goes (Host and path), per the upstream's kind and addressing style.
//!
//! Each upstream kind decides its own host names and signing name; the
//! `aws`, `cos` and `outposts` specifics plug in here (issue 5).

pub mod arn;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

pub use crate::config::Endpoint;
use crate::config::{Addressing, BucketConfig, Config, CredentialSource, Timeouts, UpstreamKind};
use crate::resign::credentials::UpstreamCredentials;
use crate::s3::uri::encode_path;
use crate::s3::{err, S3ErrorCode, S3Result};
pub use arn::Arn;

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
    /// Whether `versionId` means something upstream (`versioning`).
    pub versioning: bool,
    /// AWS dual-stack / FIPS endpoints.
    pub dualstack: bool,
    pub fips: bool,
    /// COS: `ibm-service-instance-id` on CreateBucket and ListBuckets.
    pub service_instance_id: Option<String>,
    /// Roots to trust for this upstream's TLS (`tls.ca_file`); None: the system's.
    pub ca: Option<Arc<pingora::protocols::tls::CaType>>,
    /// Bucket names that are access point or Outposts ARNs (parsed by the config).
    pub access_points: BTreeMap<String, Arn>,
}

impl Upstream {
    /// Host header and path for a request on `bucket`/`key` (key unencoded).
    /// A bucket that is an access point or Outposts ARN has a host of its own.
    pub fn locate(&self, bucket: Option<&str>, key: Option<&str>) -> (String, String) {
        let key_path = key.map(encode_path).unwrap_or_default();
        if let Some(arn) = bucket.and_then(|b| self.access_points.get(b)) {
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
        match bucket.and_then(|b| self.access_points.get(b)) {
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
    t: &Timeouts,
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
    peer.options.connection_timeout = Some(t.connect);
    peer.options.read_timeout = Some(t.read);
    peer.options.write_timeout = Some(t.read);
    peer.options.idle_timeout = Some(t.idle);
    peer.group_key = worker_pool_key();
    Ok(peer)
}

/// Which partition of pingora's upstream connection pool this worker
/// thread uses. The gateway's workers are single-threaded runtimes; a
/// kept-alive connection is watched by a task on the thread that released
/// it, so another thread taking it would cost two cross-thread wake-ups
/// per request (and a race pingora logs as "failed to acquire reusable
/// stream"). Each thread reuses its own connections instead.
fn worker_pool_key() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static KEY: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    KEY.with(|k| *k)
}

/// Why the router could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("upstream {upstream}: tls.ca_file: {source}")]
    Ca {
        upstream: String,
        #[source]
        source: CaError,
    },
    #[error("bucket {bucket}: unknown upstream {upstream}")]
    UnknownUpstream { bucket: String, upstream: String },
}

/// Why a CA file gave no roots to trust.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: bad PEM: {source}", path.display())]
    Pem {
        path: std::path::PathBuf,
        #[source]
        source: base64::DecodeError,
    },
    #[error("{}: no certificate found", path.display())]
    Empty { path: std::path::PathBuf },
}

/// The certificates of a PEM file, as roots to trust for one upstream.
pub fn load_ca(path: &std::path::Path) -> Result<Arc<pingora::protocols::tls::CaType>, CaError> {
    use base64::Engine as _;
    let pem = std::fs::read_to_string(path).map_err(|source| CaError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut certs = Vec::new();
    for block in pem.split("-----BEGIN CERTIFICATE-----").skip(1) {
        let body = block
            .split("-----END CERTIFICATE-----")
            .next()
            .unwrap_or("");
        let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|source| CaError::Pem {
                path: path.to_path_buf(),
                source,
            })?;
        certs.push(pingora::utils::tls::WrappedX509::new(
            der,
            pingora::utils::tls::parse_x509,
        ));
    }
    if certs.is_empty() {
        return Err(CaError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(Arc::from(certs.into_boxed_slice()))
}

/// Where one client-visible bucket goes.
#[derive(Debug, Clone)]
pub struct Route {
    pub upstream: Arc<Upstream>,
    /// The bucket name upstream; None for service-level requests
    /// (ListBuckets).
    pub target: Option<String>,
    pub rules: Arc<BucketConfig>,
}

#[derive(Debug, Default)]
pub struct Router {
    buckets: HashMap<String, (Arc<Upstream>, Arc<BucketConfig>)>,
    catch_all: Option<(Arc<Upstream>, Arc<BucketConfig>)>,
    pub upstreams: BTreeMap<String, Arc<Upstream>>,
}

impl Router {
    pub fn new(config: &Config) -> Result<Router, RouterError> {
        let mut upstreams = BTreeMap::new();
        for (name, u) in &config.upstreams {
            let credentials = match &u.credentials {
                CredentialSource::Static(c) => UpstreamCredentials::Static(c.clone()),
                CredentialSource::Provider(src) => {
                    UpstreamCredentials::dynamic(name, &u.region, src.clone())
                }
                CredentialSource::IbmIam {
                    api_key,
                    token_url,
                    token_path,
                } => UpstreamCredentials::IbmIam(Arc::new(crate::resign::ibm_iam::IbmIam::new(
                    name,
                    api_key.clone(),
                    token_url.clone(),
                    token_path.clone(),
                    config.timeouts,
                ))),
            };
            let ca = match &u.ca_file {
                Some(f) => Some(load_ca(f).map_err(|source| RouterError::Ca {
                    upstream: name.clone(),
                    source,
                })?),
                None => None,
            };
            let up = Upstream {
                name: name.clone(),
                kind: u.kind,
                region: u.region.clone(),
                addressing: u.addressing,
                connect_to: u.connect_to,
                credentials,
                service: if u.kind == UpstreamKind::Outposts {
                    "s3-outposts"
                } else {
                    "s3"
                },
                checksum_trailers: u.checksum_trailers,
                versioning: u.versioning,
                ca,
                dualstack: u.dualstack,
                fips: u.fips,
                service_instance_id: u.service_instance_id.clone(),
                endpoint: u.endpoint.clone(),
                access_points: u.access_points.clone(),
            };
            upstreams.insert(name.clone(), Arc::new(up));
        }
        let mut router = Router {
            upstreams,
            ..Default::default()
        };
        for (bucket, b) in &config.buckets {
            let up = router.upstreams.get(&b.upstream).cloned().ok_or_else(|| {
                RouterError::UnknownUpstream {
                    bucket: bucket.clone(),
                    upstream: b.upstream.clone(),
                }
            })?;
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
            target: Some(rules.target.clone().unwrap_or_else(|| bucket.to_string())),
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
                secret_access_key: crate::secret::Secret::new("s".into()),
                session_token: None,
                bearer: None,
            }),
            service: "s3",
            checksum_trailers: true,
            versioning: true,
            dualstack: false,
            fips: false,
            service_instance_id: None,
            ca: None,
            access_points: BTreeMap::new(),
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

    /// `dualstack` and `fips` of an `aws` upstream, from the YAML a user
    /// writes to the Host the upstream request is rendered with.
    #[test]
    fn aws_endpoints_follow_dualstack_and_fips() {
        let rows = [
            ("", "b.s3.eu-west-1.amazonaws.com"),
            ("dualstack: true", "b.s3.dualstack.eu-west-1.amazonaws.com"),
            ("fips: true", "b.s3-fips.eu-west-1.amazonaws.com"),
            (
                "{ dualstack: true, fips: true }",
                "b.s3-fips.dualstack.eu-west-1.amazonaws.com",
            ),
        ];
        for (flags, host) in rows {
            let flags = match flags.strip_prefix('{') {
                Some(both) => both.trim_end_matches('}').trim().replace(", ", "\n    "),
                None => flags.to_string(),
            };
            let yaml = format!(
                "listen: [{{ address: 127.0.0.1:9000 }}]\nregion: us-east-1\nprincipals: []\n\
                 upstreams:\n  aws:\n    kind: aws\n    region: eu-west-1\n    {flags}\n    \
                 credentials: {{ access_key_id: AKIAX, secret_access_key: s }}\n\
                 buckets:\n  \"*\": {{ upstream: aws }}\n"
            );
            let config = crate::config::parse(std::path::Path::new("g.yaml"), &yaml)
                .unwrap_or_else(|e| panic!("{yaml}: {e:?}"));
            let router = Router::new(&config).unwrap();
            let route = router.route("b").unwrap();
            assert_eq!(
                route.upstream.locate(Some("b"), Some("k")),
                (host.to_string(), "/k".to_string()),
                "{flags}"
            );
        }
    }

    #[test]
    fn access_points_have_their_own_host_and_signing() {
        let arn = "arn:aws:s3-outposts:us-west-2:123456789012:outpost/op-1/accesspoint/reports";
        let up = Upstream {
            name: "o".into(),
            kind: UpstreamKind::Outposts,
            endpoint: Endpoint::aws("us-west-2", false, false),
            region: "us-west-2".into(),
            addressing: Addressing::Virtual,
            connect_to: None,
            credentials: UpstreamCredentials::Static(crate::config::ResolvedCredentials {
                access_key_id: "a".into(),
                secret_access_key: crate::secret::Secret::new("s".into()),
                session_token: None,
                bearer: None,
            }),
            service: "s3-outposts",
            checksum_trailers: true,
            versioning: true,
            dualstack: false,
            fips: false,
            service_instance_id: None,
            ca: None,
            access_points: BTreeMap::from([(arn.to_string(), Arn::parse(arn).unwrap())]),
        };
        assert_eq!(
            up.locate(Some(arn), Some("k")),
            (
                "reports-123456789012.op-1.s3-outposts.us-west-2.amazonaws.com".into(),
                "/k".into()
            )
        );
        assert_eq!(up.signing(Some(arn)), ("us-west-2".into(), "s3-outposts"));
        assert_eq!(
            up.locate(Some("plain"), None).0,
            "plain.s3.us-west-2.amazonaws.com"
        );
    }
}
