use super::*;

const B: &str = "xyz";

fn body(file: &[u8]) -> Vec<u8> {
    let mut b = file.to_vec();
    b.extend_from_slice(b"\r\n--xyz--\r\n");
    b
}

fn run(form: &mut FormBody, pieces: &[&[u8]]) -> S3Result<Vec<u8>> {
    let mut out = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        let eos = i + 1 == pieces.len();
        out.extend_from_slice(&form.next(Some(Bytes::copy_from_slice(p)), eos)?.0);
    }
    Ok(out)
}

#[test]
fn the_last_piece_waits_for_the_closing_boundary() {
    let whole = body(b"0123456789");
    let mut f = FormBody::new(B, Bytes::copy_from_slice(&whole[..4]), None);
    // The first output is held back, not released.
    let (first, _) = f
        .next(Some(Bytes::copy_from_slice(&whole[4..12])), false)
        .unwrap();
    assert!(first.is_empty());
    let (rest, _) = f
        .next(Some(Bytes::copy_from_slice(&whole[12..])), true)
        .unwrap();
    assert_eq!(&rest[..], b"0123456789");
}

#[test]
fn sizes_outside_the_range_are_refused() {
    let whole = body(&[7u8; 100]);
    let mut f = FormBody::new(B, Bytes::new(), Some((0, 50)));
    let e = run(&mut f, &[&whole[..60], &whole[60..]]).unwrap_err();
    assert_eq!(e.code, S3ErrorCode::EntityTooLarge);
    let mut f = FormBody::new(B, Bytes::new(), Some((200, 500)));
    let e = run(&mut f, &[&whole]).unwrap_err();
    assert_eq!(e.code, S3ErrorCode::EntityTooSmall);
    let mut f = FormBody::new(B, Bytes::new(), Some((100, 100)));
    assert_eq!(run(&mut f, &[&whole]).unwrap().len(), 100);
    let f = FormBody::new(B, Bytes::copy_from_slice(&whole), None);
    assert_eq!(f.whole().unwrap().len(), 100);
}

#[test]
fn a_form_that_does_not_close_never_completes() {
    let mut f = FormBody::new(B, Bytes::new(), None);
    let e = run(&mut f, &[b"data without end", b"more"]).unwrap_err();
    assert_eq!(e.code, S3ErrorCode::IncompleteBody);
}

#[test]
fn fields_become_object_headers() {
    let f = |l: &[(&str, &str)]| -> Vec<(String, String)> {
        l.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let h = upstream_headers(&f(&[
        ("key", "k"),
        ("acl", "private"),
        ("X-Amz-Meta-Tag", "t"),
        ("policy", "p"),
    ]))
    .unwrap();
    let names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["x-amz-acl", "x-amz-meta-tag", "content-type"]);
    assert!(upstream_headers(&f(&[("x-amz-meta-a", "line\r\nbreak")])).is_err());
    assert!(upstream_headers(&f(&[("x-amz-meta-a b", "v")])).is_err());
    assert!(upstream_headers(&f(&[("acl", "a"), ("ACL", "b")])).is_err());
}

/// A form as a client sends it: `before` (preamble, fields, the file
/// part's headers), the file, the closing delimiter.
fn whole_form(boundary: &str, file: &[u8], crlf: bool) -> (Vec<u8>, u64) {
    let mut b = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n"
    )
    .into_bytes();
    let before = b.len() as u64;
    b.extend_from_slice(file);
    b.extend_from_slice(format!("\r\n--{boundary}--").as_bytes());
    if crlf {
        b.extend_from_slice(b"\r\n");
    }
    (b, before)
}

#[test]
fn the_file_length_follows_from_the_content_length() {
    // Odd boundaries: one character, seventy, spaces and dashes, and a
    // file that holds a near-delimiter.
    let long = "-".repeat(70);
    for boundary in ["x", "a b", long.as_str(), "----WebKitFormBoundaryAbC123"] {
        let near = format!("\r\n-{boundary}\r\n--{}", &boundary[..boundary.len() - 1]);
        for file in [&b""[..], b"0", b"\r\n", near.as_bytes(), &[0u8; 1000][..]] {
            for crlf in [true, false] {
                let (body, before) = whole_form(boundary, file, crlf);
                let n = file_length(body.len() as u64, before, boundary, crlf).unwrap();
                assert_eq!(n, file.len() as u64, "{boundary:?} {crlf}");
            }
            // Streamed with the announced length: the CRLF-closed form passes
            // in any cut, the same file without the CRLF does not.
            let (body, before) = whole_form(boundary, file, true);
            let n = file_length(body.len() as u64, before, boundary, true).unwrap();
            let rest = &body[before as usize..];
            for cut in [0, rest.len() / 2, rest.len()] {
                let mut f = FormBody::new(boundary, Bytes::copy_from_slice(&rest[..cut]), None)
                    .expect(n)
                    .unwrap();
                assert_eq!(run(&mut f, &[&rest[cut..]]).unwrap(), file);
            }
            let (bare, before) = whole_form(boundary, file, false);
            let e = file_length(bare.len() as u64, before, boundary, true).and_then(|n| {
                let mut f = FormBody::new(boundary, Bytes::new(), None).expect(n)?;
                run(&mut f, &[&bare[before as usize..]])
            });
            assert_eq!(
                e.map_err(|e| e.code).err(),
                Some(S3ErrorCode::MalformedPOSTRequest)
            );
        }
    }
    // A Content-Length too small for the form.
    let e = file_length(10, 8, "xyz", true).unwrap_err();
    assert_eq!(e.code, S3ErrorCode::MalformedPOSTRequest);
    assert!(file_length(5, 8, "xyz", true).is_err());
    assert_eq!(file_length(8 + 11, 8, "xyz", true).unwrap(), 0);
    assert_eq!(closing_len("xyz", true), 11);
    assert_eq!(closing_len("xyz", false), 9);
}

#[test]
fn a_streamed_form_holds_to_its_announced_length() {
    // Epilogue or fields after the file: refused, nothing more released.
    let mut b = b"data".to_vec();
    b.extend_from_slice(b"\r\n--xyz--\r\nepilogue");
    let mut f = FormBody::new(B, Bytes::new(), None).expect(4).unwrap();
    let e = run(&mut f, &[&b[..3], &b[3..]]).unwrap_err();
    assert_eq!(e.code, S3ErrorCode::MalformedPOSTRequest);
    // A file longer than announced is refused before its end is released.
    let whole = body(b"0123456789");
    let mut f = FormBody::new(B, Bytes::new(), None).expect(5).unwrap();
    let (out, _) = f
        .next(Some(Bytes::copy_from_slice(&whole[..10])), false)
        .unwrap_or_default();
    assert!(out.len() <= 5);
    assert!(f
        .next(Some(Bytes::copy_from_slice(&whole[10..])), true)
        .is_err());
    // Shorter than announced: the end is refused.
    let mut f = FormBody::new(B, Bytes::new(), None).expect(11).unwrap();
    assert!(run(&mut f, &[&whole]).is_err());
    // An announced length outside the policy's range is refused at once.
    let e = FormBody::new(B, Bytes::new(), Some((0, 9)))
        .expect(10)
        .err()
        .map(|e| e.code);
    assert_eq!(e, Some(S3ErrorCode::EntityTooLarge));
    let e = FormBody::new(B, Bytes::new(), Some((11, 20)))
        .expect(10)
        .err()
        .map(|e| e.code);
    assert_eq!(e, Some(S3ErrorCode::EntityTooSmall));
}
