//! README promises that no other test held the gateway to (see
//! docs/guarantees.md), through the real gateway to Garage: no `policies`
//! section means every principal may do everything (and a warning says so),
//! an IPv4 client of a dual-stack listener is its IPv4 address to policies,
//! a principal map's two keys, the SigV4 7-day bound, part numbers, what
//! decision and access lines hold, the denial log line; and without Garage:
//! the open-files warning at start, reserved principal names, the container
//! image's user and health check. tests/upstream_view.rs has the ones
//! observed with stand-in upstreams.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::{
    client, code, raw, start_garage, unique, Audit, BucketRule, Credentials, Garage, GatewayConfig,
    Upstream, ALICE_KEY, ALICE_SECRET, BOB_KEY, BOB_SECRET,
};

const BUCKET: &str = "promises";

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("s3gate-promises-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).expect("dir");
    d
}

fn garage() -> &'static Garage {
    static G: OnceLock<Garage> = OnceLock::new();
    G.get_or_init(|| start_garage(&dir("garage"), &[BUCKET]))
}

fn direct() -> aws_sdk_s3::Client {
    let g = garage();
    client(
        &g.endpoint,
        "garage",
        &g.access_key_id,
        &g.secret_access_key,
        true,
    )
}

async fn stored(key: &str) -> Option<Vec<u8>> {
    let o = direct()
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(o.body.collect().await.ok()?.into_bytes().to_vec())
}

/// README (What works today): "Without a `policies` section, every
/// authenticated principal may do everything on the routed buckets (the
/// gateway logs a warning at start); unsigned requests are refused unless a
/// policy allows `anonymous`."
#[tokio::test]
async fn without_policies_every_principal_may_do_everything_and_a_warning_says_so() {
    let d = dir("nopolicies");
    let gw = GatewayConfig::new(garage())
        .alice_and_bob()
        .bucket(BUCKET, BucketRule::upstream("garage"))
        .start(&d);
    assert!(
        gw.log().contains(
            "no policies configured: every authenticated principal may do everything on the routed buckets"
        ),
        "the warning at start: {}",
        gw.log()
    );
    let bob = client(&gw.endpoint(), "us-east-1", BOB_KEY, BOB_SECRET, true);
    let key = unique("bob/anything");
    bob.put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(ByteStream::from_static(b"bob"))
        .send()
        .await
        .expect("bob may write without policies");
    assert_eq!(stored(&key).await.as_deref(), Some(&b"bob"[..]));
    bob.list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .expect("bob may list");
    let alice = client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    alice
        .delete_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .expect("alice may delete bob's object");
    assert_eq!(stored(&key).await, None);

    // Unsigned requests are refused all the same, and nothing lands.
    let anon = unique("anon");
    let r = raw::send(
        gw.port,
        "PUT",
        &format!("/{BUCKET}/{anon}"),
        &[
            ("host".into(), format!("127.0.0.1:{}", gw.port)),
            ("content-length".into(), "4".into()),
        ],
        b"anon",
    );
    assert_eq!(
        (r.status, r.code().as_deref()),
        (403, Some("AccessDenied")),
        "{}",
        r.body
    );
    assert_eq!(stored(&anon).await, None);
}

/// README (Policies): "`aws:SourceIp` of an IPv4 client on a dual-stack
/// listener is its IPv4 address."
#[tokio::test]
async fn an_ipv4_client_of_a_dual_stack_listener_is_its_ipv4_address() {
    if TcpListener::bind("[::]:0").is_err() {
        eprintln!("SKIP: this machine has no IPv6 (cannot bind [::]:0)");
        return;
    }
    let d = dir("dualstack");
    let gw = GatewayConfig::new(garage())
        .alice_and_bob()
        .listen_on("[::]:0", "127.0.0.1:0")
        .bucket(BUCKET, BucketRule::upstream("garage"))
        .policy(
            r#"Version: "2012-10-17"
Statement:
  - Sid: AliceFromLoopbackV4
    Effect: Allow
    Principal: alice
    Action: "s3:*"
    Resource: "*"
    Condition:
      IpAddress: { aws:SourceIp: 127.0.0.1/32 }
  - Sid: BobFromAnywhereButLoopbackV4
    Effect: Allow
    Principal: bob
    Action: "s3:*"
    Resource: "*"
    Condition:
      NotIpAddress: { aws:SourceIp: 127.0.0.1/32 }
"#,
        )
        .start(&d);
    assert!(
        gw.log().contains("address=[::]:"),
        "the S3 listener is dual-stack: {}",
        gw.log()
    );
    // The clients connect to 127.0.0.1: IPv4 into an IPv6 socket.
    let alice = client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    let key = unique("v4");
    alice
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(ByteStream::from_static(b"v4"))
        .send()
        .await
        .expect("127.0.0.1/32 matches an IPv4 client of a dual-stack listener");
    assert_eq!(stored(&key).await.as_deref(), Some(&b"v4"[..]));
    let bob = client(&gw.endpoint(), "us-east-1", BOB_KEY, BOB_SECRET, true);
    let e = bob
        .get_object()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .expect_err("bob's NotIpAddress 127.0.0.1/32 does not match 127.0.0.1");
    assert_eq!(code(&e), Some("AccessDenied"));
}

/// README (Operating it): "`serve` warns at start when the open-files limit
/// is below what the connection limits allow."
#[test]
fn serve_warns_when_the_open_files_limit_is_below_the_connection_limits() {
    let d = dir("nofile");
    let g = garage();
    let config = GatewayConfig::new(g)
        .alice_and_bob()
        .bucket(BUCKET, BucketRule::upstream("garage"))
        .write(&d);
    const WARNING: &str = "the open-files limit is below what limits.max_connections allows";
    // (ulimit, whether the warning is expected): the default max_connections
    // (4096 per listener, the admin listener's included) plus 256 need 8448.
    for (limit, warned) in [(1024, true), (16384, false)] {
        let log_path = d.join(format!("serve-{limit}.log"));
        let log = std::fs::File::create(&log_path).expect("log");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n {limit} && exec \"$0\" serve --config \"$1\""
            ))
            .arg(env!("CARGO_BIN_EXE_s3gate"))
            .arg(&config)
            .env("S3GATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start the gateway");
        let deadline = Instant::now() + Duration::from_secs(30);
        let text = loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            // The warning comes once the listeners are bound, before the
            // server starts its services.
            if text.contains(WARNING) || text.contains("Server starting") {
                break text;
            }
            if let Ok(Some(status)) = child.try_wait() {
                // The hard limit may be below 16384 here: then only the
                // warned case can run.
                if !warned && text.contains("ulimit") {
                    eprintln!("SKIP the unwarned case: {text}");
                    break String::new();
                }
                panic!("the gateway exited ({status}) under ulimit -n {limit}:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "the gateway did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20)); // log poll interval
        };
        let _ = child.kill();
        let _ = child.wait();
        if text.is_empty() {
            continue;
        }
        assert_eq!(
            text.contains(WARNING),
            warned,
            "ulimit -n {limit}: warning expected: {warned}\n{text}"
        );
    }
}

/// README (Configuration): "Names `*` and `anonymous` are reserved."
#[test]
fn reserved_principal_names_are_refused_by_check() {
    let d = dir("reserved");
    for name in ["anonymous", "*"] {
        let config = GatewayConfig::empty()
            .principal(name, ALICE_KEY, ALICE_SECRET)
            .upstream(
                "up",
                Upstream::s3_compatible("http://127.0.0.1:9", Credentials::keys("K", "S")),
            )
            .bucket(BUCKET, BucketRule::upstream("up"))
            .write(&d);
        let out = Command::new(env!("CARGO_BIN_EXE_s3gate"))
            .args(["check", "--config"])
            .arg(&config)
            .output()
            .expect("run check");
        let err = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "`{name}` must not load:\n{err}");
        assert!(
            err.contains(&format!("`{name}` is reserved")),
            "`{name}`: the error names the reserved name:\n{err}"
        );
    }
}

/// README (Deployment): "runtime: debian-slim, non-root uid 10001,
/// `HEALTHCHECK` via `s3gate health`". The suite does not build the image;
/// this reads the Dockerfile that does.
#[test]
fn the_container_image_runs_as_non_root_with_a_health_check() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile"))
        .expect("Dockerfile");
    // The last stage is the runtime image.
    let runtime = text.rsplit("\nFROM ").next().expect("a FROM line");
    assert!(
        runtime.contains("debian") && runtime.contains("slim"),
        "{runtime}"
    );
    let user = runtime
        .lines()
        .filter_map(|l| l.trim().strip_prefix("USER "))
        .next_back()
        .unwrap_or_else(|| panic!("the runtime stage sets no USER:\n{runtime}"));
    assert_eq!(user.trim(), "10001");
    let health = runtime
        .lines()
        .find(|l| l.trim().starts_with("HEALTHCHECK"))
        .unwrap_or_else(|| panic!("no HEALTHCHECK:\n{runtime}"));
    assert!(
        health.contains("s3gate") && health.contains("\"health\""),
        "{health}"
    );
}

const CAROL_KEY: &str = "AKIACAROL00000000003";
const CAROL_SECRET: &str = "carol-secret-key-for-tests-000000000003";

struct Policed {
    gateway: common::Gateway,
    decisions: PathBuf,
    audit: PathBuf,
}

/// A gateway with a policy naming alice under `AWS` and bob under `s3gate`
/// (carol is named by neither), and a decision log.
fn policed() -> &'static Policed {
    static P: OnceLock<Policed> = OnceLock::new();
    P.get_or_init(|| {
        let d = dir("policed");
        let decisions = d.join("decisions.jsonl");
        let gateway = GatewayConfig::new(garage())
            .alice_and_bob()
            .principal("carol", CAROL_KEY, CAROL_SECRET)
            .bucket(BUCKET, BucketRule::upstream("garage"))
            .policy(
                r#"Version: "2012-10-17"
Statement:
  - Sid: AliceAndBob
    Effect: Allow
    Principal: { AWS: alice, s3gate: [bob] }
    Action: "s3:*"
    Resource: ["arn:aws:s3:::promises", "arn:aws:s3:::promises/*"]
  - Sid: NoSecretsForBob
    Effect: Deny
    Principal: bob
    Action: s3:PutObject
    Resource: arn:aws:s3:::promises/secret/*
"#,
            )
            .extra_yaml(&format!("decision_log:\n  path: {}\n", decisions.display()))
            .audit(Audit::new(d.join("audit.jsonl")).events(&[
                "CreateMultipartUpload",
                "CompleteMultipartUpload",
                "Denied",
            ]))
            .start(&d);
        Policed {
            gateway,
            decisions,
            audit: d.join("audit.jsonl"),
        }
    })
}

fn host() -> String {
    format!("127.0.0.1:{}", policed().gateway.port)
}

/// README (Policies): "`Principal: { AWS: …, s3gate: … }` counts the names
/// of both keys."
#[tokio::test]
async fn a_principal_map_counts_the_names_of_both_keys() {
    let gw = &policed().gateway;
    for (who, key_id, secret) in [
        ("alice", ALICE_KEY, ALICE_SECRET),
        ("bob", BOB_KEY, BOB_SECRET),
    ] {
        let key = unique(who);
        client(&gw.endpoint(), "us-east-1", key_id, secret, true)
            .put_object()
            .bucket(BUCKET)
            .key(&key)
            .body(ByteStream::from_static(b"named"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{who} is named by the statement: {e:?}"));
        assert!(stored(&key).await.is_some(), "{who}");
    }
    let key = unique("carol");
    let e = client(&gw.endpoint(), "us-east-1", CAROL_KEY, CAROL_SECRET, true)
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(ByteStream::from_static(b"not named"))
        .send()
        .await
        .expect_err("carol is named by neither key");
    assert_eq!(code(&e), Some("AccessDenied"));
    assert_eq!(stored(&key).await, None);
}

/// README (Policies): "Presigned URLs of either version that expire more
/// than 7 days ahead are refused." (SigV4 here; SigV2 in
/// src/auth/sigv2.rs and tests/abuse_limits.rs.) S3 answers such a SigV4
/// URL with `AuthorizationQueryParametersError`, and so does the gateway.
#[tokio::test]
async fn presigned_v4_urls_valid_for_more_than_seven_days_are_refused() {
    let key = unique("presigned-week");
    client(
        &policed().gateway.endpoint(),
        "us-east-1",
        ALICE_KEY,
        ALICE_SECRET,
        true,
    )
    .put_object()
    .bucket(BUCKET)
    .key(&key)
    .body(ByteStream::from_static(b"week"))
    .send()
    .await
    .expect("put");
    let signer = raw::Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: std::time::SystemTime::now(),
    };
    let get = |expires: Duration| {
        let target = signer.presign("GET", &host(), &format!("/{BUCKET}/{key}"), expires);
        raw::send(
            policed().gateway.port,
            "GET",
            &target,
            &[("host".into(), host())],
            b"",
        )
    };
    let week = get(Duration::from_secs(7 * 24 * 3600));
    assert_eq!(week.status, 200, "seven days is the limit: {}", week.body);
    let longer = get(Duration::from_secs(7 * 24 * 3600 + 1));
    assert_eq!(
        (longer.status, longer.code().as_deref()),
        (400, Some("AuthorizationQueryParametersError")),
        "{}",
        longer.body
    );
}

/// README (Writing policies): the decision log has "everything the decision
/// read … and `policy_version` … Never a secret or a signature".
/// README (Logs): "One line per request" with principal, operation, bucket,
/// key, upstream, status, S3 error code, bytes in/out, duration.
#[tokio::test]
async fn decision_lines_and_access_lines_carry_what_they_promise_and_no_secret() {
    let p = policed();
    let key = unique("logged");
    client(
        &p.gateway.endpoint(),
        "us-east-1",
        ALICE_KEY,
        ALICE_SECRET,
        true,
    )
    .put_object()
    .bucket(BUCKET)
    .key(&key)
    .body(ByteStream::from_static(b"0123456789"))
    .send()
    .await
    .expect("put");
    // A presigned GET too: its signature is in the query.
    let signer = raw::Signer {
        key: BOB_KEY,
        secret: BOB_SECRET,
        region: "us-east-1",
        time: std::time::SystemTime::now(),
    };
    let target = signer.presign(
        "GET",
        &host(),
        &format!("/{BUCKET}/{key}"),
        Duration::from_secs(60),
    );
    let r = raw::send(
        p.gateway.port,
        "GET",
        &target,
        &[("host".into(), host())],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let signature = target
        .split("X-Amz-Signature=")
        .nth(1)
        .expect("signature")
        .to_string();

    // The decision log's lines are written by a thread of their own.
    let deadline = Instant::now() + Duration::from_secs(10);
    let lines: Vec<serde_json::Value> = loop {
        let text = std::fs::read_to_string(&p.decisions).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let mentions = |op: &str| {
            lines
                .iter()
                .any(|l| l.to_string().contains(&key) && l.to_string().contains(op))
        };
        if mentions("PutObject") && mentions("GetObject") {
            assert!(
                !text.contains(&signature),
                "a signature in the decision log:\n{text}"
            );
            for secret in [ALICE_SECRET, BOB_SECRET, &garage().secret_access_key] {
                assert!(!text.contains(secret), "a secret in the decision log");
            }
            assert!(
                !text.to_ascii_lowercase().contains("authorization"),
                "the Authorization header is never a condition key:\n{text}"
            );
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "no decision lines for {key}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20)); // writer poll interval
    };
    let put = lines
        .iter()
        .find(|l| l.to_string().contains(&key) && l.to_string().contains("PutObject"))
        .expect("put line");
    let text = put.to_string();
    for field in [
        "policy_version",
        "principal",
        "alice",
        "AliceAndBob",
        "s3:PutObject",
    ] {
        assert!(
            text.contains(field),
            "`{field}` in the decision line: {text}"
        );
    }

    let log = p.gateway.log();
    assert!(
        !log.contains(&signature),
        "a presigned signature in the log"
    );
    let access = log
        .lines()
        .find(|l| l.contains("s3gate::access") && l.contains(&key) && l.contains("PutObject"))
        .unwrap_or_else(|| panic!("no access line for the PUT:\n{log}"));
    for field in [
        "request_id=".to_string(),
        "principal=\"alice\"".to_string(),
        "operation=\"PutObject\"".to_string(),
        format!("bucket=\"{BUCKET}\""),
        format!("key=\"{key}\""),
        "upstream=\"garage\"".to_string(),
        "status=200".to_string(),
        "error=\"-\"".to_string(),
        "bytes_in=10".to_string(),
        "bytes_out=".to_string(),
        "duration_ms=".to_string(),
    ] {
        assert!(
            access.contains(&field),
            "`{field}` in the access line: {access}"
        );
    }
}

/// README (Policies): "Denials are `403 AccessDenied`; the log line (never
/// the client) names the deciding statements."
#[tokio::test]
async fn the_log_names_the_deciding_statement_and_the_client_is_not_told() {
    let gw = &policed().gateway;
    let key = unique("secret/x");
    let e = client(&gw.endpoint(), "us-east-1", BOB_KEY, BOB_SECRET, true)
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(ByteStream::from_static(b"no"))
        .send()
        .await
        .expect_err("the Deny wins over the Allow");
    assert_eq!(code(&e), Some("AccessDenied"));
    let raw = e.raw_response().expect("raw response");
    assert_eq!(raw.status().as_u16(), 403);
    let body = raw
        .body()
        .bytes()
        .map(|b| String::from_utf8_lossy(b).to_string())
        .unwrap_or_default();
    assert!(
        !body.contains("NoSecretsForBob") && !body.contains("AliceAndBob"),
        "the client is not told which statement decided: {body}"
    );
    assert_eq!(stored(&key).await, None);
    let log = gw.log();
    let line = log
        .lines()
        .find(|l| {
            l.contains("access denied by policy")
                && l.contains("principal=\"bob\"")
                && l.contains("NoSecretsForBob")
        })
        .unwrap_or_else(|| panic!("no denial line naming NoSecretsForBob:\n{log}"));
    assert!(line.contains("s3:PutObject"), "{line}");
}

/// Guarantees: "a part number outside 1–10,000" is refused before anything
/// goes upstream.
#[tokio::test]
async fn part_numbers_outside_the_s3_range_are_refused_before_the_upstream() {
    let gw = &policed().gateway;
    let key = unique("parts");
    let alice = client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    let up = alice
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .expect("create");
    let id = up.upload_id().expect("id").to_string();
    let signer = raw::Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: std::time::SystemTime::now(),
    };
    for n in ["0", "10001", "99999999999"] {
        let target = format!("/{BUCKET}/{key}?partNumber={n}&uploadId={id}");
        let body = b"part";
        let headers = vec![
            ("host".to_string(), host()),
            ("x-amz-content-sha256".to_string(), raw::sha256_hex(body)),
            ("content-length".to_string(), body.len().to_string()),
        ];
        let (headers, _) = signer.sign_headers("PUT", &target, headers, &raw::sha256_hex(body));
        let r = raw::send(gw.port, "PUT", &target, &headers, body);
        assert_eq!(
            (r.status, r.code().as_deref()),
            (400, Some("InvalidArgument")),
            "partNumber={n}: {}",
            r.body
        );
    }
    let parts = direct()
        .list_parts()
        .bucket(BUCKET)
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("list parts at Garage");
    assert!(
        parts.parts().is_empty(),
        "no part reached Garage: {parts:?}"
    );
    alice
        .abort_multipart_upload()
        .bucket(BUCKET)
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("abort");
}

/// README (Audit log): "`events` can add `CreateMultipartUpload`,
/// `CompleteMultipartUpload` and `Denied`."
#[tokio::test]
async fn audit_events_add_creates_completes_and_denials() {
    let p = policed();
    let key = unique("audited");
    let alice = client(
        &p.gateway.endpoint(),
        "us-east-1",
        ALICE_KEY,
        ALICE_SECRET,
        true,
    );
    let id = alice
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .expect("create")
        .upload_id()
        .expect("id")
        .to_string();
    let part = alice
        .upload_part()
        .bucket(BUCKET)
        .key(&key)
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from_static(b"one part"))
        .send()
        .await
        .expect("part");
    alice
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(&key)
        .upload_id(&id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap_or_default())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("complete");
    let denied = unique("denied");
    client(
        &p.gateway.endpoint(),
        "us-east-1",
        CAROL_KEY,
        CAROL_SECRET,
        true,
    )
    .put_object()
    .bucket(BUCKET)
    .key(&denied)
    .body(ByteStream::from_static(b"no"))
    .send()
    .await
    .expect_err("carol is allowed nothing");
    // Aborts are on disk before their answer; a denial's record may follow
    // it by a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&p.audit).unwrap_or_default();
        let records: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let has = |event: &str, k: &str| {
            records
                .iter()
                .any(|r| r["event"] == event && r["key"].as_str() == Some(k))
        };
        if has("CreateMultipartUpload", &key)
            && has("CompleteMultipartUpload", &key)
            && has("Denied", &denied)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a create, a complete and a denial recorded:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await; // audit poll interval
    }
}

/// A SigV2 `Authorization: AWS key:signature` header for a bodiless request
/// on `/bucket/key` (the RESTAuthentication string to sign), written here
/// independently of the gateway's verifier.
fn sigv2_headers(method: &str, path: &str, key: &str, secret: &str) -> Vec<(String, String)> {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let date = httpdate::fmt_http_date(std::time::SystemTime::now());
    let string_to_sign = format!("{method}\n\n\n{date}\n{path}");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(string_to_sign.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    vec![
        ("host".to_string(), host()),
        ("date".to_string(), date),
        (
            "authorization".to_string(),
            format!("AWS {key}:{signature}"),
        ),
    ]
}

/// README (What works today): "legacy SigV2 (header and presigned query …)".
/// The header form, through the gateway: a good signature reads the object,
/// a wrong secret is `SignatureDoesNotMatch`, and the principal it names is
/// decided as any other (carol is allowed nothing).
#[tokio::test]
async fn sigv2_header_signatures_are_verified_and_decided() {
    let gw = &policed().gateway;
    let key = unique("v2");
    client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true)
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(ByteStream::from_static(b"signed the old way"))
        .send()
        .await
        .expect("put");
    let path = format!("/{BUCKET}/{key}");
    let r = raw::send(
        gw.port,
        "GET",
        &path,
        &sigv2_headers("GET", &path, ALICE_KEY, ALICE_SECRET),
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "signed the old way");
    let r = raw::send(
        gw.port,
        "GET",
        &path,
        &sigv2_headers("GET", &path, ALICE_KEY, "not-alice-s-secret"),
        b"",
    );
    assert_eq!(
        (r.status, r.code().as_deref()),
        (403, Some("SignatureDoesNotMatch")),
        "{}",
        r.body
    );
    let r = raw::send(
        gw.port,
        "GET",
        &path,
        &sigv2_headers("GET", &path, CAROL_KEY, CAROL_SECRET),
        b"",
    );
    assert_eq!(
        (r.status, r.code().as_deref()),
        (403, Some("AccessDenied")),
        "{}",
        r.body
    );
}

/// The sum of a metric's series `name{…} value` on a gateway's /metrics.
fn metric(gw: &common::Gateway, series: &str) -> u64 {
    let (_, body) = common::http_get(gw.admin_port, "/metrics");
    body.lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// README (Reaper): "With `audit.on_failure: reject` and an unwritable log,
/// nothing is aborted."
#[tokio::test]
async fn the_reaper_aborts_nothing_while_the_audit_log_cannot_be_written() {
    let d = dir("reaper-reject");
    // A directory where the log file should be: it cannot be opened.
    let audit = d.join("audit-is-a-dir");
    std::fs::create_dir_all(&audit).expect("dir");
    let gw = GatewayConfig::new(garage())
        .alice_and_bob()
        .bucket(
            BUCKET,
            BucketRule::upstream("garage").abort_incomplete_after("1s"),
        )
        .reaper("1s")
        .audit(Audit::new(&audit).on_failure("reject"))
        .start(&d);
    let key = unique("reap-me-not");
    let id = client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true)
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(&key)
        .send()
        .await
        .expect("create")
        .upload_id()
        .expect("id")
        .to_string();
    // Rounds that start once the upload is past its limit (1 s).
    let expired_at = Instant::now() + Duration::from_millis(1100);
    let mut rounds_after = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rounds = metric(&gw, "s3gate_reaper_runs_total");
        match rounds_after {
            None if Instant::now() >= expired_at => rounds_after = Some(rounds),
            Some(r) if rounds >= r + 2 => break,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "the reaper ran {rounds} round(s):\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await; // metrics poll interval
    }
    direct()
        .list_parts()
        .bucket(BUCKET)
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("the expired upload is still there: nothing was aborted");
    direct()
        .abort_multipart_upload()
        .bucket(BUCKET)
        .key(&key)
        .upload_id(&id)
        .send()
        .await
        .expect("clean up");
}
