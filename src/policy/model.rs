//! A loaded policy: statements and the test cases that travel with them.

use std::collections::HashSet;
use std::sync::Arc;

use super::condition::Condition;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

impl Effect {
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        }
    }
}

/// Who a statement applies to. Names are the gateway's principal names;
/// `*` is every authenticated principal, `anonymous` unsigned requests —
/// except in a Deny, where `*` (and a statement without a Principal) also
/// catches anonymous requests, as an IAM author writing "deny everyone"
/// expects: a Deny is never narrower than it reads.
#[derive(Debug, Clone)]
pub enum PrincipalMatch {
    Any,
    Names(HashSet<String>),
    Not(HashSet<String>),
}

impl PrincipalMatch {
    pub fn applies_to(&self, principal: &str, deny: bool) -> bool {
        let authenticated = principal != "anonymous";
        let everyone = authenticated || deny;
        match self {
            PrincipalMatch::Any => everyone,
            PrincipalMatch::Names(n) => n.contains(principal) || (everyone && n.contains("*")),
            PrincipalMatch::Not(n) => {
                !(n.contains(principal) || (authenticated && n.contains("*")))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Statement {
    pub file: Arc<str>,
    pub sid: Option<String>,
    /// Position in its file (0-based) and the line it starts on.
    pub index: usize,
    pub line: usize,
    pub effect: Effect,
    pub principal: PrincipalMatch,
    /// Action patterns, lower-cased (IAM actions are case-insensitive).
    pub actions: Vec<String>,
    pub not_action: bool,
    pub resources: Vec<String>,
    pub not_resource: bool,
    pub conditions: Vec<Condition>,
}

impl Statement {
    /// Whether the statement applies to `principal` (see `PrincipalMatch`).
    pub fn applies_to(&self, principal: &str) -> bool {
        self.principal
            .applies_to(principal, self.effect == Effect::Deny)
    }

    /// `file#Sid` (or `file#3` for a statement without a Sid).
    pub fn name(&self) -> String {
        match &self.sid {
            Some(s) => format!("{}#{s}", self.file),
            None => format!("{}#{}", self.file, self.index),
        }
    }

    pub fn matches_action(&self, action: &str) -> bool {
        let a = action.to_ascii_lowercase();
        let any = self.actions.iter().any(|p| super::glob::matches(p, &a));
        any != self.not_action
    }

    pub fn matches_resource(&self, resource: &str) -> bool {
        let any = self
            .resources
            .iter()
            .any(|p| super::glob::matches(p, resource));
        any != self.not_resource
    }
}

/// A `Tests:` case of a policy file.
#[derive(Debug, Clone)]
pub struct TestCase {
    pub file: Arc<str>,
    pub line: usize,
    pub name: String,
    pub principal: String,
    pub action: String,
    pub resource: String,
    pub context: Vec<(String, Vec<String>)>,
    pub expect: Effect,
}

#[cfg(test)]
mod tests {
    use super::PrincipalMatch::{self, Any, Names, Not};

    fn set(names: &[&str]) -> std::collections::HashSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Who each Principal form applies to, in an Allow and in a Deny:
    /// `*` is every authenticated principal, anonymous only in a Deny;
    /// NotPrincipal is everyone not named (`*` names the authenticated).
    #[test]
    fn principal_forms_as_an_iam_author_reads_them() {
        let cases: &[(PrincipalMatch, &str, bool, bool)] = &[
            // (form, principal, applies in an Allow, applies in a Deny)
            (Any, "alice", true, true),
            (Any, "anonymous", false, true),
            (Names(set(&["etl"])), "etl", true, true),
            (Names(set(&["etl"])), "alice", false, false),
            (Names(set(&["etl"])), "anonymous", false, false),
            (Names(set(&["*"])), "alice", true, true),
            (Names(set(&["*"])), "anonymous", false, true),
            (Names(set(&["anonymous"])), "anonymous", true, true),
            (Not(set(&["etl"])), "etl", false, false),
            (Not(set(&["etl"])), "alice", true, true),
            (Not(set(&["etl"])), "anonymous", true, true),
            (Not(set(&["*"])), "alice", false, false),
            (Not(set(&["*"])), "anonymous", true, true),
            (Not(set(&["anonymous"])), "anonymous", false, false),
            (Not(set(&["anonymous"])), "alice", true, true),
        ];
        for (form, who, allow, deny) in cases {
            assert_eq!(
                (form.applies_to(who, false), form.applies_to(who, true)),
                (*allow, *deny),
                "{form:?} {who}"
            );
        }
    }
}
