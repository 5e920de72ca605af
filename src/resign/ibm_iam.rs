//! IBM Cloud IAM credentials for COS (`credentials: { ibm_iam: { api_key } }`):
//! the API key is exchanged at the IAM token endpoint (a form POST,
//! `grant_type=urn:ibm:params:oauth:grant-type:apikey`) for an access
//! token, which goes upstream as `Authorization: Bearer` instead of a
//! SigV4 signature.
//!
//! The token is cached. In the last third of its life (at most five
//! minutes) a request still uses it while a background task exchanges the
//! key again; only a token that has actually expired (or is about to, in
//! its last tenth, at most ten seconds) makes a request wait, and then one
//! exchange serves every waiting request. IAM failures become `502` naming
//! IAM; the key appears in no message and no log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use serde::Deserialize;

use crate::config::{Endpoint, ResolvedCredentials, Timeouts};
use crate::s3::{err, S3Error, S3ErrorCode};
use crate::secret::Secret;

/// Largest IAM answer read.
const MAX_BODY: usize = 64 << 10;
const GRANT_TYPE: &str = "urn:ibm:params:oauth:grant-type:apikey";

struct Token {
    token: Secret,
    obtained: SystemTime,
    expires: SystemTime,
}

impl Token {
    fn lifetime(&self) -> Duration {
        self.expires
            .duration_since(self.obtained)
            .unwrap_or_default()
    }
    /// From then on, refresh in the background.
    fn refresh_at(&self) -> SystemTime {
        let early = (self.lifetime() / 3).min(Duration::from_secs(300));
        self.expires.checked_sub(early).unwrap_or(self.obtained)
    }
    /// From then on, the token may expire on its way: wait for a new one.
    fn stale_at(&self) -> SystemTime {
        let margin = (self.lifetime() / 10).min(Duration::from_secs(10));
        self.expires.checked_sub(margin).unwrap_or(self.obtained)
    }
}

pub struct IbmIam {
    upstream: String,
    api_key: Secret,
    endpoint: Endpoint,
    path: String,
    timeouts: Timeouts,
    connector: Connector,
    cache: RwLock<Option<Arc<Token>>>,
    refreshing: AtomicBool,
    /// One exchange at a time; waiting requests share its token.
    exchange: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for IbmIam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "IbmIam({}://{}{})",
            if self.endpoint.tls { "https" } else { "http" },
            self.endpoint.authority(&self.endpoint.host),
            self.path
        )
    }
}

/// The IAM token answer (fields IAM documents; others are ignored).
#[derive(Deserialize)]
struct Answer {
    access_token: Option<String>,
    expires_in: Option<u64>,
    /// Unix seconds.
    expiration: Option<u64>,
    #[serde(rename = "errorCode")]
    error_code: Option<String>,
}

impl IbmIam {
    pub fn new(
        upstream: &str,
        api_key: Secret,
        endpoint: Endpoint,
        path: String,
        timeouts: Timeouts,
    ) -> Self {
        IbmIam {
            upstream: upstream.to_string(),
            api_key,
            endpoint,
            path,
            timeouts,
            connector: Connector::new(None),
            cache: RwLock::new(None),
            refreshing: AtomicBool::new(false),
            exchange: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self) -> Option<Arc<Token>> {
        self.cache.read().ok()?.clone()
    }

    /// The bearer token to send now.
    pub async fn get(self: &Arc<Self>) -> Result<ResolvedCredentials, S3Error> {
        let now = SystemTime::now();
        if let Some(t) = self.cached() {
            if now < t.stale_at() {
                if now >= t.refresh_at() && !self.refreshing.swap(true, Ordering::SeqCst) {
                    let me = self.clone();
                    let current = t.clone();
                    tokio::spawn(async move {
                        if let Err(e) = me.refresh(current).await {
                            tracing::warn!(upstream = %me.upstream, "IAM token refresh failed, keeping the current token: {}", e.message);
                        }
                        me.refreshing.store(false, Ordering::SeqCst);
                    });
                }
                return Ok(ResolvedCredentials::bearer(t.token.clone()));
            }
        }
        let t = match self.cached() {
            Some(seen) => self.refresh(seen).await?,
            None => self.first().await?,
        };
        Ok(ResolvedCredentials::bearer(t.token.clone()))
    }

    /// The first token (requests that arrive together share one exchange).
    async fn first(&self) -> Result<Arc<Token>, S3Error> {
        let _one = self.exchange.lock().await;
        match self.cached() {
            Some(t) if SystemTime::now() < t.stale_at() => Ok(t),
            _ => Ok(self.store(self.exchange_key().await?)),
        }
    }

    /// Replace `seen` with a new token, unless another exchange already did.
    async fn refresh(&self, seen: Arc<Token>) -> Result<Arc<Token>, S3Error> {
        let _one = self.exchange.lock().await;
        if let Some(t) = self.cached() {
            if !Arc::ptr_eq(&seen, &t) && SystemTime::now() < t.stale_at() {
                return Ok(t);
            }
        }
        Ok(self.store(self.exchange_key().await?))
    }

    fn store(&self, t: Token) -> Arc<Token> {
        let t = Arc::new(t);
        tracing::debug!(upstream = %self.upstream, lifetime = ?t.lifetime(), "IAM token obtained");
        if let Ok(mut g) = self.cache.write() {
            *g = Some(t.clone());
        }
        t
    }

    fn failed(&self, why: impl std::fmt::Display) -> S3Error {
        // The key never travels in a message, even if an answer echoed it.
        let why = why.to_string().replace(self.api_key.expose(), "<redacted>");
        err(
            S3ErrorCode::BadGateway,
            format!(
                "IBM Cloud IAM did not issue a token for upstream {} ({why})",
                self.upstream
            ),
        )
    }

    async fn exchange_key(&self) -> Result<Token, S3Error> {
        let body = Bytes::from(format!(
            "grant_type={}&apikey={}",
            crate::s3::uri::encode_component(GRANT_TYPE),
            crate::s3::uri::encode_component(self.api_key.expose())
        ));
        let (status, answer) = self.post(body).await?;
        let obtained = SystemTime::now();
        let a: Answer = serde_json::from_slice(&answer).map_err(|_| {
            self.failed(format!("status {status}, an answer that is not IAM's JSON"))
        })?;
        let token = match (status, a.access_token) {
            (200, Some(t)) if !t.is_empty() => t,
            _ => {
                return Err(self.failed(format!(
                    "status {status}{}",
                    a.error_code.map(|c| format!(" {c}")).unwrap_or_default()
                )))
            }
        };
        let lifetime = match (a.expires_in, a.expiration) {
            (Some(s), _) => Duration::from_secs(s),
            (None, Some(at)) => (UNIX_EPOCH + Duration::from_secs(at))
                .duration_since(obtained)
                .unwrap_or_default(),
            (None, None) => Duration::from_secs(3600),
        };
        Ok(Token {
            token: Secret::new(token),
            obtained,
            expires: obtained + lifetime,
        })
    }

    async fn post(&self, body: Bytes) -> Result<(u16, Bytes), S3Error> {
        let e = &self.endpoint;
        let host = e.host.trim_matches(['[', ']']).to_string();
        let addr = tokio::net::lookup_host((host.clone(), e.port))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| self.failed(format!("{host} cannot be resolved")))?;
        let mut peer = pingora::upstreams::peer::HttpPeer::new(addr, e.tls, host);
        peer.options.connection_timeout = Some(self.timeouts.connect);
        peer.options.read_timeout = Some(self.timeouts.read.min(Duration::from_secs(30)));
        peer.options.write_timeout = Some(self.timeouts.read.min(Duration::from_secs(30)));
        let mut req =
            RequestHeader::build("POST", self.path.as_bytes(), None).map_err(|x| self.failed(x))?;
        for (n, v) in [
            ("host", e.authority(&e.host)),
            ("content-type", "application/x-www-form-urlencoded".into()),
            ("accept", "application/json".into()),
            ("content-length", body.len().to_string()),
        ] {
            req.insert_header(n, v).map_err(|x| self.failed(x))?;
        }
        let (mut session, _) = self
            .connector
            .get_http_session(&peer)
            .await
            .map_err(|x| self.failed(format!("connect: {x}")))?;
        session
            .write_request_header(Box::new(req))
            .await
            .map_err(|x| self.failed(x))?;
        session
            .write_request_body(body, true)
            .await
            .map_err(|x| self.failed(x))?;
        session
            .finish_request_body()
            .await
            .map_err(|x| self.failed(x))?;
        session
            .read_response_header()
            .await
            .map_err(|x| self.failed(format!("read: {x}")))?;
        let status = session
            .response_header()
            .map(|h| h.status.as_u16())
            .ok_or_else(|| self.failed("no answer"))?;
        let mut answer = BytesMut::new();
        while let Some(chunk) = session
            .read_response_body()
            .await
            .map_err(|x| self.failed(format!("read: {x}")))?
        {
            if answer.len() + chunk.len() > MAX_BODY {
                return Err(self.failed("too large an answer"));
            }
            answer.extend_from_slice(&chunk);
        }
        self.connector
            .release_http_session(session, &peer, Some(self.timeouts.idle))
            .await;
        Ok((status, answer.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(life: u64) -> Token {
        let obtained = UNIX_EPOCH + Duration::from_secs(1_000_000);
        Token {
            token: Secret::new("t".into()),
            obtained,
            expires: obtained + Duration::from_secs(life),
        }
    }

    #[test]
    fn refreshes_in_the_last_third_and_waits_only_at_the_end() {
        let t = token(3600);
        let start = t.obtained;
        assert_eq!(
            t.refresh_at(),
            start + Duration::from_secs(3300),
            "5 min early at most"
        );
        assert_eq!(
            t.stale_at(),
            start + Duration::from_secs(3590),
            "10 s early at most"
        );
        let short = token(6);
        assert_eq!(short.refresh_at(), start + Duration::from_secs(4));
        assert_eq!(short.stale_at(), start + Duration::from_millis(5400));
    }

    #[test]
    fn debug_names_the_endpoint_not_the_key() {
        let iam = IbmIam::new(
            "cos",
            Secret::new("my-api-key-0001".into()),
            Endpoint::parse("https://iam.cloud.ibm.com").unwrap(),
            "/identity/token".into(),
            Timeouts::default(),
        );
        let shown = format!("{iam:?}");
        assert_eq!(shown, "IbmIam(https://iam.cloud.ibm.com/identity/token)");
        let e = iam.failed("echo my-api-key-0001");
        assert!(!e.message.contains("my-api-key-0001"), "{}", e.message);
        assert!(e.message.contains("IBM Cloud IAM"), "{}", e.message);
    }
}
