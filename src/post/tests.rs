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
