//! Upstream credentials from real sources: environment and shared profile
//! (checked by Garage's signature verification), assume_role and web
//! identity against moto's STS, ECS container credentials and IMDSv2 from
//! local stand-ins
//! whose short-lived keys are refreshed while requests keep flowing.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use common::{
    client, free_port, start_garage, unique, AssumeRole, BucketRule, Credentials, Gateway,
    GatewayConfig, Upstream, ALICE_KEY, ALICE_SECRET,
};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("s3gate-creds-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("dir");
    d
}

/// Nothing from this machine's AWS setup may leak into the chain.
fn isolated(extra: &[(&str, String)]) -> Vec<(&'static str, String)> {
    let mut env: Vec<(&'static str, String)> = vec![
        ("AWS_CONFIG_FILE", "/nonexistent/s3gate-test".into()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/s3gate-test".into(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_ACCESS_KEY_ID", String::new()),
        ("AWS_SECRET_ACCESS_KEY", String::new()),
    ];
    for (k, v) in extra {
        env.retain(|(e, _)| e != k);
        let key: &'static str = Box::leak(k.to_string().into_boxed_str());
        env.push((key, v.clone()));
    }
    env.retain(|(_, v)| !v.is_empty());
    env
}

fn config(upstream: &str, credentials: Credentials) -> GatewayConfig {
    GatewayConfig::empty()
        .principal("alice", ALICE_KEY, ALICE_SECRET)
        .upstream(
            "up",
            Upstream::s3_compatible(upstream, credentials).region("garage"),
        )
        .bucket("*", BucketRule::upstream("up"))
}

fn gateway(
    name: &str,
    upstream: &str,
    credentials: Credentials,
    env: &[(&str, String)],
) -> Gateway {
    let mut env = isolated(env);
    env.push(("AWS_PROFILE", "default".into()));
    // The gateway must not inherit the test's own AWS variables (keys,
    // session token, role, profile, container or web-identity settings):
    // it starts with an empty environment and only what is set here.
    config(upstream, credentials)
        .clean_env()
        .start_with_env(&dir(name), &env)
}

async fn round_trip(gw: &Gateway, bucket: &str) {
    let c = client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    let key = unique("creds");
    c.put_object()
        .bucket(bucket)
        .key(&key)
        .body(ByteStream::from_static(b"signed by the chain"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put: {e:?}\n{}", gw.log()));
    let got = c
        .get_object()
        .bucket(bucket)
        .key(&key)
        .send()
        .await
        .expect("get")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes();
    assert_eq!(&got[..], b"signed by the chain");
}

#[tokio::test]
async fn environment_credentials() {
    let d = dir("env-garage");
    let g = start_garage(&d, &["creds-env"]);
    let gw = gateway(
        "env",
        &g.endpoint,
        Credentials::default_chain(),
        &[
            ("AWS_ACCESS_KEY_ID", g.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", g.secret_access_key.clone()),
        ],
    );
    round_trip(&gw, "creds-env").await;
}

#[tokio::test]
async fn shared_profile_credentials() {
    let d = dir("profile-garage");
    let g = start_garage(&d, &["creds-profile"]);
    let file = d.join("credentials");
    std::fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            g.access_key_id, g.secret_access_key
        ),
    )
    .expect("write");
    let gw = gateway(
        "profile",
        &g.endpoint,
        Credentials::default_chain(),
        &[("AWS_SHARED_CREDENTIALS_FILE", file.display().to_string())],
    );
    round_trip(&gw, "creds-profile").await;
}

/// An upstream that answers like S3 and records the access key ids and
/// session tokens it was signed with.
/// (access key id, had a session token) of each request.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

fn recorder() -> (String, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().expect("clone"));
                let (mut len, mut akid, mut token) = (0usize, String::new(), false);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if let Some(v) = line.split("Credential=").nth(1) {
                        akid = v.split('/').next().unwrap_or("").to_string();
                    }
                    token |= lower.starts_with("x-amz-security-token:");
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0u8; len];
                let _ = r.read_exact(&mut body);
                if let Ok(mut g) = log.lock() {
                    g.push((akid, token));
                }
                let mut c = conn;
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\netag: \"0\"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            });
        }
    });
    (format!("http://127.0.0.1:{port}"), seen)
}

/// moto's server (STS) from the test venv.
fn moto() -> (Child, String) {
    let venv = std::env::var("S3GATE_VENV")
        .ok()
        .map(PathBuf::from)
        .or_else(|| {
            let base =
                PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/s3gate");
            std::fs::read_dir(base)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.join("bin/moto_server").exists())
        });
    let bin = venv
        .map(|v| v.join("bin/moto_server"))
        .filter(|b| b.exists())
        .expect("moto_server not found: run .ci/setup");
    // moto cannot report the port of a port-0 bind: a free port, and
    // another one if moto could not bind it.
    for _ in 0..3 {
        let port = free_port();
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto");
        if listening(port, &mut child) {
            return (child, format!("http://127.0.0.1:{port}"));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("moto_server did not start");
}

/// Whether `child` comes to accept connections on `port` (false: it exited
/// first, or 30 s passed).
fn listening(port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return child.try_wait().ok().flatten().is_none();
        }
        std::thread::sleep(Duration::from_millis(20)); // readiness poll interval
    }
    false
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn put_through(gw: &Gateway) {
    let c = client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    c.put_object()
        .bucket("any")
        .key(unique("k"))
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put: {e:?}\n{}", gw.log()));
}

#[tokio::test]
async fn assume_role_against_moto_sts() {
    let (m, sts) = moto();
    let _m = Kill(m);
    let (up, seen) = recorder();
    let creds = Credentials::assume_role(AssumeRole {
        role_arn: "arn:aws:iam::123456789012:role/s3gate-egress".into(),
        external_id: Some("ext-1".into()),
        session_name: Some("gw".into()),
        source: Some("aws-default-chain".into()),
    });
    let gw = gateway(
        "assume",
        &up,
        creds,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIASOURCE0000000001".into()),
            ("AWS_SECRET_ACCESS_KEY", "source-secret".into()),
            ("AWS_ENDPOINT_URL_STS", sts),
        ],
    );
    put_through(&gw).await;
    let seen = seen.lock().map(|g| g.clone()).unwrap_or_default();
    let (akid, token) = seen
        .last()
        .cloned()
        .expect("a request reached the upstream");
    assert!(
        akid != "AKIASOURCE0000000001" && !akid.is_empty(),
        "signed with the assumed role's keys, not the source's: {akid}"
    );
    assert!(token, "temporary credentials carry a session token");
}

#[tokio::test]
async fn web_identity_against_moto_sts() {
    let (m, sts) = moto();
    let _m = Kill(m);
    let (up, seen) = recorder();
    let d = dir("webid");
    let token_file = d.join("token");
    std::fs::write(
        &token_file,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzM2dhdGUifQ.c2ln",
    )
    .expect("token");
    let gw = gateway(
        "webid",
        &up,
        Credentials::default_chain(),
        &[
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                token_file.display().to_string(),
            ),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/irsa".into()),
            ("AWS_ENDPOINT_URL_STS", sts),
            ("AWS_REGION", "us-east-1".into()),
        ],
    );
    put_through(&gw).await;
    let seen = seen.lock().map(|g| g.clone()).unwrap_or_default();
    let (akid, token) = seen
        .last()
        .cloned()
        .expect("a request reached the upstream");
    assert!(
        !akid.is_empty() && token,
        "IRSA-style web identity keys with a session token: {akid}"
    );
}

/// An IMDSv2 stand-in handing out keys that expire 5 min + 1 s from now,
/// a new key id each time.
fn imds() -> (String, Arc<AtomicU32>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let served = Arc::new(AtomicU32::new(0));
    let n = served.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let mut r = BufReader::new(conn.try_clone().expect("clone"));
            let mut first = String::new();
            let _ = r.read_line(&mut first);
            let mut has_token = false;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                has_token |= line
                    .to_ascii_lowercase()
                    .starts_with("x-aws-ec2-metadata-token:");
            }
            let path = first.split(' ').nth(1).unwrap_or("").to_string();
            let body = if first.starts_with("PUT /latest/api/token") {
                "imds-session-token".to_string()
            } else if !has_token {
                String::new()
            } else if path == "/latest/meta-data/iam/security-credentials/"
                || path == "/latest/meta-data/iam/security-credentials"
            {
                "s3gate-role".to_string()
            } else if path.starts_with("/latest/meta-data/iam/security-credentials/s3gate-role") {
                let i = n.fetch_add(1, Ordering::SeqCst);
                let exp = SystemTime::now() + Duration::from_secs(301);
                let secs = exp
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let iso = chrono_like(secs);
                format!(
                    r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAIMDS{i:012}","SecretAccessKey":"secret{i}","Token":"token{i}","Expiration":"{iso}","LastUpdated":"{iso}"}}"#
                )
            } else {
                String::new()
            };
            let status = if body.is_empty() {
                "404 Not Found"
            } else {
                "200 OK"
            };
            let ttl = if first.starts_with("PUT") {
                "x-aws-ec2-metadata-token-ttl-seconds: 21600\r\n"
            } else {
                ""
            };
            let mut c = conn;
            let _ = write!(
                c,
                "HTTP/1.1 {status}\r\n{ttl}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://127.0.0.1:{port}"), served)
}

/// RFC 3339 from Unix seconds (UTC).
fn chrono_like(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // civil from days (Howard Hinnant)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[tokio::test]
async fn imdsv2_short_lived_credentials_refresh_while_requests_flow() {
    let (endpoint, served) = imds();
    let (up, seen) = recorder();
    let gw = gateway(
        "imds",
        &up,
        Credentials::default_chain(),
        &[
            ("AWS_EC2_METADATA_DISABLED", "false".into()),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint),
        ],
    );
    for _ in 0..20 {
        put_through(&gw).await;
        tokio::time::sleep(Duration::from_millis(100)).await; // pacing of the request stream
    }
    let seen = seen.lock().map(|g| g.clone()).unwrap_or_default();
    assert_eq!(seen.len(), 20, "every request went through");
    let keys: BTreeSet<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        keys.len() >= 2,
        "keys were refreshed before expiry while requests kept flowing: {keys:?} (IMDS served {})",
        served.load(Ordering::SeqCst)
    );
    assert!(
        seen.iter().all(|(k, t)| k.starts_with("ASIAIMDS") && *t),
        "{seen:?}"
    );
}

/// An ECS container-credentials stand-in (AWS_CONTAINER_CREDENTIALS_FULL_URI).
fn ecs() -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let mut r = BufReader::new(conn.try_clone().expect("clone"));
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let exp = chrono_like(
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
                    + 3600,
            );
            let body = format!(
                r#"{{"AccessKeyId":"ASIAECS000000000001","SecretAccessKey":"ecs-secret","Token":"ecs-token","Expiration":"{exp}"}}"#
            );
            let mut c = conn;
            let _ = write!(c, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
        }
    });
    format!("http://127.0.0.1:{port}/v2/credentials")
}

#[tokio::test]
async fn ecs_container_credentials() {
    let (up, seen) = recorder();
    let gw = gateway(
        "ecs",
        &up,
        Credentials::default_chain(),
        &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", ecs())],
    );
    put_through(&gw).await;
    let seen = seen.lock().map(|g| g.clone()).unwrap_or_default();
    assert_eq!(
        seen.last().cloned(),
        Some(("ASIAECS000000000001".to_string(), true))
    );
}
