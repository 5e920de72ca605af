//! CORS as S3 evaluates a bucket's rules: the first rule whose origin,
//! method (and, for a preflight, every requested header) match decides.
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
//! that no rule allows is answered 403; other requests simply carry no
//! CORS headers when no rule matches.

use http::{HeaderName, HeaderValue};

use crate::config::cors::CorsRule;
use crate::s3::{err, S3Error, S3ErrorCode};

pub type Headers = Vec<(HeaderName, HeaderValue)>;

/// `pattern` with at most one `*` standing for any run of characters.
fn wildcard(pattern: &str, value: &str, case_insensitive: bool) -> bool {
    let (p, v) = if case_insensitive {
        (pattern.to_ascii_lowercase(), value.to_ascii_lowercase())
    } else {
        (pattern.to_string(), value.to_string())
    };
    match p.split_once('*') {
        None => p == v,
        Some((pre, post)) => {
            v.len() >= pre.len() + post.len() && v.starts_with(pre) && v.ends_with(post)
        }
    }
}

fn origin_allowed(rule: &CorsRule, origin: &str) -> bool {
    rule.allowed_origins
        .iter()
        .any(|o| wildcard(o, origin, false))
}

fn method_allowed(rule: &CorsRule, method: &str) -> bool {
    rule.allowed_methods.iter().any(|m| m == method)
}

fn header(name: &'static str, value: &str, out: &mut Headers) {
    if let Ok(v) = HeaderValue::from_str(value) {
        out.push((HeaderName::from_static(name), v));
    }
}

fn common(rule: &CorsRule, origin: &str, out: &mut Headers) {
    let any = rule.allowed_origins.iter().any(|o| o == "*");
    header(
        "access-control-allow-origin",
        if any { "*" } else { origin },
        out,
    );
    if !any {
        header("access-control-allow-credentials", "true", out);
    }
    if !rule.expose_headers.is_empty() {
        header(
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
            out,
        );
    }
}

fn forbidden() -> S3Error {
    err(
        S3ErrorCode::AccessForbidden,
        "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
    )
}

/// The answer to a preflight: its headers, or 403 AccessForbidden.
pub fn preflight(
    rules: &[CorsRule],
    origin: Option<&str>,
    method: Option<&str>,
    request_headers: Option<&str>,
) -> Result<Headers, S3Error> {
    let (Some(origin), Some(method)) = (origin, method) else {
        return Err(err(
            S3ErrorCode::InvalidRequest,
            "Insufficient information. Origin request header needed.",
        ));
    };
    let asked: Vec<&str> = request_headers
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .collect();
    let rule = rules.iter().find(|r| {
        origin_allowed(r, origin)
            && method_allowed(r, method)
            && asked
                .iter()
                .all(|h| r.allowed_headers.iter().any(|a| wildcard(a, h, true)))
    });
    let Some(rule) = rule else {
        return Err(forbidden());
    };
    let mut out = Headers::new();
    common(rule, origin, &mut out);
    header(
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
        &mut out,
    );
    if !asked.is_empty() {
        header(
            "access-control-allow-headers",
            &asked.join(", ").to_ascii_lowercase(),
            &mut out,
        );
    }
    if let Some(age) = rule.max_age {
        header("access-control-max-age", &age.to_string(), &mut out);
    }
    header(
        "vary",
        "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
        &mut out,
    );
    Ok(out)
}

/// The CORS headers of an answer to a request from `origin`.
pub fn actual(rules: &[CorsRule], origin: &str, method: &str) -> Headers {
    let mut out = Headers::new();
    if let Some(rule) = rules
        .iter()
        .find(|r| origin_allowed(r, origin) && method_allowed(r, method))
    {
        common(rule, origin, &mut out);
        header(
            "vary",
            "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
            &mut out,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<CorsRule> {
        vec![
            CorsRule {
                allowed_origins: vec!["https://*.example.com".into()],
                allowed_methods: vec!["PUT".into(), "POST".into()],
                allowed_headers: vec!["content-type".into(), "x-amz-*".into()],
                expose_headers: vec!["ETag".into()],
                max_age: Some(600),
            },
            CorsRule {
                allowed_origins: vec!["*".into()],
                allowed_methods: vec!["GET".into()],
                ..CorsRule::default()
            },
        ]
    }

    fn get<'a>(h: &'a Headers, n: &str) -> Option<&'a str> {
        h.iter()
            .find(|(k, _)| k == n)
            .and_then(|(_, v)| v.to_str().ok())
    }

    #[test]
    fn preflight_matches_origin_method_and_headers() {
        let h = preflight(
            &rules(),
            Some("https://app.example.com"),
            Some("POST"),
            Some("Content-Type, X-Amz-Meta-Tag"),
        )
        .unwrap();
        assert_eq!(
            get(&h, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(get(&h, "access-control-allow-methods"), Some("PUT, POST"));
        assert_eq!(get(&h, "access-control-max-age"), Some("600"));
        assert_eq!(
            get(&h, "access-control-allow-headers"),
            Some("content-type, x-amz-meta-tag")
        );
        for (origin, method, headers) in [
            ("https://evil.test", "POST", None),
            ("https://app.example.com", "DELETE", None),
            ("https://app.example.com", "POST", Some("authorization")),
            ("http://app.example.com", "POST", None),
        ] {
            let e = preflight(&rules(), Some(origin), Some(method), headers).unwrap_err();
            assert_eq!(e.code, S3ErrorCode::AccessForbidden, "{origin} {method}");
        }
        let h = preflight(&rules(), Some("https://x.test"), Some("GET"), None).unwrap();
        assert_eq!(get(&h, "access-control-allow-origin"), Some("*"));
    }

    #[test]
    fn actual_requests_carry_the_matching_rule() {
        let h = actual(&rules(), "https://a.example.com", "POST");
        assert_eq!(get(&h, "access-control-expose-headers"), Some("ETag"));
        assert!(actual(&rules(), "https://evil.test", "POST").is_empty());
    }
}
