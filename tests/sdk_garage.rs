//! aws-sdk-s3 through the gateway to Garage (which checks signatures):
//! multipart lifecycle, abort, listings, presigned URLs, both addressing
//! styles and awkward keys.

mod common;

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::{data, env, unique};

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn multipart_lifecycle_three_parts_last_small() {
    let e = env();
    let c = e.alice();
    let key = unique("mp/lifecycle");
    let parts = [data(5 * MIB, 1), data(5 * MIB, 2), data(1000, 3)];
    let up = c
        .create_multipart_upload()
        .bucket("sdk")
        .key(&key)
        .send()
        .await
        .expect("create");
    let id = up.upload_id().expect("upload id").to_string();
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let r = c
            .upload_part()
            .bucket("sdk")
            .key(&key)
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(p.clone()))
            .send()
            .await
            .expect("upload part");
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().expect("etag"))
                .build(),
        );
    }
    let listed = c
        .list_parts()
        .bucket("sdk")
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("list parts");
    let sizes: Vec<i64> = listed
        .parts()
        .iter()
        .map(|p| p.size().unwrap_or(0))
        .collect();
    assert_eq!(sizes, vec![5 * MIB as i64, 5 * MIB as i64, 1000]);
    c.complete_multipart_upload()
        .bucket("sdk")
        .key(&key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .expect("complete");
    let got = c
        .get_object()
        .bucket("sdk")
        .key(&key)
        .send()
        .await
        .expect("get")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    assert_eq!(got.len(), 10 * MIB + 1000);
    assert!(got == parts.concat(), "object bytes differ");
}

#[tokio::test]
async fn abort_and_list_multipart_uploads() {
    let e = env();
    let c = e.alice();
    let prefix = unique("mp/abort");
    let a = c
        .create_multipart_upload()
        .bucket("sdk")
        .key(format!("{prefix}/a"))
        .send()
        .await
        .expect("create a");
    let b = c
        .create_multipart_upload()
        .bucket("sdk")
        .key(format!("{prefix}/b"))
        .send()
        .await
        .expect("create b");
    let (ida, idb) = (
        a.upload_id().expect("id").to_string(),
        b.upload_id().expect("id").to_string(),
    );
    c.upload_part()
        .bucket("sdk")
        .key(format!("{prefix}/a"))
        .upload_id(&ida)
        .part_number(1)
        .body(ByteStream::from(data(1024, 9)))
        .send()
        .await
        .expect("part");
    let listed = c
        .list_multipart_uploads()
        .bucket("sdk")
        .prefix(&prefix)
        .send()
        .await
        .expect("list uploads");
    let mut ids: Vec<&str> = listed
        .uploads()
        .iter()
        .filter_map(|u| u.upload_id())
        .collect();
    ids.sort();
    let mut want = vec![ida.as_str(), idb.as_str()];
    want.sort();
    assert_eq!(
        ids, want,
        "ListMultipartUploads returns exactly the ids Create returned"
    );
    c.abort_multipart_upload()
        .bucket("sdk")
        .key(format!("{prefix}/a"))
        .upload_id(&ida)
        .send()
        .await
        .expect("abort");
    let err = c
        .list_parts()
        .bucket("sdk")
        .key(format!("{prefix}/a"))
        .upload_id(&ida)
        .send()
        .await
        .expect_err("aborted upload is gone");
    assert_eq!(err.into_service_error().meta().code(), Some("NoSuchUpload"));
    // Upstream agrees.
    let direct = e
        .direct()
        .list_multipart_uploads()
        .bucket("sdk")
        .prefix(&prefix)
        .send()
        .await
        .expect("direct list");
    let left: Vec<&str> = direct
        .uploads()
        .iter()
        .filter_map(|u| u.upload_id())
        .collect();
    assert_eq!(left, vec![idb.as_str()]);
    c.abort_multipart_upload()
        .bucket("sdk")
        .key(format!("{prefix}/b"))
        .upload_id(&idb)
        .send()
        .await
        .expect("abort b");
}

#[tokio::test]
async fn presigned_get_and_put() {
    let e = env();
    let c = e.alice();
    let key = unique("presigned/obj");
    let body = data(70_000, 4);
    let put = c
        .put_object()
        .bucket("sdk")
        .key(&key)
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("cfg"))
        .await
        .expect("presign put");
    let http = reqwest_like_put(put.uri(), &body).await;
    assert_eq!(http, 200, "presigned PUT");
    let get = c
        .get_object()
        .bucket("sdk")
        .key(&key)
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).expect("cfg"))
        .await
        .expect("presign get");
    let (status, got) = plain_get(get.uri()).await;
    assert_eq!(status, 200);
    assert!(got == body, "presigned GET returns the object");
}

/// A bare HTTP client (no SDK, no signing) for presigned URLs.
async fn reqwest_like_put(url: &str, body: &[u8]) -> u16 {
    let (port, target) = split_url(url);
    let headers = vec![
        ("host".to_string(), format!("127.0.0.1:{port}")),
        ("content-length".to_string(), body.len().to_string()),
    ];
    let body = body.to_vec();
    tokio::task::spawn_blocking(move || {
        common::raw::send(port, "PUT", &target, &headers, &body).status
    })
    .await
    .expect("join")
}

async fn plain_get(url: &str) -> (u16, Vec<u8>) {
    let (port, target) = split_url(url);
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        write!(
            s,
            "GET {target} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\r\n"
        )
        .expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read");
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
        let status = std::str::from_utf8(&raw[9..12])
            .expect("status")
            .parse()
            .expect("status");
        (status, raw[split..].to_vec())
    })
    .await
    .expect("join")
}

fn split_url(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://127.0.0.1:").expect("gateway url");
    let (port, target) = rest.split_once('/').expect("path");
    (port.parse().expect("port"), format!("/{target}"))
}

#[tokio::test]
async fn virtual_hosted_and_path_style() {
    let e = env();
    let key = unique("style/obj");
    e.alice_virtual()
        .put_object()
        .bucket("sdk")
        .key(&key)
        .body(ByteStream::from_static(b"virtual"))
        .send()
        .await
        .expect("virtual put");
    let got = e
        .alice()
        .get_object()
        .bucket("sdk")
        .key(&key)
        .send()
        .await
        .expect("path get")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    assert_eq!(&got[..], b"virtual");
    let listed = e
        .alice_virtual()
        .list_objects_v2()
        .bucket("sdk")
        .prefix(&key)
        .send()
        .await
        .expect("virtual list");
    assert_eq!(listed.contents().len(), 1);
}

#[tokio::test]
async fn awkward_keys_round_trip() {
    let e = env();
    let c = e.alice();
    let base = unique("keys");
    let keys = [
        "with space",
        "plus+sign",
        "equals=sign",
        "percent%25literal",
        "100%",
        "tilde~x",
        "ünïcödé/日本語",
        "double//slash",
        "dots/../up",
        "./here",
        "amp&and?q#h",
    ];
    for k in keys {
        let key = format!("{base}/{k}");
        c.put_object()
            .bucket("sdk")
            .key(&key)
            .body(ByteStream::from(k.as_bytes().to_vec()))
            .send()
            .await
            .unwrap_or_else(|err| panic!("put {key:?}: {err:?}"));
        let got = c
            .get_object()
            .bucket("sdk")
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|err| panic!("get {key:?}: {err:?}"))
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        assert_eq!(&got[..], k.as_bytes(), "{key:?}");
        // Stored under exactly that key upstream.
        e.direct()
            .head_object()
            .bucket("sdk")
            .key(&key)
            .send()
            .await
            .unwrap_or_else(|err| panic!("direct head {key:?}: {err:?}"));
    }
    let listed = c
        .list_objects_v2()
        .bucket("sdk")
        .prefix(format!("{base}/"))
        .send()
        .await
        .expect("list");
    assert_eq!(listed.contents().len(), keys.len());
}

#[tokio::test]
async fn bucket_target_rename() {
    let e = env();
    let key = unique("renamed/obj");
    e.alice()
        .put_object()
        .bucket("visible")
        .key(&key)
        .body(ByteStream::from_static(b"renamed"))
        .send()
        .await
        .expect("put via visible");
    let got = e
        .direct()
        .get_object()
        .bucket("renamed")
        .key(&key)
        .send()
        .await
        .expect("direct get")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    assert_eq!(&got[..], b"renamed");
}
