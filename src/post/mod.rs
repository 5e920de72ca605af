//! POST Object: browser-based uploads with a signed POST policy (issue 14).
//!
//! A form posted to `/bucket` is admitted by `admit::post` (fields read,
//! signature verified by `auth::post`, the policy checked here, decided as
//! `s3:PutObject` on the final key), streamed upstream as a re-signed
//! PutObject through `FormBody` (the file part only, its end held back
//! until the form closed), and answered as S3 answers a POST (`answer`).
//! `cors` answers browsers' preflights from the bucket's `cors` rules.

pub mod answer;
pub mod cors;
pub mod form;
pub mod policy;

use bytes::{Bytes, BytesMut};

use crate::s3::{err, S3ErrorCode, S3Result};
use form::FileStream;

/// The largest file one POST may carry (S3: 5 GB).
pub const MAX_FILE_BYTES: u64 = 5 << 30;

/// A decided POST Object: what the upstream request and the answer need.
#[derive(Debug, Clone, Default)]
pub struct PostUpload {
    /// The bucket as the client named it, and the final key.
    pub bucket: String,
    pub key: String,
    /// `success_action_status` (200, 201 or 204).
    pub status: u16,
    /// `success_action_redirect`, when it is an http(s) URL.
    pub redirect: Option<String>,
    /// `scheme://host` the form was posted to (the `Location`).
    pub origin: String,
    /// Headers of the upstream PutObject, from the form's fields.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// The `PostResponse` document replacing the upstream's (empty) body.
    pub answer_body: Option<Bytes>,
}

/// Form fields that become headers of the PutObject, as S3 maps them.
const HEADER_FIELDS: &[&str] = &[
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-type",
    "expires",
    "x-amz-storage-class",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-server-side-encryption-context",
    "x-amz-server-side-encryption-bucket-key-enabled",
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
    "x-amz-website-redirect-location",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
];

/// The PutObject headers a form's fields ask for: `acl` → `x-amz-acl`,
/// `x-amz-meta-*`, Content-Type (default `binary/octet-stream`, as S3)
/// and the other object headers. A value that is no valid header value
/// is refused.
pub fn upstream_headers(
    fields: &[(String, String)],
) -> S3Result<Vec<(http::HeaderName, http::HeaderValue)>> {
    let mut out = Vec::new();
    for (name, value) in fields {
        let lower = name.to_ascii_lowercase();
        let header = if lower == "acl" {
            "x-amz-acl".to_string()
        } else if lower.starts_with("x-amz-meta-") || HEADER_FIELDS.contains(&lower.as_str()) {
            lower
        } else {
            continue;
        };
        let bad = || {
            err(
                S3ErrorCode::InvalidArgument,
                format!(
                    "The form field {} cannot be stored (not a valid header name or value)",
                    name.chars().take(64).collect::<String>()
                ),
            )
        };
        let n = http::HeaderName::from_bytes(header.as_bytes()).map_err(|_| bad())?;
        let v = http::HeaderValue::from_str(value).map_err(|_| bad())?;
        if out.iter().any(|(o, _)| *o == n) {
            return Err(err(
                S3ErrorCode::InvalidArgument,
                format!("The form field {header} appears more than once"),
            ));
        }
        out.push((n, v));
    }
    if !out.iter().any(|(n, _)| n == http::header::CONTENT_TYPE) {
        out.push((
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("binary/octet-stream"),
        ));
    }
    Ok(out)
}

/// The bytes that close a form after its file's content:
/// `CRLF--boundary--`, and the CRLF after it when `crlf`.
pub fn closing_len(boundary: &str, crlf: bool) -> u64 {
    let crlf_len = if crlf { 2 } else { 0 };
    (2 + 2 + boundary.len() + 2 + crlf_len) as u64
}

/// The file part's exact length, known before any of it is read: the
/// request's Content-Length less the bytes before the file's content
/// (preamble, fields, the file part's headers) and the closing delimiter
/// (with its CRLF when `crlf`). The upstream PutObject carries it as its
/// Content-Length; `FormBody` then holds the form to it.
pub fn file_length(content_length: u64, before: u64, boundary: &str, crlf: bool) -> S3Result<u64> {
    content_length
        .checked_sub(before)
        .and_then(|n| n.checked_sub(closing_len(boundary, crlf)))
        .ok_or_else(|| {
            err(
                S3ErrorCode::MalformedPOSTRequest,
                "The Content-Length of your POST request is too small for the form it carries",
            )
        })
}

/// The file part on its way upstream: the bytes read with the fields come
/// first; each output is held back one step, and the last is released
/// only when the form closed properly and the file's size is within the
/// policy's `content-length-range` — and, when the upstream was promised
/// a length (`expect`), exactly that length.
pub struct FormBody {
    stream: FileStream,
    pending: Option<Bytes>,
    held: Bytes,
    length: u64,
    min: u64,
    max: u64,
    expected: Option<u64>,
}

impl FormBody {
    /// `first`: file bytes (and maybe more) read with the fields.
    pub fn new(boundary: &str, first: Bytes, range: Option<(u64, u64)>) -> Self {
        let (min, max) = range.unwrap_or((0, MAX_FILE_BYTES));
        FormBody {
            stream: FileStream::new(boundary),
            pending: Some(first),
            held: Bytes::new(),
            length: 0,
            min,
            max: max.min(MAX_FILE_BYTES),
            expected: None,
        }
    }

    /// Hold the file to `length` bytes, the upstream request's
    /// Content-Length (`file_length`, the form closed with a CRLF). A
    /// length outside the policy's range is refused now, before anything
    /// went upstream.
    pub fn expect(mut self, length: u64) -> S3Result<Self> {
        self.check_range(length)?;
        self.expected = Some(length);
        Ok(self)
    }

    fn check_range(&self, length: u64) -> S3Result<()> {
        if length > self.max {
            return Err(too_large(self.max));
        }
        if length < self.min {
            return Err(err(
                S3ErrorCode::EntityTooSmall,
                format!(
                    "Your proposed upload is smaller than the minimum allowed size ({} bytes)",
                    self.min
                ),
            ));
        }
        Ok(())
    }

    /// The file's next bytes that may go upstream, and how many.
    pub fn next(&mut self, piece: Option<Bytes>, end_of_stream: bool) -> S3Result<(Bytes, u64)> {
        let mut out = BytesMut::new();
        for p in [self.pending.take(), piece].into_iter().flatten() {
            out.extend_from_slice(&self.stream.push(&p)?);
        }
        self.length = self.length.saturating_add(out.len() as u64);
        if self.length > self.max {
            return Err(too_large(self.max));
        }
        if self.expected.is_some_and(|e| self.length > e) {
            return Err(length_mismatch());
        }
        let release = std::mem::replace(&mut self.held, out.freeze());
        if !end_of_stream {
            let n = release.len() as u64;
            return Ok((release, n));
        }
        self.stream.finish()?;
        self.check_range(self.length)?;
        if let Some(e) = self.expected {
            if self.length != e || !self.stream.closed_with_crlf() {
                return Err(length_mismatch());
            }
        }
        let mut last = BytesMut::from(&release[..]);
        last.extend_from_slice(&std::mem::take(&mut self.held));
        let n = last.len() as u64;
        Ok((last.freeze(), n))
    }

    /// The whole file of a form read completely (`first` was all of it).
    pub fn whole(mut self) -> S3Result<Bytes> {
        self.next(None, true).map(|(b, _)| b)
    }
}

fn length_mismatch() -> crate::s3::S3Error {
    err(
        S3ErrorCode::MalformedPOSTRequest,
        "The file part does not end where the Content-Length says: a streamed form must close with CRLF--boundary--CRLF right after the file",
    )
}

fn too_large(max: u64) -> crate::s3::S3Error {
    err(
        S3ErrorCode::EntityTooLarge,
        format!("Your proposed upload exceeds the maximum allowed size ({max} bytes)"),
    )
}

#[cfg(test)]
mod tests;
