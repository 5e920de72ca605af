//! A recording stand-in upstream that does not verify anything: it keeps,
//! per request, what arrived (head, body bytes) and whether the body arrived
//! whole before the connection ended, and answers like S3 once it has: 200
//! with an ETag (or an upload id for CreateMultipartUpload). Whatever the
//! gateway lets through completes here, so this is where a body that failed
//! verification would show.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Rec {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// Content-Length, when the request had one.
    pub length: Option<usize>,
    /// Body bytes received after HTTP framing (aws-chunked left as sent).
    pub body: Vec<u8>,
    /// The whole body arrived (per Content-Length, or the chunked end).
    pub complete: bool,
    /// Nothing more will arrive for this request: complete, or the
    /// connection closed or was reset first.
    pub ended: bool,
}

impl Rec {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The stored data: the body with aws-chunked framing removed.
    pub fn decoded(&self) -> Vec<u8> {
        if self.header("content-encoding") != Some("aws-chunked") {
            return self.body.clone();
        }
        let (mut out, mut rest) = (Vec::new(), &self.body[..]);
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&rest[..eol]).to_string();
            let n = usize::from_str_radix(line.split(';').next().unwrap_or(""), 16).unwrap_or(0);
            rest = &rest[eol + 2..];
            if n == 0 || rest.len() < n {
                break;
            }
            out.extend_from_slice(&rest[..n]);
            rest = rest.get(n + 2..).unwrap_or(&[]);
        }
        out
    }
}

#[derive(Default)]
struct State {
    recs: Vec<Rec>,
    /// Connections in the middle of a request (head or body arriving).
    busy: usize,
}

#[derive(Clone)]
pub struct Recorder {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl Recorder {
    /// Serve on 127.0.0.1, port 0, from a runtime of its own.
    pub fn start() -> Recorder {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind recorder");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let port = std_listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let l = TcpListener::from_std(std_listener).expect("listener");
                loop {
                    let Ok((s, _)) = l.accept().await else {
                        continue;
                    };
                    tokio::spawn(serve(s, st.clone()));
                }
            });
        });
        Recorder { port, state }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests whose target contains `needle`.
    pub fn find(&self, needle: &str) -> Vec<Rec> {
        let s = self.state.lock().expect("state");
        s.recs
            .iter()
            .filter(|r| r.target.contains(needle))
            .cloned()
            .collect()
    }

    /// Wait (polling the recorded state) until no connection is in the
    /// middle of a request and every request for `needle` has ended; the
    /// requests for `needle` then. Panics after `limit`.
    pub fn settled(&self, needle: &str, limit: Duration) -> Vec<Rec> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            {
                let s = self.state.lock().expect("state");
                let mine: Vec<Rec> = s
                    .recs
                    .iter()
                    .filter(|r| r.target.contains(needle))
                    .cloned()
                    .collect();
                if s.busy == 0 && mine.iter().all(|r| r.ended) {
                    return mine;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the upstream did not settle for {needle}"
            );
            std::thread::sleep(Duration::from_millis(10)); // poll interval
        }
    }
}

async fn serve(s: TcpStream, state: Arc<Mutex<State>>) {
    let (r, mut w) = s.into_split();
    let mut r = BufReader::new(r);
    loop {
        // Wait for the first byte of the next request (or the end).
        match r.fill_buf().await {
            Ok(b) if !b.is_empty() => {}
            _ => return,
        }
        state.lock().expect("state").busy += 1;
        let index = read_one(&mut r, &state).await;
        let rec = {
            let mut st = state.lock().expect("state");
            st.busy -= 1;
            index.map(|i| st.recs[i].clone())
        };
        let Some(rec) = rec else { return };
        if !rec.complete {
            return;
        }
        if w.write_all(&answer(&rec)).await.is_err() {
            return;
        }
    }
}

/// Read one request into the record; its index, once the head arrived.
async fn read_one<R: tokio::io::AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    state: &Mutex<State>,
) -> Option<usize> {
    let mut line = String::new();
    r.read_line(&mut line).await.ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).await.ok()? == 0 {
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
    let length = get("content-length").and_then(|v| v.parse::<usize>().ok());
    let chunked = get("transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let index = {
        let mut st = state.lock().expect("state");
        st.recs.push(Rec {
            method,
            target,
            headers,
            length,
            body: Vec::new(),
            complete: false,
            ended: false,
        });
        st.recs.len() - 1
    };
    let complete = if chunked {
        read_chunked(r, state, index).await
    } else {
        let mut left = length.unwrap_or(0);
        let mut buf = vec![0u8; 64 * 1024];
        while left > 0 {
            match r.read(&mut buf[..left.min(64 * 1024)]).await {
                Ok(n) if n > 0 => {
                    state.lock().expect("state").recs[index]
                        .body
                        .extend_from_slice(&buf[..n]);
                    left -= n;
                }
                _ => break,
            }
        }
        left == 0
    };
    {
        let mut st = state.lock().expect("state");
        st.recs[index].complete = complete;
        st.recs[index].ended = true;
    }
    Some(index)
}

/// Chunked transfer encoding: whether the terminating chunk arrived.
async fn read_chunked<R: tokio::io::AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    state: &Mutex<State>,
    index: usize,
) -> bool {
    loop {
        let mut size = String::new();
        if r.read_line(&mut size).await.unwrap_or(0) == 0 {
            return false;
        }
        let Ok(n) = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16) else {
            return false;
        };
        if n == 0 {
            loop {
                let mut t = String::new();
                match r.read_line(&mut t).await {
                    Ok(0) | Err(_) => return false,
                    Ok(_) if t.trim().is_empty() => return true,
                    Ok(_) => {}
                }
            }
        }
        let mut chunk = vec![0u8; n + 2];
        if r.read_exact(&mut chunk).await.is_err() {
            return false;
        }
        state.lock().expect("state").recs[index]
            .body
            .extend_from_slice(&chunk[..n]);
    }
}

/// What S3 answers once the whole request arrived.
fn answer(rec: &Rec) -> Vec<u8> {
    // The upload id is the key (the tests use unique keys).
    let path = rec.target.split('?').next().unwrap_or("");
    let key = path.rsplit('/').next().unwrap_or("");
    let body = if rec.method == "POST" && rec.target.contains("uploads") {
        format!("<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>{key}</Key><UploadId>{key}</UploadId></InitiateMultipartUploadResult>")
    } else {
        String::new()
    };
    format!(
        "HTTP/1.1 200 OK\r\netag: \"0123456789abcdef0123456789abcdef\"\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
