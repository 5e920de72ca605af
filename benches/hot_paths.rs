//! Criterion benches of the per-request hot paths: SigV4 verification,
//! aws-chunked decoding with chunk signatures, payload hashing, and naming
//! the S3 operation.

use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use http::HeaderMap;
use s3gate::auth::chunked::ChunkedDecoder;
use s3gate::auth::crypto::{hmac_sha256, signing_key, EMPTY_SHA256};
use s3gate::auth::payload::BodyVerifier;
use s3gate::auth::{sigv4, ChunkSigning, PayloadMode, Principal, Principals, RequestView, Secret};
use s3gate::s3::addressing::address;
use s3gate::s3::{Query, S3Request};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn principals() -> Principals {
    Principals::new(vec![Principal {
        name: "example".into(),
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret: Secret::new(SECRET.into()),
    }])
}

fn bench_sigv4(c: &mut Criterion) {
    // "Example: GET Object" from the S3 SigV4 documentation.
    let mut h = HeaderMap::new();
    h.insert("host", "examplebucket.s3.amazonaws.com".parse().expect("h"));
    h.insert("range", "bytes=0-9".parse().expect("h"));
    h.insert("x-amz-content-sha256", EMPTY_SHA256.parse().expect("h"));
    h.insert("x-amz-date", "20130524T000000Z".parse().expect("h"));
    let auth = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
    let p = principals();
    let q = Query::parse(None).expect("q");
    let now = s3gate::auth::time::parse_amz_date("20130524T000000Z").expect("t");
    c.bench_function("sigv4_verify_header", |b| {
        b.iter(|| {
            let req = RequestView {
                method: "GET",
                raw_path: "/test.txt",
                query: &q,
                headers: &h,
            };
            sigv4::verify_header(&req, auth, &p, "us-east-1", now).expect("valid")
        })
    });
}

fn framed(data: &[u8], chunk: usize, signing: &ChunkSigning) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev = signing.seed_signature.clone();
    let mut pieces: Vec<&[u8]> = data.chunks(chunk).collect();
    pieces.push(&[]);
    for p in pieces {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{prev}\n{EMPTY_SHA256}\n{}",
            signing.amz_date,
            signing.scope,
            s3gate::auth::crypto::sha256_hex(p)
        );
        prev = hex::encode(hmac_sha256(&signing.signing_key, sts.as_bytes()));
        out.extend_from_slice(format!("{:x};chunk-signature={prev}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn bench_chunked(c: &mut Criterion) {
    let signing = ChunkSigning {
        signing_key: signing_key(SECRET, "20130524", "us-east-1", "s3"),
        amz_date: "20130524T000000Z".into(),
        scope: "20130524/us-east-1/s3/aws4_request".into(),
        seed_signature: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
    };
    let data = vec![b'a'; 8 << 20];
    let body = framed(&data, 64 * 1024, &signing);
    let mut g = c.benchmark_group("aws_chunked_decode_signed");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(20);
    g.bench_function(BenchmarkId::from_parameter("8MiB_64KiB_chunks"), |b| {
        b.iter(|| {
            let mut d = ChunkedDecoder::new(Some(signing.clone()), None, Some(data.len() as u64))
                .expect("d");
            let mut out = BytesMut::with_capacity(64 * 1024);
            for piece in body.chunks(64 * 1024) {
                d.feed(piece, &mut out).expect("feed");
                out.clear();
            }
            d.finish().expect("finish");
        })
    });
    g.finish();
}

fn bench_payload_hash(c: &mut Criterion) {
    let data = Bytes::from(vec![7u8; 8 << 20]);
    let h: [u8; 32] = {
        use sha2::Digest;
        sha2::Sha256::digest(&data).into()
    };
    let mut g = c.benchmark_group("payload_sha256_verify");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(20);
    g.bench_function("8MiB", |b| {
        b.iter(|| {
            let mut v = BodyVerifier::new(
                &PayloadMode::Sha256(h),
                &HeaderMap::new(),
                Some(data.len() as u64),
            )
            .expect("v");
            let n = data.len() / (64 * 1024);
            for i in 0..n {
                v.filter(Some(data.slice(i * 65536..(i + 1) * 65536)), i + 1 == n)
                    .expect("ok");
            }
        })
    });
    g.finish();
}

fn bench_operation(c: &mut Criterion) {
    let hostnames = vec!["s3.internal.example".to_string()];
    c.bench_function("parse_operation_upload_part", |b| {
        b.iter(|| {
            let a = address(
                Some("127.0.0.1:9000"),
                "/bucket/some/key%20with%20space",
                &hostnames,
            )
            .expect("a");
            let q = Query::parse(Some(
                "partNumber=7&uploadId=2~abcdefghijklmnop&x-id=UploadPart",
            ))
            .expect("q");
            S3Request::parse("PUT", &a, &q, None).expect("op")
        })
    });
    let _ = SystemTime::now();
}

criterion_group!(
    benches,
    bench_sigv4,
    bench_chunked,
    bench_payload_hash,
    bench_operation
);
criterion_main!(benches);
