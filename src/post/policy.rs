//! The POST policy document (AWS docs, "Creating a POST policy"): a base64
//! JSON document with an `expiration` and `conditions`, each condition one
//! of
//!
//! - `{"field": "value"}` — exact match (`eq`),
//! - `["eq", "$field", "value"]`, `["starts-with", "$field", "prefix"]`,
//! - `["content-length-range", min, max]` — the file's size in bytes.
//!
//! Field names are compared without regard to case. Every form field must
//! be named by some condition, except those S3 exempts (the signature, the
//! file, the policy, `x-ignore-*`); a field that no condition names is
//! refused, so the signer decides every field that reaches the store.

use std::time::SystemTime;

use base64::Engine as _;
use serde_json::Value;

use crate::s3::{err, S3Error, S3ErrorCode, S3Result};

/// The largest policy document read (S3 bounds the form fields to 20 KiB).
const MAX_POLICY_BYTES: usize = 20 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Eq { field: String, value: String },
    StartsWith { field: String, prefix: String },
    ContentLengthRange { min: u64, max: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostPolicy {
    pub expiration: SystemTime,
    pub conditions: Vec<Condition>,
}

fn invalid(msg: impl Into<String>) -> S3Error {
    err(
        S3ErrorCode::InvalidPolicyDocument,
        format!("Invalid Policy: {}", msg.into()),
    )
}

fn denied(msg: impl std::fmt::Display) -> S3Error {
    err(
        S3ErrorCode::AccessDenied,
        format!("Invalid according to Policy: {msg}"),
    )
}

/// `2007-12-01T12:00:00.000Z` (ISO 8601, UTC, fraction optional).
fn parse_expiration(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let fraction = s.get(19..s.len() - 1)?;
    let digits = fraction.strip_prefix('.').unwrap_or("-");
    let fraction_ok =
        fraction.is_empty() || (!digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()));
    if !fraction_ok {
        return None;
    }
    let basic = format!(
        "{}{}{}T{}{}{}Z",
        s.get(0..4)?,
        s.get(5..7)?,
        s.get(8..10)?,
        s.get(11..13)?,
        s.get(14..16)?,
        s.get(17..19)?
    );
    crate::auth::time::parse_amz_date(&basic)
}

fn field_name(v: &Value) -> S3Result<String> {
    let s = v
        .as_str()
        .ok_or_else(|| invalid("a condition's field must be a string"))?;
    let name = s.strip_prefix('$').unwrap_or(s);
    if name.is_empty() {
        return Err(invalid("a condition names an empty field"));
    }
    Ok(name.to_ascii_lowercase())
}

fn length(v: &Value) -> S3Result<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| invalid("content-length-range bounds must be non-negative integers"))
}

fn condition(v: &Value) -> S3Result<Condition> {
    match v {
        Value::Object(map) => {
            let mut it = map.iter();
            let (Some((k, val)), None) = (it.next(), it.next()) else {
                return Err(invalid("a condition object must have exactly one field"));
            };
            let value = val
                .as_str()
                .ok_or_else(|| invalid(format!("the condition on {k} must be a string")))?;
            Ok(Condition::Eq {
                field: field_name(&Value::String(k.clone()))?,
                value: value.to_string(),
            })
        }
        Value::Array(a) if a.len() == 3 => {
            let op = a[0]
                .as_str()
                .ok_or_else(|| invalid("a condition's operator must be a string"))?;
            if op.eq_ignore_ascii_case("content-length-range") {
                let (min, max) = (length(&a[1])?, length(&a[2])?);
                if min > max {
                    return Err(invalid(
                        "content-length-range: the minimum exceeds the maximum",
                    ));
                }
                return Ok(Condition::ContentLengthRange { min, max });
            }
            let field = field_name(&a[1])?;
            let value = a[2]
                .as_str()
                .ok_or_else(|| invalid(format!("the condition on {field} must be a string")))?
                .to_string();
            if op.eq_ignore_ascii_case("eq") {
                Ok(Condition::Eq { field, value })
            } else if op.eq_ignore_ascii_case("starts-with") {
                Ok(Condition::StartsWith {
                    field,
                    prefix: value,
                })
            } else {
                Err(invalid(format!("unknown condition operator {op:?}")))
            }
        }
        _ => Err(invalid(
            "a condition must be an object or a three-element array",
        )),
    }
}

impl PostPolicy {
    /// Decode and parse the `policy` form field.
    pub fn parse(b64: &str) -> S3Result<PostPolicy> {
        if b64.len() > MAX_POLICY_BYTES * 4 / 3 + 4 {
            return Err(invalid("the policy document is too large"));
        }
        let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| invalid("the policy is not valid base64"))?;
        let doc: Value = serde_json::from_slice(&raw)
            .map_err(|e| invalid(format!("the policy is not valid JSON ({e})")))?;
        let obj = doc
            .as_object()
            .ok_or_else(|| invalid("the policy must be a JSON object"))?;
        let expiration = obj
            .get("expiration")
            .ok_or_else(|| invalid("Policy missing expiration"))?
            .as_str()
            .and_then(parse_expiration)
            .ok_or_else(|| invalid("Invalid 'expiration' value"))?;
        let conditions = match obj.get("conditions") {
            Some(Value::Array(list)) => list.iter().map(condition).collect::<S3Result<_>>()?,
            Some(_) => return Err(invalid("'conditions' must be a list")),
            None => return Err(invalid("Policy missing conditions")),
        };
        for k in obj.keys() {
            if k != "expiration" && k != "conditions" {
                return Err(invalid(format!("Unexpected field {k:?}")));
            }
        }
        Ok(PostPolicy {
            expiration,
            conditions,
        })
    }

    /// The file's permitted size, when the policy bounds it (the tightest
    /// of several ranges).
    pub fn length_range(&self) -> Option<(u64, u64)> {
        self.conditions.iter().fold(None, |acc, c| match c {
            Condition::ContentLengthRange { min, max } => Some(match acc {
                None => (*min, *max),
                Some((a, b)) => ((*min).max(a), (*max).min(b)),
            }),
            _ => acc,
        })
    }

    /// Check the form against the policy: not expired, every condition
    /// met, every field covered. `fields` are the form's fields as the
    /// request will use them (the key after `${filename}`), `bucket` the
    /// bucket the form was posted to.
    pub fn check(
        &self,
        fields: &[(String, String)],
        bucket: &str,
        now: SystemTime,
    ) -> S3Result<()> {
        if now > self.expiration {
            return Err(denied("Policy expired."));
        }
        let value = |name: &str| -> Option<&str> {
            if name == "bucket" {
                return Some(bucket);
            }
            fields
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        for c in &self.conditions {
            let ok = match c {
                Condition::Eq { field, value: want } => value(field) == Some(want.as_str()),
                Condition::StartsWith { field, prefix } => {
                    let v = value(field).unwrap_or("");
                    if field.eq_ignore_ascii_case("content-type") && v.contains(',') {
                        // S3: a Content-Type with commas is a list; each
                        // of its values must start with the prefix.
                        v.split(',').all(|t| t.trim().starts_with(prefix.as_str()))
                    } else {
                        v.starts_with(prefix.as_str())
                    }
                }
                Condition::ContentLengthRange { .. } => true,
            };
            if !ok {
                return Err(denied(format!("Policy Condition failed: {}", describe(c))));
            }
        }
        for (name, _) in fields {
            let n = name.to_ascii_lowercase();
            if exempt(&n) {
                continue;
            }
            let covered = self.conditions.iter().any(|c| match c {
                Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => *field == n,
                Condition::ContentLengthRange { .. } => false,
            });
            if !covered {
                return Err(denied(format!(
                    "Extra input fields: {}",
                    name.chars().take(64).collect::<String>()
                )));
            }
        }
        Ok(())
    }
}

/// Form fields S3 does not require a condition for.
fn exempt(lower: &str) -> bool {
    matches!(
        lower,
        "x-amz-signature" | "file" | "policy" | "awsaccesskeyid" | "signature"
    ) || lower.starts_with("x-ignore-")
}

fn describe(c: &Condition) -> String {
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    match c {
        Condition::Eq { field, value } => {
            format!("[\"eq\", {}, {}]", q(&format!("${field}")), q(value))
        }
        Condition::StartsWith { field, prefix } => {
            format!(
                "[\"starts-with\", {}, {}]",
                q(&format!("${field}")),
                q(prefix)
            )
        }
        Condition::ContentLengthRange { min, max } => {
            format!("[\"content-length-range\", {min}, {max}]")
        }
    }
}

#[cfg(test)]
mod tests;
