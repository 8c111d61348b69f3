//! `read_file` (paging large files so one read cannot flood a small context window) and
//! `write_file`.

use std::path::PathBuf;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::tools::{Tool, ToolContext, ToolError, ToolOutput, parse_args};
use crate::workspace::{ToolContent, ToolKind, Workspace, WorkspaceError};

/// The `path` argument of a file tool, or "" (for titles; the call itself validates it).
pub(super) fn path_arg(args: &Value) -> &str {
    args.get("path").and_then(Value::as_str).unwrap_or("")
}

/// Where a file tool's `path` argument points, for the editor's "follow along".
pub(super) fn location(
    args: &Value,
    workspace: &Workspace,
    line: Option<u32>,
) -> Vec<(PathBuf, Option<u32>)> {
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
         Optionally start at 1-based `line` and read at most `limit` lines. Large files are \
         returned a page at a time (400 lines or 40 KB); the result then says which lines it \
         holds and the `line` to continue from."
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
            // Read whole (so the editor's unsaved buffer counts and the total is known), then page.
            let whole = ctx
                .workspace
                .files
                .read_text_file(&path, None, None)
                .await?;
            let page = Page::of(&whole, args.line, args.limit);
            let footer = page.footer(args.line.is_some() || args.limit.is_some());
            let mut text = page.body.to_owned();
            let mut shown = format!("```\n{}\n```", page.body);
            if let Some(footer) = &footer {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(footer);
                shown.push('\n');
                shown.push_str(footer);
            }
            Ok(ToolOutput {
                content: vec![ToolContent::Text(shown)],
                raw_output: json!({
                    "path": path.display(),
                    "content": page.body,
                    "startLine": page.start + 1,
                    "endLine": page.end,
                    "totalLines": page.total,
                }),
                text,
            })
        })
    }
}

/// Most lines `read_file` returns when no `limit` is given.
const PAGE_LINES: usize = 400;

/// Most bytes `read_file` returns in one call, whatever the `limit`.
const PAGE_BYTES: usize = 40 * 1024;

/// One page of a file: which lines, and the text of those lines.
struct Page<'a> {
    body: &'a str,
    /// 0-based index of the first line shown.
    start: usize,
    /// 0-based index one past the last line shown (equals `start` when nothing is shown).
    end: usize,
    /// Lines in the file.
    total: usize,
    /// Set when the one line shown was longer than [`PAGE_BYTES`] and was cut: its length.
    cut_line_bytes: Option<usize>,
    /// True when the byte budget, not the line count, ended the page.
    byte_limited: bool,
}

impl<'a> Page<'a> {
    fn of(text: &'a str, line: Option<u32>, limit: Option<u32>) -> Self {
        let total = text.split_inclusive('\n').count();
        let start = line.map_or(0, |l| (l.max(1) - 1) as usize);
        let max_lines = limit.map_or(PAGE_LINES, |l| l as usize);
        let mut page = Page {
            body: "",
            start,
            end: start,
            total,
            cut_line_bytes: None,
            byte_limited: false,
        };
        let mut offset = 0;
        let mut bytes = 0;
        for (index, one) in text.split_inclusive('\n').enumerate() {
            if index < start {
                offset += one.len();
                continue;
            }
            if page.end - start >= max_lines {
                break;
            }
            if bytes + one.len() > PAGE_BYTES {
                page.byte_limited = true;
                if page.end == start {
                    // A single line longer than the budget: show its beginning.
                    let mut cut = PAGE_BYTES;
                    while !one.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    bytes = cut;
                    page.end += 1;
                    page.cut_line_bytes = Some(one.len());
                }
                break;
            }
            bytes += one.len();
            page.end += 1;
        }
        page.body = &text[offset..offset + bytes];
        page
    }

    /// What the model is told about the page, if anything: nothing for a whole small file read
    /// without `line`/`limit`, otherwise where the page is and how to continue.
    fn footer(&self, explicit: bool) -> Option<String> {
        let remaining = self.total.saturating_sub(self.end);
        if !explicit && remaining == 0 && self.cut_line_bytes.is_none() {
            return None;
        }
        if self.start >= self.total {
            return Some(format!(
                "[the file has {} lines; nothing to show from line {}]",
                self.total,
                self.start + 1
            ));
        }
        let mut footer = format!(
            "[lines {}\u{2013}{} of {}",
            self.start + 1,
            self.end,
            self.total
        );
        if let Some(len) = self.cut_line_bytes {
            footer.push_str(&format!(
                "; line {} is {len} bytes long, only its first {} KB are shown",
                self.end,
                PAGE_BYTES / 1024
            ));
        }
        if remaining == 0 {
            footer.push_str("; end of file]");
        } else {
            if self.byte_limited && self.cut_line_bytes.is_none() {
                footer.push_str(&format!("; stopped at {} KB", PAGE_BYTES / 1024));
            }
            footer.push_str(&format!(
                "; {remaining} more line{}; call read_file with line={} to continue]",
                if remaining == 1 { "" } else { "s" },
                self.end + 1
            ));
        }
        Some(footer)
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

    /// Only inside the workspace: its path resolution refuses anything outside.
    fn effect(&self) -> crate::tools::ToolEffect {
        crate::tools::ToolEffect::WorkspaceEdit
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

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(lines: usize) -> String {
        (1..=lines).map(|n| format!("line {n}\n")).collect()
    }

    #[test]
    fn small_files_come_whole_without_a_footer() {
        let text = numbered(3);
        let page = Page::of(&text, None, None);
        assert_eq!(page.body, text);
        assert_eq!(page.footer(false), None);
        assert_eq!(
            page.footer(true).as_deref(),
            Some("[lines 1\u{2013}3 of 3; end of file]")
        );
    }

    #[test]
    fn long_files_are_paged_by_lines() {
        let text = numbered(1234);
        let page = Page::of(&text, None, None);
        assert_eq!(page.body.lines().count(), PAGE_LINES);
        assert_eq!(
            page.footer(false).as_deref(),
            Some(
                "[lines 1\u{2013}400 of 1234; 834 more lines; call read_file with line=401 to continue]"
            )
        );
        let page = Page::of(&text, Some(1201), Some(100));
        assert!(page.body.starts_with("line 1201\n"));
        assert_eq!(
            page.footer(true).as_deref(),
            Some("[lines 1201\u{2013}1234 of 1234; end of file]")
        );
    }

    #[test]
    fn wide_files_are_paged_by_bytes_and_huge_lines_are_cut() {
        let text = format!("{}\n", "x".repeat(1000)).repeat(100);
        let page = Page::of(&text, None, None);
        assert_eq!(page.end, 40);
        assert!(
            page.footer(false)
                .unwrap()
                .contains("stopped at 40 KB; 60 more lines")
        );

        let text = format!("{}\nshort\n", "é".repeat(30_000));
        let page = Page::of(&text, None, None);
        assert!(page.body.len() <= PAGE_BYTES);
        let footer = page.footer(false).unwrap();
        assert!(footer.contains("line 1 is 60001 bytes long"), "{footer}");
        assert!(footer.contains("call read_file with line=2"), "{footer}");
    }

    #[test]
    fn reading_past_the_end_says_how_long_the_file_is() {
        let text = numbered(5);
        let page = Page::of(&text, Some(9), None);
        assert_eq!(page.body, "");
        assert_eq!(
            page.footer(true).as_deref(),
            Some("[the file has 5 lines; nothing to show from line 9]")
        );
    }
}
