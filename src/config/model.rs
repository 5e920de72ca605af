//! The gateway configuration as users write it (docs/gateway.example.yaml).
//! Unknown keys are errors, never silently ignored.

use std::path::PathBuf;

use serde::Deserialize;

/// Where a secret comes from: `"literal"`, `{ env: VAR }` or `{ file: /path }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SecretSource {
    Literal(String),
    Env { env: String },
    File { file: PathBuf },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub address: String,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalConfig {
    pub name: String,
    pub access_key_id: String,
    pub secret_access_key: SecretSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamKind {
    Aws,
    Cos,
    Outposts,
    S3Compatible,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Addressing {
    Path,
    Virtual,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticCredentials {
    pub access_key_id: SecretSource,
    pub secret_access_key: SecretSource,
    #[serde(default)]
    pub session_token: Option<SecretSource>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssumeRoleConfig {
    pub role_arn: String,
    #[serde(default)]
    pub external_id: Option<SecretSource>,
    #[serde(default)]
    pub session_name: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CredentialsConfig {
    /// `aws-default-chain`
    Named(String),
    AssumeRole {
        assume_role: AssumeRoleConfig,
    },
    Static(StaticCredentials),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub kind: UpstreamKind,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub addressing: Option<Addressing>,
    pub credentials: CredentialsConfig,
    /// Dial this address but keep the endpoint's Host and SNI.
    #[serde(default)]
    pub connect_to: Option<String>,
    #[serde(default)]
    pub tls: Option<UpstreamTls>,
    /// Forward the client's trailing checksum by re-framing aws-chunked
    /// bodies for the upstream (default true; turn off for upstreams that
    /// do not accept `STREAMING-UNSIGNED-PAYLOAD-TRAILER`).
    #[serde(default)]
    pub checksum_trailers: Option<bool>,
    #[serde(default)]
    pub dualstack: bool,
    #[serde(default)]
    pub fips: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedBucketOwnerRule {
    #[default]
    Passthrough,
    Enforce,
    Require,
    Inject,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestPayerRule {
    #[default]
    Allow,
    Deny,
    Require,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    pub upstream: String,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub expected_bucket_owner: ExpectedBucketOwnerRule,
    #[serde(default)]
    pub request_payer: RequestPayerRule,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyMode {
    #[default]
    Enforce,
    Shadow,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoliciesConfig {
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    #[serde(default)]
    pub mode: PolicyMode,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnershipConfig {
    pub store: String,
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub bucket: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbortConfig {
    #[serde(default)]
    pub drain_in_flight: Option<String>,
    #[serde(default)]
    pub verify: Option<bool>,
    #[serde(default)]
    pub max_attempts: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultipartConfig {
    #[serde(default)]
    pub ownership: Option<OwnershipConfig>,
    #[serde(default)]
    pub abort: Option<AbortConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateConfig {
    pub max_bytes: u64,
    pub keep: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    pub path: PathBuf,
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub fsync: Option<String>,
    #[serde(default)]
    pub on_failure: Option<String>,
    #[serde(default)]
    pub rotate: Option<RotateConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub address: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// s3gate's extension: logging. `level` takes tracing's filter syntax.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
    #[serde(default)]
    pub level: Option<String>,
}

/// s3gate's extension: timeouts towards upstreams, in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConfig {
    #[serde(default = "default_connect")]
    pub connect_secs: u64,
    #[serde(default = "default_idle")]
    pub idle_secs: u64,
    #[serde(default = "default_read")]
    pub read_secs: u64,
}

fn default_connect() -> u64 {
    10
}
fn default_idle() -> u64 {
    60
}
fn default_read() -> u64 {
    300
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            connect_secs: default_connect(),
            idle_secs: default_idle(),
            read_secs: default_read(),
        }
    }
}

/// The top level. Each section is parsed on its own so that one mistake
/// does not hide the others.
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "shutdown_grace_secs",
    "listen",
    "region",
    "hostnames",
    "principals",
    "upstreams",
    "buckets",
    "policies",
    "multipart",
    "audit",
    "admin",
    "log",
    "gateway_name",
    "timeouts",
    "limits",
    "threads",
];
