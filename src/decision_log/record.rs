//! One line of the decision log: everything a policy decision read, and
//! what it decided. No secret and no signature is among it: the principal
//! is a name, and the context keys are the ones policies see (the
//! Authorization header and presigned signatures never become keys).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::BucketConfig;
use crate::policy::actions::{self, Need};
use crate::policy::condition::ContextKeys;
use crate::policy::{Decision, Effect};

/// The record format's version (`v`).
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedNeed {
    pub action: String,
    pub resource: String,
}

/// The bucket rules in force for the request (they decide after the
/// policy: recorded so a reader sees every input of the refusal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRules {
    pub upstream: String,
    pub owner: Option<String>,
    pub expected_bucket_owner: String,
    pub request_payer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub v: u32,
    pub time: String,
    pub request_id: String,
    pub operation: String,
    pub principal: String,
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// The permissions the request needed, each decided.
    pub needs: Vec<RecordedNeed>,
    /// Every condition key and its values (lower-cased names, as decided).
    pub context: BTreeMap<String, Vec<String>>,
    pub bucket_rules: Option<BucketRules>,
    /// `Allow` or `Deny`.
    pub effect: String,
    /// The deciding statements (`file#Sid`): the Denies, or the Allows.
    pub statements: Vec<String>,
    /// Denied in shadow mode (logged, not enforced).
    pub shadow: bool,
    /// The version of the policy set that decided (see
    /// `PolicySet::version`); absent in lines of older gateways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<String>,
}

/// What the gateway knows of a decided request.
pub struct Decided<'a> {
    pub request_id: &'a str,
    pub operation: &'a str,
    pub principal: &'a str,
    pub bucket: Option<&'a str>,
    pub key: Option<&'a str>,
    pub needs: &'a [Need],
    pub keys: &'a ContextKeys,
    pub rules: Option<(&'a str, &'a BucketConfig)>,
    pub decision: &'a Decision,
    pub shadow: bool,
    pub policy_version: Option<&'a str>,
}

fn lower_debug(v: impl std::fmt::Debug) -> String {
    format!("{v:?}").to_ascii_lowercase()
}

impl DecisionRecord {
    pub fn new(d: &Decided<'_>, time: String) -> Self {
        DecisionRecord {
            v: VERSION,
            time,
            request_id: d.request_id.to_string(),
            operation: d.operation.to_string(),
            principal: d.principal.to_string(),
            bucket: d.bucket.map(str::to_string),
            key: d.key.map(str::to_string),
            needs: d
                .needs
                .iter()
                .map(|n| RecordedNeed {
                    action: n.action.to_string(),
                    resource: n.resource.clone(),
                })
                .collect(),
            context: d.keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            bucket_rules: d.rules.map(|(upstream, r)| BucketRules {
                upstream: upstream.to_string(),
                owner: r.owner.clone(),
                expected_bucket_owner: lower_debug(r.expected_bucket_owner),
                request_payer: lower_debug(r.request_payer),
            }),
            effect: d.decision.effect.as_str().to_string(),
            statements: d.decision.statements.clone(),
            shadow: d.shadow,
            policy_version: d.policy_version.map(str::to_string),
        }
    }

    pub fn allowed(&self) -> bool {
        self.effect == Effect::Allow.as_str()
    }

    /// The needs as the policy set decides them (None: an action this
    /// s3gate does not know, from a newer version's log).
    pub fn decision_inputs(&self) -> Option<(Vec<Need>, ContextKeys)> {
        let needs = self
            .needs
            .iter()
            .map(|n| {
                Some(Need {
                    action: actions::canonical(&n.action)?,
                    resource: n.resource.clone(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        let keys = self
            .context
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Some((needs, keys))
    }

    /// `GetObject analytics-raw/ingest/a.parquet by etl`.
    pub fn describe(&self) -> String {
        let target = match (&self.bucket, &self.key) {
            (Some(b), Some(k)) => format!("{b}/{k}"),
            (Some(b), None) => b.clone(),
            _ => "(service)".into(),
        };
        format!(
            "{} {} {target} by {}",
            self.time, self.operation, self.principal
        )
    }
}
