//! What can go wrong running a prompt, as one error enum for the agent layer.

use super::journal::JournalError;
use crate::llm::LlmError;

/// What can go wrong running a prompt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// No session with this id.
    #[error("unknown session {0}: create one with session/new first")]
    UnknownSession(String),
    /// A prompt is already running in the session.
    #[error("session {0} is already running a prompt: wait for it to finish or cancel it")]
    Busy(String),
    /// The model server failed.
    #[error(transparent)]
    Model(#[from] LlmError),
    /// The model asked for is not one the server offers.
    #[error("unknown model {model:?}: the server offers {}", if available.is_empty() { "no other models".to_owned() } else { available.join(", ") })]
    UnknownModel {
        /// The model asked for.
        model: String,
        /// What the server offers.
        available: Vec<String>,
    },
    /// The model a new session would use did not pass its back end's check (usually
    /// [`LlmError::UnknownModel`], which lists what the server has).
    #[error(transparent)]
    InvalidModel(LlmError),
    /// The turn ran past [`AgentConfig::turn_timeout`](super::AgentConfig::turn_timeout).
    #[error(
        "the turn was stopped after {seconds} s, Punie's limit for one prompt turn — if the model really needs longer, raise it with --turn-timeout SECONDS (PUNIE_TURN_TIMEOUT)"
    )]
    TurnTimeout {
        /// The limit, in seconds.
        seconds: u64,
    },
    /// Opening a session would pass [`AgentConfig::max_sessions`](super::AgentConfig::max_sessions).
    #[error(
        "Punie already has {max} sessions open, the most it allows: end connections you no longer use (their sessions close with them), or start Punie with a higher --max-sessions"
    )]
    TooManySessions {
        /// The limit.
        max: usize,
    },
    /// Even after compacting the history, the request does not fit the context window.
    #[error(
        "the conversation needs about {needed} tokens but the model's context window is {window} tokens, even after compacting the history — start a new session, or load the model with a larger context (llama-server -c, Ollama num_ctx, LM Studio's context length) and pass --context-size"
    )]
    ContextTooSmall {
        /// Estimated tokens needed (prompt plus the smallest answer).
        needed: u32,
        /// The context window.
        window: u32,
    },
    /// The session is open on another connection of this Punie.
    #[error(
        "session {0} is already open on another connection of this Punie: close it there (session/close) first"
    )]
    SessionOpen(String),
    /// A saved session could not be read, written or locked.
    #[error(transparent)]
    Journal(#[from] JournalError),
}
