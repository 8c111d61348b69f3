//! `grep`: the lines of workspace files that match a regular expression, read with ripgrep's
//! `grep-searcher` (binary files skipped, long lines cut).

use std::io;

use futures::future::BoxFuture;
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{
    BinaryDetection, Searcher, SearcherBuilder, Sink, SinkContext, SinkContextKind, SinkMatch,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::search::{
    Capped, NameGlob, PROVIDER, display_path, hidden_note, names_hidden, open_start, run_blocking,
};
use crate::tools::{Tool, ToolContext, ToolError, ToolOutput, parse_args};
use crate::workspace::local::Walker;
use crate::workspace::{ToolKind, Workspace};

/// Most matching lines `grep` shows.
const MAX_MATCHES: usize = 100;

/// Longest line `grep` shows, in characters; longer ones are cut.
const MAX_LINE_CHARS: usize = 300;

/// Past the cap, matching lines are still counted, up to this many.
const MAX_COUNTED_MATCHES: u64 = 10_000;

/// Most context lines `grep` shows around a match.
const MAX_CONTEXT: usize = 10;

/// Searches file contents for a regular expression.
#[derive(Debug, Clone, Copy, Default)]
pub struct Grep;

#[derive(Deserialize)]
struct GrepArgs {
    pattern: String,
    path: Option<String>,
    glob: Option<String>,
    #[serde(default)]
    case_insensitive: bool,
    context: Option<usize>,
    #[serde(default)]
    hidden: bool,
}

/// What a grep found, across files.
#[derive(Default)]
struct GrepState {
    out: Capped,
    matches: u64,
    files_with_matches: usize,
    unreadable: usize,
    with_context: bool,
}

/// Collects one file's matches into the shared state.
struct FileSink<'s> {
    state: &'s mut GrepState,
    path: &'s str,
    matched: bool,
    /// True once a line of this file was pushed (a match or context).
    started: bool,
}

fn cut_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches(['\n', '\r']);
    match text.char_indices().nth(MAX_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

impl FileSink<'_> {
    fn push(&mut self, is_match: bool, line_number: Option<u64>, bytes: &[u8]) {
        let separator = if is_match { ':' } else { '-' };
        if !self.started && self.state.with_context && !self.state.out.text.is_empty() {
            // A new file's first group: separate it from the previous file's, as ripgrep does.
            self.state.out.push_extra("--");
        }
        self.started = true;
        let line = format!(
            "{}{separator}{}{separator}{}",
            self.path,
            line_number.unwrap_or(0),
            cut_line(bytes)
        );
        if is_match {
            self.state.out.push(&line, MAX_MATCHES);
        } else {
            self.state.out.push_extra(&line);
        }
    }
}

impl Sink for FileSink<'_> {
    type Error = io::Error;

    fn matched(&mut self, _searcher: &Searcher, found: &SinkMatch<'_>) -> Result<bool, io::Error> {
        self.state.matches += 1;
        self.push(true, found.line_number(), found.bytes());
        if !self.matched {
            self.matched = true;
            self.state.files_with_matches += 1;
        }
        Ok(self.state.matches < MAX_COUNTED_MATCHES)
    }

    fn context(
        &mut self,
        _searcher: &Searcher,
        context: &SinkContext<'_>,
    ) -> Result<bool, io::Error> {
        if !matches!(context.kind(), SinkContextKind::Other) {
            self.push(false, context.line_number(), context.bytes());
        }
        Ok(true)
    }

    fn context_break(&mut self, _searcher: &Searcher) -> Result<bool, io::Error> {
        if self.started {
            self.state.out.push_extra("--");
        }
        Ok(true)
    }
}

struct GrepJob {
    start: Walker,
    matcher: RegexMatcher,
    glob: Option<NameGlob>,
    pattern: String,
    context: usize,
    hidden: bool,
    literal_fallback: bool,
}

fn grep(job: &GrepJob, cancel: &CancellationToken) -> ToolOutput {
    let mut searcher = SearcherBuilder::new()
        .line_number(true)
        .before_context(job.context)
        .after_context(job.context)
        .binary_detection(BinaryDetection::quit(b'\x00'))
        .build();
    let mut state = GrepState {
        with_context: job.context > 0,
        ..GrepState::default()
    };
    let start = &job.start;
    for entry in start.entries(None, job.hidden) {
        if cancel.is_cancelled() || state.matches >= MAX_COUNTED_MATCHES {
            break;
        }
        // Only regular files: symlinks are not followed (as ripgrep does by default).
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let relative = entry.relative();
        if let Some(glob) = &job.glob {
            // A file given as `path` is matched by its path from the root.
            let from_start = entry
                .relative_to_start()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(relative);
            if !glob.matches(from_start) {
                continue;
            }
        }
        let Ok(file) = entry.open() else {
            state.unreadable += 1;
            continue;
        };
        let path = display_path(relative);
        let sink = FileSink {
            state: &mut state,
            path: &path,
            matched: false,
            started: false,
        };
        if searcher.search_file(&job.matcher, &file, sink).is_err() {
            state.unreadable += 1;
        }
    }

    let mut text = String::new();
    if job.literal_fallback {
        text.push_str(&format!(
            "[`{}` is not a valid regular expression, so it was searched as plain text]\n",
            job.pattern
        ));
    }
    if state.matches == 0 {
        text.push_str(&format!(
            "No matches for `{}` in {}{}.",
            job.pattern,
            start.display(),
            hidden_note(job.hidden).replace("listed", "searched")
        ));
    } else {
        text.push_str(&state.out.text);
        let shown = state.out.shown as u64;
        if shown < state.matches {
            let total = if state.matches >= MAX_COUNTED_MATCHES {
                format!("more than {}", state.matches)
            } else {
                state.matches.to_string()
            };
            text.push_str(&format!(
                "[{shown} of {total} matching lines shown, in {} file{}; narrow the search with \
                 `path`, `glob` or a more specific pattern]",
                state.files_with_matches,
                if state.files_with_matches == 1 {
                    ""
                } else {
                    "s"
                }
            ));
        }
    }
    if state.unreadable > 0 {
        text.push_str(&format!(
            "\n[{} files could not be read and were skipped]",
            state.unreadable
        ));
    }
    ToolOutput {
        raw_output: json!({
            "pattern": job.pattern,
            "path": start.display(),
            "matches": state.matches,
            "files": state.files_with_matches,
            "shown": state.out.shown,
        }),
        ..ToolOutput::text(text)
    }
}

impl Tool for Grep {
    fn name(&self) -> &str {
        "grep"
    }

    fn description(&self) -> &str {
        "Search file contents for a regular expression `pattern` (Rust regex syntax) under \
         `path` (a directory or file; default: the workspace root). `glob` limits the files \
         searched (e.g. `*.rs`). Shows `path:line:text` for each matching line, with `context` \
         lines around it. Files ignored by .gitignore and hidden files are skipped unless \
         `hidden` is true."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "description": "Regular expression to search for"},
                "path": {"type": "string", "description": "Directory or file to search, relative to the workspace root (default: the root)"},
                "glob": {"type": "string", "description": "Only search files matching this glob, e.g. `*.rs` or `src/**/*.ts`"},
                "case_insensitive": {"type": "boolean", "description": "Ignore case (default false)"},
                "context": {"type": "integer", "minimum": 0, "maximum": MAX_CONTEXT, "description": "Lines of context before and after each match (default 0)"},
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
            "Search `{}`",
            args.get("pattern").and_then(Value::as_str).unwrap_or("")
        )
    }

    fn call<'a>(
        &'a self,
        args: Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let args: GrepArgs = parse_args(self.name(), &args)?;
            if args.pattern.is_empty() {
                return Err(ToolError::Failed(
                    "the pattern is empty; give the text or regular expression to search for"
                        .to_owned(),
                ));
            }
            let build = |fixed: bool| {
                RegexMatcherBuilder::new()
                    .case_insensitive(args.case_insensitive)
                    .fixed_strings(fixed)
                    .line_terminator(Some(b'\n'))
                    .build(&args.pattern)
            };
            // Models often search for code such as `foo(` unescaped: search it literally then.
            let (matcher, literal_fallback) = match build(false) {
                Ok(matcher) => (matcher, false),
                Err(regex_error) => match build(true) {
                    Ok(matcher) => (matcher, true),
                    Err(_) => {
                        return Err(ToolError::Failed(format!(
                            "invalid regular expression `{}`: {regex_error}",
                            args.pattern
                        )));
                    }
                },
            };
            let glob = args.glob.as_deref().map(NameGlob::new).transpose()?;
            let hidden = args.hidden || args.glob.as_deref().is_some_and(names_hidden);
            let start = open_start(&ctx.workspace, args.path.as_deref()).await?;
            let job = GrepJob {
                start,
                matcher,
                glob,
                pattern: args.pattern,
                context: args.context.unwrap_or(0).min(MAX_CONTEXT),
                hidden,
                literal_fallback,
            };
            let cancel = ctx.cancel.clone();
            run_blocking(move || Ok(grep(&job, &cancel))).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut() {
        let long = "é".repeat(MAX_LINE_CHARS + 5);
        let cut = cut_line(long.as_bytes());
        assert_eq!(cut.chars().count(), MAX_LINE_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(cut_line(b"abc\r\n"), "abc");
    }
}
