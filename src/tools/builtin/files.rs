//! `read_file` and `write_file`.

use std::path::PathBuf;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::tools::{Tool, ToolContext, ToolError, ToolOutput, parse_args};
use crate::workspace::{ToolContent, ToolKind, Workspace, WorkspaceError};

fn path_arg(args: &Value) -> &str {
    args.get("path").and_then(Value::as_str).unwrap_or("")
}

fn location(args: &Value, workspace: &Workspace, line: Option<u32>) -> Vec<(PathBuf, Option<u32>)> {
    workspace
        .resolve(path_arg(args))
        .map(|p| vec![(p.absolute().to_owned(), line)])
        .unwrap_or_default()
}

/// Reads a text file of the workspace, optionally a range of lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadFile;

#[derive(Deserialize)]
struct ReadArgs {
    path: String,
    line: Option<u32>,
    limit: Option<u32>,
}

impl Tool for ReadFile {
    fn name(&self) -> &str {
        "read_file"
    }

    fn description(&self) -> &str {
        "Read a text file in the workspace. `path` is relative to the workspace root. \
         Optionally start at 1-based `line` and read at most `limit` lines."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "File path, relative to the workspace root"},
                "line": {"type": "integer", "minimum": 1, "description": "First line to read (1-based)"},
                "limit": {"type": "integer", "minimum": 1, "description": "Maximum number of lines to read"}
            },
            "required": ["path"]
        })
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Read
    }

    fn title(&self, args: &Value) -> String {
        format!("Read {}", path_arg(args))
    }

    fn locations(&self, args: &Value, workspace: &Workspace) -> Vec<(PathBuf, Option<u32>)> {
        let line = args.get("line").and_then(Value::as_u64).map(|l| l as u32);
        location(args, workspace, line)
    }

    fn call<'a>(
        &'a self,
        args: Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let args: ReadArgs = parse_args(self.name(), &args)?;
            let path = ctx.workspace.resolve(&args.path)?;
            let text = ctx
                .workspace
                .files
                .read_text_file(&path, args.line, args.limit)
                .await?;
            Ok(ToolOutput {
                content: vec![ToolContent::Text(format!("```\n{text}\n```"))],
                raw_output: json!({"path": path.display(), "content": text}),
                text,
            })
        })
    }
}

/// Writes (creates or replaces) a text file of the workspace, after the person allows it.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteFile;

#[derive(Deserialize)]
struct WriteArgs {
    path: String,
    content: String,
}

impl Tool for WriteFile {
    fn name(&self) -> &str {
        "write_file"
    }

    fn description(&self) -> &str {
        "Create or overwrite a text file in the workspace with the given full content. \
         `path` is relative to the workspace root. The user is asked to approve the change."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "File path, relative to the workspace root"},
                "content": {"type": "string", "description": "The complete new content of the file"}
            },
            "required": ["path", "content"]
        })
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Edit
    }

    fn needs_permission(&self) -> bool {
        true
    }

    fn title(&self, args: &Value) -> String {
        format!("Write {}", path_arg(args))
    }

    fn locations(&self, args: &Value, workspace: &Workspace) -> Vec<(PathBuf, Option<u32>)> {
        location(args, workspace, None)
    }

    fn preview<'a>(
        &'a self,
        args: &'a Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<Vec<ToolContent>, ToolError>> {
        Box::pin(async move {
            let args: WriteArgs = parse_args(self.name(), args)?;
            let path = ctx.workspace.resolve(&args.path)?;
            let old_text = match ctx.workspace.files.read_text_file(&path, None, None).await {
                Ok(text) => Some(text),
                Err(WorkspaceError::NotFound { .. }) => None,
                Err(error) => return Err(error.into()),
            };
            Ok(vec![ToolContent::Diff {
                path: path.absolute().to_owned(),
                old_text,
                new_text: args.content,
            }])
        })
    }

    fn call<'a>(
        &'a self,
        args: Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let args: WriteArgs = parse_args(self.name(), &args)?;
            let path = ctx.workspace.resolve(&args.path)?;
            ctx.workspace
                .files
                .write_text_file(&path, &args.content)
                .await?;
            let lines = args.content.lines().count();
            Ok(ToolOutput {
                text: format!(
                    "Wrote {} ({lines} lines, {} bytes).",
                    path.display(),
                    args.content.len()
                ),
                content: Vec::new(),
                raw_output: json!({"path": path.display(), "bytes": args.content.len()}),
            })
        })
    }
}
