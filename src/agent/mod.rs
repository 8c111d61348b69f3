//! The agent proper: sessions and their turns, independent of how the editor talks to us.
//!
//! [`Agent`] owns the model and the sessions; each prompt runs a turn loop that streams the
//! model's answer, runs the tools it calls and reports [`TurnEvent`]s to an [`EventSink`].

mod builder;
mod commands;
mod config;
mod context;
mod error;
mod events;
mod input;
mod instructions;
pub mod journal;
mod mode;
mod observe;
mod open;
mod saved;
mod session;
mod turn;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use builder::{AgentBuilder, BuildError};
pub use config::{
    AgentConfig, DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SESSIONS_PER_CONNECTION,
    default_user_commands_dir, default_user_instructions,
};
pub use error::AgentError;
pub use events::{
    CommandInfo, CompactionStatus, EventSink, StopReason, ToolCallChange, ToolCallStart,
    ToolCallStatus, TurnEvent,
};
pub use input::{Prompt, PromptBlock};
pub use instructions::{INSTRUCTION_FILES, INSTRUCTIONS_SHARE_DIVISOR};
pub use mode::{Mode, UnknownMode};
pub use observe::{ModelRequestStats, ToolCallStats, TurnObserver};
pub use open::OpeningSession;
pub(crate) use open::connect_mcp;
pub use saved::LoadedSession;
pub use session::{Session, ToolsLoading};

use crate::llm::{ChatModel, Message};
use crate::tools::builtin::default_toolset;
use crate::tools::{Tool, Toolset};
use crate::workspace::Workspace;
use crate::workspace::local::SandboxOptions;

/// How long a prompt waits for tools that are still loading (editor catalog, MCP servers).
const TOOLS_LOADING_LIMIT: std::time::Duration = std::time::Duration::from_secs(15);

/// The agent: a model, settings, and the open sessions.
pub struct Agent {
    model: Arc<dyn ChatModel>,
    config: AgentConfig,
    extra_tools: Vec<Arc<dyn Tool>>,
    sandbox: SandboxOptions,
    observer: Option<Arc<dyn TurnObserver>>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    call_counter: AtomicU64,
    /// Where sessions are saved, if they are.
    journals: Option<Arc<journal::SessionStore>>,
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
            extra_tools: Vec::new(),
            sandbox: SandboxOptions::default(),
            observer: None,
            sessions: Mutex::default(),
            call_counter: AtomicU64::new(0),
            journals: None,
        }
    }

    /// Starts building an agent.
    pub fn builder() -> AgentBuilder {
        AgentBuilder::new()
    }

    /// The tools a new session gets: the built-in ones plus those added with
    /// [`AgentBuilder::tool`].
    pub fn toolset(&self) -> Toolset {
        let mut tools = default_toolset();
        for tool in &self.extra_tools {
            tools.add(tool.clone());
        }
        tools
    }

    /// The tools added with [`AgentBuilder::tool`].
    pub fn extra_tools(&self) -> &[Arc<dyn Tool>] {
        &self.extra_tools
    }

    /// The timing observer, if any.
    pub fn observer(&self) -> Option<&Arc<dyn TurnObserver>> {
        self.observer.as_ref()
    }

    /// How local commands are confined.
    pub fn sandbox(&self) -> &SandboxOptions {
        &self.sandbox
    }

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }

    /// The settings.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The model.
    pub fn model(&self) -> &Arc<dyn ChatModel> {
        &self.model
    }

    /// Starts asking the model's server, on a task, what Punie must know before the first
    /// session: whether the model sees images (for `initialize`'s `promptCapabilities.image`).
    /// The answer is remembered by the model; call this from within a Tokio runtime, at start.
    pub fn warm_up(&self) {
        let model = self.model.clone();
        tokio::spawn(async move {
            let sees = model.sees().await;
            tracing::debug!(?sees, model = %model.describe(), "whether the model sees images");
        });
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
        session.set_mode(self.config.default_mode);
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
            session.take_journal();
            session
                .terminals
                .release_all(session.workspace.terminals.as_ref())
                .await;
            session.shutdown_mcp().await;
            if let Some(observer) = &self.observer {
                observer.session_closed(id);
            }
        }
    }

    /// Closes every session (on shutdown).
    pub async fn close_all(&self) {
        let ids: Vec<String> = self.sessions().keys().cloned().collect();
        for id in ids {
            self.close_session(&id).await;
        }
    }

    /// The model a session uses and the models it could switch to (empty when the back end
    /// cannot switch or its server does not answer).
    pub async fn session_models(&self, session: &Session) -> (Option<String>, Vec<String>) {
        let model = session
            .model_override()
            .unwrap_or_else(|| self.model.clone());
        let current = session.model_name().or(model.model_name().await);
        let available =
            match tokio::time::timeout(std::time::Duration::from_secs(3), model.available_models())
                .await
            {
                Ok(Ok(models)) => models,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "cannot list the server's models");
                    Vec::new()
                }
                Err(_) => Vec::new(),
            };
        (current, available)
    }

    /// Switches a session to another model of the same back end, from its next model request.
    pub async fn set_session_model(&self, session: &Session, name: &str) -> Result<(), AgentError> {
        let (_, available) = self.session_models(session).await;
        if !available.iter().any(|m| m == name) {
            return Err(AgentError::UnknownModel {
                model: name.to_owned(),
                available,
            });
        }
        let model = self
            .model
            .switch_to(name)
            .ok_or_else(|| AgentError::UnknownModel {
                model: name.to_owned(),
                available: Vec::new(),
            })?;
        tracing::info!(session = %session.id, model = name, "session model switched");
        session.set_model(name.to_owned(), model);
        if let Some(journal) = session.journal() {
            journal.model(name);
        }
        Ok(())
    }

    /// Switches a session to `mode`; returns whether it changed. The next tool call already
    /// obeys it (a running turn's calls included); the tools offered and the system prompt
    /// follow from the next prompt on. A saved session records the switch, and editor
    /// connections following the session ([`Session::watch_mode`]) are told.
    pub fn set_session_mode(&self, session: &Session, mode: Mode) -> bool {
        let before = session.mode();
        if !session.set_mode(mode) {
            return false;
        }
        tracing::info!(session = %session.id, from = %before, to = %mode, "session mode switched");
        if let Some(journal) = session.journal() {
            journal.mode(mode.id());
        }
        true
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
    ///
    /// A prompt with images is checked when the turn runs, before anything reaches the model
    /// or the session's history: the images' bounds ([`check_images`](crate::image::check_images)),
    /// and that the session's model can see ([`AgentError::ModelCannotSee`]).
    pub fn start_prompt(
        &self,
        session: Arc<Session>,
        prompt: Prompt,
    ) -> Result<PendingTurn, AgentError> {
        let claim = session
            .claim_turn()
            .ok_or_else(|| AgentError::Busy(session.id.clone()))?;
        Ok(PendingTurn { claim, prompt })
    }

    /// Runs one prompt turn in `session`, reporting events to `events`.
    pub async fn prompt(
        &self,
        session: Arc<Session>,
        prompt: Prompt,
        events: Arc<dyn EventSink>,
    ) -> Result<StopReason, AgentError> {
        self.start_prompt(session, prompt)?.run(self, events).await
    }
}

/// The session's mode now, the tools it offers, and the tools it withholds.
pub(crate) fn mode_tools(session: &Session) -> (Mode, Toolset, Toolset) {
    let mode = session.mode();
    let (mut toolset, mut withheld) = (Toolset::new(), Toolset::new());
    for tool in session.toolset().iter() {
        match mode.allows(tool.as_ref()) {
            true => toolset.add(tool.clone()),
            false => withheld.add(tool.clone()),
        }
    }
    (mode, toolset, withheld)
}

/// A prompt turn that has claimed its session but not yet run.
pub struct PendingTurn {
    claim: session::TurnClaim,
    prompt: Prompt,
}

impl std::fmt::Debug for PendingTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingTurn")
            .field("session", &self.claim.session().id)
            .finish_non_exhaustive()
    }
}

impl PendingTurn {
    /// Runs the turn, reporting events to `events`.
    ///
    /// If the model server fails, the conversation stays as it was before the prompt, so the
    /// person can simply try again.
    pub async fn run(
        self,
        agent: &Agent,
        events: Arc<dyn EventSink>,
    ) -> Result<StopReason, AgentError> {
        let Self { claim, prompt } = self;
        let session = claim.session().clone();
        if !prompt.images.is_empty() {
            // Refused before anything is recorded or sent: the session stays as it was.
            crate::image::check_images(&prompt.images).map_err(AgentError::Image)?;
            let model = session
                .model_override()
                .unwrap_or_else(|| agent.model.clone());
            let sees = model.sees().await;
            if sees != Some(true) {
                let error = AgentError::ModelCannotSee {
                    model: model.describe(),
                    told: sees.is_some(),
                };
                tracing::info!(session = %session.id, images = prompt.images.len(), %error, "prompt refused");
                return Err(error);
            }
        }
        // Prompt files may have come or gone since the commands were last told.
        let commands = agent
            .announce_commands(&session, events.as_ref(), false)
            .await;
        let prompt = match commands.resolve(&prompt.text) {
            // A prompt file's command: the model reads what it expands to, the journal keeps
            // what the person typed.
            commands::Invocation::Model(text) => Prompt {
                blocks: prompt.sent(),
                text,
                ..prompt
            },
            commands::Invocation::Local {
                command,
                arguments,
                typed,
            } => {
                return agent
                    .run_command(claim, command, &arguments, &typed, events)
                    .await;
            }
        };
        let cancel = claim.cancel_token().clone();
        let started = Instant::now();
        let mut working = claim.history();
        // A session is saved from its first prompt on: one never prompted leaves nothing.
        let journal = session.journal().or_else(|| agent.start_journal(&session));
        let events: Arc<dyn EventSink> = match &journal {
            Some(journal) => {
                journal.begin_turn(&working, &prompt);
                Arc::new(saved::Journaled {
                    journal: journal.clone(),
                    events,
                })
            }
            None => events,
        };
        working.push(Message::User {
            content: prompt.text,
        });
        if !prompt.images.is_empty() {
            working.push(Message::Images {
                images: prompt.images,
            });
        }
        // Tools from the editor's catalog or MCP servers may still be arriving.
        tokio::select! {
            _ = session.wait_for_tools(TOOLS_LOADING_LIMIT) => {}
            _ = cancel.cancelled() => {}
        }
        // The mode at the turn's start decides what the model is offered and told; each call
        // obeys the mode in force when it is made.
        let (mode, toolset, withheld) = mode_tools(&session);
        let turn = turn::Turn {
            session: &session,
            model: &agent.model,
            config: &agent.config,
            events: events.clone(),
            cancel,
            call_counter: &agent.call_counter,
            toolset,
            withheld,
            mode,
            observer: agent.observer.as_deref(),
        };
        if let Some(observer) = &agent.observer {
            observer.turn_started(&session.id);
        }
        let result = turn.run(&mut working).await;
        if let Some(observer) = &agent.observer {
            observer.turn_finished(
                &session.id,
                result.as_ref().ok().copied(),
                started.elapsed(),
            );
        }
        if let Some(journal) = &journal {
            let stop = result
                .as_ref()
                .map_or("failed", |stop| saved::stop_name(*stop));
            let after = result.is_ok().then_some(working.as_slice());
            journal.end_turn(after, stop);
            saved::tell_failure(journal, &session.id, events.as_ref());
            events.emit(
                &session.id,
                TurnEvent::SessionInfo {
                    title: journal.title(),
                    updated_at: journal.updated_at(),
                },
            );
        }
        // The one place a turn's messages join the session's history.
        claim.end(result.is_ok().then_some(working));
        match result {
            Ok(stop) => {
                tracing::info!(session = %session.id, ?stop, elapsed_ms = started.elapsed().as_millis() as u64, "turn ended");
                Ok(stop)
            }
            Err(error) => {
                tracing::warn!(session = %session.id, %error, elapsed_ms = started.elapsed().as_millis() as u64, "turn failed");
                Err(error)
            }
        }
    }
}
