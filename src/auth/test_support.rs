//! The AWS documentation's example credentials and requests.

use http::HeaderMap;

use super::{Principal, Principals, Secret};

pub fn example_principals() -> Principals {
    Principals::new(vec![Principal {
        name: "example".into(),
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into()),
    }])
}

/// "Example: GET Object" (S3 SigV4, Authorization header).
pub fn doc_example_get_object() -> (Principals, HeaderMap) {
    let mut h = HeaderMap::new();
    h.insert("host", "examplebucket.s3.amazonaws.com".parse().unwrap());
    h.insert("range", "bytes=0-9".parse().unwrap());
    h.insert(
        "x-amz-content-sha256",
        super::crypto::EMPTY_SHA256.parse().unwrap(),
    );
    h.insert("x-amz-date", "20130524T000000Z".parse().unwrap());
    h.insert(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
            .parse()
            .unwrap(),
    );
    (example_principals(), h)
}
