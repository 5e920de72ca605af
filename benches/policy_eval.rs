//! Policy decision time with 1,000 and 10,000 statements (goal: median
//! under 1 µs at 1,000).

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use s3gate::policy::actions::Need;
use s3gate::policy::condition::ContextKeys;
use s3gate::policy::parse::parse_file;
use s3gate::policy::PolicySet;

const ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:ListMultipartUploadParts",
];

fn policy(n: usize, principals: usize) -> PolicySet {
    let mut src = String::from("Version: \"2012-10-17\"\nStatement:\n");
    for i in 0..n {
        let effect = if i % 10 == 9 { "Deny" } else { "Allow" };
        src.push_str(&format!(
            "  - Sid: S{i}\n    Effect: {effect}\n    Principal: p{}\n    Action: [{}, {}]\n    Resource: arn:aws:s3:::bucket{}/prefix{i}/*\n",
            i % principals,
            ACTIONS[i % ACTIONS.len()],
            ACTIONS[(i + 1) % ACTIONS.len()],
            i % 100
        ));
        if i % 5 == 0 {
            src.push_str(
                "    Condition:\n      StringEqualsIfExists: { s3gate:RequestPayer: requester }\n",
            );
        }
    }
    let names: Vec<String> = (0..principals).map(|i| format!("p{i}")).collect();
    let parsed = parse_file(Path::new("bench.yaml"), &src, None).expect("policy parses");
    PolicySet::new(parsed.statements, parsed.tests, &names)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("policy_decide");
    for n in [1_000usize, 10_000] {
        let set = policy(n, 50);
        let ctx: ContextKeys = [("aws:username".to_string(), vec!["p7".to_string()])]
            .into_iter()
            .collect();
        // p7 owns statements 7, 57, 107, …; statement 7 allows this.
        let need = Need {
            action: "s3:PutObject",
            resource: "arn:aws:s3:::bucket7/prefix7/data.bin".into(),
        };
        assert!(set
            .decide("p7", std::slice::from_ref(&need), &ctx)
            .allowed());
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| set.decide("p7", std::slice::from_ref(&need), &ctx))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
