//! The DeleteObjects body (`<Delete>`): read so that every key is decided
//! on its own, and written again with only the keys that were allowed.
//! S3 limits a request to 1,000 keys (MalformedXML beyond).

use quick_xml::events::Event;
use quick_xml::Reader;

use super::error::{err, xml_escape_into, S3Result};
use super::operation::check_key;
use super::S3ErrorCode;

/// S3's limit on keys per DeleteObjects request.
pub const MAX_KEYS: usize = 1000;

/// The largest `<Delete>` document read: 1,000 keys of 1 KiB, escaped.
pub const MAX_BODY: usize = 8 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteEntry {
    pub key: String,
    pub version_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteRequest {
    pub quiet: bool,
    pub objects: Vec<DeleteEntry>,
}

fn malformed(why: &str) -> super::S3Error {
    err(
        S3ErrorCode::MalformedXML,
        format!("The XML you provided was not well-formed or did not validate against our published schema ({why})"),
    )
}

/// Where the reader is in the document.
#[derive(PartialEq, Eq, Clone, Copy)]
enum At {
    Top,
    Delete,
    Object,
    Field(Field),
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Field {
    Quiet,
    Key,
    VersionId,
    Other,
}

pub fn parse(xml: &[u8]) -> S3Result<DeleteRequest> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out = DeleteRequest::default();
    let mut at = At::Top;
    let mut text = String::new();
    let mut current: Option<(Option<String>, Option<String>)> = None;
    let mut saw_delete = false;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| malformed(&format!("not well-formed ({e})")))?;
        match event {
            Event::Start(e) => {
                let name = e.local_name();
                at = match (at, name.as_ref()) {
                    (At::Top, b"Delete") if !saw_delete => {
                        saw_delete = true;
                        At::Delete
                    }
                    (At::Delete, b"Object") => {
                        if out.objects.len() >= MAX_KEYS {
                            return Err(malformed("more than 1000 keys"));
                        }
                        current = Some((None, None));
                        At::Object
                    }
                    (At::Delete, b"Quiet") => At::Field(Field::Quiet),
                    (At::Object, b"Key") => At::Field(Field::Key),
                    (At::Object, b"VersionId") => At::Field(Field::VersionId),
                    // ETag, LastModifiedTime, Size: conditions S3 may check.
                    (At::Object, _) => At::Field(Field::Other),
                    _ => return Err(malformed("unexpected element")),
                };
                text.clear();
            }
            Event::Empty(e) => match (at, e.local_name().as_ref()) {
                (At::Object, b"Key") => return Err(malformed("empty Key")),
                (At::Object, b"VersionId") => return Err(malformed("empty VersionId")),
                (At::Delete, b"Object") => return Err(malformed("Object without Key")),
                (At::Delete | At::Object, _) => {}
                _ => return Err(malformed("unexpected element")),
            },
            Event::Text(t) => {
                if let At::Field(_) = at {
                    let s = t
                        .decode()
                        .map_err(|e| malformed(&format!("bad text ({e})")))?;
                    text.push_str(&s);
                } else if !t.iter().all(u8::is_ascii_whitespace) {
                    return Err(malformed("unexpected text"));
                }
            }
            Event::CData(t) => {
                if let At::Field(_) = at {
                    let s = std::str::from_utf8(&t)
                        .map_err(|e| malformed(&format!("bad text ({e})")))?;
                    text.push_str(s);
                } else {
                    return Err(malformed("unexpected text"));
                }
            }
            Event::GeneralRef(r) => {
                if let At::Field(_) = at {
                    let c = entity(&r).ok_or_else(|| malformed("unknown entity"))?;
                    text.push(c);
                } else {
                    return Err(malformed("unexpected entity"));
                }
            }
            Event::End(_) => {
                at = match at {
                    At::Field(f) => {
                        let value = std::mem::take(&mut text);
                        match (f, current.as_mut()) {
                            (Field::Quiet, _) => {
                                out.quiet = match value.trim() {
                                    "true" => true,
                                    "false" => false,
                                    _ => return Err(malformed("Quiet must be true or false")),
                                };
                                At::Delete
                            }
                            (Field::Key, Some(cur)) if cur.0.is_none() => {
                                cur.0 = Some(value);
                                At::Object
                            }
                            (Field::VersionId, Some(cur)) if cur.1.is_none() => {
                                if value.is_empty() {
                                    return Err(malformed("empty VersionId"));
                                }
                                cur.1 = Some(value);
                                At::Object
                            }
                            (Field::Other, Some(_)) => At::Object,
                            _ => return Err(malformed("repeated element")),
                        }
                    }
                    At::Object => {
                        let Some((Some(key), version_id)) = current.take() else {
                            return Err(malformed("Object without Key"));
                        };
                        check_key(&key)?;
                        // Other C0 controls cannot be written back as XML 1.0.
                        if key
                            .chars()
                            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
                        {
                            return Err(malformed("a Key holds a control character"));
                        }
                        out.objects.push(DeleteEntry { key, version_id });
                        At::Delete
                    }
                    At::Delete => At::Top,
                    At::Top => return Err(malformed("unexpected end")),
                };
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
        buf.clear();
    }
    if !saw_delete || at != At::Top {
        return Err(malformed("no complete Delete element"));
    }
    if out.objects.is_empty() {
        return Err(malformed("no Object to delete"));
    }
    Ok(out)
}

fn entity(r: &[u8]) -> Option<char> {
    let name = std::str::from_utf8(r).ok()?;
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        n => n
            .strip_prefix("#x")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .or_else(|| n.strip_prefix('#').and_then(|d| d.parse().ok()))
            .and_then(char::from_u32),
    }
}

/// The `<Delete>` document for `objects`.
pub fn render(quiet: bool, objects: &[&DeleteEntry]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    if quiet {
        s.push_str("<Quiet>true</Quiet>");
    }
    for o in objects {
        s.push_str("<Object><Key>");
        xml_escape_into(&mut s, &o.key);
        s.push_str("</Key>");
        if let Some(v) = &o.version_id {
            s.push_str("<VersionId>");
            xml_escape_into(&mut s, v);
            s.push_str("</VersionId>");
        }
        s.push_str("</Object>");
    }
    s.push_str("</Delete>");
    s
}

/// The `<Error>` entries of keys the gateway refused.
pub fn render_errors(refused: &[(&DeleteEntry, &str, &str)]) -> String {
    let mut s = String::new();
    for (o, code, message) in refused {
        s.push_str("<Error><Key>");
        xml_escape_into(&mut s, &o.key);
        s.push_str("</Key>");
        if let Some(v) = &o.version_id {
            s.push_str("<VersionId>");
            xml_escape_into(&mut s, v);
            s.push_str("</VersionId>");
        }
        s.push_str("<Code>");
        s.push_str(code);
        s.push_str("</Code><Message>");
        xml_escape_into(&mut s, message);
        s.push_str("</Message></Error>");
    }
    s
}

/// Add the gateway's per-key errors to an upstream `<DeleteResult>` (or
/// make a whole one when nothing went upstream).
pub fn merge_result(upstream: Option<&[u8]>, errors: &str) -> Option<String> {
    const CLOSE: &str = "</DeleteResult>";
    match upstream {
        None => Some(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{errors}</DeleteResult>"
        )),
        Some(body) => {
            let text = std::str::from_utf8(body).ok()?;
            if let Some(i) = text.rfind(CLOSE) {
                return Some(format!("{}{errors}{}", &text[..i], &text[i..]));
            }
            // `<DeleteResult/>`: nothing deleted and nothing reported.
            let i = text.rfind("<DeleteResult")?;
            let rest = &text[i..];
            let end = rest.find("/>")?;
            Some(format!(
                "{}{}>{errors}{CLOSE}{}",
                &text[..i],
                &rest[..end],
                &rest[end + 2..]
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_api_reference_example() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Quiet>true</Quiet>
  <Object><Key>sample1.txt</Key></Object>
  <Object><Key>a &amp; b</Key><VersionId>v1</VersionId><ETag>"x"</ETag></Object>
</Delete>"#;
        let d = parse(xml).unwrap();
        assert!(d.quiet);
        assert_eq!(d.objects.len(), 2);
        assert_eq!(d.objects[1].key, "a & b");
        assert_eq!(d.objects[1].version_id.as_deref(), Some("v1"));
        let again =
            parse(render(d.quiet, &d.objects.iter().collect::<Vec<_>>()).as_bytes()).unwrap();
        assert_eq!(again, d);
    }

    #[test]
    fn refuses_what_is_not_a_delete() {
        for bad in [
            &b"<Delete></Delete>"[..],
            b"<Delete><Object></Object></Delete>",
            b"<Delete><Object><Key>a</Key><Key>b</Key></Object></Delete>",
            b"<Delete><Object><Key>a</Key></Object>",
            b"<Other><Object><Key>a</Key></Object></Other>",
            b"<Delete><Object><Key>a</Key></Object></Delete><Delete/>",
            b"<Delete><Quiet>maybe</Quiet><Object><Key>a</Key></Object></Delete>",
            b"<Delete><Object><Key>/a</Key></Object></Delete>",
            b"<Delete><Object><Key>a</Key><VersionId></VersionId></Object></Delete>",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let mut many = String::from("<Delete>");
        for i in 0..=MAX_KEYS {
            many.push_str(&format!("<Object><Key>k{i}</Key></Object>"));
        }
        many.push_str("</Delete>");
        assert_eq!(
            parse(many.as_bytes()).unwrap_err().code,
            S3ErrorCode::MalformedXML
        );
    }

    #[test]
    fn line_ends_survive_the_round_trip() {
        // An XML parser normalises raw CR LF to LF: the rendered body must
        // name exactly the key that was decided.
        let d = parse(b"<Delete><Object><Key>a&#13;&#10;b\tc</Key></Object></Delete>").unwrap();
        assert_eq!(d.objects[0].key, "a\r\nb\tc");
        let rendered = render(false, &d.objects.iter().collect::<Vec<_>>());
        assert!(rendered.contains("a&#13;&#10;b&#9;c"), "{rendered}");
        assert_eq!(parse(rendered.as_bytes()).unwrap(), d);
        assert!(parse(b"<Delete><Object><Key>a&#1;b</Key></Object></Delete>").is_err());
    }

    #[test]
    fn merges_errors() {
        let e = DeleteEntry {
            key: "k<".into(),
            version_id: None,
        };
        let errs = render_errors(&[(&e, "AccessDenied", "Access Denied")]);
        let m = merge_result(
            Some(b"<DeleteResult><Deleted><Key>a</Key></Deleted></DeleteResult>"),
            &errs,
        )
        .unwrap();
        assert!(m.contains("</Deleted><Error><Key>k&lt;</Key><Code>AccessDenied</Code>"));
        let m = merge_result(Some(b"<?xml?><DeleteResult xmlns=\"x\"/>"), &errs).unwrap();
        assert!(m.ends_with("</Error></DeleteResult>"), "{m}");
        assert!(merge_result(None, &errs).unwrap().contains("<DeleteResult"));
    }
}
