//! Re-signing: the upstream request is signed with the upstream's
//! credentials by aws-sigv4, with S3's settings (single encoding, no path
//! normalization). Runs after the final Host, path and headers are set,
//! on every attempt.

use std::borrow::Cow;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::HeaderMap;

pub mod credentials;
pub mod ibm_iam;

use crate::config::ResolvedCredentials;
use crate::s3::{err, S3Error, S3ErrorCode};

/// Headers that must not be signed: they are hop-by-hop, or intermediaries
/// may change them.
const UNSIGNED: &[&str] = &[
    "authorization",
    "user-agent",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
    "expect",
    "accept-encoding",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-amzn-trace-id",
];

/// Sign `method uri` with `headers` (which must already hold the final
/// Host and `x-amz-content-sha256`); returns the headers to add.
/// How the request is signed: the region and signing name (the
/// upstream's, or those of the access point ARN it goes to, see
/// `route::Upstream::signing`) and the keys to sign with.
pub struct SignFor<'a> {
    pub region: &'a str,
    pub service: &'a str,
    pub credentials: &'a ResolvedCredentials,
}

pub fn sign_request(
    method: &str,
    uri: &str,
    headers: &HeaderMap,
    payload_hash: &str,
    to: &SignFor<'_>,
    now: SystemTime,
) -> Result<Vec<(&'static str, String)>, S3Error> {
    let (region, service, credentials) = (to.region, to.service, to.credentials);
    // IBM Cloud IAM (COS): a bearer token instead of a signature.
    if let Some(token) = &credentials.bearer {
        return Ok(vec![(
            "authorization",
            format!("Bearer {}", token.expose()),
        )]);
    }
    let fail = |what: &str| {
        err(
            S3ErrorCode::InternalError,
            format!("could not sign the upstream request: {what}"),
        )
    };
    let c = credentials;
    let identity: Identity = Credentials::new(
        c.access_key_id.clone(),
        c.secret_access_key.expose().to_string(),
        c.session_token.as_ref().map(|t| t.expose().to_string()),
        None,
        "s3gate",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
    settings.excluded_headers = Some(UNSIGNED.iter().map(|h| Cow::Borrowed(*h)).collect());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| fail(&e.to_string()))?
        .into();
    let header_list: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(
        method,
        uri,
        header_list.into_iter(),
        SignableBody::Precomputed(payload_hash.to_string()),
    )
    .map_err(|e| fail(&e.to_string()))?;
    let (instructions, _sig) = sign(signable, &params)
        .map_err(|e| fail(&e.to_string()))?
        .into_parts();
    let (hs, _params) = instructions.into_parts();
    Ok(hs
        .into_iter()
        .map(|h| (h.name(), h.value().to_string()))
        .collect())
}
