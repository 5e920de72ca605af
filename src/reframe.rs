//! Re-framing a verified aws-chunked body for the upstream.
//!
//! When the client protects its data with a trailing checksum
//! (`x-amz-trailer: x-amz-checksum-crc32` …), the gateway decodes and
//! verifies the client's framing, then frames the same bytes afresh as
//! `STREAMING-UNSIGNED-PAYLOAD-TRAILER` with the client's checksum in the
//! trailer, so the upstream verifies and stores the checksum too. Chunks
//! have a fixed size, so the upstream Content-Length is known up front; the
//! final chunk and trailer are only emitted once the client's body has
//! verified, so a rejected body never completes upstream.

use bytes::{BufMut, BytesMut};

use crate::auth::checksum::ChecksumAlgorithm;
use crate::auth::payload::MAX_OBJECT_SIZE;
use crate::s3::{S3Error, S3ErrorCode};

/// Size of the chunks sent upstream.
pub const CHUNK: usize = 64 * 1024;

pub struct Reframer {
    trailer: ChecksumAlgorithm,
    pending: BytesMut,
}

/// Length of a base64 checksum value.
fn b64_len(alg: ChecksumAlgorithm) -> u64 {
    match alg {
        ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 8,
        ChecksumAlgorithm::Crc64Nvme => 12,
        ChecksumAlgorithm::Sha1 => 28,
        ChecksumAlgorithm::Sha256 => 44,
    }
}

fn too_large() -> S3Error {
    S3Error::new(
        S3ErrorCode::EntityTooLarge,
        "Your proposed upload exceeds the maximum allowed object size (5 TiB).",
    )
}

fn hex_len(n: u64) -> u64 {
    format!("{n:x}").len() as u64
}

impl Reframer {
    pub fn new(trailer: ChecksumAlgorithm) -> Self {
        Reframer {
            trailer,
            pending: BytesMut::with_capacity(CHUNK),
        }
    }

    pub fn trailer_name(&self) -> &'static str {
        self.trailer.header_name()
    }

    /// The upstream Content-Length for `decoded` bytes of data. A length no
    /// S3 object can have (over 5 TiB) is refused rather than framed: the
    /// arithmetic would otherwise wrap near 2^64 and announce a length the
    /// verified body never matches.
    pub fn encoded_length(&self, decoded: u64) -> Result<u64, S3Error> {
        if decoded > MAX_OBJECT_SIZE {
            return Err(too_large());
        }
        let c = CHUNK as u64;
        let (full, rem) = (decoded / c, decoded % c);
        let per_chunk = hex_len(c) + 2 + c + 2;
        let mut n = full.checked_mul(per_chunk);
        if rem > 0 {
            n = n.and_then(|n| n.checked_add(hex_len(rem) + 2 + rem + 2));
        }
        let trailer = 3 + self.trailer_name().len() as u64 + 1 + b64_len(self.trailer) + 2 + 2;
        n.and_then(|n| n.checked_add(trailer)).ok_or_else(too_large)
    }

    /// Frame `data`, appending whole chunks to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut BytesMut) {
        while !data.is_empty() {
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.put_slice(&data[..take]);
            data = &data[take..];
            if self.pending.len() == CHUNK {
                self.emit(out);
            }
        }
    }

    fn emit(&mut self, out: &mut BytesMut) {
        out.put_slice(format!("{:x}\r\n", self.pending.len()).as_bytes());
        out.put_slice(&self.pending);
        out.put_slice(b"\r\n");
        self.pending.clear();
    }

    /// The last partial chunk, the final chunk and the trailer.
    pub fn finish(&mut self, checksum_b64: &str, out: &mut BytesMut) {
        if !self.pending.is_empty() {
            self.emit(out);
        }
        out.put_slice(b"0\r\n");
        out.put_slice(format!("{}:{}\r\n\r\n", self.trailer_name(), checksum_b64).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::checksum::Checksum;
    use crate::auth::chunked::ChunkedDecoder;

    #[test]
    fn framing_round_trips_with_the_announced_length() {
        for len in [0usize, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut sum = Checksum::new(ChecksumAlgorithm::Crc64Nvme);
            sum.update(&data);
            let mut r = Reframer::new(ChecksumAlgorithm::Crc64Nvme);
            let mut out = BytesMut::new();
            for piece in data.chunks(1000) {
                r.push(piece, &mut out);
            }
            r.finish(&sum.finish_base64(), &mut out);
            assert_eq!(
                out.len() as u64,
                r.encoded_length(len as u64).unwrap(),
                "len {len}"
            );
            let mut d =
                ChunkedDecoder::new(None, Some("x-amz-checksum-crc64nvme"), Some(len as u64))
                    .unwrap();
            let mut back = BytesMut::new();
            d.feed(&out, &mut back).unwrap();
            d.finish().unwrap();
            assert_eq!(&back[..], &data[..]);
        }
    }

    #[test]
    fn absurd_declared_lengths_are_refused_not_wrapped() {
        let r = Reframer::new(ChecksumAlgorithm::Crc32);
        // The largest object S3 stores still frames to an exact length.
        let max = r.encoded_length(MAX_OBJECT_SIZE).unwrap();
        assert!(max > MAX_OBJECT_SIZE);
        for decoded in [MAX_OBJECT_SIZE + 1, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            let e = r.encoded_length(decoded).unwrap_err();
            assert_eq!(e.code, S3ErrorCode::EntityTooLarge, "{decoded}");
        }
    }
}
