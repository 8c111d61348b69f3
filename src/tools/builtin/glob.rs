//! `glob`: the files whose path matches a glob pattern.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::search::{
    Capped, MAX_COUNTED_ENTRIES, MAX_ENTRIES, NameGlob, PROVIDER, display_path, hidden_note,
    names_hidden, open_start, run_blocking,
};
use crate::tools::{Tool, ToolContext, ToolError, ToolOutput, parse_args};
use crate::workspace::local::Walker;
use crate::workspace::{ToolKind, Workspace};

/// Finds files by glob pattern.
#[derive(Debug, Clone, Copy, Default)]
pub struct Glob;

#[derive(Deserialize)]
struct GlobArgs {
    pattern: String,
    path: Option<String>,
    #[serde(default)]
    hidden: bool,
}

fn find(
    start: &Walker,
    glob: &NameGlob,
    pattern: &str,
    hidden: bool,
    cancel: &CancellationToken,
) -> ToolOutput {
    let mut out = Capped::default();
    let mut total = 0;
    for entry in start.entries(None, hidden) {
        if cancel.is_cancelled() || total >= MAX_COUNTED_ENTRIES {
            break;
        }
        if entry.file_type().is_none_or(|t| t.is_dir()) {
            continue;
        }
        let Some(from_start) = entry.relative_to_start() else {
            continue;
        };
        if !glob.matches(from_start) {
            continue;
        }
        total += 1;
        out.push(&display_path(entry.relative()), MAX_ENTRIES);
    }
    let mut text = out.text;
    if total == 0 {
        text = format!(
            "No files match `{pattern}` in {}{}.",
            start.display(),
            hidden_note(hidden)
        );
    } else if out.shown < total {
        let more = if total >= MAX_COUNTED_ENTRIES {
            format!("more than {total}")
        } else {
            total.to_string()
        };
        text.push_str(&format!(
            "[{} of {more} files shown; use a more specific pattern or `path`]",
            out.shown
        ));
    }
    ToolOutput {
        raw_output: json!({"pattern": pattern, "path": start.display(), "files": total, "shown": out.shown}),
        ..ToolOutput::text(text)
    }
}

impl Tool for Glob {
    fn name(&self) -> &str {
        "glob"
    }

    fn description(&self) -> &str {
        "Find files whose path matches a glob `pattern` (e.g. `**/*.rs`, `src/**/mod.rs`; a \
         pattern without `/` matches file names at any depth), under `path` (default: the \
         workspace root). Files ignored by .gitignore and hidden files are skipped unless \
         `hidden` is true."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "description": "Glob, relative to `path`"},
                "path": {"type": "string", "description": "Directory to search, relative to the workspace root (default: the root)"},
                "hidden": {"type": "boolean", "description": "Include hidden files (default false)"}
            },
            "required": ["pattern"]
        })
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Search
    }

    fn provider(&self, _workspace: &Workspace) -> &'static str {
        PROVIDER
    }

    fn title(&self, args: &Value) -> String {
        format!(
            "Find {}",
            args.get("pattern").and_then(Value::as_str).unwrap_or("")
        )
    }

    fn call<'a>(
        &'a self,
        args: Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let args: GlobArgs = parse_args(self.name(), &args)?;
            let glob = NameGlob::new(&args.pattern)?;
            let hidden = args.hidden || names_hidden(&args.pattern);
            let start = open_start(&ctx.workspace, args.path.as_deref()).await?;
            let cancel = ctx.cancel.clone();
            run_blocking(move || {
                if !start.is_dir() {
                    return Err(ToolError::Failed(format!(
                        "{} is a file, not a directory; give a directory as `path`",
                        start.display()
                    )));
                }
                Ok(find(&start, &glob, &args.pattern, hidden, &cancel))
            })
            .await
        })
    }
}
