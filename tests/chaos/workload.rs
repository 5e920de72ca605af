//! The clients and their history: every request a client sent, when, and
//! the answer it got (or that it got none). Shared by tests/chaos (the
//! multipart mix, every entry kept for the checks) and tests/soak.rs (the
//! steady mix of [`Mix::Soak`], counted only: an hour of entries would be
//! the test's own leak).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials as SdkCredentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use crate::common::{ALICE_KEY, ALICE_SECRET, BOB_KEY, BOB_SECRET};

pub const BUCKET: &str = "chaos";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Create,
    Part,
    Complete,
    Abort,
    Get,
    /// The other principal tries to upload a part to someone's upload.
    ForeignPart,
    // The soak's single-request operations.
    Put,
    Head,
    List,
    RangedGet,
    Delete,
}

/// What the clients do, each turn one of (weights out of 20):
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// tests/chaos: multipart complete (create, a part of up to 96 KiB,
    /// complete) 8, multipart abort (create, 1 to 3 parts of up to 32 KiB,
    /// 1 in 4 a part attempt by the other principal, abort) 6, GET of an
    /// object the client completed 6.
    Chaos,
    /// tests/soak.rs: PUT (1 B to 64 KiB) 4, GET (whole, body checked) 3,
    /// ranged GET (body checked) 2, HEAD 2, LIST (the client's prefix,
    /// 50 keys) 2, multipart complete 3, multipart abort 3, DELETE 1; and a
    /// DELETE of the oldest whenever a client holds more than 32 objects
    /// (the bucket stays small).
    #[allow(dead_code)] // constructed by tests/soak.rs only
    Soak,
}

/// The soak's cap on the objects a client keeps.
const SOAK_KEEP: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Res {
    /// A success answer (2xx) was received in full.
    Ok,
    /// An error answer (status, S3 code); status 0: no answer at all.
    Fail(u16, Option<String>),
    /// A success whose body was not the bytes stored (GetObject).
    Corrupt(String),
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub client: usize,
    pub principal: &'static str,
    pub op: Op,
    pub key: String,
    pub upload_id: Option<String>,
    pub request_id: Option<String>,
    pub phase: usize,
    /// Milliseconds since the run started.
    pub start_ms: u64,
    pub end_ms: u64,
    pub res: Res,
    /// Complete: the object's size and ETag as answered.
    pub size: u64,
    pub etag: Option<String>,
}

pub struct Shared {
    pub t0: Instant,
    pub stop: AtomicBool,
    pub phase: AtomicUsize,
    pub history: Mutex<Vec<Entry>>,
    /// Keep every entry in `history` (else only the unexpected ones, and
    /// the counts below).
    keep: bool,
    /// Requests answered (or not) so far.
    pub requests: AtomicU64,
    /// Requests whose result was not the expected one ([`Entry::expected`]).
    pub unexpected: AtomicU64,
    /// (operation, result) → count.
    pub tally: Mutex<BTreeMap<(String, String), u64>>,
}

impl Shared {
    /// Every entry kept (tests/chaos).
    pub fn new() -> Arc<Self> {
        Self::with_history(true)
    }
    /// Counts only (tests/soak.rs).
    #[allow(dead_code)] // used by tests/soak.rs only
    pub fn counting() -> Arc<Self> {
        Self::with_history(false)
    }
    fn with_history(keep: bool) -> Arc<Self> {
        Arc::new(Shared {
            t0: Instant::now(),
            stop: AtomicBool::new(false),
            phase: AtomicUsize::new(0),
            history: Mutex::new(Vec::new()),
            keep,
            requests: AtomicU64::new(0),
            unexpected: AtomicU64::new(0),
            tally: Mutex::new(BTreeMap::new()),
        })
    }
    pub fn ms(&self) -> u64 {
        self.t0.elapsed().as_millis() as u64
    }
    pub fn entries(&self) -> Vec<Entry> {
        self.history.lock().expect("history").clone()
    }
}

impl Entry {
    /// Without faults, every request succeeds but the other principal's
    /// part upload, which the policy denies.
    pub fn expected(&self) -> bool {
        match (&self.op, &self.res) {
            (Op::ForeignPart, Res::Fail(403, _)) => true,
            (Op::ForeignPart, _) => false,
            (_, res) => *res == Res::Ok,
        }
    }
    pub fn result(&self) -> String {
        match &self.res {
            Res::Ok => "ok".to_string(),
            Res::Fail(s, c) => format!("{s} {}", c.as_deref().unwrap_or("-")),
            Res::Corrupt(_) => "CORRUPT".to_string(),
        }
    }
}

/// An SDK client without retries (each attempt is one history entry) and
/// with generous timeouts (compilers and tests may be paused for a while).
pub fn sdk(endpoint: &str, key: &str, secret: &str, region: &str) -> aws_sdk_s3::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_with_resolver(crate::common::Loopback);
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_string()))
        .credentials_provider(SdkCredentials::new(key, secret, None, None, "chaos"))
        .force_path_style(true)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .http_client(http)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// The bytes of an object or part, from its seed.
pub fn body(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

fn fail<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> (Res, Option<String>) {
    let status = e.raw_response().map_or(0, |r| r.status().as_u16());
    let rid = e
        .raw_response()
        .and_then(|r| r.headers().get("x-amz-request-id"))
        .map(str::to_string);
    (Res::Fail(status, e.code().map(str::to_string)), rid)
}

struct Client {
    n: usize,
    principal: &'static str,
    me: aws_sdk_s3::Client,
    other: aws_sdk_s3::Client,
    rng: StdRng,
    shared: Arc<Shared>,
    seq: u64,
    /// Completed objects: (key, body seed, size).
    done: Vec<(String, u64, usize)>,
}

impl Client {
    fn log(&self, op: Op, key: &str, id: Option<&str>, start: u64, r: (Res, Option<String>)) {
        self.push(Entry {
            client: self.n,
            principal: self.principal,
            op,
            key: key.to_string(),
            upload_id: id.map(str::to_string),
            request_id: r.1,
            phase: self.shared.phase.load(Ordering::SeqCst),
            start_ms: start,
            end_ms: self.shared.ms(),
            res: r.0,
            size: 0,
            etag: None,
        });
    }
    fn push(&self, e: Entry) {
        let s = &self.shared;
        s.requests.fetch_add(1, Ordering::Relaxed);
        if !e.expected() {
            s.unexpected.fetch_add(1, Ordering::Relaxed);
        }
        *s.tally
            .lock()
            .expect("tally")
            .entry((format!("{:?}", e.op), e.result()))
            .or_default() += 1;
        // Counting only, the unexpected entries are still kept: a soak
        // tells those explained by a pause of the machine from the others.
        if s.keep || !e.expected() {
            s.history.lock().expect("history").push(e);
        }
    }

    async fn create(&mut self, key: &str) -> Option<String> {
        let t = self.shared.ms();
        let r = self
            .me
            .create_multipart_upload()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await;
        match r {
            Ok(o) => {
                let id = o.upload_id().map(str::to_string);
                let rid = o.request_id().map(str::to_string);
                self.log(Op::Create, key, id.as_deref(), t, (Res::Ok, rid));
                id
            }
            Err(e) => {
                let r = fail(&e);
                let down = matches!(r.0, Res::Fail(0, _) | Res::Fail(500..=599, _));
                self.log(Op::Create, key, None, t, r);
                if down {
                    // Client back-off while nothing answers (a restart).
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                None
            }
        }
    }

    async fn part(&mut self, key: &str, id: &str, n: i32, data: Vec<u8>) -> Option<String> {
        let t = self.shared.ms();
        let r = self
            .me
            .upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(data))
            .send()
            .await;
        match r {
            Ok(o) => {
                let rid = o.request_id().map(str::to_string);
                self.log(Op::Part, key, Some(id), t, (Res::Ok, rid));
                o.e_tag().map(str::to_string)
            }
            Err(e) => {
                self.log(Op::Part, key, Some(id), t, fail(&e));
                None
            }
        }
    }

    /// Create, one part, complete; then read it back.
    async fn complete_flow(&mut self) {
        let key = format!("c{}/{}", self.n, self.seq);
        let Some(id) = self.create(&key).await else {
            return;
        };
        let seed = self.rng.gen::<u64>();
        let len = self.rng.gen_range(1..=96 * 1024);
        let Some(etag) = self.part(&key, &id, 1, body(seed, len)).await else {
            return;
        };
        let t = self.shared.ms();
        let done = CompletedMultipartUpload::builder()
            .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
            .build();
        let r = self
            .me
            .complete_multipart_upload()
            .bucket(BUCKET)
            .key(&key)
            .upload_id(&id)
            .multipart_upload(done)
            .send()
            .await;
        let (res, rid, etag) = match r {
            Ok(o) => (
                Res::Ok,
                o.request_id().map(str::to_string),
                o.e_tag().map(str::to_string),
            ),
            Err(e) => {
                let (res, rid) = fail(&e);
                (res, rid, None)
            }
        };
        let ok = res == Res::Ok;
        self.push(Entry {
            client: self.n,
            principal: self.principal,
            op: Op::Complete,
            key: key.clone(),
            upload_id: Some(id),
            request_id: rid,
            phase: self.shared.phase.load(Ordering::SeqCst),
            start_ms: t,
            end_ms: self.shared.ms(),
            res,
            size: len as u64,
            etag,
        });
        if ok {
            self.done.push((key, seed, len));
        }
    }

    /// Create, some parts, maybe a foreign part attempt, abort.
    async fn abort_flow(&mut self) {
        let key = format!("a{}/{}", self.n, self.seq);
        let Some(id) = self.create(&key).await else {
            return;
        };
        for n in 1..=self.rng.gen_range(1..=3) {
            let len = self.rng.gen_range(1..=32 * 1024);
            let seed = self.rng.gen::<u64>();
            self.part(&key, &id, n, body(seed, len)).await;
        }
        if self.rng.gen_range(0..4) == 0 {
            let t = self.shared.ms();
            let r = self
                .other
                .upload_part()
                .bucket(BUCKET)
                .key(&key)
                .upload_id(&id)
                .part_number(9)
                .body(ByteStream::from(body(1, 100)))
                .send()
                .await;
            let r = match r {
                Ok(o) => (Res::Ok, o.request_id().map(str::to_string)),
                Err(e) => fail(&e),
            };
            self.log(Op::ForeignPart, &key, Some(&id), t, r);
        }
        let t = self.shared.ms();
        let r = self
            .me
            .abort_multipart_upload()
            .bucket(BUCKET)
            .key(&key)
            .upload_id(&id)
            .send()
            .await;
        let r = match r {
            Ok(o) => (Res::Ok, o.request_id().map(str::to_string)),
            Err(e) => fail(&e),
        };
        self.log(Op::Abort, &key, Some(&id), t, r);
    }

    /// Read back an object this client completed.
    async fn read(&mut self) {
        let i = self.rng.gen_range(0..self.done.len());
        let (key, seed, len) = self.done[i].clone();
        let t = self.shared.ms();
        let r = self.me.get_object().bucket(BUCKET).key(&key).send().await;
        let r = match r {
            Ok(o) => {
                let rid = o.request_id().map(str::to_string);
                match o.body.collect().await {
                    Ok(b) if b.clone().into_bytes().as_ref() == body(seed, len).as_slice() => {
                        (Res::Ok, rid)
                    }
                    Ok(b) => (
                        Res::Corrupt(format!("{} bytes, {len} stored", b.into_bytes().len())),
                        rid,
                    ),
                    // A body cut short is an error, not a success.
                    Err(e) => (Res::Fail(0, Some(format!("body: {e}"))), rid),
                }
            }
            Err(e) => fail(&e),
        };
        self.log(Op::Get, &key, None, t, r);
    }

    /// A small PUT.
    async fn put(&mut self) {
        let key = format!("p{}/{}", self.n, self.seq);
        let seed = self.rng.gen::<u64>();
        let len = self.rng.gen_range(1..=64 * 1024);
        let t = self.shared.ms();
        let r = self
            .me
            .put_object()
            .bucket(BUCKET)
            .key(&key)
            .body(ByteStream::from(body(seed, len)))
            .send()
            .await;
        let r = match r {
            Ok(o) => (Res::Ok, o.request_id().map(str::to_string)),
            Err(e) => fail(&e),
        };
        let ok = r.0 == Res::Ok;
        self.log(Op::Put, &key, None, t, r);
        if ok {
            self.done.push((key, seed, len));
        }
    }

    /// A ranged GET of an object this client holds, checked against the
    /// stored bytes.
    async fn ranged_get(&mut self) {
        let i = self.rng.gen_range(0..self.done.len());
        let (key, seed, len) = self.done[i].clone();
        let from = self.rng.gen_range(0..len);
        let to = self.rng.gen_range(from..len);
        let t = self.shared.ms();
        let r = self
            .me
            .get_object()
            .bucket(BUCKET)
            .key(&key)
            .range(format!("bytes={from}-{to}"))
            .send()
            .await;
        let r = match r {
            Ok(o) => {
                let rid = o.request_id().map(str::to_string);
                match o.body.collect().await {
                    Ok(b) if b.clone().into_bytes().as_ref() == &body(seed, len)[from..=to] => {
                        (Res::Ok, rid)
                    }
                    Ok(b) => (
                        Res::Corrupt(format!(
                            "{} bytes for bytes={from}-{to}",
                            b.into_bytes().len()
                        )),
                        rid,
                    ),
                    Err(e) => (Res::Fail(0, Some(format!("body: {e}"))), rid),
                }
            }
            Err(e) => fail(&e),
        };
        self.log(Op::RangedGet, &key, None, t, r);
    }

    /// A HEAD of an object this client holds: its length must be right.
    async fn head(&mut self) {
        let i = self.rng.gen_range(0..self.done.len());
        let (key, _, len) = self.done[i].clone();
        let t = self.shared.ms();
        let r = self.me.head_object().bucket(BUCKET).key(&key).send().await;
        let r = match r {
            Ok(o) if o.content_length() == Some(len as i64) => {
                (Res::Ok, o.request_id().map(str::to_string))
            }
            Ok(o) => (
                Res::Corrupt(format!("length {:?}, {len} stored", o.content_length())),
                o.request_id().map(str::to_string),
            ),
            Err(e) => fail(&e),
        };
        self.log(Op::Head, &key, None, t, r);
    }

    /// A LIST of the client's own prefixes.
    async fn list(&mut self) {
        let prefix = format!("{}{}/", ["p", "c"][self.rng.gen_range(0..2)], self.n);
        let t = self.shared.ms();
        let r = self
            .me
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(&prefix)
            .max_keys(50)
            .send()
            .await;
        let r = match r {
            Ok(o) => (Res::Ok, o.request_id().map(str::to_string)),
            Err(e) => fail(&e),
        };
        self.log(Op::List, &prefix, None, t, r);
    }

    /// DELETE the oldest object this client holds.
    async fn delete_oldest(&mut self) {
        let (key, _, _) = self.done.remove(0);
        let t = self.shared.ms();
        let r = self
            .me
            .delete_object()
            .bucket(BUCKET)
            .key(&key)
            .send()
            .await;
        let r = match r {
            Ok(o) => (Res::Ok, o.request_id().map(str::to_string)),
            Err(e) => fail(&e),
        };
        self.log(Op::Delete, &key, None, t, r);
    }

    /// One turn of [`Mix::Chaos`].
    async fn chaos_turn(&mut self) {
        match self.rng.gen_range(0..10) {
            0..=3 => self.complete_flow().await,
            4..=6 => self.abort_flow().await,
            _ if self.done.is_empty() => self.complete_flow().await,
            _ => self.read().await,
        }
    }

    /// One turn of [`Mix::Soak`].
    async fn soak_turn(&mut self) {
        let pick = self.rng.gen_range(0..20);
        match pick {
            0..=3 => self.put().await,
            13..=15 => self.complete_flow().await,
            16..=18 => self.abort_flow().await,
            _ if self.done.is_empty() => self.put().await,
            4..=6 => self.read().await,
            7..=8 => self.ranged_get().await,
            9..=10 => self.head().await,
            11..=12 => self.list().await,
            _ => self.delete_oldest().await,
        }
        while self.done.len() > SOAK_KEEP {
            self.delete_oldest().await;
        }
    }
}

/// Start `n` clients (even: alice, odd: bob) against `endpoint`, each
/// doing `mix`; they run until `shared.stop`.
pub fn start(
    n: usize,
    endpoint: &str,
    seed: u64,
    shared: &Arc<Shared>,
    mix: Mix,
) -> Vec<tokio::task::JoinHandle<()>> {
    let alice = sdk(endpoint, ALICE_KEY, ALICE_SECRET, "us-east-1");
    let bob = sdk(endpoint, BOB_KEY, BOB_SECRET, "us-east-1");
    (0..n)
        .map(|i| {
            let (principal, me, other) = if i % 2 == 0 {
                ("alice", alice.clone(), bob.clone())
            } else {
                ("bob", bob.clone(), alice.clone())
            };
            let mut c = Client {
                n: i,
                principal,
                me,
                other,
                rng: StdRng::seed_from_u64(seed.wrapping_add(i as u64 * 7919)),
                shared: shared.clone(),
                seq: 0,
                done: Vec::new(),
            };
            tokio::spawn(async move {
                while !c.shared.stop.load(Ordering::SeqCst) {
                    c.seq += 1;
                    match mix {
                        Mix::Chaos => c.chaos_turn().await,
                        Mix::Soak => c.soak_turn().await,
                    }
                }
            })
        })
        .collect()
}
