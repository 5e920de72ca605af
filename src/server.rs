//! Building the pingora server from the config: one proxy service with a
//! listener per `listen` entry, behind the connection limits of `limits`.

mod limits;
mod port_zero;

use std::net::SocketAddr;
use std::sync::Arc;

use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::listening::Service;

use crate::config::{Config, ConfigError};
use crate::gateway::Gateway;
use crate::state::{GatewayState, StateError};

/// Why the gateway did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("policies do not load:\n{}", list(.0))]
    Policies(Vec<ConfigError>),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("cannot listen: {0}")]
    Bind(#[source] std::io::Error),
    #[error("TLS listener {address}: {source}")]
    Tls {
        address: SocketAddr,
        #[source]
        source: Box<pingora::Error>,
    },
}

fn list(errors: &[ConfigError]) -> String {
    let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    list.join("\n")
}

/// Start serving; returns only on a start-up error (pingora exits the
/// process on SIGTERM/SIGINT after a graceful shutdown).
pub fn serve(config: Config) -> Result<(), ServeError> {
    // pingora uses rustls with ring; pick the provider explicitly since
    // other crates in the build may enable aws-lc-rs too.
    pingora::tls::install_default_crypto_provider();
    let listen = config.listen.clone();
    let conf = ServerConf {
        threads: config.threads.max(1),
        // pingora closes the listeners at SIGTERM, then waits this long for
        // in-flight requests before stopping its runtimes; `drain_on_sigterm`
        // ends the wait as soon as nothing is in flight.
        grace_period_seconds: Some(config.shutdown_grace.as_secs()),
        graceful_shutdown_timeout_seconds: Some(5),
        // One single-threaded runtime per thread: a connection, its request
        // and its upstream call stay on one thread (no work-stealing hand
        // offs between cores on the request path).
        work_stealing: false,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let policies = crate::state::load_policies(&config).map_err(ServeError::Policies)?;
    let state = Arc::new(GatewayState::new(config, policies)?);
    match &state.policies {
        Some(store) => {
            store.watch();
            store.reload_on_sighup();
            tracing::info!(statements = store.current().statements.len(), version = %store.current().version, mode = ?state.mode, "policies loaded");
        }
        None => tracing::warn!("no policies configured: every authenticated principal may do everything on the routed buckets"),
    }
    // Port 0 is bound here, so the log and the connection limits know the port.
    let mut sockets = Vec::new();
    let mut bound = Vec::with_capacity(listen.len());
    for l in &listen {
        let (address, socket) = port_zero::bind(l.address).map_err(ServeError::Bind)?;
        sockets.extend(socket.map(|s| (address.to_string(), s)));
        bound.push(address);
    }
    let addresses: Vec<SocketAddr> = bound.clone();
    let limits = state.config.limits;
    let proxy = pingora::proxy::http_proxy(
        &server.configuration,
        Gateway {
            state: state.clone(),
        },
    );
    let mut service = Service::new(
        "s3gate".to_string(),
        limits::Limited::new(proxy, limits, &addresses),
    );
    for (l, address) in listen.iter().zip(&bound) {
        let endpoint = ListenerConfig::tcp(address.to_string().as_str());
        let endpoint = match &l.tls {
            None => endpoint.l4_buffer(read_buffer(false)),
            Some(tls) => endpoint
                .tls(
                    TlsSettings::intermediate(
                        &tls.cert.to_string_lossy(),
                        &tls.key.to_string_lossy(),
                    )
                    .map_err(|source| ServeError::Tls {
                        address: l.address,
                        source,
                    })?,
                )
                .l4_buffer(read_buffer(true)),
        };
        service.add_listener(endpoint);
        tracing::info!(kind = %"s3", address = %address, tls = l.tls.is_some(), "listening");
    }
    server.add_service(port_zero::PreBound { service, sockets });
    if let Some(admin) = &state.config.admin {
        let app = pingora::apps::http_app::HttpServer::new_app(crate::admin::Admin {
            state: state.clone(),
        });
        let (address, socket) = port_zero::bind(admin.address).map_err(ServeError::Bind)?;
        let mut svc = Service::new(
            "s3gate admin".to_string(),
            limits::Limited::new(app, limits, &[address]),
        );
        svc.add_listener(
            ListenerConfig::tcp(address.to_string().as_str()).l4_buffer(read_buffer(false)),
        );
        tracing::info!(kind = %"admin", address = %address, "listening (/healthz /readyz /metrics)");
        let sockets = socket
            .map(|s| (address.to_string(), s))
            .into_iter()
            .collect();
        server.add_service(port_zero::PreBound {
            service: svc,
            sockets,
        });
    }
    if let Some(reaper) = &state.reaper {
        server.add_service(pingora::services::background::background_service(
            "reaper",
            ReaperService(reaper.clone()),
        ));
    }
    let listeners = addresses.len() + usize::from(state.config.admin.is_some());
    warn_if_too_few_files(limits.max_connections.saturating_mul(listeners));
    drain_on_sigterm(server.watch_execution_phase(), state.audit.clone());
    server.run_forever();
}

/// The reaper on a runtime of its own (a pingora background service,
/// one thread), stopped by pingora's shutdown signal.
struct ReaperService(Arc<crate::multipart::reaper::Reaper>);

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for ReaperService {
    async fn start(&self, shutdown: pingora::server::ShutdownWatch) {
        self.0.run(shutdown).await;
    }
}

/// The read buffer in front of each client socket. pingora's default (64
/// KiB per connection, kept for the connection's life) would let idle
/// keep-alive connections pin most of a small pod's memory. Plain HTTP reads
/// go straight into pingora's own head and body buffers, so they need none;
/// TLS reads a record (up to 16 KiB) at a time, so one record's worth saves
/// most of the system calls.
fn read_buffer(tls: bool) -> L4BufferSettings {
    L4BufferSettings::default().read(if tls { 16 * 1024 } else { 0 })
}

/// Each open connection is a file descriptor: say so at start when the
/// process may not open as many as the connection limits allow.
fn warn_if_too_few_files(connections: usize) {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<usize>().ok())
        });
    // Upstream connections, the audit log and the policy watcher need some too.
    let needed = connections.saturating_add(256);
    if let Some(soft) = soft.filter(|&s| s < needed) {
        tracing::warn!(
            open_files = soft,
            needed,
            "the open-files limit is below what limits.max_connections allows: raise it (ulimit -n) or lower max_connections"
        );
    }
}

/// After SIGTERM, exit as soon as no request is in flight (the audit
/// writer syncs on the way out), instead of sleeping the whole grace
/// period. The grace period stays the upper bound.
///
/// SIGINT stops at once: pingora's fast shutdown does not tell the
/// listeners to stop, and their accept loops, left on runtimes being shut
/// down, spin (an error line per failed accept) and keep the process
/// alive; so the audit log is synced and the process exits here.
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
                Err(e) => {
                    tracing::warn!("cannot start the shutdown drainer: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                loop {
                    match phases.recv().await {
                        Ok(pingora::server::ExecutionPhase::GracefulTerminate) => break,
                        // Shutting down without GracefulTerminate first: SIGINT.
                        Ok(pingora::server::ExecutionPhase::ShutdownStarted) => {
                            tracing::info!("SIGINT: stopping at once");
                            if let Some(a) = &audit {
                                if let Err(e) = a.sync().await {
                                    tracing::error!("audit log not synced at shutdown: {e}");
                                }
                            }
                            std::process::exit(0);
                        }
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
                    if let Err(e) = a.sync().await {
                        tracing::error!("audit log not synced at shutdown: {e}");
                    }
                }
                tracing::info!("SIGTERM: drained, exiting");
                std::process::exit(0);
            });
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the shutdown drainer: {e}");
    }
}
