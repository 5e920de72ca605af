//! The `s3gate` command line: serve | check.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "s3gate",
    version,
    about = "An S3 gateway: verifies clients' SigV4, re-signs and streams to S3 upstreams"
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
    /// Validate a config file: every error at once, with file:line:column.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Serve { config } => serve(&config),
    }
}

fn load_or_report(path: &std::path::Path) -> Option<s3gate::config::Config> {
    match s3gate::config::load(path) {
        Ok(c) => Some(c),
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {e}");
            }
            eprintln!("{}: {} error(s)", path.display(), errors.len());
            None
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    let Some(config) = load_or_report(path) else {
        return ExitCode::from(1);
    };
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "{}: OK ({} principal(s), {} upstream(s), {} bucket rule(s))",
        path.display(),
        config.principals.len(),
        config.upstreams.len(),
        config.buckets.len()
    );
    ExitCode::SUCCESS
}

fn serve(path: &std::path::Path) -> ExitCode {
    let Some(config) = load_or_report(path) else {
        return ExitCode::from(1);
    };
    s3gate::logging::init(config.log.format, config.log.level.as_deref());
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    match s3gate::server::serve(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
