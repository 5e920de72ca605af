//! Target `aws_chunked`: every payload mode, fed in pieces.

use super::*;

// ---------------------------------------------------------------------------
// aws-chunked bodies

/// A small deterministic generator for split points and chunk sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const ALGORITHMS: [ChecksumAlgorithm; 5] = [
    ChecksumAlgorithm::Crc32,
    ChecksumAlgorithm::Crc32c,
    ChecksumAlgorithm::Crc64Nvme,
    ChecksumAlgorithm::Sha1,
    ChecksumAlgorithm::Sha256,
];

/// The seed of the S3 streaming SigV4 documentation example.
fn doc_signing() -> ChunkSigning {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    ChunkSigning {
        signing_key: *KEY.get_or_init(|| signing_key(SECRET_KEY, "20130524", "us-east-1", "s3")),
        amz_date: "20130524T000000Z".into(),
        scope: "20130524/us-east-1/s3/aws4_request".into(),
        seed_signature: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
    }
}

/// Feed `body` to `v` in pieces split at generated points; the data it
/// lets through, or the first error.
fn feed(v: &mut BodyVerifier, body: &[u8], rng: &mut Rng) -> Result<Vec<u8>, crate::s3::S3Error> {
    let mut out = Vec::new();
    let mut rest = body;
    let max = 1 + rng.below(300);
    while !rest.is_empty() {
        let n = (1 + rng.below(max)).min(rest.len());
        let (piece, after) = rest.split_at(n);
        rest = after;
        // The last piece is sometimes sent with end-of-stream, sometimes
        // followed by an empty end-of-stream call.
        let eos = rest.is_empty() && rng.below(2) == 0;
        let passed = v.filter(Some(Bytes::copy_from_slice(piece)), eos)?;
        out.extend_from_slice(&passed);
        if eos {
            return Ok(out);
        }
    }
    out.extend_from_slice(&v.filter(None, true)?);
    Ok(out)
}

/// A valid aws-chunked body of `data`, signed like the AWS SDKs do when
/// `signing` is given, with a checksum trailer when `alg` is given.
fn encode_chunked(
    data: &[u8],
    signing: Option<&ChunkSigning>,
    alg: Option<ChecksumAlgorithm>,
    rng: &mut Rng,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut previous = signing.map(|s| s.seed_signature.clone());
    let sign =
        |s: &ChunkSigning, sts: String| hex::encode(hmac_sha256(&s.signing_key, sts.as_bytes()));
    let mut rest = data;
    let max = 1 + rng.below(200);
    loop {
        let n = if rest.is_empty() {
            0
        } else {
            (1 + rng.below(max)).min(rest.len())
        };
        let (chunk, after) = rest.split_at(n);
        rest = after;
        out.extend_from_slice(format!("{n:x}").as_bytes());
        if let (Some(s), Some(prev)) = (signing, previous.clone()) {
            let sts = format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{prev}\n{EMPTY_SHA256}\n{}",
                s.amz_date,
                s.scope,
                hex::encode(Sha256::digest(chunk))
            );
            let sig = sign(s, sts);
            out.extend_from_slice(format!(";chunk-signature={sig}").as_bytes());
            previous = Some(sig);
        }
        out.extend_from_slice(b"\r\n");
        if n == 0 {
            break;
        }
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(alg) = alg {
        let mut sum = Checksum::new(alg);
        sum.update(data);
        let line = format!("{}:{}", alg.header_name(), sum.finish_base64());
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let (Some(s), Some(prev)) = (signing, &previous) {
            let sts = format!(
                "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{prev}\n{}",
                s.amz_date,
                s.scope,
                sha256_hex(format!("{line}\n").as_bytes())
            );
            let sig = sign(s, sts);
            out.extend_from_slice(format!("x-amz-trailer-signature:{sig}\r\n").as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Target `aws_chunked`: the body verifier in every payload mode, fed in
/// pieces split at input-derived points.
///
/// Byte 0 chooses the mode (low 3 bits) and options, byte 1 the checksum
/// (none or one of five), bytes 2..4 seed the split points, the rest is
/// the body. Modes 0–4 feed the body as it is (raw, aws-chunked unsigned
/// trailer, signed, signed with trailer, raw with its hash); modes 5–7
/// encode the rest as a valid aws-chunked body (unsigned trailer, signed,
/// signed with trailer), which must verify and decode to the same bytes,
/// and re-frame it as the gateway does for the upstream, which must decode
/// again to the same bytes with the announced length.
pub fn aws_chunked(data: &[u8]) {
    let [flags, alg, s0, s1, ref body @ ..] = *data else {
        return;
    };
    let mut rng = Rng(u64::from(u16::from_le_bytes([s0, s1])) | u64::from(flags) << 16);
    let alg = match alg % 7 {
        0 => None,
        n @ 1..=5 => Some(ALGORITHMS[usize::from(n) - 1]),
        // An x-amz-trailer that names no checksum.
        _ => None,
    };
    let bad_trailer = data[1] % 7 == 6;
    let mut headers = HeaderMap::new();
    let trailer_header = |headers: &mut HeaderMap| {
        let v = match alg {
            Some(a) => a.header_name(),
            None if bad_trailer => "x-amz-checksum-md5",
            None => return,
        };
        headers.insert("x-amz-trailer", HeaderValue::from_static(v));
    };
    let signing = doc_signing();
    let mode = flags & 7;
    if mode >= 5 {
        let (signing, trailer) = match mode {
            5 => (None, alg.or(Some(ChecksumAlgorithm::Crc32))),
            6 => (Some(&signing), None),
            _ => (Some(&signing), alg),
        };
        let encoded = encode_chunked(body, signing, trailer, &mut rng);
        let payload = match (signing, trailer) {
            (None, _) => PayloadMode::UnsignedTrailer,
            (Some(s), t) => PayloadMode::SignedChunks {
                trailer: t.is_some(),
                signing: Box::new(s.clone()),
            },
        };
        if let Some(t) = trailer {
            headers.insert("x-amz-trailer", HeaderValue::from_static(t.header_name()));
        }
        let mut v = BodyVerifier::new(&payload, &headers, Some(body.len() as u64))
            .unwrap_or_else(|e| panic!("mode {mode}: verifier refused its setup: {e}"));
        let out = feed(&mut v, &encoded, &mut rng)
            .unwrap_or_else(|e| panic!("mode {mode}: a valid aws-chunked body was refused: {e}"));
        assert_eq!(out, body, "mode {mode}: decoded data differs");
        let Some(t) = trailer else { return };
        let (name, value) = v
            .trailer_checksum()
            .unwrap_or_else(|| panic!("mode {mode}: the verified trailer checksum is missing"));
        assert_eq!(name, t.header_name());
        // Re-framed for the upstream (`reframe`): the announced length, and
        // decodable to the same bytes with the same checksum.
        let mut r = crate::reframe::Reframer::new(t);
        let mut framed = BytesMut::new();
        let mut rest = &out[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(1 << 17)).min(rest.len());
            r.push(&rest[..n], &mut framed);
            rest = &rest[n..];
        }
        r.finish(&value, &mut framed);
        assert_eq!(
            Some(framed.len() as u64),
            r.encoded_length(body.len() as u64).ok()
        );
        let mut d = ChunkedDecoder::new(None, Some(t.header_name()), Some(body.len() as u64))
            .expect("decoder");
        let mut back = BytesMut::new();
        d.feed(&framed, &mut back)
            .and_then(|()| d.finish())
            .unwrap_or_else(|e| panic!("mode {mode}: re-framed body refused: {e}"));
        assert_eq!(&back[..], body, "mode {mode}: re-framed data differs");
        return;
    }
    let expected = (flags & 0x10 != 0).then(|| u64::from(flags >> 5) * 7 + u64::from(s0 & 3));
    let (payload, expected) = match mode {
        0 => {
            if let Some(a) = alg {
                let v = if flags & 0x08 != 0 {
                    let mut c = Checksum::new(a);
                    c.update(body);
                    c.finish_base64()
                } else {
                    "AAAAAA==".to_string()
                };
                if let Ok(v) = HeaderValue::from_str(&v) {
                    headers.insert(HeaderName::from_static(a.header_name()), v);
                }
            }
            (PayloadMode::Unsigned, expected)
        }
        1 => {
            trailer_header(&mut headers);
            (PayloadMode::UnsignedTrailer, expected)
        }
        2 | 3 => {
            if mode == 3 {
                trailer_header(&mut headers);
            }
            (
                PayloadMode::SignedChunks {
                    trailer: mode == 3,
                    signing: Box::new(signing),
                },
                expected,
            )
        }
        _ => {
            // The right hash and length: it must verify.
            let h: [u8; 32] = Sha256::digest(body).into();
            (PayloadMode::Sha256(h), Some(body.len() as u64))
        }
    };
    let Ok(mut v) = BodyVerifier::new(&payload, &headers, expected) else {
        return;
    };
    let result = feed(&mut v, body, &mut rng);
    match (&payload, result) {
        (PayloadMode::Sha256(_), r) => {
            let out = r.unwrap_or_else(|e| panic!("a body with its own hash was refused: {e}"));
            assert_eq!(out, body);
        }
        (_, Ok(out)) => {
            // Whatever verified went through whole, and no more than announced.
            if let Some(l) = expected {
                assert_eq!(out.len() as u64, l, "verified length differs");
            }
            let _ = v.trailer_checksum();
        }
        (_, Err(e)) => drop(e.to_xml("fuzz")),
    }
}
