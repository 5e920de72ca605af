//! `s3gate replay`: decide every request of a decision log again with
//! other policies, through the policy set's `decide` that the gateway
//! calls, and show the decisions that would change, grouped by the
//! statements responsible.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::decision_log::DecisionRecord;
use crate::policy::{Decision, PolicySet};

/// A recorded decision that the new policies decide otherwise.
#[derive(Debug)]
pub struct Change {
    pub line: String,
    pub record: DecisionRecord,
    pub now: Decision,
}

impl Change {
    pub fn became_allowed(&self) -> bool {
        self.now.allowed()
    }

    /// The statements responsible for the new decision: the Allows that
    /// now allow, the Denies that now deny, or, for a request no statement
    /// allows any more, the Allows that used to.
    pub fn responsible(&self) -> String {
        if !self.now.statements.is_empty() {
            return self.now.statements.join(", ");
        }
        format!(
            "no statement allows it any more (was allowed by {})",
            self.record.statements.join(", ")
        )
    }
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub replayed: usize,
    pub changes: Vec<Change>,
    /// Lines that are not decision records, or name unknown actions.
    pub skipped: Vec<String>,
}

/// Decide every record of `files` (oldest first) with `set`.
pub fn replay(set: &PolicySet, files: &[PathBuf]) -> std::io::Result<Outcome> {
    let mut out = Outcome::default();
    for file in files {
        let text = std::fs::read_to_string(file)?;
        for (i, line) in text.lines().enumerate() {
            let at = format!("{}:{}", file.display(), i + 1);
            if line.trim().is_empty() {
                continue;
            }
            let Ok(record) = serde_json::from_str::<DecisionRecord>(line) else {
                out.skipped.push(format!("{at}: not a decision record"));
                continue;
            };
            let Some((needs, keys)) = record.decision_inputs() else {
                out.skipped
                    .push(format!("{at}: an action this s3gate does not know"));
                continue;
            };
            out.replayed += 1;
            let now = set.decide(&record.principal, &needs, &keys);
            if now.allowed() != record.allowed() {
                out.changes.push(Change {
                    line: at,
                    record,
                    now,
                });
            }
        }
    }
    Ok(out)
}

/// The report: changes by direction, then by the statements responsible.
pub fn render(o: &Outcome) -> String {
    let mut s = String::new();
    for skip in &o.skipped {
        let _ = writeln!(s, "skipped {skip}");
    }
    for (allowed, title) in [(false, "allow → deny"), (true, "deny → allow")] {
        let mut groups: BTreeMap<String, Vec<&Change>> = BTreeMap::new();
        for c in o.changes.iter().filter(|c| c.became_allowed() == allowed) {
            groups.entry(c.responsible()).or_default().push(c);
        }
        if groups.is_empty() {
            continue;
        }
        let n: usize = groups.values().map(Vec::len).sum();
        let _ = writeln!(s, "{title}: {n} request(s)");
        for (by, changes) in groups {
            let _ = writeln!(s, "  by {by}:");
            for c in changes {
                let needs: Vec<String> = c
                    .record
                    .needs
                    .iter()
                    .map(|n| format!("{} on {}", n.action, n.resource))
                    .collect();
                let _ = writeln!(
                    s,
                    "    {} [request {}; {}; {}]",
                    c.record.describe(),
                    c.record.request_id,
                    needs.join(", "),
                    c.line
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "{} decision(s) replayed, {} would change",
        o.replayed,
        o.changes.len()
    );
    s
}

/// Load the policies at `paths` for the principals of the config.
pub fn load(
    config: &Path,
    paths: &[PathBuf],
) -> Result<PolicySet, Vec<crate::config::ConfigError>> {
    let config = crate::config::load(config)?;
    let paths = if paths.is_empty() {
        config.policies.paths.clone()
    } else {
        paths.to_vec()
    };
    if paths.is_empty() {
        return Err(vec![crate::config::ConfigError::file(
            &config.file,
            "no policies to replay with: the config names none (policies.paths) and --policies is not given".into(),
        )]);
    }
    let names: Vec<String> = config.principals.iter().map(|p| p.name.clone()).collect();
    crate::policy::load(&paths, Some(&names))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;
    use crate::decision_log::Decided;
    use crate::policy::actions::Need;

    fn set(resource: &str) -> PolicySet {
        let src = format!(
            "Version: \"2012-10-17\"\nStatement:\n  - {{ Sid: Read, Effect: Allow, Principal: etl, Action: s3:GetObject, Resource: \"{resource}\" }}\n"
        );
        let p = crate::policy::parse::parse_file(Path::new("p.yaml"), &src, None).expect("policy");
        PolicySet::new(p.statements, p.tests, &["etl".into()])
    }

    fn record(key: &str, decision: &Decision) -> String {
        let needs = vec![Need {
            action: "s3:GetObject",
            resource: format!("arn:aws:s3:::b/{key}"),
        }];
        let keys = HashMap::new();
        let rec = DecisionRecord::new(
            &Decided {
                request_id: key,
                operation: "GetObject",
                principal: "etl",
                bucket: Some("b"),
                key: Some(key),
                needs: &needs,
                keys: &keys,
                rules: None,
                decision,
                shadow: false,
                policy_version: None,
            },
            "t".into(),
        );
        serde_json::to_string(&rec).expect("JSON") + "\n"
    }

    #[test]
    fn narrowing_flips_exactly_what_it_no_longer_allows() {
        let wide = set("arn:aws:s3:::b/*");
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("decisions.jsonl");
        let mut text = String::new();
        for key in ["keep/a", "other/b", "keep/c"] {
            let needs = vec![Need {
                action: "s3:GetObject",
                resource: format!("arn:aws:s3:::b/{key}"),
            }];
            let d = wide.decide("etl", &needs, &HashMap::new());
            text.push_str(&record(key, &d));
        }
        text.push_str("not json\n");
        std::fs::write(&log, text).expect("log");
        let same = replay(&wide, std::slice::from_ref(&log)).expect("replay");
        assert_eq!((same.replayed, same.changes.len()), (3, 0));
        assert_eq!(same.skipped.len(), 1);
        let narrow = set("arn:aws:s3:::b/keep/*");
        let o = replay(&narrow, &[log]).expect("replay");
        let flipped: Vec<&str> = o
            .changes
            .iter()
            .map(|c| c.record.request_id.as_str())
            .collect();
        assert_eq!(flipped, vec!["other/b"]);
        assert!(!o.changes[0].became_allowed());
        assert_eq!(
            o.changes[0].responsible(),
            "no statement allows it any more (was allowed by p.yaml#Read)"
        );
        let text = render(&o);
        assert!(text.contains("allow → deny: 1 request(s)"), "{text}");
        assert!(
            text.contains("3 decision(s) replayed, 1 would change"),
            "{text}"
        );
    }
}
