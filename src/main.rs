//! The `punie` binary: parse the command line, set up logging, run, map errors to an exit code.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, EXIT_FAILURE, EXIT_USAGE, StartupError};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (log_guard, log_dir) = match cli::logging::init(cli.log_dir.as_deref(), &cli.log_level) {
        Ok(logging) => logging,
        Err(error) => {
            eprintln!("punie: {error:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    tracing::info!(version = env!("CARGO_PKG_VERSION"), log_dir = %log_dir.display(), "punie starting");
    let code = match cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("punie: {error:#}");
            if error.is::<StartupError>() {
                EXIT_USAGE
            } else {
                EXIT_FAILURE
            }
        }
    };
    tracing::info!(code, "punie exiting");
    // Every path returns here (signals included): dropping the guard flushes the log.
    drop(log_guard);
    ExitCode::from(code)
}
