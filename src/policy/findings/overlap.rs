//! Findings between statements: an Allow an unconditional Deny covers
//! entirely (it can never decide anything), and statements that repeat an
//! earlier one.

use std::collections::BTreeSet;

use super::kinds;
use super::{Finding, Input};
use crate::policy::glob;
use crate::policy::model::{Effect, Statement};

/// What a statement reaches, expanded over the known principals and actions.
struct Reach<'a> {
    s: &'a Statement,
    principals: BTreeSet<&'a str>,
    actions: BTreeSet<&'static str>,
}

impl<'a> Reach<'a> {
    fn of(s: &'a Statement, universe: &'a [String]) -> Self {
        Reach {
            s,
            principals: universe
                .iter()
                .map(String::as_str)
                .filter(|p| s.applies_to(p))
                .collect(),
            actions: kinds::expand(|a| s.matches_action(a)).into_iter().collect(),
        }
    }
}

pub(super) fn statements(input: &Input<'_>, out: &mut Vec<Finding>) {
    let universe = input.principal_universe();
    let reach: Vec<Reach<'_>> = input
        .statements
        .iter()
        .map(|s| Reach::of(s, &universe))
        .collect();
    for (i, a) in reach.iter().enumerate() {
        if let Some(earlier) = reach[..i].iter().find(|b| same(a, b)) {
            out.push(input.finding(
                "DUPLICATE_STATEMENT",
                a.s,
                &[],
                format!(
                    "{} repeats {} (same effect, principals, actions, resources and conditions)",
                    a.s.name(),
                    earlier.s.name()
                ),
                "remove one of them",
            ));
            continue;
        }
        if a.s.effect != Effect::Allow || a.principals.is_empty() || a.actions.is_empty() {
            continue;
        }
        if let Some(deny) = reach.iter().find(|d| covers(d, a)) {
            out.push(input.finding(
                "SHADOWED_BY_DENY",
                a.s,
                &[],
                format!(
                    "{} never allows anything: {} denies every principal, action and resource it allows, without conditions",
                    a.s.name(),
                    deny.s.name()
                ),
                format!(
                    "narrow {} (a Condition, fewer actions or resources), or remove the Allow",
                    deny.s.name()
                ),
            ));
        }
    }
}

/// Two statements that decide alike.
fn same(a: &Reach<'_>, b: &Reach<'_>) -> bool {
    let (x, y) = (a.s, b.s);
    let resources = |s: &Statement| s.resources.iter().cloned().collect::<BTreeSet<_>>();
    let conditions = |s: &Statement| {
        s.conditions
            .iter()
            .map(|c| {
                let mut v = c.values.clone();
                v.sort();
                (c.operator.clone(), c.key.clone(), v)
            })
            .collect::<BTreeSet<_>>()
    };
    x.effect == y.effect
        && a.principals == b.principals
        && a.actions == b.actions
        && x.not_resource == y.not_resource
        && resources(x) == resources(y)
        && conditions(x) == conditions(y)
}

/// Whether Deny `d` applies, unconditionally, to everything Allow `a` does.
fn covers(d: &Reach<'_>, a: &Reach<'_>) -> bool {
    d.s.effect == Effect::Deny
        && d.s.conditions.is_empty()
        && !d.s.not_resource
        && !a.s.not_resource
        && a.principals.is_subset(&d.principals)
        && a.actions.is_subset(&d.actions)
        && a.s
            .resources
            .iter()
            .all(|r| d.s.resources.iter().any(|p| pattern_covers(p, r)))
}

/// Whether every ARN `inner` matches is matched by `outer`. Read literally,
/// `inner`'s wildcards are swallowed by `outer`'s `*`s, which is sound as
/// long as `outer` has no `?` (a `?` could eat an inner `*`).
fn pattern_covers(outer: &str, inner: &str) -> bool {
    if outer == "*" {
        return true;
    }
    if inner == "*" {
        return false;
    }
    (!outer.contains('?') || !glob::has_wildcard(inner)) && glob::matches(outer, inner)
}

#[cfg(test)]
mod tests {
    use super::pattern_covers;

    #[test]
    fn covering_patterns() {
        assert!(pattern_covers("arn:aws:s3:::b/*", "arn:aws:s3:::b/x/*"));
        assert!(pattern_covers("*", "arn:aws:s3:::b"));
        assert!(!pattern_covers("arn:aws:s3:::b/x/*", "arn:aws:s3:::b/*"));
        assert!(!pattern_covers("arn:aws:s3:::b/a?c", "arn:aws:s3:::b/a*c"));
        assert!(!pattern_covers("arn:aws:s3:::b", "*"));
    }
}
