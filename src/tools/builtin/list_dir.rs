//! `list_dir`: the files and directories under a path, a few levels deep.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::search::{
    Capped, MAX_COUNTED_ENTRIES, MAX_ENTRIES, PROVIDER, display_path, hidden_note, open_start,
    run_blocking,
};
use crate::tools::{Tool, ToolContext, ToolError, ToolOutput, parse_args};
use crate::workspace::local::Walker;
use crate::workspace::{ToolKind, Workspace};

/// Default and largest `list_dir` depth.
const DEFAULT_DEPTH: usize = 2;
const MAX_DEPTH: usize = 10;

/// Lists a directory of the workspace, a few levels deep.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListDir;

#[derive(Deserialize)]
struct ListArgs {
    path: Option<String>,
    depth: Option<usize>,
    #[serde(default)]
    hidden: bool,
}

fn list(start: &Walker, depth: usize, hidden: bool, cancel: &CancellationToken) -> ToolOutput {
    let mut out = Capped::default();
    let mut total = 0;
    for entry in start.entries(Some(depth), hidden) {
        if entry.depth() == 0 {
            continue;
        }
        if cancel.is_cancelled() || total >= MAX_COUNTED_ENTRIES {
            break;
        }
        total += 1;
        let file_type = entry.file_type();
        let mut line = display_path(entry.relative());
        if file_type.is_some_and(|t| t.is_dir()) {
            line.push('/');
        } else if file_type.is_some_and(|t| t.is_symlink()) {
            match entry.link_target() {
                Ok(target) => line.push_str(&format!(" -> {}", target.display())),
                Err(_) => line.push('@'),
            }
        }
        out.push(&line, MAX_ENTRIES);
    }
    let mut text = out.text;
    if total == 0 {
        text = format!("{} is empty{}.", start.display(), hidden_note(hidden));
    } else if out.shown < total {
        let more = if total >= MAX_COUNTED_ENTRIES {
            format!("more than {total}")
        } else {
            total.to_string()
        };
        text.push_str(&format!(
            "[{} of {more} entries shown; list a subdirectory with `path`, or use a smaller \
             `depth`, or find files with glob]",
            out.shown
        ));
    }
    ToolOutput {
        raw_output: json!({"path": start.display(), "entries": total, "shown": out.shown}),
        ..ToolOutput::text(text)
    }
}

impl Tool for ListDir {
    fn name(&self) -> &str {
        "list_dir"
    }

    fn description(&self) -> &str {
        "List the files and directories under `path` (default: the workspace root), `depth` \
         levels deep (default 2). Directories end with `/`. Files ignored by .gitignore and \
         hidden files are skipped unless `hidden` is true."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "Directory, relative to the workspace root (default: the root)"},
                "depth": {"type": "integer", "minimum": 1, "maximum": MAX_DEPTH, "description": "How many levels to list (default 2)"},
                "hidden": {"type": "boolean", "description": "Include hidden files (default false)"}
            }
        })
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Read
    }

    fn provider(&self, _workspace: &Workspace) -> &'static str {
        PROVIDER
    }

    fn title(&self, args: &Value) -> String {
        format!(
            "List {}",
            args.get("path").and_then(Value::as_str).unwrap_or(".")
        )
    }

    fn call<'a>(
        &'a self,
        args: Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let args: ListArgs = parse_args(self.name(), &args)?;
            let depth = args.depth.unwrap_or(DEFAULT_DEPTH).clamp(1, MAX_DEPTH);
            let start = open_start(&ctx.workspace, args.path.as_deref()).await?;
            let cancel = ctx.cancel.clone();
            run_blocking(move || {
                if !start.is_dir() {
                    return Err(ToolError::Failed(format!(
                        "{} is a file, not a directory; use read_file to read it",
                        start.display()
                    )));
                }
                Ok(list(&start, depth, args.hidden, &cancel))
            })
            .await
        })
    }
}
