//! Settings of the turn loop, with the defaults of the original Punie.

use std::path::PathBuf;
use std::time::Duration;

use super::mode::Mode;

/// Sessions open at once across every connection unless told otherwise (see
/// [`AgentConfig::max_sessions`]).
pub const DEFAULT_MAX_SESSIONS: usize = 1024;

/// Sessions one editor connection may have open at once unless told otherwise (see
/// [`AgentConfig::max_sessions_per_connection`]).
pub const DEFAULT_MAX_SESSIONS_PER_CONNECTION: usize = 256;

/// How the agent drives the model.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct AgentConfig {
    /// The name shown to editors (`agentInfo.title`).
    pub display_name: String,
    /// Extra instructions appended to the system prompt.
    pub instructions: Option<String>,
    /// The user-wide project instructions file, read before the project's own `AGENTS.md`
    /// files (see `specs/modes-and-commands.md`). Default: `AGENTS.md` in Punie's config
    /// directory (`~/.config/punie/AGENTS.md` on Linux); `None` reads none.
    pub user_instructions: Option<PathBuf>,
    /// Sampling temperature (0: deterministic, best for tool use).
    pub temperature: f32,
    /// Upper bound on tokens per model answer. `None` (the default): what the context window
    /// leaves after the prompt, at most 4096. A value set here is asked for whenever the
    /// window leaves that much, else what it leaves.
    pub max_tokens: Option<u32>,
    /// Model requests allowed per prompt turn before stopping with `max_turn_requests`.
    pub max_turn_requests: u32,
    /// Times an empty final answer is asked again.
    pub empty_answer_retries: u32,
    /// Tool calls Punie could not run as written (unknown tools, unusable arguments, tools the
    /// session's mode does not allow) tolerated per turn before giving up.
    pub bad_tool_call_retries: u32,
    /// How long `run_command` waits before leaving a command in the background.
    pub command_timeout: Duration,
    /// The context window to assume when the model server does not report one.
    pub context_size: Option<u32>,
    /// The longest a prompt turn may take, so a model server that trickles its answer cannot
    /// hold a turn for ever. Checked while the turn waits for the model. Default 30 min.
    pub turn_timeout: Duration,
    /// Sessions open at once across every connection: opening one more is refused with
    /// [`AgentError::TooManySessions`](super::AgentError::TooManySessions). Each session costs
    /// memory and, in a directory no other session uses, descriptors.
    pub max_sessions: usize,
    /// Sessions one editor connection may have open at once (an ACP connection refuses
    /// `session/new` beyond it). Smaller than [`max_sessions`](Self::max_sessions), so one
    /// connection cannot take every session away from the others.
    pub max_sessions_per_connection: usize,
    /// The mode new sessions start in (and saved sessions that never recorded one).
    pub default_mode: Mode,
    /// Where the user's own slash commands live (`NAME.md` prompt files, see
    /// `specs/modes-and-commands.md`); a project's `.punie/commands/` wins on a name clash.
    /// Default: `commands` in the platform's config directory (`~/.config/punie/commands` on
    /// Linux); `None`: no user commands.
    pub user_commands_dir: Option<std::path::PathBuf>,
}

/// The default [`AgentConfig::user_commands_dir`]: `commands` in the platform's config
/// directory, if it has one.
pub fn default_user_commands_dir() -> Option<std::path::PathBuf> {
    directories::ProjectDirs::from("dev", "punie", "punie").map(|d| d.config_dir().join("commands"))
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            display_name: "Punie".to_owned(),
            instructions: None,
            user_instructions: default_user_instructions(),
            temperature: 0.0,
            max_tokens: None,
            max_turn_requests: 50,
            empty_answer_retries: 2,
            bad_tool_call_retries: 3,
            command_timeout: Duration::from_secs(120),
            context_size: None,
            turn_timeout: Duration::from_secs(30 * 60),
            max_sessions: DEFAULT_MAX_SESSIONS,
            max_sessions_per_connection: DEFAULT_MAX_SESSIONS_PER_CONNECTION,
            default_mode: Mode::default(),
            user_commands_dir: default_user_commands_dir(),
        }
    }
}

/// `AGENTS.md` in Punie's config directory (`$XDG_CONFIG_HOME/punie` or `~/.config/punie` on
/// Linux), if there is a home directory.
pub fn default_user_instructions() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "punie", "punie")
        .map(|dirs| dirs.config_dir().join("AGENTS.md"))
}
