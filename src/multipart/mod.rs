//! Multipart uploads: who started each one, which parts are in flight, and
//! the abort flow that makes sure storage is really freed.

pub mod abort;
pub mod inflight;
pub mod lease;
pub mod ownership;
pub mod reaper;
mod reaper_audit;
pub mod reserved;
