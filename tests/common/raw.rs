//! Hand-built S3 requests for the cases SDKs will not send: every payload
//! mode, with correct and tampered bodies, and broken authentication.
//! Signatures come from the aws-sigv4 crate (an implementation other than
//! the gateway's verifier).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn code(&self) -> Option<String> {
        let start = self.body.find("<Code>")? + 6;
        let end = self.body[start..].find("</Code>")? + start;
        Some(self.body[start..end].to_string())
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Send one HTTP/1.1 request and read the whole response (Connection: close).
pub fn send(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Response {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut req = format!("{method} {target} HTTP/1.1\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("write head");
    // The gateway may answer and close before the whole body is read.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}

pub struct Signer<'a> {
    pub key: &'a str,
    pub secret: &'a str,
    pub region: &'a str,
    pub time: SystemTime,
}

impl Signer<'_> {
    fn identity(&self) -> Identity {
        Credentials::new(self.key, self.secret, None, None, "tests").into()
    }

    fn settings(location: SignatureLocation) -> SigningSettings {
        let mut s = SigningSettings::default();
        s.percent_encoding_mode = PercentEncodingMode::Single;
        s.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        s.payload_checksum_kind = PayloadChecksumKind::NoHeader;
        s.signature_location = location;
        if location == SignatureLocation::QueryParams {
            s.expires_in = Some(Duration::from_secs(60));
        }
        s
    }

    /// Sign with the Authorization header. `headers` must include host and
    /// x-amz-content-sha256. Returns all headers and the seed signature.
    pub fn sign_headers(
        &self,
        method: &str,
        target: &str,
        mut headers: Vec<(String, String)>,
        content_sha: &str,
    ) -> (Vec<(String, String)>, String) {
        let id = self.identity();
        let params = v4::SigningParams::builder()
            .identity(&id)
            .region(self.region)
            .name("s3")
            .time(self.time)
            .settings(Self::settings(SignatureLocation::Headers))
            .build()
            .expect("params")
            .into();
        let host = headers
            .iter()
            .find(|(n, _)| n == "host")
            .map(|(_, v)| v.clone())
            .expect("host");
        let uri = format!("http://{host}{target}");
        let signable = SignableRequest::new(
            method,
            uri,
            headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            SignableBody::Precomputed(content_sha.to_string()),
        )
        .expect("signable");
        let (instr, sig) = sign(signable, &params).expect("sign").into_parts();
        let (hs, _) = instr.into_parts();
        for h in hs {
            headers.push((h.name().to_string(), h.value().to_string()));
        }
        (headers, sig)
    }

    /// A presigned target (path?query) valid for `expires`.
    pub fn presign(&self, method: &str, host: &str, target: &str, expires: Duration) -> String {
        let id = self.identity();
        let mut settings = Self::settings(SignatureLocation::QueryParams);
        settings.expires_in = Some(expires);
        let params = v4::SigningParams::builder()
            .identity(&id)
            .region(self.region)
            .name("s3")
            .time(self.time)
            .settings(settings)
            .build()
            .expect("params")
            .into();
        let uri = format!("http://{host}{target}");
        let headers = [("host", host)];
        let signable = SignableRequest::new(
            method,
            uri,
            headers.into_iter(),
            SignableBody::UnsignedPayload,
        )
        .expect("signable");
        let (instr, _) = sign(signable, &params).expect("sign").into_parts();
        let (_, qp) = instr.into_parts();
        let mut out = target.to_string();
        let mut sep = if target.contains('?') { '&' } else { '?' };
        for (n, v) in qp {
            out.push(sep);
            sep = '&';
            out.push_str(&format!(
                "{n}={}",
                percent_encoding::utf8_percent_encode(&v, percent_encoding::NON_ALPHANUMERIC)
            ));
        }
        out
    }

    /// aws-chunked framing of `data` in `chunk` sized pieces; signed when
    /// `seed` is given; with a trailer `(name, value)` when given.
    pub fn aws_chunked(
        &self,
        data: &[u8],
        chunk: usize,
        seed: Option<&str>,
        trailer: Option<(&str, &str)>,
    ) -> Vec<u8> {
        let id = self.identity();
        let params = v4::SigningParams::builder()
            .identity(&id)
            .region(self.region)
            .name("s3")
            .time(self.time)
            .settings(())
            .build()
            .expect("params");
        let mut out = Vec::new();
        let mut prev = seed.map(str::to_string);
        let mut pieces: Vec<&[u8]> = data.chunks(chunk).collect();
        pieces.push(&[]);
        for p in pieces {
            out.extend_from_slice(format!("{:x}", p.len()).as_bytes());
            if let Some(prev_sig) = &prev {
                let s =
                    v4::sign_chunk(&Bytes::copy_from_slice(p), prev_sig, &params).expect("chunk");
                out.extend_from_slice(format!(";chunk-signature={}", s.signature()).as_bytes());
                prev = Some(s.signature().to_string());
            }
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(p);
            if !p.is_empty() {
                out.extend_from_slice(b"\r\n");
            }
        }
        if let Some((name, value)) = trailer {
            out.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
            if let Some(prev_sig) = &prev {
                let mut h = aws_smithy_runtime_api::http::Headers::new();
                h.insert(name.to_string(), value.to_string());
                let s = v4::sign_trailer(&h, prev_sig, &params).expect("trailer");
                out.extend_from_slice(
                    format!("x-amz-trailer-signature:{}\r\n", s.signature()).as_bytes(),
                );
            }
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

pub fn sha256_hex(d: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(d))
}

/// `YYYY-MM-DD`, `HH:MM:SS` of a time (UTC), for POST policies and
/// `x-amz-date` (days to civil date: H. Hinnant's algorithm).
fn utc(t: SystemTime) -> ((i64, u32, u32), (u64, u64, u64)) {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    ((y, m, d), (rem / 3600, rem / 60 % 60, rem % 60))
}

impl Signer<'_> {
    /// The fields of a browser form for `key` in `bucket` with a SigV4-signed
    /// POST policy (bucket and key conditions, then `conditions`, JSON
    /// texts; valid ten minutes). Signed with aws-sigv4's key derivation.
    pub fn post_fields(
        &self,
        bucket: &str,
        key: &str,
        conditions: &[&str],
    ) -> Vec<(String, String)> {
        use base64::Engine as _;
        let ((y, mo, d), (h, mi, s)) = utc(self.time);
        let ((ey, emo, ed), (eh, emi, es)) = utc(self.time + Duration::from_secs(600));
        let date = format!("{y:04}{mo:02}{d:02}");
        let amz_date = format!("{date}T{h:02}{mi:02}{s:02}Z");
        let credential = format!("{}/{date}/{}/s3/aws4_request", self.key, self.region);
        let mut conds = vec![
            format!("{{\"bucket\": {}}}", serde_json::json!(bucket)),
            format!("{{\"key\": {}}}", serde_json::json!(key)),
            "{\"x-amz-algorithm\": \"AWS4-HMAC-SHA256\"}".to_string(),
            format!("{{\"x-amz-credential\": \"{credential}\"}}"),
            format!("{{\"x-amz-date\": \"{amz_date}\"}}"),
        ];
        conds.extend(conditions.iter().map(|c| c.to_string()));
        let doc = format!(
            "{{\"expiration\": \"{ey:04}-{emo:02}-{ed:02}T{eh:02}:{emi:02}:{es:02}.000Z\", \"conditions\": [{}]}}",
            conds.join(", ")
        );
        let policy = base64::engine::general_purpose::STANDARD.encode(doc);
        let signing_key = v4::generate_signing_key(self.secret, self.time, self.region, "s3");
        let signature = v4::calculate_signature(signing_key, policy.as_bytes());
        vec![
            ("key".into(), key.into()),
            ("x-amz-algorithm".into(), "AWS4-HMAC-SHA256".into()),
            ("x-amz-credential".into(), credential),
            ("x-amz-date".into(), amz_date),
            ("policy".into(), policy),
            ("x-amz-signature".into(), signature),
        ]
    }
}

/// A `multipart/form-data` body up to the file's content: the fields, then
/// the file part's headers. The file, then [`form_close`], follow.
pub fn form_open(boundary: &str, fields: &[(String, String)], filename: &str) -> Vec<u8> {
    let mut out = String::new();
    for (k, v) in fields {
        out.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    out.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    ));
    out.into_bytes()
}

/// The closing delimiter after the file, as browsers send it.
pub fn form_close(boundary: &str) -> Vec<u8> {
    format!("\r\n--{boundary}--\r\n").into_bytes()
}
