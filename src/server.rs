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
        // pingora closes the listeners at SIGTERM, then waits this long for
        // in-flight requests before stopping its runtimes; `drain_on_sigterm`
        // ends the wait as soon as nothing is in flight.
        grace_period_seconds: Some(config.shutdown_grace_secs),
        graceful_shutdown_timeout_seconds: Some(5),
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
    let mut service = http_proxy_service_with_name(
        &server.configuration,
        Gateway {
            state: state.clone(),
        },
        "s3gate",
    );
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
    if let Some(admin) = &state.config.admin {
        let mut svc = pingora::services::listening::Service::new(
            "s3gate admin".to_string(),
            pingora::apps::http_app::HttpServer::new_app(crate::admin::Admin {
                state: state.clone(),
            }),
        );
        svc.add_tcp(&admin.address);
        tracing::info!(address = %admin.address, "admin listening (/healthz /readyz /metrics)");
        server.add_service(svc);
    }
    drain_on_sigterm(server.watch_execution_phase(), state.audit.clone());
    server.run_forever();
}

/// After SIGTERM, exit as soon as no request is in flight (the audit
/// writer syncs on the way out), instead of sleeping the whole grace
/// period. The grace period stays the upper bound.
fn drain_on_sigterm(
    mut phases: tokio::sync::broadcast::Receiver<pingora::server::ExecutionPhase>,
    audit: Option<Arc<crate::audit::AuditLog>>,
) {
    let spawned = std::thread::Builder::new()
        .name("drain".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            {
                Ok(rt) => rt,
                Err(_) => return,
            };
            rt.block_on(async move {
                loop {
                    match phases.recv().await {
                        Ok(pingora::server::ExecutionPhase::GracefulTerminate) => break,
                        Ok(_) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return,
                    }
                }
                tracing::info!("SIGTERM: listeners closed, waiting for in-flight requests");
                let m = crate::metrics::get();
                // Let requests accepted just before the listeners closed register.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                while m.in_flight.load(std::sync::atomic::Ordering::Relaxed) > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                if let Some(a) = &audit {
                    let _ = a.sync().await;
                }
                tracing::info!("SIGTERM: drained, exiting");
                std::process::exit(0);
            });
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the shutdown drainer: {e}");
    }
}
