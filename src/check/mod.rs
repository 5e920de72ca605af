//! `s3gate check`: load the config and its policies, report every problem
//! (syntax errors, and the findings of `policy::findings`) as text, JSON
//! or SARIF 2.1.0, and decide the exit status by `--fail-on`.

mod render;

use std::path::Path;

pub use render::{render_json, render_sarif, render_text};

use crate::config::{Config, ConfigError};
use crate::multipart::reserved::Reserved;
use crate::policy::findings::{self, Finding, Severity, Sources};
use crate::policy::model::Statement;

/// What `check` found.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// `gateway.yaml: OK (…)` when the config and policies load.
    pub summary: Option<String>,
    /// Every statement's name (`file#Sid`), for comparing with the
    /// per-statement decision counters on /metrics.
    pub statements: Vec<String>,
}

impl Report {
    /// Whether any finding is at least as severe as `fail_on`.
    pub fn fails(&self, fail_on: Severity) -> bool {
        self.findings.iter().any(|f| f.severity >= fail_on)
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }
}

fn errors(code: &'static str, list: &[ConfigError], hint: &str) -> Vec<Finding> {
    list.iter()
        .map(|e| Finding::from_error(code, Severity::Error, e, hint))
        .collect()
}

/// Check the config at `path` and the policies it names.
pub fn run(path: &Path) -> Report {
    let config = match crate::config::load(path) {
        Ok(c) => c,
        Err(list) => {
            return Report {
                findings: errors("CONFIG_ERROR", &list, ""),
                ..Report::default()
            }
        }
    };
    let mut report = Report::default();
    for w in &config.warnings {
        report.findings.push(Finding::from_error(
            "CONFIG_WARNING",
            Severity::Warning,
            w,
            "",
        ));
    }
    if let Some(r) = Reserved::from_config(&config) {
        for w in r.warnings(&config) {
            let e = ConfigError::file(path, w);
            report.findings.push(Finding::from_error(
                "CONFIG_WARNING",
                Severity::Warning,
                &e,
                "",
            ));
        }
    }
    let statements = policies(&config, &mut report);
    report.statements = statements.iter().map(Statement::name).collect();
    if report.fails(Severity::Error) {
        return report;
    }
    report.summary = Some(format!(
        "{}: OK ({} principal(s), {} upstream(s), {} bucket rule(s), {} policy statement(s))",
        path.display(),
        config.principals.len(),
        config.upstreams.len(),
        config.buckets.len(),
        statements.len()
    ));
    report
}

/// Load the policy files, recording their syntax errors and unknown
/// principals, and analyse the statements that load.
fn policies(config: &Config, report: &mut Report) -> Vec<Statement> {
    if config.policies.paths.is_empty() {
        return Vec::new();
    }
    let files = match crate::policy::files(&config.policies.paths) {
        Ok(f) => f,
        Err(e) => {
            report.findings.extend(errors("POLICY_SYNTAX", &[e], ""));
            return Vec::new();
        }
    };
    let names: Vec<String> = config.principals.iter().map(|p| p.name.clone()).collect();
    let known = names.iter().cloned().collect();
    let mut sources = Sources::default();
    let mut statements = Vec::new();
    let mut syntax = Vec::new();
    let mut found = Vec::new();
    for f in &files {
        let src = match std::fs::read_to_string(f) {
            Ok(s) => s,
            Err(e) => {
                syntax.push(ConfigError::file(f, format!("cannot read: {e}")));
                continue;
            }
        };
        let (parsed, unknown) = crate::policy::parse::parse_file_split(f, &src, Some(&known));
        let hint = format!(
            "name a principal of the config's `principals` ({}), \"*\" or anonymous",
            names.join(", ")
        );
        found.extend(errors("UNKNOWN_PRINCIPAL", &unknown, &hint));
        match parsed {
            Ok(p) => statements.extend(p.statements),
            Err(e) => syntax.extend(e),
        }
        sources.add(f, src);
    }
    found.extend(errors("POLICY_SYNTAX", &syntax, ""));
    let input = findings::Input {
        config,
        statements: &statements,
        sources: &sources,
    };
    found.extend(findings::analyse(&input));
    // Stable: a file's syntax errors keep their order.
    found.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    report.findings.extend(found);
    statements
}
