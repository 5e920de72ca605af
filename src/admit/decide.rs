//! Stages 3 and 4: route the named request to its upstream, then decide
//! it — the policy statements, the bucket rules (`expected_bucket_owner`,
//! `request_payer`) and the initiator rule. Pure: no session, no I/O, so
//! `s3gate explain` runs exactly this code.

use std::sync::Arc;
use std::time::SystemTime;

use super::view::RequestView;
use crate::auth::AuthMethod;
use crate::policy::actions::{self, Need};
use crate::policy::condition::ContextKeys;
use crate::policy::context::Facts;
use crate::policy::{Decision, PolicySet};
use crate::route::{Route, Router};
use crate::s3::{err, Operation, S3Error, S3ErrorCode, S3Request, S3Result};

pub use crate::multipart::reserved::{reserved_error, Reserved};

/// What the decision reads besides the request.
pub struct Decider<'a> {
    pub router: &'a Router,
    /// None: no policy files; every authenticated principal is allowed.
    pub policies: Option<Arc<PolicySet>>,
    pub shadow: bool,
    pub reserved: Option<&'a Reserved>,
}

impl crate::state::GatewayState {
    /// What the decision stages read, with the policy set now in force.
    pub fn decider(&self) -> Decider<'_> {
        Decider {
            router: &self.router,
            policies: self.policies.as_ref().map(|p| p.current()),
            shadow: self.mode == crate::config::PolicyMode::Shadow,
            reserved: self.reserved.as_ref(),
        }
    }
}

/// Who is asking.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    /// `anonymous` for unsigned requests.
    pub principal: &'a str,
    pub auth: Option<(AuthMethod, SystemTime)>,
}

impl<'a> Who<'a> {
    /// The requester an authentication stage found (`anonymous` for none).
    pub fn of(auth: Option<&'a crate::auth::Authenticated>) -> Self {
        Who {
            principal: auth.map_or("anonymous", |a| a.principal.name.as_str()),
            auth: auth.map(|a| (a.method, a.signed_at)),
        }
    }
}

/// The request's route: its upstream, and the copy source's.
#[derive(Debug, Clone, Default)]
pub struct Routed {
    pub route: Option<Route>,
    pub source: Option<Route>,
}

/// Stage 3: the upstream and target bucket of a request. On an upstream
/// without versions any version id but `null` (the current object there)
/// is refused.
pub fn route(d: &Decider<'_>, req: &S3Request) -> S3Result<Routed> {
    let Some(bucket) = &req.bucket else {
        // ListBuckets goes to the catch-all's upstream, if any.
        let route = d.router.service_upstream().map(|up| Route {
            upstream: up,
            target: None,
            rules: Arc::new(crate::config::BucketConfig {
                upstream: String::new(),
                target: None,
                owner: None,
                expected_bucket_owner: Default::default(),
                request_payer: Default::default(),
                cors: None,
                abort_incomplete_after: None,
            }),
        });
        return Ok(Routed {
            route,
            source: None,
        });
    };
    let route = d.router.route(bucket)?;
    let mut source = None;
    if let Some(src) = req.op.copy_source() {
        let src_route = d.router.route(&src.bucket)?;
        if src_route.upstream.name != route.upstream.name {
            return Err(err(
                S3ErrorCode::NotImplemented,
                format!(
                    "Copying between buckets on different upstreams ({} and {}) is not supported",
                    src_route.upstream.name, route.upstream.name
                ),
            ));
        }
        source = Some(src_route);
    }
    // An upstream without versions (Garage) ignores `versionId` and acts on
    // the current object: a request that names one is not what was decided.
    if !route.upstream.versioning && req.op.names_version() && req.op.clone().drop_null_versions() {
        return Err(err(
            S3ErrorCode::InvalidArgument,
            format!(
                "The upstream {} keeps no object versions: versionId cannot be honoured (upstreams.{}.versioning)",
                route.upstream.name, route.upstream.name
            ),
        ));
    }
    if let Some(r) = d.reserved {
        let key_reserved = req.key.as_deref().is_some_and(|k| r.covers(&route, k));
        let source_reserved = match (req.op.copy_source(), &source) {
            (Some(src), Some(sr)) => r.covers(sr, &src.key),
            _ => false,
        };
        let bucket_reserved = req.key.is_none() && r.reaches_bucket(&route, req);
        if key_reserved || source_reserved || bucket_reserved {
            return Err(reserved_error());
        }
    }
    Ok(Routed {
        route: Some(route),
        source,
    })
}

/// What was decided, and everything that went into it (for `explain`).
#[derive(Debug, Default)]
pub struct Verdict {
    pub needs: Vec<Need>,
    pub keys: ContextKeys,
    /// The policy decision (None without policies, and for DeleteObjects,
    /// whose keys are decided one by one).
    pub decision: Option<Decision>,
    /// `x-amz-expected-bucket-owner` to add upstream (rule `inject`).
    pub inject_owner: Option<String>,
    /// Why the request is refused; None: it goes ahead.
    pub refusal: Option<S3Error>,
    /// Denied by policy in shadow mode (logged, not enforced).
    pub shadow_denied: bool,
    /// The version of the policy set that decided (`PolicySet::version`).
    pub policy_version: Option<String>,
}

/// Everything known of a request when it is decided.
pub struct Inputs<'a> {
    pub view: &'a RequestView<'a>,
    pub request: &'a S3Request,
    pub who: Who<'a>,
    pub routed: &'a Routed,
    /// `self` | `other` | `unknown` for operations on an upload.
    pub initiator: Option<&'a str>,
    /// The body length the gateway will verify (s3gate:ContentLength).
    pub content_length: Option<u64>,
    pub now: SystemTime,
}

/// Stage 4: policy statements, then the bucket rules.
pub fn decide(d: &Decider<'_>, i: &Inputs<'_>) -> Verdict {
    let req = i.request;
    let route = i.routed.route.as_ref();
    let facts = Facts {
        principal: i.who.principal,
        auth: i.who.auth,
        source_ip: i.view.source_ip,
        tls: i.view.tls,
        headers: i.view.headers,
        request: req,
        upstream: route.map(|r| r.upstream.name.as_str()),
        owner: route.and_then(|r| r.rules.owner.as_deref()),
        initiator: i.initiator,
        // A copy's size is the source's, which the gateway does not know:
        // the key is absent rather than the (empty) body's length.
        content_length: i.content_length.filter(|_| req.op.copy_source().is_none()),
    };
    let mut v = Verdict {
        keys: crate::policy::context::build(&facts, i.now),
        ..Verdict::default()
    };
    let (bucket, key) = (req.bucket.as_deref(), req.key.as_deref());
    v.needs = actions::needs(&req.op, bucket, key);
    v.needs
        .extend(actions::header_needs(&req.op, i.view.headers, bucket, key));
    let anonymous = i.who.auth.is_none();
    if anonymous && req.params.iter().any(|(n, _)| n.starts_with("response-")) {
        // As S3 does: overrides are for signed requests only.
        v.refusal = Some(err(
            S3ErrorCode::InvalidRequest,
            "Request specific response headers cannot be used for anonymous GET requests.",
        ));
        return v;
    }
    match &d.policies {
        None if anonymous => {
            v.refusal = Some(err(
                S3ErrorCode::AccessDenied,
                "Anonymous access is not allowed by this gateway; sign the request with a key it issued",
            ));
            return v;
        }
        None => {}
        // Each key of the body is decided by the DeleteObjects stage.
        Some(_) if req.op == Operation::DeleteObjects => {}
        Some(set) => {
            let decision = set.decide(i.who.principal, &v.needs, &v.keys);
            v.policy_version = Some(set.version.clone());
            let allowed = decision.allowed();
            v.decision = Some(decision);
            if !allowed {
                if d.shadow {
                    v.shadow_denied = true;
                } else {
                    v.refusal = Some(err(S3ErrorCode::AccessDenied, "Access Denied"));
                    return v;
                }
            }
        }
    }
    if let Some(route) = route.filter(|_| req.bucket.is_some()) {
        let payer = i
            .view
            .header("x-amz-request-payer")
            .map(str::trim)
            .or(req.payer_in_query.as_deref());
        let source_rules = i.routed.source.as_ref().map(|s| s.rules.as_ref());
        match crate::rules::apply(&req.op, i.view.headers, payer, &route.rules, source_rules) {
            Ok(actions) => v.inject_owner = actions.inject_owner,
            Err(e) => v.refusal = Some(e),
        }
    }
    v
}
