//! The audit record of one of the reaper's aborts: the same contract as a
//! client's abort (docs/audit.md), with `principal: s3gate:reaper`,
//! `reason: expired` or `orphaned`, the upload's initiator (`unknown` for
//! an orphan), and as the decision the config rule that set the age limit
//! (`multipart.reaper.orphans_after` for an orphan).

use std::time::{Duration, SystemTime};

use super::abort::AbortResult;
use super::reaper::{Job, Why, PRINCIPAL};
use crate::audit::record::{
    DecisionInfo, Event, EventKind, HeaderRule, StatementRef, UpstreamInfo,
};
use crate::s3::xml::ListedUpload;

/// What the record is made of.
pub struct Reaped<'a> {
    pub job: &'a Job,
    pub upload: &'a ListedUpload,
    pub result: &'a AbortResult,
    pub initiator: String,
    pub why: Why,
    pub arrived: SystemTime,
    pub duration: Duration,
    pub config_file: &'a str,
}

pub fn reaper_event(r: Reaped<'_>) -> Event {
    let up = &r.job.route.upstream;
    let reply = &r.result.reply;
    let owner = super::reaper::owner_header_value(&r.job.route);
    Event {
        time: crate::auth::time::format_rfc3339(r.arrived, true),
        event: EventKind::AbortMultipartUpload,
        request_id: crate::util::request_id(),
        principal: Some(PRINCIPAL.to_string()),
        access_key_id: None,
        source_ip: None,
        user_agent: None,
        bucket: Some(r.job.bucket.clone()),
        key: Some(r.upload.key.clone()),
        upload_id: Some(r.upload.upload_id.clone()),
        upstream: Some(UpstreamInfo {
            name: Some(up.name.clone()),
            endpoint: Some(format!(
                "{}://{}",
                if up.endpoint.tls { "https" } else { "http" },
                up.endpoint.authority(&up.endpoint.host)
            )),
            bucket: r.job.route.target.clone(),
            status: Some(reply.status),
            request_id: reply.header("x-amz-request-id").map(str::to_string),
            host_id: reply.header("x-amz-id-2").map(str::to_string),
        }),
        // The authority: the config rule that set the age limit.
        decision: Some(DecisionInfo {
            effect: "Allow".to_string(),
            statements: vec![StatementRef {
                file: r.config_file.to_string(),
                sid: match r.why {
                    Why::Expired => r.job.rule.clone(),
                    Why::Orphaned => "multipart.reaper.orphans_after".to_string(),
                },
            }],
            mode: "enforce".to_string(),
        }),
        expected_bucket_owner: Some(HeaderRule {
            sent: None,
            action: if owner.is_some() {
                "injected"
            } else {
                "passthrough"
            }
            .to_string(),
        }),
        request_payer: Some(HeaderRule {
            sent: None,
            action: "allow".to_string(),
        }),
        initiator: Some(r.initiator),
        parts_before: r.result.parts_before,
        attempts: r.result.attempts,
        parts_remaining: r.result.parts_remaining,
        outcome: r.result.outcome,
        error: (reply.status >= 300).then(|| reply.error_code()).flatten(),
        duration_ms: r.duration.as_millis() as u64,
        truncated: None,
        suppressed: None,
        reason: Some(r.why.as_str().to_string()),
        resolve_initiator: None,
    }
}
