//! Per-request state, carried through every pingora phase: the admission
//! stages' typed results (request, identity, decision, route, body plan)
//! and the outcome the log line and metrics report.

pub mod body;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::{AuthMethod, Principal};
use crate::route::Route;
use crate::s3::{Operation, S3Error, S3Request};
pub use body::{BodyPlan, Framing};

/// Counts a request in the in-flight gauge until dropped, so a request
/// task that ends any way at all (even by a panic) releases it.
pub struct InFlightGuard(());

impl InFlightGuard {
    pub fn new() -> Self {
        crate::metrics::get()
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
        InFlightGuard(())
    }
}

impl Default for InFlightGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        crate::metrics::get()
            .in_flight
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Stage 2's result: who signed the request.
#[derive(Default)]
pub struct Identity {
    pub principal: Option<Arc<Principal>>,
    /// The access key a failed authentication named, when it is ours.
    pub access_key_id: Option<String>,
    pub method: Option<AuthMethod>,
}

/// Stage 4's result: what was decided.
#[derive(Default)]
pub struct Decided {
    /// The policy decision, when policies are configured.
    pub decision: Option<crate::policy::Decision>,
    /// `x-amz-expected-bucket-owner` to add upstream (rule `inject`).
    pub inject_owner: Option<String>,
    /// `s3gate:MultipartInitiator` as decided for this request.
    pub initiator: Option<String>,
    /// The principal that started the upload, when on record.
    pub initiator_principal: Option<String>,
}

/// Stages 3 and 5: where and how the request goes upstream.
#[derive(Default)]
pub struct UpstreamPlan {
    pub route: Option<Route>,
    /// The copy source's bucket upstream (CopyObject, UploadPartCopy).
    pub copy_source_target: Option<String>,
    /// The upstream framing and how the body is verified.
    pub framing: Framing,
    pub body: BodyPlan,
    /// The access key the upstream request was signed with (never shown
    /// to clients: redacted from upstream error messages).
    pub upstream_key_id: Option<String>,
}

/// How the request ended, for the answer, the log line and the metrics.
#[derive(Default)]
pub struct Outcome {
    /// Status answered to the client.
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// The error to answer with when the proxy fails (set by our stages).
    pub error: Option<S3Error>,
    /// The S3 error code the gateway answered with, if it answered with one.
    pub error_code: Option<crate::s3::S3ErrorCode>,
    /// The S3 error code the upstream answered with.
    pub upstream_error_code: Option<String>,
    /// An upstream error document being read whole, to be redacted.
    pub error_body: Option<bytes::BytesMut>,
    /// The upstream error document was too long to redact: withheld.
    pub error_body_overflow: bool,
    /// A CompleteMultipartUpload answered 200 with an error document.
    pub complete_error: bool,
    /// The tail of the response body seen so far (an `<Error>` split
    /// across two pieces is still found).
    pub complete_tail: Vec<u8>,
    /// When the upstream was asked (latency metric).
    pub upstream_started: Option<Instant>,
    /// A failed connect was retried once already.
    pub retried: bool,
}

/// Per-request state: each stage's typed result, in pipeline order.
pub struct RequestCtx {
    pub request_id: String,
    pub started: Instant,
    /// When the request arrived (audit records).
    pub arrived: std::time::SystemTime,
    /// Stage 1: the request named as an S3 operation.
    pub request: Option<S3Request>,
    /// Copies of the request's operation, bucket and key (logs, audit),
    /// set as soon as it is named (before the rest of `request` is).
    pub operation: Option<Operation>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// Stage 2.
    pub identity: Identity,
    /// Stages 3 and 5.
    pub plan: UpstreamPlan,
    /// Stage 4.
    pub decided: Decided,
    /// Held while a part upload streams (an abort waits for it).
    pub part_guard: Option<crate::multipart::inflight::PartGuard>,
    /// Counted in the in-flight gauge while held.
    pub in_flight: Option<InFlightGuard>,
    /// A POST Object: the answer it asks for (the upstream runs PutObject).
    pub post: Option<Box<crate::post::PostUpload>>,
    /// CORS headers of the answer (the bucket's rule matching `Origin`).
    pub cors: crate::post::cors::Headers,
    pub outcome: Outcome,
}

impl RequestCtx {
    /// An upstream error document in the gateway's terms: its region, and
    /// the client's bucket name instead of the route's `target`.
    pub fn localize_error(&self, body: Vec<u8>, region: &str) -> Vec<u8> {
        crate::s3::upstream_error::localize(
            body,
            region,
            self.plan.route.as_ref().and_then(|r| r.target.as_deref()),
            self.request.as_ref().and_then(|r| r.bucket.as_deref()),
        )
    }

    pub fn new() -> Self {
        RequestCtx {
            request_id: crate::util::request_id(),
            started: Instant::now(),
            arrived: std::time::SystemTime::now(),
            request: None,
            operation: None,
            bucket: None,
            key: None,
            identity: Identity::default(),
            plan: UpstreamPlan::default(),
            decided: Decided::default(),
            part_guard: None,
            in_flight: None,
            post: None,
            cors: Vec::new(),
            outcome: Outcome::default(),
        }
    }

    pub fn operation_name(&self) -> &'static str {
        self.operation.as_ref().map_or("-", Operation::name)
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}
