//! The editor side of the benchmark: spawns the real `punie` binary and drives it with the
//! official ACP crate's client, as an editor would. Files are the real files of the task's
//! project copy, terminals run real processes, and permission prompts get the task's answer.
//! Every update, permission prompt and stdout line is recorded with the time it arrived.
//!
//! A smaller sibling of `tests/it/support/editor.rs`, which cannot be shared: it finds the
//! binary through `CARGO_BIN_EXE_punie`, which only test crates get.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::*;
use agent_client_protocol::{AcpAgent, AcpAgentConfig, Agent, Client, LineDirection};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

/// Most bytes of a terminal's output the editor keeps (the tail), like an editor's buffer.
const TERMINAL_OUTPUT_LIMIT: usize = 64 * 1024;

/// How the editor answers `session/request_permission`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permissions {
    /// "Allow once", every time.
    Approve,
    /// "Reject once", every time.
    Reject,
}

struct Terminal {
    output: Arc<Mutex<String>>,
    exit: watch::Receiver<Option<TerminalExitStatus>>,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Everything the editor saw, with arrival times.
pub struct Record {
    pub started: Instant,
    pub updates: Vec<(Duration, SessionUpdate)>,
    pub permissions_asked: usize,
    pub commands: Vec<String>,
    pub stdout_lines: Vec<String>,
    permissions: Permissions,
    terminals: HashMap<String, Terminal>,
    next_terminal: u32,
}

pub type Shared = Arc<Mutex<Record>>;

pub fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Record> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl Record {
    /// The answer's text (all `agent_message_chunk`s).
    pub fn message_text(&self) -> String {
        self.updates
            .iter()
            .filter_map(|(_, u)| match u {
                SessionUpdate::AgentMessageChunk(ContentChunk {
                    content: ContentBlock::Text(t),
                    ..
                }) => Some(t.text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The tool calls Punie announced, with the last status each reached.
    pub fn tool_calls(&self) -> Vec<(String, Option<ToolCallStatus>)> {
        let mut calls: Vec<(String, String, Option<ToolCallStatus>)> = Vec::new();
        for (_, update) in &self.updates {
            match update {
                SessionUpdate::ToolCall(call) => calls.push((
                    call.tool_call_id.0.to_string(),
                    call.title.clone(),
                    Some(call.status),
                )),
                SessionUpdate::ToolCallUpdate(update) => {
                    if let Some(status) = update.fields.status
                        && let Some(call) = calls
                            .iter_mut()
                            .find(|(id, _, _)| **id == *update.tool_call_id.0)
                    {
                        call.2 = Some(status);
                    }
                }
                _ => {}
            }
        }
        calls
            .into_iter()
            .map(|(_, title, status)| (title, status))
            .collect()
    }

    /// Starts the clock for a prompt: earlier updates (of `session/new`) are dropped.
    pub fn start_prompt(&mut self) {
        self.started = Instant::now();
        self.updates.clear();
    }

    /// When the first update of the turn arrived (since [`Record::start_prompt`]).
    pub fn first_update(&self) -> Option<Duration> {
        self.updates.first().map(|(at, _)| *at)
    }
}

fn answer_permission(
    shared: &Shared,
    request: &RequestPermissionRequest,
) -> RequestPermissionOutcome {
    let mut record = lock(shared);
    record.permissions_asked += 1;
    let kind = match record.permissions {
        Permissions::Approve => PermissionOptionKind::AllowOnce,
        Permissions::Reject => PermissionOptionKind::RejectOnce,
    };
    match request.options.iter().find(|o| o.kind == kind) {
        Some(option) => RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(
            option.option_id.clone(),
        )),
        None => RequestPermissionOutcome::Cancelled,
    }
}

fn start_terminal(
    shared: &Shared,
    request: CreateTerminalRequest,
) -> Result<String, agent_client_protocol::Error> {
    let mut command = tokio::process::Command::new(&request.command);
    command
        .args(&request.args)
        .envs(request.env.iter().map(|v| (&v.name, &v.value)))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = &request.cwd {
        command.current_dir(cwd);
    }
    let mut child = command
        .spawn()
        .map_err(agent_client_protocol::Error::into_internal_error)?;
    let pid = child.id();
    let output = Arc::new(Mutex::new(String::new()));
    let (exit_tx, exit_rx) = watch::channel(None);
    let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
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
                if let Some(pid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                }
                child.wait().await
            }
        };
        let mut text = String::from_utf8_lossy(&out).into_owned();
        text.push_str(&String::from_utf8_lossy(&err));
        if text.len() > TERMINAL_OUTPUT_LIMIT {
            let mut cut = text.len() - TERMINAL_OUTPUT_LIMIT;
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            text.drain(..cut);
        }
        *sink.lock().unwrap_or_else(|p| p.into_inner()) = text;
        use std::os::unix::process::ExitStatusExt;
        let status = status.ok();
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
    let mut line = request.command.clone();
    for arg in &request.args {
        line.push(' ');
        line.push_str(arg);
    }
    record.commands.push(line);
    record.terminals.insert(
        id.clone(),
        Terminal {
            output,
            exit: exit_rx,
            kill: Some(kill_tx),
        },
    );
    Ok(id)
}

/// Spawns `punie` (with `env`) and runs `body` as its editor; returns what `body` returned and
/// the record. `Err` when the connection itself failed (Punie crashed, wrote garbage …).
pub async fn with_editor<T, F>(
    punie: &Path,
    env: &[(String, String)],
    permissions: Permissions,
    body: F,
) -> (Result<T, String>, Shared)
where
    F: AsyncFnOnce(ConnectionTo<Agent>, Shared) -> T,
{
    let shared: Shared = Arc::new(Mutex::new(Record {
        started: Instant::now(),
        updates: Vec::new(),
        permissions_asked: 0,
        commands: Vec::new(),
        stdout_lines: Vec::new(),
        permissions,
        terminals: HashMap::new(),
        next_terminal: 0,
    }));
    let config = AcpAgentConfig::new(punie).envs(env.iter().cloned());
    let recorder = shared.clone();
    let agent = AcpAgent::new(config).with_debug(move |line, direction| {
        if direction == LineDirection::Stdout {
            lock(&recorder).stdout_lines.push(line.to_owned());
        }
    });
    let s = shared.clone();
    let result = Client
        .v1()
        .name("real-tasks-editor")
        .on_receive_notification(
            {
                let s = s.clone();
                async move |n: SessionNotification, _cx| {
                    let mut record = lock(&s);
                    let at = record.started.elapsed();
                    record.updates.push((at, n.update));
                    Ok(())
                }
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            {
                let s = s.clone();
                async move |r: RequestPermissionRequest, responder, _cx| {
                    let outcome = answer_permission(&s, &r);
                    responder.respond(RequestPermissionResponse::new(outcome))
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |r: ReadTextFileRequest, responder, _cx| match std::fs::read_to_string(
                &r.path,
            ) {
                Ok(text) => {
                    let content = if r.line.is_none() && r.limit.is_none() {
                        text
                    } else {
                        let start = r.line.map_or(0, |l| l.saturating_sub(1) as usize);
                        let limit = r.limit.map_or(usize::MAX, |l| l as usize);
                        text.lines()
                            .skip(start)
                            .take(limit)
                            .collect::<Vec<_>>()
                            .join("\n")
                    };
                    responder.respond(ReadTextFileResponse::new(content))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => responder.respond_with_error(
                    agent_client_protocol::v1::schema::Error::resource_not_found(Some(
                        r.path.display().to_string(),
                    ))
                    .into(),
                ),
                Err(e) => responder
                    .respond_with_error(agent_client_protocol::Error::into_internal_error(e)),
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |r: WriteTextFileRequest, responder, _cx| {
                let written = r
                    .path
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::write(&r.path, &r.content));
                match written {
                    Ok(()) => responder.respond(WriteTextFileResponse::new()),
                    Err(e) => responder
                        .respond_with_error(agent_client_protocol::Error::into_internal_error(e)),
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
                    let found = lock(&s).terminals.get(&*r.terminal_id.0).map(|t| {
                        let output = t.output.lock().unwrap_or_else(|p| p.into_inner()).clone();
                        (output, t.exit.borrow().clone())
                    });
                    match found {
                        Some((output, exit)) => responder
                            .respond(TerminalOutputResponse::new(output, false).exit_status(exit)),
                        None => responder
                            .respond_with_error(agent_client_protocol::Error::invalid_params()),
                    }
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
                    let removed = lock(&s).terminals.remove(&*r.terminal_id.0);
                    if let Some(mut t) = removed
                        && let Some(kill) = t.kill.take()
                    {
                        let _ = kill.send(());
                    }
                    responder.respond(ReleaseTerminalResponse::new())
                }
            },
            agent_client_protocol::on_receive_request!(),
        )
        .connect_with(agent, async move |cx: ConnectionTo<Agent>| {
            let caps = ClientCapabilities::new()
                .fs(FileSystemCapabilities::new()
                    .read_text_file(true)
                    .write_text_file(true))
                .terminal(true);
            cx.send_request(InitializeRequest::new(ProtocolVersion::V1).client_capabilities(caps))
                .block_task()
                .await?;
            Ok(body(cx, s).await)
        })
        .await
        .map_err(|e| format!("the ACP connection to punie failed: {e}"));
    (result, shared)
}

/// Creates a session in `cwd`.
pub async fn new_session(cx: &ConnectionTo<Agent>, cwd: &Path) -> Result<SessionId, String> {
    cx.send_request(NewSessionRequest::new(PathBuf::from(cwd)))
        .block_task()
        .await
        .map(|r| r.session_id)
        .map_err(|e| format!("session/new failed: {}", describe(&e)))
}

/// An ACP error with its data, for messages.
pub fn describe(error: &agent_client_protocol::Error) -> String {
    match &error.data {
        Some(data) => format!("{} ({data})", error.message),
        None => error.message.clone(),
    }
}
