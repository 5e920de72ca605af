use super::*;

fn errors(src: &str) -> Vec<String> {
    let known: HashSet<String> = ["etl", "janitor"].iter().map(|s| s.to_string()).collect();
    match parse_file(Path::new("p.yaml"), src, Some(&known)) {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

fn decide(src: &str, who: &str, action: &'static str, resource: &str) -> Vec<String> {
    let parsed = parse_file(Path::new("p.yaml"), src, None).expect("parses");
    let set = crate::policy::PolicySet::new(parsed.statements, Vec::new(), &["etl".to_string()]);
    let need = crate::policy::actions::Need {
        action,
        resource: resource.into(),
    };
    let mut keys = crate::policy::condition::ContextKeys::new();
    keys.insert("aws:sourceip".into(), vec!["::ffff:127.0.0.1".into()]);
    let d = set.decide_one(who, &need, &keys);
    if d.allowed() {
        vec!["Allow".into()]
    } else {
        d.statements
    }
}

/// What an IAM author expects of a Deny: never narrower than it reads.
#[test]
fn denies_are_as_wide_as_they_read() {
    let src = "\
Version: \"2012-10-17\"
Statement:
  - Sid: Open
    Effect: Allow
    Principal: [anonymous, etl]
    Action: \"s3:*\"
    Resource: \"*\"
  - Sid: Everyone
    Effect: Deny
    Principal: \"*\"
    Action: s3:DeleteObject
    Resource: \"*\"
  - Sid: Protected
    Effect: Deny
    Principal: { AWS: etl, s3gate: anonymous }
    Action: s3:GetObject
    Resource: arn:aws:s3:::b/protected/*
  - Sid: Loopback
    Effect: Deny
    Action: s3:PutObject
    Resource: \"*\"
    Condition:
      IpAddress: { aws:SourceIp: 127.0.0.0/8 }
";
    // `*` in a Deny catches anonymous too (an Allow on `*` would not).
    assert_eq!(
        decide(src, "anonymous", "s3:DeleteObject", "arn:aws:s3:::b/k"),
        ["p.yaml#Everyone"]
    );
    // Both keys of a Principal mapping count.
    assert_eq!(
        decide(
            src,
            "anonymous",
            "s3:GetObject",
            "arn:aws:s3:::b/protected/k"
        ),
        ["p.yaml#Protected"]
    );
    assert_eq!(
        decide(src, "etl", "s3:GetObject", "arn:aws:s3:::b/protected/k"),
        ["p.yaml#Protected"]
    );
    // A literal `*` in a key still matches the pattern's wildcard.
    assert_eq!(
        decide(src, "etl", "s3:GetObject", "arn:aws:s3:::b/protected/*x"),
        ["p.yaml#Protected"]
    );
    // An IPv4 client seen through a dual-stack socket is still IPv4.
    assert_eq!(
        decide(src, "etl", "s3:PutObject", "arn:aws:s3:::b/k"),
        ["p.yaml#Loopback"]
    );
    assert_eq!(
        decide(src, "etl", "s3:GetObject", "arn:aws:s3:::b/open/k"),
        ["Allow"]
    );
}

#[test]
fn policies_that_would_not_mean_what_they_read_do_not_load() {
    for (bad, why) in [
        (
            "    NotAction: []\n    Resource: \"*\"\n",
            "empty action list",
        ),
        (
            "    Action: s3:GetObject\n    NotResource: []\n",
            "empty resource list",
        ),
        (
            "    Action: s3:GetObject\n    Resource: arn:aws:s3:::homes/${aws:username}/*\n",
            "policy variables",
        ),
    ] {
        let src = format!(
            "Version: \"2012-10-17\"\nStatement:\n  - Effect: Deny\n    Principal: etl\n{bad}"
        );
        let e = errors(&src);
        assert!(e.iter().any(|l| l.contains(why)), "{why}: {e:?}");
    }
    let src = "Version: \"2012-10-17\"\nStatement:\n  - Effect: Deny\n    Principal: { Service: s3.amazonaws.com }\n    Action: s3:GetObject\n    Resource: \"*\"\n";
    assert!(errors(src)
        .iter()
        .any(|l| l.contains("Principal keys are AWS and s3gate")));
}

#[test]
fn a_principal_list_with_star_keeps_its_other_names() {
    // A Deny on `[anonymous, "*"]` must catch anonymous requests too.
    let src = "\
Version: \"2012-10-17\"
Statement:
  - Sid: NoOne
    Effect: Deny
    Principal: [anonymous, \"*\"]
    Action: s3:GetObject
    Resource: \"*\"
";
    let parsed = parse_file(Path::new("p.yaml"), src, None).expect("parses");
    let set = crate::policy::PolicySet::new(parsed.statements, Vec::new(), &["etl".to_string()]);
    let need = crate::policy::actions::Need {
        action: "s3:GetObject",
        resource: "arn:aws:s3:::b/k".into(),
    };
    let keys = crate::policy::condition::ContextKeys::new();
    for who in ["anonymous", "etl"] {
        let d = set.decide_one(who, &need, &keys);
        assert_eq!(d.statements, vec!["p.yaml#NoOne".to_string()], "{who}");
    }
}

#[test]
fn reports_every_problem_with_position_and_suggestion() {
    let src = "\
Version: \"2012-10-17\"
Statement:
  - Sid: A
    Effect: Allow
    Principal: etll
    Action: [s3:GetObject, s3:AbortMultipartUplod]
    Resource: arn:aws:s3::bucket
  - Sid: B
    Effect: Deny
    Principal: \"*\"
    Action: s3:*
    Resource: \"*\"
    Condition:
      StringEqualz: { s3gate:RequestPayer: requester }
      StringEquals: { s3gate:RequestPayr: requester }
";
    let e = errors(src);
    assert_eq!(e.len(), 5, "{e:#?}");
    assert!(e[0].starts_with("p.yaml:5:5: principal `etll` does not exist in the gateway's principals — did you mean etl?"), "{}", e[0]);
    assert!(e[1].starts_with("p.yaml:6:5: s3:AbortMultipartUplod is not an S3 action s3gate knows — did you mean s3:AbortMultipartUpload?"), "{}", e[1]);
    assert!(
        e[2].starts_with("p.yaml:7:5: malformed resource `arn:aws:s3::bucket`"),
        "{}",
        e[2]
    );
    assert!(
        e[3].starts_with(
            "p.yaml:14:7: unknown condition operator `StringEqualz` — did you mean StringEquals?"
        ),
        "{}",
        e[3]
    );
    assert!(e[4].starts_with("p.yaml:15:23: unknown condition key `s3gate:RequestPayr` — did you mean s3gate:RequestPayer?") || e[4].contains("unknown condition key `s3gate:RequestPayr` — did you mean s3gate:RequestPayer?"), "{}", e[4]);
    assert!(
        e[1].contains("    6 |     Action: [s3:GetObject, s3:AbortMultipartUplod]"),
        "{}",
        e[1]
    );
}

#[test]
fn iam_json_document_loads_unchanged() {
    let json = r#"{
  "Version": "2012-10-17",
  "Statement": [{
    "Sid": "ReadOnly",
    "Effect": "Allow",
    "Action": ["s3:GetObject", "s3:List*"],
    "Resource": ["arn:aws:s3:::reports", "arn:aws:s3:::reports/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "true"}}
  }]
}"#;
    let p = parse_file(Path::new("iam.json"), json, None).unwrap();
    assert_eq!(p.statements.len(), 1);
    assert!(p.statements[0].matches_action("s3:ListBucketMultipartUploads"));
    assert!(matches!(p.statements[0].principal, PrincipalMatch::Any));
}

#[test]
fn unknown_statement_fields_are_errors() {
    let e = errors(
        "Version: \"2012-10-17\"\nStatement:\n  - Effect: Allow\n    Actoin: s3:GetObject\n",
    );
    assert!(
        e.iter()
            .any(|m| m.contains("unknown statement field `Actoin` — did you mean Action?")),
        "{e:#?}"
    );
}
