//! IAM condition operators, with the `…IfExists` and `ForAnyValue:` /
//! `ForAllValues:` forms, evaluated against a request's context keys.

use std::collections::HashMap;
use std::net::IpAddr;

use super::glob;

/// The condition keys a policy may use (IAM's where IAM has one).
pub const KNOWN_KEYS: &[&str] = &[
    "aws:SourceIp",
    "aws:SecureTransport",
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:username",
    "aws:PrincipalType",
    "aws:UserAgent",
    "s3:prefix",
    "s3:delimiter",
    "s3:max-keys",
    "s3:x-amz-content-sha256",
    "s3:x-amz-storage-class",
    "s3:x-amz-server-side-encryption",
    "s3:x-amz-acl",
    "s3:VersionId",
    "s3:ResourceAccount",
    "s3:authType",
    "s3:signatureAge",
    "s3:signatureversion",
    "s3:TlsVersion",
    "s3gate:ExpectedBucketOwner",
    "s3gate:RequestPayer",
    "s3gate:MultipartInitiator",
    "s3gate:PartNumber",
    "s3gate:ContentLength",
    "s3gate:Upstream",
];

/// The canonical spelling of a known key (condition keys are case-insensitive).
pub fn canonical_key(key: &str) -> Option<&'static str> {
    KNOWN_KEYS
        .iter()
        .copied()
        .find(|k| k.eq_ignore_ascii_case(key))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    IpAddress,
    NotIpAddress,
    Null,
}

const BASES: &[(&str, Base)] = &[
    ("StringEquals", Base::StringEquals),
    ("StringNotEquals", Base::StringNotEquals),
    ("StringEqualsIgnoreCase", Base::StringEqualsIgnoreCase),
    ("StringNotEqualsIgnoreCase", Base::StringNotEqualsIgnoreCase),
    ("StringLike", Base::StringLike),
    ("StringNotLike", Base::StringNotLike),
    ("NumericEquals", Base::NumericEquals),
    ("NumericNotEquals", Base::NumericNotEquals),
    ("NumericLessThan", Base::NumericLessThan),
    ("NumericLessThanEquals", Base::NumericLessThanEquals),
    ("NumericGreaterThan", Base::NumericGreaterThan),
    ("NumericGreaterThanEquals", Base::NumericGreaterThanEquals),
    ("DateEquals", Base::DateEquals),
    ("DateNotEquals", Base::DateNotEquals),
    ("DateLessThan", Base::DateLessThan),
    ("DateLessThanEquals", Base::DateLessThanEquals),
    ("DateGreaterThan", Base::DateGreaterThan),
    ("DateGreaterThanEquals", Base::DateGreaterThanEquals),
    ("Bool", Base::Bool),
    ("IpAddress", Base::IpAddress),
    ("NotIpAddress", Base::NotIpAddress),
    ("Null", Base::Null),
];

/// Every operator spelling, for suggestions.
pub fn operator_names() -> Vec<String> {
    let mut v = Vec::new();
    for (n, b) in BASES {
        v.push(n.to_string());
        if *b != Base::Null {
            v.push(format!("{n}IfExists"));
            v.push(format!("ForAnyValue:{n}"));
            v.push(format!("ForAllValues:{n}"));
        }
    }
    v
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    Single,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone)]
pub struct Condition {
    pub operator: String,
    pub base: Base,
    pub set: SetOp,
    pub if_exists: bool,
    /// Lower-cased key.
    pub key: String,
    pub values: Vec<String>,
}

pub fn parse_operator(s: &str) -> Option<(SetOp, Base, bool)> {
    let (set, rest) = if let Some(r) = s.strip_prefix("ForAnyValue:") {
        (SetOp::ForAnyValue, r)
    } else if let Some(r) = s.strip_prefix("ForAllValues:") {
        (SetOp::ForAllValues, r)
    } else {
        (SetOp::Single, s)
    };
    let (rest, if_exists) = match rest.strip_suffix("IfExists") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let base = BASES.iter().find(|(n, _)| *n == rest).map(|(_, b)| *b)?;
    if base == Base::Null && (if_exists || set != SetOp::Single) {
        return None;
    }
    Some((set, base, if_exists))
}

/// Request context keys: lower-cased name → values.
pub type ContextKeys = HashMap<String, Vec<String>>;

fn negated(b: Base) -> bool {
    matches!(
        b,
        Base::StringNotEquals
            | Base::StringNotEqualsIgnoreCase
            | Base::StringNotLike
            | Base::NumericNotEquals
            | Base::DateNotEquals
            | Base::NotIpAddress
    )
}

/// The positive form of an operator (negation applied by the caller).
fn positive_match(base: Base, policy: &str, value: &str) -> bool {
    use Base::*;
    match base {
        StringEquals | StringNotEquals => policy == value,
        StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => policy.eq_ignore_ascii_case(value),
        StringLike | StringNotLike => glob::matches(policy, value),
        NumericEquals | NumericNotEquals => num(policy, value, |a, b| a == b),
        NumericLessThan => num(policy, value, |p, v| v < p),
        NumericLessThanEquals => num(policy, value, |p, v| v <= p),
        NumericGreaterThan => num(policy, value, |p, v| v > p),
        NumericGreaterThanEquals => num(policy, value, |p, v| v >= p),
        DateEquals | DateNotEquals => date(policy, value, |a, b| a == b),
        DateLessThan => date(policy, value, |p, v| v < p),
        DateLessThanEquals => date(policy, value, |p, v| v <= p),
        DateGreaterThan => date(policy, value, |p, v| v > p),
        DateGreaterThanEquals => date(policy, value, |p, v| v >= p),
        Bool => policy.eq_ignore_ascii_case(value),
        IpAddress | NotIpAddress => ip_in(policy, value),
        Null => false,
    }
}

fn num(p: &str, v: &str, f: impl Fn(f64, f64) -> bool) -> bool {
    match (p.trim().parse::<f64>(), v.trim().parse::<f64>()) {
        (Ok(p), Ok(v)) => f(p, v),
        _ => false,
    }
}

fn date(p: &str, v: &str, f: impl Fn(i64, i64) -> bool) -> bool {
    match (parse_date(p), parse_date(v)) {
        (Some(p), Some(v)) => f(p, v),
        _ => false,
    }
}

/// Epoch seconds, or RFC 3339 `YYYY-MM-DDTHH:MM:SS[.fff]Z` (or a date alone).
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).take(14).collect();
    let padded = match digits.len() {
        8 => format!("{digits}T000000Z"),
        14 => format!("{}T{}Z", &digits[..8], &digits[8..]),
        _ => return None,
    };
    let t = crate::auth::time::parse_amz_date(&padded)?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs() as i64)
}

/// Whether IP `value` is inside CIDR (or address) `policy`.
pub fn ip_in(policy: &str, value: &str) -> bool {
    let (net, bits) = match policy.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (policy, None),
    };
    let (Ok(net), Ok(ip)) = (net.trim().parse::<IpAddr>(), value.trim().parse::<IpAddr>()) else {
        return false;
    };
    let ip = ip.to_canonical();
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let b = bits.unwrap_or(32).min(32);
            let mask = if b == 0 { 0 } else { u32::MAX << (32 - b) };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let b = bits.unwrap_or(128).min(128);
            let mask = if b == 0 { 0 } else { u128::MAX << (128 - b) };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

pub fn valid_cidr(s: &str) -> bool {
    let (net, bits) = match s.split_once('/') {
        Some((n, b)) => (n, Some(b)),
        None => (s, None),
    };
    match net.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => bits.is_none_or(|b| b.parse::<u32>().is_ok_and(|b| b <= 32)),
        Ok(IpAddr::V6(_)) => bits.is_none_or(|b| b.parse::<u32>().is_ok_and(|b| b <= 128)),
        Err(_) => false,
    }
}

impl Condition {
    /// Evaluate against the context; `why` explains the result.
    pub fn evaluate(&self, ctx: &ContextKeys) -> (bool, String) {
        let values = ctx.get(&self.key).filter(|v| !v.is_empty());
        if self.base == Base::Null {
            let want_absent = self.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            let ok = values.is_none() == want_absent;
            return (
                ok,
                format!(
                    "{}: {} is {}",
                    self.operator,
                    self.key,
                    if values.is_none() {
                        "absent"
                    } else {
                        "present"
                    }
                ),
            );
        }
        let Some(values) = values else {
            let ok = match self.set {
                SetOp::ForAllValues => true,
                SetOp::ForAnyValue => false,
                SetOp::Single => self.if_exists || negated(self.base),
            };
            return (ok, format!("{}: {} is absent", self.operator, self.key));
        };
        let one = |v: &str| {
            let any = self.values.iter().any(|p| positive_match(self.base, p, v));
            if negated(self.base) {
                !any
            } else {
                any
            }
        };
        let ok = match self.set {
            SetOp::Single => one(&values[0]),
            SetOp::ForAnyValue => values.iter().any(|v| one(v)),
            SetOp::ForAllValues => values.iter().all(|v| one(v)),
        };
        (
            ok,
            format!(
                "{}: {} = {:?} vs {:?}",
                self.operator, self.key, values, self.values
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(op: &str, key: &str, values: &[&str]) -> Condition {
        let (set, base, if_exists) = parse_operator(op).unwrap();
        Condition {
            operator: op.into(),
            base,
            set,
            if_exists,
            key: key.to_ascii_lowercase(),
            values: values.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn ctx(pairs: &[(&str, &[&str])]) -> ContextKeys {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    v.iter().map(|s| s.to_string()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn operators() {
        let c = ctx(&[
            ("s3gate:MultipartInitiator", &["other"]),
            ("aws:SourceIp", &["10.1.2.3"]),
            ("s3:max-keys", &["500"]),
        ]);
        assert!(
            cond("StringEquals", "s3gate:MultipartInitiator", &["other"])
                .evaluate(&c)
                .0
        );
        assert!(
            !cond("StringNotEquals", "s3gate:MultipartInitiator", &["other"])
                .evaluate(&c)
                .0
        );
        assert!(
            cond("StringLike", "s3gate:MultipartInitiator", &["ot*"])
                .evaluate(&c)
                .0
        );
        assert!(
            cond("IpAddress", "aws:SourceIp", &["10.0.0.0/8"])
                .evaluate(&c)
                .0
        );
        assert!(
            cond("NotIpAddress", "aws:SourceIp", &["192.168.0.0/16"])
                .evaluate(&c)
                .0
        );
        assert!(
            cond("NumericLessThanEquals", "s3:max-keys", &["500"])
                .evaluate(&c)
                .0
        );
        assert!(
            !cond("NumericLessThan", "s3:max-keys", &["500"])
                .evaluate(&c)
                .0
        );
        assert!(
            cond("Null", "s3gate:ExpectedBucketOwner", &["true"])
                .evaluate(&c)
                .0
        );
        assert!(!cond("Null", "aws:SourceIp", &["true"]).evaluate(&c).0);
        assert!(
            cond(
                "StringEqualsIfExists",
                "s3gate:RequestPayer",
                &["requester"]
            )
            .evaluate(&c)
            .0
        );
        assert!(
            !cond("StringEquals", "s3gate:RequestPayer", &["requester"])
                .evaluate(&c)
                .0
        );
        assert!(
            cond("DateLessThan", "x", &["2030-01-01T00:00:00Z"])
                .evaluate(&ctx(&[("x", &["2026-11-21T00:00:00Z"])]))
                .0
        );
    }

    #[test]
    fn set_operators() {
        let c = ctx(&[("k", &["a", "b"])]);
        assert!(
            cond("ForAnyValue:StringEquals", "k", &["b", "z"])
                .evaluate(&c)
                .0
        );
        assert!(
            !cond("ForAllValues:StringEquals", "k", &["b", "z"])
                .evaluate(&c)
                .0
        );
        assert!(
            cond("ForAllValues:StringEquals", "k", &["a", "b", "z"])
                .evaluate(&c)
                .0
        );
        assert!(
            cond("ForAllValues:StringEquals", "absent", &["a"])
                .evaluate(&c)
                .0
        );
        assert!(parse_operator("NullIfExists").is_none());
        assert!(parse_operator("StringEqualz").is_none());
    }
}

#[cfg(test)]
mod operator_table;
