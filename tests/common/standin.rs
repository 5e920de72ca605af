//! A stand-in upstream: a small HTTP/1.1 server on loopback that records
//! exactly what the gateway sent (method, target, headers, decoded body) and
//! answers as the test says, for the cases where the point is what the
//! upstream received or how the gateway copes with an upstream that hangs,
//! talks garbage or keeps state a real store would not.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// The body after HTTP framing (Content-Length or chunked) is removed;
    /// aws-chunked framing, if any, is left as sent.
    pub body: Vec<u8>,
    /// When the whole request had arrived.
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the stand-in does with a request.
pub enum Action {
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Read the request and never answer (until the gateway hangs up).
    Hang,
    /// Write these bytes as the answer and close the connection.
    Raw(Vec<u8>),
}

impl Action {
    pub fn status(status: u16) -> Self {
        Action::Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    pub fn xml(status: u16, body: &str) -> Self {
        Action::Reply {
            status,
            headers: vec![("content-type".into(), "application/xml".into())],
            body: body.as_bytes().to_vec(),
        }
    }
}

/// When a connection from the gateway was opened and (if it was) closed.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    pub opened: Instant,
    pub closed: Option<Instant>,
}

type Handler = dyn Fn(&Recorded) -> Action + Send + Sync;

pub struct StandIn {
    pub port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
    conns: Arc<Mutex<Vec<Conn>>>,
}

impl StandIn {
    /// Serve on 127.0.0.1, port 0, answering each request with `handler`.
    pub fn start(handler: impl Fn(&Recorded) -> Action + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind stand-in");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (r, c) = (requests.clone(), conns.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (r, c, h) = (r.clone(), c.clone(), handler.clone());
                std::thread::spawn(move || serve(stream, &r, &c, &*h));
            }
        });
        StandIn {
            port,
            requests,
            conns,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn conns(&self) -> Vec<Conn> {
        self.conns.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

fn serve(
    stream: TcpStream,
    requests: &Mutex<Vec<Recorded>>,
    conns: &Mutex<Vec<Conn>>,
    h: &Handler,
) {
    let index = {
        let mut c = conns.lock().expect("conns");
        c.push(Conn {
            opened: Instant::now(),
            closed: None,
        });
        c.len() - 1
    };
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    while let Some(req) = read_request(&mut reader) {
        requests.lock().expect("requests").push(req.clone());
        match h(&req) {
            Action::Reply {
                status,
                headers,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} Stand-in\r\n");
                for (n, v) in &headers {
                    head.push_str(&format!("{n}: {v}\r\n"));
                }
                if req.method != "HEAD" || !headers.iter().any(|(n, _)| n == "content-length") {
                    head.push_str(&format!("content-length: {}\r\n", body.len()));
                }
                head.push_str("\r\n");
                let mut out = head.into_bytes();
                if req.method != "HEAD" {
                    out.extend_from_slice(&body);
                }
                if writer.write_all(&out).is_err() {
                    break;
                }
            }
            Action::Hang => {
                // Until the gateway gives up on the request.
                let mut sink = [0u8; 1024];
                while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                break;
            }
            Action::Raw(bytes) => {
                let _ = writer.write_all(&bytes);
                let _ = writer.shutdown(Shutdown::Both);
                break;
            }
        }
    }
    if let Some(c) = conns.lock().expect("conns").get_mut(index) {
        c.closed = Some(Instant::now());
    }
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Recorded> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            if n == 0 {
                // Trailer fields, then the empty line.
                loop {
                    let mut t = String::new();
                    if r.read_line(&mut t).ok()? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = vec![0u8; n];
        r.read_exact(&mut body).ok()?;
    }
    Some(Recorded {
        method,
        target,
        headers,
        body,
        at: Instant::now(),
    })
}

/// Wait until `f` holds (polling every 20 ms) or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20)); // poll interval
    }
}
