//! Bucket operations and the bucket sub-resources Garage implements, on a
//! bucket made through the gateway.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, CorsConfiguration, CorsRule, Delete, ExpirationStatus,
    IndexDocument, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter, ObjectIdentifier,
    WebsiteConfiguration,
};

use super::{env, OPS, UNLISTED};

#[tokio::test]
async fn bucket_operations_and_their_sub_resources() {
    let e = env();
    let (alice, direct, b) = (e.alice(), e.direct(), e.fresh.as_str());

    // CreateBucket: the bucket exists in Garage.
    alice
        .create_bucket()
        .bucket(b)
        .send()
        .await
        .expect("create");
    direct
        .head_bucket()
        .bucket(b)
        .send()
        .await
        .expect("in garage");
    alice
        .head_bucket()
        .bucket(b)
        .send()
        .await
        .expect("HeadBucket");

    // ListBuckets (no "*" route: the gateway's own list of routed buckets).
    let names: Vec<String> = alice
        .list_buckets()
        .send()
        .await
        .expect("ListBuckets")
        .buckets()
        .iter()
        .filter_map(|x| x.name().map(str::to_string))
        .collect();
    assert!(names.iter().any(|n| n == OPS) && names.iter().any(|n| n == b));
    assert!(!names.iter().any(|n| n == UNLISTED), "{names:?}");

    // GetBucketLocation: the gateway's region (empty for us-east-1).
    let loc = alice
        .get_bucket_location()
        .bucket(b)
        .send()
        .await
        .expect("GetBucketLocation");
    assert!(loc
        .location_constraint()
        .is_none_or(|c| c.as_str().is_empty()));
    // GetBucketVersioning: Garage keeps no versions (no status).
    let v = alice
        .get_bucket_versioning()
        .bucket(b)
        .send()
        .await
        .expect("GetBucketVersioning");
    assert!(v.status().is_none());
    // GetBucketAcl: Garage's owner grant.
    let acl = alice.get_bucket_acl().bucket(b).send().await.expect("acl");
    assert!(!acl.grants().is_empty());

    // Cors: put, read back (through the gateway and in Garage), delete.
    let cors = CorsConfiguration::builder()
        .cors_rules(
            CorsRule::builder()
                .allowed_methods("GET")
                .allowed_origins("http://x.test")
                .build()
                .expect("rule"),
        )
        .build()
        .expect("cors");
    alice
        .put_bucket_cors()
        .bucket(b)
        .cors_configuration(cors)
        .send()
        .await
        .expect("PutBucketCors");
    let got = direct
        .get_bucket_cors()
        .bucket(b)
        .send()
        .await
        .expect("cors");
    assert_eq!(got.cors_rules()[0].allowed_origins(), ["http://x.test"]);
    let got = alice
        .get_bucket_cors()
        .bucket(b)
        .send()
        .await
        .expect("GetBucketCors");
    assert_eq!(got.cors_rules().len(), 1);
    alice
        .delete_bucket_cors()
        .bucket(b)
        .send()
        .await
        .expect("DeleteBucketCors");
    assert!(direct.get_bucket_cors().bucket(b).send().await.is_err());

    // Lifecycle.
    let rule = LifecycleRule::builder()
        .id("tmp")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("tmp/").build())
        .expiration(LifecycleExpiration::builder().days(3).build())
        .build()
        .expect("rule");
    let lc = BucketLifecycleConfiguration::builder()
        .rules(rule)
        .build()
        .expect("lifecycle");
    alice
        .put_bucket_lifecycle_configuration()
        .bucket(b)
        .lifecycle_configuration(lc)
        .send()
        .await
        .expect("PutBucketLifecycleConfiguration");
    let got = direct
        .get_bucket_lifecycle_configuration()
        .bucket(b)
        .send()
        .await
        .expect("lifecycle in garage");
    assert_eq!(got.rules()[0].expiration().and_then(|x| x.days()), Some(3));
    let got = alice
        .get_bucket_lifecycle_configuration()
        .bucket(b)
        .send()
        .await
        .expect("GetBucketLifecycleConfiguration");
    assert_eq!(got.rules().len(), 1);
    alice
        .delete_bucket_lifecycle()
        .bucket(b)
        .send()
        .await
        .expect("DeleteBucketLifecycle");
    assert!(direct
        .get_bucket_lifecycle_configuration()
        .bucket(b)
        .send()
        .await
        .is_err());

    // Website.
    let site = WebsiteConfiguration::builder()
        .index_document(
            IndexDocument::builder()
                .suffix("home.html")
                .build()
                .expect("index"),
        )
        .build();
    alice
        .put_bucket_website()
        .bucket(b)
        .website_configuration(site)
        .send()
        .await
        .expect("PutBucketWebsite");
    let got = direct
        .get_bucket_website()
        .bucket(b)
        .send()
        .await
        .expect("website");
    assert_eq!(got.index_document().map(|i| i.suffix()), Some("home.html"));
    let got = alice
        .get_bucket_website()
        .bucket(b)
        .send()
        .await
        .expect("GetBucketWebsite");
    assert_eq!(got.index_document().map(|i| i.suffix()), Some("home.html"));
    alice
        .delete_bucket_website()
        .bucket(b)
        .send()
        .await
        .expect("DeleteBucketWebsite");
    assert!(direct.get_bucket_website().bucket(b).send().await.is_err());

    // ListObjects v1 and v2, then DeleteObjects: the keys are gone upstream.
    let keys = ["a/1", "a/2", "b/3"];
    for k in keys {
        alice
            .put_object()
            .bucket(b)
            .key(k)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .expect("put");
    }
    let v1 = alice
        .list_objects()
        .bucket(b)
        .prefix("a/")
        .send()
        .await
        .expect("ListObjects");
    let listed: Vec<&str> = v1.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(listed, ["a/1", "a/2"]);
    let v2 = alice
        .list_objects_v2()
        .bucket(b)
        .send()
        .await
        .expect("ListObjectsV2");
    assert_eq!(v2.key_count(), Some(3));
    let mut del = Delete::builder();
    for k in keys {
        del = del.objects(ObjectIdentifier::builder().key(k).build().expect("id"));
    }
    let r = alice
        .delete_objects()
        .bucket(b)
        .delete(del.build().expect("delete"))
        .send()
        .await
        .expect("DeleteObjects");
    assert_eq!(r.deleted().len(), 3, "{r:?}");
    let left = direct
        .list_objects_v2()
        .bucket(b)
        .send()
        .await
        .expect("list");
    assert_eq!(left.key_count(), Some(0));

    // DeleteBucket: gone from Garage.
    alice
        .delete_bucket()
        .bucket(b)
        .send()
        .await
        .expect("DeleteBucket");
    assert!(direct.head_bucket().bucket(b).send().await.is_err());
}
