//! `s3gate explain`: what the gateway would decide on a request, and why.
//! It runs the admission stages `serve` runs (parse, route, decide with
//! the bucket rules and the initiator rule); only the signature is taken
//! as given (`--principal`).

use std::fmt::Write as _;
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::admit::decide::{self, Decider, Inputs, Reserved, Who};
use crate::admit::parse::parse;
use crate::admit::view::RequestView;
use crate::auth::AuthMethod;
use crate::config::{Config, PolicyMode};
use crate::policy::PolicySet;
use crate::route::Router;

/// Keys whose values change every second: shown as `<now>`.
const VOLATILE: &[&str] = &["aws:currenttime", "aws:epochtime", "s3:signatureage"];

/// A request as `explain` is given it.
pub struct ExplainRequest<'a> {
    pub principal: &'a str,
    pub headers: &'a [String],
    pub method: &'a str,
    pub url: &'a str,
    /// `s3gate:MultipartInitiator` to assume (self | other | unknown).
    pub initiator: Option<&'a str>,
}

/// The decision only: `Ok(())` allowed, `Err` the S3 error code `serve`
/// would answer with (used to compare `explain` with `serve`).
pub fn verdict(
    config: &Config,
    set: Option<std::sync::Arc<PolicySet>>,
    r: &ExplainRequest<'_>,
) -> Result<Result<(), String>, String> {
    let mut out = String::new();
    run(config, set, r, &mut out)
}

pub fn explain(
    config: &Config,
    set: std::sync::Arc<PolicySet>,
    r: &ExplainRequest<'_>,
) -> Result<String, String> {
    let mut out = String::new();
    let _decided = run(config, Some(set), r, &mut out)?;
    Ok(out)
}

fn headers_of(args: &[String]) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for h in args {
        let (n, v) = h
            .split_once(':')
            .ok_or_else(|| format!("header `{h}` must be `Name: value`"))?;
        let name = HeaderName::from_bytes(n.trim().to_ascii_lowercase().as_bytes())
            .map_err(|e| format!("bad header name `{n}`: {e}"))?;
        let value = HeaderValue::from_str(v.trim())
            .map_err(|e| format!("bad header value for `{n}`: {e}"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn run(
    config: &Config,
    set: Option<std::sync::Arc<PolicySet>>,
    r: &ExplainRequest<'_>,
    out: &mut String,
) -> Result<Result<(), String>, String> {
    let (host, target) = match r.url.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(i) => (Some(rest[..i].to_string()), rest[i..].to_string()),
            None => (Some(rest.to_string()), "/".to_string()),
        },
        None => (None, r.url.to_string()),
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.clone(), None),
    };
    let headers = headers_of(r.headers)?;
    let method = r.method.to_ascii_uppercase();
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or(host);
    let view = RequestView {
        method: &method,
        raw_path: &path,
        raw_query: query.as_deref(),
        host: host.as_deref(),
        headers: &headers,
        source_ip: None,
        tls: None,
    };
    let principal = r.principal;
    let _ = writeln!(out, "principal:  {principal}");
    let refuse = |out: &mut String, e: crate::s3::S3Error| {
        let _ = writeln!(out, "refused:    {}: {}", e.code.as_str(), e.message);
        let _ = writeln!(out, "decision:   Deny ({})", e.code.as_str());
        Ok(Err(e.code.as_str().to_string()))
    };
    let parsed = match parse(&view, &config.hostnames) {
        Ok(p) => p,
        Err(e) => return refuse(out, e),
    };
    let req = &parsed.request;
    let _ = writeln!(out, "operation:  {} {:?}", req.op.name(), req.op);
    let router = Router::new(config).map_err(|e| e.to_string())?;
    let reserved = Reserved::from_config(config);
    let decider = Decider {
        router: &router,
        policies: set,
        shadow: config.policies.mode == PolicyMode::Shadow,
        reserved: reserved.as_ref(),
    };
    let routed = match decide::route(&decider, req) {
        Ok(r) => r,
        Err(e) => return refuse(out, e),
    };
    let _ = writeln!(
        out,
        "upstream:   {}",
        routed
            .route
            .as_ref()
            .map_or("(none: bucket not routed)", |r| r.upstream.name.as_str())
    );
    let now = SystemTime::now();
    let anonymous = principal == "anonymous";
    let payload = match headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some(v) if !anonymous => {
            crate::auth::PayloadMode::from_content_sha256(v).map_err(|e| e.message)?
        }
        _ => crate::auth::PayloadMode::Unsigned,
    };
    let content_length = match crate::admit::body::verified_length(&headers, &payload) {
        Ok(l) => l,
        Err(e) => return refuse(out, e),
    };
    let initiator = req.op.upload_id().map(|_| r.initiator.unwrap_or("unknown"));
    let v = decide::decide(
        &decider,
        &Inputs {
            view: &view,
            request: req,
            who: Who {
                principal,
                auth: (!anonymous).then_some((AuthMethod::V4Header, now)),
            },
            routed: &routed,
            initiator,
            content_length,
            now,
        },
    );
    let _ = writeln!(out, "context:");
    let mut sorted: Vec<_> = v.keys.iter().collect();
    sorted.sort();
    for (k, val) in sorted {
        let shown = if VOLATILE.contains(&k.as_str()) {
            "<now>".to_string()
        } else {
            val.join(", ")
        };
        let _ = writeln!(out, "  {k} = {shown}");
    }
    if let Some(set) = &decider.policies {
        for need in &v.needs {
            let d = set.decide_one(principal, need, &v.keys);
            let _ = writeln!(
                out,
                "needs {} on {}: {}",
                need.action,
                need.resource,
                d.effect.as_str()
            );
            for (name, effect, verdict) in set.trace(principal, need, &v.keys) {
                match verdict {
                    Ok(()) => {
                        let _ = writeln!(out, "  MATCH    {name} ({})", effect.as_str());
                    }
                    Err(why) => {
                        let _ = writeln!(out, "  no match {name} ({}): {why}", effect.as_str());
                    }
                }
            }
        }
    }
    if req.op == crate::s3::Operation::DeleteObjects {
        let _ = writeln!(
            out,
            "note:       each key of a DeleteObjects body is decided on its own (s3:DeleteObject / s3:DeleteObjectVersion)"
        );
    }
    if let Some(e) = v.refusal {
        let by = match &v.decision {
            Some(d) if !d.allowed() && !d.statements.is_empty() => d.statements.join(", "),
            Some(d) if !d.allowed() => "no statement allows it (default deny)".to_string(),
            _ => format!("{}: {}", e.code.as_str(), e.message),
        };
        let _ = writeln!(out, "refused:    {}: {}", e.code.as_str(), e.message);
        let _ = writeln!(out, "decision:   Deny ({by})");
        return Ok(Err(e.code.as_str().to_string()));
    }
    let by = match &v.decision {
        Some(d) if v.shadow_denied => {
            format!("shadow mode; policy says Deny: {}", d.statements.join(", "))
        }
        Some(d) => d.statements.join(", "),
        None if req.op == crate::s3::Operation::DeleteObjects => "decided per key".to_string(),
        None => "no policies: every signed request is allowed".to_string(),
    };
    let _ = writeln!(out, "decision:   Allow ({by})");
    Ok(Ok(()))
}
