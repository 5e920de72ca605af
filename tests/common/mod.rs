//! The real parts for integration tests: Garage on loopback (through
//! tests/support/garage.py), the s3gate binary in front of it, configured
//! with [`GatewayConfig`], and aws-sdk-s3 clients for both. Gateways listen
//! on port 0 and report their ports in their log; readiness is `/readyz`.
#![allow(dead_code)]

pub mod config;
pub mod raw;
pub mod standin;

// Not every test file uses every part.
#[allow(unused_imports)]
pub use config::{
    AssumeRole, Audit, BucketRule, Credentials, GatewayConfig, Limits, Secret, Upstream,
};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials as SdkCredentials, Region};
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
    /// Garage's own process (not garage.py's), its config file and binary:
    /// for tests that kill and restart it.
    pub pid: u32,
    pub config: String,
    pub bin: String,
    _stdin: ChildStdin,
    _child: Child,
}

/// A running gateway. Its ports are the ones it reports at start (it
/// listens on port 0); it was ready (`/readyz` 200) when it was returned.
pub struct Gateway {
    /// The S3 listener's port.
    pub port: u16,
    /// The admin listener's port (`/healthz`, `/readyz`, `/metrics`).
    pub admin_port: u16,
    /// The S3 listener serves TLS.
    pub tls: bool,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    child: Mutex<Child>,
    /// Started through tests/support/tether.py (else directly).
    tethered: bool,
}

pub struct Env {
    pub garage: Garage,
    pub gateway: Gateway,
    pub dir: PathBuf,
}

/// A free port, by binding port 0 and letting it go: racy, so only for
/// third-party servers that cannot report the port of a port-0 bind.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 0");
    l.local_addr().expect("addr").port()
}

/// A port bound but not listening: connections to it are refused (an
/// upstream that is down) until [`ClosedPort::listen`] (it is back).
pub struct ClosedPort(tokio::net::TcpSocket);

impl ClosedPort {
    pub fn new() -> Self {
        let s = tokio::net::TcpSocket::new_v4().expect("socket");
        s.set_reuseaddr(true).expect("reuseaddr");
        s.bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
            .expect("bind 0");
        ClosedPort(s)
    }
    pub fn port(&self) -> u16 {
        self.0.local_addr().expect("addr").port()
    }
    /// Start listening on the port (a blocking std listener).
    pub fn listen(self) -> TcpListener {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        let l = {
            let _in = rt.enter();
            self.0
                .listen(128)
                .and_then(|l| l.into_std())
                .expect("listen")
        };
        l.set_nonblocking(false).expect("blocking");
        l
    }
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
        pid: v["pid"].as_u64().unwrap_or(0) as u32,
        config: v["config"].as_str().unwrap_or_default().to_string(),
        bin: v["garage"].as_str().unwrap_or_default().to_string(),
        _stdin: child.stdin.take().expect("stdin"),
        _child: child,
    }
}

/// How long a gateway may take to listen and become ready.
const START_TIME: Duration = Duration::from_secs(30);
/// Readiness poll interval.
const POLL: Duration = Duration::from_millis(20);

impl GatewayConfig {
    /// Write the config to `dir` and start the gateway through the tether
    /// (it ends with this test process); returns once it is ready.
    pub fn start(&self, dir: &Path) -> Gateway {
        self.launch(dir, &[], true)
    }

    /// [`GatewayConfig::start`] with extra environment variables.
    pub fn start_with_env(&self, dir: &Path, env: &[(&str, String)]) -> Gateway {
        self.launch(dir, env, true)
    }

    /// Start the gateway as a direct child (no tether), so that
    /// [`Gateway::pid`] is the gateway's own, for signals and its exit
    /// status. It is killed when the `Gateway` is dropped.
    pub fn start_direct(&self, dir: &Path) -> Gateway {
        self.launch(dir, &[], false)
    }

    fn launch(&self, dir: &Path, env: &[(&str, String)], tethered: bool) -> Gateway {
        let config_path = self.write(dir);
        let log_path = dir.join("gateway.log");
        let log = std::fs::File::create(&log_path).expect("log");
        let mut cmd = if tethered {
            // The tether ends the gateway when this test process goes away.
            let mut c = Command::new("python3");
            c.arg(repo().join("tests/support/tether.py"))
                .arg(env!("CARGO_BIN_EXE_s3gate"));
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_s3gate"))
        };
        if self.clean_env {
            cmd.env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        } else {
            cmd.env("S3GATE_LOG", "info,pingora_core=warn,pingora_proxy=warn");
        }
        let child = cmd
            .args(["serve", "--config"])
            .arg(&config_path)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(if tethered {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start gateway");
        let mut gw = Gateway {
            port: 0,
            admin_port: 0,
            tls: self.is_tls(),
            config_path,
            log_path,
            child: Mutex::new(child),
            tethered,
        };
        let deadline = Instant::now() + START_TIME;
        (gw.port, gw.admin_port) = gw.wait_for_listeners(deadline);
        gw.wait_until_ready(deadline);
        gw
    }
}

/// The listeners a gateway's log reports, as (kind, address): one line per
/// listener, `listening kind=s3 address=127.0.0.1:41234 …` (or the same
/// fields in a JSON line). Only complete lines count.
pub fn listeners_in_log(log: &str) -> Vec<(String, SocketAddr)> {
    let complete = match log.rfind('\n') {
        Some(end) => &log[..end],
        None => "",
    };
    let mut found = Vec::new();
    for line in complete.lines() {
        let fields: Vec<(String, String)> = match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) => {
                let listening = v["target"] == "s3gate::server"
                    && v["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("listening"));
                if !listening {
                    continue;
                }
                ["kind", "address"]
                    .iter()
                    .filter_map(|k| Some((k.to_string(), v[*k].as_str()?.to_string())))
                    .collect()
            }
            Err(_) => match line.split_once(" s3gate::server: listening") {
                Some((_, rest)) => rest
                    .split_whitespace()
                    .filter_map(|t| t.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
                    .collect(),
                None => continue,
            },
        };
        let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        if let (Some(kind), Some(address)) = (get("kind"), get("address")) {
            if let Ok(address) = address.parse() {
                found.push((kind, address));
            }
        }
    }
    found
}

/// GET `path` from 127.0.0.1:`port` on a fresh connection: (status, body);
/// status 0 when there is no answer.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    if write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .is_err()
    {
        return (0, String::new());
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (
        status,
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}

impl Gateway {
    /// The ports of the S3 and admin listeners, from the log.
    fn wait_for_listeners(&self, deadline: Instant) -> (u16, u16) {
        loop {
            let found = listeners_in_log(&self.log());
            let port = |kind: &str| found.iter().find(|(k, _)| k == kind).map(|(_, a)| a.port());
            if let (Some(s3), Some(admin)) = (port("s3"), port("admin")) {
                return (s3, admin);
            }
            self.check_running(deadline, "report its listeners");
            std::thread::sleep(POLL); // log poll interval
        }
    }

    fn wait_until_ready(&self, deadline: Instant) {
        loop {
            let (status, body) = http_get(self.admin_port, "/readyz");
            if status == 200 {
                return;
            }
            self.check_running(
                deadline,
                &format!("become ready (/readyz: {status} {})", body.trim()),
            );
            std::thread::sleep(POLL); // readiness poll interval
        }
    }

    /// Panic with the log if the gateway has exited or `deadline` passed.
    fn check_running(&self, deadline: Instant, what: &str) {
        let exited = self.try_wait();
        if exited.is_some() || Instant::now() > deadline {
            panic!(
                "the gateway did not {what}{}:\n{}",
                exited
                    .map(|s| format!(" (exited: {s})"))
                    .unwrap_or_default(),
                self.log()
            );
        }
    }

    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
    /// The started process: the gateway itself when started with
    /// [`GatewayConfig::start_direct`], else its tether.
    pub fn pid(&self) -> u32 {
        self.child.lock().map(|c| c.id()).unwrap_or(0)
    }
    /// The exit status of the started process, if it has exited.
    pub fn try_wait(&self) -> Option<std::process::ExitStatus> {
        self.child
            .lock()
            .ok()
            .and_then(|mut c| c.try_wait().ok().flatten())
    }
    /// Stop the gateway and wait for it: gracefully through the tether, or
    /// killed when started directly.
    pub fn stop(&self) {
        if let Ok(mut c) = self.child.lock() {
            if !self.tethered {
                let _ = c.kill();
            }
            drop(c.stdin.take());
            let _ = c.wait();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // A tethered gateway stops when its tether's stdin closes (with the
        // `Child`); a direct one would outlive the test.
        if !self.tethered {
            self.stop();
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
        let gateway = GatewayConfig::shared(&garage).start(&dir.join("gw"));
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
        .credentials_provider(SdkCredentials::new(key, secret, None, None, "tests"))
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

/// Whether `bucket/key` exists, by a HEAD through `c`: false only when the
/// store says it does not (404); any other failure panics, so an outage or
/// a refused request never passes for an absent object.
pub async fn object_exists(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> bool {
    match c.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => true,
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            let not_found = e.as_service_error().is_some_and(|s| s.is_not_found());
            if not_found || status == Some(404) {
                false
            } else {
                panic!("HEAD {bucket}/{key} failed (neither present nor absent): {e:?}")
            }
        }
    }
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
