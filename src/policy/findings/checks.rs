//! Findings on one statement at a time: actions and resources that cannot
//! meet, buckets no route reaches, condition keys that are never there, and
//! grants wider than they read.

use super::kinds::{self, ResourceKind};
use super::{Finding, Input, Severity};
use crate::config::did_you_mean;
use crate::config::locate::Step;
use crate::policy::condition::{Base, Condition};
use crate::policy::glob;
use crate::policy::model::{Effect, PrincipalMatch, Statement};

fn key(s: &str) -> Step {
    Step::Key(s.to_string())
}

pub(super) fn statement(input: &Input<'_>, s: &Statement, out: &mut Vec<Finding>) {
    if s.sid.is_none() {
        out.push(input.finding(
            "MISSING_SID",
            s,
            &[],
            format!("statement {} has no Sid", s.name()),
            "add `Sid: SomeName`: decisions, logs and the s3gate_policy_decisions_total metric name statements by it",
        ));
    }
    if s.effect == Effect::Allow {
        grants(input, s, out);
    }
    actions_meet_resources(input, s, out);
    routed_buckets(input, s, out);
    condition_keys(input, s, out);
}

/// Allow statements that grant more than they read.
fn grants(input: &Input<'_>, s: &Statement, out: &mut Vec<Finding>) {
    if let PrincipalMatch::Not(names) = &s.principal {
        let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
        names.sort();
        out.push(input.finding(
            "ALLOW_WITH_NOT_PRINCIPAL",
            s,
            &[key("NotPrincipal")],
            format!(
                "Allow with NotPrincipal [{}] allows every other principal, anonymous included",
                names.join(", ")
            ),
            "name the principals the statement is for in `Principal`",
        ));
    }
    if s.not_action {
        out.push(input.finding(
            "ALLOW_WITH_NOT_ACTION",
            s,
            &[key("NotAction")],
            "Allow with NotAction allows every other action, including ones s3gate learns later".into(),
            "list the actions allowed in `Action`",
        ));
    }
    if s.not_resource {
        out.push(input.finding(
            "ALLOW_WITH_NOT_RESOURCE",
            s,
            &[key("NotResource")],
            "Allow with NotResource allows every other bucket and object".into(),
            "list the buckets and prefixes allowed in `Resource`",
        ));
    }
    let anonymous = s.applies_to("anonymous");
    let everyone = match &s.principal {
        PrincipalMatch::Any => true,
        PrincipalMatch::Names(n) => n.contains("*"),
        PrincipalMatch::Not(_) => true,
    };
    let all_actions = !s.not_action && s.actions.iter().any(|a| a == "*");
    let all_resources = !s.not_resource
        && s.resources
            .iter()
            .any(|r| r == "*" || r == "arn:aws:s3:::*");
    if all_actions && all_resources && s.conditions.is_empty() && (everyone || anonymous) {
        let who = if anonymous {
            "anonymous (unsigned) requests"
        } else {
            "every principal"
        };
        let mut f = input.finding(
            "FULL_ACCESS",
            s,
            &[key("Action")],
            format!("s3:* on every resource for {who}"),
            "grant the actions and buckets each principal needs, one statement per purpose",
        );
        if anonymous {
            f.severity = Severity::Error;
        }
        out.push(f);
    } else if anonymous {
        let writes: Vec<&str> = kinds::expand(|a| s.matches_action(a))
            .into_iter()
            .filter(|a| is_write(a))
            .collect();
        if !writes.is_empty() {
            let shown: Vec<&str> = writes.iter().copied().take(4).collect();
            let more = if writes.len() > 4 {
                format!(" and {} more", writes.len() - 4)
            } else {
                String::new()
            };
            out.push(input.finding(
                "ANONYMOUS_WRITE",
                s,
                &[key(if s.not_action { "NotAction" } else { "Action" })],
                format!("unsigned requests may {}{more}", shown.join(", ")),
                "give writers a principal (a key they sign with); allow anonymous reads only",
            ));
        }
    }
}

/// Actions that change data or configuration.
fn is_write(action: &str) -> bool {
    let name = action.trim_start_matches("s3:");
    ["Put", "Delete", "Create", "Abort", "Restore", "Bypass"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// An Action entry whose actions act on nothing the Resource names.
fn actions_meet_resources(input: &Input<'_>, s: &Statement, out: &mut Vec<Finding>) {
    if s.not_action || s.not_resource {
        return;
    }
    let reaches = |a: &str| {
        let kind = kinds::action_kind(a);
        s.resources.iter().any(|r| kinds::pattern_reaches(r, kind))
    };
    let mut dead = Vec::new();
    for pattern in &s.actions {
        let acts = kinds::expand(|a| glob::matches(pattern, &a.to_ascii_lowercase()));
        if !acts.is_empty() && !acts.iter().any(|a| reaches(a)) {
            dead.push(acts);
        }
    }
    if dead.is_empty() {
        return;
    }
    let resources = s.resources.join(", ");
    let describe = |acts: &[&str]| {
        let kind = kinds::action_kind(acts[0]);
        let name = if acts.len() == 1 {
            acts[0].to_string()
        } else {
            format!("{} (and {} more)", acts[0], acts.len() - 1)
        };
        (name, kind)
    };
    if dead.len() == s.actions.len() {
        let (name, kind) = describe(&dead[0]);
        out.push(input.finding(
            "ACTION_RESOURCE_MISMATCH",
            s,
            &[key("Resource")],
            format!(
                "the statement never matches: {name} acts on {}, and the Resource [{resources}] names none",
                kind.name()
            ),
            hint_for(kind),
        ));
        return;
    }
    for acts in dead {
        let (name, kind) = describe(&acts);
        out.push(input.finding(
            "UNUSED_ACTION",
            s,
            &[key("Action")],
            format!(
                "{name} acts on {}, and the Resource [{resources}] names none: it never matches here",
                kind.name()
            ),
            hint_for(kind),
        ));
    }
}

fn hint_for(kind: ResourceKind) -> String {
    match kind {
        ResourceKind::Object => format!("add an object resource such as {}", kind.example()),
        ResourceKind::Bucket => format!(
            "add the bucket itself ({}, without /…): bucket actions are decided on the bucket ARN",
            kind.example()
        ),
        ResourceKind::Service => "use Resource \"*\" for s3:ListAllMyBuckets".into(),
    }
}

/// Buckets of a Resource that no `buckets` entry routes (without a
/// catch-all `"*"`, requests for them are refused before any policy).
fn routed_buckets(input: &Input<'_>, s: &Statement, out: &mut Vec<Finding>) {
    let buckets = &input.config.buckets;
    if s.not_resource || buckets.contains_key("*") {
        return;
    }
    let names: Vec<&str> = buckets.keys().map(String::as_str).collect();
    for r in &s.resources {
        let Some(rest) = r.strip_prefix("arn:aws:s3:::") else {
            continue;
        };
        let bucket = rest.split('/').next().unwrap_or("");
        if bucket == "*" {
            continue;
        }
        let routed = if glob::has_wildcard(bucket) {
            names.iter().any(|n| glob::matches(bucket, n))
        } else {
            buckets.contains_key(bucket)
        };
        if routed {
            continue;
        }
        let hint = match did_you_mean(bucket, &names) {
            Some(n) => format!("did you mean {n}? Otherwise add `buckets.{bucket}` to the config"),
            None => format!("add `buckets.{bucket}` to the config, or remove the resource"),
        };
        out.push(input.finding(
            "UNROUTED_BUCKET",
            s,
            &[key("Resource")],
            format!("bucket `{bucket}` ({r}) is routed by no `buckets` entry: the gateway refuses its requests before any policy"),
            hint,
        ));
    }
}

/// Condition keys that only some operations carry, on a statement none of
/// whose actions are decided for such an operation.
fn condition_keys(input: &Input<'_>, s: &Statement, out: &mut Vec<Finding>) {
    let actions = kinds::expand(|a| s.matches_action(a));
    for c in &s.conditions {
        let Some(carriers) = kinds::key_carriers(&c.key) else {
            continue;
        };
        if actions.iter().any(|a| carriers.contains(a)) {
            continue;
        }
        let key_name = crate::policy::condition::canonical_key(&c.key).unwrap_or(&c.key);
        let effect = match (absent_satisfies(c), s.effect) {
            (false, Effect::Allow) => "so this Allow never matches",
            (false, Effect::Deny) => "so this Deny never matches",
            (true, _) => "so the condition is always true",
        };
        let mut carriers: Vec<&str> = carriers;
        carriers.sort();
        carriers.dedup();
        let shown: Vec<&str> = carriers.iter().copied().take(3).collect();
        out.push(input.finding(
            "CONDITION_KEY_ABSENT",
            s,
            &[key("Condition"), key(&c.operator), key(key_name)],
            format!(
                "{key_name} is never present on requests for the statement's actions, {effect}"
            ),
            format!(
                "{key_name} is present only for {}{}: move the condition to a statement for those actions",
                shown.join(", "),
                if carriers.len() > 3 { ", …" } else { "" }
            ),
        ));
    }
}

/// Whether a condition holds when its key is absent.
fn absent_satisfies(c: &Condition) -> bool {
    if c.base == Base::Null {
        return c.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
    }
    c.if_exists || c.set == crate::policy::condition::SetOp::ForAllValues
}
