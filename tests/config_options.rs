//! Every documented configuration option, exercised by its effect: what
//! the upstream receives (a recording stand-in upstream, tests/common/
//! standin.rs), what the client is answered, what the process does. One
//! test per option, table-driven where an option has values to compare.
//! Options proven elsewhere are listed in the table of issue 16's report;
//! `dualstack`/`fips` are proven at unit level (src/route/mod.rs
//! `aws_endpoints_follow_dualstack_and_fips`), since an AWS host name
//! cannot be reached on loopback.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::raw::{send, Signer};
use common::standin::{wait_until, Action, Recorded, StandIn};
use common::{
    client, data, http_get, listeners_in_log, Audit, BucketRule, Credentials, Gateway,
    GatewayConfig, Upstream, ALICE_KEY, ALICE_SECRET, BOB_KEY, BOB_SECRET,
};

const UPSTREAM_KEY: &str = "STANDINKEY0000000001";
const UPSTREAM_SECRET: &str = "standin-upstream-secret-0000000000000001";

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir()
        .join(format!("s3gate-options-{}", std::process::id()))
        .join(name);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

/// alice and bob, every bucket to the stand-in `si` (path style).
fn config(si: &StandIn) -> GatewayConfig {
    GatewayConfig::empty()
        .alice_and_bob()
        .upstream("si", upstream(si))
        .bucket("*", BucketRule::upstream("si"))
}

fn upstream(si: &StandIn) -> Upstream {
    Upstream::s3_compatible(
        si.endpoint(),
        Credentials::keys(UPSTREAM_KEY, UPSTREAM_SECRET),
    )
    .region("garage")
    .addressing("path")
}

fn alice(gw: &Gateway) -> aws_sdk_s3::Client {
    client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true)
}

/// alice without the SDK's retries: one attempt per call, so timings are
/// the gateway's alone.
fn alice_once(gw: &Gateway) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        alice(gw)
            .config()
            .to_builder()
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build(),
    )
}

fn bob(gw: &Gateway) -> aws_sdk_s3::Client {
    client(&gw.endpoint(), "us-east-1", BOB_KEY, BOB_SECRET, true)
}

const LIST_ONE_PART: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<ListPartsResult><Bucket>b</Bucket><Key>k</Key><UploadId>U1</UploadId>\
<IsTruncated>false</IsTruncated>\
<Part><PartNumber>1</PartNumber><ETag>\"e\"</ETag><Size>5242880</Size></Part>\
</ListPartsResult>";

const NO_SUCH_UPLOAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<Error><Code>NoSuchUpload</Code><Message>gone</Message></Error>";

/// A store that answers what a multipart flow needs: uploads are created
/// as `U1`, ListParts shows one part, everything else succeeds.
fn store(r: &Recorded) -> Action {
    let q = r.target.split_once('?').map(|(_, q)| q).unwrap_or("");
    match r.method.as_str() {
        "POST" if q.starts_with("uploads") => Action::xml(
            200,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><InitiateMultipartUploadResult>\
             <Bucket>b</Bucket><Key>k</Key><UploadId>U1</UploadId></InitiateMultipartUploadResult>",
        ),
        "GET" if q.contains("uploadId=") => Action::xml(200, LIST_ONE_PART),
        "DELETE" => Action::status(204),
        "PUT" => Action::Reply {
            status: 200,
            headers: vec![("etag".into(), "\"e\"".into())],
            body: Vec::new(),
        },
        _ => Action::Reply {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"stand-in object".to_vec(),
        },
    }
}

fn of<'a>(reqs: &'a [Recorded], method: &str) -> Vec<&'a Recorded> {
    reqs.iter().filter(|r| r.method == method).collect()
}

fn is_list_parts(r: &Recorded) -> bool {
    r.method == "GET" && r.target.contains("uploadId=")
}

fn crc32(d: &[u8]) -> String {
    use base64::Engine as _;
    let mut c = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32IsoHdlc);
    c.update(d);
    base64::engine::general_purpose::STANDARD.encode((c.finalize() as u32).to_be_bytes())
}

/// `upstreams.<name>.checksum_trailers`: on (the default), an aws-chunked
/// body with a trailing checksum is re-framed for the upstream with the
/// client's checksum; off, the upstream gets the verified bytes plainly.
#[tokio::test]
async fn checksum_trailers_reframe_or_send_plain_bytes() {
    let d = data(70_000, 9);
    let sum = crc32(&d);
    for (setting, reframed) in [(None, true), (Some(true), true), (Some(false), false)] {
        let si = StandIn::start(store);
        let mut up = upstream(&si);
        if let Some(on) = setting {
            up = up.set("checksum_trailers", on);
        }
        let gw = config(&si)
            .upstream("si", up)
            .start(&dir(&format!("trailers-{setting:?}")));
        let s = Signer {
            key: ALICE_KEY,
            secret: ALICE_SECRET,
            region: "us-east-1",
            time: SystemTime::now(),
        };
        let body = s.aws_chunked(&d, 16 * 1024, None, Some(("x-amz-checksum-crc32", &sum)));
        let target = "/bkt/trailer.bin";
        let mode = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
        let headers = vec![
            ("host".to_string(), format!("127.0.0.1:{}", gw.port)),
            ("x-amz-content-sha256".to_string(), mode.to_string()),
            ("content-length".to_string(), body.len().to_string()),
            ("content-encoding".to_string(), "aws-chunked".to_string()),
            (
                "x-amz-decoded-content-length".to_string(),
                d.len().to_string(),
            ),
            (
                "x-amz-trailer".to_string(),
                "x-amz-checksum-crc32".to_string(),
            ),
        ];
        let (headers, _) = s.sign_headers("PUT", target, headers, mode);
        let r = send(gw.port, "PUT", target, &headers, &body);
        assert_eq!(r.status, 200, "{setting:?}: {}", r.body);
        let reqs = si.requests();
        let puts = of(&reqs, "PUT");
        assert_eq!(puts.len(), 1, "{setting:?}: {reqs:?}");
        let put = puts[0];
        if reframed {
            assert_eq!(put.header("x-amz-content-sha256"), Some(mode), "{put:?}");
            assert_eq!(put.header("x-amz-trailer"), Some("x-amz-checksum-crc32"));
            assert!(
                put.header("content-encoding")
                    .is_some_and(|v| v.contains("aws-chunked")),
                "{put:?}"
            );
            let text = String::from_utf8_lossy(&put.body);
            assert!(
                text.contains(&format!("x-amz-checksum-crc32:{sum}")),
                "{setting:?}: the client's checksum travels as a trailer"
            );
            assert_ne!(put.body, d);
        } else {
            assert_eq!(put.body, d, "the upstream gets exactly the verified bytes");
            assert_eq!(put.header("x-amz-trailer"), None, "{put:?}");
            assert!(
                !put.header("content-encoding")
                    .is_some_and(|v| v.contains("aws-chunked")),
                "{put:?}"
            );
            assert!(
                put.header("x-amz-content-sha256")
                    .is_some_and(|v| !v.starts_with("STREAMING")),
                "{put:?}"
            );
        }
    }
}

/// `buckets.<name>.expected_bucket_owner: passthrough` sends the client's
/// header as is (a mismatching one included, for the upstream to judge),
/// and adds none; `inject` adds the owner when the client sent none.
#[tokio::test]
async fn expected_bucket_owner_passthrough_forwards_the_clients_header() {
    let si = StandIn::start(store);
    let gw = config(&si)
        .bucket(
            "pass",
            BucketRule::upstream("si").owner("111122223333", "passthrough"),
        )
        .bucket(
            "inj",
            BucketRule::upstream("si").owner("111122223333", "inject"),
        )
        .start(&dir("owner"));
    let c = alice(&gw);
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        ("pass", Some("999988887777"), Some("999988887777")),
        ("pass", Some("111122223333"), Some("111122223333")),
        ("pass", None, None),
        ("inj", None, Some("111122223333")),
    ];
    for (i, (bucket, sent, upstream_sees)) in cases.iter().enumerate() {
        let key = format!("owner-{i}");
        let mut req = c.get_object().bucket(*bucket).key(&key);
        if let Some(o) = sent {
            req = req.expected_bucket_owner(*o);
        }
        req.send()
            .await
            .unwrap_or_else(|e| panic!("{bucket} {sent:?}: {e:?}"));
        let reqs = si.requests();
        let got = reqs
            .iter()
            .find(|r| r.target.starts_with(&format!("/{bucket}/{key}")))
            .unwrap_or_else(|| panic!("{bucket}/{key} not upstream: {reqs:?}"));
        assert_eq!(
            got.header("x-amz-expected-bucket-owner"),
            *upstream_sees,
            "{bucket} with {sent:?}"
        );
    }
}

/// `multipart.abort.verify` and `max_attempts`: with verify, ListParts
/// after each abort, and abort again while parts remain, up to
/// max_attempts; without, one abort and no look after it.
#[tokio::test]
async fn abort_verify_retries_while_parts_remain() {
    // (verify, max_attempts, parts vanish after the first abort) →
    // (aborts sent, ListParts sent)
    let rows = [
        (true, 3, false, 3, 4),
        (true, 1, false, 1, 2),
        (false, 3, false, 1, 1),
        (true, 5, true, 1, 2),
    ];
    for (verify, max_attempts, vanish, aborts, lists) in rows {
        let deletes = Arc::new(AtomicUsize::new(0));
        let seen = deletes.clone();
        let si = StandIn::start(move |r| {
            if r.method == "DELETE" {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            if vanish && is_list_parts(r) && seen.load(Ordering::SeqCst) > 0 {
                return Action::xml(404, NO_SUCH_UPLOAD);
            }
            store(r)
        });
        let gw = config(&si)
            .abort("100ms", verify, max_attempts)
            .start(&dir(&format!("abort-{verify}-{max_attempts}-{vanish}")));
        alice(&gw)
            .abort_multipart_upload()
            .bucket("bkt")
            .key("k")
            .upload_id("U1")
            .send()
            .await
            .unwrap_or_else(|e| panic!("abort answered: {e:?}\n{}", gw.log()));
        let reqs = si.requests();
        let row = format!("verify={verify} max_attempts={max_attempts} vanish={vanish}");
        assert_eq!(of(&reqs, "DELETE").len(), aborts, "{row}: {reqs:?}");
        assert_eq!(deletes.load(Ordering::SeqCst), aborts, "{row}");
        assert_eq!(
            reqs.iter().filter(|r| is_list_parts(r)).count(),
            lists,
            "{row}: {reqs:?}"
        );
    }
}

/// `multipart.abort.drain_in_flight`: the abort waits (up to this long)
/// for this replica's part uploads of the upload to finish before it goes
/// upstream; with a short drain it goes while the part is still running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_drain_in_flight_waits_for_running_parts() {
    // (drain_in_flight, the abort reaches the upstream after the part ended)
    for (drain, after_part) in [("5s", true), ("100ms", false)] {
        let si = StandIn::start(|r| {
            if r.method == "PUT" && r.target.contains("partNumber=") {
                // A part the upstream takes 1.5 s to store.
                std::thread::sleep(Duration::from_millis(1500)); // the slow part
            }
            store(r)
        });
        let gw = config(&si)
            .abort(drain, false, 1)
            .start(&dir(&format!("drain-{drain}")));
        let c = alice(&gw);
        c.create_multipart_upload()
            .bucket("bkt")
            .key("k")
            .send()
            .await
            .expect("create");
        let part = {
            let c = c.clone();
            tokio::spawn(async move {
                c.upload_part()
                    .bucket("bkt")
                    .key("k")
                    .upload_id("U1")
                    .part_number(1)
                    .body(data(64 * 1024, 1).into())
                    .send()
                    .await
            })
        };
        if !wait_until(Duration::from_secs(10), || {
            !of(&si.requests(), "PUT").is_empty()
        }) {
            panic!("the part did not reach the upstream: {:?}", part.await);
        }
        c.abort_multipart_upload()
            .bucket("bkt")
            .key("k")
            .upload_id("U1")
            .send()
            .await
            .expect("abort");
        part.await.expect("join").expect("the part was stored");
        let reqs = si.requests();
        let put = of(&reqs, "PUT")[0].at;
        let delete = of(&reqs, "DELETE")[0].at;
        let part_done = put + Duration::from_millis(1500);
        assert_eq!(
            delete >= part_done,
            after_part,
            "drain {drain}: abort sent {:?} after the part arrived (the part took 1.5 s)",
            delete - put
        );
    }
}

/// `upstreams.<name>.versioning`: without it (the s3-compatible default) a
/// `versionId` is refused before anything goes upstream and upstream
/// `x-amz-version-id` headers are dropped; with it, both pass.
#[tokio::test]
async fn versioning_passes_or_refuses_version_ids() {
    let versioned = |r: &Recorded| {
        let mut a = store(r);
        if let Action::Reply { headers, .. } = &mut a {
            headers.push(("x-amz-version-id".into(), "v-upstream".into()));
        }
        a
    };
    for (setting, passes) in [(None, false), (Some(false), false), (Some(true), true)] {
        let si = StandIn::start(versioned);
        let mut up = upstream(&si);
        if let Some(v) = setting {
            up = up.set("versioning", v);
        }
        let gw = config(&si)
            .upstream("si", up)
            .start(&dir(&format!("versioning-{setting:?}")));
        let c = alice(&gw);
        let r = c
            .get_object()
            .bucket("bkt")
            .key("k")
            .version_id("v1")
            .send()
            .await;
        let gets = si.requests();
        if passes {
            r.unwrap_or_else(|e| panic!("{setting:?}: {e:?}"));
            assert!(
                gets.iter().any(|g| g.target.contains("versionId=v1")),
                "{setting:?}: {gets:?}"
            );
        } else {
            let e = r.expect_err("refused").into_service_error();
            assert_eq!(
                e.meta().code(),
                Some("InvalidArgument"),
                "{setting:?}: {e:?}"
            );
            assert!(gets.is_empty(), "nothing went upstream: {gets:?}");
        }
        let head = c
            .head_object()
            .bucket("bkt")
            .key("k")
            .send()
            .await
            .expect("head");
        assert_eq!(
            head.version_id(),
            passes.then_some("v-upstream"),
            "{setting:?}: the upstream's x-amz-version-id"
        );
    }
}

/// `upstreams.<name>.addressing` and `connect_to`: path style puts the
/// bucket in the path, virtual in the Host; `connect_to` dials the given
/// address but keeps the endpoint's host name in Host.
#[tokio::test]
async fn addressing_and_connect_to_shape_the_upstream_request() {
    for (addressing, host, target) in [
        ("path", "store.example.test", "/bkt/a/b.txt"),
        ("virtual", "bkt.store.example.test", "/a/b.txt"),
    ] {
        let si = StandIn::start(store);
        let up = Upstream::s3_compatible(
            format!("http://store.example.test:{}", si.port),
            Credentials::keys(UPSTREAM_KEY, UPSTREAM_SECRET),
        )
        .region("garage")
        .addressing(addressing)
        .set("connect_to", format!("127.0.0.1:{}", si.port));
        let gw = config(&si)
            .upstream("si", up)
            .start(&dir(&format!("addressing-{addressing}")));
        alice(&gw)
            .get_object()
            .bucket("bkt")
            .key("a/b.txt")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{addressing}: {e:?}\n{}", gw.log()));
        let reqs = si.requests();
        let get = reqs
            .iter()
            .find(|r| r.method == "GET")
            .expect("GET upstream");
        assert_eq!(get.target, target, "{addressing}");
        assert_eq!(
            get.header("host"),
            Some(format!("{host}:{}", si.port).as_str()),
            "{addressing}"
        );
    }
}

/// `region`: clients sign for it; a request signed for another region is
/// refused with AuthorizationHeaderMalformed and goes nowhere.
#[tokio::test]
async fn region_is_the_one_clients_sign_for() {
    let si = StandIn::start(store);
    let gw = config(&si).region("eu-central-1").start(&dir("region"));
    let right = client(
        &gw.endpoint(),
        "eu-central-1",
        ALICE_KEY,
        ALICE_SECRET,
        true,
    );
    right
        .head_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .expect("signed for eu-central-1");
    let wrong = client(&gw.endpoint(), "us-east-1", ALICE_KEY, ALICE_SECRET, true);
    let e = wrong
        .get_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .expect_err("signed for us-east-1")
        .into_service_error();
    assert_eq!(
        e.meta().code(),
        Some("AuthorizationHeaderMalformed"),
        "{e:?}"
    );
    assert_eq!(si.requests().len(), 1, "only the right one went upstream");
}

fn audit_records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

/// `multipart.ownership.store: memory`: the initiator is remembered by the
/// gateway itself (the abort's audit record names it), and nothing about
/// it is written to, or read from, any upstream.
#[tokio::test]
async fn ownership_store_memory_keeps_initiators_in_the_gateway() {
    let si = StandIn::start(store);
    let d = dir("memory");
    let audit = d.join("audit.jsonl");
    let gw = config(&si)
        .audit(Audit::new(&audit))
        .extra_yaml("multipart:\n  ownership: { store: memory }\n")
        .start(&d);
    let up = alice(&gw)
        .create_multipart_upload()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .expect("create");
    assert_eq!(up.upload_id(), Some("U1"));
    bob(&gw)
        .abort_multipart_upload()
        .bucket("bkt")
        .key("k")
        .upload_id("U1")
        .send()
        .await
        .expect("abort");
    let records = audit_records(&audit);
    let abort = records
        .iter()
        .find(|r| r["event"] == "AbortMultipartUpload")
        .unwrap_or_else(|| panic!("no abort record: {records:?}"));
    assert_eq!(abort["principal"], "bob", "{abort}");
    assert_eq!(abort["initiator"], "alice", "{abort}");
    // Every upstream request was the client's upload or the abort flow on it.
    let reqs = si.requests();
    assert!(
        reqs.iter().all(|r| r.target.starts_with("/bkt/k?")),
        "only the upload's own requests went upstream: {reqs:?}"
    );
    assert_eq!(of(&reqs, "POST").len(), 1, "{reqs:?}");
}

fn metric(port: u16, line_start: &str) -> f64 {
    let (status, text) = http_get(port, "/metrics");
    assert_eq!(status, 200);
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("metric `{line_start}` missing:\n{text}"))
}

/// `audit.on_failure`: with the log unwritable, `reject` refuses the abort
/// (nothing aborted upstream); `continue` aborts, answers, and logs and
/// counts the lost record.
#[tokio::test]
async fn audit_on_failure_reject_or_continue() {
    for on_failure in ["reject", "continue"] {
        let si = StandIn::start(store);
        let d = dir(&format!("onfailure-{on_failure}"));
        // A directory where the file should be: it cannot be opened.
        let audit = d.join("audit-is-a-dir");
        std::fs::create_dir_all(&audit).expect("dir");
        let gw = config(&si)
            .audit(Audit::new(&audit).on_failure(on_failure))
            .abort("100ms", false, 1)
            .start(&d);
        let r = alice(&gw)
            .abort_multipart_upload()
            .bucket("bkt")
            .key("k")
            .upload_id("U1")
            .send()
            .await;
        let deletes = of(&si.requests(), "DELETE").len();
        let dropped = "s3gate_audit_records_dropped_total{reason=\"write_failed\"}";
        if on_failure == "reject" {
            let e = r.expect_err("refused").into_service_error();
            assert_eq!(e.meta().code(), Some("ServiceUnavailable"), "{e:?}");
            assert_eq!(deletes, 0, "nothing was aborted upstream");
        } else {
            r.unwrap_or_else(|e| panic!("continue: abort answered: {e:?}\n{}", gw.log()));
            assert_eq!(deletes, 1, "aborted upstream");
            assert!(
                gw.log().contains("abort audit record not written"),
                "the lost record is logged:\n{}",
                gw.log()
            );
            assert_eq!(metric(gw.admin_port, dropped), 1.0, "and counted");
        }
    }
}

/// `audit.fsync`: `always` syncs each record before answering, `interval`
/// about once a second; counted with strace on the gateway's threads.
#[tokio::test]
async fn audit_fsync_always_or_interval() {
    if Command::new("strace").arg("-V").output().is_err() {
        panic!("strace is needed to count the gateway's fsyncs");
    }
    const ABORTS: usize = 12;
    let mut syncs = Vec::new();
    for fsync in ["always", "interval"] {
        let si = StandIn::start(|r| {
            if is_list_parts(r) {
                Action::xml(404, NO_SUCH_UPLOAD)
            } else {
                store(r)
            }
        });
        let d = dir(&format!("fsync-{fsync}"));
        let audit = d.join("audit.jsonl");
        let gw = config(&si)
            .audit(Audit::new(&audit).fsync(fsync))
            .start_direct(&d);
        let trace = d.join("strace.out");
        let mut strace = Command::new("strace")
            .args(["-f", "-qq", "-e", "trace=fsync,fdatasync", "-o"])
            .arg(&trace)
            .args(["-p", &gw.pid().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("strace");
        // strace writes nothing until it is attached; a first abort's sync
        // (always) shows it is.
        let c = alice(&gw);
        let started = Instant::now();
        for i in 0..ABORTS {
            c.abort_multipart_upload()
                .bucket("bkt")
                .key(format!("k{i}"))
                .upload_id("U1")
                .send()
                .await
                .expect("abort");
        }
        let elapsed = started.elapsed();
        assert_eq!(audit_records(&audit).len(), ABORTS, "{fsync}");
        let count = || {
            std::fs::read_to_string(&trace)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("fsync(") || l.contains("fdatasync("))
                .count()
        };
        // `always`: every record was synced before its abort was answered
        // (strace may write its lines a moment later).
        if fsync == "always" {
            wait_until(Duration::from_secs(3), || count() >= ABORTS);
        }
        let during = count();
        // `interval`: the records written are synced within about a second.
        let later = fsync == "interval" && wait_until(Duration::from_secs(3), || count() > during);
        let _ = Command::new("kill")
            .args(["-INT", &strace.id().to_string()])
            .status();
        let _ = strace.wait();
        syncs.push((fsync, during, elapsed, later));
    }
    eprintln!("fsyncs (setting, during the aborts, their time, synced later): {syncs:?}");
    let (always, interval) = (syncs[0], syncs[1]);
    assert!(
        always.1 >= ABORTS,
        "fsync: always syncs every record: {syncs:?}"
    );
    let seconds = interval.2.as_secs() as usize + 1;
    assert!(
        interval.1 <= 2 * seconds,
        "fsync: interval syncs once a second (log and head), not per record: {syncs:?}"
    );
    assert!(
        interval.3,
        "fsync: interval syncs the records soon after: {syncs:?}"
    );
}

/// `timeouts.connect_secs`: an upstream that never completes the TCP
/// handshake (its accept queue is full) is given up on after the setting
/// (the connection is tried twice for a GET), not after the default 10 s.
#[tokio::test]
async fn timeouts_connect_secs_bounds_the_handshake() {
    // A listener whose backlog is full: further SYNs are dropped.
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let port = sock.local_addr().expect("addr").port();
    let _listener = sock.listen(1).expect("listen");
    let mut fillers = Vec::new();
    for _ in 0..8 {
        let s = tokio::net::TcpSocket::new_v4().expect("socket");
        match tokio::time::timeout(
            Duration::from_millis(300),
            s.connect(format!("127.0.0.1:{port}").parse().expect("addr")),
        )
        .await
        {
            Ok(Ok(c)) => fillers.push(c),
            _ => break,
        }
    }
    let gw = GatewayConfig::empty()
        .alice_and_bob()
        .upstream(
            "slow",
            Upstream::s3_compatible(
                format!("http://127.0.0.1:{port}"),
                Credentials::keys(UPSTREAM_KEY, UPSTREAM_SECRET),
            )
            .region("garage"),
        )
        .bucket("*", BucketRule::upstream("slow"))
        .timeouts(1, 300, 60)
        .start(&dir("connect"));
    // Without the SDK's own retries: each of its attempts would try twice.
    let started = Instant::now();
    let e = alice_once(&gw)
        .get_object()
        .bucket("bkt")
        .key("k")
        .send()
        .await
        .expect_err("no upstream");
    let took = started.elapsed();
    let status = e.raw_response().map(|r| r.status().as_u16());
    assert!(matches!(status, Some(502) | Some(504)), "{status:?}: {e:?}");
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_millis(3500),
        "answered after {took:?} (connect_secs: 1, two tries)"
    );
}

/// `timeouts.read_secs`: an upstream that takes the request and never
/// answers is given up on after the setting: 504.
#[tokio::test]
async fn timeouts_read_secs_bounds_the_wait_for_an_answer() {
    let si = StandIn::start(|_| Action::Hang);
    let gw = config(&si).timeouts(10, 1, 60).start(&dir("read"));
    let started = Instant::now();
    // One attempt: the SDK retries a 504 after a jittered back-off.
    let e = alice_once(&gw)
        .put_object()
        .bucket("bkt")
        .key("k")
        .body(b"x".to_vec().into())
        .send()
        .await
        .expect_err("no answer");
    let took = started.elapsed();
    let status = e.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(504), "{e:?}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "answered after {took:?} (read_secs: 1)"
    );
}

/// `timeouts.idle_secs`: a pooled upstream connection is closed after
/// being idle that long, and kept while shorter.
#[tokio::test]
async fn timeouts_idle_secs_closes_pooled_connections() {
    for (idle_secs, closed) in [(1, true), (60, false)] {
        let si = StandIn::start(store);
        let gw = config(&si)
            .timeouts(10, 300, idle_secs)
            .start(&dir(&format!("idle-{idle_secs}")));
        alice(&gw)
            .head_object()
            .bucket("bkt")
            .key("k")
            .send()
            .await
            .expect("head");
        assert_eq!(si.conns().len(), 1);
        let gone = wait_until(Duration::from_secs(4), || {
            si.conns().iter().all(|c| c.closed.is_some())
        });
        assert_eq!(gone, closed, "idle_secs={idle_secs}: {:?}", si.conns());
        if let Some(c) = si.conns().first() {
            if let Some(at) = c.closed {
                assert!(at - c.opened >= Duration::from_millis(900), "{c:?}");
            }
        }
    }
}

/// `log.format`: `json` makes every line of the log a JSON object (the
/// access line included); `human` is text.
#[tokio::test]
async fn log_format_json_or_human() {
    for format in ["json", "human"] {
        let si = StandIn::start(store);
        let gw = config(&si)
            .log_format(format)
            .start(&dir(&format!("log-{format}")));
        alice(&gw)
            .head_object()
            .bucket("bkt")
            .key("k")
            .send()
            .await
            .expect("head");
        // A refused request too (a warning line).
        let _ = client(&gw.endpoint(), "us-east-1", ALICE_KEY, "wrong", true)
            .head_object()
            .bucket("bkt")
            .key("k")
            .send()
            .await;
        let mut log = String::new();
        wait_until(Duration::from_secs(5), || {
            log = gw.log();
            log.lines().filter(|l| l.contains("s3gate::access")).count() >= 2
        });
        let lines: Vec<&str> = log.lines().collect();
        assert!(lines.len() >= 4, "{format}:\n{log}");
        let json = lines
            .iter()
            .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v.is_object()))
            .count();
        if format == "json" {
            assert_eq!(json, lines.len(), "every line is JSON:\n{log}");
            assert!(
                lines.iter().any(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).expect("json");
                    v["target"] == "s3gate::access" && v["operation"] == "HeadObject"
                }),
                "{log}"
            );
        } else {
            assert_eq!(json, 0, "human lines:\n{log}");
        }
    }
}

/// `log.level` sets the filter; `S3GATE_LOG` overrides it.
#[tokio::test]
async fn log_level_and_its_override() {
    // The listeners' start-up lines (info) stay on: tests read the ports there.
    let warn = "\"warn,s3gate::server=info\"";
    // (log.level, S3GATE_LOG, info lines (access, pingora's) expected)
    for (level, env, info) in [
        (Some(warn), None, false),
        (Some("info"), None, true),
        (None, None, true),
        (Some(warn), Some("info"), true),
    ] {
        let si = StandIn::start(store);
        let mut c = config(&si).clean_env();
        if let Some(l) = level {
            c = c.extra_yaml(&format!("log:\n  level: {l}\n"));
        }
        let env: Vec<(&str, String)> = env
            .map(|e| ("S3GATE_LOG", e.to_string()))
            .into_iter()
            .collect();
        let gw = c.start_with_env(&dir(&format!("level-{level:?}-{}", env.len())), &env);
        alice(&gw)
            .head_object()
            .bucket("bkt")
            .key("k")
            .send()
            .await
            .expect("head");
        let row = format!("level {level:?}, S3GATE_LOG {env:?}");
        let logged = wait_until(Duration::from_secs(2), || {
            gw.log().contains("s3gate::access")
        });
        assert_eq!(logged, info, "{row}:\n{}", gw.log());
        let log = gw.log();
        assert_eq!(
            log.contains("INFO pingora_core"),
            info,
            "{row}: pingora's info lines:\n{log}"
        );
        assert!(log.contains(" WARN "), "{row}: warnings are logged:\n{log}");
    }
}

/// The threads of the gateway's process named `name`.
fn threads_named(pid: u32, name: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("/proc")
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

/// `threads`: the number of worker threads serving requests.
#[tokio::test]
async fn threads_sets_the_worker_count() {
    let si = StandIn::start(store);
    for threads in [1usize, 3] {
        let gw = config(&si)
            .extra_yaml(&format!("threads: {threads}\n"))
            .start_direct(&dir(&format!("threads-{threads}")));
        alice(&gw)
            .head_object()
            .bucket("bkt")
            .key("k")
            .send()
            .await
            .expect("served");
        // pingora names a service's worker threads after the service: the
        // S3 service's share the process's name (with its main thread),
        // the admin service has a pool of the same size.
        let s3 = threads_named(gw.pid(), "s3gate");
        let admin = threads_named(gw.pid(), "s3gate admin");
        assert_eq!((s3, admin), (threads + 1, threads), "threads: {threads}");
    }
}

// ---------------------------------------------------------------------
// Process life: readiness, health probe, signals, shutdown grace.

/// A gateway started by hand, not waited ready (it may never be).
struct Raw {
    child: Child,
    log: PathBuf,
}

impl Raw {
    fn start(config: &GatewayConfig, d: &Path) -> Raw {
        let path = config.write(d);
        let log = d.join("gateway.log");
        let out = std::fs::File::create(&log).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_s3gate"))
            .args(["serve", "--config"])
            .arg(&path)
            .env_remove("S3GATE_LOG")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("start");
        Raw { child, log }
    }
    fn admin_port(&self) -> u16 {
        let mut port = None;
        wait_until(Duration::from_secs(20), || {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            port = listeners_in_log(&text)
                .into_iter()
                .find(|(k, _)| k == "admin")
                .map(|(_, a)| a.port());
            port.is_some()
        });
        port.unwrap_or_else(|| {
            panic!(
                "no admin listener:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        })
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `s3gate health` against the admin port, probing `path` (None: its
/// default, `/healthz`).
fn health(admin: u16, path: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3gate"));
    cmd.args(["health", "--address", &format!("127.0.0.1:{admin}")]);
    if let Some(p) = path {
        cmd.args(["--path", p]);
    }
    let out = cmd.output().expect("s3gate health");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `/readyz` is 503 with the reason while an upstream's host name does not
/// resolve and 200 when the gateway is ready; `s3gate health` exits 0 on a
/// ready gateway and 1 on a not-ready or stopped one.
#[tokio::test]
async fn readyz_and_the_health_probe() {
    let unresolvable = GatewayConfig::empty()
        .alice_and_bob()
        .upstream(
            "nowhere",
            Upstream::s3_compatible(
                "http://s3gate-no-such-host.invalid:9000",
                Credentials::keys(UPSTREAM_KEY, UPSTREAM_SECRET),
            )
            .region("garage"),
        )
        .bucket("*", BucketRule::upstream("nowhere"));
    let raw = Raw::start(&unresolvable, &dir("unready"));
    let admin = raw.admin_port();
    assert_eq!(http_get(admin, "/healthz").0, 200, "the process is up");
    let (status, body) = http_get(admin, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("nowhere") && body.contains("cannot be resolved"),
        "{body}"
    );
    let (code, said) = health(admin, Some("/readyz"));
    assert_eq!(
        code, 1,
        "health --path /readyz on a not-ready gateway: {said}"
    );
    assert!(said.contains("503"), "{said}");
    let (code, said) = health(admin, None);
    assert_eq!(
        code, 0,
        "health (/healthz) on a live, not-ready gateway: {said}"
    );
    drop(raw);

    // Policies configured but none loaded: 503 until a policy arrives (the
    // folder is watched), then 200.
    let si = StandIn::start(store);
    let d = dir("no-policies");
    let raw = Raw::start(
        &config(&si).policy("Version: \"2012-10-17\"\nStatement: []\n"),
        &d,
    );
    let admin = raw.admin_port();
    let mut last = (0, String::new());
    wait_until(Duration::from_secs(10), || {
        last = http_get(admin, "/readyz");
        last.0 != 0
    });
    assert_eq!(last.0, 503, "{}", last.1);
    assert!(last.1.contains("no policy statements loaded"), "{}", last.1);
    std::fs::write(
        d.join("policies/p.yaml"),
        "Version: \"2012-10-17\"\nStatement:\n  - Sid: All\n    Effect: Allow\n    Principal: \"*\"\n    Action: \"s3:*\"\n    Resource: \"*\"\n",
    )
    .expect("policy");
    assert!(
        wait_until(Duration::from_secs(10), || http_get(admin, "/readyz").0
            == 200),
        "ready once a policy is loaded: {:?}",
        http_get(admin, "/readyz")
    );
    drop(raw);

    let gw = config(&si).start(&dir("ready"));
    assert_eq!(http_get(gw.admin_port, "/readyz").0, 200);
    assert_eq!(health(gw.admin_port, Some("/readyz")).0, 0, "ready");
    assert_eq!(health(gw.admin_port, None).0, 0, "live");
    let admin = gw.admin_port;
    gw.stop();
    assert!(
        wait_until(Duration::from_secs(10), || http_get(admin, "/healthz").0
            == 0),
        "the gateway stopped"
    );
    for path in [None, Some("/readyz")] {
        let (code, said) = health(admin, path);
        assert_eq!(code, 1, "health {path:?} on a stopped gateway: {said}");
    }
}

fn signal(gw: &Gateway, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &gw.pid().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
}

/// A PUT whose body trickles in (`content-length` 1 MiB, 1 KiB every
/// 50 ms) on its own thread, until the gateway closes the connection or
/// `limit` passes. Returns the thread (true: the connection was closed).
fn trickling_put(port: u16, key: &str, limit: Duration) -> std::thread::JoinHandle<bool> {
    let s = Signer {
        key: ALICE_KEY,
        secret: ALICE_SECRET,
        region: "us-east-1",
        time: SystemTime::now(),
    };
    let target = format!("/bkt/{key}");
    let headers = vec![
        ("host".to_string(), format!("127.0.0.1:{port}")),
        (
            "x-amz-content-sha256".to_string(),
            "UNSIGNED-PAYLOAD".to_string(),
        ),
        ("content-length".to_string(), (1024 * 1024).to_string()),
    ];
    let (headers, _) = s.sign_headers("PUT", &target, headers, "UNSIGNED-PAYLOAD");
    let mut head = format!("PUT {target} HTTP/1.1\r\n");
    for (n, v) in &headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    std::thread::spawn(move || {
        use std::io::Write;
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        c.write_all(head.as_bytes()).expect("head");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if c.write_all(&[b'x'; 1024]).is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50)); // the trickle's pace
        }
        false
    })
}

/// Wait for the direct child to exit: its status and how long it took.
fn exit_within(gw: &Gateway, limit: Duration) -> Option<(std::process::ExitStatus, Duration)> {
    let started = Instant::now();
    let mut status = None;
    wait_until(limit, || {
        status = gw.try_wait();
        status.is_some()
    });
    status.map(|s| (s, started.elapsed()))
}

/// `shutdown_grace_secs`: after SIGTERM a request still in flight may run
/// this long, then it is cut and the process exits.
#[tokio::test]
async fn shutdown_grace_secs_cuts_requests_still_running() {
    let si = StandIn::start(store);
    let gw = config(&si)
        .extra_yaml("shutdown_grace_secs: 1\n")
        .start_direct(&dir("grace"));
    let upload = trickling_put(gw.port, "slow", Duration::from_secs(30));
    assert!(
        wait_until(Duration::from_secs(10), || !si.conns().is_empty()),
        "the upload reached the upstream"
    );
    signal(&gw, "-TERM");
    let (status, took) = exit_within(&gw, Duration::from_secs(15))
        .unwrap_or_else(|| panic!("still running 15 s after SIGTERM:\n{}", gw.log()));
    eprintln!("SIGTERM with 1 s of grace: exited after {took:?} ({status})");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(10),
        "exited {took:?} after SIGTERM ({status}), grace 1 s"
    );
    assert!(
        upload.join().expect("join"),
        "the upload's connection was cut"
    );
    assert!(
        of(&si.requests(), "PUT").is_empty(),
        "the cut upload never completed upstream"
    );
}

/// SIGINT stops the gateway at once (README, Operating it), without
/// waiting for the request in flight as SIGTERM would.
#[tokio::test]
async fn sigint_stops_at_once() {
    let si = StandIn::start(store);
    let gw = config(&si).start_direct(&dir("sigint"));
    let upload = trickling_put(gw.port, "slow", Duration::from_secs(30));
    assert!(
        wait_until(Duration::from_secs(10), || !si.conns().is_empty()),
        "the upload reached the upstream"
    );
    signal(&gw, "-INT");
    let (status, took) = exit_within(&gw, Duration::from_secs(10)).unwrap_or_else(|| {
        let log = gw.log();
        panic!(
            "still running 10 s after SIGINT:\n{}",
            &log[..log.len().min(4000)]
        )
    });
    eprintln!("SIGINT: exited after {took:?} ({status})");
    assert!(
        took < Duration::from_secs(4),
        "exited {took:?} after SIGINT ({status}), not after the 30 s grace"
    );
    assert!(
        upload.join().expect("join"),
        "the upload's connection was cut"
    );
    assert_eq!(http_get(gw.port, "/").0, 0, "nothing listens any more");
    let log = gw.log();
    let head = &log[..log.len().min(4000)];
    assert!(log.contains("SIGINT: stopping at once"), "{head}");
    assert!(
        log.matches("Accept() failed").count() < 10,
        "no accept loop spinning on the way out:\n{head}"
    );
}
