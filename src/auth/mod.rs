//! Client authentication: who signed this request, and how its body must be
//! verified while it streams.
//!
//! SigV4 (header and presigned) and legacy SigV2 (header and presigned) are
//! checked against the gateway's own principals. The result says how the
//! payload is protected, and `payload::BodyVerifier` enforces it.

pub mod checksum;
pub mod chunked;
pub mod crypto;
pub mod payload;
pub mod post;
pub mod sigv2;
pub mod sigv4;
pub mod time;

#[cfg(test)]
pub(crate) mod test_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderMap;

use crate::s3::{err, Addressed, Query, S3Error, S3ErrorCode};
pub use crate::secret::Secret;

/// A client identity of the gateway.
#[derive(Debug)]
pub struct Principal {
    pub name: String,
    pub access_key_id: String,
    pub secret: Secret,
}

/// The gateway's principals by access key id.
#[derive(Debug, Default)]
pub struct Principals {
    by_key: HashMap<String, Arc<Principal>>,
}

impl Principals {
    pub fn new(list: Vec<Principal>) -> Self {
        let by_key = list
            .into_iter()
            .map(|p| (p.access_key_id.clone(), Arc::new(p)))
            .collect();
        Principals { by_key }
    }

    pub fn lookup(&self, access_key_id: &str) -> Result<Arc<Principal>, AuthError> {
        self.by_key.get(access_key_id).cloned().ok_or_else(|| {
            AuthError::new(
                err(
                    S3ErrorCode::InvalidAccessKeyId,
                    "The AWS Access Key Id you provided does not exist in our records.",
                ),
                None,
            )
        })
    }
}

/// What the verifiers need to see of a request.
#[derive(Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// The path exactly as sent (still percent-encoded).
    pub raw_path: &'a str,
    pub query: &'a Query,
    pub headers: &'a HeaderMap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    V4Header,
    V4Presigned,
    V2Header,
    V2Presigned,
    /// A browser-based upload: a signed POST policy (SigV4 form fields).
    V4Post,
    /// A browser-based upload signed with SigV2 form fields.
    V2Post,
}

impl AuthMethod {
    /// `s3:authType` condition value.
    pub fn auth_type(self) -> &'static str {
        match self {
            AuthMethod::V4Header | AuthMethod::V2Header => "REST-HEADER",
            AuthMethod::V4Presigned | AuthMethod::V2Presigned => "REST-QUERY-STRING",
            AuthMethod::V4Post | AuthMethod::V2Post => "POST",
        }
    }
    /// `s3:signatureversion` condition value.
    pub fn signature_version(self) -> &'static str {
        match self {
            AuthMethod::V4Header | AuthMethod::V4Presigned | AuthMethod::V4Post => {
                "AWS4-HMAC-SHA256"
            }
            AuthMethod::V2Header | AuthMethod::V2Presigned | AuthMethod::V2Post => "AWS",
        }
    }
}

/// What a SigV4 chunk-signature chain needs: the key, the date and scope of
/// the seed signature, and the seed itself.
#[derive(Clone)]
pub struct ChunkSigning {
    pub signing_key: [u8; 32],
    pub amz_date: String,
    pub scope: String,
    pub seed_signature: String,
}

impl std::fmt::Debug for ChunkSigning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSigning")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// How the request body is protected (`x-amz-content-sha256`).
#[derive(Debug, Clone)]
pub enum PayloadMode {
    /// `UNSIGNED-PAYLOAD`, presigned URLs, SigV2.
    Unsigned,
    /// A hex SHA-256 of the raw body.
    Sha256([u8; 32]),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`.
    SignedChunks {
        trailer: bool,
        signing: Box<ChunkSigning>,
    },
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`.
    UnsignedTrailer,
}

impl PayloadMode {
    /// Parse the header; signed chunk modes get their signing data later.
    pub fn from_content_sha256(v: &str) -> Result<PayloadMode, S3Error> {
        let placeholder = || {
            Box::new(ChunkSigning {
                signing_key: [0; 32],
                amz_date: String::new(),
                scope: String::new(),
                seed_signature: String::new(),
            })
        };
        Ok(match v {
            "UNSIGNED-PAYLOAD" => PayloadMode::Unsigned,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => PayloadMode::SignedChunks {
                trailer: false,
                signing: placeholder(),
            },
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => PayloadMode::SignedChunks {
                trailer: true,
                signing: placeholder(),
            },
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => PayloadMode::UnsignedTrailer,
            v if v.starts_with("STREAMING-AWS4-ECDSA") => {
                return Err(err(
                    S3ErrorCode::NotImplemented,
                    "SigV4a streaming payloads are not supported by s3gate",
                ))
            }
            v => {
                let mut h = [0u8; 32];
                if v.len() != 64 || hex::decode_to_slice(v, &mut h).is_err() {
                    return Err(err(S3ErrorCode::InvalidArgument, "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-… or a SHA-256 in hex"));
                }
                PayloadMode::Sha256(h)
            }
        })
    }

    pub fn is_aws_chunked(&self) -> bool {
        matches!(
            self,
            PayloadMode::SignedChunks { .. } | PayloadMode::UnsignedTrailer
        )
    }
}

/// A verified client.
#[derive(Debug)]
pub struct Authenticated {
    pub principal: Arc<Principal>,
    pub method: AuthMethod,
    pub payload: PayloadMode,
    pub signed_at: SystemTime,
}

/// A failed authentication, with the access key it named when that key is
/// one of ours (the audit log records attempts by known keys).
#[derive(Debug)]
pub struct AuthError {
    pub error: S3Error,
    pub access_key_id: Option<String>,
}

impl AuthError {
    pub fn new(error: S3Error, access_key_id: Option<&str>) -> Self {
        AuthError {
            error,
            access_key_id: access_key_id.map(str::to_string),
        }
    }
}

/// The outcome of looking at a request's credentials.
#[derive(Debug)]
pub enum Identity {
    Anonymous,
    Signed(Authenticated),
}

/// Authenticate a request. A presigned signature is checked before an
/// Authorization header when both exist (docs/s3-wire.md).
pub fn authenticate(
    req: &RequestView<'_>,
    addr: &Addressed,
    principals: &Principals,
    region: &str,
    now: SystemTime,
) -> Result<Identity, AuthError> {
    if req.query.has("X-Amz-Signature") || req.query.has("X-Amz-Algorithm") {
        return sigv4::verify_presigned(req, principals, region, now).map(Identity::Signed);
    }
    if req.query.has("AWSAccessKeyId") && req.query.has("Signature") {
        return sigv2::verify_presigned(req, addr, principals, now).map(Identity::Signed);
    }
    let Some(auth) = req.headers.get("authorization") else {
        return Ok(Identity::Anonymous);
    };
    let auth = auth.to_str().map_err(|e| {
        AuthError::new(
            err(
                S3ErrorCode::AuthorizationHeaderMalformed,
                format!("The authorization header is not valid ASCII ({e})"),
            ),
            None,
        )
    })?;
    if auth.starts_with(sigv4::ALGORITHM) {
        sigv4::verify_header(req, auth, principals, region, now).map(Identity::Signed)
    } else if let Some(rest) = auth.strip_prefix("AWS ") {
        sigv2::verify_header(req, rest, addr, principals, now).map(Identity::Signed)
    } else {
        Err(AuthError::new(
            err(
                S3ErrorCode::InvalidArgument,
                "Unsupported Authorization Type",
            ),
            None,
        ))
    }
}

/// Query parameters that carry the client's authentication: they are never
/// forwarded upstream (nor logged).
pub use crate::s3::uri::is_auth_param as is_auth_query_param;

#[cfg(test)]
mod payload_mode_tests {
    use super::*;

    /// `x-amz-content-sha256` is one of the named modes or exactly 64 hex
    /// digits; anything else is refused, not read as some hash.
    #[test]
    fn content_sha256_is_a_mode_or_sixty_four_hex_digits() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        match PayloadMode::from_content_sha256(empty) {
            Ok(PayloadMode::Sha256(h)) => assert_eq!(hex::encode(h), empty),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            PayloadMode::from_content_sha256("UNSIGNED-PAYLOAD"),
            Ok(PayloadMode::Unsigned)
        ));
        for bad in [
            "z".repeat(64),
            empty[..63].to_string(),
            format!("{empty}00"),
            "unsigned-payload".to_string(),
        ] {
            let e = PayloadMode::from_content_sha256(&bad).unwrap_err();
            assert_eq!(e.code, S3ErrorCode::InvalidArgument, "{bad}");
        }
    }

    /// The streaming modes are the aws-chunked framings the body decoder
    /// must strip; a whole-body hash or UNSIGNED-PAYLOAD is the raw body.
    #[test]
    fn streaming_modes_are_aws_chunked() {
        for (v, chunked) in [
            ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", true),
            ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", true),
            ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", true),
            ("UNSIGNED-PAYLOAD", false),
            (
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                false,
            ),
        ] {
            let m = PayloadMode::from_content_sha256(v).unwrap();
            assert_eq!(m.is_aws_chunked(), chunked, "{v}");
        }
    }
}
