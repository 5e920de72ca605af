//! `s3gate explain` decides exactly as `serve` does: a table of requests
//! (bucket rules, payer rules, header checks, copy sources, the initiator
//! rule, ambiguous requests) sent through the running gateway in front of
//! Garage and given to `explain` with the same config; every row must get
//! the same decision (and, when refused, the same S3 error code).

mod common;

use std::process::Command;
use std::time::SystemTime;

use common::raw::{send, sha256_hex, Signer};
use common::*;

const POLICY: &str = r#"Version: "2012-10-17"
Statement:
  - Sid: AliceWorks
    Effect: Allow
    Principal: alice
    Action: [s3:GetObject, s3:PutObject, s3:ListMultipartUploadParts, s3:AbortMultipartUpload]
    Resource: [arn:aws:s3:::owned/*, arn:aws:s3:::nopayer/*, arn:aws:s3:::parity/open/*]
  - Sid: AliceLists
    Effect: Allow
    Principal: alice
    Action: s3:ListBucket
    Resource: arn:aws:s3:::parity
  - Sid: OnlyTheInitiator
    Effect: Deny
    Principal: "*"
    Action: [s3:PutObject, s3:ListMultipartUploadParts, s3:AbortMultipartUpload]
    Resource: "*"
    Condition:
      "Null": { s3gate:MultipartInitiator: "false" }
      StringNotEquals: { s3gate:MultipartInitiator: self }
  - Sid: SmallWritesOnly
    Effect: Deny
    Principal: "*"
    Action: s3:PutObject
    Resource: "*"
    Condition:
      NumericGreaterThan: { s3gate:ContentLength: "1000" }
"#;

fn config(garage: &Garage) -> GatewayConfig {
    GatewayConfig::new(garage)
        .hostnames(&["localhost"])
        .alice_and_bob()
        .bucket(
            "owned",
            BucketRule::upstream("garage")
                .target("parity")
                .owner("111122223333", "require"),
        )
        .bucket(
            "nopayer",
            BucketRule::upstream("garage")
                .target("parity")
                .request_payer("deny"),
        )
        .bucket("*", BucketRule::upstream("garage"))
        .policy(POLICY)
}

/// One row: who, method, target, headers, body length.
struct Row {
    principal: &'static str,
    method: &'static str,
    target: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: usize,
}

const ROWS: &[Row] = &[
    // Bucket rules: the owner header is required on `owned`.
    Row {
        principal: "alice",
        method: "PUT",
        target: "/owned/open/a",
        headers: &[],
        body: 10,
    },
    Row {
        principal: "alice",
        method: "PUT",
        target: "/owned/open/a",
        headers: &[("x-amz-expected-bucket-owner", "111122223333")],
        body: 10,
    },
    Row {
        principal: "alice",
        method: "PUT",
        target: "/owned/open/a",
        headers: &[("x-amz-expected-bucket-owner", "999999999999")],
        body: 10,
    },
    // Payer rules: requester-pays refused on `nopayer`.
    Row {
        principal: "alice",
        method: "GET",
        target: "/nopayer/open/a",
        headers: &[("x-amz-request-payer", "requester")],
        body: 0,
    },
    Row {
        principal: "alice",
        method: "GET",
        target: "/nopayer/open/a",
        headers: &[],
        body: 0,
    },
    // Policy: allowed and denied keys, headers that need more.
    Row {
        principal: "alice",
        method: "GET",
        target: "/parity/open/a",
        headers: &[],
        body: 0,
    },
    Row {
        principal: "alice",
        method: "GET",
        target: "/parity/closed/a",
        headers: &[],
        body: 0,
    },
    Row {
        principal: "bob",
        method: "GET",
        target: "/parity/open/a",
        headers: &[],
        body: 0,
    },
    Row {
        principal: "alice",
        method: "PUT",
        target: "/parity/open/t",
        headers: &[("x-amz-tagging", "a=b")],
        body: 10,
    },
    Row {
        principal: "alice",
        method: "PUT",
        target: "/parity/open/big",
        headers: &[],
        body: 5000,
    },
    Row {
        principal: "alice",
        method: "GET",
        target: "/parity?list-type=2&prefix=open/",
        headers: &[],
        body: 0,
    },
    // Copy sources: the source is decided too.
    Row {
        principal: "alice",
        method: "PUT",
        target: "/parity/open/c",
        headers: &[("x-amz-copy-source", "/parity/closed/a")],
        body: 0,
    },
    // The initiator rule: an upload the gateway has no record of.
    Row {
        principal: "alice",
        method: "GET",
        target: "/parity/open/a?uploadId=0123abcd",
        headers: &[],
        body: 0,
    },
    Row {
        principal: "alice",
        method: "DELETE",
        target: "/parity/open/a?uploadId=0123abcd",
        headers: &[],
        body: 0,
    },
    // Ambiguous or ill-named requests.
    Row {
        principal: "alice",
        method: "GET",
        target: "/parity/open/a?uploadId=",
        headers: &[],
        body: 0,
    },
    Row {
        principal: "alice",
        method: "PUT",
        target: "/parity//lifecycle",
        headers: &[],
        body: 0,
    },
    Row {
        principal: "alice",
        method: "GET",
        target: "/parity/open/a?prefix=x",
        headers: &[],
        body: 0,
    },
    Row {
        principal: "alice",
        method: "PUT",
        target: "/parity?notification&policy",
        headers: &[],
        body: 0,
    },
    Row {
        principal: "alice",
        method: "GET",
        target: "/parity?tagging",
        headers: &[],
        body: 0,
    },
    // The payer given twice (header and query): one value must be decided.
    Row {
        principal: "alice",
        method: "GET",
        target: "/parity/open/a?x-amz-request-payer=requester",
        headers: &[("x-amz-request-payer", "requester")],
        body: 0,
    },
    Row {
        principal: "alice",
        method: "GET",
        target: "/parity/open/a?x-amz-request-payer=requester",
        headers: &[],
        body: 0,
    },
    // CreateBucket headers that need more than s3:CreateBucket.
    Row {
        principal: "alice",
        method: "PUT",
        target: "/newbucket",
        headers: &[("x-amz-acl", "public-read")],
        body: 0,
    },
];

/// The gateway's answer: `Ok(())` when it let the request through (the
/// answer came from Garage, or succeeded), `Err(code)` when it refused.
fn through_gateway(port: u16, row: &Row) -> Result<(), String> {
    let (key, secret) = match row.principal {
        "alice" => (ALICE_KEY, ALICE_SECRET),
        _ => (BOB_KEY, BOB_SECRET),
    };
    let s = Signer {
        key,
        secret,
        region: "us-east-1",
        time: SystemTime::now(),
    };
    let body = vec![b'x'; row.body];
    let sha = sha256_hex(&body);
    let mut headers = vec![
        ("host".to_string(), format!("127.0.0.1:{port}")),
        ("x-amz-content-sha256".to_string(), sha.clone()),
    ];
    for (n, v) in row.headers {
        headers.push((n.to_string(), v.to_string()));
    }
    if row.body > 0 {
        headers.push(("content-length".into(), row.body.to_string()));
    }
    let (headers, _) = s.sign_headers(row.method, row.target, headers, &sha);
    let r = send(port, row.method, row.target, &headers, &body);
    if r.body.contains("<HostId>s3gate</HostId>") {
        Err(r.code().unwrap_or_default())
    } else {
        Ok(())
    }
}

fn through_explain(config: &std::path::Path, row: &Row) -> Result<(), String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3gate"));
    cmd.arg("explain")
        .arg("--config")
        .arg(config)
        .args(["--principal", row.principal]);
    let length = row.body.to_string();
    let mut headers: Vec<String> = row
        .headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}"))
        .collect();
    if row.body > 0 {
        headers.push(format!("content-length: {length}"));
    }
    for h in &headers {
        cmd.arg("-H").arg(h);
    }
    let out = cmd
        .arg(row.method)
        .arg(row.target)
        .output()
        .expect("run explain");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = text
        .lines()
        .find(|l| l.starts_with("decision:"))
        .unwrap_or_else(|| {
            panic!(
                "no decision in {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    if line.contains("Allow") {
        return Ok(());
    }
    let code = text
        .lines()
        .find_map(|l| l.strip_prefix("refused:"))
        .and_then(|r| r.trim().split(':').next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("a Deny without its code: {text}"));
    Err(code)
}

#[test]
fn explain_decides_as_serve_does() {
    let dir = std::env::temp_dir().join(format!("s3gate-parity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let garage = start_garage(&dir, &["parity"]);
    let gw = config(&garage).start(&dir.join("gw"));
    let port = gw.port;
    let mut mismatches = Vec::new();
    let mut allowed = 0;
    for row in ROWS {
        let served = through_gateway(port, row);
        let explained = through_explain(&gw.config_path, row);
        if served.is_ok() {
            allowed += 1;
        }
        if served != explained {
            mismatches.push(format!(
                "{} {} {} {:?}: serve {served:?}, explain {explained:?}",
                row.principal, row.method, row.target, row.headers
            ));
        }
    }
    gw.stop();
    assert!(
        mismatches.is_empty(),
        "explain disagrees with serve:\n{}",
        mismatches.join("\n")
    );
    // The table is not all one answer.
    assert!(
        allowed >= 4 && allowed < ROWS.len(),
        "{allowed} of {} allowed",
        ROWS.len()
    );
}
