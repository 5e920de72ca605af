//! `check`'s three outputs: text for people (the loaders' errors exactly
//! as before, findings with their code and a fix), JSON for scripts, and
//! SARIF 2.1.0 for code-scanning tools.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value};

use super::Report;
use crate::policy::findings::{Finding, Severity, RULES};

/// Diagnostics of the loaders, printed as they always were.
fn is_loader(f: &Finding) -> bool {
    matches!(f.code, "CONFIG_ERROR" | "POLICY_SYNTAX" | "CONFIG_WARNING")
}

/// (stdout, stderr) of the text format.
pub fn render_text(path: &Path, r: &Report) -> (String, String) {
    let mut err = String::new();
    for f in &r.findings {
        let head = if is_loader(f) {
            let word = if f.severity == Severity::Error {
                "error"
            } else {
                "warning"
            };
            word.to_string()
        } else {
            format!("{}[{}]", f.severity.as_str(), f.code)
        };
        let _ = write!(
            err,
            "{head}: {}:{}:{}: {}",
            f.file.display(),
            f.line,
            f.column,
            f.message
        );
        if let Some(s) = &f.snippet {
            let _ = write!(err, "\n    {:>4} | {s}", f.line);
        }
        if !f.hint.is_empty() && !is_loader(f) {
            let _ = write!(err, "\n    help: {}", f.hint);
        }
        err.push('\n');
    }
    let errors = r.count(Severity::Error);
    let mut out = String::new();
    match &r.summary {
        Some(s) => {
            out.push_str(s);
            out.push('\n');
            let analysed = r.findings.iter().filter(|f| !is_loader(f)).count();
            if analysed > 0 {
                let _ = writeln!(err, "{}", counts(r));
            }
        }
        None if r.findings.iter().any(|f| f.code == "CONFIG_ERROR") => {
            let _ = writeln!(err, "{}: {errors} error(s)", path.display());
        }
        None => {
            let _ = writeln!(err, "policies: {errors} error(s)");
        }
    }
    (out, err)
}

fn counts(r: &Report) -> String {
    let n = |s| r.count(s);
    format!(
        "findings: {} error(s), {} security warning(s), {} warning(s), {} suggestion(s)",
        n(Severity::Error),
        n(Severity::SecurityWarning),
        n(Severity::Warning),
        n(Severity::Suggestion)
    )
}

fn finding_json(f: &Finding) -> Value {
    json!({
        "code": f.code,
        "severity": f.severity.as_str(),
        "file": f.file.display().to_string(),
        "line": f.line,
        "column": f.column,
        "message": f.message,
        "hint": f.hint,
        "statement": f.statement,
    })
}

pub fn render_json(path: &Path, r: &Report) -> String {
    let doc = json!({
        "config": path.display().to_string(),
        "ok": r.summary.is_some(),
        "summary": r.summary,
        "counts": {
            "error": r.count(Severity::Error),
            "security warning": r.count(Severity::SecurityWarning),
            "warning": r.count(Severity::Warning),
            "suggestion": r.count(Severity::Suggestion),
        },
        "findings": r.findings.iter().map(finding_json).collect::<Vec<_>>(),
        "statements": r.statements,
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::SecurityWarning | Severity::Warning => "warning",
        Severity::Suggestion => "note",
    }
}

/// A file as a SARIF artifact URI: relative paths stay relative (to the
/// directory `check` ran in, SARIF's `%SRCROOT%`), others are file URIs.
fn uri(path: &Path) -> String {
    let cwd = std::env::current_dir().ok();
    let rel = match cwd.as_deref().and_then(|c| path.strip_prefix(c).ok()) {
        Some(r) => r,
        None => path,
    };
    let text = rel.to_string_lossy().replace('\\', "/");
    let text = text.strip_prefix("./").unwrap_or(&text).to_string();
    let encoded: String = text
        .chars()
        .map(|c| match c {
            ' ' => "%20".to_string(),
            '%' => "%25".to_string(),
            '#' => "%23".to_string(),
            c => c.to_string(),
        })
        .collect();
    if rel.is_absolute() {
        format!("file://{encoded}")
    } else {
        encoded
    }
}

pub fn render_sarif(r: &Report) -> String {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|rule| {
            let mut tags = vec!["policy"];
            if rule.severity == Severity::SecurityWarning {
                tags.push("security");
            }
            json!({
                "id": rule.code,
                "name": rule.code,
                "shortDescription": { "text": rule.title },
                "defaultConfiguration": { "level": level(rule.severity) },
                "properties": { "tags": tags, "severity": rule.severity.as_str() },
            })
        })
        .collect();
    let results: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            let index = RULES.iter().position(|rule| rule.code == f.code);
            let text = if f.hint.is_empty() {
                f.message.clone()
            } else {
                format!("{} (fix: {})", f.message, f.hint)
            };
            let mut region = json!({ "startLine": f.line, "startColumn": f.column });
            if let Some(s) = &f.snippet {
                region["snippet"] = json!({ "text": s });
            }
            json!({
                "ruleId": f.code,
                "ruleIndex": index,
                "level": level(f.severity),
                "message": { "text": text },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri(&f.file) },
                        "region": region,
                    }
                }],
                "properties": { "severity": f.severity.as_str(), "statement": f.statement },
            })
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "s3gate",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}
