//! Per-request state, carried through every pingora phase.

use std::sync::Arc;
use std::time::Instant;

use crate::auth::payload::BodyVerifier;
use crate::auth::{AuthMethod, Principal};
use crate::route::Route;
use crate::s3::{Operation, Query, S3Error};

pub struct RequestCtx {
    pub request_id: String,
    pub started: Instant,
    /// When the request arrived (audit records).
    pub arrived: std::time::SystemTime,
    /// `s3gate:MultipartInitiator` as decided for this request.
    pub initiator: Option<String>,
    /// The principal that started the upload this request names (from the
    /// ownership record), when it was looked up (audit `initiator`).
    pub initiator_principal: Option<String>,
    /// Held while a part upload streams (an abort waits for it).
    pub part_guard: Option<crate::multipart::inflight::PartGuard>,
    /// A CompleteMultipartUpload answered 200 with an error document.
    pub complete_error: bool,
    pub operation: Option<Operation>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub query: Query,
    pub principal: Option<Arc<Principal>>,
    /// The access key a failed authentication named, when it is ours.
    pub access_key_id: Option<String>,
    pub auth_method: Option<AuthMethod>,
    pub route: Option<Route>,
    /// The copy source's bucket upstream (CopyObject, UploadPartCopy).
    pub copy_source_target: Option<String>,
    /// Verifies the client's body while it streams upstream.
    pub verifier: Option<BodyVerifier>,
    /// Whether the client's body is aws-chunked (decoded before forwarding).
    pub aws_chunked: bool,
    /// Re-frames the verified body with the client's trailing checksum.
    pub reframer: Option<crate::reframe::Reframer>,
    /// Decoded length of a re-framed body.
    pub decoded_length: Option<u64>,
    /// The gateway already answered `100 Continue`: do not ask the upstream.
    pub continue_sent: bool,
    /// Length of the body the upstream receives.
    pub upstream_length: Option<u64>,
    /// `x-amz-content-sha256` of the upstream request.
    pub upstream_payload_hash: String,
    /// The body was read and verified before the request went upstream.
    pub body_prebuffered: Option<bytes::Bytes>,
    /// The policy decision, when policies are configured.
    pub decision: Option<crate::policy::Decision>,
    /// `x-amz-expected-bucket-owner` to add upstream (rule `inject`).
    pub inject_owner: Option<String>,
    /// The error to answer with when the proxy fails (set by our stages).
    pub error: Option<S3Error>,
    /// The S3 error code the gateway answered with, if it answered with one.
    pub error_code: Option<&'static str>,
    /// When the upstream was asked (latency metric).
    pub upstream_started: Option<Instant>,
    /// A failed connect was retried once already.
    pub retried: bool,
    /// Counted in the in-flight gauge.
    pub counted: bool,
    /// Status answered to the client.
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl RequestCtx {
    pub fn new() -> Self {
        RequestCtx {
            request_id: crate::util::request_id(),
            started: Instant::now(),
            arrived: std::time::SystemTime::now(),
            initiator: None,
            initiator_principal: None,
            part_guard: None,
            complete_error: false,
            operation: None,
            bucket: None,
            key: None,
            query: Query::default(),
            principal: None,
            access_key_id: None,
            auth_method: None,
            route: None,
            copy_source_target: None,
            verifier: None,
            aws_chunked: false,
            reframer: None,
            decoded_length: None,
            continue_sent: false,
            upstream_length: None,
            upstream_payload_hash: "UNSIGNED-PAYLOAD".into(),
            body_prebuffered: None,
            decision: None,
            inject_owner: None,
            error: None,
            error_code: None,
            upstream_started: None,
            counted: false,
            retried: false,
            status: 0,
            bytes_in: 0,
            bytes_out: 0,
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
