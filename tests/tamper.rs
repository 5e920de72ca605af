//! "Nothing unverified is stored", proven against an upstream that verifies
//! nothing: a recording stand-in that completes whatever body arrives
//! whole. For every payload mode the gateway accepts, for PutObject and
//! UploadPart, each tamper (a data byte in the first or last chunk, a chunk
//! signature, the final chunk's signature, the trailer's checksum or
//! signature, a body cut short, a wrong hash or checksum header) gets its
//! S3 error, and the stand-in never received that request's body whole.
//! A correct control per mode and operation arrives whole, with exactly
//! the client's data.

mod common;
#[path = "tamper/layout.rs"]
mod layout;
#[path = "tamper/post.rs"]
mod post;
#[path = "tamper/recorder.rs"]
mod recorder;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use common::raw::{sha256_hex, Response, Signer};
use common::{data, BucketRule, Credentials, GatewayConfig, Upstream, ALICE_KEY, ALICE_SECRET};
use layout::{change, layout, Layout};
use recorder::Recorder;

/// Routed to the recorder with the client's trailing checksum re-framed
/// upstream (the default).
const BUCKET: &str = "tamper";
/// Routed to the recorder with `checksum_trailers: false`: the upstream gets
/// the decoded data with a plain Content-Length.
const PLAIN: &str = "tamper-plain";
const CHUNK: usize = 64 * 1024;
/// Four data chunks, the last one short.
const LEN: usize = 3 * CHUNK + LAST;
const LAST: usize = 1000;
/// The most the gateway holds back: one piece as read from the client
/// (pingora reads a request body 64 KiB at a time).
const HELD: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// A hex SHA-256 of the body in `x-amz-content-sha256`.
    Sha256,
    /// `UNSIGNED-PAYLOAD`, nothing to check but the length.
    Unsigned,
    /// `UNSIGNED-PAYLOAD` with `x-amz-checksum-crc32`.
    UnsignedChecksum,
    /// A presigned URL (`UNSIGNED-PAYLOAD`).
    Presigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`.
    Signed,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`.
    SignedTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`.
    UnsignedTrailer,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tamper {
    FirstData,
    LastData,
    /// The signature of the second data chunk.
    ChunkSig,
    /// The signature of the final, empty chunk.
    FinalSig,
    TrailerValue,
    TrailerSig,
    /// The client stops sending half way and closes its side.
    CutMid,
    /// … right before the final chunk (raw bodies: before the last byte).
    CutBeforeFinal,
    /// … after the final chunk, before the trailer.
    CutBeforeTrailer,
    /// A correct body under a signed hash of other data.
    WrongSha,
    /// A correct body under the checksum header of other data.
    WrongChecksumHeader,
}

use Tamper::*;

const SHA: &[&str] = &["XAmzContentSHA256Mismatch"];
const SIG: &[&str] = &["SignatureDoesNotMatch"];
const DIGEST: &[&str] = &["BadDigest"];
const SIG_OR_DIGEST: &[&str] = &["SignatureDoesNotMatch", "BadDigest"];
/// A cut body: this error, or the connection closed without an answer.
const CUT: &[&str] = &["IncompleteBody"];

/// A tamper and the S3 error codes the client may get for it.
type Case = (Tamper, &'static [&'static str]);

/// Every mode, every tamper that applies to it, and the errors allowed.
/// (`UNSIGNED-PAYLOAD` without a checksum has nothing to tamper with but
/// its length.)
const CASES: &[(Mode, &[Case])] = &[
    (
        Mode::Sha256,
        &[
            (FirstData, SHA),
            (LastData, SHA),
            (WrongSha, SHA),
            (CutMid, CUT),
            (CutBeforeFinal, CUT),
        ],
    ),
    (Mode::Unsigned, &[(CutMid, CUT), (CutBeforeFinal, CUT)]),
    (
        Mode::UnsignedChecksum,
        &[
            (FirstData, DIGEST),
            (LastData, DIGEST),
            (WrongChecksumHeader, DIGEST),
            (CutMid, CUT),
            (CutBeforeFinal, CUT),
        ],
    ),
    (Mode::Presigned, &[(CutMid, CUT), (CutBeforeFinal, CUT)]),
    (
        Mode::Signed,
        &[
            (FirstData, SIG),
            (LastData, SIG),
            (ChunkSig, SIG),
            (FinalSig, SIG),
            (CutMid, CUT),
            (CutBeforeFinal, CUT),
        ],
    ),
    (
        Mode::SignedTrailer,
        &[
            (FirstData, SIG),
            (LastData, SIG),
            (ChunkSig, SIG),
            (FinalSig, SIG),
            (TrailerValue, SIG_OR_DIGEST),
            (TrailerSig, SIG),
            (CutMid, CUT),
            (CutBeforeFinal, CUT),
            (CutBeforeTrailer, CUT),
        ],
    ),
    (
        Mode::UnsignedTrailer,
        &[
            (FirstData, DIGEST),
            (LastData, DIGEST),
            (TrailerValue, DIGEST),
            (CutMid, CUT),
            (CutBeforeFinal, CUT),
            (CutBeforeTrailer, CUT),
        ],
    ),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    PutObject,
    UploadPart,
}

struct Setup {
    recorder: Recorder,
    gateway: common::Gateway,
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let recorder = Recorder::start();
        let dir = std::env::temp_dir().join(format!("s3gate-tamper-{}", std::process::id()));
        let gateway = GatewayConfig::empty()
            .principal("alice", ALICE_KEY, ALICE_SECRET)
            .upstream(
                "recorder",
                Upstream::s3_compatible(recorder.endpoint(), Credentials::keys("a", "b"))
                    .region("us-east-1"),
            )
            .upstream(
                "recorder-plain",
                Upstream::s3_compatible(recorder.endpoint(), Credentials::keys("a", "b"))
                    .region("us-east-1")
                    .set("checksum_trailers", false),
            )
            .bucket(BUCKET, BucketRule::upstream("recorder"))
            .bucket(PLAIN, BucketRule::upstream("recorder-plain"))
            .start(&dir);
        Setup { recorder, gateway }
    })
}

fn signer() -> Signer<'static> {
    Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: SystemTime::now(),
    }
}

fn host() -> String {
    format!("127.0.0.1:{}", setup().gateway.port)
}

fn crc32(d: &[u8]) -> String {
    let mut c = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32IsoHdlc);
    c.update(d);
    base64::engine::general_purpose::STANDARD.encode((c.finalize() as u32).to_be_bytes())
}

/// Send a request; with `cut`, only that much of the body, then close the
/// sending side. The connection closing without an answer is status 0.
fn exchange(
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
    cut: Option<usize>,
) -> Response {
    exchange_staged(target, headers, body, cut, None)
}

/// [`exchange`], and with `stage` `(at, key)`: send the body up to `at`,
/// wait until the upstream has received all but the held-back piece of it
/// for `key` (so the gateway has read the last data chunk as a piece of its
/// own, before the end of the body), then send the rest.
fn exchange_staged(
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
    cut: Option<usize>,
    stage: Option<(usize, &str)>,
) -> Response {
    let mut s = TcpStream::connect(("127.0.0.1", setup().gateway.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    // CreateMultipartUpload, and POST Object (to the bucket).
    let method = if target.contains("?uploads") || target.matches('/').count() == 1 {
        "POST"
    } else {
        "PUT"
    };
    let mut req = format!("{method} {target} HTTP/1.1\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("write head");
    // The gateway may answer and close before the whole body is read.
    let end = cut.unwrap_or(body.len());
    let mut from = 0;
    if let Some((at, key)) = stage {
        let _ = s.write_all(&body[..at]);
        let rec = &setup().recorder;
        // Re-framed for the upstream, data leaves in whole chunks of up to
        // 64 KiB: one more may wait for the rest of its data.
        let held = if target.starts_with(&format!("/{BUCKET}/")) {
            2 * HELD
        } else {
            HELD
        };
        let arrived = common::standin::wait_until(Duration::from_secs(20), || {
            rec.find(&format!("/{key}"))
                .iter()
                .any(|r| r.method == "PUT" && r.decoded().len() >= LEN - held)
        });
        assert!(
            arrived,
            "{key}: the data before the last chunk never went upstream: {:?}",
            rec.find(&format!("/{key}"))
                .iter()
                .map(|r| (r.body.len(), r.decoded().len(), r.length))
                .collect::<Vec<_>>()
        );
        from = at;
    }
    let _ = s.write_all(&body[from..end]);
    if cut.is_some() {
        let _ = s.shutdown(Shutdown::Write);
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Response {
        status,
        headers: Vec::new(),
        body: body.to_string(),
    }
}

/// A request for `mode` ready to send: target, headers, body (correct, or
/// with a wrong hash or checksum header for those tampers).
fn request(
    mode: Mode,
    target: &str,
    d: &[u8],
    t: Option<Tamper>,
) -> (String, Vec<(String, String)>, Vec<u8>) {
    let s = signer();
    let other = {
        let mut o = d.to_vec();
        o[0] ^= 1;
        o
    };
    let mut headers = vec![("host".to_string(), host())];
    let content_sha = match mode {
        Mode::Sha256 if t == Some(WrongSha) => sha256_hex(&other),
        Mode::Sha256 => sha256_hex(d),
        Mode::Unsigned | Mode::UnsignedChecksum | Mode::Presigned => "UNSIGNED-PAYLOAD".into(),
        Mode::Signed => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".into(),
        Mode::SignedTrailer => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER".into(),
        Mode::UnsignedTrailer => "STREAMING-UNSIGNED-PAYLOAD-TRAILER".into(),
    };
    if mode == Mode::Presigned {
        let target = s.presign("PUT", &host(), target, Duration::from_secs(300));
        headers.push(("content-length".into(), d.len().to_string()));
        return (target, headers, d.to_vec());
    }
    headers.push(("x-amz-content-sha256".into(), content_sha.clone()));
    if mode == Mode::UnsignedChecksum {
        let sum = if t == Some(WrongChecksumHeader) {
            crc32(&other)
        } else {
            crc32(d)
        };
        headers.push(("x-amz-checksum-crc32".into(), sum));
    }
    let chunked = matches!(
        mode,
        Mode::Signed | Mode::SignedTrailer | Mode::UnsignedTrailer
    );
    if !chunked {
        headers.push(("content-length".into(), d.len().to_string()));
        let (headers, _) = s.sign_headers("PUT", target, headers, &content_sha);
        return (target.to_string(), headers, d.to_vec());
    }
    let trailer_value = crc32(d);
    let trailer =
        (mode != Mode::Signed).then_some(("x-amz-checksum-crc32", trailer_value.as_str()));
    let signed = mode != Mode::UnsignedTrailer;
    let zero_seed = "0".repeat(64);
    let probe = s.aws_chunked(d, CHUNK, signed.then_some(zero_seed.as_str()), trailer);
    headers.push(("content-encoding".into(), "aws-chunked".into()));
    headers.push(("x-amz-decoded-content-length".into(), d.len().to_string()));
    headers.push(("content-length".into(), probe.len().to_string()));
    if trailer.is_some() {
        headers.push(("x-amz-trailer".into(), "x-amz-checksum-crc32".into()));
    }
    let (headers, seed) = s.sign_headers("PUT", target, headers, &content_sha);
    let body = s.aws_chunked(d, CHUNK, signed.then_some(seed.as_str()), trailer);
    assert_eq!(body.len(), probe.len());
    (target.to_string(), headers, body)
}

/// Where a staged send pauses: after the last data chunk (None for raw bodies).
fn stage_at(mode: Mode, b: &[u8]) -> Option<usize> {
    match mode {
        Mode::Signed | Mode::SignedTrailer | Mode::UnsignedTrailer => Some(layout(b).final_at),
        _ => None,
    }
}

/// Whether a tamper is found only after the last data chunk, so that the
/// gateway must have held that chunk back (the staged send proves it).
fn found_at_the_end(mode: Mode, t: Tamper) -> bool {
    match t {
        FinalSig | TrailerValue | TrailerSig | CutBeforeFinal | CutBeforeTrailer => true,
        FirstData | LastData => mode == Mode::UnsignedTrailer,
        _ => false,
    }
}

/// Apply a body tamper; the length of body to send, if it is cut.
fn tamper_body(mode: Mode, b: &mut [u8], t: Tamper) -> Option<usize> {
    let raw = matches!(
        mode,
        Mode::Sha256 | Mode::Unsigned | Mode::UnsignedChecksum | Mode::Presigned
    );
    let l = if raw {
        Layout {
            data: vec![(0, b.len())],
            final_at: b.len() - 1,
            ..Layout::default()
        }
    } else {
        layout(b)
    };
    let (last, last_len) = *l.data.last().expect("data");
    match t {
        FirstData => b[l.data[0].0] ^= 1,
        LastData => b[last + last_len - 1] ^= 1,
        ChunkSig => change(b, l.sigs[1]),
        FinalSig => change(b, *l.sigs.last().expect("final signature")),
        TrailerValue => change(b, l.value_at.expect("trailer value")),
        TrailerSig => change(b, l.trailer_sig_at.expect("trailer signature")),
        CutMid => return Some(b.len() / 2),
        CutBeforeFinal => return Some(l.final_at),
        CutBeforeTrailer => return Some(l.trailer_at.expect("trailer")),
        WrongSha | WrongChecksumHeader => {}
    }
    None
}

/// The target for one case: a fresh object, or part 1 of a fresh upload
/// (created through the gateway).
fn target(bucket: &str, op: Op, key: &str) -> String {
    let path = format!("/{bucket}/{key}");
    match op {
        Op::PutObject => path,
        Op::UploadPart => {
            let t = format!("{path}?uploads");
            let headers = vec![
                ("host".to_string(), host()),
                ("x-amz-content-sha256".to_string(), sha256_hex(b"")),
            ];
            let (headers, _) = signer().sign_headers("POST", &t, headers, &sha256_hex(b""));
            let r = exchange(&t, &headers, b"", None);
            assert_eq!(r.status, 200, "CreateMultipartUpload: {}", r.body);
            format!("{path}?partNumber=1&uploadId={key}")
        }
    }
}

fn run_mode(mode: Mode) {
    let rec = &setup().recorder;
    let tampers = CASES
        .iter()
        .find(|(m, _)| *m == mode)
        .expect("mode in table")
        .1;
    let d = data(LEN, 7);
    for (bucket, op) in [
        (BUCKET, Op::PutObject),
        (BUCKET, Op::UploadPart),
        (PLAIN, Op::PutObject),
        (PLAIN, Op::UploadPart),
    ] {
        let key = common::unique(&format!("{mode:?}-{op:?}-control").to_lowercase());
        let (t, h, b) = request(mode, &target(bucket, op, &key), &d, None);
        let stage = stage_at(mode, &b).map(|at| (at, key.as_str()));
        let r = exchange_staged(&t, &h, &b, None, stage);
        assert_eq!(
            r.status, 200,
            "{bucket} {mode:?} {op:?} control: {}",
            r.body
        );
        let got = rec.settled(&format!("/{key}"), Duration::from_secs(20));
        let put: Vec<_> = got.iter().filter(|r| r.method == "PUT").collect();
        assert_eq!(
            put.len(),
            1,
            "{mode:?} {op:?} control reached the upstream once"
        );
        assert!(put[0].complete, "{mode:?} {op:?} control arrived whole");
        assert!(
            put[0].decoded() == d,
            "{bucket} {mode:?} {op:?} control: exactly the client's data"
        );

        for (tamper, codes) in tampers.iter() {
            let case = format!("{bucket} {mode:?} {op:?} {tamper:?}");
            let key = common::unique(&format!("{mode:?}-{op:?}-{tamper:?}").to_lowercase());
            let (t, h, mut b) = request(mode, &target(bucket, op, &key), &d, Some(*tamper));
            let stage = stage_at(mode, &b)
                .filter(|_| found_at_the_end(mode, *tamper))
                .map(|at| (at, key.as_str()));
            let cut = tamper_body(mode, &mut b, *tamper);
            let r = exchange_staged(&t, &h, &b, cut, stage);
            let closed = r.status == 0 && cut.is_some();
            assert!(
                closed
                    || (r.status >= 400 && r.code().is_some_and(|c| codes.contains(&c.as_str()))),
                "{case}: expected one of {codes:?}, got {} {}",
                r.status,
                r.body
            );
            let got = rec.settled(&format!("/{key}"), Duration::from_secs(20));
            for u in got.iter().filter(|r| r.method == "PUT") {
                assert!(
                    !u.complete && u.body.len() < u.length.unwrap_or(usize::MAX),
                    "{case}: the upstream received the whole body ({} of {:?} bytes)",
                    u.body.len(),
                    u.length
                );
            }
        }
    }
}

/// SigV4a streaming payloads are refused before anything goes upstream.
#[test]
fn ecdsa_streaming_payloads_are_refused() {
    let rec = &setup().recorder;
    for mode in [
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER",
    ] {
        let key = common::unique("ecdsa");
        let target = format!("/{BUCKET}/{key}");
        let headers = vec![
            ("host".to_string(), host()),
            ("x-amz-content-sha256".to_string(), mode.to_string()),
            ("content-encoding".to_string(), "aws-chunked".to_string()),
            ("x-amz-decoded-content-length".to_string(), "5".to_string()),
            ("content-length".to_string(), "10".to_string()),
        ];
        let (headers, _) = signer().sign_headers("PUT", &target, headers, mode);
        let r = exchange(&target, &headers, b"5\r\nhello\r\n", None);
        assert_eq!(
            (r.status, r.code().as_deref()),
            (501, Some("NotImplemented")),
            "{}",
            r.body
        );
        assert!(rec
            .settled(&format!("/{key}"), Duration::from_secs(20))
            .is_empty());
    }
}

#[test]
fn hex_sha256_tampers_never_complete_upstream() {
    run_mode(Mode::Sha256);
}

#[test]
fn unsigned_payload_cuts_never_complete_upstream() {
    run_mode(Mode::Unsigned);
}

#[test]
fn unsigned_payload_with_checksum_tampers_never_complete_upstream() {
    run_mode(Mode::UnsignedChecksum);
}

#[test]
fn presigned_put_cuts_never_complete_upstream() {
    run_mode(Mode::Presigned);
}

#[test]
fn signed_chunks_tampers_never_complete_upstream() {
    run_mode(Mode::Signed);
}

#[test]
fn signed_chunks_with_trailer_tampers_never_complete_upstream() {
    run_mode(Mode::SignedTrailer);
}

#[test]
fn unsigned_trailer_tampers_never_complete_upstream() {
    run_mode(Mode::UnsignedTrailer);
}

/// The modes the tests above run.
const TESTED: &[Mode] = &[
    Mode::Sha256,
    Mode::Unsigned,
    Mode::UnsignedChecksum,
    Mode::Presigned,
    Mode::Signed,
    Mode::SignedTrailer,
    Mode::UnsignedTrailer,
];

/// The tests cover every mode of the table.
#[test]
fn every_mode_is_in_the_table() {
    assert_eq!(TESTED.len(), CASES.len());
    for (m, _) in CASES {
        assert!(TESTED.contains(m), "{m:?} has no test");
    }
}
