//! Fuzz targets, shared by the cargo-fuzz crate (`fuzz/`) and the stable
//! replay test (`tests/fuzz_corpora.rs`), so both run the same code.
//!
//! Every `pub fn` here takes arbitrary bytes and must never panic: it calls
//! the real parsers and verifiers, and panics only when a property the
//! gateway relies on does not hold (a finding). See `fuzz/README.md`.
//!
//! The request targets (`operation`, `round_trip`, `sigv4`, `sigv2`) read
//! an HTTP-like request head:
//!
//! ```text
//! METHOD TARGET          (TARGET: path, optionally ?query)
//! Name: value            (headers; Host and x-amz-copy-source included)
//! ```

use std::collections::HashSet;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use quick_xml::events::Event;
use quick_xml::Reader;
use sha2::{Digest, Sha256};

use crate::auth::checksum::{Checksum, ChecksumAlgorithm};
use crate::auth::chunked::ChunkedDecoder;
use crate::auth::crypto::{hmac_sha256, sha256_hex, signing_key, EMPTY_SHA256};
use crate::auth::payload::BodyVerifier;
use crate::auth::{ChunkSigning, Identity, PayloadMode, Principal, Principals, Secret};
use crate::s3::addressing::address;
use crate::s3::uri::{encode_component, encode_path};
use crate::s3::{Addressed, Query, S3Request};

/// The gateway's own hostnames (virtual-hosted style below them); those of
/// the AWS documentation examples first, so their signatures verify.
const HOSTNAMES: &[&str] = &[
    "us-west-1.s3.amazonaws.com",
    "s3.us-west-1.amazonaws.com",
    "s3.amazonaws.com",
    "s3.example.com",
    "localhost",
];
/// The upstream the round trip renders for.
const UPSTREAM_HOST: &str = "upstream.example.net";

fn hostnames() -> &'static [String] {
    static H: OnceLock<Vec<String>> = OnceLock::new();
    H.get_or_init(|| HOSTNAMES.iter().map(|h| h.to_string()).collect())
}

fn upstream_hostnames() -> &'static [String] {
    static H: OnceLock<Vec<String>> = OnceLock::new();
    H.get_or_init(|| vec![UPSTREAM_HOST.to_string()])
}

/// The AWS documentation's example credentials (the seeds are signed with them).
pub const ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn principals() -> &'static Principals {
    static P: OnceLock<Principals> = OnceLock::new();
    P.get_or_init(|| {
        Principals::new(vec![
            Principal {
                name: "example".into(),
                access_key_id: ACCESS_KEY_ID.into(),
                secret: Secret::new(SECRET_KEY.into()),
            },
            Principal {
                name: "alice".into(),
                access_key_id: "AKIAALICE".into(),
                secret: Secret::new("alice-secret".into()),
            },
        ])
    })
}

// ---------------------------------------------------------------------------
// Request heads

/// The next line (without CR LF) of `rest`, None at the end.
fn next_line<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    if rest.is_empty() {
        return None;
    }
    let (line, after) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (*rest, &[][..]),
    };
    *rest = after;
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

/// A request as the fuzz input describes it.
struct RawRequest {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
}

impl RawRequest {
    /// `METHOD TARGET` then `Name: value` lines, up to an empty line (the
    /// rest is returned as the body). Header lines that are no valid HTTP
    /// header are skipped, as the HTTP layer would refuse them.
    fn parse(data: &[u8]) -> (RawRequest, &[u8]) {
        let mut rest = data;
        let first = next_line(&mut rest).unwrap_or_default();
        let first = String::from_utf8_lossy(first).into_owned();
        let (method, target) = first.split_once(' ').unwrap_or((first.as_str(), "/"));
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (target.to_string(), None),
        };
        let mut headers = HeaderMap::new();
        while let Some(line) = next_line(&mut rest) {
            if line.is_empty() {
                break;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let name = line[..colon].trim_ascii();
            let value = line[colon + 1..].trim_ascii();
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(&name.to_ascii_lowercase()),
                HeaderValue::from_bytes(value),
            ) {
                headers.append(n, v);
            }
        }
        (
            RawRequest {
                method: method.to_string(),
                path,
                query,
                headers,
            },
            rest,
        )
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn view(&self) -> crate::admit::view::RequestView<'_> {
        crate::admit::view::RequestView {
            method: &self.method,
            raw_path: &self.path,
            raw_query: self.query.as_deref(),
            host: self.header("host"),
            headers: &self.headers,
            source_ip: None,
            tls: None,
        }
    }

    /// Addressing and operation, as the parse stage runs them.
    fn s3_request(&self) -> Option<S3Request> {
        let query = Query::parse(self.query.as_deref())?;
        let addr = address(self.header("host"), &self.path, hostnames()).ok()?;
        S3Request::parse(
            &self.method,
            &addr,
            &query,
            self.header("x-amz-copy-source"),
        )
        .ok()
    }
}

/// Use what is derived from a named request, as the later stages do.
fn exercise(req: &S3Request, headers: &HeaderMap) {
    let op = &req.op;
    let _ = (op.name(), op.has_request_body(), op.upload_id());
    let _ = (op.version_id(), op.copy_source(), req.upstream_query());
    let (b, k) = (req.bucket.as_deref(), req.key.as_deref());
    let _ = crate::policy::actions::needs(op, b, k);
    let _ = crate::policy::actions::header_needs(op, headers, b, k);
    let facts = crate::policy::context::Facts {
        principal: "example",
        auth: None,
        source_ip: None,
        tls: None,
        headers,
        request: req,
        upstream: Some("up"),
        owner: None,
        initiator: None,
        content_length: None,
    };
    let _ = crate::policy::context::build(&facts, UNIX_EPOCH + Duration::from_secs(1_700_000_000));
}

/// Target `operation`: addressing, query and operation naming, and the
/// parse stage's header checks.
pub fn operation(data: &[u8]) {
    let (r, _) = RawRequest::parse(data);
    if let Some(q) = Query::parse(r.query.as_deref()) {
        let _ = q.canonical(|_| false);
        if let Ok(addr) = address(r.header("host"), &r.path, hostnames()) {
            match S3Request::parse(&r.method, &addr, &q, r.header("x-amz-copy-source")) {
                Ok(req) => exercise(&req, &r.headers),
                Err(e) => drop(e.to_xml("fuzz")),
            }
        }
    }
    match crate::admit::parse::parse(&r.view(), hostnames()) {
        Ok(p) => exercise(&p.request, &r.headers),
        Err(e) => drop(e.to_xml("fuzz")),
    }
    if let Some(src) = r.header("x-amz-copy-source") {
        let _ = crate::s3::operation::parse_copy_source(src);
    }
}

/// How the upstream request is addressed.
#[derive(Debug, Clone, Copy)]
enum Style {
    Path,
    Virtual,
}

/// Host and path of the upstream request, as `route::Upstream::locate`
/// renders them.
fn locate(style: Style, bucket: Option<&str>, key: Option<&str>) -> (String, String) {
    let key_path = key.map(encode_path).unwrap_or_default();
    match (bucket, style) {
        (Some(b), Style::Virtual) => (format!("{b}.{UPSTREAM_HOST}"), format!("/{key_path}")),
        (Some(b), Style::Path) => {
            let path = if key.is_some() {
                format!("/{}/{key_path}", encode_path(b))
            } else {
                format!("/{}", encode_path(b))
            };
            (UPSTREAM_HOST.to_string(), path)
        }
        (None, _) => (UPSTREAM_HOST.to_string(), "/".to_string()),
    }
}

/// Target `round_trip`: a request that parses renders an upstream request
/// (path, query, copy source) that parses back to the same operation with
/// the same parameters, in both addressing styles.
pub fn round_trip(data: &[u8]) {
    let (r, _) = RawRequest::parse(data);
    let Some(req) = r.s3_request() else {
        return;
    };
    for style in [Style::Path, Style::Virtual] {
        let (host, path) = locate(style, req.bucket.as_deref(), req.key.as_deref());
        let query = req.upstream_query();
        let path_and_query = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        // As `forward::rewrite` does; an error there is a 400 for a request
        // that was admitted.
        let uri: http::Uri = path_and_query.parse().unwrap_or_else(|e| {
            panic!("{style:?}: the rendered target {path_and_query:?} is not a URI: {e}")
        });
        // As `forward::rewrite` renders the copy source (routed to itself).
        let copy = req.op.copy_source().map(|src| {
            let mut v = format!("/{}/{}", encode_path(&src.bucket), encode_path(&src.key));
            if let Some(ver) = &src.version_id {
                v.push_str("?versionId=");
                v.push_str(&encode_component(ver));
            }
            v
        });
        let what = || format!("{style:?}: {} {uri} (from {:?})", r.method, req);
        let q = Query::parse(uri.query())
            .unwrap_or_else(|| panic!("{}: the rendered query is not UTF-8", what()));
        let addr = address(Some(&host), uri.path(), upstream_hostnames())
            .unwrap_or_else(|e| panic!("{}: rendered path refused: {e}", what()));
        let again = S3Request::parse(&r.method, &addr, &q, copy.as_deref())
            .unwrap_or_else(|e| panic!("{}: rendered request refused: {e}", what()));
        assert_eq!(again.op, req.op, "{}", what());
        assert_eq!(again.bucket, req.bucket, "{}", what());
        assert_eq!(again.key, req.key, "{}", what());
        assert_eq!(again.params, req.params, "{}", what());
        assert_eq!(again.upstream_query(), query, "{}", what());
    }
}

// ---------------------------------------------------------------------------
// Authentication

fn at(s: &str) -> SystemTime {
    crate::auth::time::parse_amz_date(s).unwrap_or(UNIX_EPOCH)
}

fn authenticate(data: &[u8], now: SystemTime) {
    let (r, _) = RawRequest::parse(data);
    let Some(query) = Query::parse(r.query.as_deref()) else {
        return;
    };
    let addr = address(r.header("host"), &r.path, hostnames()).unwrap_or(Addressed {
        bucket: None,
        key: None,
        virtual_host: false,
    });
    let view = crate::auth::RequestView {
        method: &r.method,
        raw_path: &r.path,
        query: &query,
        headers: &r.headers,
    };
    // At the target's time, and at the time the request says it was signed
    // (so that mutated dates still reach the signature checks).
    let claimed = r
        .header("x-amz-date")
        .and_then(crate::auth::time::parse_amz_date)
        .or_else(|| {
            ["x-amz-date", "date"]
                .iter()
                .find_map(|h| r.header(h).and_then(crate::auth::time::parse_http_date))
        });
    let mut times = vec![(now, "us-east-1"), (now, "us-west-1")];
    if let Some(t) = claimed {
        times.push((t, "us-east-1"));
    }
    for (now, region) in times {
        match crate::auth::authenticate(&view, &addr, principals(), region, now) {
            Ok(Identity::Signed(a)) => {
                let _ = (a.method.auth_type(), a.method.signature_version());
                let _ = crate::admit::body::verified_length(&r.headers, &a.payload);
            }
            Ok(Identity::Anonymous) => {}
            Err(e) => drop(e.error.to_xml("fuzz")),
        }
    }
    // The helpers the verifiers use on header values.
    if let Some(v) = r.header("x-amz-content-sha256") {
        if let Ok(mode) = PayloadMode::from_content_sha256(v) {
            let _ = crate::admit::body::verified_length(&r.headers, &mode);
            let _ = mode.is_aws_chunked();
        }
    }
    if let Some(v) = r.header("x-amz-date") {
        if let Some(t) = crate::auth::time::parse_amz_date(v) {
            let _ = crate::auth::time::format_rfc3339(t, true);
        }
    }
    if let Some(v) = r.header("date") {
        let _ = crate::auth::time::parse_http_date(v);
    }
    let _ = crate::admit::body::length_facts(&r.headers);
}

/// Target `sigv4`: SigV4 Authorization header (algorithm, Credential
/// scope, SignedHeaders, Signature) and presigned query verification at
/// the time of the AWS documentation examples.
pub fn sigv4(data: &[u8]) {
    authenticate(data, at("20130524T000000Z"));
}

/// Target `sigv2`: `Authorization: AWS key:signature` and presigned
/// `?AWSAccessKeyId=&Signature=&Expires=`, at the time of the AWS
/// documentation examples.
pub fn sigv2(data: &[u8]) {
    authenticate(data, at("20070327T194000Z"));
}

mod chunked;
mod documents;
mod post;
pub use chunked::aws_chunked;
pub use documents::{config, policy, xml};
pub use post::{form, post_policy};
