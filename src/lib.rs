//! s3gate: an S3 gateway.
//!
//! The pipeline, stage by stage, as a request meets it:
//!
//! 1. listen            — `server`: pingora listeners (HTTP and TLS) from `config`
//! 2. parse             — `s3`: path/virtual-host addressing → an [`s3::Operation`]
//! 3. authenticate      — `auth`: SigV4 header/presigned, SigV2, payload mode
//! 4. decide            — (policies, bucket-owner and payer rules plug in here)
//! 5. route             — `route`: client bucket → upstream, target bucket, host/path
//! 6. re-sign           — `forward` + `resign`: strip the client's auth, sign with aws-sigv4
//! 7. stream            — `auth::payload`: verify while streaming, hold back the end
//! 8. relay             — `gateway`: upstream responses pass through as they are
//! 9. log               — `logging`: one line per request, never a secret
//!
//! `gateway` is the pingora `ProxyHttp` implementation that calls the stages.

pub mod admin;
pub mod admit;
pub mod audit;
pub mod auth;
pub mod check;
pub mod config;
pub mod context;
pub mod decision_log;
pub mod explain;
pub mod forward;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod log_writer;
pub mod logging;
pub mod metrics;
pub mod multipart;
pub mod policy;
pub mod post;
pub mod reframe;
pub mod replay;
pub mod resign;
pub mod respond;
pub mod route;
pub mod rules;
pub mod s3;
pub mod schema;
pub mod secret;
pub mod server;
pub mod state;
pub mod upstream_client;
pub mod upstream_pool;
pub mod util;
