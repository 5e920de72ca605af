//! The `limits:` section: what one client may cost the gateway before it has
//! even made a request. Parsed once into typed values (`Limits`); each bad
//! value is reported at its own file:line:column.
//!
//! ```yaml
//! limits:
//!   request_head_timeout: 10s   # a request head must arrive whole within this
//!   max_header_bytes: 16KiB     # request line + headers, per request
//!   max_connections: 4096       # open connections, per listener
//!   idle_timeout: 60s           # a keep-alive connection may wait this long for its next request
//! ```

use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use super::diagnostics::{k, Ctx};
use super::locate::Step;

/// The limits in force (defaults when the section or a key is absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From the connection's start (or, on a kept-alive connection, from the
    /// first byte of the next request) until the end of the request head.
    pub request_head_timeout: Duration,
    /// Bytes of request line and headers, up to and including the empty line.
    pub max_header_bytes: usize,
    /// Open client connections per listener; more are refused at once.
    pub max_connections: usize,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    /// Sized for the shipped deployments (a pod of 256 MiB, a sidecar of
    /// 128 MiB). Measured: a connection waiting for its head costs about
    /// 16 KiB plus the head received so far, so 4096 connections holding
    /// heads just under 16 KiB cost under 100 MiB; with 64 KiB heads they
    /// would cost over 300 MiB. S3 limits a PUT request's headers to 8 KB,
    /// so 16 KiB leaves room for long presigned query strings.
    fn default() -> Self {
        Limits {
            request_head_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_connections: 4096,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// pingora refuses request heads above 1 MiB on its own; stay below that so
/// the gateway's own refusal (an S3 error) is the one clients see.
pub const MAX_HEADER_BYTES_CEILING: usize = 512 * 1024;
/// The smallest head limit that still fits a signed S3 request.
pub const MAX_HEADER_BYTES_FLOOR: usize = 4 * 1024;
const MAX_CONNECTIONS_CEILING: usize = 1_000_000;
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// The section as written. Values stay raw YAML so that each can be checked
/// (and reported) on its own line.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default)]
    pub request_head_timeout: Option<Value>,
    #[serde(default)]
    pub max_header_bytes: Option<Value>,
    #[serde(default)]
    pub max_connections: Option<Value>,
    #[serde(default)]
    pub idle_timeout: Option<Value>,
}

/// `250ms`, `10s`, `2m`, `1h`, `7d`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = (&s[..split], s[split..].trim());
    let n: u64 = num.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "" | "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

/// `65536`, `64KiB`, `1MiB` (also `k`/`KB`/`M`/`MB`, taken as binary units).
pub fn parse_bytes(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = (&s[..split], s[split..].trim());
    let n: usize = num.parse().ok()?;
    let scale: usize = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(scale)
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn duration(cx: &mut Ctx<'_>, field: &str, v: Option<&Value>, default: Duration) -> Duration {
    let Some(v) = v else { return default };
    let at = [k("limits"), k(field)];
    match as_text(v).as_deref().and_then(parse_duration) {
        Some(d) if !d.is_zero() && d <= MAX_TIMEOUT => d,
        Some(_) => {
            cx.error(
                &at,
                format!("limits.{field} must be more than 0 and at most 1h"),
            );
            default
        }
        None => {
            cx.error(
                &at,
                format!(
                    "limits.{field}: `{}` is not a duration (like 10s, 500ms, 2m)",
                    show(v)
                ),
            );
            default
        }
    }
}

fn show(v: &Value) -> String {
    as_text(v).unwrap_or_else(|| "this value".into())
}

fn count(
    cx: &mut Ctx<'_>,
    field: &str,
    v: Option<&Value>,
    parse: fn(&str) -> Option<usize>,
    range: (usize, usize),
    default: usize,
) -> usize {
    let Some(v) = v else { return default };
    let at = [k("limits"), k(field)];
    match as_text(v).as_deref().and_then(parse) {
        Some(n) if (range.0..=range.1).contains(&n) => n,
        Some(_) => {
            cx.error(
                &at,
                format!("limits.{field} must be between {} and {}", range.0, range.1),
            );
            default
        }
        None => {
            cx.error(
                &at,
                format!("limits.{field}: `{}` is not a number", show(v)),
            );
            default
        }
    }
}

/// Check the section and build the typed limits.
pub(super) fn limits(cx: &mut Ctx<'_>, v: Option<&Value>) -> Limits {
    let d = Limits::default();
    let Some(v) = v else { return d };
    let Some(raw) = cx.parse::<LimitsConfig>(&[Step::Key("limits".into())], v) else {
        return d;
    };
    Limits {
        request_head_timeout: duration(
            cx,
            "request_head_timeout",
            raw.request_head_timeout.as_ref(),
            d.request_head_timeout,
        ),
        max_header_bytes: count(
            cx,
            "max_header_bytes",
            raw.max_header_bytes.as_ref(),
            parse_bytes,
            (MAX_HEADER_BYTES_FLOOR, MAX_HEADER_BYTES_CEILING),
            d.max_header_bytes,
        ),
        max_connections: count(
            cx,
            "max_connections",
            raw.max_connections.as_ref(),
            |s| s.trim().parse().ok(),
            (1, MAX_CONNECTIONS_CEILING),
            d.max_connections,
        ),
        idle_timeout: duration(
            cx,
            "idle_timeout",
            raw.idle_timeout.as_ref(),
            d.idle_timeout,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("10 parsecs"), None);
        assert_eq!(parse_duration(""), None);
        // No overflow panics on absurd numbers.
        assert_eq!(parse_duration("18446744073709551615h"), None);
        assert_eq!(parse_bytes("64KiB"), Some(65536));
        assert_eq!(parse_bytes("1MiB"), Some(1 << 20));
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes("18446744073709551615MiB"), None);
        assert_eq!(parse_bytes("12 furlongs"), None);
    }
}
