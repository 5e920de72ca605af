//! Stage 2: who signed the request (SigV4 header or presigned, SigV2), and
//! how its body is protected. Unsigned requests are anonymous; a signature
//! that does not verify is refused here, before any state is read.

use std::time::SystemTime;

use super::parse::Parsed;
use super::view::RequestView;
use crate::auth::{authenticate as verify, AuthError, Authenticated, Identity, Principals};

pub fn authenticate(
    view: &RequestView<'_>,
    parsed: &Parsed,
    principals: &Principals,
    region: &str,
    now: SystemTime,
) -> Result<Option<Authenticated>, AuthError> {
    let req = crate::auth::RequestView {
        method: view.method,
        raw_path: view.raw_path,
        query: &parsed.query,
        headers: view.headers,
    };
    match verify(&req, &parsed.addr, principals, region, now)? {
        Identity::Signed(a) => Ok(Some(a)),
        Identity::Anonymous => Ok(None),
    }
}
