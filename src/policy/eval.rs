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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    const SRC: &str = "\
Version: \"2012-10-17\"
Statement:
  - Sid: Reader
    Effect: Allow
    Principal: etl
    Action: s3:GetObject
    Resource: arn:aws:s3:::b/*
  - Sid: OnlyReads
    Effect: Deny
    Principal: etl
    NotAction: s3:GetObject
    Resource: \"*\"
  - Sid: Janitor
    Effect: Allow
    Principal: janitor
    Action: \"s3:*\"
    Resource: \"*\"
  - Sid: Inside
    Effect: Allow
    Principal: etl
    Action: s3:GetObject
    Resource: \"*\"
    Condition:
      IpAddress: { aws:SourceIp: 10.0.0.0/8 }
";

    fn set() -> PolicySet {
        let p = super::super::parse::parse_file(Path::new("p.yaml"), SRC, None).expect("parses");
        PolicySet::new(p.statements, Vec::new(), &["etl".to_string()])
    }

    fn need(action: &'static str, resource: &str) -> Need {
        Need {
            action,
            resource: resource.into(),
        }
    }

    /// `s3gate explain`'s trace: every statement, and the first reason it
    /// does not match (principal, then action, resource, condition).
    #[test]
    fn trace_says_why_each_statement_matches_or_not() {
        let mut ctx = ContextKeys::new();
        ctx.insert("aws:sourceip".into(), vec!["192.0.2.1".into()]);
        let t = set().trace("etl", &need("s3:GetObject", "arn:aws:s3:::b/k"), &ctx);
        let names: Vec<&str> = t.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "p.yaml#Reader",
                "p.yaml#OnlyReads",
                "p.yaml#Janitor",
                "p.yaml#Inside"
            ]
        );
        assert_eq!(t[0].1, Effect::Allow);
        assert_eq!(t[0].2, Ok(()));
        assert_eq!(t[1].1, Effect::Deny);
        assert_eq!(
            t[1].2,
            Err("action s3:GetObject is not in the statement's NotAction (it is excluded)".into())
        );
        assert_eq!(
            t[2].2,
            Err("principal etl is not named by the statement".into())
        );
        let Err(why) = &t[3].2 else {
            panic!("the condition is false outside 10/8: {:?}", t[3])
        };
        assert!(why.starts_with("condition false: "), "{why}");

        let t = set().trace("etl", &need("s3:PutObject", "arn:aws:s3:::c/k"), &ctx);
        assert_eq!(
            t[0].2,
            Err("action s3:PutObject is not in the statement's Action".into())
        );
        assert_eq!(t[1].2, Ok(()));
        let t = set().trace("etl", &need("s3:GetObject", "arn:aws:s3:::c/k"), &ctx);
        assert_eq!(
            t[0].2,
            Err("resource arn:aws:s3:::c/k does not match [\"arn:aws:s3:::b/*\"]".into())
        );
        ctx.insert("aws:sourceip".into(), vec!["10.1.2.3".into()]);
        let t = set().trace("etl", &need("s3:GetObject", "arn:aws:s3:::c/k"), &ctx);
        assert_eq!(t[3].2, Ok(()));
    }

    /// Deny wins over Allow, every need must be allowed, no need is no
    /// permission; the deciding statements are named.
    #[test]
    fn decisions_name_their_statements() {
        let s = set();
        let ctx = ContextKeys::new();
        let read = need("s3:GetObject", "arn:aws:s3:::b/k");
        let write = need("s3:PutObject", "arn:aws:s3:::b/k");
        let d = s.decide("etl", std::slice::from_ref(&read), &ctx);
        assert!(d.allowed());
        assert_eq!(d.statements, ["p.yaml#Reader"]);
        let d = s.decide("etl", &[read.clone(), write.clone()], &ctx);
        assert_eq!(
            (d.effect, d.statements),
            (Effect::Deny, vec!["p.yaml#OnlyReads".to_string()])
        );
        assert!(!s.decide("etl", &[], &ctx).allowed());
        let d = s.decide("janitor", &[read, write], &ctx);
        assert_eq!(
            (d.effect, d.statements),
            (Effect::Allow, vec!["p.yaml#Janitor".to_string()])
        );
        // A principal the index was not built for is decided the same way.
        assert!(!s
            .decide_one("stranger", &need("s3:GetObject", "arn:aws:s3:::b/k"), &ctx)
            .allowed());
    }

    /// The spelling decision logs, `s3gate test` and `s3gate explain` print.
    #[test]
    fn effects_are_spelled_as_iam_spells_them() {
        assert_eq!(Effect::Allow.as_str(), "Allow");
        assert_eq!(Effect::Deny.as_str(), "Deny");
    }
}
