//! The body plan and upstream framing a request carries from the body
//! stage (`admit::body`, which decides them) to the forwarding and
//! streaming phases.

use bytes::{Bytes, BytesMut};

use crate::auth::payload::BodyVerifier;
use crate::reframe::Reframer;
use crate::s3::{err, S3ErrorCode, S3Result};

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
    /// A POST Object's file part, cut out of its form (`post::FormBody`).
    Form(Box<crate::post::FormBody>),
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

impl BodyPlan {
    /// Stage 7, streaming: what of the client's next piece of body may go
    /// upstream now (`Some(empty)` writes nothing; the stream ends only
    /// with `end_of_stream`). The last piece is held back until the whole
    /// body verified; an error means the upstream request must be
    /// abandoned incomplete. Also returns how many bytes of data (not
    /// framing) went out.
    pub fn next(&mut self, piece: Option<Bytes>, end_of_stream: bool) -> S3Result<(Bytes, u64)> {
        let counted = |b: Bytes| {
            let n = b.len() as u64;
            (b, n)
        };
        match self {
            // Sent once; anything after it is not part of the verified body.
            BodyPlan::Prebuffered(pre) => Ok(counted(pre.take().unwrap_or_default())),
            BodyPlan::Empty => match piece {
                Some(p) if !p.is_empty() => Err(err(
                    S3ErrorCode::InvalidRequest,
                    "This request carries a body it did not announce",
                )),
                _ => Ok((Bytes::new(), 0)),
            },
            BodyPlan::Form(form) => form.next(piece, end_of_stream),
            BodyPlan::Verify { verifier, reframer } => {
                let out = verifier.filter(piece, end_of_stream)?;
                let Some(r) = reframer else {
                    return Ok(counted(out));
                };
                let data = out.len() as u64;
                let mut framed = BytesMut::with_capacity(out.len() + 64);
                r.push(&out, &mut framed);
                if end_of_stream {
                    let Some((_, value)) = verifier.trailer_checksum() else {
                        return Err(err(
                            S3ErrorCode::InvalidRequest,
                            "The announced trailing checksum is missing",
                        ));
                    };
                    r.finish(&value, &mut framed);
                }
                Ok((framed.freeze(), data))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_plan_refuses_bytes() {
        let mut p = BodyPlan::Empty;
        assert!(p.next(None, true).unwrap().0.is_empty());
        assert_eq!(
            p.next(Some(Bytes::from_static(b"x")), true)
                .unwrap_err()
                .code,
            S3ErrorCode::InvalidRequest
        );
        let mut p = BodyPlan::Prebuffered(Some(Bytes::from_static(b"abc")));
        assert_eq!(&p.next(None, false).unwrap().0[..], b"abc");
        assert!(p.next(None, true).unwrap().0.is_empty());
    }
}
