//! Reading policy files (YAML, or IAM JSON which is YAML too) into
//! statements, reporting every problem with file:line:column.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use serde_yaml::Value;

use super::actions;
use super::condition::{self, Condition};
use super::glob;
use super::model::{Effect, PrincipalMatch, Statement, TestCase};
use crate::config::diagnostics::did_you_mean;
use crate::config::locate::{locate, Step};
use crate::config::ConfigError;

/// The fields a statement may have (the policy schema lists the same).
pub const STATEMENT_KEYS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];
/// The fields of a policy document.
pub const TOP_KEYS: &[&str] = &["Version", "Id", "Statement", "Tests"];
/// The fields of a `Tests:` case, and of its `request`.
pub const TEST_KEYS: &[&str] = &["name", "request", "expect"];
pub const TEST_REQUEST_KEYS: &[&str] = &["principal", "action", "resource", "context"];

pub struct Parsed {
    pub statements: Vec<Statement>,
    pub tests: Vec<TestCase>,
}

struct Cx<'a> {
    file: &'a Path,
    name: Arc<str>,
    src: &'a str,
    errors: Vec<ConfigError>,
    /// Principal names the config defines (None: do not check).
    principals: Option<&'a HashSet<String>>,
    /// Names the config does not define: kept apart so that `check` can
    /// still analyse the statements that name them.
    unknown_principals: Vec<ConfigError>,
}

fn k(s: &str) -> Step {
    Step::Key(s.to_string())
}

impl Cx<'_> {
    fn error(&mut self, path: &[Step], msg: impl Into<String>) {
        let e = ConfigError::at_path(self.file, self.src, path, msg.into());
        self.errors.push(e);
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A single value or a list of values, as IAM accepts both.
fn strings(cx: &mut Cx<'_>, path: &[Step], v: &Value, what: &str) -> Vec<String> {
    match v {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let s = scalar(item);
                if s.is_none() {
                    let mut p = path.to_vec();
                    p.push(Step::Index(i));
                    cx.error(&p, format!("{what} must be a string"));
                }
                s
            })
            .collect(),
        other => match scalar(other) {
            Some(s) => vec![s],
            None => {
                cx.error(
                    path,
                    format!("{what} must be a string or a list of strings"),
                );
                Vec::new()
            }
        },
    }
}

pub fn parse_file(
    file: &Path,
    src: &str,
    principals: Option<&HashSet<String>>,
) -> Result<Parsed, Vec<ConfigError>> {
    let (parsed, unknown) = parse_file_split(file, src, principals);
    match parsed {
        Ok(p) if unknown.is_empty() => Ok(p),
        Ok(_) => Err(unknown),
        Err(mut errors) => {
            // In document order among the others.
            for u in unknown {
                let at = errors
                    .iter()
                    .position(|e| (e.line, e.column) > (u.line, u.column))
                    .unwrap_or(errors.len());
                errors.insert(at, u);
            }
            Err(errors)
        }
    }
}

/// As [`parse_file`], with the principals the config does not define
/// apart: the statements naming them are still returned (for `check`,
/// which reports them as findings beside the others).
pub fn parse_file_split(
    file: &Path,
    src: &str,
    principals: Option<&HashSet<String>>,
) -> (Result<Parsed, Vec<ConfigError>>, Vec<ConfigError>) {
    let name: Arc<str> = Arc::from(file.display().to_string());
    let mut cx = Cx {
        file,
        name,
        src,
        errors: Vec::new(),
        principals,
        unknown_principals: Vec::new(),
    };
    let parsed = parse_doc(&mut cx);
    (parsed, cx.unknown_principals)
}

fn parse_doc(cx: &mut Cx<'_>) -> Result<Parsed, Vec<ConfigError>> {
    let (file, src) = (cx.file, cx.src);
    let doc: Value = match serde_yaml::from_str(src) {
        Ok(v) => v,
        Err(e) => return Err(vec![ConfigError::yaml(file, src, &e)]),
    };
    let Value::Mapping(top) = &doc else {
        cx.error(&[], "a policy must be a mapping with Version and Statement");
        return Err(std::mem::take(&mut cx.errors));
    };
    for key in top.keys() {
        let n = key.as_str().unwrap_or("");
        if !TOP_KEYS.contains(&n) {
            let hint = did_you_mean(n, TOP_KEYS)
                .map(|s| format!(" — did you mean {s}?"))
                .unwrap_or_default();
            cx.error(&[k(n)], format!("unknown policy field `{n}`{hint}"));
        }
    }
    if let Some(v) = top.get("Version").and_then(scalar) {
        if v != "2012-10-17" && v != "2008-10-17" {
            cx.error(
                &[k("Version")],
                format!("Version `{v}` is not an IAM policy version (use \"2012-10-17\")"),
            );
        }
    }
    let mut statements = Vec::new();
    match top.get("Statement") {
        None => cx.error(&[], "a policy needs a Statement"),
        Some(Value::Sequence(items)) => {
            for (i, s) in items.iter().enumerate() {
                if let Some(st) = statement(cx, &[k("Statement"), Step::Index(i)], i, s) {
                    statements.push(st);
                }
            }
        }
        Some(s @ Value::Mapping(_)) => statements.extend(statement(cx, &[k("Statement")], 0, s)),
        Some(_) => cx.error(
            &[k("Statement")],
            "Statement must be a statement or a list of statements",
        ),
    }
    let mut tests = Vec::new();
    if let Some(t) = top.get("Tests") {
        match t {
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    tests.extend(test_case(cx, &[k("Tests"), Step::Index(i)], item));
                }
            }
            _ => cx.error(&[k("Tests")], "Tests must be a list"),
        }
    }
    if cx.errors.is_empty() {
        Ok(Parsed { statements, tests })
    } else {
        Err(std::mem::take(&mut cx.errors))
    }
}

fn statement(cx: &mut Cx<'_>, path: &[Step], index: usize, v: &Value) -> Option<Statement> {
    let Value::Mapping(m) = v else {
        cx.error(path, "a statement must be a mapping");
        return None;
    };
    let at = |key: &str| {
        let mut p = path.to_vec();
        p.push(k(key));
        p
    };
    let before = cx.errors.len();
    for key in m.keys() {
        let n = key.as_str().unwrap_or("");
        if !STATEMENT_KEYS.contains(&n) {
            let hint = did_you_mean(n, STATEMENT_KEYS)
                .map(|s| format!(" — did you mean {s}?"))
                .unwrap_or_default();
            cx.error(&at(n), format!("unknown statement field `{n}`{hint}"));
        }
    }
    let sid = m.get("Sid").and_then(scalar);
    let effect = match m.get("Effect").and_then(scalar).as_deref() {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => {
            cx.error(
                &at("Effect"),
                format!("Effect must be Allow or Deny, not `{other}`"),
            );
            Effect::Deny
        }
        None => {
            cx.error(path, "a statement needs an Effect (Allow or Deny)");
            Effect::Deny
        }
    };
    let principal = match (m.get("Principal"), m.get("NotPrincipal")) {
        (Some(_), Some(_)) => {
            cx.error(
                &at("NotPrincipal"),
                "a statement has either Principal or NotPrincipal, not both",
            );
            PrincipalMatch::Any
        }
        (Some(p), None) => principal_names(cx, &at("Principal"), p)
            .map_or(PrincipalMatch::Any, PrincipalMatch::Names),
        (None, Some(p)) => {
            PrincipalMatch::Not(principal_names(cx, &at("NotPrincipal"), p).unwrap_or_default())
        }
        // An IAM identity policy has no Principal: it applies to every
        // authenticated principal.
        (None, None) => PrincipalMatch::Any,
    };
    let (actions, not_action) = match (m.get("Action"), m.get("NotAction")) {
        (Some(a), None) => (action_list(cx, &at("Action"), a), false),
        (None, Some(a)) => (action_list(cx, &at("NotAction"), a), true),
        (Some(_), Some(_)) => {
            cx.error(
                &at("NotAction"),
                "a statement has either Action or NotAction, not both",
            );
            (Vec::new(), false)
        }
        (None, None) => {
            cx.error(path, "a statement needs an Action or NotAction");
            (Vec::new(), false)
        }
    };
    let (resources, not_resource) = match (m.get("Resource"), m.get("NotResource")) {
        (Some(r), None) => (resource_list(cx, &at("Resource"), r), false),
        (None, Some(r)) => (resource_list(cx, &at("NotResource"), r), true),
        (Some(_), Some(_)) => {
            cx.error(
                &at("NotResource"),
                "a statement has either Resource or NotResource, not both",
            );
            (Vec::new(), false)
        }
        // IAM requires a Resource; s3gate reads its absence as "*".
        (None, None) => (vec!["*".to_string()], false),
    };
    let conditions = match m.get("Condition") {
        Some(c) => conditions(cx, &at("Condition"), c),
        None => Vec::new(),
    };
    if cx.errors.len() > before {
        return None;
    }
    Some(Statement {
        file: cx.name.clone(),
        sid,
        index,
        line: locate(cx.src, path).0,
        effect,
        principal,
        actions,
        not_action,
        resources,
        not_resource,
        conditions,
    })
}

/// Principal names; `*` and `{AWS: ...}` forms; IAM user ARNs name the user.
fn principal_names(cx: &mut Cx<'_>, path: &[Step], v: &Value) -> Option<HashSet<String>> {
    // `{ AWS: …, s3gate: … }`: every name of both keys; any other key
    // (CanonicalUser, Federated, Service) names nobody the gateway knows.
    let names = match v {
        Value::Mapping(m) => {
            let mut names = Vec::new();
            for (k, inner) in m {
                match k.as_str() {
                    Some("AWS" | "s3gate") => names.extend(strings(cx, path, inner, "Principal")),
                    _ => {
                        cx.error(
                            path,
                            "Principal keys are AWS and s3gate (the gateway's principal names)",
                        );
                        return None;
                    }
                }
            }
            if names.is_empty() {
                cx.error(
                    path,
                    "Principal must be a name, a list of names, \"*\" or { AWS: ... }",
                );
                return None;
            }
            names
        }
        other => strings(cx, path, other, "Principal"),
    };
    if names.is_empty() {
        cx.error(path, "Principal must name at least one principal");
        return None;
    }
    let mut out = HashSet::new();
    for n in names {
        let name = n
            .rsplit_once(":user/")
            .map_or(n.as_str(), |(_, u)| u)
            .to_string();
        // `*` is every signed principal; the other names of the list still
        // count (a Deny on `[anonymous, "*"]` must catch anonymous too).
        if let Some(known) = cx.principals.filter(|_| name != "*") {
            if name != "anonymous" && !known.contains(&name) {
                let list: Vec<&str> = known.iter().map(String::as_str).collect();
                let hint = did_you_mean(&name, &list)
                    .map(|s| format!(" — did you mean {s}?"))
                    .unwrap_or_default();
                let e = ConfigError::at_path(
                    cx.file,
                    cx.src,
                    path,
                    format!("principal `{name}` does not exist in the gateway's principals{hint}"),
                );
                cx.unknown_principals.push(e);
            }
        }
        out.insert(name);
    }
    Some(out)
}

fn action_list(cx: &mut Cx<'_>, path: &[Step], v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let list = strings(cx, path, v, "Action");
    if list.is_empty() {
        // IAM refuses it; a NotAction: [] would match every action.
        cx.error(
            path,
            "an empty action list matches nothing (or, negated, everything)",
        );
    }
    for a in list {
        if a == "*" || a.eq_ignore_ascii_case("s3:*") {
            out.push("*".to_string());
            continue;
        }
        let lower = a.to_ascii_lowercase();
        let known = if glob::has_wildcard(&a) {
            actions::KNOWN
                .iter()
                .any(|k| glob::matches(&lower, &k.to_ascii_lowercase()))
        } else {
            actions::canonical(&a).is_some()
        };
        if !known {
            let hint = did_you_mean(&a, actions::KNOWN)
                .map(|s| format!(" — did you mean {s}?"))
                .unwrap_or_default();
            let what = if glob::has_wildcard(&a) {
                "matches no S3 action"
            } else {
                "is not an S3 action s3gate knows"
            };
            cx.error(path, format!("{a} {what}{hint}"));
            continue;
        }
        out.push(lower);
    }
    out
}

fn resource_list(cx: &mut Cx<'_>, path: &[Step], v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let list = strings(cx, path, v, "Resource");
    if list.is_empty() {
        cx.error(
            path,
            "an empty resource list matches nothing (or, negated, everything)",
        );
    }
    for r in list {
        if r.contains("${") {
            // Not substituted: read literally it would match a key named
            // `${aws:username}`, and a Deny holding one would never match.
            cx.error(path, format!("policy variables are not supported: `{r}`"));
            continue;
        }
        let ok = r == "*"
            || r.strip_prefix("arn:aws:s3:::").is_some_and(|rest| {
                let bucket = rest.split('/').next().unwrap_or("");
                !bucket.is_empty()
                    && bucket.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || "-._*?".contains(c)
                    })
            });
        if !ok {
            cx.error(path, format!("malformed resource `{r}`: expected \"*\", arn:aws:s3:::bucket or arn:aws:s3:::bucket/key-pattern"));
            continue;
        }
        out.push(r);
    }
    out
}

fn conditions(cx: &mut Cx<'_>, path: &[Step], v: &Value) -> Vec<Condition> {
    let Value::Mapping(ops) = v else {
        cx.error(path, "Condition must be a mapping of operators");
        return Vec::new();
    };
    let mut out = Vec::new();
    for (op, body) in ops {
        let op = op.as_str().unwrap_or("").to_string();
        let mut p = path.to_vec();
        p.push(k(&op));
        let Some((set, base, if_exists)) = condition::parse_operator(&op) else {
            let names = condition::operator_names();
            let list: Vec<&str> = names.iter().map(String::as_str).collect();
            let hint = did_you_mean(&op, &list)
                .map(|s| format!(" — did you mean {s}?"))
                .unwrap_or_default();
            cx.error(&p, format!("unknown condition operator `{op}`{hint}"));
            continue;
        };
        let Value::Mapping(keys) = body else {
            cx.error(&p, format!("{op} must map condition keys to values"));
            continue;
        };
        for (key, values) in keys {
            let key = key.as_str().unwrap_or("").to_string();
            let mut kp = p.clone();
            kp.push(k(&key));
            let Some(canonical) = condition::canonical_key(&key) else {
                let hint = did_you_mean(&key, condition::KNOWN_KEYS)
                    .map(|s| format!(" — did you mean {s}?"))
                    .unwrap_or_default();
                cx.error(&kp, format!("unknown condition key `{key}`{hint}"));
                continue;
            };
            let values = strings(cx, &kp, values, "a condition value");
            if matches!(
                base,
                condition::Base::IpAddress | condition::Base::NotIpAddress
            ) {
                for v in &values {
                    if !condition::valid_cidr(v) {
                        cx.error(&kp, format!("`{v}` is not an IP address or CIDR block"));
                    }
                }
            }
            out.push(Condition {
                operator: op.clone(),
                base,
                set,
                if_exists,
                key: canonical.to_ascii_lowercase(),
                values,
            });
        }
    }
    out
}

fn test_case(cx: &mut Cx<'_>, path: &[Step], v: &Value) -> Option<TestCase> {
    let Value::Mapping(m) = v else {
        cx.error(
            path,
            "a test must be a mapping with name, request and expect",
        );
        return None;
    };
    let name = m
        .get("name")
        .and_then(scalar)
        .unwrap_or_else(|| "(unnamed)".into());
    let Some(Value::Mapping(req)) = m.get("request") else {
        cx.error(
            path,
            format!("test `{name}`: request must be a mapping with principal, action, resource"),
        );
        return None;
    };
    let get = |f: &str| req.get(f).and_then(scalar);
    let (Some(principal), Some(action), Some(resource)) =
        (get("principal"), get("action"), get("resource"))
    else {
        cx.error(
            path,
            format!("test `{name}`: request needs principal, action and resource"),
        );
        return None;
    };
    if actions::canonical(&action).is_none() {
        let hint = did_you_mean(&action, actions::KNOWN)
            .map(|s| format!(" — did you mean {s}?"))
            .unwrap_or_default();
        cx.error(
            path,
            format!("test `{name}`: {action} is not an S3 action s3gate knows{hint}"),
        );
    }
    let mut context = Vec::new();
    if let Some(Value::Mapping(c)) = req.get("context") {
        for (key, val) in c {
            let key = key.as_str().unwrap_or("").to_string();
            let mut p = path.to_vec();
            p.push(k("request"));
            let vals = strings(cx, &p, val, "a context value");
            context.push((key.to_ascii_lowercase(), vals));
        }
    }
    let expect = match m.get("expect").and_then(scalar).as_deref() {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => {
            cx.error(path, format!("test `{name}`: expect must be Allow or Deny"));
            return None;
        }
    };
    Some(TestCase {
        file: cx.name.clone(),
        line: locate(cx.src, path).0,
        name,
        principal,
        action,
        resource,
        context,
        expect,
    })
}

#[cfg(test)]
mod tests;
