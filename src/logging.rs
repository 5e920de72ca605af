//! tracing setup (human or JSON) and the per-request log line.
//!
//! Never logged: secrets, signatures, Authorization headers, query strings
//! (a presigned URL's query is a bearer credential). Our own lines are
//! written that way, but other crates' are not (pingora logs
//! `request_summary()`, the request target with its query, e.g. when a
//! client breaks off a presigned upload), so every line, whoever emits it,
//! goes through [`sanitize`] on its way out: query strings of request
//! targets and URLs are cut, credential-bearing values are redacted, and in
//! the human format control characters are escaped, so that no field (an
//! object key with a newline…) can forge a line.

use std::io::Write;

use pingora::Error;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::context::RequestCtx;

pub fn init(format: LogFormat, level: Option<&str>) {
    let filter = EnvFilter::try_from_env("S3GATE_LOG")
        .or_else(|_| EnvFilter::try_new(level.unwrap_or("info")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = matches!(format, LogFormat::Json);
    // No ANSI colours: escape sequences in a line are escaped, all of them.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Sanitized::new(crate::log_writer::Stderr::start(), json));
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// Wraps a writer maker (stderr): each event goes through a [`LineWriter`].
#[derive(Debug, Clone, Copy)]
pub struct Sanitized<M> {
    inner: M,
    json: bool,
}

impl<M> Sanitized<M> {
    /// `json`: the events are formatted as JSON (see [`sanitize`]).
    pub fn new(inner: M, json: bool) -> Self {
        Sanitized { inner, json }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Sanitized<M> {
    type Writer = LineWriter<M::Writer>;
    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            buf: Vec::with_capacity(256),
            json: self.json,
            inner: self.inner.make_writer(),
        }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        LineWriter {
            buf: Vec::with_capacity(256),
            json: self.json,
            inner: self.inner.make_writer_for(meta),
        }
    }
}

/// Collects one formatted event and writes it, sanitized, in one write
/// when dropped.
pub struct LineWriter<W: Write> {
    buf: Vec<u8>,
    json: bool,
    inner: W,
}

impl<W: Write> Write for LineWriter<W> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for LineWriter<W> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let line = sanitize(&String::from_utf8_lossy(&self.buf), self.json);
        let _ = self.inner.write_all(line.as_bytes());
        let _ = self.inner.flush();
    }
}

/// One formatted event (ending in a newline) made safe to write: redacted
/// (see [`redact`]); in the human format (`json == false`) every control
/// character but the final newline is escaped as well (the JSON format
/// escapes them itself).
pub fn sanitize(event: &str, json: bool) -> String {
    let (body, newline) = match event.strip_suffix('\n') {
        Some(b) => (b, "\n"),
        None => (event, ""),
    };
    let mut out = redact(body, json);
    if !json {
        out = escape_controls(&out);
    }
    out.push_str(newline);
    out
}

/// `\n`, `\r`, `\t`, and `\x{..}` for the other C0 and C1 controls, DEL and
/// the Unicode line and paragraph separators.
pub fn escape_controls(s: &str) -> String {
    if !s.chars().any(needs_escape) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                use std::fmt::Write as _;
                let _ = write!(out, "\\x{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// Names whose values are credentials, wherever they appear as `name=value`
/// or `name: value` (query parameters, Authorization parameters, headers,
/// config keys). Matched case-insensitively, at a word start.
const SECRET_PARAMS: &[&str] = &[
    "x-amz-signature",
    "signature",
    "x-amz-credential",
    "credential",
    "x-amz-security-token",
    "awsaccesskeyid",
    "sessiontoken",
    "session_token",
    "secret_access_key",
    "aws_secret_access_key",
    "secretaccesskey",
];

/// Header names whose whole value (spaces included) is a credential.
const SECRET_HEADERS: &[&str] = &["authorization", "proxy-authorization"];

const REDACTED: &str = "[redacted]";

/// Cut the query string of anything that looks like a request target or a
/// URL (a token holding a `/`, from its `?` up to whitespace or a quote),
/// and redact the values of [`SECRET_PARAMS`] and
/// [`SECRET_HEADERS`]. `json`: the text is JSON, whose strings escape
/// quotes with a backslash (a value ends at a backslash too).
pub fn redact(s: &str, json: bool) -> String {
    let s = strip_queries(s, json);
    redact_values(&s, json)
}

fn token_delimiter(c: u8) -> bool {
    c.is_ascii_whitespace()
        || matches!(
            c,
            b'"' | b'\'' | b'`' | b'=' | b':' | b'(' | b'[' | b'<' | b',' | b'{' | b'\\'
        )
}

fn value_end(c: u8, json: bool) -> bool {
    c.is_ascii_whitespace()
        || matches!(c, b'"' | b'\'' | b'`' | b'<' | b'>')
        || (json && c == b'\\')
}

fn strip_queries(s: &str, json: bool) -> String {
    let b = s.as_bytes();
    if !b.contains(&b'?') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let (mut copied, mut token, mut i) = (0, 0, 0);
    while i < b.len() {
        let c = b[i];
        if token_delimiter(c) {
            token = i + 1;
        } else if c == b'?' {
            // A path, a request target, a URL: anything with a slash.
            if s[token..i].contains('/') {
                out.push_str(&s[copied..=i]);
                out.push_str(REDACTED);
                let mut j = i + 1;
                while j < b.len() && !value_end(b[j], json) {
                    j += 1;
                }
                copied = j;
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&s[copied..]);
    out
}

fn redact_values(s: &str, json: bool) -> String {
    let lower = s.to_ascii_lowercase();
    let b = s.as_bytes();
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    let names = SECRET_PARAMS
        .iter()
        .map(|n| (*n, false))
        .chain(SECRET_HEADERS.iter().map(|n| (*n, true)));
    for (name, whole) in names {
        let mut from = 0;
        while let Some(at) = lower[from..].find(name) {
            let start = from + at;
            from = start + name.len();
            let word_start = start == 0 || {
                let p = b[start - 1];
                !(p.is_ascii_alphanumeric() || p == b'-' || p == b'_')
            };
            if !word_start {
                continue;
            }
            if let Some(range) = value_after(b, from, whole, json) {
                cuts.push(range);
            }
        }
    }
    if cuts.is_empty() {
        return s.to_string();
    }
    cuts.sort_unstable();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    for (start, end) in cuts {
        if end <= copied {
            continue;
        }
        let start = start.max(copied);
        out.push_str(&s[copied..start]);
        out.push_str(REDACTED);
        copied = end;
    }
    out.push_str(&s[copied..]);
    out
}

/// The value after a name ending at `i`: an optional closing quote of the
/// name (`"authorization": …`), `=` or `:`, spaces after `:`, an optional
/// opening quote. `whole`: the value may hold spaces (a header value): it
/// runs to its closing quote or the end of the line.
fn value_after(b: &[u8], mut i: usize, whole: bool, json: bool) -> Option<(usize, usize)> {
    while i < b.len() && matches!(b[i], b'"' | b'\'' | b'\\') {
        i += 1;
    }
    let sep = *b.get(i)?;
    if sep != b'=' && sep != b':' {
        return None;
    }
    i += 1;
    if sep == b':' {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
    }
    let mut quote = None;
    while i < b.len() && matches!(b[i], b'"' | b'\'' | b'\\') {
        if b[i] != b'\\' {
            quote = Some(b[i]);
        }
        i += 1;
    }
    let start = i;
    while i < b.len() {
        let c = b[i];
        let end = if whole {
            c == b'\n' || c == b'\r' || quote.map_or(c == b'"', |q| c == q) || (json && c == b'\\')
        } else {
            value_end(c, json) || matches!(c, b'&' | b',' | b';' | b')' | b']' | b'}')
        };
        if end {
            break;
        }
        i += 1;
    }
    (i > start).then_some((start, i))
}

/// One line per request.
pub fn access(ctx: &RequestCtx, e: Option<&Error>) {
    let principal = ctx
        .identity
        .principal
        .as_ref()
        .map_or("-", |p| p.name.as_str());
    let upstream = ctx
        .plan
        .route
        .as_ref()
        .map_or("-", |r| r.upstream.name.as_str());
    // The gateway's own error, else the upstream's.
    let code = ctx
        .outcome
        .error_code
        .map(|c| c.as_str())
        .or(ctx.outcome.upstream_error_code.as_deref())
        .unwrap_or("-");
    let status = if ctx.outcome.status == 0 && e.is_some() {
        499
    } else {
        ctx.outcome.status
    };
    tracing::info!(
        target: "s3gate::access",
        request_id = %ctx.request_id,
        principal,
        operation = ctx.operation_name(),
        bucket = ctx.bucket.as_deref().unwrap_or("-"),
        key = ctx.key.as_deref().unwrap_or("-"),
        upstream,
        status,
        error = code,
        bytes_in = ctx.outcome.bytes_in,
        bytes_out = ctx.outcome.bytes_out,
        duration_ms = ctx.started.elapsed().as_millis() as u64,
        "request"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "5c2a9f1e0d4b7a6c3e8f9012ab34cd56ef7890ab12cd34ef5678901234abcdef";

    fn presigned(path: &str) -> String {
        format!(
            "{path}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAALICE00000000001%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20250101T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature={SIG}"
        )
    }

    #[test]
    fn pingora_request_summary_loses_its_query() {
        // pingora: "Fail to proxy: {e}, status: {code}, tries: …, {request_summary}"
        let line = format!(
            "2025-01-01T00:00:00.000000Z ERROR pingora_proxy: Fail to proxy: Downstream ReadError context: …, status: 400, tries: 0, retry: false, PUT {}, Host: 127.0.0.1:9000\n",
            presigned("/sdk/big.bin")
        );
        for json in [false, true] {
            let out = sanitize(&line, json);
            assert!(!out.contains(SIG), "{out}");
            assert!(!out.contains("X-Amz-"), "{out}");
            assert!(!out.contains("AKIAALICE"), "{out}");
            assert!(
                out.contains("PUT /sdk/big.bin?[redacted] Host: 127.0.0.1:9000\n"),
                "{out}"
            );
        }
        // Absolute form and a JSON line (quotes escaped in a string).
        let url = format!("http://gw.example:9000{}", presigned("/b/k"));
        let out = redact(&format!("fetching {url} now"), false);
        assert_eq!(out, "fetching http://gw.example:9000/b/k?[redacted] now");
        let json = format!(
            "{{\"level\":\"ERROR\",\"message\":\"target \\\"{}\\\" failed\"}}",
            presigned("/b/k")
        );
        let out = sanitize(&format!("{json}\n"), true);
        assert!(!out.contains(SIG), "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("still JSON");
        assert_eq!(v["message"], "target \"/b/k?[redacted]\" failed");
    }

    #[test]
    fn question_marks_in_prose_stay() {
        let s = "torn last record (incomplete line, a crash mid-write?) key=\"a?b\"";
        assert_eq!(redact(s, false), s);
    }

    #[test]
    fn credential_values_are_redacted_anywhere() {
        let cases = [
            (
                "authorization: AWS4-HMAC-SHA256 Credential=AKIAALICE00000000001/20250101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcdef0123",
                "authorization: [redacted]",
            ),
            (
                "headers={\"Authorization\": \"AWS AKIAALICE00000000001:c2lnbmF0dXJl\", \"host\": \"gw\"}",
                "headers={\"Authorization\": \"[redacted]\", \"host\": \"gw\"}",
            ),
            (
                "Credential=AKIAALICE00000000001/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abcdef0123",
                "Credential=[redacted], SignedHeaders=host, Signature=[redacted]",
            ),
            (
                "x-amz-security-token: FwoGZXIvYXdzEJr//////////wEaDA== next",
                "x-amz-security-token: [redacted] next",
            ),
            (
                "q AWSAccessKeyId=AKIAALICE00000000001&Signature=abc%2Bdef&Expires=1",
                "q AWSAccessKeyId=[redacted]&Signature=[redacted]&Expires=1",
            ),
            (
                "secret_access_key: \"wJalrXUtnFEMI/K7MDENG\" region: x",
                "secret_access_key: \"[redacted]\" region: x",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input, false), want, "{input}");
        }
        // Names inside other words, and prose, are left alone.
        let s = "SignedHeaders=host credentials refreshed; the signature we calculated";
        assert_eq!(redact(s, false), s);
    }

    #[test]
    fn human_lines_cannot_be_forged_by_a_field() {
        let forged = "2025-01-01T00:00:00.000000Z  INFO s3gate::access: request principal=root";
        let line = format!(
            "2025-06-01T12:00:00.000000Z  WARN s3gate: no such key: photos/x\n{forged}\r\t\u{1b}[2J\u{7f}\u{85}\u{2028}\0 end\n"
        );
        let out = sanitize(&line, false);
        assert_eq!(out.matches('\n').count(), 1, "{out:?}");
        assert!(out.ends_with(" end\n"), "{out:?}");
        assert!(
            out.contains(&format!(
                "photos/x\\n{forged}\\r\\t\\x{{1b}}[2J\\x{{7f}}\\x{{85}}\\x{{2028}}\\x{{0}} end"
            )),
            "{out:?}"
        );
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'));
        // JSON lines are escaped by the JSON formatter; sanitize keeps them valid.
        let json = serde_json::json!({ "key": format!("x\n{forged}") }).to_string() + "\n";
        assert_eq!(sanitize(&json, true), json);
    }

    /// What tracing's formatters write through [`Sanitized`] (into a buffer).
    fn through_tracing(json: bool, emit: impl FnOnce()) -> String {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = buf.clone();
        let writer = Sanitized::new(move || Capture(sink.clone()), json);
        let builder = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(writer);
        if json {
            tracing::subscriber::with_default(builder.json().flatten_event(true).finish(), emit);
        } else {
            tracing::subscriber::with_default(builder.finish(), emit);
        }
        let out = buf.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_line_tracing_writes_is_sanitized() {
        for json in [false, true] {
            let out = through_tracing(json, || {
                let key = "a\nFORGED LINE";
                // A message with a request target (as pingora's), and fields.
                tracing::warn!(key, "no such key {key}, GET {}", presigned("/b/k"));
                tracing::info!(uri = %presigned("/b/k"), "second");
            });
            assert_eq!(out.lines().count(), 2, "{out}");
            assert!(!out.contains(SIG), "{out}");
            assert!(!out.contains("X-Amz-"), "{out}");
            assert!(!out.lines().any(|l| l.starts_with("FORGED")), "{out}");
            assert!(out.contains("/b/k?[redacted]"), "{out}");
        }
    }

    #[derive(Clone)]
    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Capture {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(b);
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
