//! aws-chunked decoding with chunk-signature and trailer verification.
//!
//! `hex-size[;chunk-signature=sig]\r\n data \r\n … 0[;chunk-signature=sig]\r\n [trailers] \r\n`
//!
//! Chunk signatures are chained to the client's seed signature, so they can
//! never be forwarded after re-signing: the body is decoded here and the
//! gateway frames it afresh (docs/s3-wire.md). Data is streamed out as it is
//! decoded; the caller holds back the end of the body until `finish`
//! succeeds, so a body that fails verification never completes upstream.

use bytes::{BufMut, BytesMut};
use sha2::{Digest, Sha256};

use super::checksum::{Checksum, ChecksumAlgorithm};
use super::crypto::{constant_time_eq, hmac_sha256, sha256_hex, EMPTY_SHA256};
use super::ChunkSigning;
use crate::s3::{err, S3Error, S3ErrorCode};

/// Longest chunk header or trailer line accepted.
const MAX_LINE: usize = 4096;
/// Most trailer lines accepted.
const MAX_TRAILERS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Data {
        remaining: u64,
    },
    DataCrlf {
        seen_cr: bool,
    },
    /// After the final chunk's header, without trailers: the closing CRLF.
    FinalCrlf,
    Trailer,
    Done,
}

/// The signature chain of a signed-chunks body.
struct Chain {
    signing: ChunkSigning,
    previous: String,
    chunk_hash: Sha256,
    chunk_signature: String,
}

pub struct ChunkedDecoder {
    state: State,
    line: Vec<u8>,
    chain: Option<Chain>,
    /// The checksum announced by `x-amz-trailer`, computed over decoded data.
    checksum: Option<Checksum>,
    trailers: Vec<(String, String)>,
    trailer_expected: bool,
    decoded: u64,
    decoded_length: Option<u64>,
}

fn bad(msg: &str) -> S3Error {
    err(
        S3ErrorCode::InvalidRequest,
        format!("Malformed aws-chunked body: {msg}"),
    )
}

fn sig_mismatch(what: &str) -> S3Error {
    err(
        S3ErrorCode::SignatureDoesNotMatch,
        format!("The {what} signature we calculated does not match the signature you provided."),
    )
}

impl ChunkedDecoder {
    /// `signing`: the seed for signed chunks (None for unsigned trailer mode).
    /// `trailer`: the `x-amz-trailer` header, when the body ends in trailers.
    pub fn new(
        signing: Option<ChunkSigning>,
        trailer: Option<&str>,
        decoded_length: Option<u64>,
    ) -> Result<Self, S3Error> {
        let checksum = match trailer {
            Some(t) => Some(Checksum::new(
                ChecksumAlgorithm::from_header(t.trim()).ok_or_else(|| {
                    err(
                        S3ErrorCode::InvalidRequest,
                        format!("Unsupported x-amz-trailer value: {}", t.trim()),
                    )
                })?,
            )),
            None => None,
        };
        Ok(ChunkedDecoder {
            state: State::Header,
            line: Vec::with_capacity(128),
            chain: signing.map(|s| Chain {
                previous: s.seed_signature.clone(),
                signing: s,
                chunk_hash: Sha256::new(),
                chunk_signature: String::new(),
            }),
            checksum,
            trailers: Vec::new(),
            trailer_expected: trailer.is_some(),
            decoded: 0,
            decoded_length,
        })
    }

    /// Bytes of object data decoded so far.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Decode `input`, appending object data to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut BytesMut) -> Result<(), S3Error> {
        while !input.is_empty() {
            match self.state {
                State::Header | State::Trailer | State::FinalCrlf => {
                    let Some(line) = self.take_line(&mut input)? else {
                        return Ok(());
                    };
                    match self.state {
                        State::Header => self.on_header(&line)?,
                        State::Trailer => self.on_trailer_line(&line)?,
                        _ if line.is_empty() => self.state = State::Done,
                        _ => return Err(bad("expected the end of the body after the final chunk")),
                    }
                }
                State::Data { remaining } => {
                    let n = remaining.min(input.len() as u64) as usize;
                    let data = &input[..n];
                    if let Some(c) = &mut self.chain {
                        c.chunk_hash.update(data);
                    }
                    if let Some(c) = &mut self.checksum {
                        c.update(data);
                    }
                    out.put_slice(data);
                    self.decoded = self
                        .decoded
                        .checked_add(n as u64)
                        .ok_or_else(|| bad("more data than any object can hold"))?;
                    if self.decoded_length.is_some_and(|l| self.decoded > l) {
                        return Err(bad("more data than x-amz-decoded-content-length"));
                    }
                    input = &input[n..];
                    let remaining = remaining - n as u64;
                    self.state = if remaining == 0 {
                        self.end_of_chunk_data()?;
                        State::DataCrlf { seen_cr: false }
                    } else {
                        State::Data { remaining }
                    };
                }
                State::DataCrlf { seen_cr } => {
                    let expected = if seen_cr { b'\n' } else { b'\r' };
                    if input[0] != expected {
                        return Err(bad("chunk data is not followed by CRLF"));
                    }
                    input = &input[1..];
                    self.state = if seen_cr {
                        State::Header
                    } else {
                        State::DataCrlf { seen_cr: true }
                    };
                }
                State::Done => return Err(bad("data after the end of the body")),
            }
        }
        Ok(())
    }

    /// At the end of the stream: the body must be complete and verified.
    pub fn finish(&mut self) -> Result<(), S3Error> {
        // Some clients end the trailer section without the final empty line.
        if self.state == State::Trailer && self.line.is_empty() && !self.trailers.is_empty() {
            self.end_of_trailers()?;
        }
        if self.state != State::Done {
            return Err(err(
                S3ErrorCode::IncompleteBody,
                "The request body terminated unexpectedly",
            ));
        }
        if let Some(l) = self.decoded_length {
            if l != self.decoded {
                return Err(err(
                    S3ErrorCode::IncompleteBody,
                    "You did not provide the number of bytes specified by the x-amz-decoded-content-length HTTP header",
                ));
            }
        }
        Ok(())
    }

    /// Accumulate a CRLF-terminated line; None when more input is needed.
    fn take_line(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, S3Error> {
        let newline = input.iter().position(|&b| b == b'\n');
        // Refuse an over-long line before copying it, whatever the size of
        // the piece of body it arrives in (+1: the CR before the LF).
        let adding = newline.unwrap_or(input.len());
        if self.line.len().saturating_add(adding) > MAX_LINE + 1 {
            return Err(bad("line too long"));
        }
        match newline {
            Some(i) => {
                self.line.extend_from_slice(&input[..i]);
                *input = &input[i + 1..];
                if self.line.last() != Some(&b'\r') {
                    return Err(bad("line not terminated by CRLF"));
                }
                self.line.pop();
                if self.line.len() > MAX_LINE {
                    return Err(bad("line too long"));
                }
                Ok(Some(std::mem::take(&mut self.line)))
            }
            None => {
                self.line.extend_from_slice(input);
                *input = &[];
                if self.line.len() > MAX_LINE {
                    return Err(bad("line too long"));
                }
                Ok(None)
            }
        }
    }

    fn on_header(&mut self, line: &[u8]) -> Result<(), S3Error> {
        let line = std::str::from_utf8(line)
            .map_err(|e| bad(&format!("chunk header is not ASCII ({e})")))?;
        let (size, ext) = match line.split_once(';') {
            Some((s, e)) => (s, Some(e)),
            None => (line, None),
        };
        if size.is_empty() || size.len() > 16 {
            return Err(bad("invalid chunk size"));
        }
        let size = size.trim();
        if size.is_empty() || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("invalid chunk size"));
        }
        let size =
            u64::from_str_radix(size, 16).map_err(|e| bad(&format!("invalid chunk size ({e})")))?;
        // A chunk that cannot fit in the announced length is refused before
        // any of its data is read.
        let end = self.decoded.checked_add(size);
        if end.is_none()
            || self
                .decoded_length
                .is_some_and(|l| end.is_some_and(|e| e > l))
        {
            return Err(bad("chunk larger than x-amz-decoded-content-length allows"));
        }
        if let Some(chain) = &mut self.chain {
            let sig = ext
                .and_then(|e| e.trim().strip_prefix("chunk-signature="))
                .ok_or_else(|| bad("missing chunk-signature"))?;
            chain.chunk_signature = sig.to_ascii_lowercase();
            chain.chunk_hash = Sha256::new();
        }
        if size > 0 {
            self.state = State::Data { remaining: size };
            return Ok(());
        }
        self.end_of_chunk_data()?;
        self.state = if self.trailer_expected {
            State::Trailer
        } else {
            State::FinalCrlf
        };
        Ok(())
    }

    /// Verify the signature of the chunk whose data just ended.
    fn end_of_chunk_data(&mut self) -> Result<(), S3Error> {
        let Some(c) = &mut self.chain else {
            return Ok(());
        };
        let hash = hex::encode(std::mem::take(&mut c.chunk_hash).finalize());
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256}\n{hash}",
            c.signing.amz_date, c.signing.scope, c.previous
        );
        let expected = hex::encode(hmac_sha256(&c.signing.signing_key, sts.as_bytes()));
        if !constant_time_eq(expected.as_bytes(), c.chunk_signature.as_bytes()) {
            return Err(sig_mismatch("chunk"));
        }
        c.previous = expected;
        Ok(())
    }

    fn on_trailer_line(&mut self, line: &[u8]) -> Result<(), S3Error> {
        if line.is_empty() {
            return self.end_of_trailers();
        }
        let line =
            std::str::from_utf8(line).map_err(|e| bad(&format!("trailer is not UTF-8 ({e})")))?;
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("trailer without ':'"))?;
        if self.trailers.len() >= MAX_TRAILERS {
            return Err(bad("too many trailers"));
        }
        self.trailers
            .push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        Ok(())
    }

    fn end_of_trailers(&mut self) -> Result<(), S3Error> {
        let signature = self
            .trailers
            .iter()
            .find(|(n, _)| n == "x-amz-trailer-signature")
            .map(|(_, v)| v.to_ascii_lowercase());
        let mut fields: Vec<&(String, String)> = self
            .trailers
            .iter()
            .filter(|(n, _)| n != "x-amz-trailer-signature")
            .collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(c) = &self.chain {
            let sig = signature.ok_or_else(|| bad("missing x-amz-trailer-signature"))?;
            let canonical: String = fields.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
            let sts = format!(
                "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
                c.signing.amz_date,
                c.signing.scope,
                c.previous,
                sha256_hex(canonical.as_bytes())
            );
            let expected = hex::encode(hmac_sha256(&c.signing.signing_key, sts.as_bytes()));
            if !constant_time_eq(expected.as_bytes(), sig.as_bytes()) {
                return Err(sig_mismatch("trailer"));
            }
        }
        if let Some(sum) = &self.checksum {
            let name = sum.algorithm().header_name();
            let value = fields.iter().find(|(n, _)| n == name).ok_or_else(|| {
                err(
                    S3ErrorCode::InvalidRequest,
                    format!("The trailer {name} announced in x-amz-trailer is missing"),
                )
            })?;
            sum.verify(&value.1)?;
        }
        self.state = State::Done;
        Ok(())
    }

    /// The verified trailer checksum, as `(header name, base64 value)`.
    pub fn trailer_checksum(&self) -> Option<(&'static str, String)> {
        let sum = self.checksum.as_ref()?;
        let name = sum.algorithm().header_name();
        self.trailers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| (name, v.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::crypto::signing_key;

    /// "Example: PUT Object" of the S3 streaming SigV4 documentation:
    /// 66560 bytes of 'a' in chunks of 65536, 1024 and 0.
    fn doc_signing() -> ChunkSigning {
        ChunkSigning {
            signing_key: signing_key(
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "20130524",
                "us-east-1",
                "s3",
            ),
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            seed_signature: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
                .into(),
        }
    }

    fn doc_body() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
        b.extend(std::iter::repeat_n(b'a', 65536));
        b.extend_from_slice(b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
        b.extend(std::iter::repeat_n(b'a', 1024));
        b.extend_from_slice(b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
        b
    }

    fn decode(
        body: &[u8],
        step: usize,
        signing: Option<ChunkSigning>,
        trailer: Option<&str>,
    ) -> Result<Vec<u8>, S3Error> {
        let mut d = ChunkedDecoder::new(signing, trailer, None)?;
        let mut out = BytesMut::new();
        for piece in body.chunks(step) {
            d.feed(piece, &mut out)?;
        }
        d.finish()?;
        Ok(out.to_vec())
    }

    #[test]
    fn decodes_and_verifies_documentation_example_in_any_split() {
        for step in [1, 7, 4096, 1 << 20] {
            let out = decode(&doc_body(), step, Some(doc_signing()), None).unwrap();
            assert_eq!(out.len(), 66560);
            assert!(out.iter().all(|&b| b == b'a'));
        }
    }

    #[test]
    fn tampered_chunk_is_refused() {
        let mut body = doc_body();
        body[200] = b'b';
        let e = decode(&body, 4096, Some(doc_signing()), None).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::SignatureDoesNotMatch);
    }

    #[test]
    fn truncated_body_is_incomplete() {
        let body = doc_body();
        let e = decode(&body[..body.len() - 20], 4096, Some(doc_signing()), None).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::IncompleteBody);
    }

    #[test]
    fn unsigned_trailer_checksum() {
        let body = b"b\r\nHello world\r\n0\r\nx-amz-checksum-crc32:i9aeUg==\r\n\r\n";
        assert_eq!(
            decode(body, 3, None, Some("x-amz-checksum-crc32")).unwrap(),
            b"Hello world"
        );
        let bad = b"b\r\nHello World\r\n0\r\nx-amz-checksum-crc32:i9aeUg==\r\n\r\n";
        let e = decode(bad, 3, None, Some("x-amz-checksum-crc32")).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::BadDigest);
    }

    #[test]
    fn absurd_chunk_sizes_are_refused_without_overflow() {
        let mut out = BytesMut::new();
        // Declared 5 bytes; a chunk of 2^64-1 bytes is refused at its header.
        let mut d = ChunkedDecoder::new(None, None, Some(5)).unwrap();
        let e = d.feed(b"ffffffffffffffff\r\nabc", &mut out).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::InvalidRequest);
        assert!(out.is_empty());
        // Without a declared length, the running total cannot wrap.
        let mut d = ChunkedDecoder::new(None, None, None).unwrap();
        d.decoded = u64::MAX - 1;
        assert!(d.feed(b"ffffffffffffffff\r\n", &mut out).is_err());
        // Signs, spaces and empty sizes are not hex numbers.
        for h in [
            &b"+5\r\n"[..],
            b"-5\r\n",
            b" \r\n",
            b";chunk-signature=x\r\n",
        ] {
            let mut d = ChunkedDecoder::new(None, None, None).unwrap();
            assert!(
                d.feed(h, &mut out).is_err(),
                "{:?}",
                String::from_utf8_lossy(h)
            );
        }
    }

    #[test]
    fn long_lines_are_refused_before_they_are_copied() {
        let mut d = ChunkedDecoder::new(None, None, None).unwrap();
        let mut out = BytesMut::new();
        let big = vec![b'1'; 1 << 20];
        assert!(d.feed(&big, &mut out).is_err());
        assert!(d.line.capacity() < 1 << 20);
    }

    #[test]
    fn arbitrary_bodies_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        const ALPHABET: &[u8] = b"0123456789abcdefF;\r\n=:-xzchunk-signature";
        for _ in 0..3000 {
            let len = rng.gen_range(0..200);
            let body: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.gen_bool(0.9) {
                        ALPHABET[rng.gen_range(0..ALPHABET.len())]
                    } else {
                        rng.gen()
                    }
                })
                .collect();
            let declared = rng.gen_bool(0.5).then(|| rng.gen_range(0..64u64));
            let signing = rng.gen_bool(0.3).then(doc_signing);
            let trailer = rng.gen_bool(0.3).then_some("x-amz-checksum-crc32");
            let Ok(mut d) = ChunkedDecoder::new(signing, trailer, declared) else {
                continue;
            };
            let mut out = BytesMut::new();
            let mut rest = &body[..];
            let mut ok = true;
            while !rest.is_empty() && ok {
                let n = rng.gen_range(1..=rest.len());
                ok = d.feed(&rest[..n], &mut out).is_ok();
                rest = &rest[n..];
            }
            if ok {
                let _ = d.finish();
            }
            assert!(declared.is_none_or(|l| d.decoded() <= l));
        }
    }

    #[test]
    fn refuses_oversized_lines_and_junk() {
        let long = vec![b'f'; 5000];
        assert!(decode(&long, 100, None, None).is_err());
        assert!(decode(b"zz\r\n", 100, None, None).is_err());
        assert!(decode(b"0\r\n\r\nextra", 100, None, None).is_err());
    }
}
