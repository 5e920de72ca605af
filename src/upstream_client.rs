//! The gateway's own requests to upstreams: the abort flow (ListParts,
//! Abort, verify), CreateMultipartUpload (whose UploadId must be recorded
//! before the client hears of it), and the ownership store. Small bodies
//! only; signed like every forwarded request; connections are pooled by
//! pingora's connector.

use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;

use crate::auth::crypto::sha256_hex;
use crate::config::{ResolvedCredentials, Timeouts};
use crate::resign::sign_request;
use crate::route::Upstream;
use crate::s3::uri::encode_component;
use crate::s3::{err, S3Error, S3ErrorCode};

/// Largest response body read (XML documents).
const MAX_BODY: usize = 4 << 20;

pub struct UpstreamClient {
    connector: Connector,
    /// The relay's connections (`open`, `release`), kept per thread.
    threads: crate::upstream_pool::ThreadPool,
    timeouts: Timeouts,
}

/// An upstream's answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// The S3 error code of an error body.
    pub fn error_code(&self) -> Option<String> {
        crate::s3::xml::first_text(&self.body, "Code")
    }
}

/// An upstream answer whose header was read and whose body was not.
pub struct ReadingReply {
    pub session: pingora::protocols::http::client::HttpSession,
    peer: pingora::upstreams::peer::HttpPeer,
    idle: std::time::Duration,
}

/// The peer's read and write timeouts on a session from the connector
/// (pingora's proxy sets them itself; its connector does not).
fn with_timeouts(
    session: &mut pingora::protocols::http::client::HttpSession,
    peer: &pingora::upstreams::peer::HttpPeer,
) {
    if let pingora::protocols::http::client::HttpSession::H1(h) = session {
        h.read_timeout = peer.options.read_timeout;
        h.write_timeout = peer.options.write_timeout;
    }
}

/// Why `open` got no answer: the gateway's own reason, or pingora's
/// (whose kind tells a timeout from a refusal).
#[derive(Debug)]
pub enum OpenError {
    S3(S3Error),
    Proxy(Box<pingora::Error>),
}

/// One request of the gateway's own.
pub struct Call<'a> {
    pub method: &'a str,
    pub bucket: Option<&'a str>,
    pub key: Option<&'a str>,
    pub query: Vec<(&'a str, String)>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl UpstreamClient {
    pub fn new(timeouts: Timeouts) -> Self {
        UpstreamClient {
            connector: Connector::new(None),
            threads: Default::default(),
            timeouts,
        }
    }

    pub async fn send(&self, up: &Upstream, call: Call<'_>) -> Result<Reply, S3Error> {
        let credentials = up.credentials.get().await?;
        let req = Self::prepare(up, &call, &credentials)?;
        self.send_prepared(up, call.bucket, req, call.body).await
    }

    /// The request header of `call`, addressed and signed with
    /// `credentials` (sync, so a flow can sign each attempt afresh).
    pub fn prepare(
        up: &Upstream,
        call: &Call<'_>,
        credentials: &ResolvedCredentials,
    ) -> Result<RequestHeader, S3Error> {
        let bad_gateway = |what: &str, e: &dyn std::fmt::Display| {
            err(
                S3ErrorCode::BadGateway,
                format!("The upstream {} failed ({what}: {e})", up.name),
            )
        };
        let (host, path) = up.locate(call.bucket, call.key);
        let mut q: Vec<String> = call
            .query
            .iter()
            .map(|(n, v)| {
                if v.is_empty() {
                    format!("{}=", encode_component(n))
                } else {
                    format!("{}={}", encode_component(n), encode_component(v))
                }
            })
            .collect();
        q.sort();
        let path_and_query = if q.is_empty() {
            path
        } else {
            format!("{path}?{}", q.join("&"))
        };
        let mut req = RequestHeader::build(call.method, path_and_query.as_bytes(), None)
            .map_err(|e| bad_gateway("request", &e))?;
        let hash = sha256_hex(&call.body);
        let set = |req: &mut RequestHeader, n: &'static str, v: String| {
            req.insert_header(n, v)
                .map_err(|e| bad_gateway("header", &e))
        };
        set(&mut req, "host", host.clone())?;
        set(&mut req, "x-amz-content-sha256", hash.clone())?;
        set(&mut req, "content-length", call.body.len().to_string())?;
        for (n, v) in &call.headers {
            set(&mut req, n, v.clone())?;
        }
        let scheme = if up.endpoint.tls { "https" } else { "http" };
        let uri = format!("{scheme}://{host}{path_and_query}");
        let (region, service) = up.signing(call.bucket);
        for (n, v) in sign_request(
            call.method,
            &uri,
            &req.headers,
            &hash,
            &crate::resign::SignFor {
                region: &region,
                service,
                credentials,
            },
            SystemTime::now(),
        )? {
            set(&mut req, n, v)?;
        }
        Ok(req)
    }

    /// Send a bodiless request header that is already addressed and
    /// signed, and read the answer's header; its body is the caller's to
    /// read (`ReadingReply::session`). A kept-alive connection that fails
    /// before an answer arrives is retried on another (the callers'
    /// requests are idempotent).
    pub async fn open(
        &self,
        up: &Upstream,
        bucket: Option<&str>,
        req: RequestHeader,
    ) -> Result<ReadingReply, OpenError> {
        let peer = crate::route::peer(up, bucket, &self.timeouts)
            .await
            .map_err(OpenError::S3)?;
        let mut attempts = 0;
        let mut connect_retried = false;
        loop {
            attempts += 1;
            let (mut session, reused) = match self.threads.session(&peer, self.timeouts.idle).await
            {
                Ok(s) => s,
                // A connection that could not be made sent nothing: once
                // more, as the proxy path does for idempotent requests.
                Err(_) if !connect_retried => {
                    connect_retried = true;
                    continue;
                }
                Err(e) => return Err(OpenError::Proxy(e.into_up())),
            };
            with_timeouts(&mut session, &peer);
            let sent = async {
                session.write_request_header(Box::new(req.clone())).await?;
                session.finish_request_body().await?;
                // An informational answer (100, 103) is not the answer.
                loop {
                    session.read_response_header().await?;
                    let status = session.response_header().map(|h| h.status.as_u16());
                    match status {
                        Some(101) => {
                            return pingora::Error::e_explain(
                                pingora::ErrorType::InvalidHTTPHeader,
                                "the upstream switched protocols",
                            )
                        }
                        Some(100..=199) => continue,
                        _ => return Ok(()),
                    }
                }
            }
            .await;
            match sent {
                Ok(()) => {
                    return Ok(ReadingReply {
                        session,
                        peer,
                        idle: self.timeouts.idle,
                    })
                }
                // A pooled connection the upstream had closed meanwhile
                // (not one that was merely slow).
                Err(e)
                    if reused
                        && attempts < 3
                        && !matches!(
                            e.etype(),
                            pingora::ErrorType::ReadTimedout | pingora::ErrorType::WriteTimedout
                        ) => {}
                Err(e) => return Err(OpenError::Proxy(e.into_up())),
            }
        }
    }

    /// Give a connection whose answer was read to its end back to the pool.
    pub async fn release(&self, reply: ReadingReply) {
        let ReadingReply {
            session,
            peer,
            idle,
        } = reply;
        self.threads.release(session, &peer, idle).await;
    }

    /// Send a request header that is already addressed and signed.
    pub async fn send_prepared(
        &self,
        up: &Upstream,
        bucket: Option<&str>,
        req: RequestHeader,
        body: Bytes,
    ) -> Result<Reply, S3Error> {
        let bad_gateway = |what: &str, e: &dyn std::fmt::Display| {
            err(
                S3ErrorCode::BadGateway,
                format!("The upstream {} failed ({what}: {e})", up.name),
            )
        };
        let peer = crate::route::peer(up, bucket, &self.timeouts).await?;
        let (mut session, _reused) = self
            .connector
            .get_http_session(&peer)
            .await
            .map_err(|e| bad_gateway("connect", &e))?;
        with_timeouts(&mut session, &peer);
        session
            .write_request_header(Box::new(req))
            .await
            .map_err(|e| bad_gateway("write", &e))?;
        if !body.is_empty() {
            session
                .write_request_body(body, true)
                .await
                .map_err(|e| bad_gateway("write body", &e))?;
        }
        session
            .finish_request_body()
            .await
            .map_err(|e| bad_gateway("finish", &e))?;
        session
            .read_response_header()
            .await
            .map_err(|e| bad_gateway("read", &e))?;
        let (status, headers) = match session.response_header() {
            Some(h) => (h.status.as_u16(), h.headers.clone()),
            None => {
                return Err(err(
                    S3ErrorCode::BadGateway,
                    format!("The upstream {} sent no response", up.name),
                ))
            }
        };
        let mut body = BytesMut::new();
        while let Some(chunk) = session
            .read_response_body()
            .await
            .map_err(|e| bad_gateway("read body", &e))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(err(
                    S3ErrorCode::BadGateway,
                    format!("The upstream {} sent too large a response", up.name),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        self.connector
            .release_http_session(session, &peer, Some(self.timeouts.idle))
            .await;
        Ok(Reply {
            status,
            headers,
            body: body.freeze(),
        })
    }
}
