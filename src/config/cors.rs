//! A bucket's `cors` rules: which browser origins may call it, as S3's
//! CORSConfiguration says it (AllowedOrigin, AllowedMethod, AllowedHeader,
//! ExposeHeader, MaxAgeSeconds). The gateway answers preflights from them
//! and adds the CORS headers to the bucket's answers (`post::cors`).

use serde::Deserialize;

use super::diagnostics::{k, Ctx};

/// One CORS rule of a bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsRule {
    /// Origins, each with at most one `*` (`https://*.example.com`, `*`).
    pub allowed_origins: Vec<String>,
    /// GET, PUT, POST, DELETE, HEAD.
    pub allowed_methods: Vec<String>,
    /// Request headers a preflight may ask for (`*` wildcards allowed).
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    /// Response headers the browser may show to scripts.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// How long a browser may cache the preflight answer, in seconds.
    #[serde(default)]
    pub max_age: Option<u32>,
}

const METHODS: &[&str] = &["GET", "PUT", "POST", "DELETE", "HEAD"];

/// Every problem of a bucket's rules, at its place in the file.
pub(super) fn check(cx: &mut Ctx<'_>, bucket: &str, rules: &[CorsRule]) {
    for (i, r) in rules.iter().enumerate() {
        let at = [k("buckets"), k(bucket), k("cors")];
        let here = format!("buckets.{bucket}.cors[{i}]");
        if r.allowed_origins.is_empty() {
            cx.error(&at, format!("{here}: allowed_origins is empty"));
        }
        for o in &r.allowed_origins {
            if o.matches('*').count() > 1 {
                cx.error(
                    &at,
                    format!("{here}: the origin {o:?} has more than one `*`"),
                );
            }
        }
        for h in &r.allowed_headers {
            if h.matches('*').count() > 1 {
                cx.error(
                    &at,
                    format!("{here}: the header {h:?} has more than one `*`"),
                );
            }
        }
        if r.allowed_methods.is_empty() {
            cx.error(&at, format!("{here}: allowed_methods is empty"));
        }
        for m in &r.allowed_methods {
            if !METHODS.contains(&m.as_str()) {
                cx.error(
                    &at,
                    format!("{here}: method {m:?} is not one of GET, PUT, POST, DELETE, HEAD"),
                );
            }
        }
        for h in &r.expose_headers {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                cx.error(&at, format!("{here}: {h:?} is not a header name"));
            }
        }
    }
}
