//! One conversation: its fixed identity (id, workspace, terminals) and its mutable state behind
//! a single lock, including the running turn whose claim keeps prompts from overlapping.
//!
//! Every change to a session's state goes through one short critical section of
//! [`Session::state`], never held across an `.await`; the one place a turn's messages enter the
//! history is [`TurnClaim::end`]. See "Session state: one lock around one `SessionState`" in
//! `specs/decisions.md`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use super::events::CommandInfo;
use super::instructions::InstructionFiles;
use super::journal::Journal;
use super::mode::Mode;
use crate::llm::{ChatModel, Message};
use crate::tools::mcp::McpConnections;
use crate::tools::{SessionTerminals, Tool, Toolset};
use crate::workspace::Workspace;

/// Everything about a session that changes while it lives.
#[derive(Default)]
struct SessionState {
    /// The conversation as of the last completed turn; a running turn works on its own copy.
    history: Vec<Message>,
    toolset: Toolset,
    /// The model this session switched to, by name, if it did.
    model: Option<(String, Arc<dyn ChatModel>)>,
    /// The session's MCP servers, shut down when it closes.
    mcp: Option<McpConnections>,
    /// Things to tell the person at the start of the next turn.
    notices: Vec<(String, String)>,
    /// What the person answered "always" to, per tool name.
    permissions: HashMap<String, bool>,
    /// Where the session is saved, if it is.
    journal: Option<Arc<Journal>>,
    /// Whether the person was told that the session cannot be saved (told once).
    unsaved_told: bool,
    /// The slash commands last sent to the editor, and the problems with prompt files last
    /// told, so both are sent again only when they change.
    commands: Option<(Vec<CommandInfo>, Vec<String>)>,
    /// The running turn's cancellation, present from the moment a prompt claims the session
    /// until its turn ends: this, not a lock attempt, is what makes a second prompt busy.
    turn: Option<CancellationToken>,
}

/// A session: created by `session/new`, driven by prompts.
pub struct Session {
    pub(crate) id: String,
    pub(crate) workspace: Workspace,
    pub(crate) terminals: Arc<SessionTerminals>,
    state: Mutex<SessionState>,
    /// How many tool sources (editor catalog, MCP servers) are still loading. A channel rather
    /// than a field of the state, because a prompt needs to wait on it.
    tools_loading: tokio::sync::watch::Sender<usize>,
    /// The session's mode. A channel rather than a field of the state, so that an editor
    /// connection can follow every change, whoever makes it.
    mode: tokio::sync::watch::Sender<Mode>,
    /// The project instructions as last read (checked at each prompt).
    pub(crate) instructions: InstructionFiles,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("workspace", &self.workspace)
            .field("toolset", &self.toolset())
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(id: String, workspace: Workspace, toolset: Toolset) -> Self {
        Self {
            id,
            workspace,
            terminals: Arc::default(),
            state: Mutex::new(SessionState {
                toolset,
                ..SessionState::default()
            }),
            tools_loading: tokio::sync::watch::Sender::new(0),
            mode: tokio::sync::watch::Sender::new(Mode::default()),
            instructions: InstructionFiles::default(),
        }
    }

    /// The session's state. A panic elsewhere while the lock was held leaves the state usable:
    /// each critical section is a handful of assignments with no half-done invariant, so a
    /// poisoned lock is taken over rather than turning one failed turn into a dead session.
    fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The session's workspace.
    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    /// The session's tools.
    pub fn toolset(&self) -> Toolset {
        self.state().toolset.clone()
    }

    /// Replaces the session's tools (from the next turn on).
    pub fn set_toolset(&self, toolset: Toolset) {
        tracing::info!(session = %self.id, tools = ?toolset, "session tools set");
        self.state().toolset = toolset;
    }

    /// Adds tools to the session (from the next turn on).
    pub fn add_tools(&self, tools: impl IntoIterator<Item = Arc<dyn Tool>>) {
        let toolset = {
            let mut state = self.state();
            for tool in tools {
                state.toolset.add(tool);
            }
            state.toolset.clone()
        };
        tracing::info!(session = %self.id, tools = ?toolset, "session tools added");
    }

    /// Marks a source of tools as loading until the returned guard is dropped. A prompt that
    /// arrives meanwhile waits (a bounded time) for it, so the first turn sees every tool.
    pub fn loading_tools(self: &Arc<Self>) -> ToolsLoading {
        self.tools_loading.send_modify(|n| *n += 1);
        ToolsLoading {
            session: self.clone(),
        }
    }

    /// Waits until no tool source is loading, or `limit` passes.
    pub(crate) async fn wait_for_tools(&self, limit: std::time::Duration) {
        let mut loading = self.tools_loading.subscribe();
        if tokio::time::timeout(limit, loading.wait_for(|n| *n == 0))
            .await
            .is_err()
        {
            tracing::warn!(session = %self.id, "tools still loading after {limit:?}; the turn starts without them");
        }
    }

    /// The model this session switched to, if it did.
    pub fn model_override(&self) -> Option<Arc<dyn ChatModel>> {
        self.state().model.as_ref().map(|(_, m)| m.clone())
    }

    /// The name of the model this session switched to, if it did.
    pub fn model_name(&self) -> Option<String> {
        self.state().model.as_ref().map(|(n, _)| n.clone())
    }

    pub(crate) fn set_model(&self, name: String, model: Arc<dyn ChatModel>) {
        self.state().model = Some((name, model));
    }

    /// The session's mode: what Punie may do in it without asking. Change it with
    /// [`Agent::set_session_mode`](super::Agent::set_session_mode).
    pub fn mode(&self) -> Mode {
        *self.mode.borrow()
    }

    /// Follows the session's mode: the receiver sees every change from now on (an editor
    /// connection turns them into `current_mode_update` and `config_option_update`). It ends
    /// when the session is dropped.
    pub fn watch_mode(&self) -> tokio::sync::watch::Receiver<Mode> {
        self.mode.subscribe()
    }

    /// Sets the mode; returns whether it changed.
    pub(crate) fn set_mode(&self, mode: Mode) -> bool {
        self.mode.send_if_modified(|current| {
            let changed = *current != mode;
            *current = mode;
            changed
        })
    }

    /// Gives the session its MCP servers: their tools join the session's tools, and the
    /// servers are shut down when the session closes.
    pub fn attach_mcp(&self, connections: McpConnections) {
        let tools = connections.tools();
        // The tools and the servers that answer them change together.
        let (previous, toolset) = {
            let mut state = self.state();
            for tool in tools {
                state.toolset.add(tool);
            }
            (state.mcp.replace(connections), state.toolset.clone())
        };
        tracing::info!(session = %self.id, tools = ?toolset, "session tools added");
        if let Some(previous) = previous {
            tokio::spawn(previous.shutdown());
        }
    }

    /// Stops the session's MCP servers.
    pub(crate) async fn shutdown_mcp(&self) {
        let connections = self.state().mcp.take();
        if let Some(connections) = connections {
            connections.shutdown().await;
        }
    }

    /// The session's journal, if it is saved.
    pub(crate) fn journal(&self) -> Option<Arc<Journal>> {
        self.state().journal.clone()
    }

    /// Saves the session in `journal` from now on.
    pub(crate) fn set_journal(&self, journal: Journal) {
        self.state().journal = Some(Arc::new(journal));
    }

    /// True the first time it is called: whether to tell the person that the session cannot
    /// be saved (once per session, however many prompts try again).
    pub(crate) fn first_unsaved_notice(&self) -> bool {
        !std::mem::replace(&mut self.state().unsaved_told, true)
    }

    /// Stops saving the session (it is closing): its journal is unlocked once the running
    /// turn, if any, has ended.
    pub(crate) fn take_journal(&self) -> Option<Arc<Journal>> {
        self.state().journal.take()
    }

    /// Journals the messages the running turn has completed since the last call (the turn
    /// calls this before each wait: a model request, a tool call).
    pub(crate) fn journal_progress(&self, history: &[Message]) {
        if let Some(journal) = self.journal() {
            journal.sync(history);
        }
    }

    /// Sets the history of a session restored from its journal (before anyone can prompt it).
    pub(crate) fn restore(&self, history: Vec<Message>) {
        self.state().history = history;
    }

    /// Queues something to tell the person at the start of the next turn.
    pub fn notify(&self, title: impl Into<String>, description: impl Into<String>) {
        self.state()
            .notices
            .push((title.into(), description.into()));
    }

    pub(crate) fn take_notices(&self) -> Vec<(String, String)> {
        std::mem::take(&mut self.state().notices)
    }

    /// The "always" answer remembered for `tool`, if the person gave one.
    pub(crate) fn remembered_permission(&self, tool: &str) -> Option<bool> {
        self.state().permissions.get(tool).copied()
    }

    /// Remembers an "always allow" (`true`) or "always reject" (`false`) for `tool`.
    pub(crate) fn remember_permission(&self, tool: &str, allowed: bool) {
        self.state().permissions.insert(tool.to_owned(), allowed);
    }

    /// Remembers `commands` and `problems` as sent; returns which of the two differ from what
    /// was sent before (both when nothing was).
    pub(crate) fn commands_sent(
        &self,
        commands: &[CommandInfo],
        problems: &[String],
    ) -> (bool, bool) {
        let mut state = self.state();
        let changed = match &state.commands {
            Some((sent, told)) => (sent != commands, told != problems),
            None => (true, true),
        };
        state.commands = Some((commands.to_vec(), problems.to_vec()));
        changed
    }

    /// Cancels the running turn, if any. Returns whether there was one.
    pub fn cancel(&self) -> bool {
        match &self.state().turn {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Claims the session for a turn and arms its cancellation, in one step so that a
    /// `cancel` right after is never lost. `None` when a turn is already running.
    pub(crate) fn claim_turn(self: &Arc<Self>) -> Option<TurnClaim> {
        let cancel = CancellationToken::new();
        {
            let mut state = self.state();
            if state.turn.is_some() {
                return None;
            }
            state.turn = Some(cancel.clone());
        }
        Some(TurnClaim {
            session: self.clone(),
            cancel,
            ended: false,
        })
    }
}

/// The right to run the one turn of a session: while it lives, other prompts are busy.
///
/// Dropping it without [`end`](Self::end) (the prompt was abandoned, or its task panicked)
/// frees the session and leaves the history as it was.
pub(crate) struct TurnClaim {
    session: Arc<Session>,
    cancel: CancellationToken,
    ended: bool,
}

impl TurnClaim {
    /// The session this turn runs in.
    pub(crate) fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// The turn's cancellation token, armed since the claim.
    pub(crate) fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    /// A copy of the history for the turn to work on; nobody else changes the history while
    /// the claim lives.
    pub(crate) fn history(&self) -> Vec<Message> {
        self.session.state().history.clone()
    }

    /// Ends the turn: commits `history` (the turn's complete, well-formed conversation), or
    /// keeps the old one when `None`, and frees the session — in one step, so the next prompt
    /// sees the committed history.
    pub(crate) fn end(mut self, history: Option<Vec<Message>>) {
        self.release(history);
    }

    fn release(&mut self, history: Option<Vec<Message>>) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let mut state = self.session.state();
        if let Some(history) = history {
            state.history = history;
        }
        state.turn = None;
    }
}

impl Drop for TurnClaim {
    fn drop(&mut self) {
        self.release(None);
    }
}

/// Keeps a session's tools marked as loading while alive.
#[must_use = "the tools count as loaded as soon as this is dropped"]
pub struct ToolsLoading {
    session: Arc<Session>,
}

impl std::fmt::Debug for ToolsLoading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolsLoading")
            .field("session", &self.session.id)
            .finish()
    }
}

impl Drop for ToolsLoading {
    fn drop(&mut self) {
        self.session
            .tools_loading
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use futures::future::BoxFuture;

    use super::*;
    use crate::agent::{Agent, AgentConfig, AgentError, EventSink, StopReason, TurnEvent};
    use crate::llm::{ChatRequest, FinishReason, LlmError, ModelEvent, ModelStream};
    use crate::workspace::local::{LocalOptions, local_workspace};

    /// A model that answers `Some` text, fails on `None`, or never answers when `hangs`.
    struct Model {
        reply: Option<&'static str>,
        hangs: bool,
    }

    impl ChatModel for Model {
        fn stream(&self, _: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
            Box::pin(async move {
                if self.hangs {
                    futures::future::pending::<()>().await;
                }
                let text = self.reply.ok_or_else(|| LlmError::Backend {
                    message: "down".to_owned(),
                })?;
                let events = [
                    ModelEvent::Text(text.to_owned()),
                    ModelEvent::Finished(FinishReason::Stop),
                ];
                let stream: ModelStream = Box::pin(futures::stream::iter(events.map(Ok)));
                Ok(stream)
            })
        }

        fn describe(&self) -> String {
            "test model".to_owned()
        }
    }

    struct Quiet;

    impl EventSink for Quiet {
        fn emit(&self, _: &str, _: TurnEvent) {}
    }

    fn open(model: Model) -> (tempfile::TempDir, Arc<Agent>, Arc<Session>) {
        let dir = tempfile::tempdir().unwrap();
        let agent = Arc::new(Agent::new(Arc::new(model), AgentConfig::default()));
        let root = dir.path().to_owned();
        let session = agent.new_session(
            |_| local_workspace(root, LocalOptions::default()).unwrap(),
            Toolset::default(),
        );
        (dir, agent, session)
    }

    fn answers(text: &'static str) -> Model {
        Model {
            reply: Some(text),
            hangs: false,
        }
    }

    fn history(session: &Arc<Session>) -> Vec<Message> {
        session.claim_turn().expect("the session is free").history()
    }

    #[tokio::test]
    async fn a_second_prompt_is_busy_until_the_running_turn_ends() {
        let (_dir, agent, session) = open(Model {
            reply: Some("late"),
            hangs: true,
        });
        let first = agent.start_prompt(session.clone(), "one".into()).unwrap();
        let running = tokio::spawn({
            let agent = agent.clone();
            async move { first.run(&agent, Arc::new(Quiet)).await }
        });
        tokio::task::yield_now().await;
        assert!(matches!(
            agent.start_prompt(session.clone(), "two".into()),
            Err(AgentError::Busy(id)) if id == session.id
        ));
        assert!(session.cancel(), "a turn is running");
        assert_eq!(running.await.unwrap().unwrap(), StopReason::Cancelled);
        assert!(!session.cancel(), "the turn has ended");
        assert!(agent.start_prompt(session.clone(), "two".into()).is_ok());
    }

    #[tokio::test]
    async fn a_cancel_right_after_the_prompt_is_not_lost() {
        let (_dir, agent, session) = open(answers("never sent"));
        let pending = agent.start_prompt(session.clone(), "hi".into()).unwrap();
        assert!(session.cancel());
        let stop = pending.run(&agent, Arc::new(Quiet)).await.unwrap();
        assert_eq!(stop, StopReason::Cancelled);
        assert_eq!(
            history(&session),
            [Message::User {
                content: "hi".into()
            }]
        );
    }

    #[tokio::test]
    async fn a_completed_turn_is_committed_and_a_failed_one_is_not() {
        let (_dir, agent, session) = open(answers("hello"));
        let stop = agent
            .prompt(session.clone(), "hi".into(), Arc::new(Quiet))
            .await
            .unwrap();
        assert_eq!(stop, StopReason::EndTurn);
        let done = [
            Message::User {
                content: "hi".into(),
            },
            Message::Assistant {
                content: Some("hello".into()),
                tool_calls: Vec::new(),
            },
        ];
        assert_eq!(history(&session), done);

        let (_dir, agent, failing) = open(Model {
            reply: None,
            hangs: false,
        });
        let result = agent
            .prompt(failing.clone(), "hi".into(), Arc::new(Quiet))
            .await;
        assert!(matches!(result, Err(AgentError::Model(_))), "{result:?}");
        assert!(history(&failing).is_empty(), "the prompt can be retried");
    }

    #[tokio::test]
    async fn an_abandoned_prompt_frees_its_session() {
        let (_dir, agent, session) = open(answers("hello"));
        let pending = agent.start_prompt(session.clone(), "hi".into()).unwrap();
        drop(pending);
        assert!(!session.cancel(), "no turn is running");
        assert!(history(&session).is_empty());
        assert!(agent.start_prompt(session, "hi".into()).is_ok());
    }

    #[tokio::test]
    async fn a_mode_switch_reaches_followers_once_and_new_sessions_start_in_the_default() {
        let (_dir, agent, session) = open(answers("x"));
        assert_eq!(session.mode(), Mode::Code);
        let mut follower = session.watch_mode();
        assert!(agent.set_session_mode(&session, Mode::Ask));
        assert!(!agent.set_session_mode(&session, Mode::Ask), "no change");
        follower.changed().await.unwrap();
        assert_eq!(*follower.borrow_and_update(), Mode::Ask);
        assert!(!follower.has_changed().unwrap(), "announced once");
        assert_eq!(session.mode(), Mode::Ask);

        let config = AgentConfig {
            default_mode: Mode::Plan,
            ..AgentConfig::default()
        };
        let agent = Agent::new(Arc::new(answers("x")), config);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let session = agent.new_session(
            |_| local_workspace(root, LocalOptions::default()).unwrap(),
            Toolset::default(),
        );
        assert_eq!(session.mode(), Mode::Plan);
    }

    #[test]
    fn ending_a_claim_commits_its_history_and_frees_the_session() {
        let workspace = tempfile::tempdir().unwrap();
        let session = Arc::new(Session::new(
            "s".into(),
            local_workspace(workspace.path().to_owned(), LocalOptions::default()).unwrap(),
            Toolset::default(),
        ));
        let claim = session.claim_turn().unwrap();
        assert!(session.claim_turn().is_none(), "busy while claimed");
        let message = Message::User {
            content: "kept".into(),
        };
        claim.end(Some(vec![message.clone()]));
        let next = session.claim_turn().unwrap();
        assert_eq!(next.history(), [message]);
        assert!(session.claim_turn().is_none());
    }
}
