//! What admission sees of a request: method, target, headers and the
//! client's connection facts. Built from a pingora session by `serve`, or
//! from command-line arguments by `explain`, so both decide alike.

use std::net::IpAddr;

use http::HeaderMap;

#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// The path exactly as sent (still percent-encoded).
    pub raw_path: &'a str,
    /// The query exactly as sent, without `?`.
    pub raw_query: Option<&'a str>,
    /// `Host`, or the authority of an absolute-form target.
    pub host: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub source_ip: Option<IpAddr>,
    /// The TLS version when the client connected over TLS.
    pub tls: Option<&'a str>,
}

impl<'a> RequestView<'a> {
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A pingora request header and the connection facts.
    pub fn of(
        req: &'a pingora::http::RequestHeader,
        source_ip: Option<IpAddr>,
        tls: Option<&'a str>,
    ) -> Self {
        let headers = &req.headers;
        RequestView {
            method: req.method.as_str(),
            raw_path: req.uri.path(),
            raw_query: req.uri.query(),
            host: headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri.authority().map(|a| a.as_str())),
            headers,
            source_ip,
            tls,
        }
    }
}
