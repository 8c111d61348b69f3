//! `punie serve`: ACP on stdio and, on one HTTP port, `/health` and ACP over WebSocket (`/acp`).
//!
//! stdin reaching its end closes only the stdio connection: the HTTP side keeps serving, so
//! `punie serve` runs under a process manager with stdin closed. SIGINT or SIGTERM stop
//! everything: turns are cancelled, commands killed, logs flushed, exit code 0.
//!
//! Nothing but JSON-RPC goes to stdout. To learn the port when it was chosen by the system
//! (`--port 0`), pass `--port-file PATH`: the port number is written there (atomically) once
//! the server listens, and removed on exit. The address is also logged and printed to stderr.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use punie::server::{self, ServerOptions};

use super::options::EditorArgs;
use super::signals::Signals;
use super::{EXIT_FAILURE, limits, runtime, startup};

/// The default HTTP port: clear of the model servers (LM Studio 1234, vLLM 8000, llama.cpp and
/// mlx 8080, Ollama 11434) and of common development servers (3000, 5000, 5173, 8888…).
pub const DEFAULT_PORT: u16 = 7777;

/// How long the HTTP server gets to finish its requests on shutdown.
const HTTP_DRAIN: Duration = Duration::from_secs(10);

/// Options of `punie serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but a loopback address needs --allow-remote and a token.
    #[arg(long, env = "PUNIE_SERVE_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on (0: any free port; see --port-file).
    #[arg(long, env = "PUNIE_SERVE_PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Write the port actually listened on to this file once listening (removed on exit).
    #[arg(long, value_name = "PATH")]
    pub port_file: Option<PathBuf>,

    /// Allow listening on a non-loopback address (other machines can then connect; a token is
    /// required).
    #[arg(long)]
    pub allow_remote: bool,

    /// Bearer token every HTTP request must carry (`Authorization: Bearer TOKEN` or
    /// `?token=TOKEN`).
    #[arg(
        long,
        env = "PUNIE_SERVE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// The agent's options, as plain `punie` takes them.
    #[command(flatten)]
    pub agent: EditorArgs,
}

/// Serves ACP on stdio and HTTP until a signal arrives.
pub fn run(args: &ServeArgs) -> anyhow::Result<u8> {
    limits::raise_open_file_limit(args.agent.max_sessions);
    let (agent, perf) = args.agent.agent()?;
    let token = args.token.clone().filter(|token| !token.trim().is_empty());
    let runtime = runtime()?;
    let code = runtime.block_on(async {
        let mut signals = Signals::new()?;
        agent.warm_up();
        let (listener, remote) =
            server::bind(&args.host, args.port, args.allow_remote, token.as_deref())
                .await
                .map_err(startup)?;
        let address = listener
            .local_addr()
            .context("cannot read the listening address")?;
        if let Some(path) = &args.port_file {
            write_port_file(path, address.port()).map_err(startup)?;
        }
        eprintln!(
            "punie: serving ACP over WebSocket at ws://{address}/acp (health: http://{address}/health)"
        );

        let mut options = ServerOptions::default();
        options.token = token;
        options.remote = remote;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let mut http = tokio::spawn(server::serve(
            listener,
            agent.clone(),
            options,
            shutdown.clone(),
        ));

        if std::io::stdin().is_terminal() {
            tracing::info!("stdin is a terminal, not an editor: ACP is served over WebSocket only");
        } else {
            let agent = agent.clone();
            tokio::spawn(async move {
                match punie::acp::serve_stdio(agent).await {
                    Ok(()) => tracing::info!("stdin closed: the stdio connection ended; HTTP keeps serving"),
                    Err(error) => tracing::warn!(%error, "the stdio connection failed; HTTP keeps serving"),
                }
            });
        }

        let code = tokio::select! {
            signal = signals.next() => {
                tracing::info!(signal = signal.name(), "shutting down");
                0
            }
            result = &mut http => {
                let message = match result {
                    Ok(Ok(())) => "the HTTP server stopped".to_owned(),
                    Ok(Err(error)) => error.to_string(),
                    Err(error) => format!("the HTTP server crashed: {error}"),
                };
                tracing::error!(%message, "shutting down");
                eprintln!("punie: {message}");
                EXIT_FAILURE
            }
        };
        shutdown.cancel();
        agent.close_all().await;
        if let Some(perf) = &perf {
            perf.write_all();
        }
        if !http.is_finished() && tokio::time::timeout(HTTP_DRAIN, &mut http).await.is_err() {
            tracing::warn!("the HTTP server did not stop in time");
            http.abort();
        }
        if let Some(path) = &args.port_file {
            let _ = std::fs::remove_file(path);
        }
        anyhow::Ok(code)
    })?;
    // The stdio connection's blocking stdin reader may still be parked in a read.
    runtime.shutdown_background();
    Ok(code)
}

/// Writes `port` and a newline to `path` through a temporary file renamed into place, so a
/// reader never sees a partial number.
fn write_port_file(path: &Path, port: u16) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let context = || format!("cannot write the port file {}", path.display());
    let mut file = tempfile::NamedTempFile::new_in(dir).with_context(context)?;
    writeln!(file, "{port}").with_context(context)?;
    file.persist(path)
        .map_err(|e| e.error)
        .with_context(context)?;
    Ok(())
}
