//! Targets `xml`, `policy` and `config`: the documents s3gate reads.

use super::*;

// ---------------------------------------------------------------------------
// XML

/// `<Object>` entries as a conforming XML 1.0 processor reads them (line
/// ends normalized before parsing, XML 1.0 §2.11), or None when the
/// document is not one it reads.
fn reference_delete_entries(xml: &[u8]) -> Option<Vec<(String, Option<String>)>> {
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut text = String::new();
    let mut current: Option<(Option<String>, Option<String>)> = None;
    loop {
        match reader.read_event_into(&mut buf).ok()? {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_vec();
                if name == b"Object" && path.len() == 1 {
                    current = Some((None, None));
                }
                path.push(name);
                text.clear();
            }
            Event::End(_) => {
                let name = path.pop()?;
                match (name.as_slice(), path.len(), current.as_mut()) {
                    (b"Key", 2, Some(c)) => c.0 = Some(std::mem::take(&mut text)),
                    (b"VersionId", 2, Some(c)) => c.1 = Some(std::mem::take(&mut text)),
                    (b"Object", 1, _) => {
                        let (k, v) = current.take()?;
                        out.push((k?, v));
                    }
                    _ => {}
                }
            }
            Event::Text(t) => text.push_str(&t.xml10_content().ok()?),
            Event::CData(t) => {
                let s = std::str::from_utf8(&t).ok()?;
                text.push_str(&s.replace("\r\n", "\n").replace('\r', "\n"));
            }
            Event::GeneralRef(r) => {
                let name = std::str::from_utf8(&r).ok()?;
                let c = match name {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    n => n
                        .strip_prefix("#x")
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                        .or_else(|| n.strip_prefix('#').and_then(|d| d.parse().ok()))
                        .and_then(char::from_u32)?,
                };
                text.push(c);
            }
            Event::Eof => return Some(out),
            _ => {}
        }
        buf.clear();
    }
}

/// Target `xml`: the DeleteObjects body (and the document the gateway
/// writes for the upstream from it, which must name the same keys for a
/// conforming XML reader), and the readers of upstream replies
/// (InitiateMultipartUploadResult, ListPartsResult, Error, DeleteResult).
pub fn xml(data: &[u8]) {
    if let Ok(d) = crate::s3::delete::parse(data) {
        let entries: Vec<&crate::s3::delete::DeleteEntry> = d.objects.iter().collect();
        let rendered = crate::s3::delete::render(d.quiet, &entries);
        let again = crate::s3::delete::parse(rendered.as_bytes())
            .unwrap_or_else(|e| panic!("the rendered Delete document was refused: {e}"));
        assert_eq!(again, d, "the rendered Delete document reads differently");
        let decided: Vec<(String, Option<String>)> = d
            .objects
            .iter()
            .map(|o| (o.key.clone(), o.version_id.clone()))
            .collect();
        let upstream = reference_delete_entries(rendered.as_bytes())
            .unwrap_or_else(|| panic!("the rendered Delete document is not XML: {rendered:?}"));
        // A carriage return in a key (raw, or `&#13;`) is rendered as
        // `&#13;` (fuzz/regressions/xml), so an XML 1.0 reader upstream reads
        // the key that was decided.
        assert_eq!(
            upstream, decided,
            "an XML 1.0 reader upstream reads other keys than were decided"
        );
        let errors = crate::s3::delete::render_errors(
            &entries
                .iter()
                .map(|e| (*e, "AccessDenied", "Access Denied"))
                .collect::<Vec<_>>(),
        );
        let merged = crate::s3::delete::merge_result(None, &errors);
        assert!(merged.is_some());
    }
    let _ = crate::s3::delete::merge_result(Some(data), "<Error><Key>k</Key></Error>");
    let _ = crate::s3::xml::first_text(data, "UploadId");
    let _ = crate::s3::xml::first_text(data, "Code");
    let _ = crate::s3::xml::list_parts(data);
    let _ = crate::s3::xml::all_text(data, "Key", 1000);
}

// ---------------------------------------------------------------------------
// Policies and configuration

/// Target `policy`: a policy file (YAML, or IAM JSON) as `s3gate check`
/// reads it; when it parses, its `Tests:` run and a few requests are
/// decided.
pub fn policy(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    static KNOWN: OnceLock<HashSet<String>> = OnceLock::new();
    let known = KNOWN.get_or_init(|| ["example", "alice", "bob"].map(String::from).into());
    let _ = crate::policy::parse::parse_file(Path::new("fuzz.json"), src, Some(known));
    let Ok(p) = crate::policy::parse::parse_file(Path::new("fuzz.yaml"), src, None) else {
        return;
    };
    let names: Vec<String> = known.iter().cloned().collect();
    let set = crate::policy::PolicySet::new(p.statements, p.tests, &names);
    let _ = crate::policy::testing::run(&set);
    let ctx: crate::policy::condition::ContextKeys = [
        ("aws:sourceip", "10.1.2.3"),
        ("aws:securetransport", "true"),
        ("s3:prefix", "home/alice/"),
        ("aws:currenttime", "2026-01-01T00:00:00Z"),
        ("s3:signatureversion", "AWS4-HMAC-SHA256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
    .collect();
    for (who, action, resource) in [
        (
            "alice",
            "s3:GetObject",
            "arn:aws:s3:::bucket/home/alice/a.txt",
        ),
        ("bob", "s3:PutObject", "arn:aws:s3:::bucket/x"),
        ("anonymous", "s3:ListBucket", "arn:aws:s3:::bucket"),
    ] {
        let need = crate::policy::actions::Need {
            action,
            resource: resource.to_string(),
        };
        let _ = set.decide_one(who, &need, &ctx);
    }
}

/// Target `config`: the gateway's configuration file, as `s3gate check`
/// reads it.
pub fn config(data: &[u8]) {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    // `{ file: ... }` secrets are read from disk: keep the fuzzer away from
    // device files and the like (it would hang on /dev/zero), and from
    // escapes that could spell them.
    if ["dev", "proc", "sys", "fd", "\\"]
        .iter()
        .any(|w| src.contains(w))
        && src.contains("file")
    {
        return;
    }
    let _ = crate::config::parse(Path::new("fuzz.yaml"), src);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_bodies_round_trip_in_every_mode() {
        for flags in 5..8u8 {
            for alg in 0..7u8 {
                let mut d = vec![flags, alg, 3, 4];
                d.extend((0..700u32).map(|i| i as u8));
                aws_chunked(&d);
            }
        }
    }

    #[test]
    fn documentation_examples_parse() {
        round_trip(
            b"GET /bkt/a%20b?versionId=3&response-content-type=text%2Fplain\nHost: localhost\n",
        );
        round_trip(
            b"PUT /k\nHost: bkt.s3.example.com\nx-amz-copy-source: /src/a%2Bb?versionId=v1\n",
        );
    }
}
