//! The agent proper: sessions and their turns, independent of how the editor talks to us.
//!
//! [`Agent`] owns the model and the sessions; each prompt runs a turn loop that streams the
//! model's answer, runs the tools it calls and reports [`TurnEvent`]s to an [`EventSink`].

mod config;
mod events;
mod session;
mod turn;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use config::AgentConfig;
pub use events::{EventSink, ToolCallChange, ToolCallStart, ToolCallStatus, TurnEvent};
pub use session::Session;

use crate::llm::{ChatModel, LlmError, Message};
use crate::tools::Toolset;
use crate::workspace::Workspace;

/// Why a turn ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The model finished its answer.
    EndTurn,
    /// The model hit the `max_tokens` limit.
    MaxTokens,
    /// The turn hit the cap on model requests.
    MaxTurnRequests,
    /// The turn was cancelled.
    Cancelled,
}

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
}

/// The agent: a model, settings, and the open sessions.
pub struct Agent {
    model: Arc<dyn ChatModel>,
    config: AgentConfig,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    call_counter: AtomicU64,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("model", &self.model.describe())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// An agent using `model` with `config`.
    pub fn new(model: Arc<dyn ChatModel>, config: AgentConfig) -> Self {
        Self {
            model,
            config,
            sessions: Mutex::default(),
            call_counter: AtomicU64::new(0),
        }
    }

    /// The settings.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The model.
    pub fn model(&self) -> &Arc<dyn ChatModel> {
        &self.model
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session with `toolset`, working in the workspace `workspace` builds for the new
    /// session's id.
    pub fn new_session(
        &self,
        workspace: impl FnOnce(&str) -> Workspace,
        toolset: Toolset,
    ) -> Arc<Session> {
        let id = format!("sess_{}", uuid::Uuid::new_v4().simple());
        let workspace = workspace(&id);
        tracing::info!(
            session = %id,
            root = %workspace.root().display(),
            files = workspace.files.provider(),
            terminals = workspace.terminals.provider(),
            tools = ?toolset,
            "session created"
        );
        let session = Arc::new(Session::new(id.clone(), workspace, toolset));
        self.sessions().insert(id, session.clone());
        session
    }

    /// Finds an open session.
    pub fn session(&self, id: &str) -> Result<Arc<Session>, AgentError> {
        self.sessions()
            .get(id)
            .cloned()
            .ok_or_else(|| AgentError::UnknownSession(id.to_owned()))
    }

    /// Closes a session: cancels its turn and releases its terminals.
    pub async fn close_session(&self, id: &str) {
        let session = self.sessions().remove(id);
        if let Some(session) = session {
            session.cancel();
            session
                .terminals
                .release_all(session.workspace.terminals.as_ref())
                .await;
        }
    }

    /// Closes every session (on shutdown).
    pub async fn close_all(&self) {
        let ids: Vec<String> = self.sessions().keys().cloned().collect();
        for id in ids {
            self.close_session(&id).await;
        }
    }

    /// Cancels the running turn of a session, if any.
    pub fn cancel(&self, id: &str) -> Result<(), AgentError> {
        let session = self.session(id)?;
        if session.cancel() {
            tracing::info!(session = %id, "turn cancelled");
        }
        Ok(())
    }

    /// Starts a prompt turn in `session`: claims the session and arms its cancellation at once,
    /// so a `session/cancel` that arrives right after the prompt is never lost. Run the turn
    /// with [`PendingTurn::run`].
    pub fn start_prompt(
        &self,
        session: Arc<Session>,
        prompt: String,
    ) -> Result<PendingTurn, AgentError> {
        let history = session
            .history
            .clone()
            .try_lock_owned()
            .map_err(|_| AgentError::Busy(session.id.clone()))?;
        let cancel = session.begin_turn();
        Ok(PendingTurn {
            session,
            prompt,
            history,
            cancel,
        })
    }

    /// Runs one prompt turn in `session`, reporting events to `events`.
    pub async fn prompt(
        &self,
        session: Arc<Session>,
        prompt: String,
        events: Arc<dyn EventSink>,
    ) -> Result<StopReason, AgentError> {
        self.start_prompt(session, prompt)?.run(self, events).await
    }
}

/// A prompt turn that has claimed its session but not yet run.
pub struct PendingTurn {
    session: Arc<Session>,
    prompt: String,
    history: tokio::sync::OwnedMutexGuard<Vec<Message>>,
    cancel: tokio_util::sync::CancellationToken,
}

impl std::fmt::Debug for PendingTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingTurn")
            .field("session", &self.session.id)
            .finish_non_exhaustive()
    }
}

impl PendingTurn {
    /// Runs the turn, reporting events to `events`.
    ///
    /// If the model server fails, the conversation stays as it was before the prompt, so the
    /// person can simply try again.
    pub async fn run(
        mut self,
        agent: &Agent,
        events: Arc<dyn EventSink>,
    ) -> Result<StopReason, AgentError> {
        let session = self.session.clone();
        let started = Instant::now();
        let mut working = self.history.clone();
        working.push(Message::User {
            content: self.prompt,
        });
        let turn = turn::Turn {
            session: &session,
            model: agent.model.as_ref(),
            config: &agent.config,
            events,
            cancel: self.cancel,
            call_counter: &agent.call_counter,
        };
        let result = turn.run(&mut working).await;
        session.end_turn();
        match result {
            Ok(stop) => {
                *self.history = working;
                tracing::info!(session = %session.id, ?stop, elapsed_ms = started.elapsed().as_millis() as u64, "turn ended");
                Ok(stop)
            }
            Err(error) => {
                tracing::warn!(session = %session.id, %error, elapsed_ms = started.elapsed().as_millis() as u64, "turn failed");
                Err(error.into())
            }
        }
    }
}
