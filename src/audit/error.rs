//! Why an audit record, the log or its head could not be written or read.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rotating {}: {source}", path.display())]
    Rotate {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a head file: {source}", path.display())]
    BadHead {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot encode the head: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("audit log not open")]
    NotOpen,
    #[error("the audit writer is not running")]
    NotRunning,
    #[error("the audit writer stopped")]
    Stopped,
}

impl AuditError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> AuditError {
        let path = path.into();
        move |source| AuditError::Io { path, source }
    }
}
