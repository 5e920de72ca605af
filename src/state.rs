//! What every request shares: the validated config, principals, routes and
//! the policy set in force.

use std::sync::Arc;

use crate::auth::{Principal, Principals};
use crate::config::{Config, PolicyMode};
use crate::policy::reload::PolicyStore;
use crate::policy::PolicySet;
use crate::route::Router;

pub struct GatewayState {
    pub config: Config,
    pub principals: Principals,
    pub router: Router,
    /// None when the config names no policy paths: then every
    /// authenticated principal is allowed (and `serve` says so).
    pub policies: Option<Arc<PolicyStore>>,
    pub mode: PolicyMode,
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
        Ok(GatewayState {
            config,
            principals,
            router,
            policies,
            mode,
        })
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
