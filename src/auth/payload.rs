//! Verifying a request body while it streams.
//!
//! Whatever the payload mode, the verifier passes data on as it arrives but
//! always holds back the latest piece until the whole body has verified
//! (payload hash, chunk signatures, checksum). The upstream request has a
//! fixed Content-Length, so an upstream that never receives that last piece
//! never completes the object or part: a body that fails verification is
//! never stored (docs/pingora-notes.md, pingora issue #692).

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::checksum::{Checksum, ChecksumAlgorithm};
use super::chunked::ChunkedDecoder;
use super::PayloadMode;
use crate::s3::{err, S3Error, S3ErrorCode};

/// The largest object S3 stores (5 TiB). A single request body is at most
/// 5 GiB on AWS (PutObject, UploadPart), but some S3-compatible stores take
/// larger single uploads, so only lengths no store accepts are refused here.
pub const MAX_OBJECT_SIZE: u64 = 5 << 40;

enum Kind {
    Raw {
        sha256: Option<Box<(Sha256, [u8; 32])>>,
        /// A checksum sent as a header (`x-amz-checksum-crc32: …`).
        checksum: Option<(Checksum, String)>,
    },
    Chunked(Box<ChunkedDecoder>),
}

pub struct BodyVerifier {
    kind: Kind,
    held: Option<Bytes>,
    received: u64,
    expected: Option<u64>,
}

impl BodyVerifier {
    /// `expected`: the length of the data the upstream will receive
    /// (Content-Length, or x-amz-decoded-content-length for aws-chunked).
    pub fn new(
        mode: &PayloadMode,
        headers: &HeaderMap,
        expected: Option<u64>,
    ) -> Result<Self, S3Error> {
        if expected.is_some_and(|l| l > MAX_OBJECT_SIZE) {
            return Err(err(
                S3ErrorCode::EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed object size (5 TiB).",
            ));
        }
        let header_checksum = header_checksum(headers);
        let kind = match mode {
            PayloadMode::Unsigned => Kind::Raw {
                sha256: None,
                checksum: header_checksum,
            },
            PayloadMode::Sha256(h) => Kind::Raw {
                sha256: Some(Box::new((Sha256::new(), *h))),
                checksum: header_checksum,
            },
            PayloadMode::SignedChunks { trailer, signing } => {
                let t = if *trailer {
                    trailer_header(headers)?
                } else {
                    None
                };
                Kind::Chunked(Box::new(ChunkedDecoder::new(
                    Some((**signing).clone()),
                    t,
                    expected,
                )?))
            }
            PayloadMode::UnsignedTrailer => {
                let t = trailer_header(headers)?;
                Kind::Chunked(Box::new(ChunkedDecoder::new(None, t, expected)?))
            }
        };
        Ok(BodyVerifier {
            kind,
            held: None,
            received: 0,
            expected,
        })
    }

    /// Take the next piece of the client's body and return what may go
    /// upstream now (possibly empty). At `end_of_stream` the body is
    /// verified, and only then is the held-back piece released.
    pub fn filter(&mut self, body: Option<Bytes>, end_of_stream: bool) -> Result<Bytes, S3Error> {
        let out = match (&mut self.kind, body) {
            (_, None) => Bytes::new(),
            (Kind::Raw { sha256, checksum }, Some(b)) => {
                if let Some(hs) = sha256 {
                    hs.0.update(&b);
                }
                if let Some((c, _)) = checksum {
                    c.update(&b);
                }
                b
            }
            (Kind::Chunked(d), Some(b)) => {
                let mut out = BytesMut::with_capacity(b.len());
                d.feed(&b, &mut out)?;
                out.freeze()
            }
        };
        self.received = self.received.saturating_add(out.len() as u64);
        if !end_of_stream {
            if out.is_empty() {
                return Ok(out);
            }
            return Ok(self.held.replace(out).unwrap_or_default());
        }
        self.finish()?;
        Ok(match self.held.take() {
            None => out,
            Some(h) if out.is_empty() => h,
            Some(h) => {
                let mut all = BytesMut::with_capacity(h.len() + out.len());
                all.extend_from_slice(&h);
                all.extend_from_slice(&out);
                all.freeze()
            }
        })
    }

    fn finish(&mut self) -> Result<(), S3Error> {
        match &mut self.kind {
            Kind::Raw { sha256, checksum } => {
                if let Some(l) = self.expected {
                    if l != self.received {
                        return Err(err(S3ErrorCode::IncompleteBody, "You did not provide the number of bytes specified by the Content-Length HTTP header"));
                    }
                }
                if let Some((h, expected)) = sha256.take().map(|b| *b) {
                    if h.finalize().as_slice() != expected {
                        return Err(err(S3ErrorCode::XAmzContentSHA256Mismatch, "The provided 'x-amz-content-sha256' header does not match what was computed."));
                    }
                }
                if let Some((c, v)) = checksum {
                    c.verify(v)?;
                }
                Ok(())
            }
            Kind::Chunked(d) => d.finish(),
        }
    }

    /// After a successful end: the client's trailer checksum, if any.
    pub fn trailer_checksum(&self) -> Option<(&'static str, String)> {
        match &self.kind {
            Kind::Chunked(d) => d.trailer_checksum(),
            Kind::Raw { .. } => None,
        }
    }
}

fn header_checksum(headers: &HeaderMap) -> Option<(Checksum, String)> {
    headers.iter().find_map(|(n, v)| {
        let alg = ChecksumAlgorithm::from_header(n.as_str())?;
        Some((Checksum::new(alg), v.to_str().ok()?.to_string()))
    })
}

fn trailer_header(headers: &HeaderMap) -> Result<Option<&str>, S3Error> {
    match headers.get("x-amz-trailer") {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|e| {
            err(
                S3ErrorCode::InvalidRequest,
                format!("x-amz-trailer is not valid: {e}"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: &mut BodyVerifier, pieces: &[&[u8]]) -> (Vec<u8>, Result<(), S3Error>) {
        let mut forwarded = Vec::new();
        for (i, p) in pieces.iter().enumerate() {
            match v.filter(Some(Bytes::copy_from_slice(p)), i + 1 == pieces.len()) {
                Ok(b) => forwarded.extend_from_slice(&b),
                Err(e) => return (forwarded, Err(e)),
            }
        }
        (forwarded, Ok(()))
    }

    #[test]
    fn good_hash_forwards_everything() {
        let body = b"hello world";
        let h: [u8; 32] = Sha256::digest(body).into();
        let mut v =
            BodyVerifier::new(&PayloadMode::Sha256(h), &HeaderMap::new(), Some(11)).unwrap();
        let (fwd, r) = run(&mut v, &[b"hel", b"lo ", b"world"]);
        r.unwrap();
        assert_eq!(fwd, body);
    }

    #[test]
    fn bad_hash_never_forwards_the_whole_body() {
        let h: [u8; 32] = Sha256::digest(b"hello world").into();
        let mut v =
            BodyVerifier::new(&PayloadMode::Sha256(h), &HeaderMap::new(), Some(11)).unwrap();
        let (fwd, r) = run(&mut v, &[b"hel", b"lo ", b"worle"]);
        assert_eq!(r.unwrap_err().code, S3ErrorCode::XAmzContentSHA256Mismatch);
        assert!(fwd.len() < 11, "forwarded {} bytes", fwd.len());
    }

    #[test]
    fn declared_lengths_beyond_s3_are_refused() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-trailer", "x-amz-checksum-crc32".parse().unwrap());
        for mode in [PayloadMode::Unsigned, PayloadMode::UnsignedTrailer] {
            assert!(BodyVerifier::new(&mode, &h, Some(MAX_OBJECT_SIZE)).is_ok());
            for len in [MAX_OBJECT_SIZE + 1, u64::MAX] {
                let e = BodyVerifier::new(&mode, &h, Some(len)).err().unwrap();
                assert_eq!(e.code, S3ErrorCode::EntityTooLarge);
            }
        }
    }

    #[test]
    fn header_checksum_is_verified() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-checksum-crc32", "i9aeUg==".parse().unwrap());
        let mut v = BodyVerifier::new(&PayloadMode::Unsigned, &h, Some(11)).unwrap();
        assert!(run(&mut v, &[b"Hello ", b"world"]).1.is_ok());
        let mut v = BodyVerifier::new(&PayloadMode::Unsigned, &h, Some(11)).unwrap();
        assert_eq!(
            run(&mut v, &[b"Hello ", b"World"]).1.unwrap_err().code,
            S3ErrorCode::BadDigest
        );
    }
}
