//! The real parts for integration tests: Garage on loopback (through
//! tests/support/garage.py), the s3gate binary in front of it, and
//! aws-sdk-s3 clients for both. Ports are picked free; readiness is polled.
#![allow(dead_code)]

pub mod raw;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_runtime_api::client::dns::{DnsFuture, ResolveDns};

pub const ALICE_KEY: &str = "AKIAALICE00000000001";
pub const ALICE_SECRET: &str = "alice-secret-key-for-tests-0000000000001";
pub const BOB_KEY: &str = "AKIABOB0000000000002";
pub const BOB_SECRET: &str = "bob-secret-key-for-tests-00000000000002";
/// Buckets created in Garage for the tests. `renamed` is exposed by the
/// gateway as `visible` (a `target` rename).
pub const BUCKETS: &[&str] = &["sdk", "payload", "authz", "renamed"];

pub struct Garage {
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    _stdin: ChildStdin,
    _child: Child,
}

pub struct Gateway {
    pub port: u16,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    child: Mutex<Child>,
}

pub struct Env {
    pub garage: Garage,
    pub gateway: Gateway,
    pub dir: PathBuf,
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 0");
    l.local_addr().expect("addr").port()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn start_garage(dir: &Path, buckets: &[&str]) -> Garage {
    let mut cmd = Command::new("python3");
    cmd.arg(repo().join("tests/support/garage.py"))
        .arg(dir.join("garage"));
    for b in buckets {
        cmd.arg("--bucket").arg(b);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start garage.py");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("garage.py output");
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("garage.py said {line:?}: {e}"));
    Garage {
        endpoint: v["endpoint"].as_str().expect("endpoint").to_string(),
        access_key_id: v["access_key_id"].as_str().expect("key").to_string(),
        secret_access_key: v["secret_access_key"].as_str().expect("secret").to_string(),
        _stdin: child.stdin.take().expect("stdin"),
        _child: child,
    }
}

pub fn gateway_config(port: u16, garage: &Garage, extra: &str) -> String {
    format!(
        r#"listen:
  - address: 127.0.0.1:{port}
region: us-east-1
hostnames: [s3.local.test, localhost]
gateway_name: test-gateway
principals:
  - name: alice
    access_key_id: {ALICE_KEY}
    secret_access_key: {ALICE_SECRET}
  - name: bob
    access_key_id: {BOB_KEY}
    secret_access_key: {BOB_SECRET}
upstreams:
  garage:
    kind: s3-compatible
    endpoint: {ep}
    region: garage
    addressing: path
    credentials:
      access_key_id: {ak}
      secret_access_key: {sk}
buckets:
  visible:
    upstream: garage
    target: renamed
  "*":
    upstream: garage
{extra}"#,
        ep = garage.endpoint,
        ak = garage.access_key_id,
        sk = garage.secret_access_key,
    )
}

/// Start the gateway binary with `config` and wait until it accepts connections.
pub fn start_gateway(dir: &Path, port: u16, config: &str) -> Gateway {
    start_gateway_with_env(dir, port, config, &[])
}

/// Start the gateway with extra environment variables (credential sources).
pub fn start_gateway_with_env(
    dir: &Path,
    port: u16,
    config: &str,
    env: &[(&str, String)],
) -> Gateway {
    std::fs::create_dir_all(dir).expect("mkdir");
    let config_path = dir.join("gateway.yaml");
    std::fs::write(&config_path, config).expect("write config");
    let log_path = dir.join("gateway.log");
    let log = std::fs::File::create(&log_path).expect("log");
    // The tether ends the gateway when this test process goes away.
    let child = Command::new("python3")
        .arg(repo().join("tests/support/tether.py"))
        .arg(env!("CARGO_BIN_EXE_s3gate"))
        .args(["serve", "--config"])
        .arg(&config_path)
        .env("S3GATE_LOG", "info,pingora_core=warn,pingora_proxy=warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start gateway");
    wait_for_port(port, &log_path);
    Gateway {
        port,
        config_path,
        log_path,
        child: Mutex::new(child),
    }
}

pub fn wait_for_port(port: u16, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20)); // readiness poll interval
    }
    panic!(
        "gateway did not listen on {port}: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

impl Gateway {
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
    pub fn stop(&self) {
        if let Ok(mut c) = self.child.lock() {
            if let Some(stdin) = c.stdin.as_mut() {
                let _ = stdin.write_all(b"");
            }
            drop(c.stdin.take());
            let _ = c.wait();
        }
    }
}

static SHARED: OnceLock<Env> = OnceLock::new();

/// One Garage and one gateway for all tests of a test binary.
pub fn env() -> &'static Env {
    SHARED.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("s3gate-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let garage = start_garage(&dir, BUCKETS);
        let port = free_port();
        let gateway = start_gateway(&dir.join("gw"), port, &gateway_config(port, &garage, ""));
        Env {
            garage,
            gateway,
            dir,
        }
    })
}

/// Resolves every name to 127.0.0.1, so virtual-hosted names
/// (`bucket.s3.local.test`) reach the gateway on loopback.
#[derive(Debug, Clone)]
pub struct Loopback;

impl ResolveDns for Loopback {
    fn resolve_dns<'a>(&'a self, _name: &'a str) -> DnsFuture<'a> {
        DnsFuture::ready(Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]))
    }
}

pub fn client(
    endpoint: &str,
    region: &str,
    key: &str,
    secret: &str,
    path_style: bool,
) -> aws_sdk_s3::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_with_resolver(Loopback);
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new(key, secret, None, None, "tests"))
        .force_path_style(path_style)
        .http_client(http)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

impl Env {
    /// alice through the gateway, path style.
    pub fn alice(&self) -> aws_sdk_s3::Client {
        client(
            &self.gateway.endpoint(),
            "us-east-1",
            ALICE_KEY,
            ALICE_SECRET,
            true,
        )
    }
    /// alice through the gateway, virtual-hosted style (`bucket.s3.local.test`).
    pub fn alice_virtual(&self) -> aws_sdk_s3::Client {
        client(
            &format!("http://s3.local.test:{}", self.gateway.port),
            "us-east-1",
            ALICE_KEY,
            ALICE_SECRET,
            false,
        )
    }
    /// Straight to Garage with its own key: a direct look upstream.
    pub fn direct(&self) -> aws_sdk_s3::Client {
        client(
            &self.garage.endpoint,
            "garage",
            &self.garage.access_key_id,
            &self.garage.secret_access_key,
            true,
        )
    }
}

/// The S3 error code of an SDK error.
pub fn code<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> Option<&str> {
    e.code()
}

/// Deterministic test data.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
