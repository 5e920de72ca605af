//! The README's refusals, each seen by its effect on Garage.

use aws_sdk_s3::primitives::ByteStream;
use aws_sigv4::sign::v4;

use super::common::raw::{send, sha256_hex, Signer};
use super::common::{code, unique, ALICE_KEY, ALICE_SECRET};
use super::{alice_signer, env, OPS, OPS_UPSTREAM, UNLISTED};

/// "every `x-amz-*` header … appear once": a second copy is refused, and
/// nothing lands.
#[tokio::test]
async fn duplicate_amz_header_is_refused() {
    let e = env();
    let key = unique("claims/dup");
    let r = e.signed(
        "PUT",
        &format!("/{OPS}/{key}"),
        &[("x-amz-meta-a", "one"), ("x-amz-meta-a", "two")],
        b"body",
    );
    assert_eq!(
        (r.status, r.code().as_deref()),
        (400, Some("InvalidArgument")),
        "{}",
        r.body
    );
    assert!(r.body.contains("appears more than once"), "{}", r.body);
    assert!(!e.upstream_has(OPS_UPSTREAM, &key).await);
    // The same request with the header once lands.
    let r = e.signed(
        "PUT",
        &format!("/{OPS}/{key}"),
        &[("x-amz-meta-a", "one")],
        b"body",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(e.upstream_has(OPS_UPSTREAM, &key).await);
}

/// "… must be visible ASCII": a UTF-8 `x-amz-meta-*` value is refused.
#[tokio::test]
async fn non_ascii_amz_header_is_refused() {
    let e = env();
    let key = unique("claims/utf8");
    let r = e.signed(
        "PUT",
        &format!("/{OPS}/{key}"),
        &[("x-amz-meta-note", "caf\u{e9}")],
        b"body",
    );
    assert_eq!(
        (r.status, r.code().as_deref()),
        (400, Some("InvalidArgument")),
        "{}",
        r.body
    );
    assert!(r.body.contains("must be ASCII"), "{}", r.body);
    assert!(!e.upstream_has(OPS_UPSTREAM, &key).await);
}

/// "without it (`*`) unlisted buckets are refused": a bucket Garage has but
/// the config does not name is refused (AccessDenied), nothing written.
#[tokio::test]
async fn unlisted_bucket_is_refused_without_catch_all() {
    let e = env();
    let key = unique("claims/unlisted");
    let err = e
        .alice()
        .put_object()
        .bucket(UNLISTED)
        .key(&key)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("refused");
    assert_eq!(code(&err), Some("AccessDenied"), "{err:?}");
    assert!(!e.upstream_has(UNLISTED, &key).await);
    let err = e
        .alice()
        .list_objects_v2()
        .bucket(UNLISTED)
        .send()
        .await
        .expect_err("refused");
    assert_eq!(code(&err), Some("AccessDenied"));
}

/// "UploadPartCopy and CopyObject also need s3:GetObject on the source":
/// alice may write `ops/*` but not read `ops/secret/*`; copying a secret
/// is refused, and neither an object nor a part appears.
#[tokio::test]
async fn copy_source_is_authorized() {
    let e = env();
    let (alice, direct) = (e.alice(), e.direct());
    let secret = unique("secret/s");
    direct
        .put_object()
        .bucket(OPS_UPSTREAM)
        .key(&secret)
        .body(ByteStream::from(vec![7u8; 1000]))
        .send()
        .await
        .expect("source");
    let dest = unique("claims/copied");
    let err = alice
        .copy_object()
        .bucket(OPS)
        .key(&dest)
        .copy_source(format!("{OPS}/{secret}"))
        .send()
        .await
        .expect_err("CopyObject of a secret");
    assert_eq!(code(&err), Some("AccessDenied"), "{err:?}");
    assert!(!e.upstream_has(OPS_UPSTREAM, &dest).await);

    let id = alice
        .create_multipart_upload()
        .bucket(OPS)
        .key(&dest)
        .send()
        .await
        .expect("create")
        .upload_id()
        .expect("id")
        .to_string();
    let err = alice
        .upload_part_copy()
        .bucket(OPS)
        .key(&dest)
        .upload_id(&id)
        .part_number(1)
        .copy_source(format!("{OPS}/{secret}"))
        .send()
        .await
        .expect_err("UploadPartCopy of a secret");
    assert_eq!(code(&err), Some("AccessDenied"), "{err:?}");
    let parts = direct
        .list_parts()
        .bucket(OPS_UPSTREAM)
        .key(&dest)
        .upload_id(&id)
        .send()
        .await
        .expect("ListParts upstream");
    assert!(parts.parts().is_empty(), "{parts:?}");
    // The same copy from a readable source works (and was rewritten to
    // Garage's bucket name: Garage has no `ops`).
    let readable = unique("claims/readable");
    direct
        .put_object()
        .bucket(OPS_UPSTREAM)
        .key(&readable)
        .body(ByteStream::from(vec![8u8; 300_000]))
        .send()
        .await
        .expect("source");
    alice
        .upload_part_copy()
        .bucket(OPS)
        .key(&dest)
        .upload_id(&id)
        .part_number(1)
        .copy_source(format!("{OPS}/{readable}"))
        .copy_source_range("bytes=0-99")
        .send()
        .await
        .expect("UploadPartCopy of a readable source");
    alice
        .abort_multipart_upload()
        .bucket(OPS)
        .key(&dest)
        .upload_id(&id)
        .send()
        .await
        .expect("abort");
}

/// "A request signed for another region gets AuthorizationHeaderMalformed",
/// naming the gateway's region as S3 does.
#[tokio::test]
async fn region_mismatch_names_the_gateway_region() {
    let e = env();
    let key = unique("claims/region");
    let s = Signer {
        region: "eu-west-1",
        ..alice_signer()
    };
    let r = e.signed_by(&s, "PUT", &format!("/{OPS}/{key}"), &[], b"body");
    assert_eq!(
        (r.status, r.code().as_deref()),
        (400, Some("AuthorizationHeaderMalformed")),
        "{}",
        r.body
    );
    assert!(r.body.contains("<Region>us-east-1</Region>"), "{}", r.body);
    assert!(!e.upstream_has(OPS_UPSTREAM, &key).await);
}

/// "the rule that `host` … must be signed": a correct signature whose
/// SignedHeaders leave out host is refused, and nothing lands.
#[tokio::test]
async fn host_must_be_signed() {
    let e = env();
    let key = unique("claims/nohost");
    let target = format!("/{OPS}/{key}");
    let body = b"body";
    let sha = sha256_hex(body);
    // The date as aws-sigv4 writes it, from a normal signature.
    let s = alice_signer();
    let (h, _) = s.sign_headers(
        "PUT",
        &target,
        vec![
            ("host".into(), e.host()),
            ("x-amz-content-sha256".into(), sha.clone()),
        ],
        &sha,
    );
    let amz_date = h
        .iter()
        .find(|(n, _)| n == "x-amz-date")
        .map(|(_, v)| v.clone())
        .expect("x-amz-date");
    let date = &amz_date[..8];
    let signed = "content-length;x-amz-content-sha256;x-amz-date";
    let canonical = format!(
        "PUT\n{target}\n\ncontent-length:{}\nx-amz-content-sha256:{sha}\nx-amz-date:{amz_date}\n\n{signed}\n{sha}",
        body.len()
    );
    let scope = format!("{date}/us-east-1/s3/aws4_request");
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let key_bytes = v4::generate_signing_key(ALICE_SECRET, s.time, "us-east-1", "s3");
    let signature = v4::calculate_signature(key_bytes, sts.as_bytes());
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={ALICE_KEY}/{scope}, SignedHeaders={signed}, Signature={signature}"
    );
    let headers = vec![
        ("host".to_string(), e.host()),
        ("content-length".to_string(), body.len().to_string()),
        ("x-amz-content-sha256".to_string(), sha),
        ("x-amz-date".to_string(), amz_date),
        ("authorization".to_string(), auth),
    ];
    let r = send(e.gateway.port, "PUT", &target, &headers, body);
    assert_eq!(
        (r.status, r.code().as_deref()),
        (403, Some("AccessDenied")),
        "{}",
        r.body
    );
    assert!(r.body.contains("host header must be signed"), "{}", r.body);
    assert!(!e.upstream_has(OPS_UPSTREAM, &key).await);
}

/// NotAction and NotResource, through the gateway, decided as IAM does:
/// bob may do everything but DeleteObject (and PutObjectTagging) under
/// `ops/bob/` (Allow + NotAction), and may PutObject only there (an Allow
/// on `ops/*` cut down by Deny + NotResource).
#[tokio::test]
async fn not_action_and_not_resource_decide_as_iam() {
    let e = env();
    let bob = e.bob();
    let mine = format!("bob/{}", unique("n"));
    let elsewhere = unique("claims/not-bob");
    // NotResource: in his prefix the Allow stands.
    bob.put_object()
        .bucket(OPS)
        .key(&mine)
        .body(ByteStream::from_static(b"bob's"))
        .send()
        .await
        .expect("PutObject in bob/");
    assert!(e.upstream_has(OPS_UPSTREAM, &mine).await);
    // … outside it the Deny's NotResource matches.
    let err = bob
        .put_object()
        .bucket(OPS)
        .key(&elsewhere)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect_err("PutObject outside bob/");
    assert_eq!(code(&err), Some("AccessDenied"));
    assert!(!e.upstream_has(OPS_UPSTREAM, &elsewhere).await);
    // NotAction: GetObject is not excluded, so allowed…
    let got = bob
        .get_object()
        .bucket(OPS)
        .key(&mine)
        .send()
        .await
        .expect("GetObject via NotAction");
    assert_eq!(got.body.collect().await.expect("body").to_vec(), b"bob's");
    // … DeleteObject is excluded (and nothing else allows it).
    let err = bob
        .delete_object()
        .bucket(OPS)
        .key(&mine)
        .send()
        .await
        .expect_err("DeleteObject is NotAction'd");
    assert_eq!(code(&err), Some("AccessDenied"));
    assert!(e.upstream_has(OPS_UPSTREAM, &mine).await);
    // NotAction's resource still limits: GetObject outside bob/ is denied.
    let err = bob
        .get_object()
        .bucket(OPS)
        .key(&elsewhere)
        .send()
        .await
        .expect_err("GetObject outside bob/");
    assert_eq!(code(&err), Some("AccessDenied"));
}

/// "Clients learn nothing about the upstream": an upstream error names the
/// gateway's region and the client's bucket, not Garage's region and the
/// route's `target`.
#[tokio::test]
async fn upstream_errors_name_the_gateway_region_and_the_client_bucket() {
    let e = env();
    let key = unique("claims/missing");
    let r = e.signed("GET", &format!("/{OPS}/{key}"), &[], b"");
    assert_eq!(
        (r.status, r.code().as_deref()),
        (404, Some("NoSuchKey")),
        "{}",
        r.body
    );
    assert!(r.body.contains("<Region>us-east-1</Region>"), "{}", r.body);
    assert!(
        r.body
            .contains(&format!("<Resource>/{OPS}/{key}</Resource>")),
        "{}",
        r.body
    );
    assert!(
        !r.body.contains(OPS_UPSTREAM) && !r.body.contains(">garage<"),
        "{}",
        r.body
    );
}

/// "The ownership store's bucket and prefix are refused to every client
/// request, including keys of a DeleteObjects body": with the store under a
/// prefix of a routed bucket, a DeleteObjects naming a record and an
/// ordinary key deletes the ordinary key only; the record stays upstream.
#[tokio::test]
async fn delete_objects_never_reaches_the_ownership_records_in_a_shared_bucket() {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    const STATE: &str = "s3gate-state/";
    let e = env();
    let gw = super::common::GatewayConfig::new(&e.garage)
        .alice_and_bob()
        .upstream(
            "garage",
            super::common::Upstream::garage(&e.garage).addressing("path"),
        )
        .ownership_s3("garage", OPS_UPSTREAM, STATE)
        .extra_yaml(&format!(
            "buckets:\n  {OPS}: {{ upstream: garage, target: {OPS_UPSTREAM} }}\n"
        ))
        .start(&e.dir.join("gw-shared-state"));
    let alice = super::common::client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    let key = unique("claims/shared-state");
    let upload = alice
        .create_multipart_upload()
        .bucket(OPS)
        .key(&key)
        .send()
        .await
        .expect("create");
    let upload_id = upload.upload_id().expect("upload id").to_string();
    let direct = e.direct();
    let records: Vec<String> = direct
        .list_objects_v2()
        .bucket(OPS_UPSTREAM)
        .prefix(STATE)
        .send()
        .await
        .expect("list records")
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    let record = records.first().expect("a record under the prefix").clone();
    let plain = unique("claims/plain");
    alice
        .put_object()
        .bucket(OPS)
        .key(&plain)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect("put");

    let ids = [&record, &plain]
        .iter()
        .map(|k| {
            ObjectIdentifier::builder()
                .key(k.as_str())
                .build()
                .expect("id")
        })
        .collect::<Vec<_>>();
    let out = alice
        .delete_objects()
        .bucket(OPS)
        .delete(
            Delete::builder()
                .set_objects(Some(ids))
                .build()
                .expect("delete"),
        )
        .send()
        .await
        .expect("delete objects");
    let refused: Vec<(&str, &str)> = out
        .errors()
        .iter()
        .map(|er| (er.key().unwrap_or(""), er.code().unwrap_or("")))
        .collect();
    assert_eq!(refused, vec![(record.as_str(), "AccessDenied")], "{out:?}");
    assert!(
        !e.upstream_has(OPS_UPSTREAM, &plain).await,
        "the plain key is deleted"
    );
    assert!(
        e.upstream_has(OPS_UPSTREAM, &record).await,
        "the ownership record stays"
    );
    alice
        .abort_multipart_upload()
        .bucket(OPS)
        .key(&key)
        .upload_id(&upload_id)
        .send()
        .await
        .expect("abort");
}
