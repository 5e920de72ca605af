//! Problems in a config or policy file, each with file:line:column, the
//! offending line and, for a typo, the name that was probably meant. Shared
//! by the config checker and the policy parser.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use super::locate::{self, locate, locate_field, Step};

/// One problem in a config or policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub snippet: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(s) = &self.snippet {
            write!(f, "\n    {:>4} | {}", self.line, s)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    /// A problem at `line:column` of `src`, quoting that line.
    pub fn at(file: &Path, src: &str, line: usize, column: usize, message: String) -> Self {
        let snippet = src
            .lines()
            .nth(line.saturating_sub(1))
            .map(|s| s.trim_end().to_string());
        ConfigError {
            file: file.to_path_buf(),
            line,
            column,
            message,
            snippet,
        }
    }

    /// A problem where `path` is written in `src`.
    pub fn at_path(file: &Path, src: &str, path: &[Step], message: String) -> Self {
        let (line, column) = locate(src, path);
        Self::at(file, src, line, column, message)
    }

    /// Text that is not YAML at all.
    pub fn yaml(file: &Path, src: &str, e: &serde_yaml::Error) -> Self {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        Self::at(file, src, line, column, format!("invalid YAML: {e}"))
    }

    /// A problem with a whole file or folder (it cannot be read, …).
    pub fn file(file: &Path, message: String) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            message,
            snippet: None,
        }
    }
}

/// The closest candidate by edit distance, when it is close enough to be a typo.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| {
            (
                levenshtein(&word.to_ascii_lowercase(), &c.to_ascii_lowercase()),
                *c,
            )
        })
        .filter(|(d, c)| *d > 0 && *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// ` — did you mean …?` for a typo of a candidate, else nothing.
pub fn hint(word: &str, candidates: &[&str]) -> String {
    did_you_mean(word, candidates)
        .map(|s| format!(" — did you mean {s}?"))
        .unwrap_or_default()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `Step::Key(s)`.
pub(super) fn k(s: &str) -> Step {
    Step::Key(s.to_string())
}

/// Checking one config file: its text, and the problems found so far.
pub(super) struct Ctx<'a> {
    pub file: &'a Path,
    pub src: &'a str,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigError>,
}

impl<'a> Ctx<'a> {
    pub fn new(file: &'a Path, src: &'a str) -> Self {
        Ctx {
            file,
            src,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn at(&self, path: &[Step], message: String) -> ConfigError {
        ConfigError::at_path(self.file, self.src, path, message)
    }

    pub fn error(&mut self, path: &[Step], message: impl Into<String>) {
        let e = self.at(path, message.into());
        self.errors.push(e);
    }

    pub fn warn(&mut self, path: &[Step], message: impl Into<String>) {
        let w = self.at(path, message.into());
        self.warnings.push(w);
    }

    /// Deserialize one part of the document; on failure record the error
    /// at the offending field when serde names it.
    pub fn parse<T: DeserializeOwned>(&mut self, path: &[Step], v: &Value) -> Option<T> {
        match serde_yaml::from_value::<T>(v.clone()) {
            Ok(t) => Some(t),
            Err(e) => {
                let msg = e.to_string();
                let field = msg
                    .split('`')
                    .nth(1)
                    .filter(|_| msg.starts_with("unknown field"));
                let (line, column) = match field {
                    Some(f) => locate_field(self.src, path, f),
                    None => locate(self.src, path),
                };
                let where_ = locate::display(path);
                let e = ConfigError::at(
                    self.file,
                    self.src,
                    line,
                    column,
                    format!("{where_}: {}", tidy_serde(&msg)),
                );
                self.errors.push(e);
                None
            }
        }
    }

    /// A section that is a list of `T`.
    pub fn list_section<T: DeserializeOwned>(&mut self, name: &str, v: Option<&Value>) -> Vec<T> {
        let Some(v) = v else { return Vec::new() };
        let Value::Sequence(items) = v else {
            self.error(&[k(name)], format!("`{name}` must be a list"));
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| self.parse(&[k(name), Step::Index(i)], item))
            .collect()
    }

    /// A section that maps names to `T`.
    pub fn map_section<T: DeserializeOwned>(
        &mut self,
        name: &str,
        v: Option<&Value>,
    ) -> BTreeMap<String, T> {
        let mut out = BTreeMap::new();
        let Some(v) = v else { return out };
        let Value::Mapping(m) = v else {
            self.error(&[k(name)], format!("`{name}` must be a mapping"));
            return out;
        };
        for (key, item) in m {
            let key = key.as_str().unwrap_or("").to_string();
            if let Some(t) = self.parse(&[k(name), k(&key)], item) {
                out.insert(key, t);
            }
        }
        out
    }
}

/// serde_yaml's untagged-enum message is unhelpful; say what is accepted.
fn tidy_serde(msg: &str) -> String {
    if msg.contains("did not match any variant of untagged enum SecretSource") {
        return "a secret must be \"literal\", { env: VAR } or { file: /path }".into();
    }
    if msg.contains("did not match any variant of untagged enum CredentialsConfig") {
        return "credentials must be aws-default-chain, { assume_role: {...} } or { access_key_id, secret_access_key[, session_token] }".into();
    }
    msg.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        assert_eq!(
            did_you_mean(
                "s3:AbortMultipartUplod",
                &["s3:AbortMultipartUpload", "s3:PutObject"]
            ),
            Some("s3:AbortMultipartUpload")
        );
        assert_eq!(did_you_mean("zzz", &["region"]), None);
        assert_eq!(hint("regoin", &["region"]), " — did you mean region?");
    }

    #[test]
    fn errors_quote_their_line() {
        let e = ConfigError::at(Path::new("f.yaml"), "a: 1\nb: 2\n", 2, 1, "bad".into());
        assert_eq!(e.to_string(), "f.yaml:2:1: bad\n       2 | b: 2");
        let e = ConfigError::file(Path::new("f.yaml"), "cannot read".into());
        assert_eq!(e.to_string(), "f.yaml:1:1: cannot read");
    }
}
