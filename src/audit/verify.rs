//! `s3gate audit verify FILE...`: the chain is whole, or the first line
//! that was changed, removed, reordered or torn is named.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::record::chain_hash;

#[derive(Debug, Default)]
pub struct Report {
    pub records: u64,
    pub problems: Vec<String>,
    /// Torn lines (a crash mid-write); the chain continues after them.
    pub torn: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.torn.is_empty()
    }
}

struct Last {
    seq: u64,
    hash: String,
}

/// Verify files given oldest first (`audit.jsonl.2 audit.jsonl.1 audit.jsonl`).
pub fn verify(files: &[PathBuf]) -> Report {
    let mut report = Report::default();
    let mut last: Option<Last> = None;
    for f in files {
        verify_file(f, &mut last, &mut report);
    }
    report
}

fn verify_file(path: &Path, last: &mut Option<Last>, report: &mut Report) {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) => {
            report
                .problems
                .push(format!("{}: cannot read: {e}", path.display()));
            return;
        }
    };
    let ends_with_newline = text.last() == Some(&b'\n');
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let at = format!("{}:{n}", path.display());
        let is_last = i + 1 == lines.len();
        let parsed: Option<Map<String, Value>> =
            serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| match v {
                    Value::Object(m) => Some(m),
                    _ => None,
                });
        let Some(mut map) = parsed else {
            // A line that is not a whole record: torn by a crash mid-write
            // (always a problem, but the chain may continue after it).
            if is_last && !ends_with_newline {
                report.torn.push(format!(
                    "{at}: torn last record (incomplete line, a crash mid-write?)"
                ));
            } else {
                report.torn.push(format!(
                    "{at}: torn record (incomplete line); the chain continues after it"
                ));
            }
            continue;
        };
        let hash = map
            .remove("hash")
            .and_then(|h| h.as_str().map(str::to_string));
        let prev = map.get("prev").and_then(|p| p.as_str()).map(str::to_string);
        let seq = map.get("seq").and_then(Value::as_u64);
        let (Some(hash), Some(prev), Some(seq)) = (hash, prev, seq) else {
            report
                .problems
                .push(format!("{at}: record lacks seq, prev or hash"));
            return;
        };
        if chain_hash(&prev, &map) != hash {
            report.problems.push(format!(
                "{at}: record seq {seq} was changed (its hash does not match its content)"
            ));
            return;
        }
        if let Some(l) = last {
            if prev != l.hash {
                report.problems.push(format!("{at}: record seq {seq} does not follow the record before it (a record was removed, reordered or inserted)"));
                return;
            }
            if seq != l.seq + 1 {
                report.problems.push(format!(
                    "{at}: record seq {seq} follows seq {} (a record is missing or out of order)",
                    l.seq
                ));
                return;
            }
        }
        *last = Some(Last { seq, hash });
        report.records += 1;
    }
}
