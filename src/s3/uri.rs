//! Percent-encoding as S3's SigV4 canonical form wants it, and query parsing.
//!
//! S3 differs from other AWS services: the path is encoded once and never
//! normalized, so `//`, `.` and `..` are part of the key (docs/s3-wire.md).

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but the unreserved set `A-Z a-z 0-9 - _ . ~` is encoded.
const URI_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The same, keeping `/` (for object keys in paths).
const PATH_ENCODE: &AsciiSet = &URI_ENCODE.remove(b'/');

/// Encode a query name or value canonically.
pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, URI_ENCODE).to_string()
}

/// Encode a path (bucket and key) canonically, keeping `/`.
pub fn encode_path(s: &str) -> String {
    utf8_percent_encode(s, PATH_ENCODE).to_string()
}

/// Decode a path as sent by a client. Invalid UTF-8 is refused.
pub fn decode_path(raw: &str) -> Option<String> {
    percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// Decode a query component: `%XX` escapes and `+` as space (form style, as
/// S3 and the SDK signers read query strings).
pub fn decode_query_component(raw: &str) -> Option<String> {
    let replaced;
    let s = if raw.contains('+') {
        replaced = raw.replace('+', " ");
        replaced.as_str()
    } else {
        raw
    };
    percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// Query parameters that carry the client's authentication (SigV4 and
/// SigV2 presigned URLs): never forwarded upstream, nor logged.
pub fn is_auth_param(name: &str) -> bool {
    matches!(
        name,
        "X-Amz-Algorithm"
            | "X-Amz-Credential"
            | "X-Amz-Date"
            | "X-Amz-Expires"
            | "X-Amz-SignedHeaders"
            | "X-Amz-Signature"
            | "X-Amz-Security-Token"
            | "X-Amz-Content-Sha256"
            | "AWSAccessKeyId"
            | "Signature"
            | "Expires"
    )
}

/// A parsed query string, in the order received. Values are decoded; a
/// parameter without `=` has an empty value and `has_value == false`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub params: Vec<QueryParam>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParam {
    pub name: String,
    pub value: String,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Option<Query> {
        let mut params = Vec::new();
        let Some(raw) = raw else {
            return Some(Query { params });
        };
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (n, v) = match part.split_once('=') {
                Some((n, v)) => (n, v),
                None => (part, ""),
            };
            params.push(QueryParam {
                name: decode_query_component(n)?,
                value: decode_query_component(v)?,
            });
        }
        Some(Query { params })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.params.iter().any(|p| p.name == name)
    }

    /// Canonical query string: names and values encoded, sorted by name then
    /// value, excluding names for which `skip` is true.
    pub fn canonical(&self, skip: impl Fn(&str) -> bool) -> String {
        let mut pairs: Vec<(String, String)> = self
            .params
            .iter()
            .filter(|p| !skip(&p.name))
            .map(|p| (encode_component(&p.name), encode_component(&p.value)))
            .collect();
        pairs.sort();
        let mut out = String::new();
        for (i, (n, v)) in pairs.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(n);
            out.push('=');
            out.push_str(v);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_sigv4_for_s3() {
        assert_eq!(encode_path("a b/c+d=e%f~g"), "a%20b/c%2Bd%3De%25f~g");
        assert_eq!(encode_component("a/b c"), "a%2Fb%20c");
        assert_eq!(encode_path("ü"), "%C3%BC");
    }

    #[test]
    fn query_round_trip_sorted() {
        let q = Query::parse(Some("uploadId=x%2By&partNumber=2&x-id=UploadPart&uploads")).unwrap();
        assert_eq!(q.get("uploadId"), Some("x+y"));
        assert!(q.has("uploads"));
        assert_eq!(
            q.canonical(|_| false),
            "partNumber=2&uploadId=x%2By&uploads=&x-id=UploadPart"
        );
    }

    #[test]
    fn plus_in_query_is_space() {
        let q = Query::parse(Some("prefix=a+b")).unwrap();
        assert_eq!(q.get("prefix"), Some("a b"));
    }
}
