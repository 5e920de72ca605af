//! The checked configuration: typed values the runtime only reads. Every
//! address, endpoint, ARN, duration, credential source and option in here
//! was parsed (and its spelling reported at file:line:column) once, by the
//! section checkers; nothing downstream parses config text again.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{Arn, ConfigError, Endpoint, Limits};
use crate::secret::Secret;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub listen: Vec<Listener>,
    pub region: String,
    pub hostnames: Vec<String>,
    pub principals: Vec<ResolvedPrincipal>,
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    pub buckets: BTreeMap<String, BucketConfig>,
    pub policies: PoliciesConfig,
    pub multipart: MultipartConfig,
    pub audit: Option<AuditConfig>,
    /// One JSON line per policy decision (s3gate extension, `decision_log:`).
    pub decision_log: Option<DecisionLogConfig>,
    pub admin: Option<AdminConfig>,
    pub log: LogConfig,
    pub gateway_name: String,
    pub timeouts: Timeouts,
    /// What one client connection may cost (s3gate extension, `limits:`).
    pub limits: Limits,
    pub threads: usize,
    /// GetObject bodies moved with splice(2) when client and upstream are
    /// both plain TCP (s3gate extension, `zero_copy:`, default true).
    pub zero_copy: bool,
    /// After SIGTERM, how long in-flight requests may take (s3gate extension).
    pub shutdown_grace: Duration,
    /// Things that work but deserve a look (`s3gate check` prints them).
    pub warnings: Vec<ConfigError>,
}

/// A client listener.
#[derive(Debug, Clone)]
pub struct Listener {
    pub address: SocketAddr,
    pub tls: Option<TlsConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
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
    /// An IBM Cloud IAM access token: sent as `Authorization: Bearer`
    /// instead of a SigV4 signature (the keys above are then empty).
    pub bearer: Option<Secret>,
}

impl ResolvedCredentials {
    /// Credentials that are one bearer token.
    pub fn bearer(token: Secret) -> Self {
        ResolvedCredentials {
            access_key_id: String::new(),
            secret_access_key: Secret::new(String::new()),
            session_token: None,
            bearer: Some(token),
        }
    }
}

/// The IBM Cloud IAM token endpoint used when `token_url` is not set.
pub const IBM_IAM_TOKEN_URL: &str = "https://iam.cloud.ibm.com/identity/token";

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

/// Where an upstream's keys come from, when they are not written down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    DefaultChain,
    AssumeRole {
        role_arn: String,
        external_id: Option<String>,
        session_name: String,
        source: Box<Source>,
    },
}

/// An upstream's credentials: static keys, a provider, or an IBM Cloud
/// API key exchanged for IAM tokens.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    Static(ResolvedCredentials),
    Provider(Source),
    IbmIam {
        api_key: Secret,
        token_url: Endpoint,
        /// The path (and query) of the token URL.
        token_path: String,
    },
}

/// A checked upstream, defaults applied.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub kind: UpstreamKind,
    /// As written, or AWS's regional endpoint for kinds aws and outposts.
    pub endpoint: Endpoint,
    /// As written, or `us-east-1`.
    pub region: String,
    /// As written, or virtual for kind aws and path for the others.
    pub addressing: Addressing,
    pub credentials: CredentialSource,
    /// Dial this address but keep the endpoint's Host and SNI.
    pub connect_to: Option<SocketAddr>,
    /// Roots to trust for this upstream's TLS; None: the system's.
    pub ca_file: Option<PathBuf>,
    /// Re-frame aws-chunked bodies so the client's trailing checksum
    /// reaches the upstream.
    pub checksum_trailers: bool,
    /// The upstream keeps object versions: requests naming a `versionId`
    /// are forwarded (else refused, as the upstream would act on the
    /// current object).
    pub versioning: bool,
    pub dualstack: bool,
    pub fips: bool,
    /// COS: `ibm-service-instance-id` on CreateBucket and ListBuckets.
    pub service_instance_id: Option<String>,
    /// Bucket names on this upstream that are access point or Outposts
    /// ARNs (bucket targets, the ownership store's bucket), parsed.
    pub access_points: BTreeMap<String, Arn>,
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

/// A client-visible bucket: where it goes, and its rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    pub upstream: String,
    /// The bucket name upstream (or an access point ARN, see
    /// `UpstreamConfig::access_points`).
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub expected_bucket_owner: ExpectedBucketOwnerRule,
    #[serde(default)]
    pub request_payer: RequestPayerRule,
    /// CORS rules answered by the gateway (None: preflights go to the
    /// upstream bucket's own CORS configuration).
    #[serde(default)]
    pub cors: Option<Vec<super::cors::CorsRule>>,
    /// The reaper aborts this bucket's incomplete multipart uploads
    /// initiated longer ago than this (overrides
    /// `multipart.abort_incomplete_after`).
    #[serde(default, deserialize_with = "duration_text")]
    pub abort_incomplete_after: Option<Duration>,
}

/// A duration as written (`3s`, `30m`, `7d`), read once.
fn duration_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    super::limits::parse_duration(&text)
        .filter(|d| !d.is_zero())
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "abort_incomplete_after `{text}` is not a duration (like 3s, 30m, 12h, 7d)"
            ))
        })
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
    /// Policy files and folders; relative ones are resolved against the
    /// config file's folder when the config is loaded.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    #[serde(default)]
    pub mode: PolicyMode,
}

/// Where the multipart ownership records are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OwnershipStore {
    #[default]
    Memory,
    /// Objects under `prefix` in `bucket` on `upstream`.
    S3 {
        upstream: String,
        bucket: String,
        prefix: String,
    },
}

/// The default prefix of the ownership records in their bucket.
pub const DEFAULT_OWNERSHIP_PREFIX: &str = "s3gate/multipart-owners/";

/// The abort flow's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortSettings {
    pub drain_in_flight: Duration,
    pub verify: bool,
    pub max_attempts: u32,
}

impl Default for AbortSettings {
    fn default() -> Self {
        AbortSettings {
            drain_in_flight: Duration::from_secs(30),
            verify: true,
            max_attempts: 5,
        }
    }
}

/// `multipart.reaper`: how often the reaper looks for expired uploads,
/// and after how long an upload nobody is on record for is an orphan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaperSettings {
    pub every: Duration,
    /// None: `off`. Only acts with `ownership.store: s3` (the memory
    /// store's records are one replica's, and lost on restart).
    pub orphans_after: Option<Duration>,
}

/// `multipart.reaper.orphans_after` when not written.
pub const DEFAULT_ORPHANS_AFTER: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, Default)]
pub struct MultipartConfig {
    pub ownership: OwnershipStore,
    pub abort: AbortSettings,
    /// The default age after which incomplete uploads of named buckets are
    /// aborted by the reaper (a bucket's own `abort_incomplete_after` wins).
    pub abort_incomplete_after: Option<Duration>,
    /// None: no reaper runs.
    pub reaper: Option<ReaperSettings>,
}

impl Config {
    /// The buckets the reaper looks at: named buckets (the catch-all has no
    /// list of names) with an age limit, their own or the default. Returns
    /// (bucket, limit, where the limit is written).
    pub fn reaped_buckets(&self) -> Vec<(String, Duration, String)> {
        self.buckets
            .iter()
            .filter(|(name, _)| name.as_str() != "*")
            .filter_map(|(name, b)| match b.abort_incomplete_after {
                Some(d) => Some((
                    name.clone(),
                    d,
                    format!("buckets.{name}.abort_incomplete_after"),
                )),
                None => self.multipart.abort_incomplete_after.map(|d| {
                    (
                        name.clone(),
                        d,
                        "multipart.abort_incomplete_after".to_string(),
                    )
                }),
            })
            .collect()
    }
}

/// Events the audit ledger can record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    AbortMultipartUpload,
    CreateMultipartUpload,
    CompleteMultipartUpload,
    Denied,
}

impl AuditEvent {
    pub const ALL: [AuditEvent; 4] = [
        AuditEvent::AbortMultipartUpload,
        AuditEvent::CreateMultipartUpload,
        AuditEvent::CompleteMultipartUpload,
        AuditEvent::Denied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::AbortMultipartUpload => "AbortMultipartUpload",
            AuditEvent::CreateMultipartUpload => "CreateMultipartUpload",
            AuditEvent::CompleteMultipartUpload => "CompleteMultipartUpload",
            AuditEvent::Denied => "Denied",
        }
    }

    pub fn parse(s: &str) -> Option<AuditEvent> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// When audit records reach the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fsync {
    /// Before the client hears the answer.
    #[default]
    Always,
    /// About once a second.
    Interval,
}

/// What a request does when its audit record cannot be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnFailure {
    #[default]
    Reject,
    Continue,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateConfig {
    pub max_bytes: u64,
    pub keep: u32,
}

#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub path: PathBuf,
    /// Besides AbortMultipartUpload, which is always recorded.
    pub events: Vec<AuditEvent>,
    pub fsync: Fsync,
    pub on_failure: OnFailure,
    pub rotate: Option<RotateConfig>,
}

/// `decision_log`: where decisions are written, and how the file rotates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionLogConfig {
    pub path: PathBuf,
    pub rotate: Option<RotateConfig>,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub address: SocketAddr,
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

/// s3gate's extension: timeouts towards upstreams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub idle: Duration,
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            read: Duration::from_secs(300),
        }
    }
}
