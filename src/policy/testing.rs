//! `s3gate test`: run the `Tests:` cases that policy files carry.

use super::actions::{self, Need};
use super::condition::ContextKeys;
use super::PolicySet;

pub struct Outcome {
    pub passed: usize,
    pub failed: usize,
    pub report: String,
}

pub fn run(set: &PolicySet) -> Outcome {
    let (mut passed, mut failed) = (0, 0);
    let mut report = String::new();
    for t in &set.tests {
        let Some(action) = actions::canonical(&t.action) else {
            // Refused when the file is loaded; never skipped silently.
            failed += 1;
            report.push_str(&format!(
                "FAIL {}:{}: {}: {} is not an S3 action s3gate knows\n",
                t.file, t.line, t.name, t.action
            ));
            continue;
        };
        let ctx: ContextKeys = t.context.iter().cloned().collect();
        let need = Need {
            action,
            resource: t.resource.clone(),
        };
        let d = set.decide_one(&t.principal, &need, &ctx);
        let by = if d.statements.is_empty() {
            "default deny: no statement allows it".to_string()
        } else {
            format!("by {}", d.statements.join(", "))
        };
        if d.effect == t.expect {
            passed += 1;
            report.push_str(&format!(
                "PASS {}:{}: {} ({} {by})\n",
                t.file,
                t.line,
                t.name,
                d.effect.as_str()
            ));
        } else {
            failed += 1;
            report.push_str(&format!(
                "FAIL {}:{}: {}: expected {}, got {} {by}\n",
                t.file,
                t.line,
                t.name,
                t.expect.as_str(),
                d.effect.as_str()
            ));
        }
    }
    Outcome {
        passed,
        failed,
        report,
    }
}
