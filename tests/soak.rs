//! Issue 15: a soak. A steady mixed load with no faults ([`Mix::Soak`]:
//! small PUT/GET/HEAD/LIST, ranged GET, DELETE, multipart
//! create/part/complete and create/parts/abort; see its documentation for
//! the weights) from `SOAK_CLIENTS` (16) aws-sdk-s3 clients, through the
//! real gateway binary to a real Garage, for `SOAK_SECS`. Every
//! `SOAK_SAMPLE_SECS` (5) the gateway's RSS (`VmRSS`), its open file
//! descriptors (`/proc/<pid>/fd`), the `s3gate_in_flight_requests` gauge
//! (admin `/metrics`), and the requests done and unexpected so far are
//! appended as one JSON line to `SOAK_SAMPLES` (written as they come, so a
//! cut-short run is still usable). At the end: least-squares slopes per
//! hour of RSS and fds over the samples after the warm-up
//! (`SOAK_WARMUP_SECS`, 120 s or a quarter of the run if shorter), their
//! min/max, and a summary line appended to the samples file.
//!
//! The machine may be shared: another's benchmark may pause (SIGSTOP) the
//! gateway and Garage for a while. A watcher notes every pause (either
//! process in state `T`, polled every 100 ms); samples taken over a pause
//! are marked `paused` and left out of the slopes, and an unexpected
//! answer to a request that overlapped a pause (within 5 s after it) is
//! counted as explained by it. Any other unexpected answer fails the run.
//!
//! `cargo test --test soak` runs the CI-sized soak (40 s) with loose
//! bounds; `cargo test --release --test soak -- --ignored` the hour, which
//! asserts flatness: RSS slope under 5 MiB/h and fd slope under 10/h. An
//! existing `<samples>.stop` file ends a run early (summary over what ran).

#[path = "common/mod.rs"]
mod common;

#[allow(dead_code)]
#[path = "chaos/faults.rs"]
mod faults;
#[allow(dead_code)]
#[path = "chaos/workload.rs"]
mod workload;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{start_garage, BucketRule, Gateway, GatewayConfig};
use workload::{Mix, Shared};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    t_s: f64,
    rss_kib: u64,
    /// The anonymous part of RSS (the heap, stacks): RSS less the mapped
    /// binary's pages, which come and go with the machine's page cache.
    rss_anon_kib: u64,
    fds: u64,
    in_flight: i64,
    requests: u64,
    unexpected: u64,
    /// The gateway or Garage was paused since the previous sample.
    paused: bool,
}

impl Sample {
    fn json(&self) -> String {
        format!(
            "{{\"t_s\":{:.1},\"rss_kib\":{},\"rss_anon_kib\":{},\"fds\":{},\"in_flight\":{},\"requests\":{},\"unexpected\":{},\"paused\":{}}}",
            self.t_s,
            self.rss_kib,
            self.rss_anon_kib,
            self.fds,
            self.in_flight,
            self.requests,
            self.unexpected,
            self.paused
        )
    }
}

/// The state letter of `pid` from `/proc/<pid>/stat` (`T`: stopped).
fn state(pid: u32) -> char {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let (_, rest) = s.rsplit_once(')')?;
            rest.trim_start().chars().next()
        })
        .unwrap_or('?')
}

/// The pauses seen so far, as (from, to) in ms on the workload's clock; an
/// open pause's `to` is `None`.
type Pauses = Arc<Mutex<Vec<(u64, Option<u64>)>>>;

/// Note every pause of `pids` until `done`.
fn watch_pauses(pids: Vec<u32>, shared: Arc<Shared>, done: Arc<AtomicBool>) -> Pauses {
    let pauses: Pauses = Arc::default();
    let out = pauses.clone();
    std::thread::spawn(move || {
        while !done.load(Ordering::SeqCst) {
            let stopped = pids.iter().any(|p| matches!(state(*p), 'T' | 't'));
            let now = shared.ms();
            let mut list = out.lock().expect("pauses");
            match list.last_mut() {
                Some((_, to @ None)) if !stopped => *to = Some(now),
                Some((_, None)) => {}
                _ if stopped => list.push((now, None)),
                _ => {}
            }
            drop(list);
            std::thread::sleep(Duration::from_millis(100)); // watch interval
        }
    });
    pauses
}

/// Whether the window `from..=to` (ms) overlapped a pause or ended within
/// `slack` ms after one.
fn overlaps(pauses: &Pauses, from: u64, to: u64, slack: u64) -> bool {
    pauses
        .lock()
        .expect("pauses")
        .iter()
        .any(|(pf, pt)| *pf <= to && from <= pt.map_or(u64::MAX, |t| t + slack))
}

/// A field of `/proc/<pid>/status` (`VmRSS:`, `RssAnon:`), in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// The in-flight gauge from the admin listener's `/metrics` (-1: none).
fn in_flight(admin_port: u16) -> i64 {
    let (_, body) = common::http_get(admin_port, "/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix("s3gate_in_flight_requests "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1)
}

async fn sample(gw: &Gateway, shared: &Shared, pauses: &Pauses, since_ms: u64) -> Sample {
    let (pid, admin) = (gw.pid(), gw.admin_port);
    let t_s = shared.t0.elapsed().as_secs_f64();
    let (rss_kib, rss_anon_kib, fds, in_flight) = tokio::task::spawn_blocking(move || {
        (
            status_kib(pid, "VmRSS:"),
            status_kib(pid, "RssAnon:"),
            fds(pid),
            in_flight(admin),
        )
    })
    .await
    .expect("sample");
    Sample {
        t_s,
        rss_kib,
        rss_anon_kib,
        fds,
        in_flight,
        requests: shared.requests.load(Ordering::Relaxed),
        unexpected: shared.unexpected.load(Ordering::Relaxed),
        paused: overlaps(pauses, since_ms, shared.ms(), 0),
    }
}

/// Least-squares slope of `y` over `x` (per unit of x).
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

#[derive(Debug)]
struct Summary {
    secs: f64,
    samples: usize,
    steady_samples: usize,
    requests: u64,
    unexpected: u64,
    /// Unexpected answers to requests that overlapped no pause and were
    /// not Garage's own 503s.
    unexplained: u64,
    /// Garage's own 503s (see `run`).
    garage_503: u64,
    /// The pauses of the gateway or Garage: how many, how long in all.
    pauses: usize,
    paused_s: f64,
    rss_mib_start: f64,
    rss_mib_end: f64,
    rss_mib_min: f64,
    rss_mib_max: f64,
    rss_mib_per_h: f64,
    rss_anon_mib_start: f64,
    rss_anon_mib_end: f64,
    rss_anon_mib_per_h: f64,
    fds_start: u64,
    fds_end: u64,
    fds_min: u64,
    fds_max: u64,
    fds_per_h: f64,
    in_flight_max: i64,
    /// The gauge once the clients stopped (after at most 5 s).
    in_flight_after: i64,
    /// RSS and fds once the clients stopped.
    rss_mib_idle: f64,
    fds_idle: u64,
}

impl Summary {
    /// Over the samples after `warmup` seconds and not over a pause
    /// (start: the first of them).
    fn of(
        all: &[Sample],
        warmup: f64,
        in_flight_after: i64,
        idle: Sample,
        unexplained: u64,
        pauses: &Pauses,
    ) -> Summary {
        let steady: Vec<Sample> = all
            .iter()
            .copied()
            .filter(|s| s.t_s >= warmup && !s.paused)
            .collect();
        assert!(
            !steady.is_empty(),
            "no sample after the warm-up outside pauses"
        );
        let end_ms = (idle.t_s * 1000.0) as u64;
        let (n_pauses, paused_ms) = {
            let list = pauses.lock().expect("pauses");
            let ms: u64 = list
                .iter()
                .map(|(f, t)| t.unwrap_or(end_ms).saturating_sub(*f))
                .sum();
            (list.len(), ms)
        };
        let (first, last) = (steady[0], steady[steady.len() - 1]);
        let mib = |s: &Sample| s.rss_kib as f64 / 1024.0;
        let hours = |s: &Sample| s.t_s / 3600.0;
        let rss: Vec<(f64, f64)> = steady.iter().map(|s| (hours(s), mib(s))).collect();
        let anon_mib = |s: &Sample| s.rss_anon_kib as f64 / 1024.0;
        let anon: Vec<(f64, f64)> = steady.iter().map(|s| (hours(s), anon_mib(s))).collect();
        let fd: Vec<(f64, f64)> = steady.iter().map(|s| (hours(s), s.fds as f64)).collect();
        Summary {
            secs: all[all.len() - 1].t_s,
            samples: all.len(),
            steady_samples: steady.len(),
            // Counted to the end, the clients' last requests included.
            requests: idle.requests,
            unexpected: idle.unexpected,
            unexplained,
            garage_503: 0,
            pauses: n_pauses,
            paused_s: paused_ms as f64 / 1000.0,
            rss_mib_start: mib(&first),
            rss_mib_end: mib(&last),
            rss_mib_min: steady.iter().map(mib).fold(f64::MAX, f64::min),
            rss_mib_max: steady.iter().map(mib).fold(0.0, f64::max),
            rss_mib_per_h: slope(&rss),
            rss_anon_mib_start: anon_mib(&first),
            rss_anon_mib_end: anon_mib(&last),
            rss_anon_mib_per_h: slope(&anon),
            fds_start: first.fds,
            fds_end: last.fds,
            fds_min: steady.iter().map(|s| s.fds).min().unwrap_or(0),
            fds_max: steady.iter().map(|s| s.fds).max().unwrap_or(0),
            fds_per_h: slope(&fd),
            in_flight_max: all.iter().map(|s| s.in_flight).max().unwrap_or(-1),
            in_flight_after,
            rss_mib_idle: mib(&idle),
            fds_idle: idle.fds,
        }
    }

    fn json(&self) -> String {
        format!(
            "{{\"summary\":{{\"secs\":{:.0},\"samples\":{},\"steady_samples\":{},\"requests\":{},\"unexpected\":{},\"unexplained\":{},\"garage_503\":{},\"pauses\":{},\"paused_s\":{:.1},\
             \"rss_mib_start\":{:.1},\"rss_mib_end\":{:.1},\"rss_mib_min\":{:.1},\"rss_mib_max\":{:.1},\"rss_mib_per_h\":{:.2},\"rss_anon_mib_start\":{:.1},\"rss_anon_mib_end\":{:.1},\"rss_anon_mib_per_h\":{:.2},\
             \"fds_start\":{},\"fds_end\":{},\"fds_min\":{},\"fds_max\":{},\"fds_per_h\":{:.2},\
             \"in_flight_max\":{},\"in_flight_after\":{},\"rss_mib_idle\":{:.1},\"fds_idle\":{}}}}}",
            self.secs,
            self.samples,
            self.steady_samples,
            self.requests,
            self.unexpected,
            self.unexplained,
            self.garage_503,
            self.pauses,
            self.paused_s,
            self.rss_mib_start,
            self.rss_mib_end,
            self.rss_mib_min,
            self.rss_mib_max,
            self.rss_mib_per_h,
            self.rss_anon_mib_start,
            self.rss_anon_mib_end,
            self.rss_anon_mib_per_h,
            self.fds_start,
            self.fds_end,
            self.fds_min,
            self.fds_max,
            self.fds_per_h,
            self.in_flight_max,
            self.in_flight_after,
            self.rss_mib_idle,
            self.fds_idle
        )
    }
}

struct Params {
    secs: u64,
    clients: usize,
    every: Duration,
    warmup: f64,
    samples: PathBuf,
    seed: u64,
}

impl Params {
    fn from_env(default_secs: u64) -> Params {
        let secs = env_or("SOAK_SECS", default_secs);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Params {
            secs,
            clients: env_or("SOAK_CLIENTS", 16),
            every: Duration::from_secs(env_or("SOAK_SAMPLE_SECS", 5)),
            warmup: env_or("SOAK_WARMUP_SECS", (secs / 4).min(120)) as f64,
            samples: std::env::var_os("SOAK_SAMPLES").map_or_else(
                || std::env::temp_dir().join(format!("s3gate-soak-{}.jsonl", std::process::id())),
                PathBuf::from,
            ),
            seed: env_or("SOAK_SEED", now),
        }
    }
}

/// The CI-sized soak: loose bounds (a short run's slopes are mostly the
/// allocator settling), no unexpected answer, the gauge back to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn steady_load_stays_flat_short() {
    let s = run(Params::from_env(40)).await;
    assert!(s.requests > 100, "too few requests: {s:?}");
    assert!(
        s.rss_mib_max - s.rss_mib_min < 64.0,
        "RSS moved by more than 64 MiB after the warm-up: {s:?}"
    );
    assert!(
        s.fds_max - s.fds_min < 64,
        "open fds moved by more than 64 after the warm-up: {s:?}"
    );
}

/// The hour: RSS slope under 5 MiB/h, fd slope under 10/h.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "the hour-long soak: cargo test --release --test soak -- --ignored"]
async fn steady_load_stays_flat_hour() {
    let s = run(Params::from_env(3600)).await;
    assert!(
        s.rss_mib_per_h.abs() < 5.0,
        "RSS slope {:.2} MiB/h: {s:?}",
        s.rss_mib_per_h
    );
    assert!(
        s.fds_per_h.abs() < 10.0,
        "fd slope {:.2}/h: {s:?}",
        s.fds_per_h
    );
}

fn stop_file(samples: &Path) -> PathBuf {
    let mut p = samples.as_os_str().to_owned();
    p.push(".stop");
    PathBuf::from(p)
}

/// Run the soak; panics on an unexpected answer or a gauge left above 0.
async fn run(p: Params) -> Summary {
    eprintln!(
        "soak: SOAK_SECS={} SOAK_CLIENTS={} SOAK_SAMPLE_SECS={} SOAK_WARMUP_SECS={} SOAK_SEED={} samples: {}",
        p.secs,
        p.clients,
        p.every.as_secs(),
        p.warmup,
        p.seed,
        p.samples.display()
    );
    let dir = std::env::temp_dir().join(format!("s3gate-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let garage = start_garage(&dir, &[workload::BUCKET, "state"]);
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).expect("policies");
    // Version A of the chaos policies: everyone may do everything, but only
    // an upload's initiator may add parts to it or abort it.
    std::fs::write(policies.join("base.yaml"), faults::BASE_A).expect("policy");
    let cfg = GatewayConfig::new(&garage)
        .alice_and_bob()
        .gateway_name("soak")
        .bucket(workload::BUCKET, BucketRule::upstream("garage"))
        .policy_dir(&policies)
        .ownership_s3("garage", "state", "owners/")
        .timeouts(5, 30, 30);
    let gw_dir = dir.join("gw");
    let gw = tokio::task::spawn_blocking(move || cfg.start_direct(&gw_dir))
        .await
        .expect("gateway start");
    let mut out = std::fs::File::create(&p.samples).expect("samples file");
    let stop = stop_file(&p.samples);
    let shared = Shared::counting();
    let watched = Arc::new(AtomicBool::new(false));
    let pauses = watch_pauses(vec![gw.pid(), garage.pid], shared.clone(), watched.clone());
    let clients = workload::start(p.clients, &gw.endpoint(), p.seed, &shared, Mix::Soak);
    let end = Instant::now() + Duration::from_secs(p.secs);
    let mut samples = Vec::new();
    let mut next = Instant::now();
    let mut since = 0;
    loop {
        let s = sample(&gw, &shared, &pauses, since).await;
        since = shared.ms();
        writeln!(out, "{}", s.json()).expect("write sample");
        samples.push(s);
        if samples.len() % 12 == 0 {
            eprintln!("soak: {}", s.json());
        }
        assert!(gw.try_wait().is_none(), "the gateway exited:\n{}", gw.log());
        if Instant::now() >= end || stop.exists() {
            break;
        }
        next += p.every;
        tokio::time::sleep_until(next.min(end).into()).await;
    }
    shared.stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.expect("client task");
    }
    // Nothing is being served now: the gauge must come back to 0.
    let mut after = in_flight(gw.admin_port);
    let settle = Instant::now();
    while after != 0 && settle.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
        after = in_flight(gw.admin_port);
    }
    // Idle, after the load (not in the slopes).
    let idle = sample(&gw, &shared, &pauses, since).await;
    writeln!(out, "{{\"idle\":{}}}", idle.json()).expect("write sample");
    watched.store(true, Ordering::SeqCst);
    let failed = shared.entries();
    let mut unexplained: Vec<_> = failed
        .iter()
        .filter(|e| {
            matches!(e.res, workload::Res::Corrupt(_))
                || !overlaps(&pauses, e.start_ms, e.end_ms, 5000)
        })
        .collect();
    // Garage itself may answer 503 under load (its SQLite "database is
    // locked"), which the gateway relays as it is: as many 503s as
    // Garage's log shows it answered are explained by it.
    let garage_503 = std::fs::read_to_string(dir.join("garage/garage.log"))
        .unwrap_or_default()
        .matches("error 503 Service Unavailable")
        .count();
    let mut upstream_503 = 0;
    unexplained.retain(|e| {
        let by_garage = matches!(e.res, workload::Res::Fail(503, _)) && upstream_503 < garage_503;
        upstream_503 += usize::from(by_garage);
        !by_garage
    });
    if upstream_503 > 0 {
        eprintln!("soak: {upstream_503} answers were Garage's own 503 (its log has {garage_503})");
    }
    let mut summary = Summary::of(
        &samples,
        p.warmup,
        after,
        idle,
        unexplained.len() as u64,
        &pauses,
    );
    summary.garage_503 = upstream_503 as u64;
    writeln!(out, "{}", summary.json()).expect("write summary");
    let tally = shared.tally.lock().expect("tally").clone();
    for ((op, res), n) in &tally {
        eprintln!("soak: {op:<11} {res:<28} {n}");
    }
    eprintln!("soak: {}", summary.json());
    gw.stop();
    drop(garage);
    assert!(
        unexplained.is_empty(),
        "{} unexpected answers outside pauses, e.g. {:?}; all: {tally:?}\n{}",
        unexplained.len(),
        unexplained.iter().take(5).collect::<Vec<_>>(),
        gw.log()
    );
    assert_eq!(summary.in_flight_after, 0, "in-flight gauge after the load");
    let _ = std::fs::remove_dir_all(&dir);
    summary
}
