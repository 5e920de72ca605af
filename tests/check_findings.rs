//! `s3gate check` findings: every kind at the line its fixture marks
//! (SARIF), `--fail-on`, and the shipped policies free of errors.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn check(config: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_s3gate"))
        .arg("check")
        .arg("--config")
        .arg(config)
        .args(extra)
        .current_dir(root())
        .env("S3GATE_FIXTURE_SECRET", "fixture-secret")
        .output()
        .expect("run s3gate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `(code, line)` of every `# expect: CODE` marker of a fixture.
fn markers(text: &str) -> BTreeSet<(String, u64)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let code = l.split("# expect: ").nth(1)?;
            Some((code.trim().to_string(), i as u64 + 1))
        })
        .collect()
}

#[test]
fn sarif_reports_each_finding_at_its_marked_line() {
    let policy = "tests/fixtures/findings/policies/findings.yaml";
    let (code, out, err) = check(
        Path::new("tests/fixtures/findings/gateway.yaml"),
        &["--format", "sarif"],
    );
    assert_eq!(code, 1, "errors among the findings fail the check: {err}");
    let sarif: Value = serde_json::from_str(&out).expect("SARIF is JSON");
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let rules: BTreeSet<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| r["id"].as_str().expect("rule id"))
        .collect();
    let mut got = BTreeSet::new();
    for r in run["results"].as_array().expect("results") {
        let id = r["ruleId"].as_str().expect("ruleId");
        assert!(rules.contains(id), "{id} is not among tool.driver.rules");
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], policy, "{r}");
        let line = loc["region"]["startLine"].as_u64().expect("startLine");
        assert!(loc["region"]["startColumn"].as_u64().expect("startColumn") >= 1);
        let index = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(run["tool"]["driver"]["rules"][index]["id"], id);
        got.insert((id.to_string(), line));
    }
    let text = std::fs::read_to_string(root().join(policy)).expect("fixture");
    let want = markers(&text);
    assert_eq!(
        want.len(),
        15,
        "a marker on every statement but the Deny and the duplicated one"
    );
    assert_eq!(got, want, "findings (left) and markers (right) differ");
}

#[test]
fn text_and_json_name_code_severity_place_and_fix() {
    let config = Path::new("tests/fixtures/findings/gateway.yaml");
    let (code, _, err) = check(config, &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("error[UNKNOWN_PRINCIPAL]: tests/fixtures/findings/policies/findings.yaml:26:5: principal `jannitor` does not exist in the gateway's principals — did you mean janitor?"),
        "{err}"
    );
    assert!(
        err.contains("    help: did you mean analytics-raw?"),
        "{err}"
    );
    let (_, out, _) = check(config, &["--format", "json"]);
    let doc: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(doc["ok"], false);
    let f = doc["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["code"] == "ANONYMOUS_WRITE")
        .expect("ANONYMOUS_WRITE");
    assert_eq!(f["severity"], "security warning");
    assert_eq!(f["line"], 102);
    assert!(f["statement"]
        .as_str()
        .expect("statement")
        .ends_with("findings.yaml#AnonymousUploads"));
    assert!(!f["hint"].as_str().expect("hint").is_empty());
    assert_eq!(doc["statements"].as_array().expect("statements").len(), 17);
}

#[test]
fn fail_on_sets_the_threshold() {
    let config = Path::new("tests/fixtures/findings/gateway-warnings.yaml");
    let status = |level: &str| check(config, &["--fail-on", level]).0;
    let (code, out, err) = check(config, &[]);
    assert_eq!(code, 0, "warnings alone pass by default: {err}");
    assert!(out.contains("OK (2 principal(s)"), "{out}");
    assert!(err.contains("warning[UNUSED_ACTION]"), "{err}");
    assert!(
        err.contains("findings: 0 error(s), 0 security warning(s), 1 warning(s), 1 suggestion(s)"),
        "{err}"
    );
    assert_eq!(status("error"), 0);
    assert_eq!(status("security-warning"), 0);
    assert_eq!(status("warning"), 1);
    assert_eq!(status("suggestion"), 1);
}

/// The policy documents of a Kubernetes manifest's ConfigMaps.
fn manifest_policies(manifest: &Path, dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(manifest).expect("manifest");
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v = <serde_yaml::Value as serde::Deserialize>::deserialize(doc).expect("YAML");
        let Some(data) = v.get("data").and_then(|d| d.as_mapping()) else {
            continue;
        };
        for (name, body) in data {
            let (Some(name), Some(body)) = (name.as_str(), body.as_str()) else {
                continue;
            };
            if body.contains("Statement:") {
                let path = dir.join(name);
                std::fs::write(&path, body).expect("write policy");
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn shipped_policies_have_no_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let r = root();
    let egress_k8s = manifest_policies(
        &r.join("deploy/kubernetes/egress/configmap.yaml"),
        tmp.path(),
    );
    let sidecar_k8s = manifest_policies(&r.join("deploy/kubernetes/sidecar/pod.yaml"), tmp.path());
    assert!(!egress_k8s.is_empty() && !sidecar_k8s.is_empty());
    let deployments: [(&str, &str, Vec<PathBuf>); 2] = [
        (
            "[etl, janitor]",
            "analytics-raw",
            [
                vec![
                    r.join("policies/egress"),
                    r.join("docs/policy.example.yaml"),
                ],
                egress_k8s,
            ]
            .concat(),
        ),
        (
            "[app]",
            "app-data",
            [vec![r.join("policies/sidecar")], sidecar_k8s].concat(),
        ),
    ];
    for (i, (principals, bucket, paths)) in deployments.iter().enumerate() {
        let names: Vec<String> = principals
            .trim_matches(|c| c == '[' || c == ']')
            .split(", ")
            .enumerate()
            .map(|(n, p)| {
                format!("  - {{ name: {p}, access_key_id: AKIAEXAMPLE{n:09}, secret_access_key: {{ env: S3GATE_FIXTURE_SECRET }} }}\n")
            })
            .collect();
        let paths: Vec<String> = paths.iter().map(|p| format!("{:?}", p)).collect();
        let config = format!(
            "listen: [{{ address: 127.0.0.1:9000 }}]\nregion: us-east-1\nprincipals:\n{}upstreams:\n  store: {{ kind: s3-compatible, endpoint: http://127.0.0.1:3900, region: garage, credentials: {{ access_key_id: GK1, secret_access_key: {{ env: S3GATE_FIXTURE_SECRET }} }} }}\nbuckets:\n  {bucket}: {{ upstream: store }}\npolicies:\n  paths: [{}]\n",
            names.concat(),
            paths.join(", ")
        );
        let file = tmp.path().join(format!("gateway-{i}.yaml"));
        std::fs::write(&file, config).expect("config");
        let (code, out, err) = check(&file, &["--format", "json"]);
        let doc: Value = serde_json::from_str(&out).expect("JSON");
        let errors: Vec<&Value> = doc["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["severity"] == "error")
            .collect();
        assert!(errors.is_empty(), "{principals}: {errors:#?} {err}");
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(doc["ok"], true);
    }
}
