//! `scheme://host[:port]` of an upstream, parsed once from the config.

/// `scheme://host[:port]` of an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

/// Why text is not an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("`{0}` must start with http:// or https://")]
    Scheme(String),
    #[error("`{0}` must be scheme://host[:port] without a path")]
    Path(String),
    #[error("`{0}`: unclosed IPv6 literal")]
    Ipv6(String),
    #[error("`{text}`: invalid port ({source})")]
    Port {
        text: String,
        #[source]
        source: std::num::ParseIntError,
    },
}

impl Endpoint {
    pub fn parse(s: &str) -> Result<Endpoint, EndpointError> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(EndpointError::Scheme(s.to_string()));
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.is_empty() {
            return Err(EndpointError::Path(s.to_string()));
        }
        let default_port = if tls { 443 } else { 80 };
        let bad_port = |source| EndpointError::Port {
            text: s.to_string(),
            source,
        };
        let (host, port) = if rest.starts_with('[') {
            let (h, p) = rest
                .split_once(']')
                .ok_or_else(|| EndpointError::Ipv6(s.to_string()))?;
            let port = match p.strip_prefix(':') {
                Some(p) => p.parse().map_err(bad_port)?,
                None => default_port,
            };
            (format!("{h}]"), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(bad_port)?),
                None => (rest.to_string(), default_port),
            }
        };
        Ok(Endpoint { tls, host, port })
    }

    /// AWS's regional S3 endpoint (dual-stack / FIPS on request).
    pub fn aws(region: &str, dualstack: bool, fips: bool) -> Endpoint {
        Endpoint {
            tls: true,
            host: aws_s3_host(region, dualstack, fips),
            port: 443,
        }
    }

    /// The authority for a Host header: the port only when not the default.
    pub fn authority(&self, host: &str) -> String {
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host.to_string()
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// The regional S3 endpoint host of AWS (dual-stack / FIPS variants).
pub fn aws_s3_host(region: &str, dualstack: bool, fips: bool) -> String {
    let svc = if fips { "s3-fips" } else { "s3" };
    let ds = if dualstack { ".dualstack" } else { "" };
    format!("{svc}{ds}.{region}.amazonaws.com")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:3900").unwrap();
        assert_eq!((e.tls, e.host.as_str(), e.port), (false, "127.0.0.1", 3900));
        let e = Endpoint::parse("https://s3.eu-de.cloud-object-storage.appdomain.cloud/").unwrap();
        assert_eq!(e.port, 443);
        assert_eq!(
            e.authority(&e.host),
            "s3.eu-de.cloud-object-storage.appdomain.cloud"
        );
        let e = Endpoint::parse("http://[::1]:3900").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("[::1]", 3900));
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("http://x/path").is_err());
        let e = Endpoint::parse("http://x:port").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`http://x:port`: invalid port (invalid digit found in string)"
        );
    }

    #[test]
    fn aws_hosts() {
        assert_eq!(
            aws_s3_host("eu-west-1", true, true),
            "s3-fips.dualstack.eu-west-1.amazonaws.com"
        );
        assert_eq!(Endpoint::aws("us-east-1", false, false).authority("h"), "h");
    }
}
