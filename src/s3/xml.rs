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

/// One `<Upload>` of a ListMultipartUploadsResult.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedUpload {
    pub key: String,
    pub upload_id: String,
    /// `Initiated` as written (RFC 3339).
    pub initiated: String,
}

/// A page of ListMultipartUploads: the uploads, and the markers of the
/// next page when the listing is truncated. None when the entries do not
/// line up (an upload without its key, id or date).
pub struct UploadsPage {
    pub uploads: Vec<ListedUpload>,
    pub next: Option<(String, String)>,
}

pub fn list_uploads(xml: &[u8]) -> Option<UploadsPage> {
    let keys = all_text(xml, "Key", usize::MAX);
    let ids = all_text(xml, "UploadId", usize::MAX);
    let dates = all_text(xml, "Initiated", usize::MAX);
    if keys.len() != ids.len() || ids.len() != dates.len() {
        return None;
    }
    let uploads = keys
        .into_iter()
        .zip(ids)
        .zip(dates)
        .map(|((key, upload_id), initiated)| ListedUpload {
            key,
            upload_id,
            initiated,
        })
        .collect();
    let truncated = first_text(xml, "IsTruncated").is_some_and(|t| t.trim() == "true");
    let next = match (
        truncated,
        first_text(xml, "NextKeyMarker"),
        first_text(xml, "NextUploadIdMarker"),
    ) {
        (true, Some(k), id) => Some((k, id.unwrap_or_default())),
        _ => None,
    };
    Some(UploadsPage { uploads, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_page_of_uploads() {
        // The example of the ListMultipartUploads reference, shortened.
        let x = br#"<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>bucket</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><NextKeyMarker>my-movie.m2ts</NextKeyMarker><NextUploadIdMarker>YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ</NextUploadIdMarker><MaxUploads>3</MaxUploads><IsTruncated>true</IsTruncated><Upload><Key>my-divisor</Key><UploadId>XMgbGlrZSBlbHZpbmcncyBub3QgaGF2aW5nIG11Y2ggbHVjaw</UploadId><Initiator><ID>arn:aws:iam::111122223333:user/user1-11111a31-17b5-4fb7-9df5-b111111f13de</ID><DisplayName>user1-11111a31-17b5-4fb7-9df5-b111111f13de</DisplayName></Initiator><StorageClass>STANDARD</StorageClass><Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload><Upload><Key>my-movie.m2ts</Key><UploadId>YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ</UploadId><Initiated>2010-11-10T20:48:33.000Z</Initiated></Upload></ListMultipartUploadsResult>"#;
        let page = list_uploads(x).unwrap();
        assert_eq!(page.uploads.len(), 2);
        assert_eq!(page.uploads[1].key, "my-movie.m2ts");
        assert_eq!(page.uploads[0].initiated, "2010-11-10T20:48:33.000Z");
        assert_eq!(
            page.next,
            Some((
                "my-movie.m2ts".to_string(),
                "YW55IGlkZWEgd2h5IGVsdmluZydzIHVwbG9hZCBmYWlsZWQ".to_string()
            ))
        );
        let last = list_uploads(b"<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>").unwrap();
        assert!(last.uploads.is_empty() && last.next.is_none());
        assert!(list_uploads(b"<R><Upload><Key>k</Key></Upload></R>").is_none());
    }

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
