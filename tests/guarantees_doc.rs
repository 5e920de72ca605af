//! docs/guarantees.md cannot rot: every test it names exists, every claim has
//! a test (or is marked bench-only), ids are unique, and every README section
//! a claim points at is still a heading of README.md.
//!
//! A claim row is a table row whose first cell is an id `G-…`:
//! `| id | claim | README section | tests | notes |`. The tests cell holds
//! backticked entries: `tests/x.rs::name`, `src/x.rs::name`,
//! `e2e/x.py::name`, `bench: benches/x.rs`, or the placeholder
//! `pending: <area>`, which fails this test until it is replaced by the tests
//! that were written for it.

use std::collections::HashMap;
use std::path::Path;

const AREAS: &[&str] = &["tamper", "ops", "conf", "bench"];

struct Row {
    line: usize,
    id: String,
    section: String,
    tests: String,
    notes: String,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The cells of a markdown table row, `\|` kept inside a cell.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                out.last_mut().expect("one cell at least").push('|');
            }
            '|' => out.push(String::new()),
            c => out.last_mut().expect("one cell at least").push(c),
        }
    }
    out.into_iter().map(|c| c.trim().to_string()).collect()
}

/// The backticked spans of a cell.
fn ticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.trim().to_string())
        .collect()
}

fn rows(doc: &str, problems: &mut Vec<String>) -> Vec<Row> {
    let mut out = Vec::new();
    for (i, line) in doc.lines().enumerate() {
        let line_no = i + 1;
        if !line.trim_start().starts_with("| G-") {
            continue;
        }
        let c = cells(line);
        if c.len() != 5 {
            problems.push(format!(
                "docs/guarantees.md:{line_no}: row has {} cells, expected 5 (id | claim | README section | tests | notes): {line}",
                c.len()
            ));
            continue;
        }
        let id = c[0].trim_matches('`').to_string();
        if c[1].is_empty() {
            problems.push(format!(
                "docs/guarantees.md:{line_no}: {id}: the claim is empty"
            ));
        }
        out.push(Row {
            line: line_no,
            id,
            section: c[2].clone(),
            tests: c[3].clone(),
            notes: c[4].clone(),
        });
    }
    out
}

/// The headings of README.md, without their `#`s.
fn headings(readme: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced && line.starts_with('#') {
            out.push(line.trim_start_matches('#').trim().to_string());
        }
    }
    out
}

/// Whether `file` defines a test called `name`: a Rust `fn name` with a test
/// attribute just above it, or a Python `def name` (pytest: `test_…`).
fn defines_test(file: &str, text: &str, name: &str) -> Result<(), String> {
    if file.ends_with(".py") {
        if !name.starts_with("test_") {
            return Err(format!("`{name}` is not a pytest test name (test_…)"));
        }
        let found = text.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with(&format!("def {name}(")) || l.starts_with(&format!("async def {name}("))
        });
        return if found {
            Ok(())
        } else {
            Err(format!("{file} has no `def {name}(`"))
        };
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut defined = false;
    for (i, l) in lines.iter().enumerate() {
        let l = l.trim_start();
        let def = l.starts_with(&format!("fn {name}("))
            || l.starts_with(&format!("async fn {name}("))
            || l.starts_with(&format!("pub fn {name}("))
            || l.starts_with(&format!("pub async fn {name}("));
        if !def {
            continue;
        }
        defined = true;
        let above = &lines[i.saturating_sub(6)..i];
        if above
            .iter()
            .any(|a| a.trim_start().starts_with("#[") && a.contains("test"))
        {
            return Ok(());
        }
    }
    if defined {
        Err(format!(
            "{file} defines `fn {name}` but not as a test (no #[test] / #[tokio::test] above it)"
        ))
    } else {
        Err(format!("{file} has no `fn {name}(`"))
    }
}

/// Checks one entry of a tests cell; Ok(true) for a test, Ok(false) for a bench.
fn check_entry(entry: &str, files: &mut HashMap<String, Option<String>>) -> Result<bool, String> {
    if let Some(area) = entry.strip_prefix("pending:") {
        let area = area.trim();
        return Err(if AREAS.contains(&area) {
            format!("`{entry}`: still pending, name the test(s) written for it")
        } else {
            format!("`{entry}`: pending area must be one of {AREAS:?}")
        });
    }
    if let Some(bench) = entry.strip_prefix("bench:") {
        let bench = bench.trim();
        if !bench.starts_with("benches/") || !repo().join(bench).is_file() {
            return Err(format!("`{entry}`: no such bench file {bench}"));
        }
        return Ok(false);
    }
    let Some((file, name)) = entry.split_once("::") else {
        return Err(format!(
            "`{entry}`: expected `path::test_name`, `bench: benches/x.rs` or `pending: <area>`"
        ));
    };
    let allowed = (file.starts_with("tests/") || file.starts_with("src/")) && file.ends_with(".rs")
        || file.starts_with("e2e/") && file.ends_with(".py");
    if !allowed {
        return Err(format!(
            "`{entry}`: tests live in tests/*.rs, src/*.rs (unit tests) or e2e/*.py"
        ));
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{entry}`: `{name}` is not a function name"));
    }
    let text = files
        .entry(file.to_string())
        .or_insert_with(|| std::fs::read_to_string(repo().join(file)).ok());
    let Some(text) = text else {
        return Err(format!("`{entry}`: no such file {file}"));
    };
    defines_test(file, text, name).map(|()| true)
}

#[test]
fn every_claim_names_tests_that_exist() {
    let doc =
        std::fs::read_to_string(repo().join("docs/guarantees.md")).expect("docs/guarantees.md");
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let heads = headings(&readme);
    let mut problems = Vec::new();
    let rows = rows(&doc, &mut problems);
    assert!(
        rows.len() >= 50,
        "docs/guarantees.md: only {} claim rows found; is the table's format intact?",
        rows.len()
    );
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut files = HashMap::new();
    for row in &rows {
        let at = format!("docs/guarantees.md:{}: {}", row.line, row.id);
        let id_ok = row.id.starts_with("G-")
            && row.id.len() > 2
            && row
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !id_ok {
            problems.push(format!(
                "{at}: id must be `G-<area>-<nn>` (letters, digits, dashes)"
            ));
        }
        if let Some(first) = seen.insert(&row.id, row.line) {
            problems.push(format!("{at}: duplicate id (first on line {first})"));
        }
        if !heads.iter().any(|h| h == &row.section) {
            problems.push(format!(
                "{at}: README section `{}` is not a heading of README.md (renamed? point the row at the section that now holds the claim)",
                row.section
            ));
        }
        let entries = ticked(&row.tests);
        let (mut tests, mut benches) = (0, 0);
        let pending = entries.iter().any(|e| e.starts_with("pending:"));
        for entry in &entries {
            match check_entry(entry, &mut files) {
                Ok(true) => tests += 1,
                Ok(false) => benches += 1,
                Err(e) => problems.push(format!("{at}: {e}")),
            }
        }
        let bench_only = row.notes.contains("bench-only");
        if entries.is_empty() {
            problems.push(format!("{at}: no test named for this claim"));
        } else if tests == 0 && benches > 0 && !bench_only && !pending {
            problems.push(format!(
                "{at}: backed by a bench alone but not marked `bench-only` in its notes"
            ));
        }
        if bench_only && benches == 0 {
            problems.push(format!(
                "{at}: marked bench-only but names no `bench: benches/…`"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "docs/guarantees.md has {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_readme_points_at_the_table() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let section = readme
        .split("\n## Guarantees\n")
        .nth(1)
        .expect("README.md has a `## Guarantees` section");
    let section = section.split("\n## ").next().unwrap_or(section);
    assert!(
        section.contains("docs/guarantees.md"),
        "README.md's Guarantees section must point at docs/guarantees.md"
    );
}

#[test]
fn the_checker_catches_what_it_should() {
    let mut files = HashMap::new();
    assert!(check_entry("pending: tamper", &mut files).is_err());
    assert!(check_entry("pending: other", &mut files).is_err());
    assert!(check_entry(
        "tests/guarantees_doc.rs::every_claim_names_tests_that_exist",
        &mut files
    )
    .unwrap());
    assert!(check_entry("tests/guarantees_doc.rs::no_such_test", &mut files).is_err());
    assert!(
        check_entry("tests/guarantees_doc.rs::repo", &mut files).is_err(),
        "a helper is not a test"
    );
    assert!(check_entry("tests/nope.rs::x", &mut files).is_err());
    assert!(!check_entry("bench: benches/policy_eval.rs", &mut files).unwrap());
    assert!(check_entry("bench: benches/nope.rs", &mut files).is_err());
    assert_eq!(cells("| a | b \\| c | d |"), vec!["a", "b | c", "d"]);
    let mut problems = Vec::new();
    let r = rows(
        "| G-x-01 | claim | Guarantees | `pending: ops` | |\n| G-x-02 | c | S |\n",
        &mut problems,
    );
    assert_eq!(r.len(), 1);
    assert_eq!(problems.len(), 1, "{problems:?}");
}
