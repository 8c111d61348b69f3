//! The Agent Client Protocol face of Punie: handlers for the editor's requests, conversion
//! between wire types and Punie's own, and the editor-backed workspace.
//!
//! This is the only module that imports the ACP crate. A connection is any transport the ACP
//! crate can drive (stdio, a pair of byte streams, a WebSocket adapter); the agent never knows
//! which.

mod convert;
mod discovery;
mod editor;
#[cfg(feature = "testing")]
pub(crate) mod testing;
mod websocket;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema as wire;
use agent_client_protocol::{Agent as AgentRole, Client, ConnectTo};

use crate::agent::{Agent, AgentError, EventSink, Session, ToolsLoading, TurnEvent};
use crate::tools::mcp::{DEFAULT_CONNECT_TIMEOUT, McpConnections, McpServerConfig};
use crate::workspace::local::{LocalFileSystem, LocalTerminals};
use crate::workspace::{FileSystem, Terminals, Workspace, WorkspaceError};
use editor::{Editor, EditorFiles, EditorPermissions, EditorTerminals};

pub use websocket::websocket_transport;

/// What can end an ACP connection abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcpError {
    /// The transport failed or the protocol engine stopped with an error.
    #[error("ACP connection failed: {0}")]
    Connection(String),
}

/// Sends a session's events to the editor as `session/update` notifications.
struct EditorEvents {
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
struct Connection {
    agent: Arc<Agent>,
    client: Mutex<wire::ClientCapabilities>,
    sessions: Mutex<Vec<String>>,
}

impl Connection {
    /// A session this connection opened. Sessions of other connections (another WebSocket
    /// client of the same `punie serve`) are unknown here, so one client can never prompt,
    /// cancel or reconfigure another's session.
    fn session(&self, id: &str) -> Result<Arc<Session>, AgentError> {
        let ours = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|s| s == id);
        if !ours {
            return Err(AgentError::UnknownSession(id.to_owned()));
        }
        self.agent.session(id)
    }

    fn forget_session(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|s| s != id);
    }

    /// True when the editor advertised Punie's tool discovery extension.
    fn discovery_advertised(&self) -> bool {
        discovery::advertised(&self.client.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Builds a session's workspace: each capability the editor advertised is served by the
    /// editor, every other one by the local sandbox confined to `root` (which then must exist).
    fn workspace(
        &self,
        cx: &ConnectionTo<Client>,
        root: PathBuf,
    ) -> Result<impl FnOnce(&str) -> Workspace + use<>, String> {
        let caps = self
            .client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let editor_files = caps.fs.read_text_file && caps.fs.write_text_file;
        if (!editor_files || !caps.terminal) && !root.is_dir() {
            return Err(format!(
                "cwd {} is not an existing directory",
                root.display()
            ));
        }
        let local_error =
            |e: WorkspaceError| format!("cannot use {} as the workspace: {e}", root.display());
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

/// The id of the session config option that picks the model.
const MODEL_OPTION: &str = "model";
/// The pre-config-option way to switch models, still sent by some clients.
const LEGACY_SET_MODEL: &str = "session/set_model";

/// The session's config options: a model picker, when the back end can switch models.
async fn model_options(agent: &Agent, session: &Session) -> Vec<wire::SessionConfigOption> {
    let (current, available) = agent.session_models(session).await;
    let Some(current) = current.or_else(|| available.first().cloned()) else {
        return Vec::new();
    };
    if available.is_empty() {
        return Vec::new();
    }
    let mut models = available;
    if !models.contains(&current) {
        models.insert(0, current.clone());
    }
    let options: Vec<wire::SessionConfigSelectOption> = models
        .iter()
        .map(|m| wire::SessionConfigSelectOption::new(m.clone(), m.clone()))
        .collect();
    vec![
        wire::SessionConfigOption::select(MODEL_OPTION, "Model", current, options)
            .description("The model Punie uses from the next request on".to_owned())
            .category(wire::SessionConfigOptionCategory::Model),
    ]
}

async fn set_config_option(
    connection: &Connection,
    request: wire::SetSessionConfigOptionRequest,
) -> Result<wire::SetSessionConfigOptionResponse, agent_client_protocol::Error> {
    let agent = &connection.agent;
    let session = connection
        .session(&request.session_id.0)
        .map_err(|e| convert::rpc_error(&e))?;
    let value = match (&*request.config_id.0, &request.value) {
        (MODEL_OPTION, wire::SessionConfigOptionValue::ValueId { value }) => value.0.to_string(),
        (MODEL_OPTION, _) => {
            return Err(invalid_params(
                "the model option takes a model id".to_owned(),
            ));
        }
        (other, _) => {
            return Err(invalid_params(format!(
                "unknown config option {other:?}; Punie has \"{MODEL_OPTION}\""
            )));
        }
    };
    agent
        .set_session_model(&session, &value)
        .await
        .map_err(|e| invalid_params(e.to_string()))?;
    Ok(wire::SetSessionConfigOptionResponse::new(
        model_options(agent, &session).await,
    ))
}

async fn set_model_legacy(
    connection: &Connection,
    params: &serde_json::Value,
) -> Result<serde_json::Value, agent_client_protocol::Error> {
    let session_id = params
        .get("sessionId")
        .and_then(|v| v.as_str())
        .ok_or_else(|| invalid_params("sessionId is missing".to_owned()))?;
    let model = params
        .get("modelId")
        .and_then(|v| v.as_str())
        .ok_or_else(|| invalid_params("modelId is missing".to_owned()))?;
    let agent = &connection.agent;
    let session = connection
        .session(session_id)
        .map_err(|e| convert::rpc_error(&e))?;
    agent
        .set_session_model(&session, model)
        .await
        .map_err(|e| invalid_params(e.to_string()))?;
    Ok(serde_json::json!({}))
}

/// Connects a session's MCP servers in the background (`session/new` does not wait); their
/// tools join the session, and servers that fail are reported to the person.
async fn connect_mcp(session: Arc<Session>, servers: Vec<McpServerConfig>, loading: ToolsLoading) {
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

fn initialize_response(agent: &Agent) -> wire::InitializeResponse {
    let info = wire::Implementation::new("punie", env!("CARGO_PKG_VERSION"))
        .title(agent.config().display_name.clone());
    let capabilities = wire::AgentCapabilities::new()
        .mcp_capabilities(wire::McpCapabilities::new().http(true).sse(false))
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

/// `_punie/perf_report` (editor → agent): the perf report, when the agent records one
/// (`--perf`). Params `{}`, absent, or `{"format": "html" | "json"}`; the answer holds `html`
/// (the standalone page) and/or `json` (the same data), or a -32601 error when perf is off.
#[derive(
    Debug, Clone, serde::Serialize, serde::Deserialize, agent_client_protocol::JsonRpcRequest,
)]
#[request(method = "_punie/perf_report", response = PerfReportResponse)]
struct PerfReportRequest(Option<PerfReportParams>);

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct PerfReportParams {
    #[serde(default)]
    format: Option<String>,
}

#[derive(
    Debug, Clone, serde::Serialize, serde::Deserialize, agent_client_protocol::JsonRpcResponse,
)]
struct PerfReportResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    html: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    json: Option<serde_json::Value>,
}

fn perf_report(
    observer: Option<&dyn crate::agent::TurnObserver>,
    request: PerfReportRequest,
) -> Result<PerfReportResponse, agent_client_protocol::Error> {
    let (html, json) = match request.0.and_then(|p| p.format).as_deref() {
        None => (true, true),
        Some("html") => (true, false),
        Some("json") => (false, true),
        Some(other) => {
            return Err(invalid_params(format!(
                "unknown format {other:?}: use \"html\" or \"json\""
            )));
        }
    };
    let response = PerfReportResponse {
        html: observer.filter(|_| html).and_then(|o| o.report_html()),
        json: observer.filter(|_| json).and_then(|o| o.report_json()),
    };
    if response.html.is_none() && response.json.is_none() {
        return Err(agent_client_protocol::Error::new(
            agent_client_protocol::ErrorCode::METHOD_NOT_FOUND,
            "perf is off: start punie with --perf or PUNIE_PERF=1",
        ));
    }
    Ok(response)
}

/// Serves `agent` to one editor over `transport` until the editor hangs up.
///
/// Sessions opened over this connection are closed (their turns cancelled, their commands
/// killed) when it ends.
pub async fn serve<T: ConnectTo<AgentRole>>(
    agent: Arc<Agent>,
    transport: T,
) -> Result<(), AcpError> {
    let state = Arc::new(Connection {
        agent: agent.clone(),
        client: Mutex::default(),
        sessions: Mutex::default(),
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
                    let cwd = request.cwd.clone();
                    if !cwd.is_absolute() {
                        return responder.respond_with_error(invalid_params(format!(
                            "cwd must be an absolute path, got {:?}",
                            cwd.display().to_string()
                        )));
                    }
                    let workspace = match state.workspace(&cx, cwd) {
                        Ok(workspace) => workspace,
                        Err(message) => {
                            return responder.respond_with_error(invalid_params(message));
                        }
                    };
                    let session = state.agent.new_session(workspace, state.agent.toolset());
                    let id = session.id().to_owned();
                    state
                        .sessions
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(id.clone());
                    let discovery = state
                        .discovery_advertised()
                        .then(|| session.loading_tools());
                    let mcp_servers = convert::mcp_servers(request.mcp_servers);
                    let mcp = (!mcp_servers.is_empty()).then(|| session.loading_tools());
                    let agent = state.agent.clone();
                    let editor = Editor {
                        cx: cx.clone(),
                        session_id: wire::SessionId::new(id.clone()),
                        observer: agent.observer().cloned(),
                    };
                    // Listing the server's models may take a moment: answer from a task so the
                    // dispatch loop stays free. The response goes out before anything else
                    // about the session.
                    let state = state.clone();
                    tokio::spawn(async move {
                        let model = session
                            .model_override()
                            .unwrap_or_else(|| agent.model().clone());
                        let checked = tokio::time::timeout(
                            std::time::Duration::from_secs(5),
                            model.validate(),
                        )
                        .await;
                        if let Ok(Err(error)) = checked {
                            state.forget_session(session.id());
                            agent.close_session(session.id()).await;
                            let mut rpc = agent_client_protocol::Error::invalid_params()
                                .data(error.to_string());
                            rpc.message = error.to_string();
                            if let Err(error) = responder.respond_with_error(rpc) {
                                tracing::debug!(%error, "could not answer session/new");
                            }
                            return;
                        }
                        let options = model_options(&agent, &session).await;
                        let response = wire::NewSessionResponse::new(id).config_options(options);
                        if let Err(error) = responder.respond(response) {
                            tracing::debug!(%error, "could not answer session/new");
                        }
                        if let Some(loading) = discovery {
                            let (available, extra) =
                                (agent.toolset(), agent.extra_tools().to_vec());
                            tokio::spawn(discovery::discover(
                                editor,
                                session.clone(),
                                loading,
                                available,
                                extra,
                            ));
                        }
                        if let Some(loading) = mcp {
                            tokio::spawn(connect_mcp(session, mcp_servers, loading));
                        }
                    });
                    Ok(())
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let state = state.clone();
                async move |request: wire::PromptRequest, responder, cx| {
                    let agent = state.agent.clone();
                    let started = state.session(&request.session_id.0).and_then(|session| {
                        agent.start_prompt(session, convert::prompt_text(&request.prompt))
                    });
                    let pending = match started {
                        Ok(pending) => pending,
                        Err(error) => {
                            return responder.respond_with_error(convert::rpc_error(&error));
                        }
                    };
                    let support = convert::UpdateSupport::of(
                        &state.client.lock().unwrap_or_else(|p| p.into_inner()),
                    );
                    let events = Arc::new(EditorEvents { cx, support });
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
        .on_receive_request(
            {
                let state = state.clone();
                async move |request: wire::SetSessionConfigOptionRequest, responder, _cx| {
                    let state = state.clone();
                    tokio::spawn(async move {
                        let result = set_config_option(&state, request).await;
                        if let Err(error) = responder.respond_with_result(result) {
                            tracing::debug!(%error, "could not answer session/set_config_option");
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
                    match state.session(&notification.session_id.0) {
                        Ok(session) => {
                            if session.cancel() {
                                tracing::info!(session = session.id(), "turn cancelled");
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, "session/cancel for an unknown session")
                        }
                    }
                    Ok(())
                }
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            {
                let agent = agent.clone();
                async move |request: PerfReportRequest, responder, _cx| {
                    // Rendering a long recording takes a while: off the dispatch loop.
                    let agent = agent.clone();
                    tokio::task::spawn_blocking(move || {
                        let response = perf_report(agent.observer().map(|o| o.as_ref()), request);
                        if let Err(error) = responder.respond_with_result(response) {
                            tracing::debug!(%error, "could not answer _punie/perf_report");
                        }
                    });
                    Ok(())
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let state = state.clone();
                // Registered last: it sees only requests no other handler took.
                async move |request: agent_client_protocol::UntypedMessage, responder, _cx| {
                    let (method, params) = request.into_parts();
                    if method != LEGACY_SET_MODEL {
                        let mut error =
                            agent_client_protocol::Error::method_not_found().data(method.clone());
                        error.message = format!("Method not found: {method}");
                        return responder.respond_with_error(error);
                    }
                    let state = state.clone();
                    tokio::spawn(async move {
                        let result = set_model_legacy(&state, &params).await;
                        if let Err(error) = responder.respond_with_result(result) {
                            tracing::debug!(%error, "could not answer session/set_model");
                        }
                    });
                    Ok(())
                }
            },
            agent_client_protocol::on_receive_request!(),
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

/// Serves `agent` to one editor over any byte stream pair (a socket, a pipe, an in-memory
/// duplex), newline-delimited JSON-RPC as on stdio.
pub async fn serve_io<R, W>(agent: Arc<Agent>, reader: R, writer: W) -> Result<(), AcpError>
where
    R: tokio::io::AsyncRead + Send + 'static,
    W: tokio::io::AsyncWrite + Send + 'static,
{
    use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
    let transport = agent_client_protocol::ByteStreams::new(
        Box::pin(writer).compat_write(),
        Box::pin(reader).compat(),
    );
    serve(agent, transport).await
}

/// Serves `agent` to the editor that started this process, over stdin and stdout.
pub async fn serve_stdio(agent: Arc<Agent>) -> Result<(), AcpError> {
    serve(agent, agent_client_protocol::Stdio::new()).await
}
