//! s3gate against its peers, in one run on this machine: the same presigned
//! requests direct to the upstream (nginx serving files from /dev/shm with
//! `sendfile`), through an nginx reverse proxy (keep-alive upstream pool,
//! `proxy_buffering off` with 64 KiB buffers, pingora's read size), through
//! s3s-proxy when `S3S_PROXY_BIN` names its binary, and through s3gate
//! (verifying the presigned SigV4, deciding a policy, re-signing;
//! `threads: 2`; plain TCP on both legs, so large GETs are spliced).
//!
//! - GET of a big object (`S3GATE_BENCH_BIG_MIB`, default 1024): MiB/s and
//!   the ratio to direct, round-robin over the peers, best and median.
//! - 1 KiB GET under `wrk -t2 -c32 --latency` (`S3GATE_BENCH_SECS`, default
//!   10 s each): req/s, p50, p99.
//! - HTTPS: the big GET through s3gate's TLS listener and through nginx
//!   terminating TLS with the same self-signed certificate (curl --cacert).
//! - 10,000 idle keep-alive connections (`S3GATE_BENCH_IDLE`), each after
//!   one small GET: the server's RSS before and after.
//! - PUT of the big object direct and through s3gate; every server's peak
//!   RSS (VmHWM, summed over an nginx's master and workers).
//!
//! Reports, never asserts. Writes target/peers-bench.json. Needs nginx,
//! wrk, curl and openssl (Debian packages). Run:
//!   cargo bench --bench peers

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Map, Value};
use support::{
    env_or, free_port, mib_per_s, proc_kib, raw, read_status, request_head, start_file_server,
    start_nginx, write_body, Killed, MIB,
};

const KEY: &str = "AKIABENCH00000000001";
const SECRET: &str = "bench-secret-0000000000000000000000001";
const REGION: &str = "us-east-1";
const WRK: &str = "/usr/bin/wrk";
const SMALL: u64 = 1024;

/// A server requests go to, and the processes whose memory is its own.
struct Peer {
    name: &'static str,
    port: u16,
    pids: Vec<u32>,
}

impl Peer {
    /// Sum of a `/proc/<pid>/status` field over the peer's processes, MiB.
    fn mem_mib(&self, field: &str) -> f64 {
        self.pids.iter().map(|p| proc_kib(*p, field)).sum::<u64>() as f64 / 1024.0
    }
}

fn presign(method: &str, port: u16, path: &str) -> String {
    raw::Signer {
        key: KEY,
        secret: SECRET,
        region: REGION,
        time: SystemTime::now(),
    }
    .presign(
        method,
        &format!("127.0.0.1:{port}"),
        path,
        Duration::from_secs(3600),
    )
}

fn host(port: u16) -> Vec<(String, String)> {
    vec![("host".into(), format!("127.0.0.1:{port}"))]
}

/// A presigned GET on a new connection, read to its end; seconds.
fn get(port: u16, path: &str, len: u64) -> f64 {
    let target = presign("GET", port, path);
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(request_head("GET", &target, &host(port), false).as_bytes())
        .expect("head");
    let (status, n) = read_status(&mut s);
    assert!(
        status == 200 && n == len,
        "GET {path} on :{port}: status {status}, {n} of {len} bytes"
    );
    start.elapsed().as_secs_f64()
}

/// A presigned PUT of `len` bytes; seconds.
fn put(port: u16, path: &str, len: u64) -> f64 {
    let target = presign("PUT", port, path);
    let mut headers = host(port);
    headers.push(("content-length".into(), len.to_string()));
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(request_head("PUT", &target, &headers, false).as_bytes())
        .expect("head");
    write_body(&mut s, len);
    let (status, _) = read_status(&mut s);
    assert!(
        matches!(status, 200 | 201 | 204),
        "PUT {path} on :{port}: status {status}"
    );
    start.elapsed().as_secs_f64()
}

/// Best and median of the samples.
fn best_median(mut v: Vec<f64>, higher_is_better: bool) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let best = if higher_is_better {
        v[v.len() - 1]
    } else {
        v[0]
    };
    (best, support::percentile(&v, 0.5))
}

// ---- wrk ------------------------------------------------------------------

#[derive(Default)]
struct Wrk {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
    socket_errors: String,
}

fn wrk_ms(v: &str) -> f64 {
    let split = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
    let n: f64 = v[..split].parse().unwrap_or(f64::NAN);
    match &v[split..] {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => f64::NAN,
    }
}

fn wrk(port: u16, secs: u64) -> Wrk {
    let url = format!(
        "http://127.0.0.1:{port}{}",
        presign("GET", port, "/bench/small")
    );
    let out = Command::new(WRK)
        .args(["-t2", "-c32", &format!("-d{secs}s"), "--latency", &url])
        .output()
        .expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut w = Wrk::default();
    for line in text.lines().map(str::trim) {
        let mut f = line.split_whitespace();
        match (f.next(), f.next()) {
            (Some("50%"), Some(v)) => w.p50_ms = wrk_ms(v),
            (Some("99%"), Some(v)) => w.p99_ms = wrk_ms(v),
            (Some("Requests/sec:"), Some(v)) => w.rps = v.parse().unwrap_or(0.0),
            _ => {}
        }
        if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            w.non_2xx = n.trim().parse().unwrap_or(0);
        }
        if let Some(e) = line.strip_prefix("Socket errors:") {
            w.socket_errors = e.trim().to_string();
        }
    }
    assert!(w.rps > 0.0, "wrk said: {text}");
    w
}

// ---- TLS ------------------------------------------------------------------

/// A self-signed certificate for 127.0.0.1: (cert, key).
fn make_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let ok = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl")
        .success();
    assert!(ok, "openssl req failed");
    (cert, key)
}

/// A presigned GET over HTTPS with curl: (seconds, negotiated TLS).
fn curl_get(port: u16, path: &str, len: u64, cacert: &Path) -> (f64, String) {
    let url = format!("https://127.0.0.1:{port}{}", presign("GET", port, path));
    let out = Command::new("curl")
        .args(["-sS", "-v", "-o", "/dev/null", "--cacert"])
        .arg(cacert)
        .args(["-w", "%{http_code} %{size_download} %{time_total}", &url])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.split_whitespace().collect();
    assert!(
        f.len() == 3 && f[0] == "200" && f[1] == len.to_string(),
        "curl {url}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tls = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| {
            l.split_once("SSL connection using ")
                .map(|(_, t)| t.to_string())
        })
        .unwrap_or_default();
    (f[2].parse().expect("time_total"), tls)
}

// ---- idle keep-alive connections ------------------------------------------

/// Read one response whose length is given by Content-Length; its status.
fn read_one(s: &mut TcpStream) -> u16 {
    let mut r = BufReader::with_capacity(4096, s);
    let mut line = String::new();
    r.read_line(&mut line).expect("status");
    let status = line.split(' ').nth(1).and_then(|c| c.parse().ok());
    let mut len = 0usize;
    loop {
        line.clear();
        r.read_line(&mut line).expect("header");
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            if n.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().expect("content-length");
            }
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).expect("body");
    status.unwrap_or(0)
}

/// Open `n` connections, each sending one small keep-alive GET and reading
/// its answer, and hold them; then the peer's RSS. Returns what was held.
fn idle(peer: &Peer, n: usize) -> Value {
    let target = presign("GET", peer.port, "/bench/small");
    let head = request_head("GET", &target, &host(peer.port), true);
    let before = peer.mem_mib("VmRSS");
    let start = Instant::now();
    let mut conns = Vec::with_capacity(n);
    let mut failure = None;
    while conns.len() < n {
        let mut s = match TcpStream::connect(("127.0.0.1", peer.port)) {
            Ok(s) => s,
            Err(e) => {
                failure = Some(format!("connect #{}: {e}", conns.len() + 1));
                break;
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let status = s.write_all(head.as_bytes()).map(|_| read_one(&mut s));
        if !matches!(status, Ok(200)) {
            failure = Some(format!("request #{}: {status:?}", conns.len() + 1));
            break;
        }
        conns.push(s);
    }
    let open_secs = start.elapsed().as_secs_f64();
    let after = peer.mem_mib("VmRSS");
    // Still serving with all of them held?
    let fresh = get(peer.port, "/bench/small", SMALL);
    let held = conns.len();
    drop(conns);
    json!({
        "requested": n, "held": held, "failure": failure, "open_secs": open_secs,
        "rss_before_mib": before, "rss_after_mib": after,
        "kib_per_connection": (after - before) * 1024.0 / held.max(1) as f64,
        "fresh_get_ms_while_held": fresh * 1000.0,
    })
}

/// Raise this process's soft open-files limit towards its hard limit with
/// prlimit (util-linux) when `need` is above it; the soft limit in force.
fn ensure_nofile(need: u64) -> u64 {
    let limits = || -> (u64, Option<u64>) {
        let text = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let f: Vec<&str> = text
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .map(|l| l.split_whitespace().collect())
            .unwrap_or_default();
        let soft = f.get(3).and_then(|v| v.parse().ok()).unwrap_or(1024);
        (soft, f.get(4).and_then(|v| v.parse().ok()))
    };
    let (soft, hard) = limits();
    if soft < need {
        let to = hard.map_or(need, |h| h.min(need.max(soft)));
        let _ = Command::new("prlimit")
            .arg("--pid")
            .arg(std::process::id().to_string())
            .arg(format!("--nofile={to}:"))
            .status();
    }
    limits().0
}

// ---- the servers ------------------------------------------------------------

/// nginx as a reverse proxy to the upstream: a keep-alive pool, HTTP/1.1,
/// no response buffering; plain and TLS listeners; 2 workers.
fn start_nginx_proxy(
    dir: &Path,
    port: u16,
    tls_port: u16,
    up: u16,
    tls: &(PathBuf, PathBuf),
) -> Killed {
    let http = format!(
        "client_max_body_size 0; client_body_temp_path {r}/body; proxy_temp_path {r}/proxy;
  upstream files {{ server 127.0.0.1:{up}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port}; listen 127.0.0.1:{tls_port} ssl;
    ssl_certificate {cert}; ssl_certificate_key {key}; ssl_protocols TLSv1.2 TLSv1.3;
    location / {{ proxy_pass http://files; proxy_http_version 1.1;
                 proxy_set_header Connection \"\"; proxy_buffering off;
                 proxy_buffer_size 64k; proxy_buffers 4 64k; proxy_busy_buffers_size 128k; }}
  }}",
        r = dir.display(),
        cert = tls.0.display(),
        key = tls.1.display(),
    );
    start_nginx(dir, 2, &http, port)
}

/// The nginx master and its workers (known once a request was answered).
fn nginx_pids(master: u32) -> Vec<u32> {
    let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
        .unwrap_or_default();
    std::iter::once(master)
        .chain(children.split_whitespace().filter_map(|p| p.parse().ok()))
        .collect()
}

fn start_s3gate(dir: &Path, port: u16, tls_port: u16, up: u16, tls: &(PathBuf, PathBuf)) -> Killed {
    std::fs::write(
        dir.join("policy.yaml"),
        "Version: \"2012-10-17\"
Statement:
  - Sid: BenchReadsAndWrites
    Effect: Allow
    Principal: bench
    Action: [s3:GetObject, s3:PutObject]
    Resource: arn:aws:s3:::bench/*
",
    )
    .expect("policy.yaml");
    let conf = dir.join("gateway.yaml");
    std::fs::write(
        &conf,
        format!(
            "listen:
  - address: 127.0.0.1:{port}
  - address: 127.0.0.1:{tls_port}
    tls: {{ cert: {cert}, key: {key} }}
region: {REGION}
threads: 2
log: {{ level: warn }}
limits: {{ max_connections: 12000, idle_timeout: 5m }}
principals: [{{ name: bench, access_key_id: {KEY}, secret_access_key: {SECRET} }}]
upstreams:
  files: {{ kind: s3-compatible, endpoint: 'http://127.0.0.1:{up}', region: {REGION}, addressing: path,
           credentials: {{ access_key_id: N, secret_access_key: n }} }}
buckets:
  bench: {{ upstream: files }}
policies: {{ paths: [policy.yaml] }}
",
            cert = tls.0.display(),
            key = tls.1.display(),
        ),
    )
    .expect("gateway.yaml");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3gate"));
    cmd.args(["serve", "--config"]).arg(&conf);
    spawn_logged(cmd, &dir.join("gateway.log"), &[port, tls_port])
}

/// s3s-proxy in front of the upstream; it authenticates clients with the
/// same keys it signs with.
fn start_s3s_proxy(bin: &str, dir: &Path, port: u16, up: u16) -> Killed {
    let mut cmd = Command::new(bin);
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--endpoint-url", &format!("http://127.0.0.1:{up}")])
        .env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", REGION)
        .env("RUST_LOG", "warn");
    spawn_logged(cmd, &dir.join("s3s-proxy.log"), &[port])
}

/// Start `cmd` with its output in `log` and wait until every port accepts
/// (or the process exits: then its log is the panic message).
fn spawn_logged(mut cmd: Command, log: &Path, ports: &[u16]) -> Killed {
    let file = std::fs::File::create(log).expect("log");
    let child = cmd
        .stdout(file.try_clone().expect("log"))
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut child = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    for port in ports {
        while TcpStream::connect(("127.0.0.1", *port)).is_err() {
            let exited = child.0.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "{cmd:?} did not listen on {port} ({exited:?}): {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20)); // readiness poll
        }
    }
    child
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("peers: bench");
        return;
    }
    let big = env_or("S3GATE_BENCH_BIG_MIB", 1024u64).max(1) * MIB;
    let secs: u64 = env_or("S3GATE_BENCH_SECS", 10);
    let rounds: usize = env_or("S3GATE_BENCH_ROUNDS", 3usize).max(1);
    let idle_n: usize = env_or("S3GATE_BENCH_IDLE", 10_000);
    let nofile = ensure_nofile(idle_n as u64 + 512);
    let idle_n = idle_n.min(nofile.saturating_sub(512) as usize);

    let id = std::process::id();
    let shm = PathBuf::from(format!("/dev/shm/s3gate-peers-{id}"));
    let dir = std::env::temp_dir().join(format!("s3gate-peers-{id}"));
    for d in ["gw", "proxy"] {
        std::fs::create_dir_all(dir.join(d)).expect("tmp");
    }
    let tls = make_cert(&dir);

    let up = free_port();
    let upstream = start_file_server(&shm, up);
    for (name, len) in [("big", big), ("small", SMALL)] {
        let mut f = std::fs::File::create(shm.join("www/bench").join(name)).expect("object");
        write_body(&mut f, len);
    }

    let (proxy_port, proxy_tls) = (free_port(), free_port());
    let proxy = start_nginx_proxy(&dir.join("proxy"), proxy_port, proxy_tls, up, &tls);
    let (gw_port, gw_tls) = (free_port(), free_port());
    let gateway = start_s3gate(&dir.join("gw"), gw_port, gw_tls, up, &tls);
    let s3s_bin = std::env::var("S3S_PROXY_BIN")
        .ok()
        .filter(|b| !b.is_empty());
    let s3s = s3s_bin.as_deref().map(|bin| {
        let port = free_port();
        (start_s3s_proxy(bin, &dir, port, up), port)
    });

    // One answered request each before anything is measured (and before
    // nginx's workers are looked up).
    let mut peers = vec![
        Peer {
            name: "direct",
            port: up,
            pids: vec![],
        },
        Peer {
            name: "nginx-proxy",
            port: proxy_port,
            pids: vec![],
        },
    ];
    if let Some((p, port)) = &s3s {
        peers.push(Peer {
            name: "s3s-proxy",
            port: *port,
            pids: vec![p.0.id()],
        });
    }
    peers.push(Peer {
        name: "s3gate",
        port: gw_port,
        pids: vec![gateway.0.id()],
    });
    for p in &peers {
        get(p.port, "/bench/small", SMALL);
    }
    peers[0].pids = nginx_pids(upstream.0.id());
    peers[1].pids = nginx_pids(proxy.0.id());
    let by_name = |n: &str| peers.iter().find(|p| p.name == n);

    println!(
        "s3gate peers bench: {} MiB objects, {secs} s wrk runs, {rounds} rounds; client, servers and upstream share {} cores\n",
        big / MIB,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // 1. Big GET, round-robin over the peers.
    let mut samples: Vec<Vec<f64>> = vec![vec![]; peers.len()];
    for _ in 0..rounds {
        for (i, p) in peers.iter().enumerate() {
            samples[i].push(mib_per_s(big, get(p.port, "/bench/big", big)));
        }
    }
    let get_big: Vec<(f64, f64)> = samples.into_iter().map(|v| best_median(v, true)).collect();
    let direct_best = get_big[0].0;
    let mib_of = |name: &str| {
        peers
            .iter()
            .position(|p| p.name == name)
            .map(|i| get_big[i].0)
    };
    println!(
        "GET {} MiB, one connection each (MiB/s)   best     median   best/direct",
        big / MIB
    );
    for (p, (best, med)) in peers.iter().zip(&get_big) {
        println!(
            "  {:<36} {best:8.1} {med:8.1}   {:.2}x",
            p.name,
            best / direct_best
        );
    }
    let gw_get = mib_of("s3gate").unwrap_or(0.0);
    let vs_s3s = mib_of("s3s-proxy").map(|s| gw_get / s);
    println!(
        "  s3gate/direct {:.2}x (goal >= 0.90x); s3gate/s3s-proxy {} (goal >= 1.15x)\n",
        gw_get / direct_best,
        vs_s3s.map_or("not run (S3S_PROXY_BIN unset)".to_string(), |r| format!(
            "{r:.2}x"
        ))
    );

    // 2. 1 KiB GET at 32 connections.
    let mut wrks: Vec<(&str, Wrk)> = vec![];
    if Path::new(WRK).exists() {
        println!("1 KiB GET, wrk -t2 -c32 -d{secs}s      req/s     p50 ms   p99 ms   non-2xx");
        for p in &peers {
            let w = wrk(p.port, secs);
            println!(
                "  {:<32} {:10.0} {:8.3} {:8.3}   {}{}",
                p.name,
                w.rps,
                w.p50_ms,
                w.p99_ms,
                w.non_2xx,
                if w.socket_errors.is_empty() {
                    String::new()
                } else {
                    format!("  socket errors: {}", w.socket_errors)
                }
            );
            wrks.push((p.name, w));
        }
    } else {
        println!("1 KiB GET: {WRK} missing (apt-get install wrk): not run");
    }
    let rps = |n: &str| wrks.iter().find(|(m, _)| *m == n).map(|(_, w)| w.rps);
    let rps_ratio = rps("s3gate").zip(rps("nginx-proxy")).map(|(a, b)| a / b);
    if let Some(r) = rps_ratio {
        println!("  s3gate/nginx-proxy req/s {r:.2}x\n");
    }

    // 3. HTTPS: the big GET through each TLS terminator, with curl.
    let tls_peers = [("nginx-proxy-tls", proxy_tls), ("s3gate-tls", gw_tls)];
    let mut tls_samples: Vec<(Vec<f64>, String)> = vec![(vec![], String::new()); 2];
    for _ in 0..rounds {
        for (i, (_, port)) in tls_peers.iter().enumerate() {
            let (t, negotiated) = curl_get(*port, "/bench/big", big, &tls.0);
            tls_samples[i].0.push(mib_per_s(big, t));
            tls_samples[i].1 = negotiated;
        }
    }
    println!(
        "HTTPS GET {} MiB, curl --cacert (MiB/s)   best     median   TLS",
        big / MIB
    );
    let mut https = Map::new();
    let mut tls_best = vec![];
    for ((name, _), (v, negotiated)) in tls_peers.iter().zip(tls_samples) {
        let (best, med) = best_median(v, true);
        println!("  {name:<36} {best:8.1} {med:8.1}   {negotiated}");
        https.insert(
            name.to_string(),
            json!({"best_mibps": best, "median_mibps": med, "tls": negotiated}),
        );
        tls_best.push(best);
    }
    let tls_ratio = tls_best[1] / tls_best[0];
    println!("  s3gate-tls/nginx-proxy-tls {tls_ratio:.2}x\n");

    // 4. PUT of the big object.
    let mut put_samples = (vec![], vec![]);
    for r in 0..rounds {
        put_samples.0.push(mib_per_s(
            big,
            put(up, &format!("/bench/put-direct-{r}"), big),
        ));
        put_samples.1.push(mib_per_s(
            big,
            put(gw_port, &format!("/bench/put-s3gate-{r}"), big),
        ));
    }
    let put_direct = best_median(put_samples.0, true);
    let put_gw = best_median(put_samples.1, true);
    println!(
        "PUT {} MiB (MiB/s)                       best     median",
        big / MIB
    );
    println!(
        "  {:<36} {:8.1} {:8.1}",
        "direct (WebDAV)", put_direct.0, put_direct.1
    );
    println!(
        "  {:<36} {:8.1} {:8.1}   {:.2}x direct\n",
        "s3gate",
        put_gw.0,
        put_gw.1,
        put_gw.0 / put_direct.0
    );

    // Peak memory of the data path so far, before the idle connections.
    println!("Peak RSS (VmHWM) over the runs above");
    let mut peak = Map::new();
    for p in peers.iter().skip(1) {
        let m = p.mem_mib("VmHWM");
        println!(
            "  {:<36} {m:8.1} MiB{}",
            p.name,
            if p.name == "nginx-proxy" {
                " (master + workers)"
            } else {
                ""
            }
        );
        peak.insert(p.name.to_string(), json!(m));
    }

    // 5. Idle keep-alive connections.
    println!(
        "\n{idle_n} idle keep-alive connections (one GET each)   RSS before   after    KiB/conn"
    );
    let mut idle_report = Map::new();
    for name in ["nginx-proxy", "s3gate"] {
        let Some(p) = by_name(name) else { continue };
        let v = idle(p, idle_n);
        println!(
            "  {name:<36} {:8.1} MiB {:8.1} MiB {:6.1}{}",
            v["rss_before_mib"].as_f64().unwrap_or(0.0),
            v["rss_after_mib"].as_f64().unwrap_or(0.0),
            v["kib_per_connection"].as_f64().unwrap_or(0.0),
            v["failure"]
                .as_str()
                .map_or(String::new(), |f| format!("  stopped at {f}"))
        );
        idle_report.insert(name.to_string(), v);
    }
    let gw_hwm_end = by_name("s3gate").map_or(0.0, |p| p.mem_mib("VmHWM"));
    println!("  s3gate peak RSS (VmHWM) at the end: {gw_hwm_end:.1} MiB");

    let names: Vec<&str> = peers.iter().map(|p| p.name).collect();
    let report = json!({
        "object_mib": big / MIB, "wrk_secs": secs, "rounds": rounds,
        "get_big": names.iter().zip(&get_big).map(|(n, (b, m))| (n.to_string(), json!({"best_mibps": b, "median_mibps": m, "best_vs_direct": b / direct_best}))).collect::<Map<_, _>>(),
        "goals": {"s3gate_vs_direct_get": gw_get / direct_best, "s3gate_vs_s3s_proxy_get": vs_s3s,
                  "s3gate_vs_nginx_proxy_rps": rps_ratio, "s3gate_tls_vs_nginx_tls_get": tls_ratio},
        "wrk_1kib_c32": wrks.iter().map(|(n, w)| (n.to_string(), json!({"rps": w.rps, "p50_ms": w.p50_ms, "p99_ms": w.p99_ms, "non_2xx": w.non_2xx, "socket_errors": w.socket_errors}))).collect::<Map<_, _>>(),
        "https_get": https,
        "put_big": {"direct": {"best_mibps": put_direct.0, "median_mibps": put_direct.1}, "s3gate": {"best_mibps": put_gw.0, "median_mibps": put_gw.1}},
        "peak_rss_mib": peak,
        "idle_keepalive": idle_report,
        "s3gate_peak_rss_mib_end": gw_hwm_end,
    });
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let out = target.join("peers-bench.json");
    let _ = std::fs::write(
        &out,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    );
    println!("\nreport: {}", out.display());

    drop(s3s);
    drop(gateway);
    drop(proxy);
    drop(upstream);
    let _ = std::fs::remove_dir_all(&shm);
    let _ = std::fs::remove_dir_all(&dir);
}
