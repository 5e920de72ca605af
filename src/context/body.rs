//! The body plan and upstream framing a request carries from the body
//! stage (`admit::body`, which decides them) to the forwarding and
//! streaming phases.

use bytes::Bytes;

use crate::auth::payload::BodyVerifier;
use crate::reframe::Reframer;

/// How the body goes upstream.
#[derive(Default)]
pub enum BodyPlan {
    /// No body: any byte that arrives is refused.
    #[default]
    Empty,
    /// Streamed through a verifier that holds back the last piece; an
    /// optional re-framer carries the client's trailing checksum.
    Verify {
        verifier: Box<BodyVerifier>,
        reframer: Option<Reframer>,
    },
    /// Read and verified before the request went upstream (sent once).
    Prebuffered(Option<Bytes>),
}

/// What the upstream request's framing will be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framing {
    /// The client's body is aws-chunked (decoded before forwarding).
    pub aws_chunked: bool,
    /// Length of the body the upstream receives.
    pub upstream_length: Option<u64>,
    /// Decoded length of a re-framed body (`x-amz-decoded-content-length`).
    pub reframed_decoded: Option<u64>,
    /// `x-amz-content-sha256` of the upstream request.
    pub payload_hash: String,
    /// The gateway answered `100 Continue` itself.
    pub continue_sent: bool,
}

impl Default for Framing {
    /// No body: nothing to hash, so nothing signed for it.
    fn default() -> Self {
        Framing {
            aws_chunked: false,
            upstream_length: None,
            reframed_decoded: None,
            payload_hash: "UNSIGNED-PAYLOAD".into(),
            continue_sent: false,
        }
    }
}
