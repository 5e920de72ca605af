//! Compiled policies and decisions.
//!
//! Statements are indexed by principal and by action at load time
//! (wildcards and NotAction/NotPrincipal are expanded against the known
//! principals and actions), so a decision looks at the statements that can
//! apply to this principal and action only, not at every statement.

use std::collections::HashMap;

use super::actions::{self, Need};
use super::condition::ContextKeys;
use super::model::{Effect, Statement, TestCase};

/// The decision on a request, with the statements that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub effect: Effect,
    /// `file#Sid` of the deciding statements: the explicit Denies, or the
    /// Allows (empty for the default deny).
    pub statements: Vec<String>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.effect == Effect::Allow
    }
}

/// Statement indexes per action, for one principal.
type ByAction = HashMap<&'static str, Vec<u32>>;

#[derive(Debug, Default)]
pub struct PolicySet {
    pub statements: Vec<Statement>,
    pub tests: Vec<TestCase>,
    index: HashMap<String, ByAction>,
    /// For principals the index was not built for (e.g. names only tests use).
    fallback: ByAction,
    /// Which version of the files this is: the first 12 hex digits of a
    /// SHA-256 over every file's path and text as loaded (empty when not
    /// loaded from files). Logged with each decision, so a reader can tell
    /// which whole set decided a request.
    pub version: String,
}

impl PolicySet {
    /// Compile statements for the given principal names (`anonymous` is
    /// always included).
    pub fn new(statements: Vec<Statement>, tests: Vec<TestCase>, principals: &[String]) -> Self {
        let mut names: Vec<String> = principals.to_vec();
        names.push("anonymous".into());
        for t in &tests {
            names.push(t.principal.clone());
        }
        names.sort();
        names.dedup();
        let mut index: HashMap<String, ByAction> = HashMap::new();
        let mut fallback: ByAction = HashMap::new();
        for (i, s) in statements.iter().enumerate() {
            let acts: Vec<&'static str> = actions::KNOWN
                .iter()
                .copied()
                .filter(|a| s.matches_action(a))
                .collect();
            for name in &names {
                if s.applies_to(name) {
                    let by = index.entry(name.clone()).or_default();
                    for a in &acts {
                        by.entry(a).or_default().push(i as u32);
                    }
                }
            }
            for a in &acts {
                fallback.entry(a).or_default().push(i as u32);
            }
        }
        PolicySet {
            statements,
            tests,
            index,
            fallback,
            version: String::new(),
        }
    }

    fn candidates(&self, principal: &str, action: &str) -> Vec<&Statement> {
        let Some(action) = actions::canonical(action) else {
            return Vec::new();
        };
        match self.index.get(principal) {
            Some(by) => by.get(action).map_or(Vec::new(), |v| {
                v.iter().map(|&i| &self.statements[i as usize]).collect()
            }),
            None => self.fallback.get(action).map_or(Vec::new(), |v| {
                v.iter()
                    .map(|&i| &self.statements[i as usize])
                    .filter(|s| s.applies_to(principal))
                    .collect()
            }),
        }
    }

    /// Decide one need: explicit Deny wins, then any Allow, else default deny.
    pub fn decide_one(&self, principal: &str, need: &Need, ctx: &ContextKeys) -> Decision {
        let mut allows = Vec::new();
        let mut denies = Vec::new();
        for s in self.candidates(principal, need.action) {
            if s.matches_resource(&need.resource) && s.conditions.iter().all(|c| c.evaluate(ctx).0)
            {
                match s.effect {
                    Effect::Allow => allows.push(s.name()),
                    Effect::Deny => denies.push(s.name()),
                }
            }
        }
        if !denies.is_empty() {
            Decision {
                effect: Effect::Deny,
                statements: denies,
            }
        } else if !allows.is_empty() {
            Decision {
                effect: Effect::Allow,
                statements: allows,
            }
        } else {
            Decision {
                effect: Effect::Deny,
                statements: Vec::new(),
            }
        }
    }

    /// Decide a request: every need must be allowed.
    pub fn decide(&self, principal: &str, needs: &[Need], ctx: &ContextKeys) -> Decision {
        // Nothing decided is nothing allowed.
        if needs.is_empty() {
            return Decision {
                effect: Effect::Deny,
                statements: Vec::new(),
            };
        }
        let mut allowed_by = Vec::new();
        for need in needs {
            let d = self.decide_one(principal, need, ctx);
            if !d.allowed() {
                return d;
            }
            allowed_by.extend(d.statements);
        }
        allowed_by.dedup();
        Decision {
            effect: Effect::Allow,
            statements: allowed_by,
        }
    }

    /// Every statement and why it did or did not match (for `s3gate explain`).
    pub fn trace(
        &self,
        principal: &str,
        need: &Need,
        ctx: &ContextKeys,
    ) -> Vec<(String, Effect, Result<(), String>)> {
        self.statements
            .iter()
            .map(|s| {
                let verdict = if !s.applies_to(principal) {
                    Err(format!(
                        "principal {principal} is not named by the statement"
                    ))
                } else if !s.matches_action(need.action) {
                    Err(format!(
                        "action {} is not in the statement's {}",
                        need.action,
                        if s.not_action {
                            "NotAction (it is excluded)"
                        } else {
                            "Action"
                        }
                    ))
                } else if !s.matches_resource(&need.resource) {
                    Err(format!(
                        "resource {} does not match {:?}",
                        need.resource, s.resources
                    ))
                } else {
                    match s
                        .conditions
                        .iter()
                        .map(|c| c.evaluate(ctx))
                        .find(|(ok, _)| !ok)
                    {
                        Some((_, why)) => Err(format!("condition false: {why}")),
                        None => Ok(()),
                    }
                };
                (s.name(), s.effect, verdict)
            })
            .collect()
    }
}
