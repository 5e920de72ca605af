//! The `s3gate` command line: serve | check | explain | test.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "s3gate",
    version,
    about = "An S3 gateway: verifies clients' SigV4, decides by policy, re-signs and streams to S3 upstreams"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate the config and its policy files: every error at once, with
    /// file:line:column, and findings (statements that never match, grants
    /// wider than they read) with a code and a fix.
    Check {
        #[arg(long, short)]
        config: PathBuf,
        /// text (for people), json, or sarif (SARIF 2.1.0, for code scanning).
        #[arg(long, default_value = "text", value_parser = ["text", "json", "sarif"])]
        format: String,
        /// Exit non-zero on findings of this severity or worse
        /// (`warning` includes security warnings).
        #[arg(long, default_value = "error", value_parser = ["error", "security-warning", "warning", "suggestion"])]
        fail_on: String,
    },
    /// Explain the decision on a request: operation, IAM action and resource, context, statements.
    Explain {
        #[arg(long, short)]
        config: PathBuf,
        /// The principal making the request (`anonymous` for unsigned).
        #[arg(long, short)]
        principal: String,
        /// A request header, `Name: value` (repeatable).
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
        /// HTTP method (GET, PUT, POST, DELETE, HEAD).
        method: String,
        /// Path and query (`/bucket/key?uploadId=…`) or a full URL.
        url: String,
        /// For operations on an upload: who started it, as
        /// `s3gate:MultipartInitiator` (self, other or unknown).
        #[arg(long, default_value = "unknown", value_parser = ["self", "other", "unknown"])]
        initiator: String,
    },
    /// Probe the admin listener (for container HEALTHCHECKs): exit 0 on 200.
    Health {
        /// The admin address.
        #[arg(long, default_value = "127.0.0.1:9900")]
        address: String,
        /// /healthz or /readyz.
        #[arg(long, default_value = "/healthz")]
        path: String,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Decide the requests of a decision log again with other policies;
    /// print the decisions that would change; non-zero exit when any would.
    Replay {
        #[arg(long, short)]
        config: PathBuf,
        /// Decision log files (`decision_log.path`), oldest first.
        #[arg(long = "decisions", required = true, num_args = 1..)]
        decisions: Vec<PathBuf>,
        /// Policy files or folders to decide with (default: the config's).
        #[arg(long = "policies", num_args = 1..)]
        policies: Vec<PathBuf>,
    },
    /// Print the JSON Schema (draft 2020-12) of the gateway config or of a
    /// policy file, for editors and CI validators (also in schemas/).
    Schema {
        #[arg(value_parser = ["config", "policy"])]
        which: String,
    },
    /// Run the `Tests:` cases of policy files; non-zero exit on any failure.
    Test {
        /// Policy files or folders (default: the config's policy paths).
        paths: Vec<PathBuf>,
        /// A gateway config, to check principal names and find policy paths.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the hash chain of audit files, oldest first
    /// (`audit.jsonl.2 audit.jsonl.1 audit.jsonl`), and that the newest
    /// file reaches the record its head (`audit.jsonl.head`) names.
    Verify { files: Vec<PathBuf> },
    /// Write audit files (oldest first) as CloudTrail S3 data-event
    /// records, one JSON object per line, to standard output.
    Export {
        #[arg(long, value_parser = ["cloudtrail"])]
        format: String,
        /// `awsRegion` of the records (the gateway's `region`).
        #[arg(long, default_value = "us-east-1")]
        region: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check {
            config,
            format,
            fail_on,
        } => check(&config, &format, &fail_on),
        Command::Serve { config } => serve(&config),
        Command::Explain {
            config,
            principal,
            headers,
            method,
            url,
            initiator,
        } => explain(
            &config,
            &s3gate::explain::ExplainRequest {
                principal: &principal,
                headers: &headers,
                method: &method,
                url: &url,
                initiator: Some(&initiator),
            },
        ),
        Command::Test { paths, config } => test(paths, config.as_deref()),
        Command::Audit {
            command: AuditCommand::Verify { files },
        } => audit_verify(&files),
        Command::Audit {
            command:
                AuditCommand::Export {
                    format: _,
                    region,
                    files,
                },
        } => audit_export(&files, &region),
        Command::Health { address, path } => health(&address, &path),
        Command::Replay {
            config,
            decisions,
            policies,
        } => replay(&config, &decisions, &policies),
        Command::Schema { which } => match s3gate::schema::render(&which) {
            Some(s) => {
                print!("{s}");
                ExitCode::SUCCESS
            }
            None => ExitCode::from(2),
        },
    }
}

fn report(errors: &[s3gate::config::ConfigError]) {
    for e in errors {
        eprintln!("error: {e}");
    }
}

fn load_config(path: &Path) -> Option<s3gate::config::Config> {
    match s3gate::config::load(path) {
        Ok(c) => Some(c),
        Err(errors) => {
            report(&errors);
            eprintln!("{}: {} error(s)", path.display(), errors.len());
            None
        }
    }
}

fn check(path: &Path, format: &str, fail_on: &str) -> ExitCode {
    use s3gate::check;
    let report = check::run(path);
    match format {
        "json" => print!("{}", check::render_json(path, &report)),
        "sarif" => print!("{}", check::render_sarif(&report)),
        _ => {
            let (out, err) = check::render_text(path, &report);
            print!("{out}");
            eprint!("{err}");
        }
    }
    let threshold = s3gate::policy::findings::Severity::parse(fail_on)
        .unwrap_or(s3gate::policy::findings::Severity::Error);
    if report.fails(threshold) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn serve(path: &Path) -> ExitCode {
    let Some(config) = load_config(path) else {
        return ExitCode::from(1);
    };
    s3gate::logging::init(config.log.format, config.log.level.as_deref());
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    match s3gate::server::serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn explain(path: &Path, r: &s3gate::explain::ExplainRequest<'_>) -> ExitCode {
    let Some(config) = load_config(path) else {
        return ExitCode::from(1);
    };
    let policies = match s3gate::state::load_policies(&config) {
        Ok(Some(p)) => p,
        Ok(None) => {
            eprintln!("{}: no policies configured (policies.paths): every authenticated principal is allowed", path.display());
            return ExitCode::from(1);
        }
        Err(errors) => {
            report(&errors);
            return ExitCode::from(1);
        }
    };
    match s3gate::explain::explain(&config, std::sync::Arc::new(policies), r) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn test(mut paths: Vec<PathBuf>, config: Option<&Path>) -> ExitCode {
    let mut principals = None;
    if let Some(c) = config {
        let Some(cfg) = load_config(c) else {
            return ExitCode::from(1);
        };
        if paths.is_empty() {
            paths = cfg.policies.paths.clone();
        }
        principals = Some(s3gate::state::principal_names(&cfg));
    }
    if paths.is_empty() {
        eprintln!("error: name policy files or folders, or --config");
        return ExitCode::from(2);
    }
    let set = match s3gate::policy::load(&paths, principals.as_deref()) {
        Ok(s) => s,
        Err(errors) => {
            report(&errors);
            return ExitCode::from(1);
        }
    };
    let out = s3gate::policy::testing::run(&set);
    print!("{}", out.report);
    println!("{} passed, {} failed", out.passed, out.failed);
    if out.passed + out.failed == 0 {
        // Nothing was checked: a run that proves nothing must not pass
        // (a folder without `Tests:`, a wrong path, tests removed).
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "error: no test cases: the policy files in {} have no Tests: entries",
            names.join(", ")
        );
        return ExitCode::from(1);
    }
    if out.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn replay(config: &Path, decisions: &[PathBuf], policies: &[PathBuf]) -> ExitCode {
    let set = match s3gate::replay::load(config, policies) {
        Ok(s) => s,
        Err(errors) => {
            report(&errors);
            return ExitCode::from(2);
        }
    };
    match s3gate::replay::replay(&set, decisions) {
        Ok(outcome) => {
            print!("{}", s3gate::replay::render(&outcome));
            if outcome.changes.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn audit_verify(files: &[PathBuf]) -> ExitCode {
    if files.is_empty() {
        eprintln!("error: name the audit files, oldest first");
        return ExitCode::from(2);
    }
    let r = s3gate::audit::verify::verify(files);
    for n in &r.notes {
        println!("NOTE {n}");
    }
    for t in &r.torn {
        println!("TORN {t}");
    }
    for p in &r.problems {
        println!("FAIL {p}");
    }
    if r.ok() {
        println!("OK: {} record(s), chain whole", r.records);
        ExitCode::SUCCESS
    } else {
        println!("{} record(s) verified before the first problem", r.records);
        ExitCode::from(1)
    }
}

/// The only format is `cloudtrail` (clap refuses others).
fn audit_export(files: &[PathBuf], region: &str) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match s3gate::audit::export::export(files, region, &mut out) {
        Ok(r) => {
            for s in &r.skipped {
                eprintln!(
                    "SKIPPED {s}: not a record (torn line?); `s3gate audit verify` tells more"
                );
            }
            if let Err(e) = std::io::Write::flush(&mut out) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            eprintln!("exported {} record(s)", r.records);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn health(address: &str, path: &str) -> ExitCode {
    use std::io::{Read, Write};
    let probe = || -> std::io::Result<String> {
        let addr: std::net::SocketAddr = address
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{e}")))?;
        let mut s = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(3))?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n"
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    };
    match probe() {
        Ok(r) if r.starts_with("HTTP/1.1 200") => ExitCode::SUCCESS,
        Ok(r) => {
            eprintln!("{}", r.lines().next().unwrap_or("no answer"));
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("{address}: {e}");
            ExitCode::from(1)
        }
    }
}

/// mimalloc: glibc's malloc was about a fifth of the small-request profile
/// (`perf`, 1 KiB GETs at 32 connections).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
