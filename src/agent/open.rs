//! Opening a session: creating it, checking that its model is served, closing it again when it
//! is not, and connecting its MCP servers in the background.

use std::sync::Arc;
use std::time::Duration;

use super::{Agent, AgentError, Session, ToolsLoading};
use crate::tools::mcp::{DEFAULT_CONNECT_TIMEOUT, McpConnections, McpServerConfig};
use crate::workspace::Workspace;

/// How long opening a session waits for the server to confirm the model. A server that is
/// slower than this is given the benefit of the doubt: a real problem surfaces on the first
/// prompt, and the editor is not kept waiting for its session.
const MODEL_CHECK_LIMIT: Duration = Duration::from_secs(5);

/// A session that exists but is not open yet: [`Agent::finish_opening`] checks its model
/// first. Its id is known at once, so a caller can track the session from the start (and close
/// it if it goes away while the check runs).
#[must_use = "the session stays half-open until Agent::finish_opening checks its model"]
pub struct OpeningSession {
    session: Arc<Session>,
}

impl std::fmt::Debug for OpeningSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpeningSession")
            .field("session", &self.session.id())
            .finish()
    }
}

impl OpeningSession {
    /// The new session's id.
    pub fn id(&self) -> &str {
        self.session.id()
    }

    /// The new session, e.g. to mark tools as loading before anyone can prompt it.
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }
}

impl Agent {
    /// Starts opening a session with the agent's [toolset](Agent::toolset), working in the
    /// workspace `workspace` builds for the new session's id. The session is registered at
    /// once; finish with [`Agent::finish_opening`] before letting anyone use it.
    ///
    /// Refused with [`AgentError::TooManySessions`] when
    /// [`max_sessions`](super::AgentConfig::max_sessions) are already open. The count is read
    /// just before the session is registered, so sessions opened on other connections at the
    /// very same instant can pass the limit by at most one each.
    pub fn open_session(
        &self,
        workspace: impl FnOnce(&str) -> Workspace,
    ) -> Result<OpeningSession, AgentError> {
        let max = self.config.max_sessions;
        if self.session_count() >= max {
            tracing::warn!(max, "refused a new session: too many open");
            return Err(AgentError::TooManySessions { max });
        }
        Ok(OpeningSession {
            session: self.new_session(workspace, self.toolset()),
        })
    }

    /// Checks with the server that the session's model exists (waiting at most a few seconds)
    /// and hands over the open session. When the server says the model is not one it serves,
    /// the session is closed again and the error ([`AgentError::InvalidModel`]) lists what the
    /// server offers.
    pub async fn finish_opening(
        &self,
        opening: OpeningSession,
    ) -> Result<Arc<Session>, AgentError> {
        let session = opening.session;
        let model = session
            .model_override()
            .unwrap_or_else(|| self.model().clone());
        let checked = tokio::time::timeout(MODEL_CHECK_LIMIT, model.validate()).await;
        if let Ok(Err(error)) = checked {
            self.close_session(session.id()).await;
            return Err(AgentError::InvalidModel(error));
        }
        Ok(session)
    }
}

/// Connects a session's MCP servers (the session does not wait for them to open); their tools
/// join the session, and servers that fail are reported to the person. `loading` is released
/// once every server has connected or failed: the session's first prompt waits for that (up to
/// a limit).
pub(crate) async fn connect_mcp(
    session: Arc<Session>,
    servers: Vec<McpServerConfig>,
    loading: ToolsLoading,
) {
    let (connections, problems) = McpConnections::connect(servers, DEFAULT_CONNECT_TIMEOUT).await;
    tracing::info!(session = session.id(), servers = ?connections.servers(), failed = problems.len(), "MCP servers connected");
    for problem in problems {
        tracing::warn!(session = session.id(), %problem, "MCP server unavailable; its tools are dropped");
        session.notify(
            "MCP server unavailable",
            format!("{problem}. Its tools are not available in this session."),
        );
    }
    session.attach_mcp(connections);
    drop(loading);
}
