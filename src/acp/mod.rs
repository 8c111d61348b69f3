//! The Agent Client Protocol face of Punie: handlers for the editor's requests, conversion
//! between wire types and Punie's own, and the editor-backed workspace.
//!
//! This is the only module that imports the ACP crate. A connection is any transport the ACP
//! crate can drive (stdio, a pair of byte streams, a WebSocket adapter); the agent never knows
//! which.

mod convert;
mod editor;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema as wire;
use agent_client_protocol::{Agent as AgentRole, Client, ConnectTo};

use crate::agent::{Agent, EventSink, TurnEvent};
use crate::tools::builtin::default_toolset;
use crate::workspace::local::{LocalFileSystem, LocalTerminals, SandboxOptions};
use crate::workspace::{FileSystem, Terminals, Workspace, WorkspaceError};
use editor::{Editor, EditorFiles, EditorPermissions, EditorTerminals};

/// What can end an ACP connection abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcpError {
    /// The transport failed or the protocol engine stopped with an error.
    #[error("ACP connection failed: {0}")]
    Connection(String),
}

/// How connections are served.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ServeOptions {
    /// How local commands are confined, for editors that do not run commands themselves.
    pub sandbox: SandboxOptions,
}

/// Sends a session's events to the editor as `session/update` notifications.
struct EditorEvents {
    cx: ConnectionTo<Client>,
}

impl EventSink for EditorEvents {
    fn emit(&self, session_id: &str, event: TurnEvent) {
        let notification =
            wire::SessionNotification::new(session_id.to_owned(), convert::session_update(event));
        if let Err(error) = self.cx.send_notification(notification) {
            tracing::debug!(session = session_id, %error, "could not send session/update");
        }
    }
}

/// The state of one editor connection.
struct Connection {
    agent: Arc<Agent>,
    client: Mutex<wire::ClientCapabilities>,
    sessions: Mutex<Vec<String>>,
    sandbox: SandboxOptions,
}

impl Connection {
    /// Builds a session's workspace: each capability the editor advertised is served by the
    /// editor, every other one by the local sandbox confined to `root`.
    fn workspace(
        &self,
        cx: &ConnectionTo<Client>,
        root: PathBuf,
    ) -> Result<impl FnOnce(&str) -> Workspace, String> {
        let caps = self
            .client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let local_error =
            |e: WorkspaceError| format!("cannot use {} as the workspace: {e}", root.display());
        let local_files: Arc<dyn FileSystem> =
            Arc::new(LocalFileSystem::new(root.clone()).map_err(local_error)?);
        let local_terminals: Option<Arc<dyn Terminals>> = if caps.terminal {
            None
        } else {
            Some(Arc::new(
                LocalTerminals::new(root.clone(), self.sandbox.clone()).map_err(local_error)?,
            ))
        };
        let cx = cx.clone();
        Ok(move |session_id: &str| {
            let editor = Editor {
                cx,
                session_id: wire::SessionId::new(session_id),
            };
            let files = Arc::new(EditorFiles {
                editor: editor.clone(),
                root: root.clone(),
                can_read: caps.fs.read_text_file,
                can_write: caps.fs.write_text_file,
                fallback: local_files,
            });
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

fn initialize_response(agent: &Agent) -> wire::InitializeResponse {
    let info = wire::Implementation::new("punie", env!("CARGO_PKG_VERSION"))
        .title(agent.config().display_name.clone());
    let capabilities = wire::AgentCapabilities::new()
        .prompt_capabilities(wire::PromptCapabilities::new().embedded_context(true));
    wire::InitializeResponse::new(ProtocolVersion::V1)
        .agent_capabilities(capabilities)
        .agent_info(info)
}

fn invalid_params(message: String) -> agent_client_protocol::Error {
    let mut error = agent_client_protocol::Error::invalid_params().data(message.clone());
    error.message = message;
    error
}

/// Serves `agent` to one editor over `transport` until the editor hangs up.
///
/// Sessions opened over this connection are closed (their turns cancelled, their commands
/// killed) when it ends.
pub async fn serve<T: ConnectTo<AgentRole>>(
    agent: Arc<Agent>,
    options: ServeOptions,
    transport: T,
) -> Result<(), AcpError> {
    let state = Arc::new(Connection {
        agent: agent.clone(),
        client: Mutex::default(),
        sessions: Mutex::default(),
        sandbox: options.sandbox,
    });
    let result = AgentRole
        .v1()
        .name("punie")
        .on_receive_request(
            {
                let state = state.clone();
                async move |request: wire::InitializeRequest, responder, _cx| {
                    tracing::info!(
                        client = ?request.client_info.as_ref().map(|i| (&i.name, &i.version)),
                        requested_version = ?request.protocol_version,
                        fs_read = request.client_capabilities.fs.read_text_file,
                        fs_write = request.client_capabilities.fs.write_text_file,
                        terminal = request.client_capabilities.terminal,
                        "initialize"
                    );
                    *state.client.lock().unwrap_or_else(|p| p.into_inner()) =
                        request.client_capabilities;
                    responder.respond(initialize_response(&state.agent))
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |_request: wire::AuthenticateRequest, responder, _cx| {
                responder.respond(wire::AuthenticateResponse::new())
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let state = state.clone();
                async move |request: wire::NewSessionRequest, responder, cx| {
                    let cwd = request.cwd;
                    if !cwd.is_absolute() {
                        return responder.respond_with_error(invalid_params(format!(
                            "cwd must be an absolute path, got {:?}",
                            cwd.display().to_string()
                        )));
                    }
                    if !cwd.is_dir() {
                        return responder.respond_with_error(invalid_params(format!(
                            "cwd {} is not an existing directory",
                            cwd.display()
                        )));
                    }
                    let workspace = match state.workspace(&cx, cwd) {
                        Ok(workspace) => workspace,
                        Err(message) => {
                            return responder.respond_with_error(invalid_params(message));
                        }
                    };
                    let session = state.agent.new_session(workspace, default_toolset());
                    state
                        .sessions
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(session.id().to_owned());
                    responder.respond(wire::NewSessionResponse::new(session.id().to_owned()))
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let state = state.clone();
                async move |request: wire::PromptRequest, responder, cx| {
                    let agent = state.agent.clone();
                    let started = agent.session(&request.session_id.0).and_then(|session| {
                        agent.start_prompt(session, convert::prompt_text(&request.prompt))
                    });
                    let pending = match started {
                        Ok(pending) => pending,
                        Err(error) => {
                            return responder.respond_with_error(convert::rpc_error(&error));
                        }
                    };
                    let events = Arc::new(EditorEvents { cx });
                    // The turn runs on its own task so the dispatch loop stays free for
                    // `session/cancel` and the editor's answers to our requests.
                    tokio::spawn(async move {
                        let result = pending.run(&agent, events).await;
                        let response = result
                            .map(|stop| wire::PromptResponse::new(convert::stop_reason(stop)))
                            .map_err(|error| convert::rpc_error(&error));
                        if let Err(error) = responder.respond_with_result(response) {
                            tracing::debug!(%error, "could not answer session/prompt");
                        }
                    });
                    Ok(())
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_notification(
            {
                let state = state.clone();
                async move |notification: wire::CancelNotification, _cx| {
                    if let Err(error) = state.agent.cancel(&notification.session_id.0) {
                        tracing::warn!(%error, "session/cancel for an unknown session");
                    }
                    Ok(())
                }
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .connect_to(transport)
        .await;

    let sessions: Vec<String> =
        std::mem::take(&mut *state.sessions.lock().unwrap_or_else(|p| p.into_inner()));
    for id in sessions {
        agent.close_session(&id).await;
    }
    result.map_err(|e| AcpError::Connection(e.to_string()))
}

/// Serves `agent` to the editor that started this process, over stdin and stdout.
pub async fn serve_stdio(agent: Arc<Agent>, options: ServeOptions) -> Result<(), AcpError> {
    serve(agent, options, agent_client_protocol::Stdio::new()).await
}
