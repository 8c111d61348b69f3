//! The `punie` command line: options, subcommands (one file each) and logging set-up. Uses only
//! the library's public API.

pub mod ask;
pub mod config;
pub mod doctor;
pub mod init;
pub mod limits;
pub mod logging;
pub mod perf;
pub mod serve;
pub mod sessions;
pub mod signals;
pub mod stdio;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::builder::BoolishValueParser;
use clap::{Parser, Subcommand};

use punie::agent::{
    Agent, AgentConfig, DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SESSIONS_PER_CONNECTION, Mode,
};
use punie::llm::{DEFAULT_SERVER_WAIT, ModelSpec, OpenAiModel, RetryPolicy, Timeouts};
use punie::workspace::local::SandboxOptions;

/// Exit code of a run that failed while running (the model server is down, I/O failed…).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of bad options or configuration found before anything started (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code of `punie ask` when the turn stopped at a limit (max tokens, max model requests).
pub const EXIT_LIMIT: u8 = 3;
/// Exit code of a cancelled run (Ctrl-C), as shells report SIGINT.
pub const EXIT_CANCELLED: u8 = 130;

/// Punie: a coding agent for your editor, running on models you host yourself.
///
/// Without a subcommand, Punie speaks the Agent Client Protocol (ACP) on stdin/stdout: this is
/// how JetBrains IDEs and Zed start it. `punie init` adds it to their configuration.
#[derive(Debug, Parser)]
#[command(name = "punie", version, max_term_width = 100)]
#[command(
    after_help = "Exit codes: 0 success, 1 failure, 2 bad options or configuration, \
3 `ask` stopped at a limit, 130 cancelled."
)]
pub struct Cli {
    /// What to do (default: serve ACP on stdio).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The model: empty for LM Studio's first model, NAME for a model on LM Studio, or
    /// http://HOST:PORT/v1/NAME for any OpenAI-compatible server.
    #[arg(
        long,
        env = "PUNIE_MODEL",
        global = true,
        default_value = "",
        value_name = "SPEC"
    )]
    pub model: String,

    /// API key for servers that need one (e.g. vLLM behind a gateway).
    #[arg(
        long,
        env = "PUNIE_API_KEY",
        global = true,
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,

    /// The agent's display name in the editor (and its key in the editor's config for `init`).
    #[arg(long, global = true, default_value = "Punie")]
    pub name: String,

    /// Where log files go (default: the platform's state directory, e.g.
    /// ~/.local/state/punie/logs).
    #[arg(long, env = "PUNIE_LOG_DIR", global = true, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,

    /// Log level or tracing filter (e.g. `debug`, `punie=trace`, `info,punie::llm=debug`).
    #[arg(
        long,
        env = "PUNIE_LOG",
        global = true,
        default_value = "info",
        value_name = "FILTER",
        value_parser = logging::parse_filter
    )]
    pub log_level: String,

    /// The mode sessions start in: ask (read and search only), plan (read-only, plans first),
    /// code (asks before every change and command) or edit (file changes without asking).
    /// Default: the config file's default_mode, else code.
    #[arg(long, env = "PUNIE_MODE", global = true, value_name = "MODE", value_parser = clap::builder::ValueParser::new(parse_mode))]
    pub mode: Option<Mode>,

    /// Model requests allowed per prompt before the turn stops with `max_turn_requests`.
    #[arg(long, env = "PUNIE_MAX_TURN_REQUESTS", global = true, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub max_turn_requests: u32,

    /// Run local commands without the Landlock write sandbox (Linux): commands may then write
    /// anywhere Punie can.
    #[arg(long, env = "PUNIE_NO_LANDLOCK", global = true, value_parser = BoolishValueParser::new(), default_value_t = false, num_args = 0, default_missing_value = "true")]
    pub no_landlock: bool,

    /// Sessions open at once across every connection; `session/new` beyond is refused.
    #[arg(long, env = "PUNIE_MAX_SESSIONS", global = true, default_value_t = DEFAULT_MAX_SESSIONS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), value_name = "N")]
    pub max_sessions: usize,

    /// Sessions one editor connection may have open at once; `session/new` beyond is refused
    /// (a connection's sessions close when it ends).
    #[arg(long, env = "PUNIE_MAX_SESSIONS_PER_CONNECTION", global = true, default_value_t = DEFAULT_MAX_SESSIONS_PER_CONNECTION, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), value_name = "N")]
    pub max_sessions_per_connection: usize,

    /// Where `--perf` reports go (default: the platform state directory).
    #[arg(long, env = "PUNIE_PERF_DIR", global = true, value_name = "DIR")]
    pub perf_dir: Option<PathBuf>,

    /// The context window (tokens) to assume when the model server does not report one.
    #[arg(long, env = "PUNIE_CONTEXT_SIZE", global = true, value_parser = clap::value_parser!(u32).range(512..), value_name = "TOKENS")]
    pub context_size: Option<u32>,

    /// Seconds to wait for the model's next token once its answer has begun (keep-alive
    /// comments do not count).
    #[arg(long, env = "PUNIE_IDLE_TIMEOUT", global = true, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..), value_name = "SECS")]
    pub idle_timeout: u64,

    /// Seconds a request waits for a model server that is not answering yet (connection
    /// refused, 503 while it starts or loads the model) before it fails; the editor is told
    /// after a few seconds, and cancelling stops the wait. Default 120; 0 retries briefly only.
    #[arg(long, env = "PUNIE_SERVER_WAIT", global = true, value_parser = clap::value_parser!(u64).range(0..=86_400), value_name = "SECS")]
    pub server_wait: Option<u64>,

    /// Seconds one prompt turn may take in all before it is stopped.
    #[arg(long, env = "PUNIE_TURN_TIMEOUT", global = true, default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..), value_name = "SECS")]
    pub turn_timeout: u64,

    /// The config file with per-model settings (default: the platform config dir's
    /// punie/config.toml).
    #[arg(long, env = "PUNIE_CONFIG", global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Where conversations are saved (default: the platform's state directory, e.g.
    /// ~/.local/state/punie/sessions).
    #[arg(long, env = "PUNIE_STATE_DIR", global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Delete saved sessions idle for more than this many days (checked at start-up; default:
    /// keep them).
    #[arg(long, env = "PUNIE_KEEP_SESSIONS_DAYS", global = true, value_parser = clap::value_parser!(u64).range(1..), value_name = "DAYS")]
    pub keep_sessions_days: Option<u64>,

    /// Keep at most this many saved sessions, the most recently active (checked at start-up;
    /// default: keep them all).
    #[arg(long, env = "PUNIE_KEEP_SESSIONS", global = true, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), value_name = "N")]
    pub keep_sessions: Option<usize>,

    /// Record where each turn's time goes and write HTML/JSON reports (per session, and at
    /// exit) to the --perf-dir.
    #[arg(long, env = "PUNIE_PERF", global = true, value_parser = BoolishValueParser::new(), default_value_t = false, num_args = 0, default_missing_value = "true")]
    pub perf: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve ACP on stdio (the default).
    Stdio,
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

/// A `--mode` value, or an error naming the modes.
fn parse_mode(value: &str) -> Result<Mode, punie::agent::UnknownMode> {
    value.parse()
}

impl Cli {
    /// The config file and where it is, if there is one (a missing file reads as empty).
    fn config_file(&self) -> anyhow::Result<Option<(PathBuf, config::ConfigFile)>> {
        let path = match &self.config {
            Some(path) => path.clone(),
            None => match config::default_path() {
                Some(path) => path,
                None => return Ok(None),
            },
        };
        let file = config::load(&path).map_err(startup)?;
        Ok(Some((path, file)))
    }

    /// The config file's entry for `--model`, if `--model` names one (or is empty and the file
    /// has a default). Reads the file and logs which entry it used: call it once per run.
    pub fn model_entry(&self) -> anyhow::Result<Option<(String, config::ModelEntry)>> {
        self.model_entry_in(self.config_file()?.as_ref())
    }

    fn model_entry_in(
        &self,
        file: Option<&(PathBuf, config::ConfigFile)>,
    ) -> anyhow::Result<Option<(String, config::ModelEntry)>> {
        let Some((path, file)) = file else {
            return Ok(None);
        };
        let entry = file.entry(&self.model).map_err(startup)?;
        if let Some((name, _)) = &entry {
            tracing::info!(entry = %name, config = %path.display(), "model settings from the config file");
        }
        Ok(entry)
    }

    /// The mode new sessions start in: `--mode`, else the config file's `default_mode`, else
    /// code.
    fn default_mode(&self, file: Option<&(PathBuf, config::ConfigFile)>) -> anyhow::Result<Mode> {
        if let Some(mode) = self.mode {
            return Ok(mode);
        }
        match file.and_then(|(path, file)| Some((path, file.default_mode.as_deref()?))) {
            Some((path, mode)) => mode
                .parse()
                .with_context(|| format!("invalid default_mode in {}", path.display()))
                .map_err(startup),
            None => Ok(Mode::default()),
        }
    }

    /// The model spec these options name.
    pub fn model_spec(&self) -> anyhow::Result<ModelSpec> {
        self.spec_of(self.model_entry()?.as_ref())
    }

    /// The model spec of the config file's `entry`, else of `--model`.
    fn spec_of(&self, entry: Option<&(String, config::ModelEntry)>) -> anyhow::Result<ModelSpec> {
        match entry {
            Some((name, entry)) => entry.spec(name).map_err(startup),
            None => ModelSpec::parse(&self.model)
                .context("invalid --model / PUNIE_MODEL")
                .map_err(startup),
        }
    }

    pub fn sandbox(&self) -> SandboxOptions {
        SandboxOptions {
            landlock: !self.no_landlock,
            ..SandboxOptions::default()
        }
    }

    /// Builds the agent these options describe, recording timings when `--perf` is on
    /// (`per_session`: also write a report as each session closes).
    pub fn agent(
        &self,
        per_session: bool,
    ) -> anyhow::Result<(Arc<Agent>, Option<Arc<perf::PerfFiles>>)> {
        // Read once: the file's log line appears once, and the spec and the settings come from
        // the same reading.
        let file = self.config_file()?;
        let named = self.model_entry_in(file.as_ref())?;
        let spec = self.spec_of(named.as_ref())?;
        let entry = named.map(|(_, entry)| entry).unwrap_or_default();
        let api_key = entry.api_key().or_else(|| self.api_key.clone());
        let timeouts = Timeouts {
            idle: Duration::from_secs(self.idle_timeout),
            ..Timeouts::default()
        };
        let server_wait = self
            .server_wait
            .or(entry.server_wait)
            .map_or(DEFAULT_SERVER_WAIT, Duration::from_secs);
        let retry = RetryPolicy {
            server_wait,
            ..RetryPolicy::default()
        };
        let mut model = OpenAiModel::new(spec, api_key)
            .with_timeouts(timeouts)
            .with_retry(retry);
        if let Some(text) = entry.text_tool_calls {
            model = model.with_text_tool_calls(text);
        }
        if let Some(sees) = entry.vision {
            model = model.with_vision(sees);
        }
        let mut config = AgentConfig::default();
        config.display_name = self.name.clone();
        config.max_turn_requests = self.max_turn_requests;
        config.context_size = self.context_size.or(entry.context_size);
        config.turn_timeout = Duration::from_secs(self.turn_timeout);
        config.max_sessions = self.max_sessions;
        config.max_sessions_per_connection = self.max_sessions_per_connection;
        config.default_mode = self.default_mode(file.as_ref())?;
        if let Some(temperature) = entry.temperature {
            config.temperature = temperature;
        }
        if let Some(max_tokens) = entry.max_tokens {
            config.max_tokens = Some(max_tokens);
        }
        let mut builder = Agent::builder()
            .model(model)
            .config(config)
            .sandbox(self.sandbox());
        if let Some(store) = sessions::open_store(self)? {
            builder = builder.journals(store);
        }
        let perf = match self.perf {
            false => None,
            true => {
                let dir = self
                    .perf_dir
                    .clone()
                    .or_else(perf::default_dir)
                    .context("cannot find a state directory for perf reports: pass --perf-dir")
                    .map_err(startup)?;
                let files = perf::PerfFiles::new(dir, per_session);
                builder = builder.observer(files.clone());
                Some(files)
            }
        };
        Ok((builder.build().map_err(startup)?, perf))
    }
}

/// Runs what the command line asks for and returns the exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    tracing::info!(
        command = ?cli.command.as_ref().map(command_name),
        model = %cli.model,
        landlock = !cli.no_landlock,
        perf = cli.perf,
        mode = ?cli.mode,
        "options"
    );
    limits::raise_open_file_limit(cli.max_sessions);
    match &cli.command {
        None | Some(Command::Stdio) => stdio::run(&cli),
        Some(Command::Serve(args)) => serve::run(&cli, args),
        Some(Command::Init(args)) => init::run(&cli, args),
        Some(Command::Ask(args)) => ask::run(&cli, args),
        Some(Command::Doctor(args)) => doctor::run(&cli, args),
        Some(Command::Sessions(args)) => sessions::run(&cli, args),
    }
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Stdio => "stdio",
        Command::Serve(_) => "serve",
        Command::Init(_) => "init",
        Command::Ask(_) => "ask",
        Command::Doctor(_) => "doctor",
        Command::Sessions(_) => "sessions",
    }
}

/// A multi-threaded runtime for a subcommand.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
