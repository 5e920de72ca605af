//! Policies and bucket rules through the real gateway to Garage (which
//! ignores x-amz-expected-bucket-owner, as COS does): enforce, require,
//! inject (shown with an upstream that records what it gets), request
//! payer rules, and allowed/denied multipart operations checked upstream.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_s3::primitives::ByteStream;
use common::{
    client, code, start_garage, unique, BucketRule, Credentials, Garage, Gateway, GatewayConfig,
    Upstream, ALICE_KEY, ALICE_SECRET, BOB_KEY, BOB_SECRET,
};

const OWNER: &str = "111122223333";

struct Env {
    garage: Garage,
    gateway: Gateway,
    recorded: Arc<Mutex<Vec<String>>>,
    _dir: PathBuf,
}

/// An upstream that answers 200 to everything and records request heads.
fn recorder() -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let mut s = conn;
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            while !buf.ends_with(b"\r\n\r\n") {
                match s.read(&mut byte) {
                    Ok(1) => buf.push(byte[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&buf).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            let _ = s.read_exact(&mut body);
            if let Ok(mut g) = log.lock() {
                g.push(head.to_ascii_lowercase());
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (port, seen)
}

const POLICY: &str = r#"Version: "2012-10-17"
Statement:
  - Sid: AliceEverything
    Effect: Allow
    Principal: alice
    Action: "s3:*"
    Resource: "*"
  - Sid: BobWritesIngest
    Effect: Allow
    Principal: bob
    Action: [s3:PutObject, s3:ListMultipartUploadParts, s3:GetObject]
    Resource: arn:aws:s3:::pol/ingest/*
  - Sid: BobListsUploads
    Effect: Allow
    Principal: bob
    Action: s3:ListBucketMultipartUploads
    Resource: arn:aws:s3:::pol
"#;

fn env() -> &'static Env {
    static E: OnceLock<Env> = OnceLock::new();
    E.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("s3gate-policies-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let garage = start_garage(&dir, &["pol", "rules"]);
        let (rec_port, recorded) = recorder();
        let rules = || BucketRule::upstream("garage").target("rules");
        let gateway = GatewayConfig::new(&garage)
            .alice_and_bob()
            .upstream(
                "recorder",
                Upstream::s3_compatible(
                    format!("http://127.0.0.1:{rec_port}"),
                    Credentials::keys("R", "r"),
                )
                .region("us-east-1"),
            )
            .bucket("pol", BucketRule::upstream("garage"))
            .bucket("owner-enforce", rules().owner(OWNER, "enforce"))
            .bucket("owner-require", rules().owner(OWNER, "require"))
            .bucket(
                "owner-inject",
                BucketRule::upstream("recorder")
                    .target("recorded")
                    .owner(OWNER, "inject"),
            )
            .bucket("payer-deny", rules().request_payer("deny"))
            .bucket("payer-require", rules().request_payer("require"))
            .policy_file("main.yaml", POLICY)
            .start(&dir);
        Env {
            garage,
            gateway,
            recorded,
            _dir: dir,
        }
    })
}

fn alice() -> aws_sdk_s3::Client {
    client(
        &env().gateway.endpoint(),
        "us-east-1",
        ALICE_KEY,
        ALICE_SECRET,
        true,
    )
}
fn bob() -> aws_sdk_s3::Client {
    client(
        &env().gateway.endpoint(),
        "us-east-1",
        BOB_KEY,
        BOB_SECRET,
        true,
    )
}
fn direct() -> aws_sdk_s3::Client {
    let g = &env().garage;
    client(
        &g.endpoint,
        "garage",
        &g.access_key_id,
        &g.secret_access_key,
        true,
    )
}

/// Present upstream; absent only on 404 (any other failure panics).
async fn exists(bucket: &str, key: &str) -> bool {
    common::object_exists(&direct(), bucket, key).await
}

#[tokio::test]
async fn allowed_and_denied_multipart_operations() {
    let key = unique("ingest/mp");
    let up = bob()
        .create_multipart_upload()
        .bucket("pol")
        .key(&key)
        .send()
        .await
        .expect("bob may create under ingest/");
    let id = up.upload_id().expect("id").to_string();
    bob()
        .upload_part()
        .bucket("pol")
        .key(&key)
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from_static(b"part"))
        .send()
        .await
        .expect("bob uploads a part");
    bob()
        .list_parts()
        .bucket("pol")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("bob lists parts");
    // Bob may not abort: the upload stays upstream.
    let e = bob()
        .abort_multipart_upload()
        .bucket("pol")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect_err("bob may not abort");
    assert_eq!(code(&e.into_service_error()), Some("AccessDenied"));
    let parts = direct()
        .list_parts()
        .bucket("pol")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("upload still there");
    assert_eq!(parts.parts().len(), 1);
    // Bob may not start uploads outside ingest/.
    let other = unique("other/mp");
    let e = bob()
        .create_multipart_upload()
        .bucket("pol")
        .key(&other)
        .send()
        .await
        .expect_err("outside ingest/");
    assert_eq!(code(&e.into_service_error()), Some("AccessDenied"));
    let listed = direct()
        .list_multipart_uploads()
        .bucket("pol")
        .prefix(&other)
        .send()
        .await
        .expect("list");
    assert!(listed.uploads().is_empty());
    // Alice may abort.
    alice()
        .abort_multipart_upload()
        .bucket("pol")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("alice aborts");
    // Gone upstream: NoSuchUpload, not just any error.
    let gone = direct()
        .list_parts()
        .bucket("pol")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect_err("gone upstream")
        .into_service_error();
    assert_eq!(gone.meta().code(), Some("NoSuchUpload"), "{gone:?}");
    // The denial log names the deciding statement... or that none allowed it.
    let log = env().gateway.log();
    assert!(log.contains("access denied by policy"), "{log}");
}

#[tokio::test]
async fn expected_bucket_owner_enforce() {
    let key = unique("enforce");
    let e = alice()
        .put_object()
        .bucket("owner-enforce")
        .key(&key)
        .expected_bucket_owner("999999999999")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("wrong owner");
    assert_eq!(code(&e.into_service_error()), Some("AccessDenied"));
    assert!(!exists("rules", &key).await, "nothing changes upstream");
    alice()
        .put_object()
        .bucket("owner-enforce")
        .key(&key)
        .expected_bucket_owner(OWNER)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect("right owner");
    assert!(exists("rules", &key).await);
    // enforce lets a request without the header through.
    alice()
        .head_object()
        .bucket("owner-enforce")
        .key(&key)
        .send()
        .await
        .expect("no header");
}

#[tokio::test]
async fn expected_bucket_owner_require() {
    let key = unique("require");
    let e = alice()
        .put_object()
        .bucket("owner-require")
        .key(&key)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("no header");
    assert_eq!(code(&e.into_service_error()), Some("AccessDenied"));
    assert!(!exists("rules", &key).await);
    alice()
        .put_object()
        .bucket("owner-require")
        .key(&key)
        .expected_bucket_owner(OWNER)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect("with header");
}

#[tokio::test]
async fn expected_bucket_owner_inject() {
    let key = unique("inject");
    alice()
        .put_object()
        .bucket("owner-inject")
        .key(&key)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect("put");
    let seen = env().recorded.lock().map(|g| g.clone()).unwrap_or_default();
    let req = seen
        .iter()
        .find(|h| h.contains(&key.to_ascii_lowercase()))
        .expect("recorded the request");
    assert!(
        req.contains(&format!("x-amz-expected-bucket-owner: {OWNER}")),
        "{req}"
    );
    assert!(req.starts_with("put /recorded/"), "{req}");
}

#[tokio::test]
async fn request_payer_rules() {
    let key = unique("payer");
    let e = alice()
        .put_object()
        .bucket("payer-deny")
        .key(&key)
        .request_payer(aws_sdk_s3::types::RequestPayer::Requester)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("deny");
    assert_eq!(code(&e.into_service_error()), Some("AccessDenied"));
    alice()
        .put_object()
        .bucket("payer-deny")
        .key(&key)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect("no payer header");
    let e = alice()
        .get_object()
        .bucket("payer-require")
        .key(&key)
        .send()
        .await
        .expect_err("require");
    assert_eq!(code(&e.into_service_error()), Some("AccessDenied"));
    alice()
        .get_object()
        .bucket("payer-require")
        .key(&key)
        .request_payer(aws_sdk_s3::types::RequestPayer::Requester)
        .send()
        .await
        .expect("with payer");
}

/// Guarantees: "Headers that need more than the operation's own permission
/// are decided too": bob may PutObject under `ingest/`, and nothing more, so
/// each of these headers turns his PUT (or his CreateMultipartUpload) into
/// a denial, and nothing lands upstream.
#[tokio::test]
async fn headers_that_ask_for_more_need_their_own_permission() {
    use aws_sdk_s3::types::{ObjectCannedAcl, ObjectLockLegalHoldStatus, ObjectLockMode};
    let put = |key: &str| {
        bob()
            .put_object()
            .bucket("pol")
            .key(key)
            .body(ByteStream::from_static(b"more"))
    };
    // Control: the same PUT without the headers is allowed.
    let key = unique("ingest/plain");
    put(&key).send().await.expect("a plain PUT is allowed");
    assert!(exists("pol", &key).await);

    let until = aws_sdk_s3::primitives::DateTime::from_secs(4_102_444_800); // 2100-01-01
    let cases: Vec<(
        &str,
        aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder,
    )> = vec![
        (
            "x-amz-tagging (s3:PutObjectTagging)",
            put("t").tagging("a=b"),
        ),
        (
            "x-amz-acl (s3:PutObjectAcl)",
            put("t").acl(ObjectCannedAcl::Private),
        ),
        (
            "x-amz-grant-read (s3:PutObjectAcl)",
            put("t").grant_read("id=someone"),
        ),
        (
            "object-lock retention (s3:PutObjectRetention)",
            put("t")
                .object_lock_mode(ObjectLockMode::Governance)
                .object_lock_retain_until_date(until),
        ),
        (
            "object-lock legal hold (s3:PutObjectLegalHold)",
            put("t").object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On),
        ),
    ];
    for (what, builder) in cases {
        let key = unique("ingest/more");
        let e = builder
            .key(&key)
            .send()
            .await
            .expect_err(&format!("{what}: bob has no such permission"));
        assert_eq!(code(&e), Some("AccessDenied"), "{what}: {e:?}");
        assert!(!exists("pol", &key).await, "{what}: nothing lands");
    }
    // Bypassing governance retention is decided on any object request.
    let key = unique("ingest/bypass");
    let e = put(&key)
        .customize()
        .mutate_request(|r| {
            r.headers_mut()
                .insert("x-amz-bypass-governance-retention", "true");
        })
        .send()
        .await
        .expect_err("s3:BypassGovernanceRetention is not bob's");
    assert_eq!(code(&e), Some("AccessDenied"), "{e:?}");
    assert!(!exists("pol", &key).await);
    // A multipart upload asking for tags is decided the same way.
    let key = unique("ingest/mp-tagged");
    let e = bob()
        .create_multipart_upload()
        .bucket("pol")
        .key(&key)
        .tagging("a=b")
        .send()
        .await
        .expect_err("CreateMultipartUpload with x-amz-tagging");
    assert_eq!(code(&e), Some("AccessDenied"), "{e:?}");
}
