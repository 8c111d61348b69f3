//! Tools that live elsewhere — in the editor (its catalog of refactorings, inspections, run
//! configurations) — described by their owner and called through a [`ToolCaller`].

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use super::{Tool, ToolContext, ToolError, ToolOutput};
use crate::workspace::{ToolContent, ToolKind};

/// How a remote tool describes itself.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteToolSpec {
    /// The name the model calls it by.
    pub name: String,
    /// What it does, as its owner says.
    pub description: String,
    /// JSON Schema of its arguments, as its owner gives it.
    pub parameters: Value,
    /// Its kind.
    pub kind: ToolKind,
    /// Whether the person must allow each call.
    pub requires_permission: bool,
    /// Free-form categories from the owner, for logs.
    pub categories: Vec<String>,
}

/// The result of a remote call.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RemoteResult {
    /// The result as the model reads it.
    pub text: String,
    /// What the editor shows.
    pub content: Vec<ToolContent>,
    /// True when the tool reports a failure (the text says why).
    pub is_error: bool,
    /// The raw result, for clients.
    pub raw: Value,
}

/// Calls remote tools by name.
pub trait ToolCaller: Send + Sync {
    /// Calls `name` with `arguments`.
    fn call<'a>(
        &'a self,
        name: &'a str,
        arguments: Value,
    ) -> BoxFuture<'a, Result<RemoteResult, ToolError>>;
}

/// A remote tool as a [`Tool`].
pub struct BridgedTool {
    spec: RemoteToolSpec,
    caller: Arc<dyn ToolCaller>,
}

impl std::fmt::Debug for BridgedTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgedTool")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl BridgedTool {
    /// A tool described by `spec`, called through `caller`.
    pub fn new(spec: RemoteToolSpec, caller: Arc<dyn ToolCaller>) -> Self {
        Self { spec, caller }
    }
}

impl Tool for BridgedTool {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn description(&self) -> &str {
        &self.spec.description
    }

    fn parameters(&self) -> Value {
        self.spec.parameters.clone()
    }

    fn kind(&self) -> ToolKind {
        self.spec.kind
    }

    fn needs_permission(&self) -> bool {
        self.spec.requires_permission
    }

    fn provider(&self, _workspace: &crate::workspace::Workspace) -> &'static str {
        "bridged"
    }

    fn source(&self) -> super::ToolSource {
        super::ToolSource::Editor
    }

    fn preview<'a>(
        &'a self,
        args: &'a Value,
        _ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<Vec<ToolContent>, ToolError>> {
        Box::pin(async move {
            if !self.spec.requires_permission {
                return Ok(Vec::new());
            }
            let shown = serde_json::to_string_pretty(args).unwrap_or_else(|_| args.to_string());
            Ok(vec![ToolContent::Text(format!(
                "{} {shown}",
                self.spec.name
            ))])
        })
    }

    fn call<'a>(
        &'a self,
        args: Value,
        _ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let result = self.caller.call(&self.spec.name, args).await?;
            if result.is_error {
                let reason = if result.text.is_empty() {
                    "the tool reported an error".to_owned()
                } else {
                    result.text
                };
                return Err(ToolError::Failed(reason));
            }
            Ok(ToolOutput {
                text: result.text,
                content: result.content,
                raw_output: result.raw,
            })
        })
    }
}
