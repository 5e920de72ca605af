//! S3 errors the gateway itself answers with, each mapped to its S3 code and
//! HTTP status in one place, rendered as S3 error XML.

use std::fmt::Write as _;

/// Declares the codes once: the enum, its name and status, and `ALL`, so no
/// list of codes can miss one.
macro_rules! codes {
    ($($(#[$doc:meta])* $code:ident = $status:literal,)*) => {
        /// An S3 error code with the HTTP status S3 uses for it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum S3ErrorCode {
            $($(#[$doc])* $code,)*
        }

        impl S3ErrorCode {
            /// Every code the gateway answers with
            /// (tests/every_operation/codes.rs provokes each one).
            pub const ALL: &'static [S3ErrorCode] = &[$(S3ErrorCode::$code,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(S3ErrorCode::$code => stringify!($code),)*
                }
            }

            pub fn http_status(self) -> u16 {
                match self {
                    $(S3ErrorCode::$code => $status,)*
                }
            }
        }
    };
}

codes! {
    AccessDenied = 403,
    AccessForbidden = 403,
    AuthorizationHeaderMalformed = 400,
    AuthorizationQueryParametersError = 400,
    BadDigest = 400,
    EntityTooLarge = 400,
    EntityTooSmall = 400,
    IncompleteBody = 400,
    InternalError = 500,
    InvalidAccessKeyId = 403,
    InvalidArgument = 400,
    InvalidBucketName = 400,
    InvalidPolicyDocument = 400,
    InvalidRequest = 400,
    KeyTooLongError = 400,
    MalformedPOSTRequest = 400,
    MalformedXML = 400,
    MaxPostPreDataLengthExceeded = 400,
    MissingContentLength = 411,
    NoSuchBucket = 404,
    NoSuchUpload = 404,
    NotImplemented = 501,
    /// A request head larger than `limits.max_header_bytes`.
    RequestHeaderSectionTooLarge = 400,
    /// A request head not complete within `limits.request_head_timeout`.
    RequestTimeout = 400,
    RequestTimeTooSkewed = 403,
    ServiceUnavailable = 503,
    SignatureDoesNotMatch = 403,
    /// A listener at `limits.max_connections`.
    SlowDown = 503,
    XAmzContentSHA256Mismatch = 400,
    // S3 has no code of its own for a failing hop; these are the codes
    // S3-compatible proxies use and SDKs retry on.
    BadGateway = 502,
    GatewayTimeout = 504,
}

/// An error answered by the gateway: code, human message, the resource named.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct S3Error {
    pub code: S3ErrorCode,
    pub message: String,
    pub resource: Option<String>,
    /// The region requests must be signed for, sent with
    /// AuthorizationHeaderMalformed as S3 does: clients that do not know the
    /// region (s3cmd without `bucket_location`) read it and sign again.
    pub region: Option<String>,
}

impl S3Error {
    pub fn new(code: S3ErrorCode, message: impl Into<String>) -> Self {
        S3Error {
            code,
            message: message.into(),
            resource: None,
            region: None,
        }
    }

    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    pub fn status(&self) -> u16 {
        self.code.http_status()
    }

    /// The S3 error document, with the gateway's request id.
    pub fn to_xml(&self, request_id: &str) -> String {
        let mut s = String::with_capacity(256);
        s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
        s.push_str(self.code.as_str());
        s.push_str("</Code><Message>");
        xml_escape_into(&mut s, &self.message);
        s.push_str("</Message>");
        if let Some(r) = &self.resource {
            s.push_str("<Resource>");
            xml_escape_into(&mut s, r);
            s.push_str("</Resource>");
        }
        if let Some(r) = &self.region {
            s.push_str("<Region>");
            xml_escape_into(&mut s, r);
            s.push_str("</Region>");
        }
        let _ = write!(
            s,
            "<RequestId>{request_id}</RequestId><HostId>s3gate</HostId></Error>"
        );
        s
    }
}

pub fn xml_escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // As references: an XML parser normalises raw line ends (a key
            // `a\r\nb` would be read back as `a\nb`).
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

pub type S3Result<T> = Result<T, S3Error>;

/// Shorthand constructors used across the pipeline.
pub fn err(code: S3ErrorCode, message: impl Into<String>) -> S3Error {
    S3Error::new(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_escaped_xml_with_request_id() {
        let e = err(S3ErrorCode::AccessDenied, "a < b").with_resource("/b/k&1");
        let x = e.to_xml("REQ1");
        assert!(x.contains("<Code>AccessDenied</Code>"));
        assert!(x.contains("<Message>a &lt; b</Message>"));
        assert!(x.contains("<Resource>/b/k&amp;1</Resource>"));
        assert!(x.contains("<RequestId>REQ1</RequestId>"));
        assert_eq!(e.status(), 403);
        let e =
            err(S3ErrorCode::AuthorizationHeaderMalformed, "wrong region").with_region("us-east-1");
        assert!(e
            .to_xml("REQ2")
            .contains("</Message><Region>us-east-1</Region><RequestId>"));
    }
}

#[cfg(test)]
mod all_tests {
    use super::*;

    #[test]
    fn all_lists_each_code_once_with_its_name() {
        let names: std::collections::BTreeSet<&str> =
            S3ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), S3ErrorCode::ALL.len());
        assert!(names.contains("SlowDown") && names.contains("GatewayTimeout"));
    }
}
