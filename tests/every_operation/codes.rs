//! Every error code the gateway answers with, provoked through the gateway
//! (status and `<Code>`), or named with the test elsewhere that provokes it
//! where that needs a gateway of its own. `every_code_is_in_the_table`
//! fails when `S3ErrorCode` gains a code this table does not cover.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use aws_sigv4::sign::v4;
use s3gate::s3::S3ErrorCode;

use super::common::raw::{form_close, form_open, send, sha256_hex, Response, Signer};
use super::common::{
    BucketRule, Gateway, GatewayConfig, Limits, ALICE_KEY, ALICE_SECRET, BOB_KEY, BOB_SECRET,
};
use super::{alice_signer, env, Env, DOWN, GHOST, OPS};

enum Proof {
    /// Provoked here, through the shared gateway.
    Here(fn(&Env) -> Response),
    /// Provoked by this test, which needs a gateway or upstream of its own.
    Elsewhere {
        file: &'static str,
        test: &'static str,
    },
    /// Cannot be provoked from outside; why.
    Unprovokable(&'static str),
}

use Proof::*;

#[rustfmt::skip]
const TABLE: &[(&str, u16, Proof)] = &[
    ("AccessDenied", 403, Here(access_denied)),
    ("AccessForbidden", 403, Here(access_forbidden)),
    ("AuthorizationHeaderMalformed", 400, Here(wrong_region)),
    ("AuthorizationQueryParametersError", 400, Here(presigned_without_parameters)),
    ("BadDigest", 400, Here(bad_checksum)),
    ("EntityTooLarge", 400, Here(form_too_large)),
    ("EntityTooSmall", 400, Here(form_too_small)),
    ("IncompleteBody", 400, Here(short_body)),
    ("InternalError", 500, Unprovokable(
        "answered only when the OS refuses a dup(2) or pipe for splice, or HMAC refuses a key")),
    ("InvalidAccessKeyId", 403, Here(unknown_key)),
    ("InvalidArgument", 400, Here(bad_list_type)),
    ("InvalidBucketName", 400, Here(bad_bucket_name)),
    ("InvalidPolicyDocument", 400, Here(form_policy_without_expiration)),
    ("InvalidRequest", 400, Here(copy_source_on_get)),
    ("KeyTooLongError", 400, Here(key_too_long)),
    ("MalformedPOSTRequest", 400, Here(form_garbage)),
    ("MalformedXML", 400, Here(delete_objects_garbage)),
    ("MaxPostPreDataLengthExceeded", 400, Here(form_fields_too_large)),
    ("MissingContentLength", 411, Here(aws_chunked_without_decoded_length)),
    ("NoSuchBucket", 404, Here(location_of_missing_bucket)),
    ("NoSuchUpload", 404, Here(upload_id_other_case)),
    ("NotImplemented", 501, Here(post_cors)),
    ("RequestHeaderSectionTooLarge", 400, Here(huge_head)),
    ("RequestTimeout", 400, Here(slow_head)),
    ("RequestTimeTooSkewed", 403, Here(skewed)),
    ("ServiceUnavailable", 503, Elsewhere {
        file: "tests/multipart_audit.rs", test: "unwritable_audit_log_rejects_aborts" }),
    ("SignatureDoesNotMatch", 403, Here(wrong_secret)),
    ("SlowDown", 503, Here(beyond_connection_limit)),
    ("XAmzContentSHA256Mismatch", 400, Here(sha_mismatch)),
    ("BadGateway", 502, Here(upstream_down)),
    ("GatewayTimeout", 504, Elsewhere {
        file: "tests/faults.rs", test: "upstream_too_slow_then_fast" }),
];

#[test]
fn every_code_is_in_the_table() {
    for c in S3ErrorCode::ALL {
        let found: Vec<_> = TABLE.iter().filter(|(n, _, _)| *n == c.as_str()).collect();
        assert_eq!(found.len(), 1, "{} must be in TABLE once", c.as_str());
        assert_eq!(found[0].1, c.http_status(), "{}", c.as_str());
    }
    assert_eq!(
        TABLE.len(),
        S3ErrorCode::ALL.len(),
        "a code in TABLE is not in the enum"
    );
    for (name, _, proof) in TABLE {
        if let Unprovokable(why) = proof {
            assert!(!why.is_empty(), "{name}: say why it cannot be provoked");
        }
        if let Elsewhere { file, test } = proof {
            let text = std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file),
            )
            .expect("test file");
            let start = text
                .find(&format!("fn {test}("))
                .unwrap_or_else(|| panic!("{file}::{test}"));
            let body = &text[start..];
            let end = ["\nfn ", "\n#[", "\nasync fn "]
                .iter()
                .filter_map(|m| body[3..].find(m))
                .min()
                .map_or(body.len(), |e| e + 3);
            assert!(
                body[..end].contains(&format!("\"{name}\"")),
                "{file}::{test} does not assert {name}"
            );
        }
    }
}

#[test]
fn every_code_is_answered_as_s3() {
    let e = env();
    let mut wrong = Vec::new();
    for (name, status, proof) in TABLE {
        let Here(provoke) = proof else { continue };
        let r = provoke(e);
        if (r.status, r.code().as_deref()) != (*status, Some(*name)) {
            wrong.push(format!(
                "{name}: got {} {:?}: {}",
                r.status,
                r.code(),
                r.body
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

fn signer_for(key: &'static str, secret: &'static str) -> Signer<'static> {
    Signer {
        key,
        secret,
        ..alice_signer()
    }
}

fn access_denied(e: &Env) -> Response {
    e.signed_by(
        &signer_for(BOB_KEY, BOB_SECRET),
        "GET",
        &format!("/{OPS}/not-bobs"),
        &[],
        b"",
    )
}

fn access_forbidden(e: &Env) -> Response {
    let h = [
        ("host", e.host()),
        ("origin", "http://evil.test".into()),
        ("access-control-request-method", "PUT".into()),
    ];
    send(
        e.gateway.port,
        "OPTIONS",
        &format!("/{OPS}"),
        &owned(&h),
        b"",
    )
}

fn wrong_region(e: &Env) -> Response {
    let s = Signer {
        region: "eu-west-1",
        ..alice_signer()
    };
    e.signed_by(&s, "GET", &format!("/{OPS}/k"), &[], b"")
}

fn presigned_without_parameters(e: &Env) -> Response {
    send(
        e.gateway.port,
        "GET",
        &format!("/{OPS}/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00"),
        &owned(&[("host", e.host())]),
        b"",
    )
}

fn bad_checksum(e: &Env) -> Response {
    e.signed(
        "PUT",
        &format!("/{OPS}/codes-bad-checksum"),
        &[("x-amz-checksum-crc32", "AAAAAA==")],
        b"Hello world",
    )
}

/// A browser form for `ops/codes-form` with a 10 to 20 byte range.
fn form(e: &Env, fields: Vec<(String, String)>, file: &[u8]) -> Response {
    let boundary = "----codesboundary";
    let mut body = form_open(boundary, &fields, "f.bin");
    body.extend_from_slice(file);
    body.extend_from_slice(&form_close(boundary));
    let h = [
        ("host", e.host()),
        (
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        ),
        ("content-length", body.len().to_string()),
    ];
    send(
        e.gateway.port,
        "POST",
        &format!("/{OPS}"),
        &owned(&h),
        &body,
    )
}

fn form_fields() -> Vec<(String, String)> {
    alice_signer().post_fields(OPS, "codes-form", &[r#"["content-length-range", 10, 20]"#])
}

fn form_too_large(e: &Env) -> Response {
    form(e, form_fields(), &[b'x'; 30])
}

fn form_too_small(e: &Env) -> Response {
    form(e, form_fields(), &[b'x'; 3])
}

fn form_fields_too_large(e: &Env) -> Response {
    let mut f = form_fields();
    f.push(("x-amz-meta-pad".into(), "p".repeat(21 * 1024)));
    form(e, f, &[b'x'; 15])
}

fn form_policy_without_expiration(e: &Env) -> Response {
    let s = alice_signer();
    let mut f = form_fields();
    let policy = "e30="; // {}
    let sig = v4::calculate_signature(
        v4::generate_signing_key(ALICE_SECRET, s.time, "us-east-1", "s3"),
        policy.as_bytes(),
    );
    for (k, v) in f.iter_mut() {
        match k.as_str() {
            "policy" => *v = policy.into(),
            "x-amz-signature" => *v = sig.clone(),
            _ => {}
        }
    }
    form(e, f, &[b'x'; 15])
}

fn form_garbage(e: &Env) -> Response {
    let body = b"this is not multipart at all";
    let h = [
        ("host", e.host()),
        ("content-type", "multipart/form-data; boundary=zzz".into()),
        ("content-length", body.len().to_string()),
    ];
    send(e.gateway.port, "POST", &format!("/{OPS}"), &owned(&h), body)
}

/// An aws-chunked PUT whose chunks hold 10 of the 100 bytes its
/// `x-amz-decoded-content-length` announces.
fn short_body(e: &Env) -> Response {
    let target = format!("/{OPS}/codes-short");
    let mode = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
    let body = b"a\r\n0123456789\r\n0\r\n\r\n";
    let h = vec![
        ("host".into(), e.host()),
        ("x-amz-content-sha256".into(), mode.into()),
        ("content-encoding".into(), "aws-chunked".into()),
        ("x-amz-decoded-content-length".into(), "100".into()),
        ("content-length".into(), body.len().to_string()),
    ];
    let (h, _) = alice_signer().sign_headers("PUT", &target, h, mode);
    send(e.gateway.port, "PUT", &target, &h, body)
}

fn unknown_key(e: &Env) -> Response {
    e.signed_by(
        &signer_for("AKIANOBODY0000000000", ALICE_SECRET),
        "GET",
        &format!("/{OPS}/k"),
        &[],
        b"",
    )
}

fn bad_list_type(e: &Env) -> Response {
    e.signed("GET", &format!("/{OPS}?list-type=3"), &[], b"")
}

fn bad_bucket_name(e: &Env) -> Response {
    e.signed("GET", "/Not_A_Bucket/k", &[], b"")
}

fn copy_source_on_get(e: &Env) -> Response {
    e.signed(
        "GET",
        &format!("/{OPS}/k"),
        &[("x-amz-copy-source", "/ops/other")],
        b"",
    )
}

fn key_too_long(e: &Env) -> Response {
    e.signed("PUT", &format!("/{OPS}/{}", "k".repeat(1025)), &[], b"x")
}

fn delete_objects_garbage(e: &Env) -> Response {
    e.signed(
        "POST",
        &format!("/{OPS}?delete"),
        &[("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")],
        b"<Delete><Object>",
    )
}

fn aws_chunked_without_decoded_length(e: &Env) -> Response {
    let target = format!("/{OPS}/codes-chunked");
    let mode = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
    let h = vec![
        ("host".into(), e.host()),
        ("x-amz-content-sha256".into(), mode.into()),
        ("content-encoding".into(), "aws-chunked".into()),
        ("content-length".into(), "5".into()),
    ];
    let (h, _) = alice_signer().sign_headers("PUT", &target, h, mode);
    send(e.gateway.port, "PUT", &target, &h, b"0\r\n\r\n")
}

fn location_of_missing_bucket(e: &Env) -> Response {
    e.signed("GET", &format!("/{GHOST}?location"), &[], b"")
}

fn upload_id_other_case(e: &Env) -> Response {
    let r = e.signed("POST", &format!("/{OPS}/codes-mp?uploads"), &[], b"");
    let id = r
        .body
        .split("<UploadId>")
        .nth(1)
        .and_then(|x| x.split("</UploadId>").next())
        .expect("UploadId");
    let other = if id.to_ascii_uppercase() != id {
        id.to_ascii_uppercase()
    } else {
        id.to_ascii_lowercase()
    };
    assert_ne!(other, id, "an upload id with letters");
    e.signed(
        "PUT",
        &format!("/{OPS}/codes-mp?partNumber=1&uploadId={other}"),
        &[],
        b"part",
    )
}

fn post_cors(e: &Env) -> Response {
    e.signed("POST", &format!("/{OPS}?cors"), &[], b"")
}

fn huge_head(e: &Env) -> Response {
    let pad = "b".repeat(20 * 1024);
    send(
        e.gateway.port,
        "GET",
        &format!("/{OPS}/k"),
        &owned(&[("host", e.host()), ("x-pad", pad)]),
        b"",
    )
}

fn skewed(e: &Env) -> Response {
    let s = Signer {
        time: SystemTime::now() - Duration::from_secs(3600),
        ..alice_signer()
    };
    e.signed_by(&s, "GET", &format!("/{OPS}/k"), &[], b"")
}

fn wrong_secret(e: &Env) -> Response {
    e.signed_by(
        &signer_for(ALICE_KEY, "not-the-secret"),
        "GET",
        &format!("/{OPS}/k"),
        &[],
        b"",
    )
}

fn sha_mismatch(e: &Env) -> Response {
    let target = format!("/{OPS}/codes-sha");
    let sha = sha256_hex(b"another body");
    let h = vec![
        ("host".into(), e.host()),
        ("x-amz-content-sha256".into(), sha.clone()),
        ("content-length".into(), "4".into()),
    ];
    let (h, _) = alice_signer().sign_headers("PUT", &target, h, &sha);
    send(e.gateway.port, "PUT", &target, &h, b"body")
}

fn upstream_down(e: &Env) -> Response {
    e.signed("GET", &format!("/{DOWN}/k"), &[], b"")
}

/// A gateway of its own for the connection limits (one connection, heads
/// within one second), in front of the same Garage.
fn limited() -> &'static Gateway {
    static GW: OnceLock<Gateway> = OnceLock::new();
    GW.get_or_init(|| {
        let e = env();
        GatewayConfig::new(&e.garage)
            .alice_and_bob()
            .bucket("*", BucketRule::upstream("garage"))
            .limits(
                Limits::default()
                    .max_connections(1)
                    .request_head_timeout("1s"),
            )
            .start(&e.dir.join("limited"))
    })
}

fn slow_head(_: &Env) -> Response {
    let mut s = TcpStream::connect(("127.0.0.1", limited().port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    s.write_all(b"GET /ops-real/k HTTP/1.1\r\nhost: x\r\n")
        .expect("write");
    read_response(&mut s)
}

fn beyond_connection_limit(_: &Env) -> Response {
    let port = limited().port;
    // One connection served and kept: it holds the only permit.
    let mut held = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    held.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let (h, _) = alice_signer().sign_headers(
        "HEAD",
        "/ops-real",
        vec![
            ("host".into(), format!("127.0.0.1:{port}")),
            ("x-amz-content-sha256".into(), sha256_hex(b"")),
        ],
        &sha256_hex(b""),
    );
    let mut head = "HEAD /ops-real HTTP/1.1\r\n".to_string();
    for (n, v) in &h {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    held.write_all(head.as_bytes()).expect("write");
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") && held.read(&mut byte).unwrap_or(0) == 1 {
        got.push(byte[0]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    let mut extra = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    extra.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let r = read_response(&mut extra);
    drop(held);
    r
}

fn read_response(s: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Response {
        status,
        headers: Vec::new(),
        body: body.to_string(),
    }
}

fn owned<V: ToString>(h: &[(&str, V)]) -> Vec<(String, String)> {
    h.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}
