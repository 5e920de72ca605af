//! Stage 5: how the client's body reaches the upstream. The plan is
//! decided from verified facts only; there is no "unverified" default: a
//! body arriving on a request planned as `Empty` is refused.

use bytes::{Bytes, BytesMut};
use pingora::proxy::Session;

use crate::auth::checksum::ChecksumAlgorithm;
use crate::auth::payload::BodyVerifier;
use crate::auth::PayloadMode;
use crate::reframe::Reframer;
use crate::s3::{err, S3ErrorCode, S3Result};
use http::HeaderMap;

/// The largest object S3 stores from one request body (a part: 5 GiB; an
/// object: 5 TiB). Lengths beyond are refused before any arithmetic.
pub const MAX_BODY_LENGTH: u64 = 5 << 40;

/// The largest aws-chunked framing accepted for an empty object, which is
/// read and verified before the request goes upstream.
const MAX_PREBUFFER: usize = 64 * 1024;

pub use crate::context::body::{BodyPlan, Framing};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn header_u64(headers: &HeaderMap, name: &str) -> S3Result<Option<u64>> {
    match header(headers, name) {
        None => Ok(None),
        Some(s) => {
            let s = s.trim();
            let n = (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| {
                    err(
                        S3ErrorCode::InvalidArgument,
                        format!("{name} is not a number"),
                    )
                })?;
            if n > MAX_BODY_LENGTH {
                return Err(err(
                    S3ErrorCode::EntityTooLarge,
                    "Your proposed upload exceeds the maximum allowed object size.",
                ));
            }
            Ok(Some(n))
        }
    }
}

/// The length of the data the request stores, as the gateway will verify
/// it: the decoded length of an aws-chunked body (the decoder checks it),
/// else Content-Length (the framing enforces it). A declared decoded length
/// on a body that is not aws-chunked must equal Content-Length.
pub fn verified_length(headers: &HeaderMap, payload: &PayloadMode) -> S3Result<Option<u64>> {
    let content_length = header_u64(headers, "content-length")?;
    let decoded = header_u64(headers, "x-amz-decoded-content-length")?;
    if payload.is_aws_chunked() {
        return decoded.map(Some).ok_or_else(|| {
            err(
                S3ErrorCode::MissingContentLength,
                "aws-chunked uploads must send x-amz-decoded-content-length",
            )
        });
    }
    if decoded.is_some() && decoded != content_length {
        return Err(err(
            S3ErrorCode::InvalidArgument,
            "x-amz-decoded-content-length does not match Content-Length on a body that is not aws-chunked",
        ));
    }
    Ok(content_length)
}

/// Decide the upstream framing and set up verification of the body.
/// `whole_object_checksum`: the request's `x-amz-checksum-*` header is the
/// checksum of the whole object being assembled (CompleteMultipartUpload:
/// full-object or composite), not of this body, so the body is not checked
/// against it (the upstream checks it against the parts).
pub async fn prepare(
    session: &mut Session,
    payload: &PayloadMode,
    checksum_trailers: bool,
    whole_object_checksum: bool,
) -> S3Result<(Framing, BodyPlan)> {
    let mut body_headers = None;
    if whole_object_checksum {
        let mut h = session.req_header().headers.clone();
        let names: Vec<http::HeaderName> = h
            .keys()
            .filter(|n| {
                n.as_str().starts_with("x-amz-checksum-") && n.as_str() != "x-amz-checksum-type"
            })
            .cloned()
            .collect();
        for n in names {
            h.remove(n);
        }
        body_headers = Some(h);
    }
    let headers = match &body_headers {
        Some(h) => h,
        None => &session.req_header().headers,
    };
    let (content_length, chunked_te) = length_facts(headers)?;
    let has_body = content_length.map_or(chunked_te, |l| l > 0);
    let mut framing = Framing {
        payload_hash: match payload {
            PayloadMode::Sha256(h) => hex::encode(h),
            _ => "UNSIGNED-PAYLOAD".into(),
        },
        ..Framing::default()
    };
    if payload.is_aws_chunked() {
        framing.aws_chunked = true;
        let decoded = verified_length(headers, payload)?.unwrap_or(0);
        if !has_body {
            return Err(err(
                S3ErrorCode::IncompleteBody,
                "The aws-chunked body is empty",
            ));
        }
        let mut verifier = BodyVerifier::new(payload, headers, Some(decoded))?;
        framing.upstream_length = Some(decoded);
        let trailer =
            header(headers, "x-amz-trailer").and_then(|t| ChecksumAlgorithm::from_header(t.trim()));
        if let (Some(alg), true) = (trailer, checksum_trailers) {
            // The client's checksum goes upstream in a trailer of our own
            // framing; the final chunk only leaves once the body verified.
            let r = Reframer::new(alg);
            framing.upstream_length = Some(r.encoded_length(decoded)?);
            framing.reframed_decoded = Some(decoded);
            framing.payload_hash = "STREAMING-UNSIGNED-PAYLOAD-TRAILER".into();
            let plan = BodyPlan::Verify {
                verifier: Box::new(verifier),
                reframer: Some(r),
            };
            return Ok((framing, plan));
        }
        if decoded == 0 {
            // Nothing would be left to hold back: read and verify the whole
            // (small) body before the upstream sees a complete request.
            framing.continue_sent = send_continue(session).await?;
            let body = read_verified(session, &mut verifier, MAX_PREBUFFER).await?;
            return Ok((framing, BodyPlan::Prebuffered(Some(body))));
        }
        let plan = BodyPlan::Verify {
            verifier: Box::new(verifier),
            reframer: None,
        };
        return Ok((framing, plan));
    }
    if has_body {
        let Some(len) = content_length else {
            return Err(err(
                S3ErrorCode::MissingContentLength,
                "You must provide the Content-Length HTTP header.",
            ));
        };
        framing.upstream_length = Some(len);
        let plan = BodyPlan::Verify {
            verifier: Box::new(BodyVerifier::new(payload, headers, Some(len))?),
            reframer: None,
        };
        return Ok((framing, plan));
    }
    if let PayloadMode::Sha256(h) = payload {
        if hex::encode(h) != crate::auth::crypto::EMPTY_SHA256 {
            return Err(err(
                S3ErrorCode::XAmzContentSHA256Mismatch,
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
    }
    if content_length.is_some() {
        framing.upstream_length = Some(0);
    }
    Ok((framing, BodyPlan::Empty))
}

/// Content-Length, and whether the body is sent with chunked transfer
/// encoding.
pub fn length_facts(headers: &HeaderMap) -> S3Result<(Option<u64>, bool)> {
    let content_length = header_u64(headers, "content-length")?;
    let chunked_te = header(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    Ok((content_length, chunked_te))
}

/// Answer `Expect: 100-continue` ourselves when we read the body before
/// there is an upstream to answer it.
pub async fn send_continue(session: &mut Session) -> S3Result<bool> {
    // HTTP/1.0 has no 100 Continue (RFC 9110 §10.1.1: ignore Expect).
    let expects = session.req_header().version >= http::Version::HTTP_11
        && session
            .req_header()
            .headers
            .get("expect")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if !expects {
        return Ok(false);
    }
    let h = pingora::http::ResponseHeader::build(100, Some(0))
        .map_err(|_| err(S3ErrorCode::InternalError, "cannot build 100 Continue"))?;
    // Not a reason to close the connection (see gateway::response_filter).
    session
        .downstream_session
        .set_close_on_response_before_downstream_finish(false);
    let written = session.write_response_header(Box::new(h), false).await;
    session
        .downstream_session
        .set_close_on_response_before_downstream_finish(true);
    written.map_err(|_| err(S3ErrorCode::IncompleteBody, "the client went away"))?;
    Ok(true)
}

/// Read the whole (small) body through its verifier.
pub async fn read_verified(
    session: &mut Session,
    verifier: &mut BodyVerifier,
    max: usize,
) -> S3Result<Bytes> {
    let mut out = BytesMut::new();
    let mut seen = 0usize;
    loop {
        let piece = session
            .downstream_session
            .read_request_body()
            .await
            .map_err(|_| {
                err(
                    S3ErrorCode::IncompleteBody,
                    "The request body terminated unexpectedly",
                )
            })?;
        let eos = piece.is_none();
        if let Some(p) = &piece {
            seen = seen.saturating_add(p.len());
            if seen > max {
                return Err(err(
                    S3ErrorCode::EntityTooLarge,
                    format!(
                        "The request body is larger than the {max} bytes this request may carry"
                    ),
                ));
            }
        }
        out.extend_from_slice(&verifier.filter(piece, eos)?);
        if eos {
            return Ok(out.freeze());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(pairs: &[(&'static str, &str)]) -> S3Result<(Option<u64>, bool)> {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.insert(*n, v.parse().unwrap());
        }
        length_facts(&h)
    }

    /// Content-Length is decimal digits only (RFC 9110 §8.6): no sign, no
    /// padding past u64's 20 digits; a number Rust's parser would still
    /// read ("+5") is refused, as the upstream might frame it otherwise.
    #[test]
    fn content_length_is_digits_only() {
        assert_eq!(
            facts(&[("content-length", "42")]).unwrap(),
            (Some(42), false)
        );
        assert_eq!(
            facts(&[("content-length", " 7 ")]).unwrap(),
            (Some(7), false)
        );
        assert_eq!(facts(&[]).unwrap(), (None, false));
        for bad in [
            "+5",
            "-1",
            "",
            "0x10",
            "1e3",
            "000000000000000000001",
            "18446744073709551616",
        ] {
            let e = facts(&[("content-length", bad)]).unwrap_err();
            assert_eq!(e.code, S3ErrorCode::InvalidArgument, "{bad:?}");
        }
        assert_eq!(
            facts(&[("transfer-encoding", "gzip, Chunked")]).unwrap(),
            (None, true)
        );
    }
}
