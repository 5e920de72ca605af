//! A `multipart/form-data` body (RFC 7578, RFC 2046 §5.1) read as a
//! stream: the fields before the file part are read whole (bounded, as S3
//! bounds them), then the file part streams through `FileStream`, which
//! releases file bytes only once they cannot be the start of the closing
//! delimiter, and tells the end of the form by the closing delimiter, never
//! by the connection.
//!
//! Every delimiter is searched as `CRLF--boundary`: the parser starts as if
//! a CRLF preceded the body, so a body that opens with `--boundary` is read
//! alike.

use bytes::{Bytes, BytesMut};

use crate::s3::{err, S3Error, S3ErrorCode, S3Result};

/// The most the fields before the file may take (S3: 20 KiB).
pub const MAX_FIELDS_BYTES: usize = 20 * 1024;
/// What may follow the file part's delimiter: `--` and an optional CRLF
/// (the form closes with the file; no fields after it, no epilogue).
pub const MAX_TAIL_BYTES: usize = 4;

fn malformed(msg: impl Into<String>) -> S3Error {
    err(S3ErrorCode::MalformedPOSTRequest, msg)
}

fn pre_data_too_large() -> S3Error {
    err(
        S3ErrorCode::MaxPostPreDataLengthExceeded,
        "Your POST request fields preceding the upload file were too large.",
    )
}

fn not_well_formed() -> S3Error {
    malformed("The body of your POST request is not well-formed multipart/form-data.")
}

/// The boundary of a `multipart/form-data` Content-Type.
pub fn boundary(content_type: &str) -> S3Result<String> {
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return Err(malformed(
            "POST Object requires a Content-Type of multipart/form-data",
        ));
    }
    for p in parts {
        let Some((name, value)) = p.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("boundary") {
            continue;
        }
        let v = value.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        // RFC 2046: 1 to 70 characters.
        if v.is_empty() || v.len() > 70 || !v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(malformed("The multipart boundary is not valid"));
        }
        return Ok(v.to_string());
    }
    Err(malformed(
        "The multipart/form-data Content-Type has no boundary",
    ))
}

/// The first `needle` in `hay` at or after `from`: a scan for its first
/// byte (CR for every delimiter, rare in most files), then a comparison.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let last = hay.len().checked_sub(needle.len())?;
    let mut i = from;
    while i <= last {
        i += hay[i..=last].iter().position(|&b| b == first)?;
        if hay[i + 1..i + needle.len()] == *rest {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Where to search again for `needle` once `hay` grew: a match can only
/// start in the last `needle.len() - 1` bytes seen.
fn resume(hay_len: usize, needle: &[u8]) -> usize {
    hay_len.saturating_sub(needle.len().saturating_sub(1))
}

/// A form field before the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// The file part's own headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilePart {
    pub filename: Option<String>,
    pub content_type: Option<String>,
}

/// Everything before the file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormHead {
    pub fields: Vec<Field>,
    pub file: FilePart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeadState {
    /// Before the first delimiter.
    Preamble,
    /// Right after a delimiter: `--` (close) or padding and CRLF.
    AfterDelimiter,
    /// A part's header block.
    Headers,
    /// A field's value, up to the next delimiter.
    Value,
}

/// Reads the fields before the file part.
pub struct HeadParser {
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    state: HeadState,
    searched: usize,
    consumed: usize,
    fields: Vec<Field>,
    current: Option<String>,
}

impl HeadParser {
    pub fn new(boundary: &str) -> Self {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        HeadParser {
            delimiter,
            buf: b"\r\n".to_vec(),
            state: HeadState::Preamble,
            searched: 0,
            consumed: 0,
            fields: Vec::new(),
            current: None,
        }
    }

    /// Feed the next piece. `Some((head, rest))` once the file part's
    /// headers are read: `rest` is what followed them (file bytes and
    /// maybe more), for `FileStream`.
    pub fn push(&mut self, piece: &[u8]) -> S3Result<Option<(FormHead, Bytes)>> {
        self.buf.extend_from_slice(piece);
        loop {
            // The seeded CRLF is not the client's.
            let too_large = |n: usize| n > MAX_FIELDS_BYTES + 2;
            match self.step()? {
                Step::More if too_large(self.consumed + self.buf.len()) => {
                    return Err(pre_data_too_large())
                }
                Step::More => return Ok(None),
                Step::Again if too_large(self.consumed) => return Err(pre_data_too_large()),
                Step::Again => continue,
                Step::File(_, _) if too_large(self.consumed) => return Err(pre_data_too_large()),
                Step::File(file, at) => {
                    let rest = Bytes::copy_from_slice(&self.buf[at..]);
                    let head = FormHead {
                        fields: std::mem::take(&mut self.fields),
                        file,
                    };
                    return Ok(Some((head, rest)));
                }
            }
        }
    }

    /// The body ended before the file part.
    pub fn finish(&self) -> S3Error {
        match self.state {
            HeadState::Preamble | HeadState::AfterDelimiter if !self.fields.is_empty() => err(
                S3ErrorCode::InvalidArgument,
                "POST requires exactly one file upload per request.",
            ),
            _ => not_well_formed(),
        }
    }

    fn advance(&mut self, n: usize, state: HeadState) {
        self.buf.drain(..n);
        self.consumed += n;
        self.searched = 0;
        self.state = state;
    }

    fn step(&mut self) -> S3Result<Step> {
        match self.state {
            HeadState::Preamble => match find(&self.buf, &self.delimiter, self.searched) {
                Some(i) => {
                    self.advance(i + self.delimiter.len(), HeadState::AfterDelimiter);
                    Ok(Step::Again)
                }
                None => {
                    self.searched = resume(self.buf.len(), &self.delimiter);
                    Ok(Step::More)
                }
            },
            HeadState::AfterDelimiter => {
                if self.buf.starts_with(b"--") {
                    // The closing delimiter, and no file part yet.
                    return Err(if self.fields.is_empty() {
                        not_well_formed()
                    } else {
                        err(
                            S3ErrorCode::InvalidArgument,
                            "POST requires exactly one file upload per request.",
                        )
                    });
                }
                let pad = self
                    .buf
                    .iter()
                    .take_while(|b| **b == b' ' || **b == b'\t')
                    .count();
                if self.buf.len() < pad + 2 {
                    return Ok(Step::More);
                }
                if &self.buf[pad..pad + 2] != b"\r\n" {
                    return Err(not_well_formed());
                }
                self.advance(pad + 2, HeadState::Headers);
                Ok(Step::Again)
            }
            HeadState::Headers => {
                // An empty header block is a lone CRLF.
                let end = if self.buf.starts_with(b"\r\n") {
                    Some(0)
                } else {
                    find(&self.buf, b"\r\n\r\n", self.searched).map(|i| i + 2)
                };
                let Some(end) = end else {
                    self.searched = resume(self.buf.len(), b"\r\n\r\n");
                    return Ok(Step::More);
                };
                let part = parse_part_headers(&self.buf[..end])?;
                let body_at = end + 2;
                if part.name.eq_ignore_ascii_case("file") {
                    self.consumed += body_at;
                    return Ok(Step::File(part.file, body_at));
                }
                self.current = Some(part.name);
                self.advance(body_at, HeadState::Value);
                Ok(Step::Again)
            }
            HeadState::Value => match find(&self.buf, &self.delimiter, self.searched) {
                Some(i) => {
                    let value = std::str::from_utf8(&self.buf[..i])
                        .map_err(|_| {
                            err(
                                S3ErrorCode::InvalidArgument,
                                "A form field's value is not valid UTF-8",
                            )
                        })?
                        .to_string();
                    let name = self.current.take().unwrap_or_default();
                    self.fields.push(Field { name, value });
                    self.advance(i + self.delimiter.len(), HeadState::AfterDelimiter);
                    Ok(Step::Again)
                }
                None => {
                    self.searched = resume(self.buf.len(), &self.delimiter);
                    Ok(Step::More)
                }
            },
        }
    }
}

enum Step {
    More,
    Again,
    /// The file part begins at this offset of the buffer.
    File(FilePart, usize),
}

struct PartHeaders {
    name: String,
    file: FilePart,
}

/// A part's header block (each line ending in CRLF).
fn parse_part_headers(block: &[u8]) -> S3Result<PartHeaders> {
    let text = std::str::from_utf8(block).map_err(|_| not_well_formed())?;
    let mut name = None;
    let mut file = FilePart::default();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (h, v) = line.split_once(':').ok_or_else(not_well_formed)?;
        let h = h.trim();
        if h.eq_ignore_ascii_case("content-disposition") {
            let mut params = split_params(v);
            let kind = params.next().unwrap_or_default();
            if !kind.0.eq_ignore_ascii_case("form-data") {
                return Err(not_well_formed());
            }
            for (k, val) in params {
                if k.eq_ignore_ascii_case("name") {
                    name = Some(val);
                } else if k.eq_ignore_ascii_case("filename") {
                    file.filename = Some(val);
                }
            }
        } else if h.eq_ignore_ascii_case("content-type") {
            file.content_type = Some(v.trim().to_string());
        }
    }
    let name = name.ok_or_else(|| malformed("A form part has no name"))?;
    Ok(PartHeaders { name, file })
}

/// `form-data; name="a"; filename="b"` → (`form-data`, ""), (`name`, `a`), …
/// Quoted values may hold `;` and backslash escapes.
fn split_params(v: &str) -> impl Iterator<Item = (String, String)> + '_ {
    let mut rest = v.trim();
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let key_end = rest.find(['=', ';']).unwrap_or(rest.len());
        let key = rest[..key_end].trim().to_string();
        rest = &rest[key_end..];
        let mut value = String::new();
        if let Some(r) = rest.strip_prefix('=') {
            let r = r.trim_start();
            if let Some(q) = r.strip_prefix('"') {
                let mut chars = q.char_indices();
                let mut end = q.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                rest = &q[end.min(q.len())..];
            } else {
                let end = r.find(';').unwrap_or(r.len());
                value = r[..end].trim().to_string();
                rest = &r[end..];
            }
        }
        rest = rest
            .trim_start()
            .strip_prefix(';')
            .unwrap_or(rest)
            .trim_start();
        Some((key, value))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileState {
    /// File content.
    Data,
    /// After the file's delimiter: whatever follows, up to the end of the
    /// body, which must contain the closing delimiter.
    Tail,
}

/// The file part's content, streamed: `push` returns the file bytes that
/// are certainly content; `finish` (at the end of the body) checks that
/// the form was closed.
pub struct FileStream {
    delimiter: Vec<u8>,
    held: BytesMut,
    state: FileState,
    searched: usize,
    tail: Vec<u8>,
}

impl FileStream {
    pub fn new(boundary: &str) -> Self {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        FileStream {
            delimiter,
            held: BytesMut::new(),
            state: FileState::Data,
            searched: 0,
            tail: Vec::new(),
        }
    }

    /// Feed the next piece of the body; returns the file content it
    /// completes (bytes that could begin the delimiter stay held).
    pub fn push(&mut self, piece: &[u8]) -> S3Result<Bytes> {
        match self.state {
            FileState::Tail => {
                self.push_tail(piece)?;
                Ok(Bytes::new())
            }
            FileState::Data => {
                self.held.extend_from_slice(piece);
                match find(&self.held, &self.delimiter, self.searched) {
                    Some(i) => {
                        let data = self.held.split_to(i).freeze();
                        let after = self.held.split_off(self.delimiter.len());
                        self.held.clear();
                        self.state = FileState::Tail;
                        self.push_tail(&after)?;
                        Ok(data)
                    }
                    None => {
                        let keep = self.delimiter.len() - 1;
                        let out = self.held.len().saturating_sub(keep);
                        self.searched = 0;
                        Ok(self.held.split_to(out).freeze())
                    }
                }
            }
        }
    }

    fn push_tail(&mut self, piece: &[u8]) -> S3Result<()> {
        if self.tail.len() + piece.len() > MAX_TAIL_BYTES {
            return Err(not_closed());
        }
        self.tail.extend_from_slice(piece);
        Ok(())
    }

    /// Whether the file's content has ended (its delimiter was seen).
    pub fn file_ended(&self) -> bool {
        self.state == FileState::Tail
    }

    /// The body ended: the closing delimiter must have arrived, right
    /// after the file and followed by nothing but an optional CRLF.
    pub fn finish(&self) -> S3Result<()> {
        if self.state != FileState::Tail {
            return Err(err(
                S3ErrorCode::IncompleteBody,
                "The POST body ended before the file part's closing boundary",
            ));
        }
        if self.tail == b"--" || self.tail == b"--\r\n" {
            return Ok(());
        }
        Err(not_closed())
    }

    /// Whether the closing delimiter was followed by a CRLF.
    pub fn closed_with_crlf(&self) -> bool {
        self.tail == b"--\r\n"
    }
}

fn not_closed() -> S3Error {
    malformed(
        "The file must be the last part of the form: its closing boundary must follow it, with nothing after but an optional CRLF",
    )
}

#[cfg(test)]
mod tests;
