//! The `punie` binary: parse the command line, set up logging, run, map errors to an exit code.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, EXIT_FAILURE, EXIT_USAGE, StartupError};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `init` logs nothing: it prints what it did.
    let log_guard = match cli.log_args() {
        None => None,
        Some(log) => match cli::logging::init(log.log_dir.as_deref(), &log.log_level) {
            Ok((guard, dir)) => {
                tracing::info!(version = env!("CARGO_PKG_VERSION"), log_dir = %dir.display(), "punie starting");
                Some(guard)
            }
            Err(error) => {
                eprintln!("punie: {error:#}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
    };
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
