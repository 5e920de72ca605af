//! Checking what a request carries besides its operation: query
//! parameters (each at most once, one selector, identifiers and numbers as
//! S3 issues them), object keys, part numbers and the copy source.

use super::addressing::valid_bucket_name;
use super::error::{err, S3ErrorCode, S3Result};
use super::operation::CopySource;
use super::subresource;
use super::uri::{decode_query_component, Query};

/// The longest object key S3 accepts (bytes of UTF-8).
pub const MAX_KEY_BYTES: usize = 1024;

/// The longest upload id or version id accepted (S3's are < 200 bytes).
const MAX_ID_BYTES: usize = 1024;

/// Parameters that name what an operation acts on: an empty value is not
/// "absent" here but a different request to some upstreams (Garage reads
/// `?uploadId=` as no upload id at all), so it is refused.
const IDENTIFIERS: &[&str] = &[
    "uploadId",
    "versionId",
    "partNumber",
    "id",
    "list-type",
    "select-type",
];

/// Parameters that choose the operation. Upstreams disagree on which wins
/// when several are present, so a request naming more than one is refused.
pub(super) fn is_selector(name: &str) -> bool {
    matches!(
        name,
        "uploads" | "uploadId" | "delete" | "versions" | "list-type"
    ) || subresource::is_selector(name)
}

/// Numeric parameters: digits only, so no upstream reads them differently.
const NUMERIC: &[&str] = &[
    "max-keys",
    "max-uploads",
    "max-parts",
    "max-buckets",
    "part-number-marker",
];

pub(super) fn shorten(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Every parameter at most once, at most one selector, identifiers
/// non-empty.
pub(super) fn check_query(query: &Query) -> S3Result<()> {
    let mut seen = std::collections::HashSet::new();
    let mut chosen: Vec<&str> = Vec::new();
    for p in &query.params {
        let name = p.name.as_str();
        if !seen.insert(name) {
            return Err(err(
                S3ErrorCode::InvalidArgument,
                format!(
                    "The query parameter {} appears more than once",
                    shorten(name)
                ),
            ));
        }
        if IDENTIFIERS.contains(&name) {
            if p.value.is_empty() {
                return Err(err(
                    S3ErrorCode::InvalidArgument,
                    format!("The query parameter {name} must not be empty"),
                ));
            }
            check_id(name, &p.value)?;
        }
        if is_selector(name) {
            chosen.push(name);
        }
    }
    if chosen.len() > 1 {
        return Err(err(
            S3ErrorCode::InvalidRequest,
            format!(
                "The request names more than one sub-resource ({}); send one per request",
                chosen.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Upload and version ids are opaque, but only visible ASCII: anything
/// else is not an id any S3 server issued.
pub(super) fn check_id(name: &str, v: &str) -> S3Result<()> {
    if v.len() > MAX_ID_BYTES || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(err(
            S3ErrorCode::InvalidArgument,
            format!("The query parameter {name} is not a valid identifier"),
        ));
    }
    Ok(())
}

pub(super) fn check_value(name: &str, v: &str) -> S3Result<()> {
    let ok = if NUMERIC.contains(&name) {
        v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit())
    } else {
        match name {
            "encoding-type" => v == "url",
            "fetch-owner" => v == "true" || v == "false",
            "select-type" => v == "2",
            "id" => v.len() <= 64,
            "x-amz-checksum-mode" => v == "ENABLED",
            _ => true,
        }
    };
    if ok {
        Ok(())
    } else {
        Err(err(
            S3ErrorCode::InvalidArgument,
            format!("The value of the query parameter {name} is not valid"),
        ))
    }
}

/// Keys are non-empty, at most 1 KiB, and do not start with `/`: upstreams
/// disagree on what a leading slash means (Garage trims it and runs a
/// bucket operation), so the gateway cannot name such a request precisely.
pub fn check_key(key: &str) -> S3Result<()> {
    if key.len() > MAX_KEY_BYTES {
        return Err(err(S3ErrorCode::KeyTooLongError, "Your key is too long"));
    }
    if key.is_empty() || key.starts_with('/') {
        return Err(err(
            S3ErrorCode::InvalidArgument,
            "Object keys must not be empty or start with '/' (upstreams disagree on what that means)",
        ));
    }
    Ok(())
}

pub(super) fn parse_part_number(p: &str) -> S3Result<u16> {
    let n = if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) {
        p.parse::<u16>().ok()
    } else {
        None
    };
    match n {
        Some(n) if (1..=10_000).contains(&n) => Ok(n),
        _ => Err(err(
            S3ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        )),
    }
}

/// `x-amz-copy-source: [/]bucket/key[?versionId=...]`, URL-encoded. The
/// bucket must be a bucket name and the key a key as for any request.
pub fn parse_copy_source(raw: &str) -> S3Result<CopySource> {
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    let bad = || {
        err(
            S3ErrorCode::InvalidArgument,
            "Invalid copy source: expected bucket/key",
        )
    };
    // URL-encoded as a form value: S3 reads `+` as a space here (s5cmd
    // sends `a+b.txt` for the key `a b.txt`); a literal plus is `%2B`.
    let path = decode_query_component(path).ok_or_else(bad)?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    let (bucket, key) = path.split_once('/').ok_or_else(bad)?;
    if !valid_bucket_name(bucket) {
        return Err(err(
            S3ErrorCode::InvalidArgument,
            "Invalid copy source: the bucket is not a valid bucket name",
        ));
    }
    check_key(key)?;
    let q = Query::parse(query).ok_or_else(bad)?;
    let mut version_id = None;
    for p in &q.params {
        match p.name.as_str() {
            "versionId" if version_id.is_none() && !p.value.is_empty() => {
                check_id("versionId", &p.value)?;
                version_id = Some(p.value.clone());
            }
            _ => {
                return Err(err(
                    S3ErrorCode::InvalidArgument,
                    "Invalid copy source: only one non-empty versionId may follow the key",
                ))
            }
        }
    }
    Ok(CopySource {
        bucket: bucket.to_string(),
        key: key.to_string(),
        version_id,
    })
}
