//! `punie` (or `punie stdio`): ACP on stdin/stdout, for the editor that started us. Ends when
//! the editor closes stdin, or on SIGINT/SIGTERM/SIGHUP; either way turns are cancelled and
//! commands killed before exit, and on a signal the cancelled prompts are answered first (within
//! [`punie::acp::SHUTDOWN_GRACE`]).
//!
//! Started by hand in a terminal, it says on stderr what it is for and what to run instead
//! (stdout stays the protocol), and a terminal that is closed (a read fails with EIO) ends it
//! like the end of input: exit 0.

use std::io::IsTerminal;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use super::options::EditorArgs;
use super::signals::Signals;
use super::{EXIT_FAILURE, limits, runtime};

/// What plain `punie` prints to stderr when stdin is a terminal: a person, not an editor, is
/// typing.
pub const TERMINAL_HINT: &str = "\
punie: this is the ACP server your editor (Zed, a JetBrains IDE) starts: it reads JSON-RPC on
stdin and answers on stdout, so here it waits for an editor. From a terminal, run instead:
  punie ask \"PROMPT\"   ask once, here, without an editor
  punie init           add Punie to your editor's configuration (--zed for Zed)
  punie doctor         check that your model server works with Punie
  punie --help         every command and option
A line typed here that is not JSON-RPC gets error -32700 (Parse error) on stdout. Ctrl-D quits.";

/// Serves the editor on stdio until it hangs up or a signal arrives.
pub fn run(args: &EditorArgs) -> anyhow::Result<u8> {
    let terminal = std::io::stdin().is_terminal();
    limits::raise_open_file_limit(args.max_sessions);
    let (agent, perf) = args.agent()?;
    let runtime = runtime()?;
    let code = runtime.block_on(async {
        let mut signals = Signals::new()?;
        agent.warm_up();
        // After the signal handlers: a person who closes the terminal on reading this gets the
        // same clean exit as later.
        if terminal {
            tracing::info!("stdin is a terminal: printing the hint");
            eprintln!("{TERMINAL_HINT}");
        }
        // On a signal, turns are cancelled and their prompts answered (`cancelled`) before the
        // connection ends: the editor learns what happened to each.
        let shutdown = async {
            let signal = signals.next().await;
            tracing::info!(signal = signal.name(), "shutting down");
        };
        let stdin = HangUpIsEnd {
            inner: tokio::io::stdin(),
            terminal,
        };
        let served =
            punie::acp::serve_io_until(agent.clone(), stdin, tokio::io::stdout(), shutdown).await;
        let code = match served {
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

/// Stdin, where a terminal that hung up (its window closed: reads fail with EIO) is the end of
/// input, as a closed pipe is.
struct HangUpIsEnd<R> {
    inner: R,
    /// Stdin is a terminal: only then is EIO a hang-up rather than a failure.
    terminal: bool,
}

impl<R: AsyncRead + Unpin> AsyncRead for HangUpIsEnd<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let terminal = self.terminal;
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Err(error)) if terminal && is_hang_up(&error) => {
                tracing::info!(%error, "the terminal hung up: the end of input");
                // Nothing read: the end of input.
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

/// EIO: what reading a terminal whose other side closed returns.
fn is_hang_up(error: &std::io::Error) -> bool {
    #[cfg(unix)]
    {
        error.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error())
    }
    #[cfg(not(unix))]
    {
        let _ = error;
        false
    }
}
