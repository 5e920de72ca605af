//! Loading `gateway.yaml`: every problem at once, each with
//! file:line:column and the offending line, and, when there is none, the
//! typed configuration the runtime reads ([`Config`]).
//!
//! The text is read as written (`raw`), each section is checked and
//! converted on its own (`sections`, `secrets`, `upstreams`, `buckets`,
//! `limits`) so that one mistake does not hide the others, and the result
//! is the typed model (`internal`). This module imports nothing of the
//! crate but the leaves `secret` and `s3` (bucket-name rules).

pub mod arn;
mod buckets;
pub mod cors;
pub mod diagnostics;
pub mod endpoint;
pub mod internal;
pub mod limits;
pub mod locate;
pub mod raw;
mod secrets;
mod sections;
mod upstreams;

use std::path::Path;

use serde_yaml::Value;

pub use arn::{Arn, ArnError};
pub use diagnostics::{did_you_mean, ConfigError};
use diagnostics::{hint, k, Ctx};
pub use endpoint::{Endpoint, EndpointError};
pub use internal::*;
pub use limits::Limits;
use raw::TOP_LEVEL_KEYS;

/// Load and validate a config file.
pub fn load(file: &Path) -> Result<Config, Vec<ConfigError>> {
    let src = std::fs::read_to_string(file)
        .map_err(|e| vec![ConfigError::file(file, format!("cannot read: {e}"))])?;
    parse(file, &src)
}

/// Validate config text (named `file` in messages).
pub fn parse(file: &Path, src: &str) -> Result<Config, Vec<ConfigError>> {
    let mut cx = Ctx::new(file, src);
    let doc: Value =
        serde_yaml::from_str(src).map_err(|e| vec![ConfigError::yaml(file, src, &e)])?;
    let Value::Mapping(top) = &doc else {
        return Err(vec![ConfigError::at(
            file,
            src,
            1,
            1,
            "the config must be a mapping of sections (listen, region, principals, …)".into(),
        )]);
    };
    for key in top.keys() {
        let name = key.as_str().unwrap_or("");
        if !TOP_LEVEL_KEYS.contains(&name) {
            let hint = hint(name, TOP_LEVEL_KEYS);
            cx.error(&[k(name)], format!("unknown section `{name}`{hint}"));
        }
    }
    let get = |name: &str| top.get(name);

    let listen = sections::listen(&mut cx, get("listen"));
    let region = sections::region(&mut cx, get("region"));
    let hostnames: Vec<String> =
        sections::value(&mut cx, "hostnames", get("hostnames")).unwrap_or_default();
    let principals = secrets::principals(&mut cx, get("principals"));
    let upstreams = upstreams::upstreams(&mut cx, get("upstreams"));
    let declared: Vec<String> = match get("upstreams") {
        Some(Value::Mapping(m)) => m
            .keys()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let (buckets, access_points) =
        buckets::buckets(&mut cx, get("buckets"), &declared, &upstreams.kinds);
    let policies = sections::policies(&mut cx, file, get("policies"));
    let (multipart, state_bucket_arn) = sections::multipart(&mut cx, get("multipart"), &declared);
    reaper_checks(&mut cx, &buckets, &multipart);
    let audit = sections::audit(&mut cx, get("audit"));
    let decision_log = sections::decision_log(&mut cx, get("decision_log"));
    let admin = sections::admin(&mut cx, get("admin"));
    let log: LogConfig = sections::value(&mut cx, "log", get("log")).unwrap_or_default();
    let gateway_name: String = sections::value(&mut cx, "gateway_name", get("gateway_name"))
        .unwrap_or_else(sections::default_gateway_name);
    let timeouts = sections::timeouts(&mut cx, get("timeouts"));
    let limits = limits::limits(&mut cx, get("limits"));
    let threads: usize = sections::value(&mut cx, "threads", get("threads"))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let zero_copy: bool = sections::value(&mut cx, "zero_copy", get("zero_copy")).unwrap_or(true);
    let shutdown_grace_secs: u64 =
        sections::value(&mut cx, "shutdown_grace_secs", get("shutdown_grace_secs")).unwrap_or(30);
    if !cx.errors.is_empty() {
        cx.errors.sort_by_key(|e| (e.line, e.column));
        return Err(cx.errors);
    }

    let mut upstreams = upstreams.checked;
    for ap in access_points.into_iter().chain(state_bucket_arn) {
        if let Some(u) = upstreams.get_mut(&ap.upstream) {
            u.access_points.insert(ap.name, ap.arn);
        }
    }
    Ok(Config {
        file: file.to_path_buf(),
        listen,
        region,
        hostnames,
        principals,
        upstreams,
        buckets,
        policies,
        multipart,
        audit,
        decision_log,
        admin,
        log,
        gateway_name,
        timeouts,
        limits,
        threads,
        zero_copy,
        shutdown_grace: std::time::Duration::from_secs(shutdown_grace_secs),
        warnings: cx.warnings,
    })
}

/// The reaper's limits need a reaper, and names to list.
fn reaper_checks(
    cx: &mut Ctx<'_>,
    buckets: &std::collections::BTreeMap<String, BucketConfig>,
    multipart: &MultipartConfig,
) {
    if buckets
        .get("*")
        .is_some_and(|b| b.abort_incomplete_after.is_some())
    {
        cx.error(
            &[k("buckets"), k("*"), k("abort_incomplete_after")],
            "buckets.\"*\": the catch-all has no list of buckets to reap; set abort_incomplete_after on named buckets (or multipart.abort_incomplete_after for all of them)",
        );
    }
    let limited = multipart.abort_incomplete_after.is_some()
        || buckets.values().any(|b| b.abort_incomplete_after.is_some());
    if limited && multipart.reaper.is_none() {
        cx.warn(
            &[k("multipart")],
            "abort_incomplete_after is set but no reaper runs: add `multipart.reaper: { every: 1h }`",
        );
    }
}

#[cfg(test)]
mod tests;
