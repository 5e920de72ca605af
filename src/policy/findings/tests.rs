//! Findings on small policies: what is reported, and what is not (the
//! CLI, SARIF and the fixture of every kind: tests/check_findings.rs).

use std::path::Path;

use super::{analyse, Finding, Input, Sources};
use crate::config::Config;

const CONFIG: &str = "\
listen: [{ address: 127.0.0.1:9000 }]
region: us-east-1
principals:
  - { name: etl, access_key_id: AKIAETL, secret_access_key: s }
  - { name: janitor, access_key_id: AKIAJAN, secret_access_key: s }
upstreams:
  lab: { kind: s3-compatible, endpoint: http://127.0.0.1:3900, region: garage, credentials: { access_key_id: k, secret_access_key: s } }
buckets:
  raw: { upstream: lab }
";

fn config() -> Config {
    crate::config::parse(Path::new("gateway.yaml"), CONFIG).expect("config")
}

fn findings(policy: &str) -> Vec<Finding> {
    let config = config();
    let path = Path::new("p.yaml");
    let parsed = crate::policy::parse::parse_file(path, policy, None).expect("policy loads");
    let mut sources = Sources::default();
    sources.add(path, policy.to_string());
    analyse(&Input {
        config: &config,
        statements: &parsed.statements,
        sources: &sources,
    })
}

fn codes(policy: &str) -> Vec<&'static str> {
    findings(policy).iter().map(|f| f.code).collect()
}

#[test]
fn a_clean_policy_has_no_finding() {
    let p = "Version: \"2012-10-17\"
Statement:
  - Sid: Read
    Effect: Allow
    Principal: etl
    Action: [s3:GetObject, s3:ListBucket]
    Resource: [arn:aws:s3:::raw, arn:aws:s3:::raw/*]
    Condition:
      StringLikeIfExists: { s3:prefix: \"etl/*\" }
  - Sid: NoDeletesOverHttp
    Effect: Deny
    Principal: \"*\"
    Action: s3:DeleteObject
    Resource: \"*\"
    Condition:
      Bool: { aws:SecureTransport: \"false\" }
";
    assert_eq!(codes(p), Vec::<&str>::new());
}

#[test]
fn a_conditional_deny_shadows_nothing() {
    let p = "Version: \"2012-10-17\"
Statement:
  - { Sid: A, Effect: Allow, Principal: etl, Action: s3:GetObject, Resource: \"arn:aws:s3:::raw/*\" }
  - Sid: D
    Effect: Deny
    Principal: \"*\"
    Action: \"*\"
    Resource: \"*\"
    Condition: { IpAddress: { aws:SourceIp: 10.0.0.0/8 } }
";
    assert_eq!(codes(p), Vec::<&str>::new());
    let unconditional = p.replace(
        "    Condition: { IpAddress: { aws:SourceIp: 10.0.0.0/8 } }\n",
        "",
    );
    assert_eq!(codes(&unconditional), vec!["SHADOWED_BY_DENY"]);
}

#[test]
fn an_absent_key_that_satisfies_the_condition_says_so() {
    let p = "Version: \"2012-10-17\"
Statement:
  - Sid: A
    Effect: Allow
    Principal: etl
    Action: s3:GetObject
    Resource: \"arn:aws:s3:::raw/*\"
    Condition:
      \"Null\":
        s3:prefix: \"true\"
";
    let f = findings(p);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].code, "CONDITION_KEY_ABSENT");
    assert!(f[0].message.contains("always true"), "{}", f[0].message);
    assert_eq!((f[0].line, f[0].column), (10, 9));
}

#[test]
fn full_access_with_a_condition_is_left_to_the_author() {
    let p = "Version: \"2012-10-17\"
Statement:
  - Sid: Admins
    Effect: Allow
    Principal: \"*\"
    Action: s3:*
    Resource: \"*\"
    Condition: { IpAddress: { aws:SourceIp: 10.0.0.0/8 } }
";
    assert_eq!(codes(p), Vec::<&str>::new());
    let anonymous = p
        .replace("Principal: \"*\"", "Principal: anonymous")
        .replace(
            "    Condition: { IpAddress: { aws:SourceIp: 10.0.0.0/8 } }\n",
            "",
        );
    let f = findings(&anonymous);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].code, "FULL_ACCESS");
    assert_eq!(f[0].severity, super::Severity::Error);
}

#[test]
fn wildcard_buckets_and_catch_alls_are_routed() {
    let p = "Version: \"2012-10-17\"
Statement:
  - { Sid: A, Effect: Allow, Principal: etl, Action: s3:GetObject, Resource: \"arn:aws:s3:::r*/x\" }
  - { Sid: B, Effect: Allow, Principal: etl, Action: s3:GetObject, Resource: \"arn:aws:s3:::logs/x\" }
";
    let f = findings(p);
    assert_eq!(
        f.iter().map(|f| f.code).collect::<Vec<_>>(),
        vec!["UNROUTED_BUCKET"]
    );
    assert!(f[0].message.contains("`logs`"));
}
