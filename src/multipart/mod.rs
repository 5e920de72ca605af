//! Multipart uploads: who started each one, which parts are in flight, and
//! the abort flow that makes sure storage is really freed.

pub mod abort;
pub mod inflight;
pub mod ownership;
pub mod reserved;
