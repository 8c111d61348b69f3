//! The state of one editor connection: what the editor can do, the sessions it opened, and the
//! workspace and event sink each of its sessions gets.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use agent_client_protocol::Client;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema as wire;

use super::convert;
use super::discovery;
use super::editor::{Editor, EditorFiles, EditorPermissions, EditorTerminals};
use super::error::RequestError;
use crate::agent::{Agent, AgentError, EventSink, Session, TurnEvent};
use crate::workspace::local::{LocalFileSystem, LocalTerminals};
use crate::workspace::{FileSystem, Terminals, Workspace, WorkspaceError};

/// Sends a session's events to the editor as `session/update` notifications.
pub(crate) struct EditorEvents {
    cx: ConnectionTo<Client>,
    support: convert::UpdateSupport,
}

impl EventSink for EditorEvents {
    fn emit(&self, session_id: &str, event: TurnEvent) {
        let Some(update) = convert::session_update(event, self.support) else {
            return;
        };
        let notification = wire::SessionNotification::new(session_id.to_owned(), update);
        if let Err(error) = self.cx.send_notification(notification) {
            tracing::debug!(session = session_id, %error, "could not send session/update");
        }
    }
}

/// The state of one editor connection.
pub(crate) struct Connection {
    pub(crate) agent: Arc<Agent>,
    client: Mutex<wire::ClientCapabilities>,
    sessions: Mutex<Vec<String>>,
}

impl Connection {
    /// A connection to serve `agent` on, before the editor has said what it can do.
    pub(crate) fn new(agent: Arc<Agent>) -> Self {
        Self {
            agent,
            client: Mutex::default(),
            sessions: Mutex::default(),
        }
    }

    /// Remembers what the editor said it can do (its `initialize`).
    pub(crate) fn set_client(&self, capabilities: wire::ClientCapabilities) {
        *self.client.lock().unwrap_or_else(|p| p.into_inner()) = capabilities;
    }

    /// A session this connection opened. Sessions of other connections (another WebSocket
    /// client of the same `punie serve`) are unknown here, so one client can never prompt,
    /// cancel or reconfigure another's session.
    pub(crate) fn session(&self, id: &str) -> Result<Arc<Session>, AgentError> {
        let ours = self.sessions().iter().any(|s| s == id);
        if !ours {
            return Err(AgentError::UnknownSession(id.to_owned()));
        }
        self.agent.session(id)
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses a new session when this connection already has as many as
    /// [`max_sessions_per_connection`](crate::agent::AgentConfig::max_sessions_per_connection).
    /// Checked before anything is opened for the session; the handlers of one connection run
    /// one at a time on its dispatch loop, so the check and the adoption cannot interleave.
    pub(crate) fn check_room(&self) -> Result<(), RequestError> {
        let max = self.agent.config().max_sessions_per_connection;
        if self.sessions().len() >= max {
            tracing::warn!(
                max,
                "refused a new session: this connection has too many open"
            );
            return Err(RequestError::TooManySessions { max });
        }
        Ok(())
    }

    /// Counts a session as this connection's, so it can use it and closes it on hang-up.
    pub(crate) fn adopt_session(&self, id: &str) {
        self.sessions().push(id.to_owned());
    }

    /// No longer counts a session as this connection's.
    pub(crate) fn forget_session(&self, id: &str) {
        self.sessions().retain(|s| s != id);
    }

    /// The ids of this connection's sessions, which it no longer counts as its own.
    pub(crate) fn take_sessions(&self) -> Vec<String> {
        std::mem::take(&mut *self.sessions())
    }

    /// True when the editor advertised Punie's tool discovery extension.
    pub(crate) fn discovery_advertised(&self) -> bool {
        discovery::advertised(&self.client.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Where a session's events go: `session/update`s, limited to what this editor understands.
    pub(crate) fn events(&self, cx: ConnectionTo<Client>) -> Arc<EditorEvents> {
        let support =
            convert::UpdateSupport::of(&self.client.lock().unwrap_or_else(|p| p.into_inner()));
        Arc::new(EditorEvents { cx, support })
    }

    /// The editor as seen by one session (its requests carry the session's id).
    pub(crate) fn editor(&self, cx: &ConnectionTo<Client>, session_id: &str) -> Editor {
        Editor {
            cx: cx.clone(),
            session_id: wire::SessionId::new(session_id),
            observer: self.agent.observer().cloned(),
        }
    }

    /// Builds a session's workspace: each capability the editor advertised is served by the
    /// editor, every other one by the local sandbox confined to `root` (which then must exist).
    /// `root` must be absolute either way: it is the session's `cwd`.
    pub(crate) fn workspace(
        &self,
        cx: &ConnectionTo<Client>,
        root: PathBuf,
    ) -> Result<impl FnOnce(&str) -> Workspace + use<>, RequestError> {
        if !root.is_absolute() {
            return Err(RequestError::InvalidParams(format!(
                "cwd must be an absolute path, got {:?}",
                root.display().to_string()
            )));
        }
        let caps = self
            .client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let editor_files = caps.fs.read_text_file && caps.fs.write_text_file;
        if (!editor_files || !caps.terminal) && !root.is_dir() {
            return Err(RequestError::InvalidParams(format!(
                "cwd {} is not an existing directory",
                root.display()
            )));
        }
        let local_error = |e: WorkspaceError| {
            RequestError::InvalidParams(format!(
                "cannot use {} as the workspace: {e}",
                root.display()
            ))
        };
        let local_files: Option<Arc<dyn FileSystem>> = if editor_files {
            None
        } else {
            Some(Arc::new(
                LocalFileSystem::new(root.clone()).map_err(local_error)?,
            ))
        };
        let local_terminals: Option<Arc<dyn Terminals>> = if caps.terminal {
            None
        } else {
            let sandbox = self.agent.sandbox().clone();
            Some(Arc::new(
                LocalTerminals::new(root.clone(), sandbox).map_err(local_error)?,
            ))
        };
        let cx = cx.clone();
        let observer = self.agent.observer().cloned();
        Ok(move |session_id: &str| {
            let editor = Editor {
                cx,
                session_id: wire::SessionId::new(session_id),
                observer,
            };
            let files: Arc<dyn FileSystem> = match local_files {
                Some(local) if !caps.fs.read_text_file && !caps.fs.write_text_file => local,
                fallback => Arc::new(EditorFiles {
                    editor: editor.clone(),
                    root: root.clone(),
                    can_read: caps.fs.read_text_file,
                    can_write: caps.fs.write_text_file,
                    fallback,
                }),
            };
            let terminals = local_terminals.unwrap_or_else(|| {
                Arc::new(EditorTerminals {
                    editor: editor.clone(),
                })
            });
            Workspace::new(
                root,
                files,
                terminals,
                Arc::new(EditorPermissions { editor }),
            )
        })
    }
}
