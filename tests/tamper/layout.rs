//! Offsets in an aws-chunked body, to tamper with one part of it.

/// Where things are in an aws-chunked body as the client frames it.
#[derive(Default, Debug)]
pub struct Layout {
    /// (offset, length) of each data chunk.
    pub data: Vec<(usize, usize)>,
    /// Offset of each chunk's signature (hex), the final chunk's last.
    pub sigs: Vec<usize>,
    /// Offset of the final chunk's header.
    pub final_at: usize,
    /// Offset of the first trailer line, of the checksum value, of the
    /// trailer signature (hex).
    pub trailer_at: Option<usize>,
    pub value_at: Option<usize>,
    pub trailer_sig_at: Option<usize>,
}

fn line_end(b: &[u8], from: usize) -> usize {
    from + b[from..]
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("line end")
}

pub fn layout(b: &[u8]) -> Layout {
    let mut l = Layout::default();
    let mut pos = 0;
    loop {
        let end = line_end(b, pos);
        let line = std::str::from_utf8(&b[pos..end]).expect("chunk header");
        if let Some(i) = line.find("chunk-signature=") {
            l.sigs.push(pos + i + "chunk-signature=".len());
        }
        let n = usize::from_str_radix(line.split(';').next().expect("size"), 16).expect("hex");
        if n == 0 {
            l.final_at = pos;
            pos = end + 2;
            break;
        }
        l.data.push((end + 2, n));
        pos = end + 2 + n + 2;
    }
    while pos < b.len() {
        let end = line_end(b, pos);
        let line = std::str::from_utf8(&b[pos..end]).expect("trailer");
        if line.is_empty() {
            break;
        }
        l.trailer_at.get_or_insert(pos);
        let colon = pos + line.find(':').expect("trailer colon") + 1;
        if line.starts_with("x-amz-trailer-signature") {
            l.trailer_sig_at = Some(colon);
        } else {
            l.value_at = Some(colon);
        }
        pos = end + 2;
    }
    l
}

/// A different character of the same kind (hex stays hex, base64 base64).
pub fn change(b: &mut [u8], at: usize) {
    b[at] = match b[at] {
        b'0' => b'1',
        b'1'..=b'9' => b'0',
        b'a' => b'b',
        b'b'..=b'z' => b'a',
        b'A' => b'B',
        _ => b'A',
    };
}
