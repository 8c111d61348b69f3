//! The fake editor of the test kit: an ACP client with an in-memory file system, scripted
//! permission answers and scripted terminals, connected to an agent in memory.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::*;
use agent_client_protocol::{Agent as AgentRole, Channel, Client};

use crate::agent::{Agent, StopReason as PunieStopReason};

/// How the fake editor answers a permission request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PermissionAnswer {
    /// Allow this call.
    AllowOnce,
    /// Allow this and later calls of the tool.
    AllowAlways,
    /// Refuse this call.
    RejectOnce,
    /// Refuse this and later calls of the tool.
    RejectAlways,
    /// Dismiss the prompt (the turn is cancelled).
    Cancelled,
}

/// An error the agent answered with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (JSON-RPC error {code})")]
pub struct EditorError {
    /// The JSON-RPC error code.
    pub code: i32,
    /// The message.
    pub message: String,
}

impl From<agent_client_protocol::Error> for EditorError {
    fn from(error: agent_client_protocol::Error) -> Self {
        Self {
            code: error.code.into(),
            message: error.message,
        }
    }
}

#[derive(Default)]
struct State {
    files: BTreeMap<PathBuf, String>,
    answers: VecDeque<PermissionAnswer>,
    command_outputs: Vec<(String, String, u32)>,
    notifications: Vec<SessionNotification>,
    permission_requests: Vec<RequestPermissionRequest>,
    commands_run: Vec<String>,
    terminals: HashMap<String, (String, u32)>,
    catalog: Option<serde_json::Value>,
    catalog_results: HashMap<String, serde_json::Value>,
    bridged_calls: Vec<(String, serde_json::Value)>,
}

/// A scripted editor. Clones share the same state, so a test keeps one to inspect what the
/// agent did while the connection uses another.
#[derive(Clone, Default)]
pub struct FakeEditor {
    state: Arc<Mutex<State>>,
    no_fs: bool,
    no_terminal: bool,
}

impl std::fmt::Debug for FakeEditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeEditor")
            .field("fs", &!self.no_fs)
            .field("terminal", &!self.no_terminal)
            .finish()
    }
}

impl FakeEditor {
    /// An editor that offers files and terminals, with no files and no scripted answers
    /// (permission requests are refused until answers are queued).
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Does not offer `fs/*` (the agent uses its local workspace instead).
    pub fn without_fs(mut self) -> Self {
        self.no_fs = true;
        self
    }

    /// Does not offer `terminal/*` (the agent runs commands locally instead).
    pub fn without_terminal(mut self) -> Self {
        self.no_terminal = true;
        self
    }

    /// Serves this tool catalog through Punie's tool-discovery extension (and advertises it).
    /// See `specs/tool-discovery.md` for the format.
    pub fn with_catalog(self, catalog: serde_json::Value) -> Self {
        self.state().catalog = Some(catalog);
        self
    }

    /// What a catalog tool answers when called (an MCP-style result `{content, isError?}`);
    /// tools without one answer that they ran.
    pub fn catalog_result(self, tool: &str, result: serde_json::Value) -> Self {
        self.state().catalog_results.insert(tool.to_owned(), result);
        self
    }

    /// The catalog tools called through `_punie/call_tool`: (name, arguments).
    pub fn bridged_calls(&self) -> Vec<(String, serde_json::Value)> {
        self.state().bridged_calls.clone()
    }

    /// Puts a file in the in-memory file system.
    pub fn with_file(self, path: impl Into<PathBuf>, content: impl Into<String>) -> Self {
        self.state().files.insert(path.into(), content.into());
        self
    }

    /// Queues the answer to the next permission request.
    pub fn answer(self, answer: PermissionAnswer) -> Self {
        self.state().answers.push_back(answer);
        self
    }

    /// Commands whose command line starts with `prefix` print `output` and exit with `exit_code`
    /// (others print nothing and exit 0).
    pub fn command_output(self, prefix: &str, output: &str, exit_code: u32) -> Self {
        self.state()
            .command_outputs
            .push((prefix.to_owned(), output.to_owned(), exit_code));
        self
    }

    /// A file's current content.
    pub fn file(&self, path: impl AsRef<Path>) -> Option<String> {
        self.state().files.get(path.as_ref()).cloned()
    }

    /// Every `session/update` received, in order.
    pub fn notifications(&self) -> Vec<SessionNotification> {
        self.state().notifications.clone()
    }

    /// The text of every `agent_message_chunk`, concatenated.
    pub fn message_text(&self) -> String {
        self.chunks(|update| match update {
            SessionUpdate::AgentMessageChunk(chunk) => Some(chunk),
            _ => None,
        })
    }

    /// The text of every `agent_thought_chunk`, concatenated.
    pub fn thought_text(&self) -> String {
        self.chunks(|update| match update {
            SessionUpdate::AgentThoughtChunk(chunk) => Some(chunk),
            _ => None,
        })
    }

    fn chunks(&self, pick: impl Fn(&SessionUpdate) -> Option<&ContentChunk>) -> String {
        self.state()
            .notifications
            .iter()
            .filter_map(|n| pick(&n.update))
            .filter_map(|chunk| match &chunk.content {
                ContentBlock::Text(text) => Some(text.text.clone()),
                _ => None,
            })
            .collect()
    }

    /// Every tool call announced, in order.
    pub fn tool_calls(&self) -> Vec<ToolCall> {
        self.state()
            .notifications
            .iter()
            .filter_map(|n| match &n.update {
                SessionUpdate::ToolCall(call) => Some(call.clone()),
                _ => None,
            })
            .collect()
    }

    /// Every permission request received.
    pub fn permission_requests(&self) -> Vec<RequestPermissionRequest> {
        self.state().permission_requests.clone()
    }

    /// The command lines run in terminals.
    pub fn commands_run(&self) -> Vec<String> {
        self.state().commands_run.clone()
    }

    /// Connects to `agent` in memory and initializes the connection.
    pub async fn connect(&self, agent: Arc<Agent>) -> Result<EditorConnection, EditorError> {
        let (agent_end, editor_end) = Channel::duplex();
        let served = tokio::spawn(async move {
            if let Err(error) = super::serve(agent, agent_end).await {
                tracing::debug!(%error, "in-memory agent connection ended");
            }
        });
        let (connected_tx, connected_rx) = tokio::sync::oneshot::channel();
        let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();
        let editor = self.clone();
        let client = tokio::spawn(async move {
            let mut caps = ClientCapabilities::new()
                .fs(FileSystemCapabilities::new()
                    .read_text_file(!editor.no_fs)
                    .write_text_file(!editor.no_fs))
                .terminal(!editor.no_terminal);
            if editor.state().catalog.is_some() {
                let mut meta = serde_json::Map::new();
                meta.insert(super::discovery::CAPABILITY.to_owned(), true.into());
                caps = caps.meta(meta);
            }
            let result = editor
                .handlers()
                .connect_with(editor_end, async move |cx: ConnectionTo<AgentRole>| {
                    let initialized = cx
                        .send_request(
                            InitializeRequest::new(ProtocolVersion::V1).client_capabilities(caps),
                        )
                        .block_task()
                        .await;
                    let ok = initialized.is_ok();
                    let _ = connected_tx.send(initialized.map(|_| cx));
                    if ok {
                        let _ = close_rx.await;
                    }
                    Ok(())
                })
                .await;
            if let Err(error) = result {
                tracing::debug!(%error, "fake editor connection ended");
            }
        });
        let cx = connected_rx.await.map_err(|_| EditorError {
            code: -32603,
            message: "the in-memory connection closed".to_owned(),
        })??;
        Ok(EditorConnection {
            cx,
            close: Some(close_tx),
            tasks: vec![served, client],
        })
    }

    fn handlers(
        &self,
    ) -> agent_client_protocol::v1::Builder<
        Client,
        impl agent_client_protocol::HandleDispatchFrom<AgentRole> + use<>,
    > {
        let s = self.clone();
        let (s1, s2, s3, s4, s5, s6, s7, s8) = (
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
            s.clone(),
        );
        Client
            .v1()
            .name("punie-fake-editor")
            .on_receive_notification(
                async move |n: SessionNotification, _cx| {
                    s1.state().notifications.push(n);
                    Ok(())
                },
                agent_client_protocol::on_receive_notification!(),
            )
            .on_receive_request(
                async move |r: RequestPermissionRequest, responder, _cx| {
                    let answer = {
                        let mut state = s2.state();
                        state.permission_requests.push(r.clone());
                        state
                            .answers
                            .pop_front()
                            .unwrap_or(PermissionAnswer::RejectOnce)
                    };
                    let kind = match answer {
                        PermissionAnswer::AllowOnce => PermissionOptionKind::AllowOnce,
                        PermissionAnswer::AllowAlways => PermissionOptionKind::AllowAlways,
                        PermissionAnswer::RejectOnce => PermissionOptionKind::RejectOnce,
                        PermissionAnswer::RejectAlways => PermissionOptionKind::RejectAlways,
                        PermissionAnswer::Cancelled => {
                            return responder.respond(RequestPermissionResponse::new(
                                RequestPermissionOutcome::Cancelled,
                            ));
                        }
                    };
                    let outcome = match r.options.iter().find(|o| o.kind == kind) {
                        Some(option) => RequestPermissionOutcome::Selected(
                            SelectedPermissionOutcome::new(option.option_id.clone()),
                        ),
                        None => RequestPermissionOutcome::Cancelled,
                    };
                    responder.respond(RequestPermissionResponse::new(outcome))
                },
                agent_client_protocol::on_receive_request!(),
            )
            .on_receive_request(
                async move |r: ReadTextFileRequest, responder, _cx| {
                    let Some(text) = s3.file(&r.path) else {
                        let error: agent_client_protocol::Error =
                            Error::resource_not_found(Some(r.path.display().to_string())).into();
                        return responder.respond_with_error(error);
                    };
                    let content = match (r.line, r.limit) {
                        (None, None) => text,
                        (line, limit) => text
                            .lines()
                            .skip(line.map_or(0, |l| l.saturating_sub(1) as usize))
                            .take(limit.map_or(usize::MAX, |l| l as usize))
                            .collect::<Vec<_>>()
                            .join("\n"),
                    };
                    responder.respond(ReadTextFileResponse::new(content))
                },
                agent_client_protocol::on_receive_request!(),
            )
            .on_receive_request(
                async move |r: WriteTextFileRequest, responder, _cx| {
                    s4.state().files.insert(r.path, r.content);
                    responder.respond(WriteTextFileResponse::new())
                },
                agent_client_protocol::on_receive_request!(),
            )
            .on_receive_request(
                async move |r: CreateTerminalRequest, responder, _cx| {
                    let line = std::iter::once(r.command.as_str())
                        .chain(r.args.iter().map(String::as_str))
                        .collect::<Vec<_>>()
                        .join(" ");
                    let mut state = s5.state();
                    let (output, code) = state
                        .command_outputs
                        .iter()
                        .find(|(prefix, _, _)| line.starts_with(prefix.as_str()))
                        .map(|(_, output, code)| (output.clone(), *code))
                        .unwrap_or_default();
                    let id = format!("fake-terminal-{}", state.commands_run.len() + 1);
                    state.commands_run.push(line);
                    state.terminals.insert(id.clone(), (output, code));
                    responder.respond(CreateTerminalResponse::new(id))
                },
                agent_client_protocol::on_receive_request!(),
            )
            .on_receive_request(
                async move |r: TerminalOutputRequest, responder, _cx| {
                    let terminal = s6.state().terminals.get(&*r.terminal_id.0).cloned();
                    match terminal {
                        Some((output, code)) => responder.respond(
                            TerminalOutputResponse::new(output, false)
                                .exit_status(TerminalExitStatus::new().exit_code(code)),
                        ),
                        None => responder
                            .respond_with_error(agent_client_protocol::Error::invalid_params()),
                    }
                },
                agent_client_protocol::on_receive_request!(),
            )
            .on_receive_request(
                async move |r: WaitForTerminalExitRequest, responder, _cx| {
                    let terminal = s7.state().terminals.get(&*r.terminal_id.0).cloned();
                    match terminal {
                        Some((_, code)) => responder.respond(WaitForTerminalExitResponse::new(
                            TerminalExitStatus::new().exit_code(code),
                        )),
                        None => responder
                            .respond_with_error(agent_client_protocol::Error::invalid_params()),
                    }
                },
                agent_client_protocol::on_receive_request!(),
            )
            .on_receive_request(
                async move |_r: KillTerminalRequest, responder, _cx| {
                    responder.respond(KillTerminalResponse::new())
                },
                agent_client_protocol::on_receive_request!(),
            )
            .on_receive_request(
                async move |r: ReleaseTerminalRequest, responder, _cx| {
                    s8.state().terminals.remove(&*r.terminal_id.0);
                    responder.respond(ReleaseTerminalResponse::new())
                },
                agent_client_protocol::on_receive_request!(),
            )
            .on_receive_request(
                // Registered last: Punie's extension methods, and nothing else.
                async move |r: agent_client_protocol::UntypedMessage, responder, _cx| {
                    let (method, params) = r.into_parts();
                    let mut state = s.state();
                    let answer = match (method.as_str(), &state.catalog) {
                        (super::discovery::DISCOVER_METHOD, Some(catalog)) => catalog.clone(),
                        (super::discovery::CALL_METHOD, Some(_)) => {
                            let name = params["name"].as_str().unwrap_or_default().to_owned();
                            state.bridged_calls.push((name.clone(), params["arguments"].clone()));
                            state.catalog_results.get(&name).cloned().unwrap_or_else(|| {
                                serde_json::json!({"content": [{"type": "text", "text": format!("{name} ran")}]})
                            })
                        }
                        _ => {
                            drop(state);
                            return responder.respond_with_error(agent_client_protocol::Error::method_not_found());
                        }
                    };
                    drop(state);
                    responder.respond(answer)
                },
                agent_client_protocol::on_receive_request!(),
            )
    }
}

/// A live in-memory connection between a [`FakeEditor`] and an agent.
#[derive(Debug)]
pub struct EditorConnection {
    cx: ConnectionTo<AgentRole>,
    close: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl EditorConnection {
    /// Opens a session working in `cwd` (an absolute path).
    pub async fn new_session(&self, cwd: impl Into<PathBuf>) -> Result<String, EditorError> {
        let response = self
            .cx
            .send_request(NewSessionRequest::new(cwd.into()))
            .block_task()
            .await?;
        Ok(response.session_id.0.to_string())
    }

    /// Sends a text prompt and waits for the turn to end.
    pub async fn prompt(&self, session: &str, text: &str) -> Result<PunieStopReason, EditorError> {
        let request = PromptRequest::new(SessionId::new(session), vec![ContentBlock::from(text)]);
        let response = self.cx.send_request(request).block_task().await?;
        Ok(match response.stop_reason {
            StopReason::EndTurn => PunieStopReason::EndTurn,
            StopReason::MaxTokens => PunieStopReason::MaxTokens,
            StopReason::MaxTurnRequests => PunieStopReason::MaxTurnRequests,
            _ => PunieStopReason::Cancelled,
        })
    }

    /// Sends `session/cancel`.
    pub fn cancel(&self, session: &str) -> Result<(), EditorError> {
        Ok(self
            .cx
            .send_notification(CancelNotification::new(SessionId::new(session)))?)
    }

    /// Closes the connection and waits for both sides to stop.
    pub async fn close(mut self) {
        if let Some(close) = self.close.take() {
            let _ = close.send(());
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}
