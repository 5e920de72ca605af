//! The chain head: `<log>.head`, a small JSON file naming the last record
//! written to the log (`seq` and `hash`). It is replaced atomically after
//! each record, so `audit verify` can tell a log whose last records were
//! removed (the chain itself cannot: what remains still links up).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::AuditError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub v: u32,
    /// The log file the head describes (its file name, not the path).
    pub file: String,
    /// The last record's seq.
    pub seq: u64,
    /// The last record's hash.
    pub hash: String,
}

/// `audit.jsonl` → `audit.jsonl.head`.
pub fn path_for(log: &Path) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    s.push(".head");
    PathBuf::from(s)
}

pub fn file_name(log: &Path) -> String {
    log.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The head of `log`: `Ok(None)` when there is none.
pub fn read(log: &Path) -> Result<Option<Head>, AuditError> {
    let p = path_for(log);
    match std::fs::read(&p) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| AuditError::BadHead { path: p, source }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AuditError::Io { path: p, source: e }),
    }
}

/// Replace the head atomically: write a temporary file, fsync it, rename
/// it over the head, fsync the directory. Blocking: call it from the audit
/// writer thread.
pub fn write(log: &Path, head: &Head) -> Result<(), AuditError> {
    let p = path_for(log);
    let mut tmp = p.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let body = serde_json::to_vec(head).map_err(AuditError::Encode)?;
    let r = (|| -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(&body)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p)?;
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)?.sync_all()
    })();
    r.map_err(AuditError::io(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_atomically_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        assert_eq!(read(&log).unwrap(), None);
        let h = Head {
            v: 1,
            file: "audit.jsonl".into(),
            seq: 4,
            hash: "ab".into(),
        };
        write(&log, &h).unwrap();
        write(
            &log,
            &Head {
                seq: 5,
                ..h.clone()
            },
        )
        .unwrap();
        assert_eq!(read(&log).unwrap().map(|h| h.seq), Some(5));
        assert!(!dir.path().join("audit.jsonl.head.tmp").exists());
        std::fs::write(path_for(&log), "{").unwrap();
        let e = read(&log).unwrap_err();
        assert!(e.to_string().contains("not a head file"), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }
}
