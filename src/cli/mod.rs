//! The `punie` command line: options, subcommands (one file each) and logging set-up. Uses only
//! the library's public API.

pub mod ask;
pub mod config;
pub mod doctor;
pub mod init;
pub mod limits;
pub mod logging;
pub mod options;
pub mod perf;
pub mod serve;
pub mod sessions;
pub mod signals;
pub mod stdio;

use anyhow::Context;
use clap::{Parser, Subcommand};

use options::{EditorArgs, LogArgs};

/// Exit code of a run that failed while running (the model server is down, I/O failed…).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of bad options or configuration found before anything started (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code of `punie ask` when the turn stopped at a limit (max tokens, max model requests).
pub const EXIT_LIMIT: u8 = 3;
/// Exit code of `punie ask` when the answer is complete but an edit or a command was refused
/// because there was no terminal to ask in and no `--approve` to decide.
pub const EXIT_REFUSED: u8 = 4;
/// Exit code of a cancelled run (Ctrl-C), as shells report SIGINT.
pub const EXIT_CANCELLED: u8 = 130;

/// Punie: a coding agent for your editor, running on models you host yourself.
///
/// Without a subcommand, Punie speaks the Agent Client Protocol (ACP) on stdin/stdout: this is
/// how JetBrains IDEs and Zed start it (`punie init` adds it to their configuration), and the
/// options below are for that. Each subcommand has its own: `punie ask --help`.
#[derive(Debug, Parser)]
#[command(name = "punie", version, max_term_width = 100)]
// An option before a subcommand would be read for plain `punie` and ignored: clap refuses it,
// saying which subcommand it cannot be used with.
#[command(args_conflicts_with_subcommands = true)]
#[command(after_help = EXIT_CODES)]
pub struct Cli {
    /// What to do (default: serve ACP on stdio).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Plain `punie`'s options (the same as `punie stdio`'s).
    #[command(flatten)]
    pub stdio: EditorArgs,
}

/// Every exit code, as `--help` ends.
pub const EXIT_CODES: &str = "Exit codes: 0 success; 1 failure (the message says why); 2 bad \
options or configuration; 3 `ask` stopped at a limit (max_tokens, --max-turn-requests); 4 `ask` \
finished but an edit or command was refused for want of a terminal to ask in (pass --approve); \
130 cancelled.";

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve ACP on stdio (the default).
    Stdio(EditorArgs),
    /// Serve ACP on stdio and, on one port, a health report and ACP over WebSocket.
    Serve(serve::ServeArgs),
    /// Add Punie to your editor's agent configuration (JetBrains' acp.json, or Zed's settings).
    Init(init::InitArgs),
    /// Ask once, in this terminal, without an editor: the answer goes to stdout.
    Ask(ask::AskArgs),
    /// Check a model server the way Punie uses it, and print the flags that fix what is wrong.
    Doctor(doctor::DoctorArgs),
    /// List, show and delete saved sessions (conversations).
    Sessions(sessions::SessionsArgs),
}

/// An error found before anything started: bad options, configuration or environment. Exits
/// with [`EXIT_USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct StartupError(pub anyhow::Error);

/// Shorthand: marks an error as a start-up error.
pub fn startup(error: impl Into<anyhow::Error>) -> anyhow::Error {
    StartupError(error.into()).into()
}

impl Cli {
    /// Where this command logs: `None` for `init`, which logs nothing (it says what it did).
    pub fn log_args(&self) -> Option<&LogArgs> {
        match &self.command {
            None => Some(&self.stdio.run.log),
            Some(Command::Stdio(args)) => Some(&args.run.log),
            Some(Command::Serve(args)) => Some(&args.agent.run.log),
            Some(Command::Ask(args)) => Some(&args.run.log),
            Some(Command::Doctor(args)) => Some(&args.log),
            Some(Command::Sessions(args)) => Some(args.options().log()),
            Some(Command::Init(_)) => None,
        }
    }
}

/// Runs what the command line asks for and returns the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    tracing::info!(command = command_name(cli.command.as_ref()), "options");
    match &cli.command {
        None => stdio::run(&cli.stdio),
        Some(Command::Stdio(args)) => stdio::run(args),
        Some(Command::Serve(args)) => serve::run(args),
        Some(Command::Init(args)) => init::run(args),
        Some(Command::Ask(args)) => ask::run(args),
        Some(Command::Doctor(args)) => doctor::run(args),
        Some(Command::Sessions(args)) => sessions::run(args),
    }
}

fn command_name(command: Option<&Command>) -> &'static str {
    match command {
        None | Some(Command::Stdio(_)) => "stdio",
        Some(Command::Serve(_)) => "serve",
        Some(Command::Init(_)) => "init",
        Some(Command::Ask(_)) => "ask",
        Some(Command::Doctor(_)) => "doctor",
        Some(Command::Sessions(_)) => "sessions",
    }
}

/// A multi-threaded runtime for a subcommand.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
