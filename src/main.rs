//! The `punie` binary: parse the command line, set up logging, run, map errors to an exit code.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (_log_guard, log_dir) = match cli::logging::init(cli.log_dir.as_deref(), &cli.log_level) {
        Ok(logging) => logging,
        Err(error) => {
            eprintln!("punie: {error:#}");
            return ExitCode::from(2);
        }
    };
    tracing::info!(version = env!("CARGO_PKG_VERSION"), log_dir = %log_dir.display(), "punie starting");
    let result = run(cli);
    if let Err(error) = &result {
        tracing::error!("{error:#}");
        eprintln!("punie: {error:#}");
    }
    tracing::info!("punie exiting");
    if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let agent = cli.agent()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        None | Some(Command::Stdio) => runtime.block_on(async {
            let result = punie::acp::serve_stdio(agent.clone(), Default::default()).await;
            agent.close_all().await;
            result
        })?,
    }
    // Blocking stdin readers may still be parked in a read; do not wait for them.
    runtime.shutdown_background();
    Ok(())
}
