//! The gateway's configuration for tests, built in Rust and rendered as
//! YAML. Every gateway a test starts listens on 127.0.0.1 port 0 and has an
//! admin listener on port 0; the real ports are read back from the
//! gateway's log at start (see `Gateway`), and readiness is `/readyz`.
//!
//! ```ignore
//! let gw = GatewayConfig::new(&garage)
//!     .alice_and_bob()
//!     .bucket("mpa", BucketRule::upstream("garage"))
//!     .policy(POLICY)
//!     .start(&dir);
//! ```

use std::path::{Path, PathBuf};

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::{Garage, ALICE_KEY, ALICE_SECRET, BOB_KEY, BOB_SECRET};

/// Where a secret comes from: written inline, or `{ env: VAR }`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Secret {
    Literal(String),
    Env { env: String },
}

impl Secret {
    /// `{ env: VAR }`
    pub fn env(var: &str) -> Self {
        Secret::Env {
            env: var.to_string(),
        }
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::Literal(s.to_string())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret::Literal(s)
    }
}

impl From<&String> for Secret {
    fn from(s: &String) -> Self {
        Secret::Literal(s.clone())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
struct Listen {
    address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<Tls>,
}

#[derive(Debug, Clone, Serialize)]
struct Admin {
    address: String,
}

#[derive(Debug, Clone, Serialize)]
struct Principal {
    name: String,
    access_key_id: String,
    secret_access_key: Secret,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AssumeRole {
    pub role_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    /// Where the source keys come from (`aws-default-chain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// An upstream's `credentials`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Credentials {
    /// A named source: `aws-default-chain`.
    Named(String),
    AssumeRole {
        assume_role: AssumeRole,
    },
    Static {
        access_key_id: Secret,
        secret_access_key: Secret,
    },
}

impl Credentials {
    pub fn keys(access_key_id: impl Into<Secret>, secret_access_key: impl Into<Secret>) -> Self {
        Credentials::Static {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
        }
    }
    pub fn default_chain() -> Self {
        Credentials::Named("aws-default-chain".to_string())
    }
    pub fn assume_role(role: AssumeRole) -> Self {
        Credentials::AssumeRole { assume_role: role }
    }
}

/// One entry of `upstreams` (always `kind: s3-compatible` here).
#[derive(Debug, Clone, Serialize)]
pub struct Upstream {
    kind: String,
    endpoint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    addressing: Option<String>,
    credentials: Credentials,
    /// Other keys of the upstream (`checksum_trailers`, `dualstack`…).
    #[serde(flatten)]
    more: std::collections::BTreeMap<String, serde_yaml::Value>,
}

impl Upstream {
    pub fn s3_compatible(endpoint: impl Into<String>, credentials: Credentials) -> Self {
        Upstream {
            kind: "s3-compatible".to_string(),
            endpoint: endpoint.into(),
            region: None,
            addressing: None,
            credentials,
            more: Default::default(),
        }
    }
    /// The test Garage with its own key (region `garage`).
    pub fn garage(garage: &Garage) -> Self {
        Upstream::s3_compatible(
            garage.endpoint.clone(),
            Credentials::keys(&garage.access_key_id, &garage.secret_access_key),
        )
        .region("garage")
    }
    pub fn region(mut self, region: &str) -> Self {
        self.region = Some(region.to_string());
        self
    }
    /// `path` or `virtual`.
    pub fn addressing(mut self, addressing: &str) -> Self {
        self.addressing = Some(addressing.to_string());
        self
    }
    /// Any other key of the upstream, as written (`checksum_trailers: false`).
    pub fn set(mut self, key: &str, value: impl Into<serde_yaml::Value>) -> Self {
        self.more.insert(key.to_string(), value.into());
        self
    }
}

/// One entry of `buckets`.
#[derive(Debug, Clone, Serialize)]
pub struct BucketRule {
    upstream: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_bucket_owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_payer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    abort_incomplete_after: Option<String>,
}

impl BucketRule {
    pub fn upstream(upstream: &str) -> Self {
        BucketRule {
            upstream: upstream.to_string(),
            target: None,
            owner: None,
            expected_bucket_owner: None,
            request_payer: None,
            abort_incomplete_after: None,
        }
    }
    /// The reaper aborts incomplete uploads older than this (`3s`, `7d`).
    pub fn abort_incomplete_after(mut self, d: &str) -> Self {
        self.abort_incomplete_after = Some(d.to_string());
        self
    }
    /// The bucket's name upstream.
    pub fn target(mut self, target: &str) -> Self {
        self.target = Some(target.to_string());
        self
    }
    /// The owner account and the `expected_bucket_owner` rule
    /// (`enforce`, `require`, `inject`, `passthrough`).
    pub fn owner(mut self, owner: &str, expected_bucket_owner: &str) -> Self {
        self.owner = Some(owner.to_string());
        self.expected_bucket_owner = Some(expected_bucket_owner.to_string());
        self
    }
    /// `allow`, `deny` or `require`.
    pub fn request_payer(mut self, rule: &str) -> Self {
        self.request_payer = Some(rule.to_string());
        self
    }
}

#[derive(Debug, Clone, Default, Serialize)]
struct Policies {
    paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
struct Ownership {
    store: String,
    upstream: String,
    bucket: String,
    prefix: String,
}

#[derive(Debug, Clone, Serialize)]
struct Abort {
    drain_in_flight: String,
    verify: bool,
    max_attempts: u32,
}

#[derive(Debug, Clone, Serialize)]
struct Reaper {
    every: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    orphans_after: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
struct Multipart {
    #[serde(skip_serializing_if = "Option::is_none")]
    ownership: Option<Ownership>,
    #[serde(skip_serializing_if = "Option::is_none")]
    abort: Option<Abort>,
    #[serde(skip_serializing_if = "Option::is_none")]
    abort_incomplete_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reaper: Option<Reaper>,
}

/// The `audit` section.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    path: PathBuf,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    events: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fsync: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_failure: Option<String>,
}

impl Audit {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Audit {
            path: path.into(),
            events: Vec::new(),
            fsync: None,
            on_failure: None,
        }
    }
    /// Events recorded besides the default ones.
    pub fn events(mut self, events: &[&str]) -> Self {
        self.events = events.iter().map(|e| e.to_string()).collect();
        self
    }
    pub fn fsync(mut self, fsync: &str) -> Self {
        self.fsync = Some(fsync.to_string());
        self
    }
    /// `reject` or `continue`.
    pub fn on_failure(mut self, on_failure: &str) -> Self {
        self.on_failure = Some(on_failure.to_string());
        self
    }
}

/// The `limits` section; unset keys keep the gateway's defaults.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Limits {
    #[serde(skip_serializing_if = "Option::is_none")]
    request_head_timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_header_bytes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_connections: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_timeout: Option<String>,
}

impl Limits {
    /// `3s`, `250ms`…
    pub fn request_head_timeout(mut self, d: &str) -> Self {
        self.request_head_timeout = Some(d.to_string());
        self
    }
    /// `16KiB`…
    pub fn max_header_bytes(mut self, size: &str) -> Self {
        self.max_header_bytes = Some(size.to_string());
        self
    }
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n);
        self
    }
    pub fn idle_timeout(mut self, d: &str) -> Self {
        self.idle_timeout = Some(d.to_string());
        self
    }
}

#[derive(Debug, Clone, Serialize)]
struct Timeouts {
    connect_secs: u64,
    read_secs: u64,
    idle_secs: u64,
}

#[derive(Debug, Clone, Serialize)]
struct Log {
    format: String,
}

/// Named entries in the order given, rendered as a YAML mapping; adding a
/// name again replaces its entry.
#[derive(Debug, Clone)]
struct Named<T>(Vec<(String, T)>);

impl<T> Default for Named<T> {
    fn default() -> Self {
        Named(Vec::new())
    }
}

impl<T> Named<T> {
    fn set(&mut self, name: &str, value: T) {
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Serialize> Serialize for Named<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// A gateway configuration. Fields render in this order; sections left
/// unset are left out (the gateway's defaults apply).
#[derive(Debug, Clone, Serialize)]
pub struct GatewayConfig {
    listen: Vec<Listen>,
    admin: Admin,
    region: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hostnames: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway_name: Option<String>,
    principals: Vec<Principal>,
    upstreams: Named<Upstream>,
    #[serde(skip_serializing_if = "Named::is_empty")]
    buckets: Named<BucketRule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policies: Option<Policies>,
    #[serde(skip_serializing_if = "Option::is_none")]
    multipart: Option<Multipart>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audit: Option<Audit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limits: Option<Limits>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeouts: Option<Timeouts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<Log>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zero_copy: Option<bool>,
    /// Policy documents (file name, text) to write under `policies/` next
    /// to the config.
    #[serde(skip)]
    policy_files: Vec<(String, String)>,
    #[serde(skip)]
    extra: String,
    /// Start the gateway with an empty environment (see `clean_env`).
    #[serde(skip)]
    pub(crate) clean_env: bool,
}

impl GatewayConfig {
    /// Listeners on port 0 (S3 and admin), region `us-east-1`, and no
    /// principals, upstreams or buckets yet.
    pub fn empty() -> Self {
        GatewayConfig {
            listen: vec![Listen {
                address: "127.0.0.1:0".to_string(),
                tls: None,
            }],
            admin: Admin {
                address: "127.0.0.1:0".to_string(),
            },
            region: "us-east-1".to_string(),
            hostnames: Vec::new(),
            gateway_name: None,
            principals: Vec::new(),
            upstreams: Named::default(),
            buckets: Named::default(),
            policies: None,
            multipart: None,
            audit: None,
            limits: None,
            timeouts: None,
            log: None,
            zero_copy: None,
            policy_files: Vec::new(),
            extra: String::new(),
            clean_env: false,
        }
    }

    /// [`GatewayConfig::empty`] with the upstream `garage`
    /// ([`Upstream::garage`]).
    pub fn new(garage: &Garage) -> Self {
        Self::empty().upstream("garage", Upstream::garage(garage))
    }

    /// The shared gateway of `env()`: alice and bob, Garage addressed by
    /// path, `visible` exposing Garage's `renamed`, every other bucket
    /// passed through, virtual-hosted names under `s3.local.test`.
    pub fn shared(garage: &Garage) -> Self {
        Self::new(garage)
            .hostnames(&["s3.local.test", "localhost"])
            .gateway_name("test-gateway")
            .alice_and_bob()
            .upstream("garage", Upstream::garage(garage).addressing("path"))
            .bucket("visible", BucketRule::upstream("garage").target("renamed"))
            .bucket("*", BucketRule::upstream("garage"))
    }

    pub fn region(mut self, region: &str) -> Self {
        self.region = region.to_string();
        self
    }

    pub fn hostnames(mut self, names: &[&str]) -> Self {
        self.hostnames = names.iter().map(|n| n.to_string()).collect();
        self
    }

    pub fn gateway_name(mut self, name: &str) -> Self {
        self.gateway_name = Some(name.to_string());
        self
    }

    pub fn principal(mut self, name: &str, key: &str, secret: impl Into<Secret>) -> Self {
        self.principals.push(Principal {
            name: name.to_string(),
            access_key_id: key.to_string(),
            secret_access_key: secret.into(),
        });
        self
    }

    /// alice ([`ALICE_KEY`]) and bob ([`BOB_KEY`]).
    pub fn alice_and_bob(self) -> Self {
        self.principal("alice", ALICE_KEY, ALICE_SECRET)
            .principal("bob", BOB_KEY, BOB_SECRET)
    }

    pub fn upstream(mut self, name: &str, upstream: Upstream) -> Self {
        self.upstreams.set(name, upstream);
        self
    }

    /// A bucket rule; `*` is every other bucket.
    pub fn bucket(mut self, name: &str, rule: BucketRule) -> Self {
        self.buckets.set(name, rule);
        self
    }

    /// A file or directory of policies (relative: to the config's directory).
    pub fn policy_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.policies
            .get_or_insert_with(Policies::default)
            .paths
            .push(path.into());
        self
    }

    /// A policy document, written next to the config as `policies/p.yaml`
    /// (the next ones `policies/p2.yaml`…).
    pub fn policy(self, text: &str) -> Self {
        let name = match self.policy_files.len() {
            0 => "p.yaml".to_string(),
            n => format!("p{}.yaml", n + 1),
        };
        self.policy_file(&name, text)
    }

    /// A policy document written next to the config as `policies/<name>`.
    pub fn policy_file(mut self, name: &str, text: &str) -> Self {
        if self.policy_files.is_empty() {
            self = self.policy_dir("policies");
        }
        self.policy_files.push((name.to_string(), text.to_string()));
        self
    }

    /// Multipart ownership kept in an S3 bucket.
    pub fn ownership_s3(mut self, upstream: &str, bucket: &str, prefix: &str) -> Self {
        self.multipart
            .get_or_insert_with(Multipart::default)
            .ownership = Some(Ownership {
            store: "s3".to_string(),
            upstream: upstream.to_string(),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        });
        self
    }

    /// `multipart.abort`.
    pub fn abort(mut self, drain_in_flight: &str, verify: bool, max_attempts: u32) -> Self {
        self.multipart.get_or_insert_with(Multipart::default).abort = Some(Abort {
            drain_in_flight: drain_in_flight.to_string(),
            verify,
            max_attempts,
        });
        self
    }

    /// `multipart.reaper: { every }`.
    pub fn reaper(mut self, every: &str) -> Self {
        self.multipart.get_or_insert_with(Multipart::default).reaper = Some(Reaper {
            every: every.to_string(),
            orphans_after: None,
        });
        self
    }

    /// `multipart.reaper.orphans_after` (after `reaper`).
    pub fn orphans_after(mut self, d: &str) -> Self {
        if let Some(r) = self.multipart.as_mut().and_then(|m| m.reaper.as_mut()) {
            r.orphans_after = Some(d.to_string());
        }
        self
    }

    /// `multipart.abort_incomplete_after`: the default age limit.
    pub fn abort_incomplete_after(mut self, d: &str) -> Self {
        self.multipart
            .get_or_insert_with(Multipart::default)
            .abort_incomplete_after = Some(d.to_string());
        self
    }

    pub fn audit(mut self, audit: Audit) -> Self {
        self.audit = Some(audit);
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Upstream timeouts, in seconds.
    pub fn timeouts(mut self, connect_secs: u64, read_secs: u64, idle_secs: u64) -> Self {
        self.timeouts = Some(Timeouts {
            connect_secs,
            read_secs,
            idle_secs,
        });
        self
    }

    /// `human` or `json`.
    pub fn log_format(mut self, format: &str) -> Self {
        self.log = Some(Log {
            format: format.to_string(),
        });
        self
    }

    /// Whether large GetObject bodies are spliced (`zero_copy:`).
    pub fn zero_copy(mut self, on: bool) -> Self {
        self.zero_copy = Some(on);
        self
    }

    /// Serve S3 over TLS with this certificate and key.
    pub fn tls(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.listen[0].tls = Some(Tls {
            cert: cert.into(),
            key: key.into(),
        });
        self
    }

    /// Whether the S3 listener serves TLS.
    pub fn is_tls(&self) -> bool {
        self.listen.iter().any(|l| l.tls.is_some())
    }

    /// Fixed listener addresses (S3, admin) instead of port 0, for a
    /// gateway restarted where its clients expect it.
    pub fn listen_on(mut self, s3: &str, admin: &str) -> Self {
        self.listen[0].address = s3.to_string();
        self.admin.address = admin.to_string();
        self
    }

    /// Top-level YAML appended as written, for what the builder does not
    /// cover (a key set here must not be set by the builder too).
    pub fn extra_yaml(mut self, yaml: &str) -> Self {
        self.extra.push_str(yaml);
        if !self.extra.ends_with('\n') {
            self.extra.push('\n');
        }
        self
    }

    /// Start the gateway with a cleared environment: only `PATH` and the
    /// variables passed to `start_with_env`, so nothing of the test
    /// process (`AWS_*`, `S3GATE_LOG`, `RUST_LOG`) reaches it, and the log
    /// filter is the gateway's own default.
    pub fn clean_env(mut self) -> Self {
        self.clean_env = true;
        self
    }

    /// The configuration as YAML.
    pub fn render(&self) -> String {
        let mut yaml = serde_yaml::to_string(self).expect("render the gateway config");
        yaml.push_str(&self.extra);
        yaml
    }

    /// Write the configuration as `dir/gateway.yaml` (and its policy
    /// documents under `dir/policies/`); returns the config's path.
    pub fn write(&self, dir: &Path) -> PathBuf {
        std::fs::create_dir_all(dir).expect("mkdir");
        if !self.policy_files.is_empty() {
            std::fs::create_dir_all(dir.join("policies")).expect("mkdir policies");
        }
        for (name, text) in &self.policy_files {
            std::fs::write(dir.join("policies").join(name), text).expect("write policy");
        }
        let path = dir.join("gateway.yaml");
        std::fs::write(&path, self.render()).expect("write config");
        path
    }
}
