use super::*;

const B: &str = "----b0undary";

fn form(fields: &[(&str, &str)], file: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in fields {
        out.extend_from_slice(
            format!("--{B}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    out.extend_from_slice(
        format!("--{B}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a;b.txt\"\r\nContent-Type: text/plain\r\n\r\n").as_bytes(),
    );
    out.extend_from_slice(file);
    out.extend_from_slice(format!("\r\n--{B}--\r\n").as_bytes());
    out
}

/// Parse `body` fed in the given pieces: the head, the file, and whether
/// the form closed properly.
fn parse_split(body: &[u8], cuts: &[usize]) -> S3Result<(FormHead, Vec<u8>)> {
    let mut head = HeadParser::new(B);
    let mut file: Option<FileStream> = None;
    let mut data = Vec::new();
    let mut found = None;
    let mut last = 0;
    for &c in cuts.iter().chain(std::iter::once(&body.len())) {
        let piece = &body[last..c];
        last = c;
        match &mut file {
            Some(f) => data.extend_from_slice(&f.push(piece)?),
            None => {
                if let Some((h, rest)) = head.push(piece)? {
                    let mut f = FileStream::new(B);
                    data.extend_from_slice(&f.push(&rest)?);
                    file = Some(f);
                    found = Some(h);
                }
            }
        }
    }
    let Some(f) = file else {
        return Err(head.finish());
    };
    f.finish()?;
    Ok((found.unwrap(), data))
}

#[test]
fn boundary_from_content_type() {
    assert_eq!(
        boundary("multipart/form-data; boundary=abc").unwrap(),
        "abc"
    );
    assert_eq!(
        boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\"").unwrap(),
        "a b"
    );
    for bad in [
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=\"\"",
    ] {
        assert_eq!(
            boundary(bad).unwrap_err().code,
            S3ErrorCode::MalformedPOSTRequest,
            "{bad}"
        );
    }
}

#[test]
fn every_split_point_reads_the_same_form() {
    // File content that begins like a delimiter, but is not one.
    let file = format!("x\r\n--{}x\r\n-\r\n--{}y\r\n", &B[..8], &B[..5]).into_bytes();
    let body = form(&[("key", "k/${filename}"), ("policy", "p")], &file);
    let (whole_head, whole_file) = parse_split(&body, &[]).unwrap();
    assert_eq!(whole_file, file);
    assert_eq!(whole_head.fields.len(), 2);
    assert_eq!(whole_head.fields[0].value, "k/${filename}");
    assert_eq!(whole_head.file.filename.as_deref(), Some("a;b.txt"));
    assert_eq!(whole_head.file.content_type.as_deref(), Some("text/plain"));
    for i in 0..=body.len() {
        let (h, f) = parse_split(&body, &[i]).unwrap();
        assert_eq!((&h, &f), (&whole_head, &whole_file), "split at {i}");
    }
    // Two cuts as well (every pair would be slow: a stride).
    for i in (0..body.len()).step_by(3) {
        for j in (i..body.len()).step_by(7) {
            let (h, f) = parse_split(&body, &[i, j]).unwrap_or_else(|e| panic!("{i},{j}: {e}"));
            assert_eq!((&h, &f), (&whole_head, &whole_file), "split at {i},{j}");
        }
    }
    // One byte at a time.
    let cuts: Vec<usize> = (1..body.len()).collect();
    assert_eq!(parse_split(&body, &cuts).unwrap().1, whole_file);
}

#[test]
fn preamble_and_empty_file() {
    let mut body = b"preamble\r\n".to_vec();
    body.extend(form(&[("key", "k")], b""));
    let (h, f) = parse_split(&body, &[]).unwrap();
    assert_eq!(h.fields[0].value, "k");
    assert!(f.is_empty());
}

#[test]
fn the_form_closes_right_after_the_file() {
    let mut body = form(&[("key", "k")], b"data");
    let closing = format!("\r\n--{B}--\r\n");
    body.truncate(body.len() - closing.len());
    // Closing delimiter, with or without the CRLF after it.
    for end in [closing.as_str(), &closing[..closing.len() - 2]] {
        let mut ok = body.clone();
        ok.extend_from_slice(end.as_bytes());
        assert_eq!(parse_split(&ok, &[]).unwrap().1, b"data");
    }
    // Anything more is refused: an epilogue, padding, fields after the file.
    let after_file: Vec<String> = vec![
        format!("{closing}epilogue"),
        format!("{closing}\r\n"),
        format!("\r\n--{B}-- \r\n"),
        format!("\r\n--{B}--x"),
        format!("\r\n--{B}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv{closing}"),
    ];
    for tail in &after_file {
        let mut bad = body.clone();
        bad.extend_from_slice(tail.as_bytes());
        let e = parse_split(&bad, &[]).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::MalformedPOSTRequest, "{tail:?}");
        // Cut anywhere, alike.
        let cuts: Vec<usize> = (1..bad.len()).collect();
        assert!(parse_split(&bad, &cuts).is_err(), "{tail:?}");
    }
    // Truncated: no closing delimiter.
    let e = parse_split(&body, &[]).unwrap_err();
    assert_eq!(e.code, S3ErrorCode::IncompleteBody);
    let mut unclosed = body.clone();
    unclosed.extend_from_slice(format!("\r\n--{B}\r\n").as_bytes());
    assert!(parse_split(&unclosed, &[]).is_err());
}

#[test]
fn malformed_forms_are_refused() {
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"no delimiter at all".to_vec(),
        format!("--{B}--\r\n").into_bytes(),
        format!("--{B}garbage\r\n").into_bytes(),
        format!("--{B}\r\nContent-Disposition: form-data\r\n\r\nv\r\n--{B}--").into_bytes(),
        format!("--{B}\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nv\r\n--{B}--")
            .into_bytes(),
        format!("--{B}\r\nno colon here\r\n\r\nv\r\n--{B}--").into_bytes(),
        [
            format!("--{B}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n").into_bytes(),
            vec![0xff],
            format!("\r\n--{B}--").into_bytes(),
        ]
        .concat(),
        format!("--{B}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--{B}--\r\n")
            .into_bytes(),
    ];
    for (i, body) in cases.iter().enumerate() {
        assert!(parse_split(body, &[]).is_err(), "case {i}");
    }
}

#[test]
fn fields_before_the_file_are_bounded() {
    let big = "v".repeat(MAX_FIELDS_BYTES);
    let body = form(&[("key", "k"), ("x-ignore-pad", &big)], b"data");
    let e = parse_split(&body, &[]).unwrap_err();
    assert_eq!(e.code, S3ErrorCode::MaxPostPreDataLengthExceeded);
    // Split or not, the bound holds.
    let e = parse_split(&body, &[100, 5000]).unwrap_err();
    assert_eq!(e.code, S3ErrorCode::MaxPostPreDataLengthExceeded);
}

#[test]
fn file_stream_holds_back_what_may_be_a_delimiter() {
    let mut f = FileStream::new(B);
    let out = f.push(b"abc\r\n--").unwrap();
    assert_eq!(&out[..], b"");
    let out = f.push(&[b'x'; 40]).unwrap();
    let mut seen = out.to_vec();
    seen.extend_from_slice(&f.push(format!("\r\n--{B}--").as_bytes()).unwrap());
    assert!(f.file_ended());
    f.finish().unwrap();
    let mut want = b"abc\r\n--".to_vec();
    want.extend_from_slice(&[b'x'; 40]);
    assert_eq!(seen, want);
}

#[test]
fn quoted_parameters() {
    let p: Vec<(String, String)> =
        split_params(" form-data; name=\"a\\\"b\"; filename=\"x;y.txt\"; other=plain").collect();
    assert_eq!(p[1], ("name".into(), "a\"b".into()));
    assert_eq!(p[2], ("filename".into(), "x;y.txt".into()));
    assert_eq!(p[3], ("other".into(), "plain".into()));
}
