//! The two time formats of S3 authentication: ISO 8601 basic
//! (`20130524T000000Z`, SigV4) and HTTP dates (`Date`, SigV2).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Requests signed more than this far from the gateway's clock are refused
/// (RequestTimeTooSkewed), as S3 does.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// Parse `YYYYMMDDTHHMMSSZ`.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se;
    u64::try_from(secs)
        .ok()
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// Parse RFC 3339 UTC as S3 lists it (`2010-11-10T20:48:33.000Z`);
/// fractions of a second are dropped.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let body = s.strip_suffix('Z')?;
    let whole = body.split('.').next()?;
    let compact: String = whole.chars().filter(|c| *c != '-' && *c != ':').collect();
    parse_amz_date(&format!("{compact}Z"))
}

/// Format as `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parse an HTTP date (`Date` header). Some clients write `+0000` where
/// RFC 7231 says `GMT`.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    httpdate::parse_http_date(s).ok().or_else(|| {
        s.strip_suffix("+0000")
            .and_then(|p| httpdate::parse_http_date(&format!("{p}GMT")).ok())
    })
}

/// RFC 3339 UTC (`2026-11-21T07:59:11Z`), with milliseconds when asked.
pub fn format_rfc3339(t: SystemTime, millis: bool) -> String {
    let iso = format_amz_date(t);
    let base = format!(
        "{}-{}-{}T{}:{}:{}",
        &iso[0..4],
        &iso[4..6],
        &iso[6..8],
        &iso[9..11],
        &iso[11..13],
        &iso[13..15]
    );
    if millis {
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_millis());
        format!("{base}.{ms:03}Z")
    } else {
        format!("{base}Z")
    }
}

/// How far apart two instants are, whichever comes first.
pub fn distance(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b)
        .or_else(|_| b.duration_since(a))
        .unwrap_or_default()
}

// Howard Hinnant's civil-date algorithms.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_s3_listing_dates() {
        let t = parse_rfc3339("2010-11-10T20:48:33.000Z").unwrap();
        assert_eq!(format_rfc3339(t, false), "2010-11-10T20:48:33Z");
        assert_eq!(parse_rfc3339("2010-11-10T20:48:33Z"), Some(t));
        assert_eq!(parse_rfc3339("2010-11-10 20:48:33"), None);
        assert_eq!(parse_rfc3339("2010-11-10T20:48:33+01:00"), None);
    }

    #[test]
    fn round_trips() {
        let t = parse_amz_date("20130524T000000Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_369_353_600
        );
        assert_eq!(format_amz_date(t), "20130524T000000Z");
        let now = SystemTime::now();
        let s = format_amz_date(now);
        assert!(distance(parse_amz_date(&s).unwrap(), now) < Duration::from_secs(1));
    }

    #[test]
    fn rfc3339() {
        let t = parse_amz_date("20130524T010203Z").unwrap() + Duration::from_millis(45);
        assert_eq!(format_rfc3339(t, true), "2013-05-24T01:02:03.045Z");
        assert_eq!(format_rfc3339(t, false), "2013-05-24T01:02:03Z");
    }

    #[test]
    fn arbitrary_dates_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let alphabet: Vec<char> = "0123456789TZ+-: ,GMTMonTueDecé".chars().collect();
        for _ in 0..20_000 {
            let len = rng.gen_range(0..40);
            let s: String = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            let _ = parse_amz_date(&s);
            let _ = parse_http_date(&s);
        }
        for s in [
            "99991231T235959Z",
            "00000101T000000Z",
            "20131324T000000Z",
            "2013052éT00000Z",
        ] {
            let _ = parse_amz_date(s);
        }
        // The latest dates either parser accepts still format.
        let t = parse_amz_date("99991231T235959Z").unwrap();
        assert_eq!(format_rfc3339(t, false), "9999-12-31T23:59:59Z");
        let leap = parse_amz_date("99991231T235960Z").unwrap();
        let _ = format_rfc3339(leap, true);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_amz_date("2013-05-24T00:00:00Z").is_none());
        assert!(parse_amz_date("20131324T000000Z").is_none());
        assert!(parse_amz_date("2013052+T000000Z").is_none());
    }
}
