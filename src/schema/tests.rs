//! The schemas say what the loaders accept: the committed files equal the
//! command's output, and every object's property names are the fields the
//! serde structs (deny_unknown_fields) and the policy parser accept.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{render, schema, SCHEMAS};
use crate::config::limits::LimitsConfig;
use crate::config::raw::{self, TOP_LEVEL_KEYS};
use crate::config::{BucketConfig, LogConfig, PoliciesConfig, RotateConfig, TlsConfig};
use crate::policy::parse::{STATEMENT_KEYS, TEST_KEYS, TEST_REQUEST_KEYS, TOP_KEYS};

/// The fields a `deny_unknown_fields` struct accepts, as serde lists them
/// when it meets one it does not know.
fn fields<T: DeserializeOwned + std::fmt::Debug>() -> Vec<String> {
    let e = serde_yaml::from_str::<T>("zz_not_a_field: 1")
        .expect_err("unknown fields are refused")
        .to_string();
    let list = e
        .split_once("expected ")
        .map_or("", |(_, l)| l)
        .split(" at line")
        .next()
        .unwrap_or("");
    let mut out: Vec<String> = list
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

fn properties(schema: &Value, pointer: &str) -> Vec<String> {
    let mut out: Vec<String> = schema
        .pointer(pointer)
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("no object at {pointer}"))
        .keys()
        .cloned()
        .collect();
    out.sort();
    out
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn committed_schemas_equal_the_command_output() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    for (name, file) in SCHEMAS {
        let path = root.join(file);
        let want = render(name).expect("schema");
        if std::env::var_os("S3GATE_BLESS").is_some() {
            std::fs::create_dir_all(&root).expect("schemas/");
            std::fs::write(&path, &want).expect("write schema");
        }
        let got = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            got == want,
            "{} differs from `s3gate schema {name}`: regenerate with `s3gate schema {name} > schemas/{file}` (or S3GATE_BLESS=1 cargo test --lib schema)",
            path.display()
        );
    }
}

#[test]
fn config_schema_names_the_fields_serde_accepts() {
    let s = schema("config").expect("config schema");
    let d = "/$defs";
    let cases: Vec<(String, Vec<String>)> = vec![
        ("/properties".into(), sorted(TOP_LEVEL_KEYS)),
        (
            format!("{d}/listener/properties"),
            fields::<raw::ListenerConfig>(),
        ),
        (
            format!("{d}/listener/properties/tls/properties"),
            fields::<TlsConfig>(),
        ),
        (
            format!("{d}/principal/properties"),
            fields::<raw::PrincipalConfig>(),
        ),
        (
            format!("{d}/upstream/properties"),
            fields::<raw::UpstreamConfig>(),
        ),
        (
            format!("{d}/upstream/properties/tls/properties"),
            fields::<raw::UpstreamTls>(),
        ),
        (
            format!("{d}/credentials/oneOf/1/properties/assume_role/properties"),
            fields::<raw::AssumeRoleConfig>(),
        ),
        (
            format!("{d}/credentials/oneOf/2/properties"),
            fields::<raw::StaticCredentials>(),
        ),
        (
            format!("{d}/credentials/oneOf/3/properties/ibm_iam/properties"),
            fields::<raw::IbmIamConfig>(),
        ),
        (format!("{d}/bucket/properties"), fields::<BucketConfig>()),
        (format!("{d}/rotate/properties"), fields::<RotateConfig>()),
        (
            "/properties/policies/properties".into(),
            fields::<PoliciesConfig>(),
        ),
        (
            "/properties/multipart/properties".into(),
            fields::<raw::MultipartConfig>(),
        ),
        (
            "/properties/multipart/properties/ownership/properties".into(),
            fields::<raw::OwnershipConfig>(),
        ),
        (
            "/properties/multipart/properties/abort/properties".into(),
            fields::<raw::AbortConfig>(),
        ),
        (
            "/properties/multipart/properties/reaper/properties".into(),
            fields::<raw::ReaperConfig>(),
        ),
        (
            "/properties/audit/properties".into(),
            fields::<raw::AuditConfig>(),
        ),
        (
            "/properties/decision_log/properties".into(),
            fields::<raw::DecisionLogConfig>(),
        ),
        (
            "/properties/admin/properties".into(),
            fields::<raw::AdminConfig>(),
        ),
        ("/properties/log/properties".into(), fields::<LogConfig>()),
        (
            "/properties/timeouts/properties".into(),
            fields::<raw::TimeoutsConfig>(),
        ),
        (
            "/properties/limits/properties".into(),
            fields::<LimitsConfig>(),
        ),
    ];
    for (pointer, accepted) in cases {
        assert!(!accepted.is_empty(), "{pointer}: no fields read from serde");
        assert_eq!(properties(&s, &pointer), accepted, "{pointer}");
    }
}

#[test]
fn policy_schema_names_what_the_parser_accepts() {
    let s = schema("policy").expect("policy schema");
    assert_eq!(properties(&s, "/properties"), sorted(TOP_KEYS));
    assert_eq!(
        properties(&s, "/$defs/statement/properties"),
        sorted(STATEMENT_KEYS)
    );
    assert_eq!(properties(&s, "/$defs/test/properties"), sorted(TEST_KEYS));
    assert_eq!(
        properties(&s, "/$defs/test/properties/request/properties"),
        sorted(TEST_REQUEST_KEYS)
    );
    let operators = s
        .pointer("/$defs/condition/propertyNames/enum")
        .and_then(Value::as_array)
        .expect("operators");
    assert_eq!(
        operators.len(),
        crate::policy::condition::operator_names().len()
    );
    for op in operators {
        let op = op.as_str().expect("operator");
        assert!(
            crate::policy::condition::parse_operator(op).is_some(),
            "{op}"
        );
    }
}

#[test]
fn any_case_patterns_escape_and_fold() {
    assert_eq!(
        super::any_case(&["s3:a-b.c"]),
        "^(?:[Ss]3:[Aa]-[Bb]\\.[Cc])$"
    );
}
