//! Golden-output tests of `s3gate check`, `explain` and `test`.
//! Regenerate with `S3GATE_BLESS=1 cargo test --test cli_golden`.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_s3gate"))
        .args(args)
        .current_dir(root())
        .env("S3GATE_FIXTURE_SECRET", "fixture-secret")
        .output()
        .expect("run s3gate");
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn golden(name: &str, (code, text): (i32, String)) {
    let actual = format!("exit: {code}\n{text}");
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("S3GATE_BLESS").is_some() {
        std::fs::write(&path, &actual).expect("bless");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing golden file {}", path.display()));
    assert_eq!(
        actual, expected,
        "golden mismatch for {name}; run with S3GATE_BLESS=1 to accept"
    );
}

#[test]
fn check_good_config() {
    golden(
        "check-good.txt",
        run(&["check", "--config", "tests/fixtures/cli/gateway.yaml"]),
    );
}

#[test]
fn check_reports_every_policy_error() {
    golden(
        "check-bad.txt",
        run(&["check", "--config", "tests/fixtures/cli/bad-gateway.yaml"]),
    );
}

#[test]
fn explain_denied_abort_without_owner() {
    golden(
        "explain-abort-denied.txt",
        run(&[
            "explain",
            "--config",
            "tests/fixtures/cli/gateway.yaml",
            "--principal",
            "etl",
            "DELETE",
            "/analytics-raw/ingest/a.parquet?uploadId=U1",
        ]),
    );
}

#[test]
fn explain_allowed_upload_part() {
    golden(
        "explain-upload-part-allowed.txt",
        run(&[
            "explain",
            "--config",
            "tests/fixtures/cli/gateway.yaml",
            "--principal",
            "etl",
            "--initiator",
            "self",
            "-H",
            "x-amz-expected-bucket-owner: 111122223333",
            "PUT",
            "http://analytics-raw.s3.internal.example/ingest/a.parquet?partNumber=2&uploadId=U1",
        ]),
    );
}

#[test]
fn test_runs_policy_cases() {
    golden(
        "test-egress.txt",
        run(&["test", "--config", "tests/fixtures/cli/gateway.yaml"]),
    );
}

#[test]
fn repository_policies_pass_their_tests() {
    // The number of `Tests:` cases each folder carries: a run that checks
    // fewer (or none) fails here.
    for (dir, cases) in [("policies/sidecar", 5), ("policies/egress", 8)] {
        let (code, text) = run(&["test", dir]);
        assert_eq!(code, 0, "{dir}: {text}");
        assert!(
            text.contains(&format!("\n{cases} passed, 0 failed\n")),
            "{dir}: {text}"
        );
        assert_eq!(text.matches("PASS ").count(), cases, "{text}");
    }
}

#[test]
fn test_without_any_case_fails() {
    let dir = std::env::temp_dir().join(format!("s3gate-cli-nocases-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("p.yaml"),
        "Version: \"2012-10-17\"\nStatement:\n  - Sid: Read\n    Effect: Allow\n    Principal: \"*\"\n    Action: s3:GetObject\n    Resource: \"arn:aws:s3:::data/*\"\n",
    )
    .expect("policy");
    let (code, text) = run(&["test", dir.to_str().expect("utf-8")]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("0 passed, 0 failed"), "{text}");
    assert!(text.contains("error: no test cases"), "{text}");
}

#[test]
fn check_warns_when_a_route_reaches_the_ownership_state() {
    let dir = std::env::temp_dir().join(format!("s3gate-cli-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let fixture =
        std::fs::read_to_string(root().join("tests/fixtures/cli/gateway.yaml")).expect("fixture");
    let config = fixture
        .replace("paths: [policies]", "paths: []")
        .replace(
            "buckets:\n",
            "buckets:\n  \"*\":\n    upstream: lab\n",
        )
        + "multipart:\n  ownership: { store: s3, upstream: lab, bucket: gw-state, prefix: owners/ }\n";
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, config).expect("config");
    let (code, text) = run(&["check", "--config", path.to_str().expect("utf-8")]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(
            "bucket route `*` can reach the multipart ownership state (bucket `gw-state`"
        ),
        "{text}"
    );
    assert!(!text.contains("`analytics-raw` can reach"), "{text}");
}
