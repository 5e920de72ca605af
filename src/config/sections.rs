//! The smaller sections: `listen`, `policies`, `multipart`, `audit`, `decision_log`,
//! `admin`, `timeouts` and the top-level scalars, each checked and typed.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use super::buckets::AccessPoint;
use super::diagnostics::{k, Ctx};
use super::limits::parse_duration;
use super::locate::Step;
use super::{
    raw, AbortSettings, AdminConfig, Arn, AuditConfig, AuditEvent, DecisionLogConfig, Fsync,
    Listener, MultipartConfig, OnFailure, OwnershipStore, PoliciesConfig, ReaperSettings, Timeouts,
    DEFAULT_ORPHANS_AFTER, DEFAULT_OWNERSHIP_PREFIX,
};

/// A section that is one value (or None, with an error, when it is not).
pub(super) fn value<T: DeserializeOwned>(
    cx: &mut Ctx<'_>,
    name: &str,
    v: Option<&Value>,
) -> Option<T> {
    v.and_then(|v| cx.parse(&[k(name)], v))
}

fn address(cx: &mut Ctx<'_>, path: &[Step], what: &str, text: &str) -> Option<SocketAddr> {
    match text.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            cx.error(path, format!("{what}: `{text}` is not an IP:port address"));
            None
        }
    }
}

/// `listen`: where clients connect.
pub(super) fn listen(cx: &mut Ctx<'_>, v: Option<&Value>) -> Vec<Listener> {
    let listen: Vec<raw::ListenerConfig> = cx.list_section("listen", v);
    if v.is_none() {
        cx.error(&[], "missing section `listen` (where clients connect)");
    }
    let mut out = Vec::new();
    for (i, l) in listen.into_iter().enumerate() {
        let p = [k("listen"), Step::Index(i), k("address")];
        let address = address(cx, &p, &format!("listen[{i}].address"), &l.address);
        if let Some(tls) = &l.tls {
            for (f, path) in [("cert", &tls.cert), ("key", &tls.key)] {
                if !path.exists() {
                    cx.error(
                        &[k("listen"), Step::Index(i), k("tls"), k(f)],
                        format!(
                            "listen[{i}].tls.{f}: file {} does not exist",
                            path.display()
                        ),
                    );
                }
            }
        }
        if let Some(address) = address {
            out.push(Listener {
                address,
                tls: l.tls,
            });
        }
    }
    out
}

/// `region`: the region clients sign their requests for.
pub(super) fn region(cx: &mut Ctx<'_>, v: Option<&Value>) -> String {
    match v {
        Some(v) => cx.parse(&[k("region")], v).unwrap_or_default(),
        None => {
            cx.error(
                &[],
                "missing `region` (the region clients sign their requests for)",
            );
            String::new()
        }
    }
}

/// `policies`, with relative paths resolved against the config's folder.
pub(super) fn policies(cx: &mut Ctx<'_>, file: &Path, v: Option<&Value>) -> PoliciesConfig {
    let mut p: PoliciesConfig = value(cx, "policies", v).unwrap_or_default();
    let base = file.parent().unwrap_or(Path::new("."));
    for path in &mut p.paths {
        if !path.is_absolute() {
            *path = base.join(&*path);
        }
    }
    p
}

/// `multipart`: the ownership store and the abort flow. Also the ownership
/// store's bucket when it is an access point ARN.
pub(super) fn multipart(
    cx: &mut Ctx<'_>,
    v: Option<&Value>,
    declared: &[String],
) -> (MultipartConfig, Option<AccessPoint>) {
    let mut out = MultipartConfig::default();
    let mut arn = None;
    let Some(m) = value::<raw::MultipartConfig>(cx, "multipart", v) else {
        return (out, arn);
    };
    if let Some(o) = &m.ownership {
        let at = |f: &str| [k("multipart"), k("ownership"), k(f)];
        match o.store.as_str() {
            "memory" => {}
            "s3" => {
                match &o.upstream {
                    None => cx.error(&at("store"), "multipart.ownership: store s3 needs `upstream` (where the state bucket is)"),
                    Some(u) if !declared.contains(u) => cx.error(&at("upstream"), format!("multipart.ownership.upstream `{u}` is not defined in `upstreams`")),
                    _ => {}
                }
                if o.bucket.is_none() {
                    cx.error(
                        &at("store"),
                        "multipart.ownership: store s3 needs `bucket` (the state bucket)",
                    );
                }
                let upstream = o.upstream.clone().unwrap_or_default();
                let bucket = o.bucket.clone().unwrap_or_default();
                if bucket.starts_with("arn:") {
                    match Arn::parse(&bucket) {
                        Ok(arn_) => {
                            arn = Some(AccessPoint {
                                upstream: upstream.clone(),
                                name: bucket.clone(),
                                arn: arn_,
                            })
                        }
                        Err(e) => {
                            cx.error(&at("bucket"), format!("multipart.ownership.bucket: {e}"))
                        }
                    }
                }
                out.ownership = OwnershipStore::S3 {
                    upstream,
                    bucket,
                    prefix: o
                        .prefix
                        .clone()
                        .unwrap_or_else(|| DEFAULT_OWNERSHIP_PREFIX.into()),
                };
            }
            other => cx.error(
                &at("store"),
                format!("multipart.ownership.store must be s3 or memory, not `{other}`"),
            ),
        }
    }
    if let Some(a) = &m.abort {
        let d = AbortSettings::default();
        let drain_in_flight = match a.drain_in_flight.as_deref() {
            None => d.drain_in_flight,
            Some(text) => parse_duration(text).unwrap_or_else(|| {
                cx.error(
                    &[k("multipart"), k("abort"), k("drain_in_flight")],
                    format!(
                        "multipart.abort.drain_in_flight `{text}` is not a duration (like 30s, 500ms, 2m)"
                    ),
                );
                d.drain_in_flight
            }),
        };
        out.abort = AbortSettings {
            drain_in_flight,
            verify: a.verify.unwrap_or(d.verify),
            max_attempts: a.max_attempts.unwrap_or(d.max_attempts).max(1),
        };
    }
    let mut positive = |field: &[&str], text: &str| {
        let path: Vec<Step> = field.iter().map(|f| k(f)).collect();
        let d = parse_duration(text).filter(|d| !d.is_zero());
        if d.is_none() {
            cx.error(
                &path,
                format!(
                    "{} `{text}` is not a duration (like 1s, 30m, 12h, 7d)",
                    field.join(".")
                ),
            );
        }
        d
    };
    if let Some(text) = &m.abort_incomplete_after {
        out.abort_incomplete_after = positive(&["multipart", "abort_incomplete_after"], text);
    }
    if let Some(r) = &m.reaper {
        let orphans_after = match r.orphans_after.as_deref().map(str::trim) {
            None => Some(DEFAULT_ORPHANS_AFTER),
            Some("off") => None,
            Some(text) => positive(&["multipart", "reaper", "orphans_after"], text),
        };
        out.reaper =
            positive(&["multipart", "reaper", "every"], &r.every).map(|every| ReaperSettings {
                every,
                orphans_after,
            });
        let explicit = r
            .orphans_after
            .as_deref()
            .is_some_and(|t| t.trim() != "off");
        if explicit && out.ownership == OwnershipStore::Memory {
            cx.warn(
                &[k("multipart"), k("reaper"), k("orphans_after")],
                "multipart.reaper.orphans_after has no effect with the memory ownership store (its records are one replica's and do not survive a restart): orphans are only reaped with `ownership.store: s3`",
            );
        }
    }
    (out, arn)
}

/// `decision_log`: where each policy decision is written, for `replay`.
pub(super) fn decision_log(cx: &mut Ctx<'_>, v: Option<&Value>) -> Option<DecisionLogConfig> {
    let d: raw::DecisionLogConfig = value(cx, "decision_log", v)?;
    if let Some(r) = &d.rotate {
        if r.max_bytes == 0 || r.keep == 0 {
            cx.error(
                &[k("decision_log"), k("rotate")],
                "decision_log.rotate: max_bytes and keep must be at least 1",
            );
        }
    }
    Some(DecisionLogConfig {
        path: d.path,
        rotate: d.rotate,
    })
}

/// `audit`: the ledger's file, events and durability.
pub(super) fn audit(cx: &mut Ctx<'_>, v: Option<&Value>) -> Option<AuditConfig> {
    let a: raw::AuditConfig = value(cx, "audit", v)?;
    let at = |f: &str| [k("audit"), k(f)];
    let fsync = match a.fsync.as_deref() {
        None | Some("always") => Fsync::Always,
        Some("interval") => Fsync::Interval,
        Some(f) => {
            cx.error(
                &at("fsync"),
                format!("audit.fsync must be always or interval, not `{f}`"),
            );
            Fsync::Always
        }
    };
    let on_failure = match a.on_failure.as_deref() {
        None | Some("reject") => OnFailure::Reject,
        Some("continue") => OnFailure::Continue,
        Some(f) => {
            cx.error(
                &at("on_failure"),
                format!("audit.on_failure must be reject or continue, not `{f}`"),
            );
            OnFailure::Reject
        }
    };
    let mut events = Vec::new();
    for e in &a.events {
        match AuditEvent::parse(e) {
            Some(e) => events.push(e),
            None => cx.error(&at("events"), format!("audit.events: unknown event `{e}` (AbortMultipartUpload, CreateMultipartUpload, CompleteMultipartUpload, Denied)")),
        }
    }
    Some(AuditConfig {
        path: a.path,
        events,
        fsync,
        on_failure,
        rotate: a.rotate,
    })
}

/// `admin`: the health and metrics listener.
pub(super) fn admin(cx: &mut Ctx<'_>, v: Option<&Value>) -> Option<AdminConfig> {
    let a: raw::AdminConfig = value(cx, "admin", v)?;
    let address = address(cx, &[k("admin"), k("address")], "admin.address", &a.address)?;
    Some(AdminConfig { address })
}

/// `timeouts`, in seconds.
pub(super) fn timeouts(cx: &mut Ctx<'_>, v: Option<&Value>) -> Timeouts {
    let t: raw::TimeoutsConfig = value(cx, "timeouts", v).unwrap_or_default();
    let d = Timeouts::default();
    let secs = |s: Option<u64>, d: Duration| s.map_or(d, Duration::from_secs);
    Timeouts {
        connect: secs(t.connect_secs, d.connect),
        idle: secs(t.idle_secs, d.idle),
        read: secs(t.read_secs, d.read),
    }
}

/// The machine's name, for audit records.
pub(super) fn default_gateway_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "s3gate".into())
}
