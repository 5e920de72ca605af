//! `s3gate audit export --format cloudtrail`: the ledger as CloudTrail S3
//! data-event records, one JSON object per line, for tools that already
//! read CloudTrail (SIEMs, Athena tables over CloudTrail logs).
//!
//! CloudTrail's own fields carry what CloudTrail knows how to say (who,
//! when, from where, which bucket, key and upload, the error); the rest of
//! s3gate's record (outcome, parts freed, reason, initiator, the decision,
//! the ledger position) goes into `additionalEventData`. The export reads
//! the ledger as written and does not check its chain: run `audit verify`
//! on the same files for that.

use serde_json::{json, Map, Value};

/// The CloudTrail record version written.
pub const EVENT_VERSION: &str = "1.09";

/// `2026-11-23T19:09:43.123Z` → `2026-11-23T19:09:43Z` (CloudTrail's
/// `eventTime` has whole seconds).
fn event_time(t: &str) -> String {
    match (t.split_once('.'), t.ends_with('Z')) {
        (Some((whole, _)), true) => format!("{whole}Z"),
        _ => t.to_string(),
    }
}

/// A stable event id, UUID-shaped, from the record's chain hash (unique per
/// record; the same record always exports with the same id).
fn event_id(hash: &str) -> Option<String> {
    let h = hash.get(..32)?;
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

fn text<'a>(r: &'a Value, field: &str) -> Option<&'a str> {
    r.get(field).and_then(Value::as_str)
}

/// Who made the call. s3gate principals are not IAM identities, so the type
/// is `Unknown` (as CloudTrail writes for identities it cannot place), with
/// the principal's name and access key id; the reaper is the gateway itself.
fn user_identity(r: &Value) -> Value {
    let principal = text(r, "principal");
    let mut id = Map::new();
    id.insert("type".into(), json!("Unknown"));
    if let Some(p) = principal {
        id.insert("principalId".into(), json!(p));
        id.insert("userName".into(), json!(p));
    }
    if let Some(k) = text(r, "access_key_id") {
        id.insert("accessKeyId".into(), json!(k));
    }
    id.insert(
        "invokedBy".into(),
        json!(text(r, "gateway").unwrap_or("s3gate")),
    );
    Value::Object(id)
}

fn resources(bucket: Option<&str>, key: Option<&str>) -> Value {
    let Some(b) = bucket else {
        return json!([]);
    };
    let mut out = Vec::new();
    if let Some(k) = key {
        out.push(json!({ "type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{b}/{k}") }));
    }
    out.push(json!({ "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{b}") }));
    Value::Array(out)
}

/// One ledger record as a CloudTrail record. `region` is the gateway's
/// region (CloudTrail's `awsRegion`; the ledger does not repeat it).
pub fn cloudtrail(r: &Value, region: &str) -> Value {
    let bucket = text(r, "bucket");
    let key = text(r, "key");
    let upload_id = text(r, "upload_id");
    let outcome = text(r, "outcome");
    let internal = r.get("source_ip").is_none_or(Value::is_null);
    let mut request = Map::new();
    if let Some(b) = bucket {
        request.insert("bucketName".into(), json!(b));
    }
    if let Some(k) = key {
        request.insert("key".into(), json!(k));
    }
    if let Some(u) = upload_id {
        request.insert("uploadId".into(), json!(u));
    }
    let freed = match outcome {
        Some("aborted") => r.get("parts_before").cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let response = match (text(r, "event"), outcome) {
        (Some("CreateMultipartUpload"), Some("created")) => json!({
            "bucket": bucket, "key": key, "uploadId": upload_id,
        }),
        _ => Value::Null,
    };
    let mut out = json!({
        "eventVersion": EVENT_VERSION,
        "userIdentity": user_identity(r),
        "eventTime": text(r, "time").map(event_time),
        "eventSource": "s3.amazonaws.com",
        "eventName": text(r, "event"),
        "awsRegion": region,
        // Calls the gateway makes on its own come from the service itself.
        "sourceIPAddress": if internal { json!("s3gate") } else { r["source_ip"].clone() },
        "userAgent": text(r, "user_agent").unwrap_or(if internal { "s3gate" } else { "" }),
        "requestParameters": Value::Object(request),
        "responseElements": response,
        "additionalEventData": {
            "outcome": outcome,
            "partsFreed": freed,
            "partsBefore": r.get("parts_before"),
            "partsRemaining": r.get("parts_remaining"),
            "attempts": r.get("attempts"),
            "reason": r.get("reason"),
            "initiator": r.get("initiator"),
            "decision": r.get("decision"),
            "expectedBucketOwner": r.get("expected_bucket_owner"),
            "requestPayer": r.get("request_payer"),
            "upstream": r.get("upstream"),
            "durationMs": r.get("duration_ms"),
            "truncated": r.get("truncated"),
            "suppressed": r.get("suppressed"),
            "gateway": r.get("gateway"),
            "ledger": { "v": r.get("v"), "seq": r.get("seq"), "prev": r.get("prev"), "hash": r.get("hash") },
        },
        "requestID": text(r, "request_id"),
        "eventID": text(r, "hash").and_then(event_id),
        "readOnly": false,
        "resources": resources(bucket, key),
        "eventType": "AwsApiCall",
        "managementEvent": false,
        "recipientAccountId": Value::Null,
        "eventCategory": "Data",
    });
    if let Some(code) = text(r, "error") {
        out["errorCode"] = json!(code);
        out["errorMessage"] = json!(format!("s3gate outcome: {}", outcome.unwrap_or("unknown")));
    }
    out
}

/// What an export met besides records.
#[derive(Debug, Default)]
pub struct ExportReport {
    pub records: u64,
    /// Lines that are not records (a torn last line), as `file:line`.
    pub skipped: Vec<String>,
}

/// Export `files` (oldest first) to `out`, one CloudTrail record per line.
pub fn export(
    files: &[std::path::PathBuf],
    region: &str,
    out: &mut impl std::io::Write,
) -> std::io::Result<ExportReport> {
    let mut report = ExportReport::default();
    for f in files {
        let text = std::fs::read_to_string(f)?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(line) {
                Ok(r @ Value::Object(_)) => {
                    serde_json::to_writer(&mut *out, &cloudtrail(&r, region))?;
                    out.write_all(b"\n")?;
                    report.records += 1;
                }
                _ => report.skipped.push(format!("{}:{}", f.display(), i + 1)),
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_a_reaper_abort() {
        let r = json!({
            "v": 1, "seq": 4, "time": "2026-11-23T19:09:43.123Z", "event": "AbortMultipartUpload",
            "request_id": "0123456789ABCDEF", "gateway": "gw-a", "principal": "s3gate:reaper",
            "access_key_id": null, "source_ip": null, "user_agent": null,
            "bucket": "logs", "key": "a/b.bin", "upload_id": "U1", "initiator": "alice",
            "parts_before": { "count": 2, "bytes": 10 }, "attempts": 1, "parts_remaining": 0,
            "outcome": "aborted", "error": null, "reason": "expired",
            "decision": { "effect": "Allow", "statements": [{ "file": "g.yaml", "sid": "buckets.logs.abort_incomplete_after" }], "mode": "enforce" },
            "prev": "00", "hash": "aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899",
        });
        let c = cloudtrail(&r, "eu-de");
        assert_eq!(c["eventVersion"], "1.09");
        assert_eq!(c["eventTime"], "2026-11-23T19:09:43Z");
        assert_eq!(c["eventID"], "aabbccdd-eeff-0011-2233-445566778899");
        assert_eq!(c["eventName"], "AbortMultipartUpload");
        assert_eq!(c["eventType"], "AwsApiCall");
        assert_eq!(c["awsRegion"], "eu-de");
        assert_eq!(c["sourceIPAddress"], "s3gate");
        assert_eq!(c["userIdentity"]["principalId"], "s3gate:reaper");
        assert_eq!(
            c["requestParameters"],
            json!({ "bucketName": "logs", "key": "a/b.bin", "uploadId": "U1" })
        );
        assert_eq!(
            c["additionalEventData"]["partsFreed"],
            json!({ "count": 2, "bytes": 10 })
        );
        assert_eq!(c["additionalEventData"]["reason"], "expired");
        assert_eq!(c["additionalEventData"]["decision"]["effect"], "Allow");
        assert_eq!(c["resources"][0]["ARN"], "arn:aws:s3:::logs/a/b.bin");
        assert!(c.get("errorCode").is_none());
    }

    #[test]
    fn maps_a_denied_client_abort() {
        let r = json!({
            "time": "2026-11-23T19:09:43.000Z", "event": "AbortMultipartUpload", "principal": "bob",
            "access_key_id": "AKIABOB", "source_ip": "10.0.0.7", "user_agent": "aws-cli/2",
            "bucket": "mpa", "key": "k", "upload_id": "U2", "outcome": "denied", "error": "AccessDenied",
            "parts_before": null, "hash": "short",
        });
        let c = cloudtrail(&r, "us-east-1");
        assert_eq!(c["userIdentity"]["accessKeyId"], "AKIABOB");
        assert_eq!(c["sourceIPAddress"], "10.0.0.7");
        assert_eq!(c["userAgent"], "aws-cli/2");
        assert_eq!(c["errorCode"], "AccessDenied");
        assert_eq!(c["additionalEventData"]["partsFreed"], Value::Null);
        assert_eq!(
            c["eventID"],
            Value::Null,
            "no id from a hash that is not one"
        );
    }
}
