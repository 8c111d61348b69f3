//! One conversation: its workspace, tools, history, remembered permission answers, and the
//! handle that cancels its running turn.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::llm::Message;
use crate::tools::{SessionTerminals, Toolset};
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
    pub(crate) toolset: Toolset,
    pub(crate) terminals: Arc<SessionTerminals>,
    pub(crate) permissions: PermissionMemory,
    /// Locked for the whole of a turn, so turns of one session never overlap.
    pub(crate) history: Arc<tokio::sync::Mutex<Vec<Message>>>,
    current_turn: Mutex<Option<CancellationToken>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("workspace", &self.workspace)
            .field("toolset", &self.toolset)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(id: String, workspace: Workspace, toolset: Toolset) -> Self {
        Self {
            id,
            workspace,
            toolset,
            terminals: Arc::default(),
            permissions: PermissionMemory::default(),
            history: Arc::default(),
            current_turn: Mutex::new(None),
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
    pub fn toolset(&self) -> &Toolset {
        &self.toolset
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
