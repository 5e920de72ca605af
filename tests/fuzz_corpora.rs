//! Replays the fuzz corpora (`fuzz/corpus/<target>/`) and the saved
//! reproducers of fixed findings (`fuzz/regressions/<target>/`) through the
//! same functions the cargo-fuzz targets call, on stable: a regression of
//! anything the fuzzers found fails here. See `fuzz/README.md`.

use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("operation", s3gate::fuzzing::operation),
    ("round_trip", s3gate::fuzzing::round_trip),
    ("sigv4", s3gate::fuzzing::sigv4),
    ("sigv2", s3gate::fuzzing::sigv2),
    ("aws_chunked", s3gate::fuzzing::aws_chunked),
    ("xml", s3gate::fuzzing::xml),
    ("policy", s3gate::fuzzing::policy),
    ("config", s3gate::fuzzing::config),
    ("form", s3gate::fuzzing::form),
    ("post_policy", s3gate::fuzzing::post_policy),
];

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let f = TARGETS
        .iter()
        .find(|(n, _)| *n == target)
        .map(|(_, f)| *f)
        .expect("target");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let corpus = inputs(&root.join("corpus").join(target));
    assert!(!corpus.is_empty(), "fuzz/corpus/{target} has no inputs");
    let regressions = inputs(&root.join("regressions").join(target));
    let mut failed = Vec::new();
    for file in corpus.iter().chain(&regressions) {
        let data = std::fs::read(file).expect("read input");
        if std::panic::catch_unwind(|| f(&data)).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} input(s) panic; reproduce with `cargo +nightly fuzz run {target} <file>`:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn operation() {
    replay("operation");
}

#[test]
fn round_trip() {
    replay("round_trip");
}

#[test]
fn sigv4() {
    replay("sigv4");
}

#[test]
fn sigv2() {
    replay("sigv2");
}

#[test]
fn aws_chunked() {
    replay("aws_chunked");
}

#[test]
fn xml() {
    replay("xml");
}

#[test]
fn policy() {
    replay("policy");
}

#[test]
fn config() {
    replay("config");
}

#[test]
fn form() {
    replay("form");
}

#[test]
fn post_policy() {
    replay("post_policy");
}
