//! What the end-to-end benches share: child processes that are stopped when
//! dropped, free ports and readiness polling, nginx from a config, raw
//! HTTP/1.1 requests over `TcpStream`, and numbers read from `/proc`.
#![allow(dead_code)]

#[path = "../../tests/common/raw.rs"]
pub mod raw;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const MIB: u64 = 1024 * 1024;

/// A child process ended when dropped: its stdin is closed first (garage.py
/// stops Garage on EOF), then it gets SIGTERM (nginx stops its workers).
pub struct Killed(pub Child);
impl Drop for Killed {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

pub fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "port {port} never opened");
        std::thread::sleep(Duration::from_millis(20)); // readiness poll
    }
}

pub fn which(p: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {p}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Start nginx in the foreground with `http` as the body of its `http {}`
/// block (`worker_processes` as given), and wait until `port` accepts.
/// Files under `dir` are made world-accessible: nginx workers run as an
/// unprivileged user when started as root.
pub fn start_nginx(dir: &Path, workers: u32, http: &str, port: u16) -> Killed {
    std::fs::create_dir_all(dir).expect("nginx dir");
    let _ = Command::new("chmod")
        .args(["-R", "a+rwX"])
        .arg(dir)
        .status();
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off; worker_processes {workers}; worker_rlimit_nofile 16384;
pid {r}/nginx.pid; error_log {r}/error.log warn;
events {{ worker_connections 12000; }}
http {{ access_log off; {http} }}
",
            r = dir.display()
        ),
    )
    .expect("nginx.conf");
    let nginx = ["/usr/sbin/nginx", "nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists() || which(p))
        .expect("nginx not found: apt-get install nginx-light");
    let child = Command::new(nginx)
        .args(["-c"])
        .arg(&conf)
        .args(["-e", &format!("{}/error.log", dir.display())])
        .spawn()
        .expect("nginx");
    wait_port(port);
    Killed(child)
}

/// The upstream: nginx serving `root/www` (one worker, `sendfile`) with
/// WebDAV PUT, so `/bench/<key>` is `root/www/bench/<key>`.
pub fn start_file_server(root: &Path, port: u16) -> Killed {
    std::fs::create_dir_all(root.join("www/bench")).expect("www");
    std::fs::create_dir_all(root.join("body")).expect("body");
    let http = format!(
        "sendfile on; client_max_body_size 0; client_body_temp_path {r}/body;
  server {{ listen 127.0.0.1:{port}; root {r}/www;
    location / {{ dav_methods PUT; create_full_put_path on; dav_access user:rw; }} }}",
        r = root.display()
    );
    start_nginx(root, 1, &http, port)
}

/// A request head; `connection: close` unless `keep_alive`.
pub fn request_head(
    method: &str,
    target: &str,
    headers: &[(String, String)],
    keep_alive: bool,
) -> String {
    let mut out = format!("{method} {target} HTTP/1.1\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    if !keep_alive {
        out.push_str("connection: close\r\n");
    }
    out.push_str("\r\n");
    out
}

/// Write `len` bytes of a repeating 1 MiB pattern.
pub fn write_body(s: &mut impl Write, len: u64) {
    let buf: Vec<u8> = (0..MIB).map(|i| (i * 7 % 251) as u8).collect();
    let mut left = len;
    while left > 0 {
        let n = left.min(MIB) as usize;
        s.write_all(&buf[..n]).expect("body");
        left -= n as u64;
    }
}

/// Status and body length of a response read until the connection closes.
pub fn read_status(s: &mut TcpStream) -> (u16, u64) {
    let mut r = BufReader::with_capacity(1 << 20, s);
    let mut line = String::new();
    r.read_line(&mut line).expect("status");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    loop {
        line.clear();
        r.read_line(&mut line).expect("header");
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k as u64,
        }
    }
    (status, n)
}

pub fn best_of(n: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..n).map(|_| f()).fold(f64::INFINITY, f64::min)
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn mib_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / MIB as f64 / secs
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`); 0 when unknown.
pub fn proc_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
