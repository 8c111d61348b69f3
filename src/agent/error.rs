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
    /// Even after compacting the history and offering the smallest toolset, the request does
    /// not fit the context window. The message names the window, what is needed, and the
    /// server setting that fixes it ([`suggested_context`](Self::suggested_context)).
    #[error(
        "the model's window is {} tokens and Punie needs {} for this request: start llama-server with -c {suggested} (Ollama: num_ctx {suggested} / OLLAMA_CONTEXT_LENGTH={suggested}; LM Studio: context length {suggested}), or pass --context-size if the server does not report its window",
        thousands(*window),
        thousands(*needed),
        suggested = AgentError::suggested_context(*needed)
    )]
    ContextTooSmall {
        /// Tokens needed: the prompt plus the smallest answer.
        needed: u32,
        /// The context window.
        window: u32,
    },
    /// The session is open on another connection of this Punie.
    #[error(
        "session {0} is already open on another connection of this Punie: close it there (session/close) first"
    )]
    SessionOpen(String),
    /// `session/load` or `session/resume` of a session this connection already has open.
    #[error(
        "session {0} is already open on this connection: keep using it, or close it (session/close) first and load it again"
    )]
    SessionOpenHere(String),
    /// A saved session could not be read, written or locked.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The prompt's images are past Punie's bounds (the message has the numbers).
    #[error("{0}")]
    Image(crate::image::ImageError),
    /// The prompt has images and the session's model cannot see (or its server does not say
    /// that it can).
    #[error(
        "the model {model} {}, so Punie cannot send it the prompt's images: switch to a vision \
         model (a llama-server started with --mmproj, an Ollama or LM Studio vision model), or, \
         if this model does see, set `vision = true` for it in Punie's config file; or send the \
         prompt without images",
        if *told { "cannot see images (its server says so)" } else { "may not see images (its server does not tell)" }
    )]
    ModelCannotSee {
        /// The model, as described for logs (`name at URL`).
        model: String,
        /// Whether the server said it cannot see (rather than not telling).
        told: bool,
    },
}

impl AgentError {
    /// A context window that fits a request needing `needed` tokens with room for the
    /// conversation to grow: twice that, rounded up to a power of two, at least 4096.
    pub fn suggested_context(needed: u32) -> u32 {
        needed
            .saturating_mul(2)
            .checked_next_power_of_two()
            .unwrap_or(u32::MAX)
            .max(4096)
    }
}

/// `n` with a comma between thousands, as people read it: 2,048.
pub(crate) fn thousands(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_small_names_the_window_the_need_and_the_fix() {
        let error = AgentError::ContextTooSmall {
            needed: 2310,
            window: 2048,
        };
        assert_eq!(
            error.to_string(),
            "the model's window is 2,048 tokens and Punie needs 2,310 for this request: start \
             llama-server with -c 8192 (Ollama: num_ctx 8192 / OLLAMA_CONTEXT_LENGTH=8192; LM \
             Studio: context length 8192), or pass --context-size if the server does not report \
             its window"
        );
        assert_eq!(AgentError::suggested_context(100), 4096);
        assert_eq!(AgentError::suggested_context(5000), 16384);
        assert_eq!(AgentError::suggested_context(u32::MAX), u32::MAX);
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
