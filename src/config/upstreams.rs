//! The `upstreams` section: each upstream's endpoint, region, addressing,
//! credentials and TLS roots, checked and typed with their defaults.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_yaml::Value;

use super::diagnostics::{k, Ctx};
use super::raw::{self, CredentialsConfig, SecretSource};
use super::secrets;
use super::{
    Addressing, CredentialSource, Endpoint, ResolvedCredentials, Source, UpstreamConfig,
    UpstreamKind,
};
use crate::secret::Secret;

/// The checked upstreams, and the kind of every upstream written (also of
/// those with errors, so that bucket checks can still use it).
pub(super) struct Upstreams {
    pub checked: BTreeMap<String, UpstreamConfig>,
    pub kinds: BTreeMap<String, UpstreamKind>,
}

pub(super) fn upstreams(cx: &mut Ctx<'_>, v: Option<&Value>) -> Upstreams {
    let ups: BTreeMap<String, raw::UpstreamConfig> = cx.map_section("upstreams", v);
    let kinds = ups.iter().map(|(n, u)| (n.clone(), u.kind)).collect();
    let checked = ups
        .iter()
        .filter_map(|(name, u)| Some((name.clone(), upstream(cx, name, u)?)))
        .collect();
    Upstreams { checked, kinds }
}

fn upstream(cx: &mut Ctx<'_>, name: &str, u: &raw::UpstreamConfig) -> Option<UpstreamConfig> {
    let at = |f: &str| vec![k("upstreams"), k(name), k(f)];
    let endpoint = match (&u.endpoint, u.kind) {
        (None, UpstreamKind::S3Compatible | UpstreamKind::Cos) => {
            cx.error(
                &at("kind"),
                format!(
                    "upstreams.{name}: an endpoint is required for kind {:?}",
                    u.kind
                ),
            );
            None
        }
        (Some(e), _) => match Endpoint::parse(e) {
            Ok(e) => Some(e),
            Err(msg) => {
                cx.error(&at("endpoint"), format!("upstreams.{name}.endpoint: {msg}"));
                None
            }
        },
        // AWS's regional endpoint (dual-stack / FIPS on request).
        (None, UpstreamKind::Aws | UpstreamKind::Outposts) => Some(Endpoint::aws(
            u.region.as_deref().unwrap_or("us-east-1"),
            u.dualstack,
            u.fips,
        )),
    };
    if matches!(u.kind, UpstreamKind::Aws | UpstreamKind::Outposts) && u.region.is_none() {
        cx.error(
            &at("kind"),
            format!(
                "upstreams.{name}: `region` is required for kind {:?}",
                u.kind
            ),
        );
    }
    let connect_to = match &u.connect_to {
        None => Ok(None),
        Some(c) => match c.parse::<SocketAddr>() {
            Ok(a) => Ok(Some(a)),
            Err(_) => {
                cx.error(
                    &at("connect_to"),
                    format!("upstreams.{name}.connect_to: `{c}` is not an IP:port address"),
                );
                Err(())
            }
        },
    };
    let credentials = credentials(cx, name, &u.credentials);
    let ca_file = u.tls.as_ref().and_then(|t| t.ca_file.clone());
    if let Some(f) = ca_file.as_ref().filter(|f| !f.exists()) {
        let mut p = at("tls");
        p.push(k("ca_file"));
        cx.error(
            &p,
            format!(
                "upstreams.{name}.tls.ca_file: {} does not exist",
                f.display()
            ),
        );
    }
    if u.kind != UpstreamKind::Cos {
        if matches!(u.credentials, CredentialsConfig::IbmIam { .. }) {
            cx.error(
                &at("credentials"),
                format!("upstreams.{name}: ibm_iam credentials are for kind cos only"),
            );
        }
        if u.service_instance_id.is_some() {
            cx.error(
                &at("service_instance_id"),
                format!("upstreams.{name}: service_instance_id is for kind cos only"),
            );
        }
    }
    if (u.dualstack || u.fips) && u.kind != UpstreamKind::Aws {
        cx.error(
            &at("kind"),
            format!("upstreams.{name}: dualstack and fips apply to kind aws only"),
        );
    }
    Some(UpstreamConfig {
        kind: u.kind,
        endpoint: endpoint?,
        region: u.region.clone().unwrap_or_else(|| "us-east-1".into()),
        addressing: u.addressing.unwrap_or(match u.kind {
            UpstreamKind::Aws => Addressing::Virtual,
            _ => Addressing::Path,
        }),
        credentials: credentials?,
        connect_to: connect_to.ok()?,
        ca_file,
        checksum_trailers: u.checksum_trailers.unwrap_or(true),
        versioning: u.versioning.unwrap_or(u.kind != UpstreamKind::S3Compatible),
        dualstack: u.dualstack,
        fips: u.fips,
        service_instance_id: u.service_instance_id.clone(),
        access_points: BTreeMap::new(),
    })
}

/// `http(s)://host[:port]/path` → the endpoint and the path.
fn token_url(url: &str) -> Option<(Endpoint, String)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let scheme_len = url.len() - rest.len();
    let endpoint = Endpoint::parse(&format!("{}{authority}", &url[..scheme_len])).ok()?;
    Some((endpoint, path.to_string()))
}

fn credentials(cx: &mut Ctx<'_>, name: &str, c: &CredentialsConfig) -> Option<CredentialSource> {
    let at = |path: &[&str]| {
        let mut p = vec![k("upstreams"), k(name), k("credentials")];
        p.extend(path.iter().map(|s| k(s)));
        p
    };
    match c {
        CredentialsConfig::Static(s) => {
            let akid = match &s.access_key_id {
                // An access key id is not a secret: no warning for a literal.
                SecretSource::Literal(v) => Some(Secret::new(v.clone())),
                other => secrets::resolve(cx, &at(&["access_key_id"]), other),
            };
            let secret = secrets::resolve(cx, &at(&["secret_access_key"]), &s.secret_access_key);
            let token = match &s.session_token {
                Some(t) => Some(secrets::resolve(cx, &at(&["session_token"]), t)?),
                None => None,
            };
            Some(CredentialSource::Static(ResolvedCredentials {
                access_key_id: akid?.expose().to_string(),
                secret_access_key: secret?,
                session_token: token,
                bearer: None,
            }))
        }
        CredentialsConfig::IbmIam { ibm_iam } => {
            let url = ibm_iam
                .token_url
                .as_deref()
                .unwrap_or(super::IBM_IAM_TOKEN_URL);
            let parsed = token_url(url);
            if parsed.is_none() {
                cx.error(&at(&["ibm_iam", "token_url"]), format!("upstreams.{name}.credentials.ibm_iam.token_url: `{url}` is not an http(s) URL"));
            }
            let api_key = secrets::resolve(cx, &at(&["ibm_iam", "api_key"]), &ibm_iam.api_key);
            let (token_url, token_path) = parsed?;
            Some(CredentialSource::IbmIam {
                api_key: api_key?,
                token_url,
                token_path,
            })
        }
        CredentialsConfig::Named(n) if n == "aws-default-chain" => {
            Some(CredentialSource::Provider(Source::DefaultChain))
        }
        CredentialsConfig::Named(n) => {
            cx.error(&at(&[]), format!("upstreams.{name}.credentials: unknown credential source `{n}` (expected aws-default-chain, assume_role or static keys)"));
            None
        }
        CredentialsConfig::AssumeRole { assume_role: r } => {
            let mut ok = true;
            if !r.role_arn.starts_with("arn:") || !r.role_arn.contains(":role/") {
                cx.error(&at(&["assume_role", "role_arn"]), format!("upstreams.{name}: role_arn `{}` is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)", r.role_arn));
                ok = false;
            }
            let external_id = match &r.external_id {
                Some(e) => {
                    let s = secrets::resolve(cx, &at(&["assume_role", "external_id"]), e);
                    ok &= s.is_some();
                    s.map(|s| s.expose().to_string())
                }
                None => None,
            };
            match r.source.as_deref() {
                None | Some("aws-default-chain") => {}
                Some(other) => {
                    cx.error(&at(&["assume_role", "source"]), format!("upstreams.{name}: assume_role.source `{other}` is not supported (use aws-default-chain)"));
                    ok = false;
                }
            }
            ok.then(|| {
                CredentialSource::Provider(Source::AssumeRole {
                    role_arn: r.role_arn.clone(),
                    external_id,
                    session_name: r.session_name.clone().unwrap_or_else(|| "s3gate".into()),
                    source: Box::new(Source::DefaultChain),
                })
            })
        }
    }
}
