//! Tools the model can call: the [`Tool`] trait, the context a call runs in, and the session's
//! [`Toolset`].
//!
//! Tools act only through the session's [`Workspace`], so they never know whether the editor or
//! the local sandbox serves them. Permission prompts are asked by the turn loop, not by tools:
//! a tool that [needs permission](Tool::needs_permission) is never called unless the person
//! allowed it. Tools know nothing of the model: the turn loop describes them to it from their
//! name, description and parameters.

pub mod bridge;
pub mod builtin;
pub mod mcp;
pub mod profile;
mod terminals;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::workspace::{Workspace, WorkspaceError};

pub use terminals::SessionTerminals;
// Re-exported so that writing a `Tool` needs this one module.
pub use crate::workspace::{ToolContent, ToolKind};

/// What a tool call produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ToolOutput {
    /// The result as the model will read it.
    pub text: String,
    /// What the editor shows for the call (diffs, terminals, text).
    pub content: Vec<ToolContent>,
    /// Structured output for clients (`rawOutput`).
    pub raw_output: Value,
}

impl ToolOutput {
    /// An output that is just text, shown the same to the model and the editor.
    pub fn text(text: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            content: vec![ToolContent::Text(text.clone())],
            raw_output: Value::String(text.clone()),
            text,
        }
    }
}

/// Why a tool call failed. The message is what the model reads, so it says what to do instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// The arguments do not fit the tool's schema.
    #[error("invalid arguments for {tool}: {reason}")]
    InvalidArguments {
        /// The tool.
        tool: String,
        /// What is wrong.
        reason: String,
    },
    /// The workspace refused or failed.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// Any other failure, in words the model can act on.
    #[error("{0}")]
    Failed(String),
}

/// What a tool call may change. Session [modes](crate::agent::Mode) decide from it which tools
/// the model is offered and which calls run without asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToolEffect {
    /// Changes nothing: reads, searches, fetches, plans. Offered in every mode, the read-only
    /// ones (`ask`, `plan`) included.
    ReadOnly,
    /// Changes files inside the session's workspace only (through the [`Workspace`], which
    /// refuses paths outside it), each change shown as a diff: applied without asking in
    /// `edit` mode.
    WorkspaceEdit,
    /// May change anything else, or its effect is not known: commands, editor or MCP tools
    /// not marked read-only. Never offered in a read-only mode.
    Changes,
}

/// A change to report while a tool runs (e.g. the terminal it started).
pub type ProgressFn = Arc<dyn Fn(Vec<ToolContent>) + Send + Sync>;

/// Receives the session's new plan, whole (from [`builtin::UpdatePlan`]).
pub type PlanFn = Arc<dyn Fn(Vec<builtin::PlanEntry>) + Send + Sync>;

/// Everything a tool call may use.
#[derive(Clone)]
pub struct ToolContext {
    /// Where the tool acts.
    pub workspace: Workspace,
    /// The id of this call.
    pub tool_call_id: String,
    /// Cancelled when the turn is cancelled.
    pub cancel: CancellationToken,
    /// The session's terminals, so commands outlive a call and are killed on cancel.
    pub terminals: Arc<SessionTerminals>,
    /// How long `run_command` waits before leaving a command running in the background.
    pub command_timeout: Duration,
    progress: ProgressFn,
    plan: Option<PlanFn>,
}

impl std::fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolContext")
            .field("workspace", &self.workspace)
            .field("tool_call_id", &self.tool_call_id)
            .finish_non_exhaustive()
    }
}

impl ToolContext {
    /// Builds a context.
    pub fn new(
        workspace: Workspace,
        tool_call_id: String,
        cancel: CancellationToken,
        terminals: Arc<SessionTerminals>,
        command_timeout: Duration,
        progress: ProgressFn,
    ) -> Self {
        Self {
            workspace,
            tool_call_id,
            cancel,
            terminals,
            command_timeout,
            progress,
            plan: None,
        }
    }

    /// The same context, with `plan` receiving the plans a tool sets.
    pub fn with_plan(mut self, plan: PlanFn) -> Self {
        self.plan = Some(plan);
        self
    }

    /// Shows the session's new plan (the whole list) in the editor; nothing happens where no
    /// one receives plans.
    pub fn show_plan(&self, entries: Vec<builtin::PlanEntry>) {
        if let Some(plan) = &self.plan {
            plan(entries);
        }
    }

    /// Shows new content on the tool call in the editor while it runs.
    pub fn report(&self, content: Vec<ToolContent>) {
        (self.progress)(content);
    }
}

/// Where a tool comes from, as `/tools` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToolSource {
    /// Compiled into the program: Punie's own tools and those an embedding program adds.
    BuiltIn,
    /// The editor's catalog, through Punie's tool-discovery extension.
    Editor,
    /// An MCP server, by the name the editor gave it.
    Mcp(String),
}

/// A tool the model can call.
///
/// Object safe: a session holds its tools as `Arc<dyn Tool>`.
pub trait Tool: Send + Sync {
    /// The name the model calls it by.
    fn name(&self) -> &str;

    /// What it does, for the model.
    fn description(&self) -> &str;

    /// JSON Schema of its arguments.
    fn parameters(&self) -> Value;

    /// Its kind, for the editor's display.
    fn kind(&self) -> ToolKind;

    /// Whether models seldom need it (the helpers of commands left running): a small context
    /// window's compact [profile](profile::ToolProfile) then folds it — its schema is not
    /// sent, but it still runs when called by name.
    fn rarely_used(&self) -> bool {
        false
    }

    /// Where the tool comes from: built in unless it says otherwise.
    fn source(&self) -> ToolSource {
        ToolSource::BuiltIn
    }

    /// Whether the person must allow each call (writes and commands do).
    fn needs_permission(&self) -> bool {
        false
    }

    /// What a call may change. By default a tool that needs no permission and whose
    /// [kind](Self::kind) is read, search, think or fetch changes nothing
    /// ([`ToolEffect::ReadOnly`]); every other tool counts as [`ToolEffect::Changes`]. Override
    /// it for a tool that writes only inside the workspace through it
    /// ([`ToolEffect::WorkspaceEdit`]), or that is read-only under another kind.
    fn effect(&self) -> ToolEffect {
        let harmless = matches!(
            self.kind(),
            ToolKind::Read | ToolKind::Search | ToolKind::Think | ToolKind::Fetch
        );
        if harmless && !self.needs_permission() {
            ToolEffect::ReadOnly
        } else {
            ToolEffect::Changes
        }
    }

    /// Where a call runs, for logs and timing reports: by default the editor or the local
    /// workspace, whichever serves this kind of tool in the session.
    fn provider(&self, workspace: &Workspace) -> &'static str {
        match self.kind() {
            ToolKind::Execute => workspace.terminals.provider(),
            _ => workspace.files.provider(),
        }
    }

    /// A short title for the call, e.g. "Read src/main.rs".
    fn title(&self, _args: &Value) -> String {
        self.name().to_owned()
    }

    /// Files the call touches, for the editor's "follow along".
    fn locations(&self, _args: &Value, _workspace: &Workspace) -> Vec<(PathBuf, Option<u32>)> {
        Vec::new()
    }

    /// What the call will do, shown before it runs and in the permission prompt (e.g. a diff).
    fn preview<'a>(
        &'a self,
        _args: &'a Value,
        _ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<Vec<ToolContent>, ToolError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Runs the call.
    fn call<'a>(
        &'a self,
        args: Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>>;
}

/// The tools of one session, by name.
#[derive(Clone, Default)]
pub struct Toolset {
    tools: Vec<Arc<dyn Tool>>,
}

impl std::fmt::Debug for Toolset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.tools.iter().map(|t| t.name()))
            .finish()
    }
}

impl Toolset {
    /// An empty toolset.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool, replacing any tool of the same name.
    pub fn add(&mut self, tool: Arc<dyn Tool>) {
        self.tools.retain(|t| t.name() != tool.name());
        self.tools.push(tool);
    }

    /// Finds a tool by name.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.iter().find(|t| t.name() == name)
    }

    /// All tools, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Tool>> {
        self.tools.iter()
    }
}

/// The JSON Schema of a tool's arguments, derived from a Rust type with `schemars`:
/// `#[derive(serde::Deserialize, schemars::JsonSchema)] struct Args { path: String }` then
/// `schema_for::<Args>()` in [`Tool::parameters`], and [`parse_args`] in [`Tool::call`].
pub fn schema_for<T: schemars::JsonSchema>() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default();
    if let Some(object) = schema.as_object_mut() {
        // Local servers' templates choke on meta keys; the model needs only the shape.
        object.remove("$schema");
        object.remove("title");
    }
    schema
}

/// Parses a tool's JSON arguments into its typed form, or explains what is wrong.
pub fn parse_args<T: serde::de::DeserializeOwned>(
    tool: &str,
    args: &Value,
) -> Result<T, ToolError> {
    serde_json::from_value(args.clone()).map_err(|e| ToolError::InvalidArguments {
        tool: tool.to_owned(),
        reason: e.to_string(),
    })
}
