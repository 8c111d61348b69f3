//! A fake editor for end-to-end tests: spawns the real `punie` binary and drives it with the
//! official ACP crate's client side. Files live in a real temporary directory; terminals run
//! real processes; permission answers are scripted; every update and every stdout line is
//! recorded.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::*;
use agent_client_protocol::{AcpAgent, AcpAgentConfig, Agent, Client, LineDirection, Responder};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

/// How the fake editor answers `session/request_permission`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    AllowOnce,
    AllowAlways,
    RejectOnce,
    Cancelled,
    /// Never answer (the test cancels the turn instead).
    Never,
}

/// What the editor advertises and how it answers.
#[derive(Clone, Debug)]
pub struct EditorOptions {
    pub fs: bool,
    pub terminal: bool,
    pub answers: Vec<Answer>,
    pub env: Vec<(String, String)>,
    /// A tool catalog served through Punie's discovery extension.
    pub catalog: Option<serde_json::Value>,
    /// The test kills the agent: its connection failing then is expected (the body must
    /// have finished).
    pub killed: bool,
    /// Advertise `session.compaction` (compaction updates).
    pub compaction: bool,
}

impl Default for EditorOptions {
    fn default() -> Self {
        Self {
            fs: true,
            terminal: true,
            answers: Vec::new(),
            env: Vec::new(),
            catalog: None,
            killed: false,
            compaction: false,
        }
    }
}

struct FakeTerminal {
    output: Arc<Mutex<String>>,
    exit: watch::Receiver<Option<TerminalExitStatus>>,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Everything the editor saw.
#[derive(Default)]
pub struct Record {
    pub updates: Vec<SessionUpdate>,
    pub permission_requests: Vec<RequestPermissionRequest>,
    pub reads: Vec<PathBuf>,
    pub writes: Vec<(PathBuf, String)>,
    pub terminals_created: Vec<CreateTerminalRequest>,
    pub terminals_released: Vec<String>,
    pub terminal_pids: Vec<u32>,
    pub stdout_lines: Vec<String>,
    pub discover_requests: Vec<serde_json::Value>,
    pub bridged_calls: Vec<serde_json::Value>,
    /// Punie's answer to `initialize`.
    pub initialize: Option<InitializeResponse>,
    answers: VecDeque<Answer>,
    parked: Vec<Responder<RequestPermissionResponse, agent_client_protocol::V1>>,
    terminals: HashMap<String, FakeTerminal>,
    next_terminal: u32,
}

pub type Shared = Arc<Mutex<Record>>;

impl Record {
    /// The text of all agent_message_chunks, concatenated.
    pub fn message_text(&self) -> String {
        chunks_text(self.updates.iter().filter_map(|u| match u {
            SessionUpdate::AgentMessageChunk(c) => Some(c),
            _ => None,
        }))
    }

    /// The text of all agent_thought_chunks, concatenated.
    pub fn thought_text(&self) -> String {
        chunks_text(self.updates.iter().filter_map(|u| match u {
            SessionUpdate::AgentThoughtChunk(c) => Some(c),
            _ => None,
        }))
    }

    pub fn tool_calls(&self) -> Vec<&ToolCall> {
        self.updates
            .iter()
            .filter_map(|u| match u {
                SessionUpdate::ToolCall(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    pub fn tool_call_updates(&self) -> Vec<&ToolCallUpdate> {
        self.updates
            .iter()
            .filter_map(|u| match u {
                SessionUpdate::ToolCallUpdate(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    /// The last status each tool call reached.
    pub fn final_status(&self, id: &str) -> Option<ToolCallStatus> {
        let mut status = self
            .tool_calls()
            .iter()
            .find(|c| &*c.tool_call_id.0 == id)
            .map(|c| c.status);
        for update in self.tool_call_updates() {
            if &*update.tool_call_id.0 == id
                && let Some(s) = update.fields.status
            {
                status = Some(s);
            }
        }
        status
    }
}

fn chunks_text<'a>(chunks: impl Iterator<Item = &'a ContentChunk>) -> String {
    chunks
        .filter_map(|c| match &c.content {
            ContentBlock::Text(t) => Some(t.text.as_str()),
            _ => None,
        })
        .collect()
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Record> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

fn answer_permission(
    shared: &Shared,
    request: RequestPermissionRequest,
    responder: Responder<RequestPermissionResponse, agent_client_protocol::V1>,
) -> Result<(), agent_client_protocol::Error> {
    let mut record = lock(shared);
    let answer = record.answers.pop_front().unwrap_or(Answer::RejectOnce);
    let pick = |kind: PermissionOptionKind| {
        request
            .options
            .iter()
            .find(|o| o.kind == kind)
            .map(|o| o.option_id.clone())
            .expect("option offered")
    };
    let outcome = match answer {
        Answer::AllowOnce => RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(
            pick(PermissionOptionKind::AllowOnce),
        )),
        Answer::AllowAlways => RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(
            pick(PermissionOptionKind::AllowAlways),
        )),
        Answer::RejectOnce => RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(
            pick(PermissionOptionKind::RejectOnce),
        )),
        Answer::Cancelled => RequestPermissionOutcome::Cancelled,
        Answer::Never => {
            record.permission_requests.push(request);
            record.parked.push(responder);
            return Ok(());
        }
    };
    record.permission_requests.push(request);
    drop(record);
    responder.respond(RequestPermissionResponse::new(outcome))
}

fn start_terminal(
    shared: &Shared,
    request: CreateTerminalRequest,
) -> Result<String, agent_client_protocol::Error> {
    let mut command = tokio::process::Command::new(&request.command);
    command
        .args(&request.args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(cwd) = &request.cwd {
        command.current_dir(cwd);
    }
    command.process_group(0);
    let mut child = command
        .spawn()
        .map_err(agent_client_protocol::Error::into_internal_error)?;
    let pid = child.id();
    let output = Arc::new(Mutex::new(String::new()));
    let (exit_tx, exit_rx) = watch::channel(None);
    let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let sink = output.clone();
    tokio::spawn(async move {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let read = async {
            let _ = tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err));
        };
        let status = tokio::select! {
            status = async { read.await; child.wait().await } => status,
            _ = kill_rx => {
                if let Some(pid) = pid {
                    let _ = std::process::Command::new("kill").args(["-s", "KILL", "--", &format!("-{pid}")]).status();
                }
                child.wait().await
            }
        };
        let mut text = String::from_utf8_lossy(&out).into_owned();
        text.push_str(&String::from_utf8_lossy(&err));
        *sink.lock().unwrap() = text;
        let status = status.ok();
        use std::os::unix::process::ExitStatusExt;
        let exit = TerminalExitStatus::new()
            .exit_code(status.and_then(|s| s.code()).map(|c| c as u32))
            .signal(
                status
                    .and_then(|s| s.signal())
                    .map(|s| format!("signal {s}")),
            );
        let _ = exit_tx.send(Some(exit));
    });
    let mut record = lock(shared);
    record.next_terminal += 1;
    let id = format!("term-{}", record.next_terminal);
    record.terminals_created.push(request);
    if let Some(pid) = pid {
        record.terminal_pids.push(pid);
    }
    record.terminals.insert(
        id.clone(),
        FakeTerminal {
            output,
            exit: exit_rx,
            kill: Some(kill_tx),
        },
    );
    Ok(id)
}

/// Spawns `punie` against the model server at `model_url` and runs `body` as the editor.
pub async fn with_editor<T, F>(
    model_url: &str,
    workspace: &Path,
    options: EditorOptions,
    body: F,
) -> (T, Shared)
where
    F: AsyncFnOnce(ConnectionTo<Agent>, Shared) -> T,
{
    let shared: Shared = Arc::new(Mutex::new(Record {
        answers: options.answers.iter().copied().collect(),
        ..Default::default()
    }));
    let log_dir = workspace.parent().unwrap().join("logs");
    let mut config = AcpAgentConfig::new(env!("CARGO_BIN_EXE_punie"))
        .env("PUNIE_MODEL", model_url)
        .env("PUNIE_LOG_DIR", log_dir.display().to_string())
        .env(
            "PUNIE_STATE_DIR",
            workspace
                .parent()
                .unwrap()
                .join("state")
                .display()
                .to_string(),
        )
        .env("PUNIE_LOG", "debug");
    for (name, value) in &options.env {
        config = config.env(name.clone(), value.clone());
    }
    let recorder = shared.clone();
    let agent = AcpAgent::new(config).with_debug(move |line, direction| {
        if direction == LineDirection::Stdout {
            lock(&recorder).stdout_lines.push(line.to_owned());
        }
    });

    let s = shared.clone();
    let fs = options.fs;
    let terminal = options.terminal;
    let discovery = options.catalog.is_some();
    let compaction = options.compaction;
    let output = Arc::new(Mutex::new(None));
    let slot = output.clone();
    let result = Client
        .v1()
        .name("fake-editor")
        .on_receive_notification(
            {
                let s = s.clone();
                async move |n: SessionNotification, _cx| {
                    lock(&s).updates.push(n.update);
                    Ok(())
                }
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            {
                let s = s.clone();
                async move |r: RequestPermissionRequest, responder, _cx| {
                    answer_permission(&s, r, responder)
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let s = s.clone();
                async move |r: ReadTextFileRequest, responder, _cx| {
                    lock(&s).reads.push(r.path.clone());
                    match std::fs::read_to_string(&r.path) {
                        Ok(text) => {
                            let start = r.line.map_or(0, |l| l.saturating_sub(1) as usize);
                            let lines: Vec<&str> = text
                                .lines()
                                .skip(start)
                                .take(r.limit.map_or(usize::MAX, |l| l as usize))
                                .collect();
                            let content = if r.line.is_none() && r.limit.is_none() {
                                text.clone()
                            } else {
                                lines.join("\n")
                            };
                            responder.respond(ReadTextFileResponse::new(content))
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => responder
                            .respond_with_error(
                                agent_client_protocol::v1::schema::Error::resource_not_found(Some(
                                    r.path.display().to_string(),
                                ))
                                .into(),
                            ),
                        Err(e) => responder.respond_with_error(
                            agent_client_protocol::Error::into_internal_error(e),
                        ),
                    }
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let s = s.clone();
                async move |r: WriteTextFileRequest, responder, _cx| {
                    lock(&s).writes.push((r.path.clone(), r.content.clone()));
                    if let Some(parent) = r.path.parent() {
                        std::fs::create_dir_all(parent).unwrap();
                    }
                    std::fs::write(&r.path, &r.content).unwrap();
                    responder.respond(WriteTextFileResponse::new())
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let s = s.clone();
                async move |r: CreateTerminalRequest, responder, _cx| match start_terminal(&s, r) {
                    Ok(id) => responder.respond(CreateTerminalResponse::new(id)),
                    Err(e) => responder.respond_with_error(e),
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let s = s.clone();
                async move |r: TerminalOutputRequest, responder, _cx| {
                    let record = lock(&s);
                    let Some(t) = record.terminals.get(&*r.terminal_id.0) else {
                        return responder
                            .respond_with_error(agent_client_protocol::Error::invalid_params());
                    };
                    let exit = t.exit.borrow().clone();
                    let output = t.output.lock().unwrap().clone();
                    responder.respond(TerminalOutputResponse::new(output, false).exit_status(exit))
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let s = s.clone();
                async move |r: WaitForTerminalExitRequest, responder, cx| {
                    let rx = lock(&s)
                        .terminals
                        .get(&*r.terminal_id.0)
                        .map(|t| t.exit.clone());
                    let Some(mut rx) = rx else {
                        return responder
                            .respond_with_error(agent_client_protocol::Error::invalid_params());
                    };
                    cx.spawn(async move {
                        let status = loop {
                            if let Some(status) = rx.borrow().clone() {
                                break status;
                            }
                            if rx.changed().await.is_err() {
                                break TerminalExitStatus::new();
                            }
                        };
                        responder.respond(WaitForTerminalExitResponse::new(status))
                    })
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let s = s.clone();
                async move |r: KillTerminalRequest, responder, _cx| {
                    let kill = lock(&s)
                        .terminals
                        .get_mut(&*r.terminal_id.0)
                        .and_then(|t| t.kill.take());
                    if let Some(kill) = kill {
                        let _ = kill.send(());
                    }
                    responder.respond(KillTerminalResponse::new())
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let s = s.clone();
                async move |r: ReleaseTerminalRequest, responder, _cx| {
                    let mut record = lock(&s);
                    record.terminals_released.push(r.terminal_id.0.to_string());
                    if let Some(mut t) = record.terminals.remove(&*r.terminal_id.0)
                        && let Some(kill) = t.kill.take()
                    {
                        let _ = kill.send(());
                    }
                    responder.respond(ReleaseTerminalResponse::new())
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            {
                let s = s.clone();
                let catalog = options.catalog.clone();
                async move |r: agent_client_protocol::UntypedMessage, responder, _cx| {
                    let (method, params) = r.into_parts();
                    match (method.as_str(), &catalog) {
                        ("_punie/discover_tools", Some(catalog)) => {
                            lock(&s).discover_requests.push(params);
                            responder.respond(catalog.clone())
                        }
                        ("_punie/call_tool", Some(_)) => {
                            let name = params["name"].as_str().unwrap_or_default().to_owned();
                            lock(&s).bridged_calls.push(params);
                            responder.respond(serde_json::json!({
                                "content": [{"type": "text", "text": format!("{name} ran in the editor")}]
                            }))
                        }
                        _ => responder.respond_with_error(agent_client_protocol::Error::method_not_found()),
                    }
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .connect_with(agent, async move |cx: ConnectionTo<Agent>| {
            let mut caps = ClientCapabilities::new()
                .fs(FileSystemCapabilities::new()
                    .read_text_file(fs)
                    .write_text_file(fs))
                .terminal(terminal);
            if compaction {
                caps = caps.session(
                    ClientSessionCapabilities::new().compaction(CompactionCapabilities::new()),
                );
            }
            if discovery {
                let mut meta = serde_json::Map::new();
                meta.insert("punie.dev/discoverTools".into(), true.into());
                caps = caps.meta(meta);
            }
            let initialized = cx
                .send_request(InitializeRequest::new(ProtocolVersion::V1).client_capabilities(caps))
                .block_task()
                .await?;
            lock(&s).initialize = Some(initialized);
            let value = body(cx, s).await;
            *slot.lock().unwrap() = Some(value);
            Ok(())
        })
        .await;
    if let Err(error) = result
        && !options.killed
    {
        panic!("the editor connection failed: {error:?}");
    }
    let result = output
        .lock()
        .unwrap()
        .take()
        .expect("the editor's body finished");
    (result, shared)
}

/// A fresh workspace directory (canonical, so paths compare with what Punie reports) inside a
/// temporary directory whose other entries stand for "outside the workspace".
pub fn workspace() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("project");
    std::fs::create_dir(&ws).unwrap();
    let ws = ws.canonicalize().unwrap();
    (dir, ws)
}

/// Creates a session in `cwd`.
pub async fn new_session(cx: &ConnectionTo<Agent>, cwd: &Path) -> SessionId {
    cx.send_request(NewSessionRequest::new(cwd))
        .block_task()
        .await
        .expect("session/new")
        .session_id
}

/// Sends a text prompt and waits for the answer.
pub async fn prompt(
    cx: &ConnectionTo<Agent>,
    session: &SessionId,
    text: &str,
) -> Result<PromptResponse, agent_client_protocol::Error> {
    cx.send_request(PromptRequest::new(
        session.clone(),
        vec![ContentBlock::from(text)],
    ))
    .block_task()
    .await
}

/// Waits until `condition` holds on the record (or panics after 20 s).
pub async fn wait_until(shared: &Shared, what: &str, condition: impl Fn(&Record) -> bool) {
    for _ in 0..400 {
        if condition(&lock(shared)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// True while a process exists (and is not a zombie).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// Unused-warning silencer for the `Client` import on some test crates.
pub fn _client() -> Client {
    Client
}
