use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;

use super::*;

fn b64(doc: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(doc)
}

fn at(s: &str) -> SystemTime {
    parse_expiration(s).unwrap()
}

fn fields(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The AWS documentation's example policy (browser-based uploads, SigV4).
const AWS_EXAMPLE: &str = r#"{ "expiration": "2015-12-30T12:00:00.000Z",
  "conditions": [
    {"bucket": "sigv4examplebucket"},
    ["starts-with", "$key", "user/user1/"],
    {"acl": "public-read"},
    {"success_action_redirect": "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html"},
    ["starts-with", "$Content-Type", "image/"],
    {"x-amz-meta-uuid": "14365123651274"},
    {"x-amz-server-side-encryption": "AES256"},
    ["starts-with", "$x-amz-meta-tag", ""],
    {"x-amz-credential": "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request"},
    {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
    {"x-amz-date": "20151229T000000Z" }
  ]
}"#;

fn example_form() -> Vec<(String, String)> {
    fields(&[
        ("key", "user/user1/photo.jpg"),
        ("acl", "public-read"),
        (
            "success_action_redirect",
            "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html",
        ),
        ("Content-Type", "image/jpeg"),
        ("x-amz-meta-uuid", "14365123651274"),
        ("x-amz-server-side-encryption", "AES256"),
        (
            "X-Amz-Credential",
            "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request",
        ),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Date", "20151229T000000Z"),
        ("x-amz-meta-tag", ""),
        ("Policy", "..."),
        ("X-Amz-Signature", "..."),
    ])
}

#[test]
fn the_aws_example_policy_admits_its_form() {
    let p = PostPolicy::parse(&b64(AWS_EXAMPLE)).unwrap();
    assert_eq!(p.conditions.len(), 11);
    let now = at("2015-12-29T00:00:00Z");
    p.check(&example_form(), "sigv4examplebucket", now).unwrap();
    // Expired a second after its expiration.
    let later = at("2015-12-30T12:00:00.000Z") + Duration::from_secs(1);
    let e = p
        .check(&example_form(), "sigv4examplebucket", later)
        .unwrap_err();
    assert_eq!(e.code, S3ErrorCode::AccessDenied);
    assert!(e.message.contains("expired"));
}

#[test]
fn a_content_type_list_must_match_the_prefix_in_each_value() {
    let p = PostPolicy::parse(&b64(AWS_EXAMPLE)).unwrap();
    let now = at("2015-12-29T00:00:00Z");
    let with_type = |t: &str| {
        let mut f = example_form();
        for (n, v) in f.iter_mut() {
            if n == "Content-Type" {
                *v = t.to_string();
            }
        }
        f
    };
    // The AWS docs' example: every value starts with `image/`.
    p.check(
        &with_type("image/jpg,image/png,image/gif"),
        "sigv4examplebucket",
        now,
    )
    .unwrap();
    for bad in ["image/jpg,text/plain", "text/plain,image/png", "image/png,"] {
        let e = p
            .check(&with_type(bad), "sigv4examplebucket", now)
            .unwrap_err();
        assert_eq!(e.code, S3ErrorCode::AccessDenied, "{bad}");
    }
    // Other fields are not lists: a comma is just a character.
    let key = |k: &str| {
        let mut f = with_type("image/png");
        for (n, v) in f.iter_mut() {
            if n == "key" {
                *v = k.to_string();
            }
        }
        f
    };
    p.check(&key("user/user1/a,user/user2/b"), "sigv4examplebucket", now)
        .unwrap();
}

#[test]
fn each_condition_is_enforced() {
    let p = PostPolicy::parse(&b64(AWS_EXAMPLE)).unwrap();
    let now = at("2015-12-29T00:00:00Z");
    let change = |name: &str, value: &str| {
        let mut f = example_form();
        for (n, v) in f.iter_mut() {
            if n == name {
                *v = value.to_string();
            }
        }
        f
    };
    for (name, value) in [
        ("key", "user/user2/photo.jpg"),
        ("acl", "public-read-write"),
        ("Content-Type", "text/html"),
        ("x-amz-meta-uuid", "1"),
        ("X-Amz-Date", "20151229T000001Z"),
    ] {
        let e = p
            .check(&change(name, value), "sigv4examplebucket", now)
            .unwrap_err();
        assert_eq!(e.code, S3ErrorCode::AccessDenied, "{name}");
        assert!(e
            .message
            .starts_with("Invalid according to Policy: Policy Condition failed"));
    }
    // The bucket is the one posted to.
    assert!(p.check(&example_form(), "otherbucket", now).is_err());
    // A field no condition names.
    let mut extra = example_form();
    extra.push(("x-amz-meta-other".into(), "1".into()));
    let e = p.check(&extra, "sigv4examplebucket", now).unwrap_err();
    assert!(e.message.contains("Extra input fields: x-amz-meta-other"));
    // Exempt fields need no condition.
    let mut exempt = example_form();
    exempt.push(("x-ignore-anything".into(), "1".into()));
    exempt.push(("file".into(), "".into()));
    p.check(&exempt, "sigv4examplebucket", now).unwrap();
    // A condition on a field the form lacks fails.
    let mut missing = example_form();
    missing.retain(|(n, _)| n != "acl");
    assert!(p.check(&missing, "sigv4examplebucket", now).is_err());
}

#[test]
fn content_length_range_is_the_tightest() {
    let doc = r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[
        ["content-length-range", 10, 1000], ["content-length-range", "20", "500"]]}"#;
    let p = PostPolicy::parse(&b64(doc)).unwrap();
    assert_eq!(p.length_range(), Some((20, 500)));
    p.check(&[], "b", UNIX_EPOCH).unwrap();
}

#[test]
fn malformed_documents_are_invalid_policy_documents() {
    for doc in [
        "not json",
        "[]",
        r#"{"conditions":[]}"#,
        r#"{"expiration":"tomorrow","conditions":[]}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z"}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":{}}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["eq","$key"]]}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["matches","$key","x"]]}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["content-length-range",5,1]]}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["content-length-range",-1,1]]}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[{"a":"1","b":"2"}]}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[{"a":1}]}"#,
        r#"{"expiration":"2030-01-01T00:00:00Z","conditions":[],"extra":1}"#,
    ] {
        let e = PostPolicy::parse(&b64(doc)).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::InvalidPolicyDocument, "{doc}");
    }
    assert!(PostPolicy::parse("%%%").is_err());
}

#[test]
fn expiration_formats() {
    assert!(parse_expiration("2007-12-01T12:00:00.000Z").is_some());
    assert!(parse_expiration("2007-12-01T12:00:00Z").is_some());
    for bad in [
        "2007-12-01",
        "2007-12-01T12:00:00",
        "2007-12-01T12:00:00.Z",
        "2007-13-01T12:00:00Z",
        "é007-12-01T12:00:00Z",
    ] {
        assert!(parse_expiration(bad).is_none(), "{bad}");
    }
}
