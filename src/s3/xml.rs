//! Reading the few values the gateway needs from S3 XML documents.

use quick_xml::events::Event;
use quick_xml::Reader;

/// The text of the first element named `tag` (e.g. `UploadId`, `Code`).
pub fn first_text(xml: &[u8], tag: &str) -> Option<String> {
    all_text(xml, tag, 1).into_iter().next()
}

/// The texts of up to `max` elements named `tag`, in document order.
pub fn all_text(xml: &[u8], tag: &str, max: usize) -> Vec<String> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    // The text of the element being read; entities arrive as separate events.
    let mut current: Option<String> = None;
    let mut out = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) if e.local_name().as_ref() == tag.as_bytes() => {
                current = Some(String::new())
            }
            Ok(Event::End(e)) if e.local_name().as_ref() == tag.as_bytes() => {
                if let Some(text) = current.take() {
                    out.push(text);
                    if out.len() >= max {
                        return out;
                    }
                }
            }
            Ok(Event::Text(t)) => {
                if let (Some(cur), Ok(s)) = (current.as_mut(), t.decode()) {
                    cur.push_str(&s);
                }
            }
            Ok(Event::GeneralRef(r)) => {
                if let Some(cur) = current.as_mut() {
                    let name = String::from_utf8_lossy(r.as_ref()).to_string();
                    let c = match name.as_str() {
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
                    };
                    if let Some(c) = c {
                        cur.push(c);
                    }
                }
            }
            Ok(Event::Eof) | Err(_) => return out,
            _ => {}
        }
        buf.clear();
    }
}

/// Sizes of the `<Part>` entries of a ListPartsResult, and whether it is truncated.
pub fn list_parts(xml: &[u8]) -> (Vec<u64>, bool) {
    let sizes = all_text(xml, "Size", usize::MAX)
        .iter()
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let truncated = first_text(xml, "IsTruncated").is_some_and(|t| t.trim() == "true");
    (sizes, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_upload_id_and_parts() {
        let x = br#"<?xml version="1.0"?><InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>k</Key><UploadId>a&amp;b~1</UploadId></InitiateMultipartUploadResult>"#;
        assert_eq!(first_text(x, "UploadId").as_deref(), Some("a&b~1"));
        let p = br#"<ListPartsResult><IsTruncated>false</IsTruncated><Part><PartNumber>1</PartNumber><Size>5242880</Size></Part><Part><PartNumber>2</PartNumber><Size>10</Size></Part></ListPartsResult>"#;
        assert_eq!(list_parts(p), (vec![5242880, 10], false));
        assert_eq!(
            first_text(b"<Error><Code>NoSuchUpload</Code></Error>", "Code").as_deref(),
            Some("NoSuchUpload")
        );
    }
}
