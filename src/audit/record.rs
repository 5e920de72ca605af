//! Audit records (spec/audit.md) and the hash chain that links them.

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

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

/// One audit record, before it gets its place in the chain.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Event {
    pub time: String,
    pub event: String,
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
    pub outcome: String,
    pub error: Option<String>,
    pub duration_ms: u64,
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
