//! Audit records (docs/audit.md) and the hash chain that links them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Longest `user_agent` (and header values as sent) kept in a record, in bytes.
pub const MAX_USER_AGENT: usize = 256;
/// Longest `key` and `upload_id` kept in a record, in bytes.
pub const MAX_KEY: usize = 1024;
/// Appended to a value that was cut short.
pub const TRUNCATION_MARK: &str = "\u{2026}";

#[derive(Debug, Clone, Default, Serialize)]
pub struct UpstreamInfo {
    pub name: Option<String>,
    pub endpoint: Option<String>,
    pub bucket: Option<String>,
    pub status: Option<u16>,
    pub request_id: Option<String>,
    pub host_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatementRef {
    pub file: String,
    pub sid: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DecisionInfo {
    pub effect: String,
    pub statements: Vec<StatementRef>,
    pub mode: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeaderRule {
    /// The header as the client sent it (null if not sent).
    pub sent: Option<String>,
    /// What the gateway did: passthrough | enforced | required | injected | denied | allowed …
    pub action: String,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Parts {
    pub count: u64,
    pub bytes: u64,
}

/// How an audited request ended (`outcome` in docs/audit.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Aborted,
    #[default]
    Denied,
    NoSuchUpload,
    PartsRemaining,
    UpstreamError,
    AuthFailed,
    Created,
    Completed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Aborted => "aborted",
            Outcome::Denied => "denied",
            Outcome::NoSuchUpload => "no_such_upload",
            Outcome::PartsRemaining => "parts_remaining",
            Outcome::UpstreamError => "upstream_error",
            Outcome::AuthFailed => "auth_failed",
            Outcome::Created => "created",
            Outcome::Completed => "completed",
        }
    }
}

/// The kind of a record (`event`): the config's event names.
pub use crate::config::AuditEvent as EventKind;

fn kind_name<S: serde::Serializer>(k: &EventKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

/// One audit record, before it gets its place in the chain.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub time: String,
    #[serde(serialize_with = "kind_name")]
    pub event: EventKind,
    pub request_id: String,
    pub principal: Option<String>,
    pub access_key_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub upload_id: Option<String>,
    pub upstream: Option<UpstreamInfo>,
    pub decision: Option<DecisionInfo>,
    pub expected_bucket_owner: Option<HeaderRule>,
    pub request_payer: Option<HeaderRule>,
    pub initiator: Option<String>,
    pub parts_before: Option<Parts>,
    pub attempts: u32,
    pub parts_remaining: Option<u64>,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub duration_ms: u64,
    /// The fields cut short (`user_agent`, `key`, …), null when none was.
    pub truncated: Option<Vec<String>>,
    /// On an `auth_failed` record: how many `auth_failed` records the rate
    /// limit dropped since the previous one written (null when none).
    pub suppressed: Option<u64>,
    /// Why the gateway itself acted: `expired` or `orphaned` on the
    /// reaper's aborts (principal `s3gate:reaper`); null on clients'
    /// requests.
    pub reason: Option<String>,
    /// Resolves `initiator` when the record is written (an ownership lookup
    /// that needs an await); not part of the record.
    #[serde(skip)]
    pub resolve_initiator: Option<InitiatorLookup>,
}

impl Default for Event {
    fn default() -> Self {
        Event {
            time: String::new(),
            event: EventKind::AbortMultipartUpload,
            request_id: String::new(),
            principal: None,
            access_key_id: None,
            source_ip: None,
            user_agent: None,
            bucket: None,
            key: None,
            upload_id: None,
            upstream: None,
            decision: None,
            expected_bucket_owner: None,
            request_payer: None,
            initiator: None,
            parts_before: None,
            attempts: 0,
            parts_remaining: None,
            outcome: Outcome::default(),
            error: None,
            duration_ms: 0,
            truncated: None,
            suppressed: None,
            reason: None,
            resolve_initiator: None,
        }
    }
}

type Lookup = dyn Fn() -> Pin<Box<dyn Future<Output = Option<String>> + Send>> + Send + Sync;

/// A deferred lookup of the principal that started an upload.
#[derive(Clone)]
pub struct InitiatorLookup(Arc<Lookup>);

impl InitiatorLookup {
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        InitiatorLookup(Arc::new(move || Box::pin(f())))
    }

    /// The initiator's principal name, or `None` when there is no record.
    pub async fn resolve(&self) -> Option<String> {
        (self.0)().await
    }
}

impl std::fmt::Debug for InitiatorLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InitiatorLookup")
    }
}

/// Cut `s` to at most `max` bytes (at a char boundary, the mark included),
/// ending it with `…`. Returns whether it was cut.
pub fn truncate(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max.saturating_sub(TRUNCATION_MARK.len());
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str(TRUNCATION_MARK);
    true
}

impl Event {
    /// Bound the free-text fields a client controls: `user_agent` and the
    /// header values as sent to 256 bytes, `key`, `upload_id` and `bucket`
    /// to 1 KiB. Cut fields end in `…` and are named in `truncated`.
    pub fn bound_free_text(&mut self) {
        let mut cut = Vec::new();
        let mut bound = |v: Option<&mut String>, max: usize, name: &str| {
            if let Some(v) = v {
                if truncate(v, max) {
                    cut.push(name.to_string());
                }
            }
        };
        bound(self.user_agent.as_mut(), MAX_USER_AGENT, "user_agent");
        bound(self.bucket.as_mut(), MAX_KEY, "bucket");
        bound(self.key.as_mut(), MAX_KEY, "key");
        bound(self.upload_id.as_mut(), MAX_KEY, "upload_id");
        bound(
            self.expected_bucket_owner
                .as_mut()
                .and_then(|h| h.sent.as_mut()),
            MAX_USER_AGENT,
            "expected_bucket_owner",
        );
        bound(
            self.request_payer.as_mut().and_then(|h| h.sent.as_mut()),
            MAX_USER_AGENT,
            "request_payer",
        );
        if !cut.is_empty() {
            self.truncated.get_or_insert_with(Vec::new).extend(cut);
        }
    }
}

/// The hash of a record: sha256(prev ‖ canonical record without `hash`).
/// Canonical: compact JSON with keys sorted (serde_json's default map).
pub fn chain_hash(prev: &str, record_without_hash: &Map<String, Value>) -> String {
    let canonical = serde_json::to_string(record_without_hash).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// The record line for `event` at `seq` after `prev`: returns (line, hash).
pub fn seal(event: &Event, v: u32, seq: u64, gateway: &str, prev: &str) -> (String, String) {
    let mut map = match serde_json::to_value(event) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    map.insert("v".into(), Value::from(v));
    map.insert("seq".into(), Value::from(seq));
    map.insert("gateway".into(), Value::from(gateway));
    map.insert("prev".into(), Value::from(prev));
    let hash = chain_hash(prev, &map);
    map.insert("hash".into(), Value::from(hash.clone()));
    (serde_json::to_string(&map).unwrap_or_default(), hash)
}
