//! Stage 1: name the S3 operation. Addressing (path or virtual-hosted),
//! the query, and the headers that must be unambiguous before anything
//! else reads them.

use super::view::RequestView;
use crate::s3::addressing::address;
use crate::s3::{err, Addressed, Query, S3ErrorCode, S3Request, S3Result};

/// The request named, and its query as sent (the verifiers need it).
pub struct Parsed {
    pub request: S3Request,
    pub query: Query,
    pub addr: Addressed,
}

pub fn parse(view: &RequestView<'_>, hostnames: &[String]) -> S3Result<Parsed> {
    let query = Query::parse(view.raw_query).ok_or_else(|| {
        err(
            S3ErrorCode::InvalidArgument,
            "The query string is not valid UTF-8",
        )
    })?;
    let addr = address(view.host, view.raw_path, hostnames)?;
    check_headers(view.headers)?;
    let copy_source = view.header("x-amz-copy-source");
    let request = S3Request::parse(view.method, &addr, &query, copy_source)?;
    if request.payer_in_query.is_some() && view.header("x-amz-request-payer").is_some() {
        // One value, decided and forwarded alike.
        return Err(err(
            S3ErrorCode::InvalidArgument,
            "x-amz-request-payer is given both as a header and in the query",
        ));
    }
    Ok(Parsed {
        request,
        query,
        addr,
    })
}

/// Every `x-amz-*` header must be visible ASCII and appear once: a value
/// the verifier and the re-signer would read differently, or a second
/// copy the upstream might prefer, must not reach the upstream. The same
/// holds for the framing headers the body stage relies on.
fn check_headers(headers: &http::HeaderMap) -> S3Result<()> {
    for (name, value) in headers {
        // A value that is not UTF-8 would be read one way by the verifier
        // (lossily) and sent another way; SigV2 reads a non-ASCII
        // Content-Type or Content-MD5 as empty.
        let n = name.as_str();
        let ascii_only = matches!(n, "content-type" | "content-md5");
        if std::str::from_utf8(value.as_bytes()).is_err() || (ascii_only && value.to_str().is_err())
        {
            return Err(err(
                S3ErrorCode::InvalidArgument,
                format!("The header {n} is not valid text"),
            ));
        }
    }
    for name in headers.keys() {
        let n = name.as_str();
        let checked = n.starts_with("x-amz-")
            || matches!(
                n,
                "host" | "content-length" | "content-md5" | "content-encoding" | "expect"
            );
        if !checked {
            continue;
        }
        let mut values = headers.get_all(name).iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(err(
                S3ErrorCode::InvalidArgument,
                format!("The header {n} appears more than once"),
            ));
        }
        if first.is_some_and(|v| v.to_str().is_err()) {
            return Err(err(
                S3ErrorCode::InvalidArgument,
                format!("The header {n} must be ASCII (encode non-ASCII metadata, e.g. RFC 2047)"),
            ));
        }
    }
    Ok(())
}
