//! `s3gate explain`: what the gateway would decide on a request, and why.

use std::fmt::Write as _;
use std::time::SystemTime;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::actions;
use super::context::{build, Facts};
use super::PolicySet;
use crate::auth::AuthMethod;
use crate::config::Config;
use crate::route::Router;
use crate::s3::addressing::address;
use crate::s3::{Operation, Query};

/// Keys whose values change every second: shown as `<now>`.
const VOLATILE: &[&str] = &["aws:currenttime", "aws:epochtime", "s3:signatureage"];

pub fn explain(
    config: &Config,
    set: &PolicySet,
    principal: &str,
    header_args: &[String],
    method: &str,
    url: &str,
) -> Result<String, String> {
    let (host, target) = match url.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(i) => (Some(rest[..i].to_string()), rest[i..].to_string()),
            None => (Some(rest.to_string()), "/".to_string()),
        },
        None => (None, url.to_string()),
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.clone(), None),
    };
    let mut headers = HeaderMap::new();
    for h in header_args {
        let (n, v) = h
            .split_once(':')
            .ok_or_else(|| format!("header `{h}` must be `Name: value`"))?;
        let name = HeaderName::from_bytes(n.trim().to_ascii_lowercase().as_bytes())
            .map_err(|_| format!("bad header name `{n}`"))?;
        let value =
            HeaderValue::from_str(v.trim()).map_err(|_| format!("bad header value for `{n}`"))?;
        headers.append(name, value);
    }
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or(host);
    let q = Query::parse(query.as_deref()).ok_or("the query is not valid UTF-8")?;
    let addr = address(host.as_deref(), &path, &config.hostnames).map_err(|e| e.message)?;
    let copy = headers
        .get("x-amz-copy-source")
        .and_then(|v| v.to_str().ok());
    let op = Operation::parse(&method.to_ascii_uppercase(), &addr, &q, copy)
        .map_err(|e| format!("{}: {}", e.code.as_str(), e.message))?;
    let router = Router::new(config)?;
    let route = addr.bucket.as_deref().and_then(|b| router.route(b).ok());
    let now = SystemTime::now();
    let facts = Facts {
        principal,
        auth: (principal != "anonymous").then_some((AuthMethod::V4Header, now)),
        source_ip: None,
        tls: None,
        headers: &headers,
        query: &q,
        operation: &op,
        upstream: route.as_ref().map(|r| r.upstream.name.as_str()),
        owner: route.as_ref().and_then(|r| r.rules.owner.as_deref()),
        initiator: match op {
            Operation::UploadPart { .. }
            | Operation::UploadPartCopy { .. }
            | Operation::CompleteMultipartUpload { .. }
            | Operation::AbortMultipartUpload { .. }
            | Operation::ListParts { .. } => Some("unknown"),
            _ => None,
        },
    };
    let keys = build(&facts, now);
    let mut needs = actions::needs(&op, addr.bucket.as_deref(), addr.key.as_deref());
    needs.extend(actions::header_needs(
        &op,
        &headers,
        addr.bucket.as_deref(),
        addr.key.as_deref(),
    ));
    let mut out = String::new();
    let _ = writeln!(out, "principal:  {principal}");
    let _ = writeln!(out, "operation:  {} {:?}", op.name(), op);
    let _ = writeln!(
        out,
        "upstream:   {}",
        route
            .as_ref()
            .map_or("(none: bucket not routed)", |r| r.upstream.name.as_str())
    );
    let _ = writeln!(out, "context:");
    let mut sorted: Vec<_> = keys.iter().collect();
    sorted.sort();
    for (k, v) in sorted {
        let shown = if VOLATILE.contains(&k.as_str()) {
            "<now>".to_string()
        } else {
            v.join(", ")
        };
        let _ = writeln!(out, "  {k} = {shown}");
    }
    for need in &needs {
        let d = set.decide_one(principal, need, &keys);
        let _ = writeln!(
            out,
            "needs {} on {}: {}",
            need.action,
            need.resource,
            d.effect.as_str()
        );
        for (name, effect, verdict) in set.trace(principal, need, &keys) {
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
    let d = set.decide(principal, &needs, &keys);
    let by = if d.statements.is_empty() {
        "no statement allows it (default deny)".to_string()
    } else {
        d.statements.join(", ")
    };
    let _ = writeln!(out, "decision:   {} ({by})", d.effect.as_str());
    Ok(out)
}
