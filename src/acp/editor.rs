//! The editor as a workspace: files through `fs/*`, commands through `terminal/*`, and
//! permission prompts through `session/request_permission`.
//!
//! Each capability the editor did not advertise falls back to another implementation (the
//! local workspace). Dropping any of these futures (on cancel) abandons the editor request,
//! which sends `$/cancel_request`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema as wire;
use agent_client_protocol::{Client, JsonRpcRequest};
use futures::future::BoxFuture;

use super::convert;
use crate::agent::TurnObserver;
use crate::workspace::{
    CommandRequest, ExitStatus, FileSystem, PermissionOutcome, PermissionRequest, Permissions,
    Result, TerminalId, TerminalOutput, Terminals, WorkspaceError, WorkspacePath,
};

/// The connection to the editor, for one session.
#[derive(Clone)]
pub(crate) struct Editor {
    pub(crate) cx: ConnectionTo<Client>,
    pub(crate) session_id: wire::SessionId,
    /// Receives the timing of each editor round trip.
    pub(crate) observer: Option<Arc<dyn TurnObserver>>,
}

impl std::fmt::Debug for Editor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Editor")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

impl Editor {
    async fn request<R: JsonRpcRequest>(
        &self,
        request: R,
    ) -> std::result::Result<R::Response, agent_client_protocol::Error> {
        let method = request.method().to_owned();
        let started = std::time::Instant::now();
        let result = self.cx.send_request(request).block_task().await;
        let elapsed = started.elapsed();
        tracing::debug!(session = %self.session_id.0, %method, elapsed_ms = elapsed.as_millis() as u64, ok = result.is_ok(), "editor request");
        if let Some(observer) = &self.observer {
            observer.editor_request(&self.session_id.0, &method, elapsed, result.is_ok());
        }
        result
    }
}

/// Turns an editor's error answer into a workspace error.
fn editor_error(
    operation: &'static str,
    path: &str,
    error: agent_client_protocol::Error,
) -> WorkspaceError {
    let detail = match &error.data {
        Some(serde_json::Value::String(data)) => format!("{}: {data}", error.message),
        Some(data) if !data.is_null() => format!("{} ({data})", error.message),
        _ => error.message.clone(),
    };
    let lowered = detail.to_lowercase();
    let not_found = error.code
        == agent_client_protocol::ErrorCode::from(wire::ErrorCode::ResourceNotFound)
        || [
            "not found",
            "no such file",
            "does not exist",
            "doesn't exist",
        ]
        .iter()
        .any(|w| lowered.contains(w));
    if agent_client_protocol::is_incoming_transport_closed(&error)
        || agent_client_protocol::is_connection_terminated(&error)
    {
        return WorkspaceError::Cancelled;
    }
    if not_found {
        WorkspaceError::NotFound {
            path: path.to_owned(),
        }
    } else {
        WorkspaceError::Io {
            operation,
            path: path.to_owned(),
            reason: format!("the editor answered: {detail}"),
        }
    }
}

/// Refuses a path that stays inside the root lexically but leads outside through a symlink on
/// this machine (the editor would otherwise follow it). The editor does the I/O, so this check
/// is the best we can do here; the local workspace enforces the boundary at open time instead.
fn refuse_symlink_escape(root: &Path, path: &WorkspacePath) -> Result<()> {
    let Ok(real_root) = root.canonicalize() else {
        return Ok(());
    };
    let mut existing: PathBuf = path.absolute().to_owned();
    loop {
        if let Ok(real) = existing.canonicalize() {
            if real.starts_with(&real_root) {
                return Ok(());
            }
            return Err(WorkspaceError::OutsideRoot {
                path: path.display(),
                root: root.to_owned(),
            });
        }
        if !existing.pop() {
            return Ok(());
        }
    }
}

/// Files through the editor where it offers them, the fallback elsewhere.
pub(crate) struct EditorFiles {
    pub(crate) editor: Editor,
    pub(crate) root: PathBuf,
    pub(crate) can_read: bool,
    pub(crate) can_write: bool,
    /// Serves whichever of read and write the editor does not offer.
    pub(crate) fallback: Option<Arc<dyn FileSystem>>,
}

impl EditorFiles {
    fn fallback(&self) -> &dyn FileSystem {
        self.fallback
            .as_deref()
            .expect("a local file system backs what the editor does not offer")
    }
}

impl FileSystem for EditorFiles {
    fn read_text_file<'a>(
        &'a self,
        path: &'a WorkspacePath,
        line: Option<u32>,
        limit: Option<u32>,
    ) -> BoxFuture<'a, Result<String>> {
        if !self.can_read {
            return self.fallback().read_text_file(path, line, limit);
        }
        Box::pin(async move {
            refuse_symlink_escape(&self.root, path)?;
            let request =
                wire::ReadTextFileRequest::new(self.editor.session_id.clone(), path.absolute())
                    .line(line)
                    .limit(limit);
            let response = self
                .editor
                .request(request)
                .await
                .map_err(|e| editor_error("reading", &path.display(), e))?;
            Ok(response.content)
        })
    }

    fn write_text_file<'a>(
        &'a self,
        path: &'a WorkspacePath,
        content: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        if !self.can_write {
            return self.fallback().write_text_file(path, content);
        }
        Box::pin(async move {
            refuse_symlink_escape(&self.root, path)?;
            let request = wire::WriteTextFileRequest::new(
                self.editor.session_id.clone(),
                path.absolute(),
                content,
            );
            self.editor
                .request(request)
                .await
                .map_err(|e| editor_error("writing", &path.display(), e))?;
            Ok(())
        })
    }

    fn provider(&self) -> &'static str {
        match (self.can_read, self.can_write) {
            (true, true) => "editor",
            (false, false) => "local",
            _ => "editor+local",
        }
    }
}

/// Commands run in the editor's terminals.
pub(crate) struct EditorTerminals {
    pub(crate) editor: Editor,
}

impl EditorTerminals {
    fn id(&self, id: &TerminalId) -> wire::TerminalId {
        wire::TerminalId::new(id.0.as_str())
    }
}

impl Terminals for EditorTerminals {
    fn create<'a>(&'a self, request: CommandRequest) -> BoxFuture<'a, Result<TerminalId>> {
        Box::pin(async move {
            let shown = format!("{} {}", request.command, request.args.join(" "));
            let wire_request =
                wire::CreateTerminalRequest::new(self.editor.session_id.clone(), request.command)
                    .args(request.args)
                    .env(
                        request
                            .env
                            .into_iter()
                            .map(|(name, value)| wire::EnvVariable::new(name, value))
                            .collect(),
                    )
                    .cwd(request.cwd.absolute().to_owned())
                    .output_byte_limit(request.output_byte_limit);
            let response = self
                .editor
                .request(wire_request)
                .await
                .map_err(|e| editor_error("running", shown.trim(), e))?;
            Ok(TerminalId(response.terminal_id.0.to_string()))
        })
    }

    fn output<'a>(&'a self, id: &'a TerminalId) -> BoxFuture<'a, Result<TerminalOutput>> {
        Box::pin(async move {
            let request =
                wire::TerminalOutputRequest::new(self.editor.session_id.clone(), self.id(id));
            let response = self
                .editor
                .request(request)
                .await
                .map_err(|e| editor_error("reading the output of terminal", &id.0, e))?;
            Ok(TerminalOutput {
                output: response.output,
                truncated: response.truncated,
                exit_status: response.exit_status.as_ref().map(convert::exit_status),
            })
        })
    }

    fn wait_for_exit<'a>(&'a self, id: &'a TerminalId) -> BoxFuture<'a, Result<ExitStatus>> {
        Box::pin(async move {
            let request =
                wire::WaitForTerminalExitRequest::new(self.editor.session_id.clone(), self.id(id));
            let response = self
                .editor
                .request(request)
                .await
                .map_err(|e| editor_error("waiting for terminal", &id.0, e))?;
            Ok(convert::exit_status(&response.exit_status))
        })
    }

    fn kill<'a>(&'a self, id: &'a TerminalId) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let request =
                wire::KillTerminalRequest::new(self.editor.session_id.clone(), self.id(id));
            self.editor
                .request(request)
                .await
                .map_err(|e| editor_error("killing terminal", &id.0, e))?;
            Ok(())
        })
    }

    fn release<'a>(&'a self, id: &'a TerminalId) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let request =
                wire::ReleaseTerminalRequest::new(self.editor.session_id.clone(), self.id(id));
            self.editor
                .request(request)
                .await
                .map_err(|e| editor_error("releasing terminal", &id.0, e))?;
            Ok(())
        })
    }

    fn provider(&self) -> &'static str {
        "editor"
    }
}

/// Permission prompts shown by the editor.
pub(crate) struct EditorPermissions {
    pub(crate) editor: Editor,
}

const PERMISSION_OPTIONS: [(&str, &str, wire::PermissionOptionKind); 4] = [
    ("allow_once", "Allow", wire::PermissionOptionKind::AllowOnce),
    (
        "allow_always",
        "Always allow",
        wire::PermissionOptionKind::AllowAlways,
    ),
    (
        "reject_once",
        "Reject",
        wire::PermissionOptionKind::RejectOnce,
    ),
    (
        "reject_always",
        "Always reject",
        wire::PermissionOptionKind::RejectAlways,
    ),
];

impl Permissions for EditorPermissions {
    fn request<'a>(
        &'a self,
        request: PermissionRequest,
    ) -> BoxFuture<'a, Result<PermissionOutcome>> {
        Box::pin(async move {
            let options: Vec<wire::PermissionOption> = PERMISSION_OPTIONS
                .iter()
                .map(|(id, name, kind)| wire::PermissionOption::new(*id, *name, *kind))
                .collect();
            let fields = wire::ToolCallUpdateFields::new()
                .title(request.title.clone())
                .kind(convert::tool_kind(request.kind))
                .status(wire::ToolCallStatus::Pending)
                .content(convert::content(request.content))
                .raw_input(request.raw_input);
            let tool_call = wire::ToolCallUpdate::new(request.tool_call_id, fields);
            let wire_request = wire::RequestPermissionRequest::new(
                self.editor.session_id.clone(),
                tool_call,
                options.clone(),
            );
            let response = self
                .editor
                .request(wire_request)
                .await
                .map_err(|e| editor_error("asking permission for", &request.title, e))?;
            Ok(convert::permission_outcome(&response.outcome, &options))
        })
    }
}
