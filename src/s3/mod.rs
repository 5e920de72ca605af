//! S3's own vocabulary: operations, addressing, encodings and errors.

pub mod addressing;
pub mod delete;
pub mod error;
pub mod operation;
pub mod params;
pub mod subresource;
pub mod upstream_error;
pub mod uri;
pub mod xml;

pub use addressing::Addressed;
pub use error::{err, S3Error, S3ErrorCode, S3Result};
pub use operation::{CopySource, Operation, S3Request};
pub use uri::Query;
