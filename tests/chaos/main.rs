//! Issue 15: under load and faults, nothing acknowledged is ever lost.
//!
//! 32 clients (tokio tasks, aws-sdk-s3 without retries) create uploads,
//! upload parts, complete, abort and read through the real gateway binary
//! to a real Garage, and every request and its answer goes into a history.
//! Meanwhile, one after the other: the gateway is killed with SIGKILL at
//! random moments and restarted (`CHAOS_KILLS`, 5 here, 20 in the soak),
//! Garage is killed and restarted, the audit log's filesystem fills up
//! (`on_failure: reject`), and the policy flips between two versions every
//! 100 ms. Afterwards the history is checked against what Garage, the
//! audit ledger and the decision log hold (see `checks`); then a reaper
//! replica with a short `orphans_after` runs, and no upload may remain
//! upstream without its initiator on record.
//!
//! `CHAOS_SEED` replays a run's random choices (kill moments, client
//! operations and sizes; the interleaving is the machine's). The soak:
//! `cargo test --test chaos -- --ignored` (or `CHAOS_SOAK=1`).

#[path = "../common/mod.rs"]
mod common;

mod checks;
mod faults;
mod workload;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::{free_port, start_garage, Audit, BucketRule, Gateway, GatewayConfig};
use faults::{signal, GarageRestarts, Tmpfs};
use workload::{Op, Res, Shared};

const PHASES: [&str; 5] = ["kills", "garage", "audit-full", "reload-storm", "calm"];
const KILLS: usize = 0;
const GARAGE: usize = 1;
const FULL: usize = 2;
const STORM: usize = 3;
const CALM: usize = 4;
/// The reaper replica's `orphans_after` (every 1 s).
const ORPHANS_AFTER: &str = "2s";

struct Params {
    seed: u64,
    clients: usize,
    kills: usize,
    /// How long the garage, audit-full, storm and calm phases last.
    phase: Duration,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

impl Params {
    fn from_env(soak: bool) -> Self {
        let soak = soak || std::env::var_os("CHAOS_SOAK").is_some();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Params {
            seed: env_or("CHAOS_SEED", now),
            clients: env_or("CHAOS_CLIENTS", 32),
            kills: env_or("CHAOS_KILLS", if soak { 20 } else { 5 }),
            phase: Duration::from_secs(env_or("CHAOS_PHASE_SECS", if soak { 20 } else { 3 })),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_acknowledged_is_lost_under_kills_and_faults() {
    run(Params::from_env(false)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "soak: 20 kills and 20 s phases; cargo test --test chaos -- --ignored"]
async fn soak() {
    run(Params::from_env(true)).await;
}

/// Start (or restart) the gateway, off the async threads.
async fn launch(cfg: &GatewayConfig, dir: &Path) -> Gateway {
    let (cfg, dir) = (cfg.clone(), dir.to_path_buf());
    tokio::task::spawn_blocking(move || cfg.start_direct(&dir))
        .await
        .expect("gateway start")
}

fn set_phase(shared: &Shared, p: usize) {
    shared.phase.store(p, Ordering::SeqCst);
    eprintln!("chaos: {} ms: phase {}", shared.ms(), PHASES[p]);
}

async fn run(p: Params) {
    let started = Instant::now();
    eprintln!(
        "chaos: CHAOS_SEED={} CHAOS_CLIENTS={} CHAOS_KILLS={} CHAOS_PHASE_SECS={}",
        p.seed,
        p.clients,
        p.kills,
        p.phase.as_secs()
    );
    let mut rng = StdRng::seed_from_u64(p.seed);
    let dir = std::env::temp_dir().join(format!("s3gate-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let garage = start_garage(&dir, &[workload::BUCKET, "state"]);
    let mut garage_restarts = GarageRestarts { restarted: None };
    let tmpfs = Tmpfs::mount(&dir.join("auditfs"), "8m");
    if tmpfs.is_none() {
        eprintln!(
            "chaos: cannot mount a tmpfs here (not root?): the audit-full phase only runs as root"
        );
    }
    let ledger = dir.join("auditfs/audit.jsonl");
    let decisions = dir.join("decisions.jsonl");
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).expect("policies");
    faults::write_policies(&policies);
    let (s3_port, admin_port) = (free_port(), free_port());
    let cfg = GatewayConfig::new(&garage)
        .listen_on(
            &format!("127.0.0.1:{s3_port}"),
            &format!("127.0.0.1:{admin_port}"),
        )
        .alice_and_bob()
        .bucket(workload::BUCKET, BucketRule::upstream("garage"))
        .policy_dir(&policies)
        .ownership_s3("garage", "state", "owners/")
        .abort("10s", true, 5)
        .audit(
            Audit::new(&ledger)
                .events(&["AbortMultipartUpload"])
                .fsync("always")
                .on_failure("reject"),
        )
        .timeouts(5, 30, 30)
        .extra_yaml(&format!("decision_log:\n  path: {}\n", decisions.display()));
    let mut incarnation = 0;
    let incarnation_cfg = |n: usize| cfg.clone().gateway_name(&format!("chaos-{n}"));
    let mut gw = launch(&incarnation_cfg(0), &dir.join("gw-0")).await;
    let endpoint = gw.endpoint();
    let shared = Shared::new();
    let clients = workload::start(p.clients, &endpoint, p.seed, &shared, workload::Mix::Chaos);

    // 1. SIGKILL at random moments, restart each time.
    set_phase(&shared, KILLS);
    let mut kill_times = Vec::new();
    for _ in 0..p.kills {
        let wait = rng.gen_range(200..1500);
        tokio::time::sleep(Duration::from_millis(wait)).await; // a random moment
        signal(gw.pid(), "-9");
        kill_times.push(shared.ms());
        gw.stop(); // reaps the killed process
        incarnation += 1;
        gw = launch(
            &incarnation_cfg(incarnation),
            &dir.join(format!("gw-{incarnation}")),
        )
        .await;
    }

    // 2. Garage killed mid-traffic and restarted; the gateway (not
    // restarted) must serve again by itself.
    set_phase(&shared, GARAGE);
    tokio::time::sleep(p.phase / 3).await; // traffic before the fault
    garage_restarts.kill(&garage);
    tokio::time::sleep(p.phase / 3).await; // the upstream stays down a while
    garage_restarts.start(&garage, &dir.join("garage-restarted.log"));
    let back = Instant::now();
    let probe = workload::sdk(
        &endpoint,
        common::ALICE_KEY,
        common::ALICE_SECRET,
        "us-east-1",
    );
    let mut recovered = None;
    while back.elapsed() < Duration::from_secs(60) {
        let r = probe
            .list_objects_v2()
            .bucket(workload::BUCKET)
            .max_keys(1)
            .send()
            .await;
        if r.is_ok() {
            recovered = Some(back.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // poll interval
    }

    // 3. The audit log's filesystem full, with on_failure: reject.
    set_phase(&shared, FULL);
    // Full for 400 ms, then free for 200 ms, again and again: each filling
    // catches aborts between their check and their record.
    let mut full_windows = Vec::new();
    if let Some(t) = &tmpfs {
        let end = Instant::now() + p.phase;
        while Instant::now() < end {
            let from = shared.ms();
            t.fill();
            tokio::time::sleep(Duration::from_millis(400)).await; // the fault lasts a while
            t.free();
            full_windows.push((from, shared.ms()));
            tokio::time::sleep(Duration::from_millis(200)).await; // room again
        }
    }

    // 4. The policy flips between two versions every 100 ms (ConfigMap
    // swap + SIGHUP, as the watcher's debounce waits for quiet files).
    set_phase(&shared, STORM);
    let reloads_before = gw.log().matches("policies reloaded").count();
    let storm_end = Instant::now() + p.phase;
    let mut flips = 0;
    while Instant::now() < storm_end || flips % 2 == 1 {
        flips += 1;
        faults::swap(&policies, if flips % 2 == 1 { "b" } else { "a" });
        signal(gw.pid(), "-HUP");
        tokio::time::sleep(Duration::from_millis(100)).await; // the storm's period
    }
    set_phase(&shared, CALM);
    let reloads = gw.log().matches("policies reloaded").count() - reloads_before;
    tokio::time::sleep(p.phase / 3).await; // calm traffic
    shared.stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.expect("client task");
    }
    let traffic_done = started.elapsed();
    let quiet_since = Instant::now();

    // Checks.
    let history = shared.entries();
    let mut v = checks::Violations::new();
    let acked_aborts = checks::aborts(&history, &ledger, &mut v);
    let verified = checks::verify(&ledger, &format!("chaos-{incarnation}"), &mut v);
    let direct = common::client(
        &garage.endpoint,
        "garage",
        &garage.access_key_id,
        &garage.secret_access_key,
        true,
    );
    checks::completes(&history, &direct, &mut v).await;
    let alice = workload::sdk(
        &endpoint,
        common::ALICE_KEY,
        common::ALICE_SECRET,
        "us-east-1",
    );
    let bob = workload::sdk(&endpoint, common::BOB_KEY, common::BOB_SECRET, "us-east-1");
    let owners = checks::owners(&history, &direct, &alice, &bob, &mut v).await;
    for e in &history {
        if e.op == Op::ForeignPart && e.res == Res::Ok {
            v.push(format!(
                "{} uploaded a part to another's upload {:?}",
                e.principal, e.upload_id
            ));
        }
    }
    // 5. A reaper replica (same state bucket, its own ledger) with a short
    // orphans_after: after a round that began once every upload is older
    // than that, none is left without its initiator on record.
    let reaper_ledger = dir.join("reaper-audit.jsonl");
    let reaper_gw = launch(
        &cfg.clone()
            .gateway_name("chaos-reaper")
            .listen_on(
                &format!("127.0.0.1:{}", free_port()),
                &format!("127.0.0.1:{}", free_port()),
            )
            .bucket(
                workload::BUCKET,
                BucketRule::upstream("garage").abort_incomplete_after("1d"),
            )
            .reaper("1s")
            .orphans_after(ORPHANS_AFTER)
            .audit(Audit::new(&reaper_ledger).fsync("always")),
        &dir.join("gw-reaper"),
    )
    .await;
    let reaper_started = Instant::now();
    let rounds = |gw: &Gateway| {
        let (_, body) = common::http_get(gw.admin_port, "/metrics");
        body.lines()
            .filter(|l| l.starts_with("s3gate_reaper_runs_total{result=\"ok\"}"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    // Past orphans_after (whole seconds in Initiated, and a margin).
    let old_enough = Duration::from_secs(3);
    tokio::time::sleep(old_enough.saturating_sub(quiet_since.elapsed())).await;
    // Two more ok rounds: the second began after the wait.
    let r0 = rounds(&reaper_gw);
    while rounds(&reaper_gw) < r0 + 2 && reaper_started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
    }
    if rounds(&reaper_gw) < r0 + 2 {
        v.push("the reaper replica did not finish two rounds within 60 s".into());
    }
    let reaped = checks::orphans_reaped(&history, &direct, &reaper_ledger, &mut v).await;
    let reaper_took = reaper_started.elapsed();
    reaper_gw.stop();

    // The two versions: the first loaded, and the one B made.
    let log = gw.log();
    let mut versions = policy_versions(&log, &dir);
    if versions.len() != 2 {
        v.push(format!(
            "policy versions in force: {versions:?}, expected two whole versions"
        ));
    }
    versions.truncate(2);
    let (decided, unlogged, seen) = checks::storm(&history, STORM, &decisions, &versions, &mut v);
    // SIGHUPs sent while the gateway is paused coalesce: ask only that both
    // versions decided requests during the storm.
    if seen.len() < 2 {
        v.push(format!(
            "the storm ({flips} flips, {reloads} reloads) decided requests under {seen:?} only"
        ));
    }
    match recovered {
        Some(d) => eprintln!("chaos: gateway served again {d:?} after Garage restarted"),
        None => v.push("the gateway did not recover within 60 s of Garage's restart".into()),
    }
    let in_full = |e: &&workload::Entry| {
        e.op == Op::Abort
            && full_windows
                .iter()
                .any(|(from, to)| e.start_ms >= *from && e.end_ms <= *to)
    };
    let refused_full = history
        .iter()
        .filter(in_full)
        .filter(|e| matches!(e.res, Res::Fail(503, _)))
        .count();
    let acked_full = history
        .iter()
        .filter(in_full)
        .filter(|e| e.res == Res::Ok)
        .count();
    if tmpfs.is_some() && refused_full == 0 {
        v.push("no abort was refused while the audit filesystem was full".into());
    }

    // Figures.
    let unacknowledged = gw.log().matches("abort not acknowledged").count();
    let mut by: std::collections::BTreeMap<(String, String, String), usize> = Default::default();
    for e in &history {
        *by.entry((
            PHASES[e.phase].to_string(),
            format!("{:?}", e.op),
            e.result(),
        ))
        .or_default() += 1;
    }
    for ((ph, op, res), n) in &by {
        eprintln!("chaos: {ph:>12} {op:<11} {res:<28} {n}");
    }
    eprintln!(
        "chaos: seed {}: {} requests in the history, {} kills (at {:?} ms), {acked_aborts} aborts acknowledged; audit verify: {verified}; \
         {refused_full} aborts refused and {acked_full} acknowledged while the audit fs was full ({} fillings), \
         {unacknowledged} aborted upstream but answered 503 (record failed after the probe); \
         uploads open upstream {} (acknowledged {}, orphans {} of which {} without a record); \
         storm: {flips} flips, {reloads} reloads, {decided} decisions checked ({unlogged} unlogged), versions seen {seen:?}; \
         traffic {traffic_done:?}, total {:?}",
        p.seed,
        history.len(),
        p.kills,
        kill_times,
        full_windows.len(),
        owners.open,
        owners.acknowledged,
        owners.orphans,
        owners.orphans_without_record,
        started.elapsed()
    );
    eprintln!(
        "chaos: orphans without a record, by cause: {:?}",
        owners.orphan_causes
    );
    eprintln!(
        "chaos: reaper replica (orphans_after {ORPHANS_AFTER}): {} orphans aborted, {} uploads left without a record, {reaper_took:?}",
        reaped.orphans_aborted, reaped.left_without_record
    );
    gw.stop();
    garage_restarts.kill(&garage);
    drop(tmpfs);
    if v.is_empty() {
        // Kept for inspection when something failed.
        drop(garage);
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(
        v.is_empty(),
        "{} violation(s) (CHAOS_SEED={}):\n{}",
        v.len(),
        p.seed,
        v.join("\n")
    );
}

/// The versions the gateways logged: the first one loaded (A), then the
/// others in order of appearance (B, and anything else: a mixed set).
fn policy_versions(last_log: &str, dir: &Path) -> Vec<String> {
    let mut text = String::new();
    for i in 0.. {
        match std::fs::read_to_string(dir.join(format!("gw-{i}/gateway.log"))) {
            Ok(t) => text.push_str(&t),
            Err(_) => break,
        }
    }
    text.push_str(last_log);
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if !(line.contains("policies loaded") || line.contains("policies reloaded")) {
            continue;
        }
        if let Some(v) = line
            .split("version=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
        {
            let v = v.trim_matches('"').to_string();
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}
