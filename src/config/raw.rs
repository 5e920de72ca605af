//! The gateway configuration as users write it (docs/gateway.example.yaml),
//! before it is checked and turned into the typed model (`internal`).
//! Unknown keys are errors, never silently ignored. Values whose spelling
//! needs a message of its own (addresses, durations, `store`, `fsync`, …)
//! stay text here and are converted, with a positioned error, by the
//! section checkers.

use std::path::PathBuf;

use serde::Deserialize;

use super::internal::{Addressing, TlsConfig, UpstreamKind};

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
pub struct PrincipalConfig {
    pub name: String,
    pub access_key_id: String,
    pub secret_access_key: SecretSource,
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

/// `ibm_iam`: an IBM Cloud API key exchanged for IAM bearer tokens (kind cos).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IbmIamConfig {
    pub api_key: SecretSource,
    #[serde(default)]
    pub token_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CredentialsConfig {
    /// `aws-default-chain`
    Named(String),
    AssumeRole {
        assume_role: AssumeRoleConfig,
    },
    IbmIam {
        ibm_iam: IbmIamConfig,
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
    /// Whether the upstream keeps object versions (`versionId` means
    /// something there). Default: true for aws, cos and outposts, false
    /// for s3-compatible stores (Garage ignores `versionId` and would act
    /// on the current object).
    #[serde(default)]
    pub versioning: Option<bool>,
    #[serde(default)]
    pub dualstack: bool,
    #[serde(default)]
    pub fips: bool,
    /// COS: the service instance sent as `ibm-service-instance-id` on
    /// CreateBucket and ListBuckets.
    #[serde(default)]
    pub service_instance_id: Option<String>,
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
    /// Default age limit of incomplete uploads (`7d`), for the reaper.
    #[serde(default)]
    pub abort_incomplete_after: Option<String>,
    #[serde(default)]
    pub reaper: Option<ReaperConfig>,
}

/// `multipart.reaper`: the background task that aborts expired uploads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaperConfig {
    pub every: String,
    /// Incomplete uploads without an ownership record older than this are
    /// aborted as orphans (`5m`; `off`).
    #[serde(default)]
    pub orphans_after: Option<String>,
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
    pub rotate: Option<super::internal::RotateConfig>,
}

/// s3gate's extension: one JSON line per policy decision, for `s3gate replay`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionLogConfig {
    pub path: PathBuf,
    #[serde(default)]
    pub rotate: Option<super::internal::RotateConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub address: String,
}

/// s3gate's extension: timeouts towards upstreams, in seconds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConfig {
    #[serde(default)]
    pub connect_secs: Option<u64>,
    #[serde(default)]
    pub idle_secs: Option<u64>,
    #[serde(default)]
    pub read_secs: Option<u64>,
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
    "decision_log",
    "admin",
    "log",
    "gateway_name",
    "timeouts",
    "limits",
    "threads",
    "zero_copy",
];
