//! Secrets (`"literal"`, `{ env: VAR }`, `{ file: /path }`) resolved once at
//! load, and the principals that hold them. A secret never appears in a
//! message: a literal one is warned about with its value redacted.

use std::collections::HashSet;

use serde_yaml::Value;

use super::diagnostics::{k, Ctx};
use super::locate::{self, Step};
use super::raw::{PrincipalConfig, SecretSource};
use super::ResolvedPrincipal;
use crate::secret::Secret;

/// Resolve a secret; a literal one is accepted with a warning.
pub(super) fn resolve(cx: &mut Ctx<'_>, path: &[Step], s: &SecretSource) -> Option<Secret> {
    let where_ = locate::display(path);
    match s {
        SecretSource::Literal(v) => {
            let mut w = cx.at(
                path,
                format!(
                    "{where_}: secret written inline; prefer {{ env: VAR }} or {{ file: /path }}"
                ),
            );
            // The snippet must not repeat the secret.
            if let (Some(snip), Some(Step::Key(name))) = (&mut w.snippet, path.last()) {
                *snip = redact_value(snip, name, v);
            }
            cx.warnings.push(w);
            Some(Secret::new(v.clone()))
        }
        SecretSource::Env { env } => match std::env::var(env) {
            Ok(v) if !v.is_empty() => Some(Secret::new(v)),
            _ => {
                cx.error(
                    path,
                    format!("{where_}: environment variable {env} is not set"),
                );
                None
            }
        },
        SecretSource::File { file } => match std::fs::read_to_string(file) {
            Ok(v) => Some(Secret::new(v.trim_end_matches(['\n', '\r']).to_string())),
            Err(e) => {
                cx.error(
                    path,
                    format!("{where_}: cannot read secret file {}: {e}", file.display()),
                );
                None
            }
        },
    }
}

/// Replace the value written after `name:` on a line with `<redacted>`.
pub(super) fn redact_value(line: &str, name: &str, value: &str) -> String {
    let Some(k) = line.find(&format!("{name}:")) else {
        return line.to_string();
    };
    let after = k + name.len() + 1;
    match line[after..].find(value) {
        Some(i) if !value.is_empty() => {
            let at = after + i;
            format!("{}<redacted>{}", &line[..at], &line[at + value.len()..])
        }
        _ => format!("{}: <redacted>", &line[..k + name.len()]),
    }
}

/// The `principals` section: unique names and access key ids, secrets resolved.
pub(super) fn principals(cx: &mut Ctx<'_>, v: Option<&Value>) -> Vec<ResolvedPrincipal> {
    let list: Vec<PrincipalConfig> = cx.list_section("principals", v);
    let mut names = HashSet::new();
    let mut keys = HashSet::new();
    let mut out = Vec::new();
    for (i, p) in list.iter().enumerate() {
        let at = |f: &str| [k("principals"), Step::Index(i), k(f)];
        if !names.insert(p.name.clone()) {
            cx.error(
                &at("name"),
                format!("principals[{i}]: the name `{}` is used twice", p.name),
            );
        }
        if ["*", "anonymous"].contains(&p.name.as_str()) {
            cx.error(
                &at("name"),
                format!("principals[{i}]: `{}` is reserved in policies", p.name),
            );
        }
        if !keys.insert(p.access_key_id.clone()) {
            cx.error(
                &at("access_key_id"),
                format!(
                    "principals[{i}]: access key id {} is used twice",
                    p.access_key_id
                ),
            );
        }
        if p.access_key_id.len() < 3 || !p.access_key_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            cx.error(
                &at("access_key_id"),
                format!("principals[{i}].access_key_id must be ASCII letters and digits"),
            );
        }
        if let Some(secret) = resolve(cx, &at("secret_access_key"), &p.secret_access_key) {
            out.push(ResolvedPrincipal {
                name: p.name.clone(),
                access_key_id: p.access_key_id.clone(),
                secret,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_only_the_secret_value() {
        assert_eq!(
            redact_value(
                "  nginx: { access_key_id: N, secret_access_key: n }",
                "secret_access_key",
                "n"
            ),
            "  nginx: { access_key_id: N, secret_access_key: <redacted> }"
        );
        assert_eq!(
            redact_value("    secret_access_key: abc", "secret_access_key", "abc"),
            "    secret_access_key: <redacted>"
        );
    }
}
