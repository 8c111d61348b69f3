//! Where tools act: files, commands and permission prompts, behind three small traits so that
//! each can be served by the editor (over ACP) or locally, per session.
//!
//! Every path a tool names is first resolved into a [`WorkspacePath`], which is guaranteed to be
//! lexically inside the workspace root; implementations then enforce the boundary at open time.

mod error;
pub mod local;
mod path;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;

pub use error::WorkspaceError;
pub use path::WorkspacePath;

/// Convenience alias for workspace results.
pub type Result<T, E = WorkspaceError> = std::result::Result<T, E>;

/// Reading and writing text files.
pub trait FileSystem: Send + Sync {
    /// Reads a text file, optionally from a 1-based `line` and at most `limit` lines.
    fn read_text_file<'a>(
        &'a self,
        path: &'a WorkspacePath,
        line: Option<u32>,
        limit: Option<u32>,
    ) -> BoxFuture<'a, Result<String>>;

    /// Writes a text file whole, creating it (and its parent directories) if needed.
    fn write_text_file<'a>(
        &'a self,
        path: &'a WorkspacePath,
        content: &'a str,
    ) -> BoxFuture<'a, Result<()>>;

    /// Where the files live, for logs: "editor" or "local".
    fn provider(&self) -> &'static str;
}

/// A command to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRequest {
    /// The program.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The working directory (inside the workspace).
    pub cwd: WorkspacePath,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Keep at most this many bytes of output (the most recent ones).
    pub output_byte_limit: Option<u64>,
}

/// Identifies a running or finished command.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TerminalId(pub String);

/// How a command ended.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ExitStatus {
    /// The exit code, if it exited normally.
    pub exit_code: Option<u32>,
    /// The signal that killed it, if any.
    pub signal: Option<String>,
}

impl ExitStatus {
    /// True when the command exited with code 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// The output of a command so far.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TerminalOutput {
    /// The captured output (stdout and stderr interleaved).
    pub output: String,
    /// True when older output was dropped to respect the byte limit.
    pub truncated: bool,
    /// Set once the command has exited.
    pub exit_status: Option<ExitStatus>,
}

/// Running commands.
pub trait Terminals: Send + Sync {
    /// Starts a command and returns its id at once.
    fn create<'a>(&'a self, request: CommandRequest) -> BoxFuture<'a, Result<TerminalId>>;
    /// The output so far.
    fn output<'a>(&'a self, id: &'a TerminalId) -> BoxFuture<'a, Result<TerminalOutput>>;
    /// Waits until the command exits.
    fn wait_for_exit<'a>(&'a self, id: &'a TerminalId) -> BoxFuture<'a, Result<ExitStatus>>;
    /// Kills the command (and its children); its output stays readable until released.
    fn kill<'a>(&'a self, id: &'a TerminalId) -> BoxFuture<'a, Result<()>>;
    /// Kills the command if still running and forgets it.
    fn release<'a>(&'a self, id: &'a TerminalId) -> BoxFuture<'a, Result<()>>;
    /// Where commands run, for logs: "editor" or "local".
    fn provider(&self) -> &'static str;
}

/// The kind of a tool, as editors show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ToolKind {
    /// Reads files or data.
    Read,
    /// Changes files.
    Edit,
    /// Deletes files.
    Delete,
    /// Moves or renames files.
    Move,
    /// Searches.
    Search,
    /// Runs commands.
    Execute,
    /// Thinks or plans.
    Think,
    /// Fetches from the network.
    Fetch,
    /// Anything else.
    Other,
}

/// Content attached to a tool call, shown by the editor.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToolContent {
    /// Plain text.
    Text(String),
    /// A file change.
    Diff {
        /// The file (absolute).
        path: PathBuf,
        /// The previous text; `None` for a new file.
        old_text: Option<String>,
        /// The new text.
        new_text: String,
    },
    /// A live terminal the editor can display.
    Terminal(TerminalId),
    /// An image (an MCP tool's result): shown to the editor, and to a model that sees.
    Image(crate::image::Image),
}

/// A question to the person: may this tool call go ahead?
#[derive(Clone, Debug, PartialEq)]
pub struct PermissionRequest {
    /// The tool call in question.
    pub tool_call_id: String,
    /// What the call does, in a few words.
    pub title: String,
    /// Its kind.
    pub kind: ToolKind,
    /// What it will change (e.g. a diff).
    pub content: Vec<ToolContent>,
    /// The call's arguments.
    pub raw_input: serde_json::Value,
}

/// The person's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PermissionOutcome {
    /// Go ahead, this once.
    AllowOnce,
    /// Go ahead, and do not ask again for this kind of call in this session.
    AllowAlways,
    /// Do not do it.
    RejectOnce,
    /// Do not do it, and refuse this kind of call for the rest of the session.
    RejectAlways,
    /// The prompt was cancelled (the turn is being cancelled).
    Cancelled,
}

/// Asking the person for permission.
pub trait Permissions: Send + Sync {
    /// Asks, and waits for the answer.
    fn request<'a>(
        &'a self,
        request: PermissionRequest,
    ) -> BoxFuture<'a, Result<PermissionOutcome>>;
}

/// The workspace of one session: its root and who serves each capability.
#[derive(Clone)]
pub struct Workspace {
    root: PathBuf,
    /// Reads and writes files.
    pub files: Arc<dyn FileSystem>,
    /// Runs commands.
    pub terminals: Arc<dyn Terminals>,
    /// Asks the person.
    pub permissions: Arc<dyn Permissions>,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("root", &self.root)
            .field("files", &self.files.provider())
            .field("terminals", &self.terminals.provider())
            .finish()
    }
}

impl Workspace {
    /// Assembles a workspace. `root` must be absolute.
    pub fn new(
        root: PathBuf,
        files: Arc<dyn FileSystem>,
        terminals: Arc<dyn Terminals>,
        permissions: Arc<dyn Permissions>,
    ) -> Self {
        Self {
            root,
            files,
            terminals,
            permissions,
        }
    }

    /// The workspace root (the session's `cwd`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves a path a tool named (relative to the root, or absolute) into a path inside the
    /// workspace, or refuses it.
    pub fn resolve(&self, path: &str) -> Result<WorkspacePath> {
        WorkspacePath::resolve(&self.root, path)
    }
}
