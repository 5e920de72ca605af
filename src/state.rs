//! What every request shares: the validated config, principals, routes and
//! the policy set in force.

use std::sync::Arc;

use crate::admit::decide::{Decider, Reserved};
use crate::audit::AuditLog;
use crate::auth::{Principal, Principals};
use crate::config::{Config, PolicyMode};
use crate::multipart::abort::AbortSettings;
use crate::multipart::inflight::InFlight;
use crate::multipart::ownership::{Backend, Ownership};
use crate::policy::reload::PolicyStore;
use crate::policy::PolicySet;
use crate::route::Router;
use crate::upstream_client::UpstreamClient;

pub struct GatewayState {
    pub config: Config,
    pub principals: Principals,
    pub router: Router,
    /// None when the config names no policy paths: then every
    /// authenticated principal is allowed (and `serve` says so).
    pub policies: Option<Arc<PolicyStore>>,
    pub mode: PolicyMode,
    /// The gateway's own upstream requests (abort flow, ownership store).
    pub client: Arc<UpstreamClient>,
    pub ownership: Arc<Ownership>,
    pub inflight: Arc<InFlight>,
    pub abort: AbortSettings,
    pub audit: Option<Arc<AuditLog>>,
    /// The ownership store's bucket and prefix, never served to clients.
    pub reserved: Option<Reserved>,
}

impl GatewayState {
    pub fn new(config: Config, policies: Option<PolicySet>) -> Result<Self, String> {
        let principals = Principals::new(
            config
                .principals
                .iter()
                .map(|p| Principal {
                    name: p.name.clone(),
                    access_key_id: p.access_key_id.clone(),
                    secret: p.secret.clone(),
                })
                .collect(),
        );
        let router = Router::new(&config)?;
        let names = principal_names(&config);
        let paths = crate::policy::resolve_paths(&config.file, &config.policies.paths);
        let policies = policies.map(|set| Arc::new(PolicyStore::new(set, paths, names)));
        let mode = config.policies.mode;
        let client = Arc::new(UpstreamClient::new(config.timeouts.clone()));
        let mut reserved = None;
        let backend = match config.multipart.as_ref().and_then(|m| m.ownership.as_ref()) {
            Some(o) if o.store == "s3" => {
                let name = o.upstream.clone().unwrap_or_default();
                let upstream = router.upstreams.get(&name).cloned().ok_or_else(|| {
                    format!("multipart.ownership.upstream `{name}` is not defined")
                })?;
                let bucket = o
                    .bucket
                    .clone()
                    .ok_or("multipart.ownership.bucket is required for store: s3")?;
                let prefix = o
                    .prefix
                    .clone()
                    .unwrap_or_else(|| "s3gate/multipart-owners/".into());
                reserved = Some(Reserved {
                    upstream: name,
                    bucket: bucket.clone(),
                    prefix: prefix.clone(),
                });
                Backend::S3 {
                    upstream,
                    bucket,
                    prefix,
                }
            }
            _ => Backend::Memory,
        };
        let ownership = Arc::new(Ownership::new(backend, client.clone()));
        let mut abort = AbortSettings::default();
        if let Some(a) = config.multipart.as_ref().and_then(|m| m.abort.as_ref()) {
            if let Some(d) = a
                .drain_in_flight
                .as_deref()
                .and_then(crate::multipart::parse_duration)
            {
                abort.drain_in_flight = d;
            }
            abort.verify = a.verify.unwrap_or(true);
            abort.max_attempts = a.max_attempts.unwrap_or(5).max(1);
        }
        let audit = config
            .audit
            .as_ref()
            .map(|a| Arc::new(AuditLog::open(a, &config.gateway_name)));
        Ok(GatewayState {
            config,
            principals,
            router,
            policies,
            mode,
            client,
            ownership,
            inflight: Arc::new(InFlight::default()),
            abort,
            audit,
            reserved,
        })
    }

    /// What the decision stages read, with the policy set now in force.
    pub fn decider(&self) -> Decider<'_> {
        Decider {
            router: &self.router,
            policies: self.policies.as_ref().map(|p| p.current()),
            shadow: self.mode == PolicyMode::Shadow,
            reserved: self.reserved.as_ref(),
        }
    }
}

pub fn principal_names(config: &Config) -> Vec<String> {
    config.principals.iter().map(|p| p.name.clone()).collect()
}

/// Load the config's policies (None when it names none).
pub fn load_policies(
    config: &Config,
) -> Result<Option<PolicySet>, Vec<crate::config::ConfigError>> {
    if config.policies.paths.is_empty() {
        return Ok(None);
    }
    let paths = crate::policy::resolve_paths(&config.file, &config.policies.paths);
    crate::policy::load(&paths, Some(&principal_names(config))).map(Some)
}
