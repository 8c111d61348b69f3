//! `edit_file`: replace an exact piece of a file, so the model sends a few lines instead of the
//! whole file (which small context windows cannot afford, and which models garble when long).
//!
//! The replacement must match exactly once (or every occurrence with `replace_all`). When it
//! does not, the error says why in a way the model can act on: how many matches and where, or
//! that the text differs only in whitespace, or which part of the file is closest.

use std::path::PathBuf;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::files::{location, path_arg};
use crate::tools::{Tool, ToolContext, ToolError, ToolOutput, parse_args};
use crate::workspace::{ToolContent, ToolKind, Workspace, WorkspacePath};

/// Most file lines shown in a "not found" hint.
const HINT_LINES: usize = 30;

/// Most bytes shown in a "not found" hint.
const HINT_BYTES: usize = 4 * 1024;

/// Largest `file lines × old_text lines` product for which the closest region is searched.
const NEAREST_SEARCH_BUDGET: usize = 4_000_000;

/// Replaces an exact piece of text in a workspace file, after the person allows it.
#[derive(Debug, Clone, Copy, Default)]
pub struct EditFile;

#[derive(Deserialize)]
struct EditArgs {
    path: String,
    old_text: String,
    new_text: String,
    #[serde(default)]
    replace_all: bool,
}

/// An edit that applies: the whole new file and where it changed.
#[derive(Debug, PartialEq)]
struct Applied {
    new_text: String,
    replacements: usize,
    /// 1-based line of each replacement in the new text.
    lines: Vec<usize>,
}

/// The 1-based line holding byte `offset` of `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// A line with every run of whitespace collapsed to one space and the ends trimmed.
fn squash(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Lists line numbers for a message, eliding the middle of long lists.
fn list_lines(lines: &[usize]) -> String {
    let shown: Vec<String> = if lines.len() > 10 {
        let mut v: Vec<String> = lines[..8].iter().map(usize::to_string).collect();
        v.push("…".to_owned());
        v.push(lines[lines.len() - 1].to_string());
        v
    } else {
        lines.iter().map(usize::to_string).collect()
    };
    shown.join(", ")
}

/// Lines `first..=last` (1-based) of `text`, cut to the hint budget.
fn excerpt(file_lines: &[&str], first: usize, last: usize) -> String {
    let mut out = String::new();
    for line in file_lines
        .iter()
        .take(last)
        .skip(first - 1)
        .take(HINT_LINES)
    {
        if out.len() + line.len() > HINT_BYTES {
            out.push_str("…\n");
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Why `old_text` was not found, with the nearest part of the file if there is one.
fn not_found(path: &str, text: &str, old: &str) -> ToolError {
    let mut message = format!("old_text was not found in {path}.");
    let file_lines: Vec<&str> = text.lines().collect();
    let old_lines: Vec<String> = {
        let all: Vec<String> = old.lines().map(squash).collect();
        let first = all.iter().position(|l| !l.is_empty());
        let last = all.iter().rposition(|l| !l.is_empty());
        match (first, last) {
            (Some(first), Some(last)) => all[first..=last].to_vec(),
            _ => Vec::new(),
        }
    };
    let m = old_lines.len();
    let n = file_lines.len();
    if m > 0 && m <= n && n.saturating_mul(m) <= NEAREST_SEARCH_BUDGET {
        let squashed: Vec<String> = file_lines.iter().map(|l| squash(l)).collect();
        let exact: Vec<usize> = (0..=n - m)
            .filter(|&j| squashed[j..j + m] == old_lines[..])
            .collect();
        if let Some(&j) = exact.first() {
            let places = if exact.len() == 1 {
                format!("lines {}\u{2013}{}", j + 1, j + m)
            } else {
                let starts: Vec<usize> = exact.iter().map(|j| j + 1).collect();
                format!(
                    "{} places (starting at lines {})",
                    exact.len(),
                    list_lines(&starts)
                )
            };
            message.push_str(&format!(
                " It matches {places} if whitespace is ignored, so the indentation, spaces or \
                 tabs differ. The file has (lines {}\u{2013}{}):\n```\n{}```\nCopy old_text \
                 exactly from the file, whitespace included.",
                j + 1,
                j + m,
                excerpt(&file_lines, j + 1, j + m)
            ));
            return ToolError::Failed(message);
        }
        let non_empty = old_lines.iter().filter(|l| !l.is_empty()).count();
        let mut best = (0, 0);
        for j in 0..n {
            let score = (0..m)
                .filter(|&i| {
                    j + i < n && !old_lines[i].is_empty() && squashed[j + i] == old_lines[i]
                })
                .count();
            if score > best.0 {
                best = (score, j);
            }
        }
        let (score, j) = best;
        if score > 0 && score * 2 >= non_empty {
            let last = (j + m).min(n);
            message.push_str(&format!(
                " The closest part of the file is lines {}\u{2013}{last} ({score} of {non_empty} \
                 lines equal, ignoring whitespace):\n```\n{}```\nRead the file again if it may have \
                 changed, then copy old_text exactly.",
                j + 1,
                excerpt(&file_lines, j + 1, last)
            ));
            return ToolError::Failed(message);
        }
    }
    message.push_str(
        " Read the file (read_file) and copy old_text exactly as it appears, whitespace included.",
    );
    ToolError::Failed(message)
}

/// Applies the edit to `text`, or explains why it does not apply.
fn apply(
    path: &str,
    text: &str,
    old: &str,
    new: &str,
    replace_all: bool,
) -> Result<Applied, ToolError> {
    if old.is_empty() {
        return Err(ToolError::Failed(format!(
            "old_text is empty; give the exact text to replace in {path}, or use write_file to \
             create a file or replace it whole"
        )));
    }
    if old == new {
        return Err(ToolError::Failed(
            "old_text and new_text are the same, so there is nothing to change".to_owned(),
        ));
    }
    // Models write "\n"; a file with Windows line endings still matches, and keeps its endings.
    let (old, new) = if !text.contains(old) && text.contains("\r\n") && !old.contains('\r') {
        (old.replace('\n', "\r\n"), new.replace('\n', "\r\n"))
    } else {
        (old.to_owned(), new.to_owned())
    };
    let offsets: Vec<usize> = text.match_indices(&old).map(|(i, _)| i).collect();
    match offsets.len() {
        0 => return Err(not_found(path, text, &old)),
        1 => {}
        count if !replace_all => {
            let lines: Vec<usize> = offsets.iter().map(|&o| line_of(text, o)).collect();
            return Err(ToolError::Failed(format!(
                "old_text occurs {count} times in {path} (at lines {}); include more of the \
                 surrounding lines in old_text so that it matches exactly once, or set \
                 replace_all to true to replace every occurrence",
                list_lines(&lines)
            )));
        }
        _ => {}
    }
    let mut new_text = String::with_capacity(text.len() + offsets.len() * new.len());
    let mut lines = Vec::with_capacity(offsets.len());
    let mut last = 0;
    for &offset in &offsets {
        new_text.push_str(&text[last..offset]);
        lines.push(line_of(&new_text, new_text.len()));
        new_text.push_str(&new);
        last = offset + old.len();
    }
    new_text.push_str(&text[last..]);
    Ok(Applied {
        new_text,
        replacements: offsets.len(),
        lines,
    })
}

impl EditFile {
    /// Reads the file and applies the edit to its current content.
    async fn prepare(
        &self,
        args: &EditArgs,
        ctx: &ToolContext,
    ) -> Result<(WorkspacePath, String, Applied), ToolError> {
        let path = ctx.workspace.resolve(&args.path)?;
        let text = ctx
            .workspace
            .files
            .read_text_file(&path, None, None)
            .await?;
        let applied = apply(
            &path.display(),
            &text,
            &args.old_text,
            &args.new_text,
            args.replace_all,
        )?;
        Ok((path, text, applied))
    }
}

impl Tool for EditFile {
    fn name(&self) -> &str {
        "edit_file"
    }

    fn description(&self) -> &str {
        "Edit a text file by replacing `old_text` with `new_text`. `old_text` must match the \
         file exactly (whitespace included) and exactly once; include a few surrounding lines \
         to make it unique, or set `replace_all` to replace every occurrence. Prefer this to \
         write_file for changes to existing files. The user is asked to approve the change."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "File path, relative to the workspace root"},
                "old_text": {"type": "string", "description": "The exact text to replace"},
                "new_text": {"type": "string", "description": "The text to put in its place"},
                "replace_all": {"type": "boolean", "description": "Replace every occurrence (default false)"}
            },
            "required": ["path", "old_text", "new_text"]
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
        format!("Edit {}", path_arg(args))
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
            let args: EditArgs = parse_args(self.name(), args)?;
            let (path, old_text, applied) = self.prepare(&args, ctx).await?;
            Ok(vec![ToolContent::Diff {
                path: path.absolute().to_owned(),
                old_text: Some(old_text),
                new_text: applied.new_text,
            }])
        })
    }

    fn call<'a>(
        &'a self,
        args: Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let args: EditArgs = parse_args(self.name(), &args)?;
            // Re-read: the file may have changed while the person looked at the preview.
            let (path, old_text, applied) =
                self.prepare(&args, ctx)
                    .await
                    .map_err(|error| match error {
                        ToolError::Failed(message) => ToolError::Failed(format!(
                            "{message} (the file may have changed since the edit was shown)"
                        )),
                        other => other,
                    })?;
            ctx.workspace
                .files
                .write_text_file(&path, &applied.new_text)
                .await?;
            let where_ = if applied.replacements == 1 {
                format!("at line {}", applied.lines[0])
            } else {
                format!("at lines {}", list_lines(&applied.lines))
            };
            let text = format!(
                "Edited {}: replaced {} occurrence{} {where_}.",
                path.display(),
                applied.replacements,
                if applied.replacements == 1 { "" } else { "s" },
            );
            Ok(ToolOutput {
                text,
                content: vec![ToolContent::Diff {
                    path: path.absolute().to_owned(),
                    old_text: Some(old_text),
                    new_text: applied.new_text,
                }],
                raw_output: json!({
                    "path": path.display(),
                    "replacements": applied.replacements,
                    "lines": applied.lines,
                }),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(result: Result<Applied, ToolError>) -> String {
        match result {
            Err(ToolError::Failed(message)) => message,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn a_unique_match_is_replaced() {
        let applied = apply("f", "a\nb\nc\n", "b\n", "B\nB2\n", false).unwrap();
        assert_eq!(applied.new_text, "a\nB\nB2\nc\n");
        assert_eq!(applied.lines, vec![2]);
    }

    #[test]
    fn several_matches_need_context_or_replace_all() {
        let text = "x = 1\ny = 1\nz = 1\n";
        let message = failure(apply("f", text, "= 1", "= 2", false));
        assert!(message.contains("occurs 3 times"), "{message}");
        assert!(message.contains("lines 1, 2, 3"), "{message}");
        let applied = apply("f", text, "= 1", "= 2", true).unwrap();
        assert_eq!(applied.new_text, "x = 2\ny = 2\nz = 2\n");
        assert_eq!(applied.replacements, 3);
    }

    #[test]
    fn whitespace_differences_are_pointed_out() {
        let text = "fn main() {\n    let x = 1;\n    let y = 2;\n}\n";
        let message = failure(apply("f", text, "let x = 1;\nlet y = 2;", "", false));
        assert!(message.contains("if whitespace is ignored"), "{message}");
        assert!(message.contains("lines 2\u{2013}3"), "{message}");
        assert!(
            message.contains("    let x = 1;\n    let y = 2;\n"),
            "{message}"
        );
    }

    #[test]
    fn the_nearest_region_is_shown() {
        let text = "a\nfn one() {\n    work();\n}\nz\n";
        let message = failure(apply("f", text, "fn one() {\n    rest();\n}", "", false));
        assert!(
            message.contains("closest part of the file is lines 2\u{2013}4"),
            "{message}"
        );
        let message = failure(apply("f", text, "nothing like it", "", false));
        assert!(message.contains("Read the file"), "{message}");
    }

    #[test]
    fn windows_line_endings_are_kept() {
        let applied = apply("f", "a\r\nb\r\nc\r\n", "a\nb\n", "A\nB\n", false).unwrap();
        assert_eq!(applied.new_text, "A\r\nB\r\nc\r\n");
    }

    #[test]
    fn empty_or_identical_texts_are_refused() {
        assert!(failure(apply("f", "abc", "", "x", false)).contains("write_file"));
        assert!(failure(apply("f", "abc", "b", "b", false)).contains("nothing to change"));
    }
}
