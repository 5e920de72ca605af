//! End-to-end bench: the real gateway binary between a client and a real
//! upstream, compared with going direct in the same run.
//!
//! - PUT and GET of a 1 GiB object, direct to nginx (files in tmpfs, PUT via
//!   WebDAV: an upstream fast enough not to hide the gateway's cost) and
//!   through the gateway; throughput and the ratio gateway/direct.
//! - Small-object GET latency percentiles, direct and through the gateway.
//! - The same PUT/GET against Garage (256 MiB).
//! - A POST Object (browser form, signed POST policy) of
//!   `S3GATE_BENCH_BIG_MIB` MiB (default 1024, not scaled) through the
//!   gateway to nginx: MiB/s and the gateway's peak RSS (VmHWM).
//! - A 5 GiB UploadPart through the gateway; the gateway's peak RSS (VmHWM).
//!
//! Needs nginx (apt: nginx-light) and Garage (.ci/setup). Run:
//!   cargo bench --bench e2e_throughput
//! Sizes can be scaled down with S3GATE_BENCH_SCALE=0.1 for a quick look.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use support::{
    best_of, env_or, free_port, mib_per_s, percentile, proc_kib, raw, read_status, request_head,
    start_file_server, wait_port, write_body, Killed, MIB,
};

const KEY: &str = "AKIABENCH00000000001";
const SECRET: &str = "bench-secret-0000000000000000000000001";

struct Garage {
    endpoint: String,
    key: String,
    secret: String,
    _child: Killed,
}

fn start_garage(dir: &Path) -> Garage {
    let mut child = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/garage.py"
        ))
        .arg(dir)
        .args(["--bucket", "gbench"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("garage.py");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("garage line");
    let v: serde_json::Value = serde_json::from_str(&line).expect("garage json");
    Garage {
        endpoint: v["endpoint"].as_str().expect("e").into(),
        key: v["access_key_id"].as_str().expect("k").into(),
        secret: v["secret_access_key"].as_str().expect("s").into(),
        _child: Killed(child),
    }
}

fn start_gateway(dir: &Path, port: u16, nginx_port: u16, garage: &Garage) -> Killed {
    let conf = dir.join("gateway.yaml");
    std::fs::write(
        &conf,
        format!(
            "listen: [{{ address: 127.0.0.1:{port} }}]
region: us-east-1
threads: 2
log: {{ level: warn }}
principals: [{{ name: bench, access_key_id: {KEY}, secret_access_key: {SECRET} }}]
"
        ) + &format!(
                "upstreams:
  nginx: {{ kind: s3-compatible, endpoint: 'http://127.0.0.1:{nginx_port}', region: us-east-1, credentials: {{ access_key_id: N, secret_access_key: n }} }}
  garage: {{ kind: s3-compatible, endpoint: '{}', region: garage, credentials: {{ access_key_id: {}, secret_access_key: {} }} }}
buckets:
  bench: {{ upstream: nginx }}
  gbench: {{ upstream: garage }}
",
                garage.endpoint, garage.key, garage.secret
            ),
    )
    .expect("gateway.yaml");
    let child = Command::new(env!("CARGO_BIN_EXE_s3gate"))
        .args(["serve", "--config"])
        .arg(&conf)
        .spawn()
        .expect("gateway");
    wait_port(port);
    Killed(child)
}

/// Where a request goes and how it is signed.
#[derive(Clone)]
struct Target {
    port: u16,
    sign: Option<(String, String, String)>, // key, secret, region
}

fn head(t: &Target, method: &str, path: &str, len: Option<u64>) -> String {
    let host = format!("127.0.0.1:{}", t.port);
    let mut headers = vec![
        ("host".to_string(), host),
        (
            "x-amz-content-sha256".to_string(),
            "UNSIGNED-PAYLOAD".to_string(),
        ),
    ];
    if let Some(l) = len {
        headers.push(("content-length".into(), l.to_string()));
    }
    if let Some((k, s, r)) = &t.sign {
        let signer = raw::Signer {
            key: k,
            secret: s,
            region: r,
            time: SystemTime::now(),
        };
        headers = signer
            .sign_headers(method, path, headers, "UNSIGNED-PAYLOAD")
            .0;
    }
    request_head(method, path, &headers, false)
}

/// PUT `len` bytes streamed from a 1 MiB buffer; returns seconds.
fn put(t: &Target, path: &str, len: u64) -> f64 {
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", t.port)).expect("connect");
    s.write_all(head(t, "PUT", path, Some(len)).as_bytes())
        .expect("head");
    write_body(&mut s, len);
    let (status, _) = read_status(&mut s);
    assert!(
        status == 200 || status == 201 || status == 204,
        "PUT {path} → {status}"
    );
    start.elapsed().as_secs_f64()
}

fn get(t: &Target, path: &str) -> (f64, u64) {
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", t.port)).expect("connect");
    s.write_all(head(t, "GET", path, None).as_bytes())
        .expect("head");
    let (status, n) = read_status(&mut s);
    assert_eq!(status, 200, "GET {path}");
    (start.elapsed().as_secs_f64(), n)
}

/// POST a browser form carrying a `len`-byte file (the multipart body
/// written as it goes) to `bucket`; returns seconds.
fn post_form(t: &Target, bucket: &str, key: &str, len: u64) -> f64 {
    let boundary = "----s3gateBenchBoundary7MA4YWxk";
    let signer = raw::Signer {
        key: KEY,
        secret: SECRET,
        region: "us-east-1",
        time: SystemTime::now(),
    };
    let range = format!("[\"content-length-range\", 0, {len}]");
    let fields = signer.post_fields(bucket, key, &[&range]);
    let open = raw::form_open(boundary, &fields, "big.bin");
    let close = raw::form_close(boundary);
    let total = open.len() as u64 + len + close.len() as u64;
    let path = format!("/{bucket}");
    let headers = vec![
        ("host".to_string(), format!("127.0.0.1:{}", t.port)),
        (
            "content-type".to_string(),
            format!("multipart/form-data; boundary={boundary}"),
        ),
        ("content-length".to_string(), total.to_string()),
    ];
    let start = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", t.port)).expect("connect");
    s.write_all(request_head("POST", &path, &headers, false).as_bytes())
        .expect("head");
    s.write_all(&open).expect("fields");
    write_body(&mut s, len);
    s.write_all(&close).expect("close");
    let (status, _) = read_status(&mut s);
    assert!(
        (200..300).contains(&status),
        "POST {path} ({key}) → {status}"
    );
    start.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("e2e_throughput: bench");
        return;
    }
    let scale: f64 = env_or("S3GATE_BENCH_SCALE", 1.0);
    let big = ((1024.0 * scale) as u64).max(8) * MIB;
    let garage_size = ((256.0 * scale) as u64).max(8) * MIB;
    let part = ((5120.0 * scale) as u64).max(16) * MIB;
    let shm = PathBuf::from(format!("/dev/shm/s3gate-bench-{}", std::process::id()));
    let disk = std::env::temp_dir().join(format!("s3gate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&disk).expect("tmp");

    let nginx_port = free_port();
    let _nginx = start_file_server(&shm, nginx_port);
    let garage = start_garage(&disk.join("garage"));
    let gw_port = free_port();
    let gateway = start_gateway(&disk, gw_port, nginx_port, &garage);
    let gw_pid = gateway.0.id();

    let direct = Target {
        port: nginx_port,
        sign: None,
    };
    let via = Target {
        port: gw_port,
        sign: Some((KEY.into(), SECRET.into(), "us-east-1".into())),
    };
    let mb = mib_per_s;

    println!("s3gate end-to-end bench (scale {scale}); 2 threads; client, gateway and upstream share this machine\n");
    // 1 GiB PUT / GET against nginx.
    let put_direct = best_of(3, || put(&direct, "/bench/big-direct", big));
    let put_via = best_of(3, || put(&via, "/bench/big-via", big));
    let rounds: usize = env_or("S3GATE_BENCH_GET_ROUNDS", 3);
    let get_direct = best_of(rounds, || get(&direct, "/bench/big-direct").0);
    let get_via = best_of(rounds, || get(&via, "/bench/big-via").0);
    let (pd, pv, gd, gv) = (
        mb(big, put_direct),
        mb(big, put_via),
        mb(big, get_direct),
        mb(big, get_via),
    );
    println!("nginx upstream, {} MiB object (best of 3):", big / MIB);
    println!(
        "  PUT  direct {pd:8.1} MiB/s   via s3gate {pv:8.1} MiB/s   ratio {:.2}x",
        pv / pd
    );
    println!(
        "  GET  direct {gd:8.1} MiB/s   via s3gate {gv:8.1} MiB/s   ratio {:.2}x",
        gv / gd
    );

    // Small-object latency.
    put(&direct, "/bench/small", 4096);
    let lat = |t: &Target| {
        let mut v: Vec<f64> = (0..300)
            .map(|_| get(t, "/bench/small").0 * 1000.0)
            .collect();
        v.sort_by(f64::total_cmp);
        (
            percentile(&v, 0.5),
            percentile(&v, 0.9),
            percentile(&v, 0.99),
        )
    };
    let (d50, d90, d99) = lat(&direct);
    let (v50, v90, v99) = lat(&via);
    println!("4 KiB GET latency, 300 requests each (new connection per request):");
    println!("  direct     p50 {d50:.3} ms  p90 {d90:.3} ms  p99 {d99:.3} ms");
    println!(
        "  via s3gate p50 {v50:.3} ms  p90 {v90:.3} ms  p99 {v99:.3} ms   (added p50 {:.3} ms)",
        v50 - d50
    );

    // Garage.
    let gdirect = Target {
        port: garage
            .endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port"),
        sign: Some((garage.key.clone(), garage.secret.clone(), "garage".into())),
    };
    let gp_d = put(&gdirect, "/gbench/obj-direct", garage_size);
    let gp_v = put(&via, "/gbench/obj-via", garage_size);
    let gg_d = get(&gdirect, "/gbench/obj-direct").0;
    let gg_v = get(&via, "/gbench/obj-via").0;
    println!("Garage upstream, {} MiB object:", garage_size / MIB);
    println!(
        "  PUT  direct {:8.1} MiB/s   via s3gate {:8.1} MiB/s   ratio {:.2}x",
        mb(garage_size, gp_d),
        mb(garage_size, gp_v),
        gp_d / gp_v
    );
    println!(
        "  GET  direct {:8.1} MiB/s   via s3gate {:8.1} MiB/s   ratio {:.2}x",
        mb(garage_size, gg_d),
        mb(garage_size, gg_v),
        gg_d / gg_v
    );

    // A big POST Object (browser upload) to nginx.
    let post_len = env_or("S3GATE_BENCH_BIG_MIB", 1024u64).max(1) * MIB;
    let _ = std::fs::remove_dir_all(shm.join("www/bench"));
    let post_rss_before = proc_kib(gw_pid, "VmHWM");
    let post_t = post_form(&via, "bench", "posted", post_len);
    let post_rss = proc_kib(gw_pid, "VmHWM");
    let post_mibps = mb(post_len, post_t);
    println!(
        "POST Object of {} MiB through s3gate: {post_mibps:.1} MiB/s; gateway peak RSS {:.1} MiB (before the POST: {:.1} MiB)",
        post_len / MIB,
        post_rss as f64 / 1024.0,
        post_rss_before as f64 / 1024.0
    );

    // The 5 GiB part, to nginx writing to disk.
    let _ = std::fs::remove_dir_all(shm.join("www/bench"));
    let rss_before = proc_kib(gw_pid, "VmHWM");
    let t = put(&via, "/bench/part?partNumber=1&uploadId=bench", part);
    let rss = proc_kib(gw_pid, "VmHWM");
    println!("UploadPart of {} MiB through s3gate: {:.1} MiB/s; gateway peak RSS {:.1} MiB (before the part: {:.1} MiB)", part / MIB, mb(part, t), rss as f64 / 1024.0, rss_before as f64 / 1024.0);

    let report = serde_json::json!({
        "scale": scale,
        "nginx": {"object_mib": big / MIB, "put_direct_mibps": pd, "put_gateway_mibps": pv, "put_ratio": pv / pd,
                   "get_direct_mibps": gd, "get_gateway_mibps": gv, "get_ratio": gv / gd},
        "latency_ms": {"direct": [d50, d90, d99], "gateway": [v50, v90, v99]},
        "garage": {"object_mib": garage_size / MIB, "put_ratio": gp_d / gp_v, "get_ratio": gg_d / gg_v},
        "post": {"mib": post_len / MIB, "gateway_mibps": post_mibps, "gateway_peak_rss_mib": post_rss as f64 / 1024.0,
                  "gateway_peak_rss_before_mib": post_rss_before as f64 / 1024.0},
        "part": {"mib": part / MIB, "gateway_mibps": mb(part, t), "gateway_peak_rss_mib": rss as f64 / 1024.0},
    });
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/e2e-bench.json");
    let _ = std::fs::write(
        &out,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    );
    println!("\nreport: {}", out.display());
    drop(gateway);
    let _ = std::fs::remove_dir_all(&shm);
    let _ = std::fs::remove_dir_all(&disk);
}
