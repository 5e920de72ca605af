//! The admin listener: `/healthz` (process up), `/readyz` (config and
//! policies loaded, upstreams resolvable), `/metrics` (Prometheus).

use std::sync::Arc;

use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::state::GatewayState;

pub struct Admin {
    pub state: Arc<GatewayState>,
}

fn text(status: u16, body: String, content_type: &str) -> Response<Vec<u8>> {
    let body = body.into_bytes();
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len().to_string())
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()))
}

impl Admin {
    /// Reasons the gateway is not ready (empty: ready).
    async fn not_ready(&self) -> Vec<String> {
        let mut why = Vec::new();
        if let Some(p) = &self.state.policies {
            if p.current().statements.is_empty() {
                why.push("no policy statements loaded".to_string());
            }
        }
        // The same resolution a request does (connect_to, or DNS of the host).
        for up in self.state.router.upstreams.values() {
            if let Err(e) = crate::route::peer(up, None, &self.state.config.timeouts).await {
                why.push(e.message);
            }
        }
        why
    }
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        match session.req_header().uri.path() {
            "/healthz" => text(200, "ok\n".into(), "text/plain"),
            "/readyz" => {
                let why = self.not_ready().await;
                if why.is_empty() {
                    text(200, "ready\n".into(), "text/plain")
                } else {
                    text(
                        503,
                        format!("not ready: {}\n", why.join("; ")),
                        "text/plain",
                    )
                }
            }
            "/metrics" => {
                let m = crate::metrics::get();
                if let Some(p) = &self.state.policies {
                    m.reloads_ok.store(
                        p.reloads_ok.load(std::sync::atomic::Ordering::Relaxed),
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    m.reloads_failed.store(
                        p.reloads_failed.load(std::sync::atomic::Ordering::Relaxed),
                        std::sync::atomic::Ordering::Relaxed,
                    );
                }
                text(200, m.render(), "text/plain; version=0.0.4")
            }
            _ => text(
                404,
                "not found: try /healthz, /readyz or /metrics\n".into(),
                "text/plain",
            ),
        }
    }
}
