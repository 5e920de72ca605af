//! CORS for browsers: a preflight (`OPTIONS`) is answered from the
//! bucket's `cors` rules in the gateway config, or, when the bucket has
//! none, by the upstream bucket's own CORS configuration; answers to other
//! requests of a bucket with rules carry the headers of the rule matching
//! their `Origin`. Preflights carry no credentials (browsers never sign
//! them), so nothing is decided by policy here.

use bytes::Bytes;
use http::HeaderMap;

use super::view::RequestView;
use crate::post::cors::{actual, preflight, Headers};
use crate::s3::addressing::address;
use crate::s3::{err, S3ErrorCode, S3Result};
use crate::state::GatewayState;
use crate::upstream_client::{Call, Reply};

/// The CORS headers for the answer to a request of `bucket`.
pub fn headers_for(state: &GatewayState, view: &RequestView<'_>, bucket: Option<&str>) -> Headers {
    let (Some(origin), Some(bucket)) = (view.header("origin"), bucket) else {
        return Headers::new();
    };
    let Ok(route) = state.router.route(bucket) else {
        return Headers::new();
    };
    match &route.rules.cors {
        Some(rules) => actual(rules, origin, view.method),
        None => Headers::new(),
    }
}

/// Answer a preflight.
pub async fn answer_preflight(state: &GatewayState, view: &RequestView<'_>) -> S3Result<Reply> {
    let addr = address(view.host, view.raw_path, &state.config.hostnames)?;
    let Some(bucket) = addr.bucket.as_deref() else {
        return Err(err(
            S3ErrorCode::InvalidRequest,
            "A CORS preflight must name a bucket",
        ));
    };
    let route = state.router.route(bucket)?;
    let origin = view.header("origin");
    let method = view.header("access-control-request-method");
    let asked = view.header("access-control-request-headers");
    if let Some(rules) = &route.rules.cors {
        let found = preflight(rules, origin, method, asked)
            .map_err(|e| e.with_resource(view.raw_path.to_string()))?;
        let mut headers = HeaderMap::new();
        for (n, v) in found {
            headers.append(n, v);
        }
        return Ok(Reply {
            status: 200,
            headers,
            body: Bytes::new(),
        });
    }
    let mut forwarded = Vec::new();
    for (name, v) in [
        ("origin", origin),
        ("access-control-request-method", method),
        ("access-control-request-headers", asked),
    ] {
        if let Some(v) = v {
            forwarded.push((name, v.to_string()));
        }
    }
    let call = Call {
        method: "OPTIONS",
        bucket: route.target.as_deref(),
        key: addr.key.as_deref(),
        query: vec![],
        headers: forwarded,
        body: Bytes::new(),
    };
    state.client.send(&route.upstream, call).await
}
