//! The `punie` command line: options, subcommands and logging set-up. Uses only the library's
//! public API.

pub mod logging;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use punie::agent::{Agent, AgentConfig};
use punie::llm::{ModelSpec, OpenAiModel};

/// Punie: a coding agent for your editor, running on models you host yourself.
///
/// Without a subcommand, Punie speaks the Agent Client Protocol on stdin/stdout: this is how
/// JetBrains IDEs and Zed start it.
#[derive(Debug, Parser)]
#[command(name = "punie", version, about, long_about = None)]
pub struct Cli {
    /// What to do (default: serve ACP on stdio).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The model: empty for LM Studio's first model, NAME for a model on LM Studio, or
    /// http://HOST:PORT/v1/NAME for any OpenAI-compatible server.
    #[arg(long, env = "PUNIE_MODEL", global = true, default_value = "")]
    pub model: String,

    /// API key for servers that need one (e.g. vLLM behind a gateway).
    #[arg(long, env = "PUNIE_API_KEY", global = true, hide_env_values = true)]
    pub api_key: Option<String>,

    /// The agent's display name in the editor.
    #[arg(long, global = true, default_value = "Punie")]
    pub name: String,

    /// Where log files go (default: the platform's state directory).
    #[arg(long, env = "PUNIE_LOG_DIR", global = true)]
    pub log_dir: Option<PathBuf>,

    /// Model requests allowed per prompt before the turn stops with `max_turn_requests`.
    #[arg(long, env = "PUNIE_MAX_TURN_REQUESTS", global = true, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_turn_requests: u32,

    /// Log level or tracing filter (e.g. `debug`, `punie=trace`).
    #[arg(long, env = "PUNIE_LOG", global = true, default_value = "info")]
    pub log_level: String,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve ACP on stdio (the default).
    Stdio,
}

impl Cli {
    /// Builds the agent these options describe.
    pub fn agent(&self) -> anyhow::Result<Arc<Agent>> {
        let spec = ModelSpec::parse(&self.model).context("invalid --model / PUNIE_MODEL")?;
        let model = OpenAiModel::new(spec, self.api_key.clone());
        let mut config = AgentConfig::default();
        config.display_name = self.name.clone();
        config.max_turn_requests = self.max_turn_requests;
        Ok(Arc::new(Agent::new(Arc::new(model), config)))
    }
}
