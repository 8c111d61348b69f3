//! One conversation: its workspace, tools, history, remembered permission answers, and the
//! handle that cancels its running turn.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::llm::{ChatModel, Message};
use crate::tools::mcp::McpConnections;
use crate::tools::{SessionTerminals, Tool, Toolset};
use crate::workspace::Workspace;

/// What the person answered "always" to, per tool name.
#[derive(Debug, Default)]
pub(crate) struct PermissionMemory {
    answers: Mutex<HashMap<String, bool>>,
}

impl PermissionMemory {
    pub(crate) fn recall(&self, tool: &str) -> Option<bool> {
        self.lock().get(tool).copied()
    }

    pub(crate) fn remember(&self, tool: &str, allowed: bool) {
        self.lock().insert(tool.to_owned(), allowed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.answers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A session: created by `session/new`, driven by prompts.
pub struct Session {
    pub(crate) id: String,
    pub(crate) workspace: Workspace,
    toolset: Mutex<Toolset>,
    /// How many tool sources (editor catalog, MCP servers) are still loading.
    tools_loading: tokio::sync::watch::Sender<usize>,
    pub(crate) terminals: Arc<SessionTerminals>,
    pub(crate) permissions: PermissionMemory,
    /// Locked for the whole of a turn, so turns of one session never overlap.
    pub(crate) history: Arc<tokio::sync::Mutex<Vec<Message>>>,
    current_turn: Mutex<Option<CancellationToken>>,
    /// The model this session switched to, if it did.
    model: Mutex<Option<(String, Arc<dyn ChatModel>)>>,
    /// The session's MCP servers, shut down when it closes.
    mcp: Mutex<Option<McpConnections>>,
    /// Things to tell the person at the start of the next turn.
    notices: Mutex<Vec<(String, String)>>,
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
            toolset: Mutex::new(toolset),
            tools_loading: tokio::sync::watch::Sender::new(0),
            terminals: Arc::default(),
            permissions: PermissionMemory::default(),
            history: Arc::default(),
            current_turn: Mutex::new(None),
            model: Mutex::new(None),
            mcp: Mutex::new(None),
            notices: Mutex::new(Vec::new()),
        }
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
        self.toolset
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the session's tools (from the next turn on).
    pub fn set_toolset(&self, toolset: Toolset) {
        tracing::info!(session = %self.id, tools = ?toolset, "session tools set");
        *self.toolset.lock().unwrap_or_else(|p| p.into_inner()) = toolset;
    }

    /// Adds tools to the session (from the next turn on).
    pub fn add_tools(&self, tools: impl IntoIterator<Item = Arc<dyn Tool>>) {
        let mut toolset = self.toolset.lock().unwrap_or_else(|p| p.into_inner());
        for tool in tools {
            toolset.add(tool);
        }
        tracing::info!(session = %self.id, tools = ?*toolset, "session tools added");
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
        self.model
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(_, m)| m.clone())
    }

    /// The name of the model this session switched to, if it did.
    pub fn model_name(&self) -> Option<String> {
        self.model
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|(n, _)| n.clone())
    }

    pub(crate) fn set_model(&self, name: String, model: Arc<dyn ChatModel>) {
        *self.model.lock().unwrap_or_else(|p| p.into_inner()) = Some((name, model));
    }

    /// Gives the session its MCP servers: their tools join the session's tools, and the
    /// servers are shut down when the session closes.
    pub fn attach_mcp(&self, connections: McpConnections) {
        self.add_tools(connections.tools());
        let previous = self
            .mcp
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(connections);
        if let Some(previous) = previous {
            tokio::spawn(previous.shutdown());
        }
    }

    /// Stops the session's MCP servers.
    pub(crate) async fn shutdown_mcp(&self) {
        let connections = self.mcp.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(connections) = connections {
            connections.shutdown().await;
        }
    }

    /// Queues something to tell the person at the start of the next turn.
    pub fn notify(&self, title: impl Into<String>, description: impl Into<String>) {
        self.notices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((title.into(), description.into()));
    }

    pub(crate) fn take_notices(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.notices.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Cancels the running turn, if any. Returns whether there was one.
    pub fn cancel(&self) -> bool {
        match self.turn_slot().as_ref() {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    pub(crate) fn begin_turn(&self) -> CancellationToken {
        let token = CancellationToken::new();
        *self.turn_slot() = Some(token.clone());
        token
    }

    pub(crate) fn end_turn(&self) {
        *self.turn_slot() = None;
    }

    fn turn_slot(&self) -> std::sync::MutexGuard<'_, Option<CancellationToken>> {
        self.current_turn.lock().unwrap_or_else(|p| p.into_inner())
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
