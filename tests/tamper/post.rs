//! POST Object's file part through the recording upstream.

use std::time::Duration;

use super::{common, exchange_staged, host, setup, signer, BUCKET, LEN};
use common::data;

/// POST Object: the file part has no hash of its own; the form must end
/// (the closing delimiter right after the file) before the upstream PUT
/// completes. Cut mid-file, right after the file, and inside the closing
/// delimiter, after the upstream has all but the held-back piece.
#[test]
fn post_object_cut_short_never_completes_upstream() {
    let rec = &setup().recorder;
    let d = data(LEN, 9);
    let boundary = "----tamperFormBoundary7";
    for cut in [
        None,
        Some("mid-file"),
        Some("after-file"),
        Some("in-delimiter"),
    ] {
        let key = common::unique(&format!("post-{}", cut.unwrap_or("control")));
        let fields = signer().post_fields(BUCKET, &key, &[]);
        let mut body = common::raw::form_open(boundary, &fields, "f.bin");
        let file_end = body.len() + d.len();
        body.extend_from_slice(&d);
        body.extend_from_slice(&common::raw::form_close(boundary));
        let headers = vec![
            ("host".to_string(), host()),
            (
                "content-type".to_string(),
                format!("multipart/form-data; boundary={boundary}"),
            ),
            ("content-length".to_string(), body.len().to_string()),
        ];
        let at = match cut {
            None => None,
            Some("mid-file") => Some(file_end - d.len() / 2),
            Some("after-file") => Some(file_end),
            Some("in-delimiter") => Some(file_end + 5),
            // `\r\n--boundary` arrived, its closing `--` did not.
            _ => Some(file_end + 4 + boundary.len()),
        };
        let stage = (cut != Some("mid-file")).then_some((file_end, key.as_str()));
        let r = exchange_staged(&format!("/{BUCKET}"), &headers, &body, at, stage);
        let got = rec.settled(&format!("/{key}"), Duration::from_secs(20));
        let put: Vec<_> = got.iter().filter(|r| r.method == "PUT").collect();
        if cut.is_none() {
            assert!(
                (200..300).contains(&r.status),
                "POST control: {} {}",
                r.status,
                r.body
            );
            assert!(
                put.len() == 1 && put[0].complete && put[0].body == d,
                "POST control"
            );
            continue;
        }
        assert!(
            r.status == 0 || r.code().as_deref() == Some("IncompleteBody"),
            "POST {cut:?}: {} {}",
            r.status,
            r.body
        );
        for u in put {
            assert!(
                !u.complete,
                "POST {cut:?}: the upstream received the whole file"
            );
        }
    }
}
