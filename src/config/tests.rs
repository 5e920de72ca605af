//! The config checker: positions, typed values, defaults.

use super::*;

const GOOD: &str = "\
listen:
  - address: 127.0.0.1:9000
region: us-east-1
hostnames: [localhost]
principals:
  - name: etl
    access_key_id: AKIAETL
    secret_access_key: s3cr3t
upstreams:
  lab:
    kind: s3-compatible
    endpoint: http://127.0.0.1:3900
    region: garage
    credentials: { access_key_id: GK1, secret_access_key: x }
buckets:
  data:
    upstream: lab
    target: real-data
";

#[test]
fn good_config_loads_with_warnings_for_literals() {
    let c = parse(Path::new("g.yaml"), GOOD).unwrap();
    assert_eq!(c.principals[0].name, "etl");
    assert_eq!(c.buckets["data"].target.as_deref(), Some("real-data"));
    assert_eq!(c.warnings.len(), 2);
    assert_eq!(c.warnings[0].line, 8);
    assert!(
        !c.warnings[0].to_string().contains("s3cr3t"),
        "{}",
        c.warnings[0]
    );
}

#[test]
fn reports_every_error_with_position() {
    let bad = GOOD
        .replace("    upstream: lab\n", "    upstream: labb\n")
        .replace("kind: s3-compatible", "kind: s3-compatible\n    endpont: x")
        .replace("region: us-east-1\n", "region: us-east-1\nregoin: x\n");
    let errs = parse(Path::new("g.yaml"), &bad).unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 3, "{text:#?}");
    assert!(
        text[0].starts_with("g.yaml:4:1: unknown section `regoin` — did you mean region?"),
        "{}",
        text[0]
    );
    assert!(
        text[1].starts_with("g.yaml:13:5: upstreams.lab: unknown field `endpont`"),
        "{}",
        text[1]
    );
    assert!(
        text[2].starts_with("g.yaml:19:5: buckets.data: upstream `labb` is not defined"),
        "{}",
        text[2]
    );
    assert!(text[2].contains("did you mean lab?"));
}

#[test]
fn limits_default_and_parse() {
    let c = parse(Path::new("g.yaml"), GOOD).unwrap();
    assert_eq!(c.limits, Limits::default());
    assert_eq!(
        c.limits.request_head_timeout,
        std::time::Duration::from_secs(10)
    );
    let with = format!(
        "{GOOD}limits:\n  request_head_timeout: 2s\n  max_header_bytes: 16KiB\n  max_connections: 100\n  idle_timeout: 1500ms\n"
    );
    let c = parse(Path::new("g.yaml"), &with).unwrap();
    assert_eq!(
        c.limits,
        Limits {
            request_head_timeout: std::time::Duration::from_secs(2),
            max_header_bytes: 16 * 1024,
            max_connections: 100,
            idle_timeout: std::time::Duration::from_millis(1500),
        }
    );
}

#[test]
fn limits_errors_have_positions() {
    let bad = format!(
        "{GOOD}limits:\n  request_head_timeout: soon\n  max_header_bytes: 2GiB\n  max_connections: 0\n"
    );
    let errs = parse(Path::new("g.yaml"), &bad).unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 3, "{text:#?}");
    assert!(
        text[0].starts_with("g.yaml:20:3: limits.request_head_timeout: `soon` is not a duration"),
        "{}",
        text[0]
    );
    assert!(
        text[1].starts_with("g.yaml:21:3: limits.max_header_bytes: `2GiB` is not a number"),
        "{}",
        text[1]
    );
    assert!(
        text[2].starts_with("g.yaml:22:3: limits.max_connections must be between 1 and"),
        "{}",
        text[2]
    );
    let unknown = format!("{GOOD}limits:\n  max_conections: 5\n");
    let errs = parse(Path::new("g.yaml"), &unknown).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0]
            .to_string()
            .starts_with("g.yaml:20:3: limits: unknown field `max_conections`"),
        "{}",
        errs[0]
    );
}

#[test]
fn yaml_syntax_error_has_position() {
    let errs = parse(Path::new("g.yaml"), "listen: [\n").unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(errs[0].line >= 1);
}

#[test]
fn values_are_typed_with_their_defaults() {
    let c = parse(Path::new("conf/g.yaml"), GOOD).unwrap();
    assert_eq!(c.listen[0].address, "127.0.0.1:9000".parse().unwrap());
    let lab = &c.upstreams["lab"];
    assert_eq!(
        lab.endpoint,
        Endpoint {
            tls: false,
            host: "127.0.0.1".into(),
            port: 3900
        }
    );
    assert_eq!(lab.addressing, Addressing::Path);
    assert!(lab.checksum_trailers && lab.access_points.is_empty());
    assert!(matches!(&lab.credentials, CredentialSource::Static(s) if s.access_key_id == "GK1"));
    assert_eq!(c.timeouts, Timeouts::default());
    assert_eq!(c.multipart.ownership, OwnershipStore::Memory);
    assert_eq!(c.multipart.abort, AbortSettings::default());
    assert_eq!(c.shutdown_grace, std::time::Duration::from_secs(30));
    assert!(c.audit.is_none() && c.admin.is_none());
}

const AWS: &str = "\
listen:
  - address: 127.0.0.1:9000
region: us-east-1
principals: []
upstreams:
  aws:
    kind: aws
    region: eu-west-1
    dualstack: true
    credentials: { assume_role: { role_arn: \"arn:aws:iam::123456789012:role/gw\" } }
  lab:
    kind: s3-compatible
    endpoint: https://[::1]:3900
    connect_to: 127.0.0.1:3901
    credentials: aws-default-chain
buckets:
  data:
    upstream: aws
    target: arn:aws:s3:eu-west-1:123456789012:accesspoint/data
policies:
  paths: [policies, /etc/s3gate/extra.yaml]
  mode: shadow
multipart:
  ownership: { store: s3, upstream: lab, bucket: state }
  abort: { drain_in_flight: 250ms, max_attempts: 0, verify: false }
audit:
  path: /tmp/audit.jsonl
  events: [Denied]
  fsync: interval
  on_failure: continue
admin:
  address: 127.0.0.1:9900
timeouts:
  connect_secs: 3
shutdown_grace_secs: 5
";

#[test]
fn every_section_parses_into_typed_values() {
    let c = parse(Path::new("conf/g.yaml"), AWS).unwrap();
    let aws = &c.upstreams["aws"];
    assert_eq!(aws.endpoint, Endpoint::aws("eu-west-1", true, false));
    assert_eq!(aws.addressing, Addressing::Virtual);
    let target = "arn:aws:s3:eu-west-1:123456789012:accesspoint/data";
    assert_eq!(aws.access_points[target], Arn::parse(target).unwrap());
    assert!(matches!(
        &aws.credentials,
        CredentialSource::Provider(Source::AssumeRole { session_name, source, .. })
            if session_name == "s3gate" && **source == Source::DefaultChain
    ));
    let lab = &c.upstreams["lab"];
    assert_eq!(
        (lab.endpoint.host.as_str(), lab.endpoint.port),
        ("[::1]", 3900)
    );
    assert_eq!(lab.connect_to, Some("127.0.0.1:3901".parse().unwrap()));
    assert_eq!(lab.region, "us-east-1");
    assert!(matches!(
        lab.credentials,
        CredentialSource::Provider(Source::DefaultChain)
    ));
    assert_eq!(
        c.policies.paths,
        [
            Path::new("conf/policies"),
            Path::new("/etc/s3gate/extra.yaml")
        ]
    );
    assert_eq!(c.policies.mode, PolicyMode::Shadow);
    assert_eq!(
        c.multipart.ownership,
        OwnershipStore::S3 {
            upstream: "lab".into(),
            bucket: "state".into(),
            prefix: DEFAULT_OWNERSHIP_PREFIX.into()
        }
    );
    assert_eq!(
        c.multipart.abort,
        AbortSettings {
            drain_in_flight: std::time::Duration::from_millis(250),
            verify: false,
            max_attempts: 1
        }
    );
    let a = c.audit.as_ref().unwrap();
    assert_eq!(
        (a.fsync, a.on_failure, a.events.as_slice()),
        (
            Fsync::Interval,
            OnFailure::Continue,
            &[AuditEvent::Denied][..]
        )
    );
    assert_eq!(
        c.admin.as_ref().map(|a| a.address),
        Some("127.0.0.1:9900".parse().unwrap())
    );
    assert_eq!(c.timeouts.connect, std::time::Duration::from_secs(3));
    assert_eq!(c.timeouts.read, std::time::Duration::from_secs(300));
    assert_eq!(c.shutdown_grace, std::time::Duration::from_secs(5));
}

#[test]
fn enum_like_options_report_their_spelling() {
    let bad = AWS
        .replace("store: s3,", "store: disk,")
        .replace("250ms", "soon")
        .replace("fsync: interval", "fsync: sometimes")
        .replace("on_failure: continue", "on_failure: panic")
        .replace("events: [Denied]", "events: [Denied, Deleted]")
        .replace("127.0.0.1:9900", "localhost");
    let errs = parse(Path::new("g.yaml"), &bad).unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.message.clone()).collect();
    assert_eq!(
        text,
        [
            "multipart.ownership.store must be s3 or memory, not `disk`",
            "multipart.abort.drain_in_flight `soon` is not a duration (like 30s, 500ms, 2m)",
            "audit.events: unknown event `Deleted` (AbortMultipartUpload, CreateMultipartUpload, CompleteMultipartUpload, Denied)",
            "audit.fsync must be always or interval, not `sometimes`",
            "audit.on_failure must be reject or continue, not `panic`",
            "admin.address: `localhost` is not an IP:port address",
        ],
        "{errs:#?}"
    );
}

#[test]
fn reaper_limits_per_bucket_and_by_default() {
    let text = GOOD.replace(
        "    target: real-data\n",
        "    target: real-data\n    abort_incomplete_after: 7d\n  logs: { upstream: lab }\n  \"*\": { upstream: lab }\nmultipart:\n  abort_incomplete_after: 36h\n  reaper: { every: 10m }\n",
    );
    let c = parse(Path::new("g.yaml"), &text).unwrap();
    assert_eq!(
        c.multipart.reaper,
        Some(ReaperSettings {
            every: std::time::Duration::from_secs(600),
            orphans_after: Some(std::time::Duration::from_secs(300)),
        }),
        "orphans are reaped after 5 minutes unless said otherwise"
    );
    let reaped = c.reaped_buckets();
    let day = 86_400;
    assert_eq!(
        reaped,
        vec![
            (
                "data".to_string(),
                std::time::Duration::from_secs(7 * day),
                "buckets.data.abort_incomplete_after".to_string()
            ),
            (
                "logs".to_string(),
                std::time::Duration::from_secs(36 * 3600),
                "multipart.abort_incomplete_after".to_string()
            ),
        ],
        "the catch-all has no names to list"
    );
}

#[test]
fn reaper_orphans_after() {
    let with = |reaper: &str, store: &str| {
        GOOD.replace(
            "    target: real-data\n",
            &format!("    target: real-data\n    abort_incomplete_after: 7d\nmultipart:\n  ownership: {store}\n  reaper: {reaper}\n"),
        )
    };
    let s3 = "{ store: s3, upstream: lab, bucket: state }";
    let c = parse(
        Path::new("g.yaml"),
        &with("{ every: 1s, orphans_after: 2s }", s3),
    )
    .unwrap();
    let r = c.multipart.reaper.expect("reaper");
    assert_eq!(r.orphans_after, Some(std::time::Duration::from_secs(2)));
    assert!(
        !c.warnings
            .iter()
            .any(|w| w.to_string().contains("orphans_after")),
        "{:?}",
        c.warnings
    );
    let c = parse(
        Path::new("g.yaml"),
        &with("{ every: 1s, orphans_after: off }", s3),
    )
    .unwrap();
    assert_eq!(c.multipart.reaper.expect("reaper").orphans_after, None);
    // Not a duration, or zero: an error.
    for bad in ["soon", "0s"] {
        let errs = parse(
            Path::new("g.yaml"),
            &with(&format!("{{ every: 1s, orphans_after: {bad} }}"), s3),
        )
        .unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.to_string().contains("multipart.reaper.orphans_after")),
            "{errs:?}"
        );
    }
    // With the memory store it cannot act, and says so when asked for.
    let memory = "{ store: memory }";
    let c = parse(
        Path::new("g.yaml"),
        &with("{ every: 1s, orphans_after: 2s }", memory),
    )
    .unwrap();
    assert!(
        c.warnings
            .iter()
            .any(|w| w.to_string().contains("orphans_after has no effect")),
        "{:?}",
        c.warnings
    );
    let c = parse(Path::new("g.yaml"), &with("{ every: 1s }", memory)).unwrap();
    assert!(
        !c.warnings
            .iter()
            .any(|w| w.to_string().contains("orphans_after")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn reaper_mistakes_are_reported() {
    let text = GOOD.replace(
        "    target: real-data\n",
        "    target: real-data\n    abort_incomplete_after: soon\n  \"*\": { upstream: lab, abort_incomplete_after: 1d }\nmultipart:\n  reaper: { every: 0s }\n",
    );
    let errs = parse(Path::new("g.yaml"), &text).unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(errs.len(), 3, "{text:#?}");
    assert!(
        text.iter()
            .any(|t| t.contains("abort_incomplete_after `soon` is not a duration")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("the catch-all has no list of buckets")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("multipart.reaper.every `0s`")),
        "{text:#?}"
    );
    // A limit without a reaper works but deserves a warning.
    let quiet = GOOD.replace(
        "    target: real-data\n",
        "    target: real-data\n    abort_incomplete_after: 1d\n",
    );
    let c = parse(Path::new("g.yaml"), &quiet).unwrap();
    assert!(c
        .warnings
        .iter()
        .any(|w| w.to_string().contains("no reaper runs")));
}

#[test]
fn cos_iam_credentials_and_service_instance() {
    let cos = GOOD.replace(
        "    kind: s3-compatible\n    endpoint: http://127.0.0.1:3900\n    region: garage\n    credentials: { access_key_id: GK1, secret_access_key: x }\n",
        "    kind: cos\n    endpoint: https://s3.eu-de.cloud-object-storage.appdomain.cloud\n    service_instance_id: crn-1\n    credentials: { ibm_iam: { api_key: k3y } }\n",
    );
    let c = parse(Path::new("g.yaml"), &cos).unwrap();
    let up = &c.upstreams["lab"];
    assert_eq!(up.service_instance_id.as_deref(), Some("crn-1"));
    match &up.credentials {
        CredentialSource::IbmIam {
            api_key,
            token_url,
            token_path,
        } => {
            assert_eq!(api_key.expose(), "k3y");
            assert_eq!(
                (token_url.tls, token_url.host.as_str(), token_path.as_str()),
                (true, "iam.cloud.ibm.com", "/identity/token")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        c.warnings.iter().all(|w| !w.to_string().contains("k3y")),
        "the key is redacted in warnings"
    );
    let test_url = cos.replace(
        "api_key: k3y }",
        "api_key: k3y, token_url: \"http://127.0.0.1:8181/identity/token\" }",
    );
    let c = parse(Path::new("g.yaml"), &test_url).unwrap();
    assert!(matches!(&c.upstreams["lab"].credentials,
        CredentialSource::IbmIam { token_url, token_path, .. }
            if !token_url.tls && token_url.port == 8181 && token_path == "/identity/token"));
    // IAM keys and the instance header are COS things.
    let wrong = GOOD.replace(
        "    credentials: { access_key_id: GK1, secret_access_key: x }\n",
        "    service_instance_id: crn-1\n    credentials: { ibm_iam: { api_key: k3y, token_url: \"ftp://x\" } }\n",
    );
    let errs = parse(Path::new("g.yaml"), &wrong).unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert!(
        text.iter()
            .any(|t| t.contains("ibm_iam credentials are for kind cos only")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("service_instance_id is for kind cos only")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("`ftp://x` is not an http(s) URL")),
        "{text:#?}"
    );
}
