//! `punie` (or `punie stdio`): ACP on stdin/stdout, for the editor that started us. Ends when
//! the editor closes stdin, or on SIGINT/SIGTERM; either way turns are cancelled and commands
//! killed before exit, and on a signal the cancelled prompts are answered first (within
//! [`punie::acp::SHUTDOWN_GRACE`]).

use super::signals::Signals;
use super::{Cli, EXIT_FAILURE, runtime};

/// Serves the editor on stdio until it hangs up or a signal arrives.
pub fn run(cli: &Cli) -> anyhow::Result<u8> {
    let (agent, perf) = cli.agent(true)?;
    let runtime = runtime()?;
    let code = runtime.block_on(async {
        let mut signals = Signals::new()?;
        agent.warm_up();
        // On a signal, turns are cancelled and their prompts answered (`cancelled`) before the
        // connection ends: the editor learns what happened to each.
        let shutdown = async {
            let signal = signals.next().await;
            tracing::info!(signal = signal.name(), "shutting down");
        };
        let code = match punie::acp::serve_stdio_until(agent.clone(), shutdown).await {
            Ok(()) => {
                tracing::info!("the ACP connection ended");
                0
            }
            Err(error) => {
                tracing::error!(%error, "stdio connection failed");
                eprintln!("punie: {error}");
                EXIT_FAILURE
            }
        };
        agent.close_all().await;
        if let Some(perf) = &perf {
            perf.write_all();
        }
        anyhow::Ok(code)
    })?;
    // Blocking stdin readers may still be parked in a read; do not wait for them.
    runtime.shutdown_background();
    Ok(code)
}
