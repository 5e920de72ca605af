//! `s3gate audit verify FILE...`: the chain is whole, or the first line
//! that was changed, removed, reordered or torn is named. The newest file's
//! head (`<file>.head`) tells whether records were removed from the end.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::head;
use super::record::chain_hash;

#[derive(Debug, Default)]
pub struct Report {
    pub records: u64,
    pub problems: Vec<String>,
    /// Torn lines (a crash mid-write); the chain continues after them.
    pub torn: Vec<String>,
    /// Remarks that do not fail the verification (no head file, …).
    pub notes: Vec<String>,
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

/// Where the chain stands while files are read.
#[derive(Default)]
struct Walk {
    last: Option<Last>,
    /// The seq the head names, and the hash found at that seq.
    head_seq: Option<u64>,
    at_head_seq: Option<String>,
}

/// Verify files given oldest first (`audit.jsonl.2 audit.jsonl.1 audit.jsonl`).
/// The head of the newest file (the current log) is checked too.
pub fn verify(files: &[PathBuf]) -> Report {
    let mut report = Report::default();
    let newest = files.last();
    let head = match newest.map(|f| head::read(f)) {
        Some(Ok(Some(h))) => Some(h),
        Some(Ok(None)) => {
            if let Some(f) = newest {
                report.notes.push(format!(
                    "{}: no head file ({}); records removed from the end cannot be detected",
                    f.display(),
                    head::path_for(f).display()
                ));
            }
            None
        }
        Some(Err(e)) => {
            report.problems.push(e.to_string());
            None
        }
        None => None,
    };
    let mut walk = Walk {
        head_seq: head.as_ref().map(|h| h.seq),
        ..Walk::default()
    };
    for f in files {
        verify_file(f, &mut walk, &mut report);
    }
    if let (Some(h), Some(f)) = (head, newest) {
        check_head(f, &h, &walk, &mut report);
    }
    report
}

/// The log must reach the record its head names, with the same hash.
fn check_head(file: &Path, h: &head::Head, walk: &Walk, report: &mut Report) {
    let hp = head::path_for(file);
    if !report.problems.is_empty() {
        report.notes.push(format!(
            "{}: not compared with the chain, which is already broken",
            hp.display()
        ));
        return;
    }
    if h.file != head::file_name(file) {
        report.notes.push(format!(
            "{}: names the file {:?}; compared with {} anyway",
            hp.display(),
            h.file,
            file.display()
        ));
    }
    match &walk.last {
        None => report.problems.push(format!(
            "{}: the log has no whole record, but its head ({}) says the last record written was seq {}: records were removed",
            file.display(),
            hp.display(),
            h.seq
        )),
        Some(l) if l.seq < h.seq => {
            let missing = h.seq - l.seq;
            let which = if missing == 1 {
                format!("seq {}", h.seq)
            } else {
                format!("seq {}..={}", l.seq + 1, h.seq)
            };
            report.problems.push(format!(
                "{}: {missing} record(s) missing at the end ({which}): the log ends at seq {} but its head ({}) says the last record written was seq {} (removed or truncated)",
                file.display(),
                l.seq,
                hp.display(),
                h.seq
            ));
        }
        Some(_) => match &walk.at_head_seq {
            Some(hash) if *hash == h.hash => {
                if let Some(l) = &walk.last {
                    if l.seq > h.seq {
                        report.notes.push(format!(
                            "{}: {} record(s) after the head's seq {} (the head was not updated after the last write: a crash?)",
                            hp.display(),
                            l.seq - h.seq,
                            h.seq
                        ));
                    }
                }
            }
            Some(_) => report.problems.push(format!(
                "{}: record seq {} does not match the head's hash ({}): the record was replaced",
                file.display(),
                h.seq,
                hp.display()
            )),
            None => report.problems.push(format!(
                "{}: record seq {} named by the head ({}) is not in the files given",
                file.display(),
                h.seq,
                hp.display()
            )),
        },
    }
}

fn verify_file(path: &Path, walk: &mut Walk, report: &mut Report) {
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
        if let Some(l) = &walk.last {
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
        if walk.head_seq == Some(seq) {
            walk.at_head_seq = Some(hash.clone());
        }
        walk.last = Some(Last { seq, hash });
        report.records += 1;
    }
}
