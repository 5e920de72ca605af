//! Upstream credentials: static keys, or a provider from aws-config (the
//! default chain — environment, shared profile, web identity as IRSA uses,
//! ECS container credentials, IMDSv2 — or an assumed role).
//!
//! Credentials are cached and refreshed before they expire: within the
//! last five minutes a request still uses the cached keys and a background
//! task fetches new ones, so requests never wait for a refresh unless the
//! keys have actually expired.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_config::Region;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use tokio::sync::OnceCell;

use crate::config::ResolvedCredentials;
pub use crate::config::Source;
use crate::s3::{err, S3Error, S3ErrorCode};
use crate::secret::Secret;

/// Refresh this long before expiry.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

pub enum UpstreamCredentials {
    Static(ResolvedCredentials),
    Dynamic(Arc<Dynamic>),
    /// IBM Cloud IAM bearer tokens (COS).
    IbmIam(Arc<super::ibm_iam::IbmIam>),
}

impl std::fmt::Debug for UpstreamCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamCredentials::Static(c) => write!(f, "Static({})", c.access_key_id),
            UpstreamCredentials::Dynamic(d) => write!(f, "Dynamic({:?})", d.source),
            UpstreamCredentials::IbmIam(i) => write!(f, "{i:?}"),
        }
    }
}

struct Cached {
    creds: ResolvedCredentials,
    expires: Option<SystemTime>,
}

pub struct Dynamic {
    upstream: String,
    region: String,
    source: Source,
    provider: OnceCell<SharedCredentialsProvider>,
    cache: RwLock<Option<Cached>>,
    refreshing: AtomicBool,
}

impl UpstreamCredentials {
    pub fn dynamic(upstream: &str, region: &str, source: Source) -> Self {
        UpstreamCredentials::Dynamic(Arc::new(Dynamic {
            upstream: upstream.to_string(),
            region: region.to_string(),
            source,
            provider: OnceCell::new(),
            cache: RwLock::new(None),
            refreshing: AtomicBool::new(false),
        }))
    }

    /// The keys to sign with now.
    pub async fn get(&self) -> Result<ResolvedCredentials, S3Error> {
        match self {
            UpstreamCredentials::Static(c) => Ok(c.clone()),
            UpstreamCredentials::Dynamic(d) => d.get().await,
            UpstreamCredentials::IbmIam(i) => i.get().await,
        }
    }
}

type Building<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = SharedCredentialsProvider> + Send + 'a>>;

fn build<'a>(source: &'a Source, region: &str) -> Building<'a> {
    let region = region.to_string();
    Box::pin(async move {
        match source {
            Source::DefaultChain => SharedCredentialsProvider::new(
                aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                    .region(Region::new(region))
                    .build()
                    .await,
            ),
            Source::AssumeRole {
                role_arn,
                external_id,
                session_name,
                source,
            } => {
                let inner = build(source, &region).await;
                // The SDK config honours endpoint overrides such as AWS_ENDPOINT_URL_STS.
                let sdk = aws_config::defaults(BehaviorVersion::latest())
                    .region(Region::new(region.clone()))
                    .credentials_provider(inner.clone())
                    .load()
                    .await;
                let mut b = aws_config::sts::AssumeRoleProvider::builder(role_arn.clone())
                    .configure(&sdk)
                    .session_name(session_name.clone());
                if let Some(e) = external_id {
                    b = b.external_id(e.clone());
                }
                SharedCredentialsProvider::new(b.build_from_provider(inner).await)
            }
        }
    })
}

impl Dynamic {
    fn cached(&self) -> Option<(ResolvedCredentials, Option<SystemTime>)> {
        let g = self.cache.read().ok()?;
        g.as_ref().map(|c| (c.creds.clone(), c.expires))
    }

    async fn get(self: &Arc<Self>) -> Result<ResolvedCredentials, S3Error> {
        let now = SystemTime::now();
        if let Some((creds, expires)) = self.cached() {
            match expires {
                None => return Ok(creds),
                Some(e) if e > now + REFRESH_BEFORE => return Ok(creds),
                Some(e) if e > now + Duration::from_secs(10) => {
                    // Still good: refresh in the background, answer now.
                    if !self.refreshing.swap(true, Ordering::SeqCst) {
                        let me = self.clone();
                        tokio::spawn(async move {
                            if let Err(e) = me.refresh().await {
                                tracing::warn!(upstream = %me.upstream, "credential refresh failed, keeping the current keys: {}", e.message);
                            }
                            me.refreshing.store(false, Ordering::SeqCst);
                        });
                    }
                    return Ok(creds);
                }
                Some(_) => {}
            }
        }
        self.refresh().await
    }

    async fn refresh(&self) -> Result<ResolvedCredentials, S3Error> {
        let provider = self
            .provider
            .get_or_init(|| build(&self.source, &self.region))
            .await;
        let c = provider.provide_credentials().await.map_err(|e| {
            err(
                S3ErrorCode::ServiceUnavailable,
                format!("No credentials for upstream {}: {e}", self.upstream),
            )
        })?;
        let creds = ResolvedCredentials {
            access_key_id: c.access_key_id().to_string(),
            secret_access_key: Secret::new(c.secret_access_key().to_string()),
            session_token: c.session_token().map(|t| Secret::new(t.to_string())),
            bearer: None,
        };
        tracing::debug!(upstream = %self.upstream, expires = ?c.expiry(), "upstream credentials refreshed");
        if let Ok(mut g) = self.cache.write() {
            *g = Some(Cached {
                creds: creds.clone(),
                expires: c.expiry(),
            });
        }
        Ok(creds)
    }
}
