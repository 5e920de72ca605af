//! Findings on policies that load: statements that can never match, that
//! grant more than they read, that another statement hides — in the spirit
//! of IAM Access Analyzer's policy checks. Each finding has a severity, a
//! stable code (listed in [`RULES`]), the file:line:column of the statement
//! or field, and a hint to fix it.

mod checks;
pub mod kinds;
mod overlap;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::model::Statement;
use crate::config::locate::{locate, Step};
use crate::config::{Config, ConfigError};

/// How bad a finding is, least first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Suggestion,
    Warning,
    SecurityWarning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::SecurityWarning => "security warning",
            Severity::Warning => "warning",
            Severity::Suggestion => "suggestion",
        }
    }

    /// `--fail-on` spellings: `warning` includes security warnings.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "error" => Some(Severity::Error),
            "security-warning" | "security" => Some(Severity::SecurityWarning),
            "warning" => Some(Severity::Warning),
            "suggestion" => Some(Severity::Suggestion),
            _ => None,
        }
    }
}

/// One kind of finding: its stable code, default severity and the help
/// shown in SARIF viewers.
#[derive(Debug)]
pub struct Rule {
    pub code: &'static str,
    pub severity: Severity,
    pub title: &'static str,
}

/// Every finding `s3gate check` reports. Codes are stable: CI pipelines and
/// SARIF viewers key on them.
pub const RULES: &[Rule] = &[
    Rule { code: "CONFIG_ERROR", severity: Severity::Error, title: "The gateway config is invalid" },
    Rule { code: "CONFIG_WARNING", severity: Severity::Warning, title: "The gateway config works but is risky (a literal secret, a reserved prefix reachable, …)" },
    Rule { code: "POLICY_SYNTAX", severity: Severity::Error, title: "The policy file does not load (YAML, field names, actions, resources, conditions)" },
    Rule { code: "UNKNOWN_PRINCIPAL", severity: Severity::Error, title: "A principal the config does not define" },
    Rule { code: "ACTION_RESOURCE_MISMATCH", severity: Severity::Error, title: "No action of the statement can act on any of its resources: it never matches" },
    Rule { code: "UNUSED_ACTION", severity: Severity::Warning, title: "An action that can act on none of the statement's resources" },
    Rule { code: "UNROUTED_BUCKET", severity: Severity::Warning, title: "A bucket in a Resource that no `buckets` entry routes" },
    Rule { code: "CONDITION_KEY_ABSENT", severity: Severity::Warning, title: "A condition key that no request for the statement's actions carries" },
    Rule { code: "SHADOWED_BY_DENY", severity: Severity::Warning, title: "An Allow that an unconditional Deny covers entirely" },
    Rule { code: "DUPLICATE_STATEMENT", severity: Severity::Warning, title: "A statement that repeats an earlier one" },
    Rule { code: "ALLOW_WITH_NOT_PRINCIPAL", severity: Severity::SecurityWarning, title: "Allow with NotPrincipal grants every principal but the named ones, anonymous included" },
    Rule { code: "ALLOW_WITH_NOT_ACTION", severity: Severity::SecurityWarning, title: "Allow with NotAction grants every action but the named ones, including future ones" },
    Rule { code: "ALLOW_WITH_NOT_RESOURCE", severity: Severity::SecurityWarning, title: "Allow with NotResource grants every bucket but the named ones" },
    Rule { code: "FULL_ACCESS", severity: Severity::SecurityWarning, title: "s3:* on every resource for every principal (an error for anonymous)" },
    Rule { code: "ANONYMOUS_WRITE", severity: Severity::SecurityWarning, title: "Unsigned requests may write, delete or reconfigure" },
    Rule { code: "MISSING_SID", severity: Severity::Suggestion, title: "A statement without a Sid is named by its position, which changes when statements move" },
];

pub fn rule(code: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.code == code)
}

/// One finding, where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// How to fix it (may be empty).
    pub hint: String,
    /// The offending line as written.
    pub snippet: Option<String>,
    /// `file#Sid` of the statement, when a statement is at fault.
    pub statement: Option<String>,
}

impl Finding {
    /// A diagnostic of the loaders (config or policy syntax) as a finding.
    pub fn from_error(code: &'static str, severity: Severity, e: &ConfigError, hint: &str) -> Self {
        Finding {
            code,
            severity,
            file: e.file.clone(),
            line: e.line,
            column: e.column,
            message: e.message.clone(),
            hint: hint.to_string(),
            snippet: e.snippet.clone(),
            statement: None,
        }
    }
}

/// The policy files' text, to place findings at their statement or field.
#[derive(Debug, Default)]
pub struct Sources {
    /// File name as statements carry it → (path, text, Statement is a list).
    files: HashMap<String, (PathBuf, String, bool)>,
}

impl Sources {
    pub fn add(&mut self, path: &Path, src: String) {
        let listed = serde_yaml::from_str::<Value>(&src)
            .ok()
            .and_then(|v| v.get("Statement").map(Value::is_sequence))
            .unwrap_or(true);
        self.files.insert(
            path.display().to_string(),
            (path.to_path_buf(), src, listed),
        );
    }

    /// Where `field` (a path under the statement; empty: the statement
    /// itself) of statement `s` is written.
    fn at(&self, s: &Statement, field: &[Step]) -> (PathBuf, usize, usize, Option<String>) {
        let Some((path, src, listed)) = self.files.get(&*s.file) else {
            return (PathBuf::from(&*s.file), s.line, 1, None);
        };
        let mut p = vec![Step::Key("Statement".into())];
        if *listed {
            p.push(Step::Index(s.index));
        }
        p.extend_from_slice(field);
        let (line, column) = locate(src, &p);
        let snippet = src.lines().nth(line - 1).map(|l| l.trim_end().to_string());
        (path.clone(), line, column, snippet)
    }
}

/// What the checks read.
pub struct Input<'a> {
    pub config: &'a Config,
    pub statements: &'a [Statement],
    pub sources: &'a Sources,
}

impl Input<'_> {
    fn finding(
        &self,
        code: &'static str,
        s: &Statement,
        field: &[Step],
        message: String,
        hint: impl Into<String>,
    ) -> Finding {
        let severity = rule(code).map_or(Severity::Warning, |r| r.severity);
        let (file, line, column, snippet) = self.sources.at(s, field);
        Finding {
            code,
            severity,
            file,
            line,
            column,
            message,
            hint: hint.into(),
            snippet,
            statement: Some(s.name()),
        }
    }

    /// Every principal name a statement could be about: the config's,
    /// anonymous, and the names statements use.
    fn principal_universe(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .config
            .principals
            .iter()
            .map(|p| p.name.clone())
            .collect();
        names.push("anonymous".into());
        for s in self.statements {
            if let super::model::PrincipalMatch::Names(n) | super::model::PrincipalMatch::Not(n) =
                &s.principal
            {
                names.extend(n.iter().filter(|n| *n != "*").cloned());
            }
        }
        names.sort();
        names.dedup();
        names
    }
}

/// Every finding on the loaded statements, in file and line order.
pub fn analyse(input: &Input<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in input.statements {
        checks::statement(input, s, &mut out);
    }
    overlap::statements(input, &mut out);
    out.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    out
}

#[cfg(test)]
mod tests;
