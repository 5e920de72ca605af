//! Every operation the gateway names that Garage implements, sent through
//! the gateway with aws-sdk-s3 and its effect checked on Garage directly;
//! the README's claims about refusals (`claims`) and every error code the
//! gateway answers with (`codes`), on one Garage and one gateway.
//!
//! Garage 2.5 implements ListBuckets, Create/Delete/HeadBucket, ListObjects
//! (v1 and v2), ListMultipartUploads, DeleteObjects, the object and
//! multipart operations, GetBucketLocation, GetBucketVersioning,
//! GetBucketAcl and the cors, lifecycle and website sub-resources; the
//! other sub-resources and ListObjectVersions go through moto in
//! e2e/test_every_operation.py.

#[path = "every_operation/buckets.rs"]
mod buckets;
#[path = "every_operation/claims.rs"]
mod claims;
#[path = "every_operation/codes.rs"]
mod codes;
mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::raw::{send, sha256_hex, Response, Signer};
use common::{
    client, data, start_garage, unique, ClosedPort, Credentials, Garage, Gateway, GatewayConfig,
    Upstream, ALICE_KEY, ALICE_SECRET, BOB_KEY, BOB_SECRET,
};

/// The client-visible bucket `ops` is Garage's `ops-real`.
pub const OPS: &str = "ops";
pub const OPS_UPSTREAM: &str = "ops-real";
/// In Garage but not in the gateway's config (and no `"*"` route).
pub const UNLISTED: &str = "unlisted-real";
/// Routed to Garage, but no such bucket there.
pub const GHOST: &str = "ghost";
/// Routed to an upstream that refuses connections.
pub const DOWN: &str = "down";

/// alice may do everything but read `ops/secret/*`; bob's rights are
/// written with NotAction and NotResource.
const POLICY: &str = r#"Version: "2012-10-17"
Statement:
  - Sid: AliceWorks
    Effect: Allow
    Principal: alice
    Action: "s3:*"
    Resource: "*"
  - Sid: NoSecretsForAlice
    Effect: Deny
    Principal: alice
    Action: s3:GetObject
    Resource: arn:aws:s3:::ops/secret/*
  - Sid: BobMayWriteAnywhere
    Effect: Allow
    Principal: bob
    Action: s3:PutObject
    Resource: arn:aws:s3:::ops/*
  - Sid: BobWritesOnlyHisPrefix
    Effect: Deny
    Principal: bob
    Action: s3:PutObject
    NotResource: arn:aws:s3:::ops/bob/*
  - Sid: BobDoesAllButDeleteInHisPrefix
    Effect: Allow
    Principal: bob
    NotAction: [s3:DeleteObject, s3:PutObjectTagging]
    Resource: arn:aws:s3:::ops/bob/*
"#;

pub struct Env {
    pub garage: Garage,
    pub gateway: Gateway,
    pub dir: PathBuf,
    /// The bucket CreateBucket makes (routed by name, like every bucket).
    pub fresh: String,
    _down: ClosedPort,
}

static ENV: OnceLock<Env> = OnceLock::new();

pub fn env() -> &'static Env {
    ENV.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("s3gate-every-op-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let garage = start_garage(&dir, &[OPS_UPSTREAM, UNLISTED]);
        // The test key may create buckets (CreateBucket through the gateway).
        let out = Command::new(&garage.bin)
            .args([
                "-c",
                &garage.config,
                "key",
                "allow",
                "--create-bucket",
                "tests",
            ])
            .output()
            .expect("garage key allow");
        assert!(out.status.success(), "{out:?}");
        let fresh = format!("fresh{}", std::process::id());
        let down = ClosedPort::new();
        let buckets = format!(
            r#"buckets:
  {OPS}:
    upstream: garage
    target: {OPS_UPSTREAM}
    cors:
      - allowed_origins: ["http://app.example.test"]
        allowed_methods: [GET, PUT]
  {fresh}: {{ upstream: garage }}
  {GHOST}: {{ upstream: garage }}
  {DOWN}: {{ upstream: down }}
"#
        );
        let gateway = GatewayConfig::new(&garage)
            .alice_and_bob()
            .upstream("garage", Upstream::garage(&garage).addressing("path"))
            .upstream(
                "down",
                Upstream::s3_compatible(
                    format!("http://127.0.0.1:{}", down.port()),
                    Credentials::keys("GKdown", "down-secret"),
                )
                .region("garage")
                .addressing("path"),
            )
            .policy(POLICY)
            .extra_yaml(&buckets)
            .start(&dir.join("gw"));
        Env {
            garage,
            gateway,
            dir,
            fresh,
            _down: down,
        }
    })
}

impl Env {
    pub fn alice(&self) -> aws_sdk_s3::Client {
        client(
            &self.gateway.endpoint(),
            "us-east-1",
            ALICE_KEY,
            ALICE_SECRET,
            true,
        )
    }
    pub fn bob(&self) -> aws_sdk_s3::Client {
        client(
            &self.gateway.endpoint(),
            "us-east-1",
            BOB_KEY,
            BOB_SECRET,
            true,
        )
    }
    /// Straight to Garage with its own key.
    pub fn direct(&self) -> aws_sdk_s3::Client {
        client(
            &self.garage.endpoint,
            "garage",
            &self.garage.access_key_id,
            &self.garage.secret_access_key,
            true,
        )
    }
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.gateway.port)
    }
    /// A request signed by alice (header SigV4, the body's SHA-256), with
    /// `extra` headers signed too.
    pub fn signed(
        &self,
        method: &str,
        target: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.signed_by(&alice_signer(), method, target, extra, body)
    }
    pub fn signed_by(
        &self,
        signer: &Signer<'_>,
        method: &str,
        target: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let sha = sha256_hex(body);
        let mut headers = vec![
            ("host".to_string(), self.host()),
            ("x-amz-content-sha256".to_string(), sha.clone()),
        ];
        if !body.is_empty() {
            headers.push(("content-length".to_string(), body.len().to_string()));
        }
        headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        let (headers, _) = signer.sign_headers(method, target, headers, &sha);
        send(self.gateway.port, method, target, &headers, body)
    }
    /// Whether `key` is in Garage's `bucket`.
    pub async fn upstream_has(&self, bucket: &str, key: &str) -> bool {
        self.direct()
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .is_ok()
    }
    /// The bytes of `key` in Garage's `bucket`.
    pub async fn upstream_bytes(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.direct()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("get upstream")
            .body
            .collect()
            .await
            .expect("body")
            .to_vec()
    }
}

pub fn alice_signer() -> Signer<'static> {
    Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: SystemTime::now(),
    }
}

#[tokio::test]
async fn object_operations() {
    let e = env();
    let alice = e.alice();
    let key = unique("obj/a");
    let body = data(70_000, 3);
    alice
        .put_object()
        .bucket(OPS)
        .key(&key)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .expect("PutObject");
    assert_eq!(e.upstream_bytes(OPS_UPSTREAM, &key).await, body);
    let got = alice
        .get_object()
        .bucket(OPS)
        .key(&key)
        .send()
        .await
        .expect("GetObject");
    assert_eq!(got.body.collect().await.expect("body").to_vec(), body);
    let head = alice
        .head_object()
        .bucket(OPS)
        .key(&key)
        .send()
        .await
        .expect("HeadObject");
    assert_eq!(head.content_length(), Some(body.len() as i64));
    // CopyObject: the client names the source by the visible bucket; the
    // copy lands (Garage has no bucket `ops`: the source was rewritten).
    let copy = unique("obj/copy");
    alice
        .copy_object()
        .bucket(OPS)
        .key(&copy)
        .copy_source(format!("{OPS}/{key}"))
        .send()
        .await
        .expect("CopyObject");
    assert_eq!(e.upstream_bytes(OPS_UPSTREAM, &copy).await, body);
    // DeleteObject.
    alice
        .delete_object()
        .bucket(OPS)
        .key(&key)
        .send()
        .await
        .expect("DeleteObject");
    assert!(!e.upstream_has(OPS_UPSTREAM, &key).await);
}

#[tokio::test]
async fn multipart_operations() {
    let e = env();
    let (alice, direct) = (e.alice(), e.direct());
    let src = unique("mp/src");
    let src_body = data(300_000, 9);
    direct
        .put_object()
        .bucket(OPS_UPSTREAM)
        .key(&src)
        .body(ByteStream::from(src_body.clone()))
        .send()
        .await
        .expect("source");
    let key = unique("mp/obj");
    let id = alice
        .create_multipart_upload()
        .bucket(OPS)
        .key(&key)
        .send()
        .await
        .expect("CreateMultipartUpload")
        .upload_id()
        .expect("id")
        .to_string();
    let part1 = data(5 << 20, 1);
    let p1 = alice
        .upload_part()
        .bucket(OPS)
        .key(&key)
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(part1.clone()))
        .send()
        .await
        .expect("UploadPart");
    // UploadPartCopy: a range of the source, named by the visible bucket.
    let p2 = alice
        .upload_part_copy()
        .bucket(OPS)
        .key(&key)
        .upload_id(&id)
        .part_number(2)
        .copy_source(format!("{OPS}/{src}"))
        .copy_source_range("bytes=100-199999")
        .send()
        .await
        .expect("UploadPartCopy");
    let parts = alice
        .list_parts()
        .bucket(OPS)
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("ListParts");
    assert_eq!(parts.parts().len(), 2);
    let ups = alice
        .list_multipart_uploads()
        .bucket(OPS)
        .prefix(&key)
        .send()
        .await
        .expect("ListMultipartUploads");
    assert_eq!(ups.uploads()[0].upload_id(), Some(id.as_str()));
    let done = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(p1.e_tag().expect("etag"))
                .build(),
        )
        .parts(
            CompletedPart::builder()
                .part_number(2)
                .e_tag(
                    p2.copy_part_result()
                        .and_then(|c| c.e_tag())
                        .expect("copy etag"),
                )
                .build(),
        )
        .build();
    alice
        .complete_multipart_upload()
        .bucket(OPS)
        .key(&key)
        .upload_id(&id)
        .multipart_upload(done)
        .send()
        .await
        .expect("CompleteMultipartUpload");
    let mut expected = part1;
    expected.extend_from_slice(&src_body[100..200_000]);
    assert!(e.upstream_bytes(OPS_UPSTREAM, &key).await == expected);

    // AbortMultipartUpload: the upload is gone upstream.
    let other = unique("mp/aborted");
    let id = alice
        .create_multipart_upload()
        .bucket(OPS)
        .key(&other)
        .send()
        .await
        .expect("create")
        .upload_id()
        .expect("id")
        .to_string();
    alice
        .abort_multipart_upload()
        .bucket(OPS)
        .key(&other)
        .upload_id(&id)
        .send()
        .await
        .expect("AbortMultipartUpload");
    let left = direct
        .list_multipart_uploads()
        .bucket(OPS_UPSTREAM)
        .prefix(&other)
        .send()
        .await
        .expect("list");
    assert!(left.uploads().is_empty());
}
