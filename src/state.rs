//! What every request shares: the validated config, principals, routes and
//! the policy set in force.

use std::sync::Arc;

use crate::audit::AuditLog;
use crate::auth::{Principal, Principals};
use crate::config::{Config, OwnershipStore, PolicyMode};
use crate::decision_log::DecisionLog;
use crate::multipart::abort::AbortSettings;
use crate::multipart::inflight::InFlight;
use crate::multipart::ownership::{Backend, Ownership};
use crate::multipart::reaper::{Job, Reaper};
use crate::multipart::reserved::Reserved;
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
    /// One JSON line per policy decision (`decision_log:`), for `replay`.
    pub decision_log: Option<DecisionLog>,
    /// The ownership store's bucket and prefix, never served to clients.
    pub reserved: Option<Reserved>,
    /// The reaper of expired uploads (`multipart.reaper`), started by `serve`.
    pub reaper: Option<Arc<Reaper>>,
}

/// Why the gateway's state could not be built from a checked config.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Router(#[from] crate::route::RouterError),
    #[error("multipart.ownership.upstream `{0}` is not defined")]
    OwnershipUpstream(String),
}

impl GatewayState {
    pub fn new(config: Config, policies: Option<PolicySet>) -> Result<Self, StateError> {
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
        let policies = policies
            .map(|set| Arc::new(PolicyStore::new(set, config.policies.paths.clone(), names)));
        let mode = config.policies.mode;
        let client = Arc::new(UpstreamClient::new(config.timeouts));
        let reserved = Reserved::from_config(&config);
        let backend = match &config.multipart.ownership {
            OwnershipStore::S3 {
                upstream,
                bucket,
                prefix,
            } => Backend::S3 {
                upstream: router
                    .upstreams
                    .get(upstream)
                    .cloned()
                    .ok_or_else(|| StateError::OwnershipUpstream(upstream.clone()))?,
                bucket: bucket.clone(),
                prefix: prefix.clone(),
            },
            OwnershipStore::Memory => Backend::Memory,
        };
        let ownership = Arc::new(Ownership::new(backend, client.clone()));
        let abort = config.multipart.abort.clone();
        let audit = config
            .audit
            .as_ref()
            .map(|a| Arc::new(AuditLog::open(a, &config.gateway_name)));
        let decision_log = config.decision_log.as_ref().map(DecisionLog::open);
        let inflight = Arc::new(InFlight::default());
        let reaper = reaper(&config, &router, &client, &ownership, &inflight, &audit);
        Ok(GatewayState {
            config,
            principals,
            router,
            policies,
            mode,
            client,
            ownership,
            inflight,
            abort,
            audit,
            decision_log,
            reserved,
            reaper,
        })
    }
}

/// The reaper, when `multipart.reaper` is set and some bucket has an age
/// limit. With a state bucket, replicas share a lease there.
fn reaper(
    config: &Config,
    router: &Router,
    client: &Arc<UpstreamClient>,
    ownership: &Arc<Ownership>,
    inflight: &Arc<InFlight>,
    audit: &Option<Arc<AuditLog>>,
) -> Option<Arc<Reaper>> {
    let every = config.multipart.reaper.as_ref()?.every;
    let jobs: Vec<Job> = config
        .reaped_buckets()
        .into_iter()
        .filter_map(|(bucket, limit, rule)| {
            let route = router.route(&bucket).ok()?;
            Some(Job {
                bucket,
                route,
                limit,
                rule,
            })
        })
        .collect();
    if jobs.is_empty() {
        return None;
    }
    let lease = ownership.state_bucket().map(|(upstream, bucket, prefix)| {
        let ttl = (every * 3).max(std::time::Duration::from_secs(3));
        crate::multipart::lease::Lease::new(
            upstream.clone(),
            bucket,
            prefix,
            &config.gateway_name,
            ttl,
        )
    });
    Some(Arc::new(Reaper {
        jobs,
        every,
        client: client.clone(),
        ownership: ownership.clone(),
        inflight: inflight.clone(),
        audit: audit.clone(),
        abort: config.multipart.abort.clone(),
        lease,
        config_file: config.file.display().to_string(),
        // Orphans only where records are durable and shared: the memory
        // store's are one replica's and go with a restart.
        orphans_after: match config.multipart.ownership {
            OwnershipStore::S3 { .. } => config.multipart.reaper.as_ref()?.orphans_after,
            OwnershipStore::Memory => None,
        },
    }))
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
    crate::policy::load(&config.policies.paths, Some(&principal_names(config))).map(Some)
}
