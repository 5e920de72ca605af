//! Multipart uploads: who started each one, which parts are in flight, and
//! the abort flow that makes sure storage is really freed.

pub mod abort;
pub mod handlers;
pub mod inflight;
pub mod ownership;

use std::time::Duration;

/// `30s`, `500ms`, `2m`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        assert_eq!(
            super::parse_duration("30s"),
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(
            super::parse_duration("250ms"),
            Some(std::time::Duration::from_millis(250))
        );
        assert_eq!(
            super::parse_duration("2m"),
            Some(std::time::Duration::from_secs(120))
        );
        assert_eq!(super::parse_duration("x"), None);
    }
}
