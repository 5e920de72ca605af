//! S3's own vocabulary: operations, addressing, encodings and errors.

pub mod addressing;
pub mod error;
pub mod operation;
pub mod uri;
pub mod xml;

pub use addressing::Addressed;
pub use error::{err, S3Error, S3ErrorCode, S3Result};
pub use operation::{CopySource, Operation};
pub use uri::Query;
