//! Loading and validating `gateway.yaml`: every problem at once, each with
//! file:line:column and the offending line.

pub mod limits;
pub mod locate;
pub mod model;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use crate::auth::Secret;
use crate::resign::credentials::Source;
pub use limits::Limits;
use locate::{locate, locate_field, Step};
pub use model::*;

/// One problem in a config or policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub snippet: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(s) = &self.snippet {
            write!(f, "\n    {:>4} | {}", self.line, s)?;
        }
        Ok(())
    }
}

/// A principal with its secret resolved.
#[derive(Debug, Clone)]
pub struct ResolvedPrincipal {
    pub name: String,
    pub access_key_id: String,
    pub secret: Secret,
}

/// Upstream credentials, resolved.
#[derive(Debug, Clone)]
pub struct ResolvedCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub listen: Vec<ListenerConfig>,
    pub region: String,
    pub hostnames: Vec<String>,
    pub principals: Vec<ResolvedPrincipal>,
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    pub upstream_credentials: BTreeMap<String, ResolvedCredentials>,
    /// Upstreams whose credentials come from a provider.
    pub upstream_sources: BTreeMap<String, Source>,
    pub buckets: BTreeMap<String, BucketConfig>,
    pub policies: PoliciesConfig,
    pub multipart: Option<MultipartConfig>,
    pub audit: Option<AuditConfig>,
    pub admin: Option<AdminConfig>,
    pub log: LogConfig,
    pub gateway_name: String,
    pub timeouts: TimeoutsConfig,
    /// What one client connection may cost (s3gate extension, `limits:`).
    pub limits: Limits,
    pub threads: usize,
    /// After SIGTERM, how long in-flight requests may take (s3gate extension).
    pub shutdown_grace_secs: u64,
    /// Things that work but deserve a look (`s3gate check` prints them).
    pub warnings: Vec<ConfigError>,
}

struct Ctx<'a> {
    file: &'a Path,
    src: &'a str,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigError>,
}

impl Ctx<'_> {
    fn at(&self, path: &[Step], message: String) -> ConfigError {
        let (line, column) = locate(self.src, path);
        self.error_at(line, column, message)
    }

    fn error_at(&self, line: usize, column: usize, message: String) -> ConfigError {
        let snippet = self
            .src
            .lines()
            .nth(line.saturating_sub(1))
            .map(|s| s.trim_end().to_string());
        ConfigError {
            file: self.file.to_path_buf(),
            line,
            column,
            message,
            snippet,
        }
    }

    fn error(&mut self, path: &[Step], message: impl Into<String>) {
        let e = self.at(path, message.into());
        self.errors.push(e);
    }

    /// Deserialize one part of the document; on failure record the error
    /// at the offending field when serde names it.
    fn parse<T: DeserializeOwned>(&mut self, path: &[Step], v: &Value) -> Option<T> {
        match serde_yaml::from_value::<T>(v.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                let msg = e.to_string();
                let field = msg
                    .split('`')
                    .nth(1)
                    .filter(|_| msg.starts_with("unknown field"));
                let (line, column) = match field {
                    Some(f) => locate_field(self.src, path, f),
                    None => locate(self.src, path),
                };
                let where_ = locate::display(path);
                let e = self.error_at(line, column, format!("{where_}: {}", tidy_serde(&msg)));
                self.errors.push(e);
                None
            }
        }
    }

    fn secret(&mut self, path: &[Step], s: &SecretSource) -> Option<Secret> {
        match s {
            SecretSource::Literal(v) => {
                let mut w = self.at(
                    path,
                    format!(
                        "{}: secret written inline; prefer {{ env: VAR }} or {{ file: /path }}",
                        locate::display(path)
                    ),
                );
                // The snippet must not repeat the secret.
                if let (Some(snip), Some(Step::Key(name))) = (&mut w.snippet, path.last()) {
                    *snip = redact_value(snip, name, v);
                }
                self.warnings.push(w);
                Some(Secret::new(v.clone()))
            }
            SecretSource::Env { env } => match std::env::var(env) {
                Ok(v) if !v.is_empty() => Some(Secret::new(v)),
                _ => {
                    self.error(
                        path,
                        format!(
                            "{}: environment variable {env} is not set",
                            locate::display(path)
                        ),
                    );
                    None
                }
            },
            SecretSource::File { file } => match std::fs::read_to_string(file) {
                Ok(v) => Some(Secret::new(v.trim_end_matches(['\n', '\r']).to_string())),
                Err(e) => {
                    self.error(
                        path,
                        format!(
                            "{}: cannot read secret file {}: {e}",
                            locate::display(path),
                            file.display()
                        ),
                    );
                    None
                }
            },
        }
    }
}

/// Replace the value written after `name:` on a line with `<redacted>`.
fn redact_value(line: &str, name: &str, value: &str) -> String {
    let Some(k) = line.find(&format!("{name}:")) else {
        return line.to_string();
    };
    let after = k + name.len() + 1;
    match line[after..].find(value) {
        Some(i) if !value.is_empty() => {
            let at = after + i;
            format!("{}<redacted>{}", &line[..at], &line[at + value.len()..])
        }
        _ => format!("{}: <redacted>", &line[..k + name.len()]),
    }
}

/// serde_yaml's untagged-enum message is unhelpful; say what is accepted.
fn tidy_serde(msg: &str) -> String {
    if msg.contains("did not match any variant of untagged enum SecretSource") {
        return "a secret must be \"literal\", { env: VAR } or { file: /path }".into();
    }
    if msg.contains("did not match any variant of untagged enum CredentialsConfig") {
        return "credentials must be aws-default-chain, { assume_role: {...} } or { access_key_id, secret_access_key[, session_token] }".into();
    }
    msg.to_string()
}

fn k(s: &str) -> Step {
    Step::Key(s.to_string())
}

/// Load and validate a config file.
pub fn load(file: &Path) -> Result<Config, Vec<ConfigError>> {
    let src = std::fs::read_to_string(file).map_err(|e| {
        vec![ConfigError {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            message: format!("cannot read: {e}"),
            snippet: None,
        }]
    })?;
    parse(file, &src)
}

/// Validate config text (named `file` in messages).
pub fn parse(file: &Path, src: &str) -> Result<Config, Vec<ConfigError>> {
    let mut cx = Ctx {
        file,
        src,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let doc: Value = match serde_yaml::from_str(src) {
        Ok(v) => v,
        Err(e) => {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            return Err(vec![cx.error_at(
                line,
                column,
                format!("invalid YAML: {e}"),
            )]);
        }
    };
    let Value::Mapping(top) = &doc else {
        return Err(vec![cx.error_at(
            1,
            1,
            "the config must be a mapping of sections (listen, region, principals, …)".into(),
        )]);
    };
    for key in top.keys() {
        let name = key.as_str().unwrap_or("");
        if !TOP_LEVEL_KEYS.contains(&name) {
            let hint = crate::util::did_you_mean(name, TOP_LEVEL_KEYS)
                .map(|s| format!(" — did you mean {s}?"))
                .unwrap_or_default();
            cx.error(&[k(name)], format!("unknown section `{name}`{hint}"));
        }
    }
    let get = |name: &str| top.get(name);

    let listen: Vec<ListenerConfig> = list_section(&mut cx, "listen", get("listen"));
    if get("listen").is_none() {
        cx.error(&[], "missing section `listen` (where clients connect)");
    }
    for (i, l) in listen.iter().enumerate() {
        let p = [k("listen"), Step::Index(i), k("address")];
        if l.address.parse::<SocketAddr>().is_err() {
            cx.error(
                &p,
                format!(
                    "listen[{i}].address: `{}` is not an IP:port address",
                    l.address
                ),
            );
        }
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
    }

    let region: String = match get("region") {
        Some(v) => cx.parse(&[k("region")], v).unwrap_or_default(),
        None => {
            cx.error(
                &[],
                "missing `region` (the region clients sign their requests for)",
            );
            String::new()
        }
    };
    let hostnames: Vec<String> = get("hostnames")
        .and_then(|v| cx.parse(&[k("hostnames")], v))
        .unwrap_or_default();

    let principals = principals(&mut cx, get("principals"));
    let (upstreams, upstream_credentials, upstream_sources) = upstreams(&mut cx, get("upstreams"));
    let declared: Vec<String> = match get("upstreams") {
        Some(Value::Mapping(m)) => m
            .keys()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let kinds: BTreeMap<String, UpstreamKind> =
        upstreams.iter().map(|(n, u)| (n.clone(), u.kind)).collect();
    let buckets = buckets(&mut cx, get("buckets"), &declared, &kinds);

    let policies: PoliciesConfig = get("policies")
        .and_then(|v| cx.parse(&[k("policies")], v))
        .unwrap_or_default();
    let multipart: Option<MultipartConfig> =
        get("multipart").and_then(|v| cx.parse(&[k("multipart")], v));
    if let Some(o) = multipart.as_ref().and_then(|m| m.ownership.as_ref()) {
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
            }
            other => cx.error(
                &at("store"),
                format!("multipart.ownership.store must be s3 or memory, not `{other}`"),
            ),
        }
    }
    if let Some(d) = multipart
        .as_ref()
        .and_then(|m| m.abort.as_ref())
        .and_then(|a| a.drain_in_flight.as_deref())
    {
        if crate::multipart::parse_duration(d).is_none() {
            cx.error(
                &[k("multipart"), k("abort"), k("drain_in_flight")],
                format!(
                    "multipart.abort.drain_in_flight `{d}` is not a duration (like 30s, 500ms, 2m)"
                ),
            );
        }
    }
    let audit: Option<AuditConfig> = get("audit").and_then(|v| cx.parse(&[k("audit")], v));
    if let Some(a) = &audit {
        let at = |f: &str| [k("audit"), k(f)];
        if let Some(f) = a
            .fsync
            .as_deref()
            .filter(|f| !["always", "interval"].contains(f))
        {
            cx.error(
                &at("fsync"),
                format!("audit.fsync must be always or interval, not `{f}`"),
            );
        }
        if let Some(f) = a
            .on_failure
            .as_deref()
            .filter(|f| !["reject", "continue"].contains(f))
        {
            cx.error(
                &at("on_failure"),
                format!("audit.on_failure must be reject or continue, not `{f}`"),
            );
        }
        for e in &a.events {
            if ![
                "AbortMultipartUpload",
                "CreateMultipartUpload",
                "CompleteMultipartUpload",
                "Denied",
            ]
            .contains(&e.as_str())
            {
                cx.error(&at("events"), format!("audit.events: unknown event `{e}` (AbortMultipartUpload, CreateMultipartUpload, CompleteMultipartUpload, Denied)"));
            }
        }
    }
    let admin: Option<AdminConfig> = get("admin").and_then(|v| cx.parse(&[k("admin")], v));
    if let Some(a) = &admin {
        if a.address.parse::<SocketAddr>().is_err() {
            cx.error(
                &[k("admin"), k("address")],
                format!("admin.address: `{}` is not an IP:port address", a.address),
            );
        }
    }
    let log: LogConfig = get("log")
        .and_then(|v| cx.parse(&[k("log")], v))
        .unwrap_or_default();
    let gateway_name: String = get("gateway_name")
        .and_then(|v| cx.parse(&[k("gateway_name")], v))
        .unwrap_or_else(default_gateway_name);
    let timeouts: TimeoutsConfig = get("timeouts")
        .and_then(|v| cx.parse(&[k("timeouts")], v))
        .unwrap_or_default();
    let limits = limits::limits(&mut cx, get("limits"));
    let threads: usize = get("threads")
        .and_then(|v| cx.parse(&[k("threads")], v))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));

    let shutdown_grace_secs: u64 = get("shutdown_grace_secs")
        .and_then(|v| cx.parse(&[k("shutdown_grace_secs")], v))
        .unwrap_or(30);
    if !cx.errors.is_empty() {
        cx.errors.sort_by_key(|e| (e.line, e.column));
        return Err(cx.errors);
    }
    Ok(Config {
        file: file.to_path_buf(),
        listen,
        region,
        hostnames,
        principals,
        upstreams,
        upstream_credentials,
        upstream_sources,
        buckets,
        policies,
        multipart,
        audit,
        admin,
        log,
        gateway_name,
        timeouts,
        limits,
        threads,
        shutdown_grace_secs,
        warnings: cx.warnings,
    })
}

fn default_gateway_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "s3gate".into())
}

fn list_section<T: DeserializeOwned>(cx: &mut Ctx<'_>, name: &str, v: Option<&Value>) -> Vec<T> {
    let Some(v) = v else { return Vec::new() };
    let Value::Sequence(items) = v else {
        cx.error(&[k(name)], format!("`{name}` must be a list"));
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| cx.parse(&[k(name), Step::Index(i)], item))
        .collect()
}

fn map_section<T: DeserializeOwned>(
    cx: &mut Ctx<'_>,
    name: &str,
    v: Option<&Value>,
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    let Some(v) = v else { return out };
    let Value::Mapping(m) = v else {
        cx.error(&[k(name)], format!("`{name}` must be a mapping"));
        return out;
    };
    for (key, item) in m {
        let key = key.as_str().unwrap_or("").to_string();
        if let Some(t) = cx.parse(&[k(name), k(&key)], item) {
            out.insert(key, t);
        }
    }
    out
}

fn principals(cx: &mut Ctx<'_>, v: Option<&Value>) -> Vec<ResolvedPrincipal> {
    let list: Vec<PrincipalConfig> = list_section(cx, "principals", v);
    let mut names = HashSet::new();
    let mut keys = HashSet::new();
    let mut out = Vec::new();
    for (i, p) in list.iter().enumerate() {
        let at = |f: &str| [k("principals"), Step::Index(i), k(f)];
        if !names.insert(p.name.clone()) {
            cx.error(
                &at("name"),
                format!("principals[{i}]: the name `{}` is used twice", p.name),
            );
        }
        if ["*", "anonymous"].contains(&p.name.as_str()) {
            cx.error(
                &at("name"),
                format!("principals[{i}]: `{}` is reserved in policies", p.name),
            );
        }
        if !keys.insert(p.access_key_id.clone()) {
            cx.error(
                &at("access_key_id"),
                format!(
                    "principals[{i}]: access key id {} is used twice",
                    p.access_key_id
                ),
            );
        }
        if p.access_key_id.len() < 3 || !p.access_key_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            cx.error(
                &at("access_key_id"),
                format!("principals[{i}].access_key_id must be ASCII letters and digits"),
            );
        }
        if let Some(secret) = cx.secret(&at("secret_access_key"), &p.secret_access_key) {
            out.push(ResolvedPrincipal {
                name: p.name.clone(),
                access_key_id: p.access_key_id.clone(),
                secret,
            });
        }
    }
    out
}

type Upstreams = (
    BTreeMap<String, UpstreamConfig>,
    BTreeMap<String, ResolvedCredentials>,
    BTreeMap<String, Source>,
);

fn upstreams(cx: &mut Ctx<'_>, v: Option<&Value>) -> Upstreams {
    let ups: BTreeMap<String, UpstreamConfig> = map_section(cx, "upstreams", v);
    let mut creds = BTreeMap::new();
    let mut sources = BTreeMap::new();
    for (name, u) in &ups {
        let at = |f: &str| vec![k("upstreams"), k(name), k(f)];
        match (&u.endpoint, u.kind) {
            (None, UpstreamKind::S3Compatible | UpstreamKind::Cos) => {
                cx.error(
                    &at("kind"),
                    format!(
                        "upstreams.{name}: an endpoint is required for kind {:?}",
                        u.kind
                    ),
                );
            }
            (Some(e), _) => {
                if let Err(msg) = crate::route::Endpoint::parse(e) {
                    cx.error(&at("endpoint"), format!("upstreams.{name}.endpoint: {msg}"));
                }
            }
            _ => {}
        }
        if matches!(u.kind, UpstreamKind::Aws | UpstreamKind::Outposts) && u.region.is_none() {
            cx.error(
                &at("kind"),
                format!(
                    "upstreams.{name}: `region` is required for kind {:?}",
                    u.kind
                ),
            );
        }
        if let Some(c) = &u.connect_to {
            if c.parse::<SocketAddr>().is_err() {
                cx.error(
                    &at("connect_to"),
                    format!("upstreams.{name}.connect_to: `{c}` is not an IP:port address"),
                );
            }
        }
        match &u.credentials {
            CredentialsConfig::Static(s) => {
                let mut c = at("credentials");
                c.push(k("access_key_id"));
                let akid = match &s.access_key_id {
                    // An access key id is not a secret: no warning for a literal.
                    SecretSource::Literal(v) => Some(Secret::new(v.clone())),
                    other => cx.secret(&c, other),
                };
                c.pop();
                c.push(k("secret_access_key"));
                let secret = cx.secret(&c, &s.secret_access_key);
                c.pop();
                c.push(k("session_token"));
                let token = s.session_token.as_ref().map(|t| cx.secret(&c, t));
                if let (Some(a), Some(s)) = (akid, secret) {
                    creds.insert(
                        name.clone(),
                        ResolvedCredentials {
                            access_key_id: a.expose().to_string(),
                            secret_access_key: s,
                            session_token: token.flatten(),
                        },
                    );
                }
            }
            CredentialsConfig::Named(n) if n == "aws-default-chain" => {
                sources.insert(name.clone(), Source::DefaultChain);
            }
            CredentialsConfig::Named(n) => {
                cx.error(&at("credentials"), format!("upstreams.{name}.credentials: unknown credential source `{n}` (expected aws-default-chain, assume_role or static keys)"));
            }
            CredentialsConfig::AssumeRole { assume_role: r } => {
                let mut c = at("credentials");
                c.push(k("assume_role"));
                if !r.role_arn.starts_with("arn:") || !r.role_arn.contains(":role/") {
                    let mut p = c.clone();
                    p.push(k("role_arn"));
                    cx.error(&p, format!("upstreams.{name}: role_arn `{}` is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)", r.role_arn));
                }
                let external_id = match &r.external_id {
                    Some(e) => {
                        let mut p = c.clone();
                        p.push(k("external_id"));
                        cx.secret(&p, e).map(|s| s.expose().to_string())
                    }
                    None => None,
                };
                match r.source.as_deref() {
                    None | Some("aws-default-chain") => {}
                    Some(other) => {
                        let mut p = c.clone();
                        p.push(k("source"));
                        cx.error(&p, format!("upstreams.{name}: assume_role.source `{other}` is not supported (use aws-default-chain)"));
                    }
                }
                sources.insert(
                    name.clone(),
                    Source::AssumeRole {
                        role_arn: r.role_arn.clone(),
                        external_id,
                        session_name: r.session_name.clone().unwrap_or_else(|| "s3gate".into()),
                        source: Box::new(Source::DefaultChain),
                    },
                );
            }
        }
        if let Some(f) = u.tls.as_ref().and_then(|t| t.ca_file.as_ref()) {
            if !f.exists() {
                let mut p = at("tls");
                p.push(k("ca_file"));
                cx.error(
                    &p,
                    format!(
                        "upstreams.{name}.tls.ca_file: {} does not exist",
                        f.display()
                    ),
                );
            }
        }
        if (u.dualstack || u.fips) && u.kind != UpstreamKind::Aws {
            cx.error(
                &at("kind"),
                format!("upstreams.{name}: dualstack and fips apply to kind aws only"),
            );
        }
    }
    (ups, creds, sources)
}

fn buckets(
    cx: &mut Ctx<'_>,
    v: Option<&Value>,
    declared: &[String],
    kinds: &BTreeMap<String, UpstreamKind>,
) -> BTreeMap<String, BucketConfig> {
    let buckets: BTreeMap<String, BucketConfig> = map_section(cx, "buckets", v);
    if v.is_none() {
        cx.error(
            &[],
            "missing section `buckets` (which buckets clients may use, and where they go)",
        );
    }
    for (name, b) in &buckets {
        let at = |f: &str| [k("buckets"), k(name), k(f)];
        let kind = kinds.get(&b.upstream).copied();
        if let Some(t) = b.target.as_deref().filter(|t| t.starts_with("arn:")) {
            match (crate::route::Arn::parse(t), kind) {
                (Err(e), _) => cx.error(&at("target"), format!("buckets.{name}.target: {e}")),
                (Ok(crate::route::Arn::Outposts { .. }), Some(k)) if k != UpstreamKind::Outposts => {
                    cx.error(&at("target"), format!("buckets.{name}.target: an Outposts ARN needs an upstream of kind outposts"))
                }
                (Ok(crate::route::Arn::AccessPoint { .. }), Some(k)) if k != UpstreamKind::Aws => {
                    cx.error(&at("target"), format!("buckets.{name}.target: an access point ARN needs an upstream of kind aws"))
                }
                _ => {}
            }
        } else if kind == Some(UpstreamKind::Outposts) && name != "*" {
            cx.error(&at("target"), format!("buckets.{name}: an outposts upstream is reached through an Outposts access point ARN as `target`"));
        }
        if kind == Some(UpstreamKind::Cos) {
            // IBM COS documents both headers as "ignored by COS if present".
            if b.expected_bucket_owner == ExpectedBucketOwnerRule::Passthrough {
                let w = cx.at(&at("upstream"), format!("buckets.{name}: COS ignores x-amz-expected-bucket-owner; with `passthrough` no owner check happens — use `enforce` or `require` (with `owner`)"));
                cx.warnings.push(w);
            }
            if b.request_payer == RequestPayerRule::Allow {
                let w = cx.at(&at("upstream"), format!("buckets.{name}: COS ignores x-amz-request-payer; `request_payer: allow` forwards a header nobody checks — use `deny` or `require` to make it a rule"));
                cx.warnings.push(w);
            }
        }
        if !declared.contains(&b.upstream) {
            let known: Vec<&str> = declared.iter().map(String::as_str).collect();
            let hint = crate::util::did_you_mean(&b.upstream, &known)
                .map(|s| format!(" — did you mean {s}?"))
                .unwrap_or_default();
            cx.error(
                &at("upstream"),
                format!(
                    "buckets.{name}: upstream `{}` is not defined in `upstreams`{hint}",
                    b.upstream
                ),
            );
        }
        if name == "*" && b.target.is_some() {
            cx.error(
                &at("target"),
                "buckets.\"*\": the catch-all cannot have a target (each bucket keeps its name)",
            );
        }
        if b.expected_bucket_owner != ExpectedBucketOwnerRule::Passthrough && b.owner.is_none() {
            cx.error(
                &at("expected_bucket_owner"),
                format!(
                    "buckets.{name}: expected_bucket_owner {:?} needs `owner`",
                    b.expected_bucket_owner
                ),
            );
        }
        if name != "*" && !crate::s3::addressing::valid_bucket_name(name) {
            cx.error(
                &[k("buckets"), k(name)],
                format!("buckets.{name}: not a valid S3 bucket name"),
            );
        }
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
listen:
  - address: 127.0.0.1:9000
region: us-east-1
hostnames: [localhost]
principals:
  - name: etl
    access_key_id: AKIAETL
    secret_access_key: s3cr3t
upstreams:
  lab:
    kind: s3-compatible
    endpoint: http://127.0.0.1:3900
    region: garage
    credentials: { access_key_id: GK1, secret_access_key: x }
buckets:
  data:
    upstream: lab
    target: real-data
";

    #[test]
    fn good_config_loads_with_warnings_for_literals() {
        let c = parse(Path::new("g.yaml"), GOOD).unwrap();
        assert_eq!(c.principals[0].name, "etl");
        assert_eq!(c.buckets["data"].target.as_deref(), Some("real-data"));
        assert_eq!(c.warnings.len(), 2);
        assert_eq!(c.warnings[0].line, 8);
        assert!(
            !c.warnings[0].to_string().contains("s3cr3t"),
            "{}",
            c.warnings[0]
        );
    }

    #[test]
    fn redacts_only_the_secret_value() {
        assert_eq!(
            redact_value(
                "  nginx: { access_key_id: N, secret_access_key: n }",
                "secret_access_key",
                "n"
            ),
            "  nginx: { access_key_id: N, secret_access_key: <redacted> }"
        );
        assert_eq!(
            redact_value("    secret_access_key: abc", "secret_access_key", "abc"),
            "    secret_access_key: <redacted>"
        );
    }

    #[test]
    fn reports_every_error_with_position() {
        let bad = GOOD
            .replace("    upstream: lab\n", "    upstream: labb\n")
            .replace("kind: s3-compatible", "kind: s3-compatible\n    endpont: x")
            .replace("region: us-east-1\n", "region: us-east-1\nregoin: x\n");
        let errs = parse(Path::new("g.yaml"), &bad).unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 3, "{text:#?}");
        assert!(
            text[0].starts_with("g.yaml:4:1: unknown section `regoin` — did you mean region?"),
            "{}",
            text[0]
        );
        assert!(
            text[1].starts_with("g.yaml:13:5: upstreams.lab: unknown field `endpont`"),
            "{}",
            text[1]
        );
        assert!(
            text[2].starts_with("g.yaml:19:5: buckets.data: upstream `labb` is not defined"),
            "{}",
            text[2]
        );
        assert!(text[2].contains("did you mean lab?"));
    }

    #[test]
    fn limits_default_and_parse() {
        let c = parse(Path::new("g.yaml"), GOOD).unwrap();
        assert_eq!(c.limits, Limits::default());
        assert_eq!(
            c.limits.request_head_timeout,
            std::time::Duration::from_secs(10)
        );
        let with = format!(
            "{GOOD}limits:\n  request_head_timeout: 2s\n  max_header_bytes: 16KiB\n  max_connections: 100\n  idle_timeout: 1500ms\n"
        );
        let c = parse(Path::new("g.yaml"), &with).unwrap();
        assert_eq!(
            c.limits,
            Limits {
                request_head_timeout: std::time::Duration::from_secs(2),
                max_header_bytes: 16 * 1024,
                max_connections: 100,
                idle_timeout: std::time::Duration::from_millis(1500),
            }
        );
    }

    #[test]
    fn limits_errors_have_positions() {
        let bad = format!(
            "{GOOD}limits:\n  request_head_timeout: soon\n  max_header_bytes: 2GiB\n  max_connections: 0\n"
        );
        let errs = parse(Path::new("g.yaml"), &bad).unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(errs.len(), 3, "{text:#?}");
        assert!(
            text[0]
                .starts_with("g.yaml:20:3: limits.request_head_timeout: `soon` is not a duration"),
            "{}",
            text[0]
        );
        assert!(
            text[1].starts_with("g.yaml:21:3: limits.max_header_bytes: `2GiB` is not a number"),
            "{}",
            text[1]
        );
        assert!(
            text[2].starts_with("g.yaml:22:3: limits.max_connections must be between 1 and"),
            "{}",
            text[2]
        );
        let unknown = format!("{GOOD}limits:\n  max_conections: 5\n");
        let errs = parse(Path::new("g.yaml"), &unknown).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0]
                .to_string()
                .starts_with("g.yaml:20:3: limits: unknown field `max_conections`"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn yaml_syntax_error_has_position() {
        let errs = parse(Path::new("g.yaml"), "listen: [\n").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].line >= 1);
    }
}
