//! Building the pingora server from the config: one proxy service with a
//! listener per `listen` entry.

use std::sync::Arc;

use pingora::proxy::http_proxy_service_with_name;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;

use crate::config::Config;
use crate::gateway::Gateway;
use crate::state::GatewayState;

/// Start serving; returns only on a start-up error (pingora exits the
/// process on SIGTERM/SIGINT after a graceful shutdown).
pub fn serve(config: Config) -> anyhow::Result<()> {
    // pingora uses rustls with ring; pick the provider explicitly since
    // other crates in the build may enable aws-lc-rs too.
    pingora::tls::install_default_crypto_provider();
    let listen = config.listen.clone();
    let conf = ServerConf {
        threads: config.threads.max(1),
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(30),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let policies = crate::state::load_policies(&config).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        anyhow::anyhow!("policies do not load:\n{}", list.join("\n"))
    })?;
    let state = Arc::new(GatewayState::new(config, policies).map_err(anyhow::Error::msg)?);
    match &state.policies {
        Some(store) => {
            store.watch();
            store.reload_on_sighup();
            tracing::info!(statements = store.current().statements.len(), mode = ?state.mode, "policies loaded");
        }
        None => tracing::warn!("no policies configured: every authenticated principal may do everything on the routed buckets"),
    }
    let mut service =
        http_proxy_service_with_name(&server.configuration, Gateway { state }, "s3gate");
    for l in &listen {
        match &l.tls {
            None => service.add_tcp(&l.address),
            Some(tls) => service
                .add_tls(
                    &l.address,
                    &tls.cert.to_string_lossy(),
                    &tls.key.to_string_lossy(),
                )
                .map_err(|e| anyhow::anyhow!("TLS listener {}: {e}", l.address))?,
        }
        tracing::info!(address = %l.address, tls = l.tls.is_some(), "listening");
    }
    server.add_service(service);
    server.run_forever();
}
