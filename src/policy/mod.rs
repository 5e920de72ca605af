//! Policies: IAM-shaped statements in YAML files, compiled for fast
//! decisions, checked with file:line:column errors, reloaded live.

pub mod actions;
pub mod condition;
pub mod context;
pub mod eval;
pub mod findings;
pub mod glob;
pub mod model;
pub mod parse;
pub mod reload;
pub mod testing;

use std::collections::HashSet;
use std::path::PathBuf;

use crate::config::ConfigError;
pub use eval::{Decision, PolicySet};
pub use model::Effect;

/// The policy files under `paths` (files, and `.yaml`/`.yml`/`.json` files
/// in folders, sorted), following symlinks as ConfigMap volumes use them.
pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ConfigError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .map_err(|e| ConfigError::file(p, format!("cannot read policy path: {e}")))?;
        if meta.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| ConfigError::file(p, format!("cannot list: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    // Kubernetes' `..data` and dot files are not policies.
                    !name.starts_with('.')
                        && matches!(
                            f.extension().and_then(|e| e.to_str()),
                            Some("yaml" | "yml" | "json")
                        )
                        && f.is_file()
                })
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Load and compile every policy file; all problems at once.
pub fn load(
    paths: &[PathBuf],
    principals: Option<&[String]>,
) -> Result<PolicySet, Vec<ConfigError>> {
    let files = files(paths).map_err(|e| vec![e])?;
    let known: Option<HashSet<String>> = principals.map(|p| p.iter().cloned().collect());
    let mut statements = Vec::new();
    let mut tests = Vec::new();
    let mut errors = Vec::new();
    let mut digest = <sha2::Sha256 as sha2::Digest>::new();
    for f in &files {
        match std::fs::read_to_string(f) {
            Err(e) => errors.push(ConfigError::file(f, format!("cannot read: {e}"))),
            Ok(src) => match parse::parse_file(f, &src, known.as_ref()) {
                Ok(p) => {
                    for part in [f.to_string_lossy().as_bytes(), b"\0", src.as_bytes(), b"\0"] {
                        sha2::Digest::update(&mut digest, part);
                    }
                    statements.extend(p.statements);
                    tests.extend(p.tests);
                }
                Err(e) => errors.extend(e),
            },
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let names: Vec<String> = principals.map(<[String]>::to_vec).unwrap_or_default();
    let mut set = PolicySet::new(statements, tests, &names);
    set.version = hex::encode(sha2::Digest::finalize(digest))[..12].to_string();
    Ok(set)
}
