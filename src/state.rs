//! What every request shares: the validated config, principals and routes.

use crate::auth::{Principal, Principals};
use crate::config::Config;
use crate::route::Router;

pub struct GatewayState {
    pub config: Config,
    pub principals: Principals,
    pub router: Router,
}

impl GatewayState {
    pub fn new(config: Config) -> Result<Self, String> {
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
        Ok(GatewayState {
            config,
            principals,
            router,
        })
    }
}
