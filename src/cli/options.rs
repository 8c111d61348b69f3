//! The options the subcommands share, in groups flattened into each subcommand where they act
//! (clap then refuses an option given to a subcommand it does nothing for):
//!
//! | group | options | used by |
//! |---|---|---|
//! | [`ModelArgs`] | `--model`, `--config` | `init`, and through [`ModelServerArgs`] the rest |
//! | [`ModelServerArgs`] | + `--api-key` | `doctor`, and through [`RunArgs`] the agent runs |
//! | [`RunArgs`] | turn limits, `--mode`, `--no-landlock`, [`StoreArgs`], [`PerfArgs`], [`LogArgs`] | `punie` (`stdio`), `serve`, `ask` |
//! | [`EditorArgs`] | + `--name`, session caps | `punie` (`stdio`), `serve` |
//! | [`StoreArgs`] | `--state-dir`, `--keep-sessions*` | the agent runs, `sessions` |
//! | [`LogArgs`] | `--log-dir`, `--log-level` | everything but `init` |

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use clap::builder::BoolishValueParser;

use punie::agent::{
    Agent, AgentConfig, DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SESSIONS_PER_CONNECTION, Mode,
};
use punie::llm::{DEFAULT_SERVER_WAIT, ModelSpec, OpenAiModel, RetryPolicy, Timeouts};
use punie::workspace::local::SandboxOptions;

use super::{config, logging, perf, sessions, startup};

/// Which model, and the file that may name it.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Model")]
pub struct ModelArgs {
    /// The model: empty for LM Studio's first model, NAME for a model on LM Studio (or an entry
    /// of the config file), or http://HOST:PORT/v1/NAME for any OpenAI-compatible server.
    #[arg(long, env = "PUNIE_MODEL", default_value = "", value_name = "SPEC")]
    pub model: String,

    /// The config file with per-model settings (default: the platform config dir's
    /// punie/config.toml).
    #[arg(long, env = "PUNIE_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
}

impl ModelArgs {
    /// The config file's entry for `--model`, if `--model` names one (or is empty and the file
    /// has a default). Reads the file and logs which entry it used: call it once per run.
    pub fn model_entry(&self) -> anyhow::Result<Option<(String, config::ModelEntry)>> {
        self.model_entry_in(self.config_file()?.as_ref())
    }

    /// The config file and where it is, if there is one (a missing file reads as empty).
    pub fn config_file(&self) -> anyhow::Result<Option<(PathBuf, config::ConfigFile)>> {
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

    /// The entry for `--model` in an already read config `file`.
    pub fn model_entry_in(
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

    /// The model spec these options name.
    pub fn model_spec(&self) -> anyhow::Result<ModelSpec> {
        self.spec_of(self.model_entry()?.as_ref())
    }

    /// The model spec of the config file's `entry`, else of `--model`.
    pub fn spec_of(
        &self,
        entry: Option<&(String, config::ModelEntry)>,
    ) -> anyhow::Result<ModelSpec> {
        match entry {
            Some((name, entry)) => entry.spec(name).map_err(startup),
            None => ModelSpec::parse(&self.model)
                .context("invalid --model / PUNIE_MODEL")
                .map_err(startup),
        }
    }
}

/// The model, and what it takes to be let in.
#[derive(Clone, Debug, Args)]
pub struct ModelServerArgs {
    /// Which model.
    #[command(flatten)]
    pub model: ModelArgs,

    /// API key for servers that need one (e.g. vLLM behind a gateway); a config entry's
    /// `api_key_env` wins.
    #[arg(
        long,
        env = "PUNIE_API_KEY",
        hide_env_values = true,
        value_name = "KEY",
        help_heading = "Model"
    )]
    pub api_key: Option<String>,
}

impl ModelServerArgs {
    /// The API key to send: the config entry's, else `--api-key`.
    pub fn api_key_for(&self, entry: Option<&config::ModelEntry>) -> Option<String> {
        entry
            .and_then(config::ModelEntry::api_key)
            .or_else(|| self.api_key.clone())
    }
}

/// Where logs go.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Logging")]
pub struct LogArgs {
    /// Where log files go (default: the platform's state directory, e.g.
    /// ~/.local/state/punie/logs).
    #[arg(long, env = "PUNIE_LOG_DIR", value_name = "DIR")]
    pub log_dir: Option<PathBuf>,

    /// Log level or tracing filter (e.g. `debug`, `punie=trace`, `info,punie::llm=debug`).
    #[arg(
        long,
        env = "PUNIE_LOG",
        default_value = "info",
        value_name = "FILTER",
        value_parser = logging::parse_filter
    )]
    pub log_level: String,
}

/// Where conversations are saved, and for how long.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Saved sessions")]
pub struct StoreArgs {
    /// Where conversations are saved (default: the platform's state directory, e.g.
    /// ~/.local/state/punie/sessions).
    #[arg(long, env = "PUNIE_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Delete saved sessions idle for more than this many days (checked at start-up; default:
    /// keep them).
    #[arg(long, env = "PUNIE_KEEP_SESSIONS_DAYS", value_parser = clap::value_parser!(u64).range(1..), value_name = "DAYS")]
    pub keep_sessions_days: Option<u64>,

    /// Keep at most this many saved sessions, the most recently active (checked at start-up;
    /// default: keep them all).
    #[arg(long, env = "PUNIE_KEEP_SESSIONS", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), value_name = "N")]
    pub keep_sessions: Option<usize>,
}

/// Timing reports.
#[derive(Clone, Debug, Args)]
#[command(next_help_heading = "Timing reports")]
pub struct PerfArgs {
    /// Record where each turn's time goes and write HTML/JSON reports (per session, and at
    /// exit) to the --perf-dir.
    #[arg(long, env = "PUNIE_PERF", value_parser = BoolishValueParser::new(), default_value_t = false, num_args = 0, default_missing_value = "true")]
    pub perf: bool,

    /// Where `--perf` reports go (default: the platform state directory).
    #[arg(long, env = "PUNIE_PERF_DIR", value_name = "DIR")]
    pub perf_dir: Option<PathBuf>,
}

/// What every run of the agent takes: `punie` (stdio), `serve` and `ask`.
#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// The model and its server.
    #[command(flatten)]
    pub server: ModelServerArgs,

    /// Model requests allowed per prompt before the turn stops with `max_turn_requests`.
    #[arg(long, env = "PUNIE_MAX_TURN_REQUESTS", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..), value_name = "N", help_heading = "Turns and commands")]
    pub max_turn_requests: u32,

    /// The context window (tokens) to assume when the model server does not report one.
    #[arg(long, env = "PUNIE_CONTEXT_SIZE", value_parser = clap::value_parser!(u32).range(512..), value_name = "TOKENS", help_heading = "Turns and commands")]
    pub context_size: Option<u32>,

    /// Seconds to wait for the model's next token once its answer has begun (keep-alive
    /// comments do not count).
    #[arg(long, env = "PUNIE_IDLE_TIMEOUT", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..), value_name = "SECS", help_heading = "Turns and commands")]
    pub idle_timeout: u64,

    /// Seconds a request waits for a model server that is not answering yet (connection
    /// refused, 503 while it starts or loads the model) before it fails; the editor is told
    /// after a few seconds, and cancelling stops the wait. Default 120; 0 retries briefly only.
    #[arg(long, env = "PUNIE_SERVER_WAIT", value_parser = clap::value_parser!(u64).range(0..=86_400), value_name = "SECS", help_heading = "Turns and commands")]
    pub server_wait: Option<u64>,

    /// Seconds one prompt turn may take in all before it is stopped.
    #[arg(long, env = "PUNIE_TURN_TIMEOUT", default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..), value_name = "SECS", help_heading = "Turns and commands")]
    pub turn_timeout: u64,

    /// The mode sessions start in: ask (read and search only), plan (read-only, plans first),
    /// code (asks before every change and command) or edit (file changes without asking).
    /// Default: the config file's default_mode, else code.
    #[arg(long, env = "PUNIE_MODE", value_name = "MODE", value_parser = clap::builder::ValueParser::new(parse_mode), help_heading = "Turns and commands")]
    pub mode: Option<Mode>,

    /// Run local commands without the Landlock write sandbox (Linux): commands may then write
    /// anywhere Punie can.
    #[arg(long, env = "PUNIE_NO_LANDLOCK", value_parser = BoolishValueParser::new(), default_value_t = false, num_args = 0, default_missing_value = "true", help_heading = "Turns and commands")]
    pub no_landlock: bool,

    /// Saved sessions.
    #[command(flatten)]
    pub store: StoreArgs,

    /// Timing reports.
    #[command(flatten)]
    pub perf: PerfArgs,

    /// Logs.
    #[command(flatten)]
    pub log: LogArgs,
}

/// What only a server for editors takes (`punie`, `punie stdio`, `punie serve`): its name and
/// how many sessions its connections may open.
#[derive(Clone, Debug, Args)]
pub struct EditorArgs {
    /// The agent's settings.
    #[command(flatten)]
    pub run: RunArgs,

    /// The agent's display name, sent to the editor in `initialize` (its `agentInfo.title`).
    #[arg(
        long,
        default_value = "Punie",
        value_name = "NAME",
        help_heading = "Editor connections"
    )]
    pub name: String,

    /// Sessions open at once across every connection; `session/new` beyond is refused.
    #[arg(long, env = "PUNIE_MAX_SESSIONS", default_value_t = DEFAULT_MAX_SESSIONS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), value_name = "N", help_heading = "Editor connections")]
    pub max_sessions: usize,

    /// Sessions one editor connection may have open at once; `session/new` beyond is refused
    /// (a connection's sessions close when it ends).
    #[arg(long, env = "PUNIE_MAX_SESSIONS_PER_CONNECTION", default_value_t = DEFAULT_MAX_SESSIONS_PER_CONNECTION, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..), value_name = "N", help_heading = "Editor connections")]
    pub max_sessions_per_connection: usize,
}

impl EditorArgs {
    /// The agent for editors, recording timings per session when `--perf` is on.
    pub fn agent(&self) -> anyhow::Result<(Arc<Agent>, Option<Arc<perf::PerfFiles>>)> {
        self.run.agent(true, |config| {
            config.display_name = self.name.clone();
            config.max_sessions = self.max_sessions;
            config.max_sessions_per_connection = self.max_sessions_per_connection;
        })
    }
}

/// A `--mode` value, or an error naming the modes.
fn parse_mode(value: &str) -> Result<Mode, punie::agent::UnknownMode> {
    value.parse()
}

impl RunArgs {
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

    /// The sandbox for commands Punie runs itself.
    pub fn sandbox(&self) -> SandboxOptions {
        SandboxOptions {
            landlock: !self.no_landlock,
            ..SandboxOptions::default()
        }
    }

    /// Builds the agent these options describe, recording timings when `--perf` is on
    /// (`per_session`: also write a report as each session closes); `adjust` sets what only
    /// some commands decide (the editor's name, session caps).
    pub fn agent(
        &self,
        per_session: bool,
        adjust: impl FnOnce(&mut AgentConfig),
    ) -> anyhow::Result<(Arc<Agent>, Option<Arc<perf::PerfFiles>>)> {
        tracing::info!(
            model = %self.server.model.model,
            landlock = !self.no_landlock,
            perf = self.perf.perf,
            mode = ?self.mode,
            "agent options"
        );
        // Read once: the file's log line appears once, and the spec and the settings come from
        // the same reading.
        let file = self.server.model.config_file()?;
        let named = self.server.model.model_entry_in(file.as_ref())?;
        let spec = self.server.model.spec_of(named.as_ref())?;
        let entry = named.map(|(_, entry)| entry).unwrap_or_default();
        let api_key = self.server.api_key_for(Some(&entry));
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
        config.default_mode = self.default_mode(file.as_ref())?;
        config.max_turn_requests = self.max_turn_requests;
        config.context_size = self.context_size.or(entry.context_size);
        config.turn_timeout = Duration::from_secs(self.turn_timeout);
        if let Some(temperature) = entry.temperature {
            config.temperature = temperature;
        }
        if let Some(max_tokens) = entry.max_tokens {
            config.max_tokens = Some(max_tokens);
        }
        adjust(&mut config);
        let mut builder = Agent::builder()
            .model(model)
            .config(config)
            .sandbox(self.sandbox());
        if let Some(store) = sessions::open_store(&self.store)? {
            builder = builder.journals(store);
        }
        let perf = match self.perf.perf {
            false => None,
            true => {
                let dir = self
                    .perf
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
