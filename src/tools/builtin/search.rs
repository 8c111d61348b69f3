//! `list_dir`, `glob` and `grep`: finding things in the workspace without reading whole files
//! into the model's small context.
//!
//! They read the **local** workspace (editors offer no search method), so they work in every
//! tier, with ripgrep's own crates: `ignore` walks (respecting `.gitignore`, `.ignore` and git's
//! excludes, even outside a git repository; hidden files and `.git` skipped unless asked),
//! `globset` matches names, `grep-searcher` reads. Results are capped and the notice says how
//! many more there are and how to narrow the search.
//!
//! Confinement: the start path is resolved lexically ([`WorkspacePath`]) and then canonicalized
//! through a `cap_std` handle on the root, so a start path that leads out (through a symlink) is
//! refused; walking never follows symlinks; every file `grep` reads is opened through that handle,
//! which refuses anything that resolves outside the root at open time. What remains is a race in
//! which a directory swapped for a symlink mid-walk lets the walker *list names* outside the
//! root; contents are never read from there.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use futures::future::BoxFuture;
use globset::{GlobBuilder, GlobMatcher};
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{
    BinaryDetection, Searcher, SearcherBuilder, Sink, SinkContext, SinkContextKind, SinkMatch,
};
use ignore::WalkBuilder;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::tools::{Tool, ToolContext, ToolError, ToolOutput, parse_args};
use crate::workspace::{ToolKind, Workspace, WorkspaceError, WorkspacePath};

/// What the search tools report as their provider: they always read the local disk.
const PROVIDER: &str = "local";

/// Most entries `list_dir` and `glob` show.
const MAX_ENTRIES: usize = 200;

/// Most matching lines `grep` shows.
const MAX_MATCHES: usize = 100;

/// Most bytes of output any of the three returns.
const MAX_OUTPUT_BYTES: usize = 50 * 1024;

/// Longest line `grep` shows, in characters; longer ones are cut.
const MAX_LINE_CHARS: usize = 300;

/// Past the cap, entries are still counted (to say how many more), up to this many.
const MAX_COUNTED_ENTRIES: usize = 100_000;

/// Past the cap, matching lines are still counted, up to this many.
const MAX_COUNTED_MATCHES: u64 = 10_000;

/// Default and largest `list_dir` depth.
const DEFAULT_DEPTH: usize = 2;
const MAX_DEPTH: usize = 10;

/// Most context lines `grep` shows around a match.
const MAX_CONTEXT: usize = 10;

/// Where a search starts: the root handle and the start, both canonical.
struct SearchStart {
    dir: Arc<Dir>,
    /// The canonical workspace root.
    root: PathBuf,
    /// The canonical start directory or file (beneath `root`).
    start: PathBuf,
    /// The start relative to the root, for messages ("." for the root).
    display: String,
}

/// Maps an error from a confined operation, recognising cap-std's refusals to leave the root.
fn confined_error(err: io::Error, path: &str, root: &Path) -> WorkspaceError {
    let escape = (err.kind() == io::ErrorKind::PermissionDenied && err.raw_os_error().is_none())
        || err.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error());
    if escape {
        WorkspaceError::OutsideRoot {
            path: path.to_owned(),
            root: root.to_owned(),
        }
    } else if err.kind() == io::ErrorKind::NotFound {
        WorkspaceError::NotFound {
            path: path.to_owned(),
        }
    } else {
        WorkspaceError::Io {
            operation: "searching",
            path: path.to_owned(),
            reason: err.to_string(),
        }
    }
}

impl SearchStart {
    /// Resolves `path` (relative to the workspace root) and checks it stays beneath the root once
    /// symlinks are resolved. Blocking.
    fn open(workspace_root: &Path, path: &WorkspacePath) -> Result<Self, WorkspaceError> {
        let io_error = |err: io::Error| WorkspaceError::Io {
            operation: "opening the workspace",
            path: workspace_root.display().to_string(),
            reason: err.to_string(),
        };
        let dir = Dir::open_ambient_dir(workspace_root, ambient_authority()).map_err(io_error)?;
        let root = std::fs::canonicalize(workspace_root).map_err(io_error)?;
        let relative = if path.relative().as_os_str().is_empty() {
            PathBuf::new()
        } else {
            dir.canonicalize(path.relative())
                .map_err(|err| confined_error(err, &path.display(), workspace_root))?
        };
        let display = if relative.as_os_str().is_empty() {
            ".".to_owned()
        } else {
            relative.to_string_lossy().into_owned()
        };
        Ok(Self {
            start: root.join(&relative),
            dir: Arc::new(dir),
            root,
            display,
        })
    }

    /// A walker from the start: sorted, never following symlinks, honouring ignore files.
    fn walk(&self, max_depth: Option<usize>, hidden: bool) -> ignore::Walk {
        let mut builder = WalkBuilder::new(&self.start);
        builder
            .follow_links(false)
            .hidden(!hidden)
            .ignore(true)
            .git_ignore(true)
            .git_exclude(true)
            .git_global(true)
            .require_git(false)
            .parents(true)
            .max_depth(max_depth)
            .sort_by_file_name(|a, b| a.cmp(b))
            .filter_entry(|entry| {
                !(entry.file_name() == ".git" && entry.file_type().is_some_and(|t| t.is_dir()))
            });
        builder.build()
    }

    /// The entry's path relative to the root, or `None` if it is not lexically beneath it.
    fn relative<'p>(&self, path: &'p Path) -> Option<&'p Path> {
        path.strip_prefix(&self.root).ok()
    }

    fn is_dir(&self) -> bool {
        self.start.is_dir()
    }
}

/// Resolves the tool's `path` argument and opens the search start, off the async threads.
async fn open_start(workspace: &Workspace, path: Option<&str>) -> Result<SearchStart, ToolError> {
    let path = workspace.resolve(path.unwrap_or("."))?;
    let root = workspace.root().to_owned();
    run_blocking(move || SearchStart::open(&root, &path).map_err(ToolError::from)).await
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ToolError::Failed(format!("the search failed: {err}")))?
}

/// True when a glob or path names a hidden component explicitly (e.g. `.github/**`), which
/// counts as asking for hidden files.
fn names_hidden(pattern: &str) -> bool {
    pattern
        .split('/')
        .any(|part| part.starts_with('.') && part != "." && part != "..")
}

/// A glob matched against paths relative to the search start; a pattern without `/` matches
/// file names at any depth.
struct NameGlob {
    matcher: GlobMatcher,
    by_name: bool,
}

impl NameGlob {
    fn new(pattern: &str) -> Result<Self, ToolError> {
        let pattern = pattern.trim().trim_start_matches("./");
        if pattern.is_empty() {
            return Err(ToolError::Failed("the glob pattern is empty".to_owned()));
        }
        if pattern.starts_with('/') {
            return Err(ToolError::Failed(format!(
                "the glob `{pattern}` is absolute; give a pattern relative to the search path, \
                 e.g. `src/**/*.rs`"
            )));
        }
        let matcher = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|err| {
                ToolError::Failed(format!(
                    "invalid glob `{pattern}`: {}; use `*` within a name, `**` across \
                     directories, `{{a,b}}` for alternatives",
                    err.kind()
                ))
            })?
            .compile_matcher();
        Ok(Self {
            matcher,
            by_name: !pattern.contains('/'),
        })
    }

    fn matches(&self, relative_to_start: &Path) -> bool {
        if self.by_name {
            relative_to_start
                .file_name()
                .is_some_and(|name| self.matcher.is_match(name))
        } else {
            self.matcher.is_match(relative_to_start)
        }
    }
}

/// Output with a byte budget.
#[derive(Default)]
struct Capped {
    text: String,
    shown: usize,
    full: bool,
}

impl Capped {
    /// Appends an entry (or a matching line) unless the entry or byte cap is reached; returns
    /// whether it was shown.
    fn push(&mut self, line: &str, max_shown: usize) -> bool {
        if self.shown >= max_shown {
            self.full = true;
        }
        if self.push_extra(line) {
            self.shown += 1;
            true
        } else {
            false
        }
    }

    /// Appends a line that is not an entry (a context line, a separator) unless the output is
    /// full.
    fn push_extra(&mut self, line: &str) -> bool {
        if self.full || self.text.len() + line.len() + 1 > MAX_OUTPUT_BYTES {
            self.full = true;
            return false;
        }
        self.text.push_str(line);
        self.text.push('\n');
        true
    }
}

fn display_path(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn hidden_note(hidden: bool) -> &'static str {
    if hidden {
        " (files ignored by .gitignore are not listed)"
    } else {
        " (files ignored by .gitignore and hidden files are not listed; set hidden to true for hidden files)"
    }
}

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

fn list(start: &SearchStart, depth: usize, hidden: bool, cancel: &CancellationToken) -> ToolOutput {
    let mut out = Capped::default();
    let mut total = 0;
    for entry in start.walk(Some(depth), hidden).flatten() {
        if entry.depth() == 0 {
            continue;
        }
        if cancel.is_cancelled() || total >= MAX_COUNTED_ENTRIES {
            break;
        }
        let Some(relative) = start.relative(entry.path()) else {
            continue;
        };
        total += 1;
        let file_type = entry.file_type();
        let mut line = display_path(relative);
        if file_type.is_some_and(|t| t.is_dir()) {
            line.push('/');
        } else if file_type.is_some_and(|t| t.is_symlink()) {
            match std::fs::read_link(entry.path()) {
                Ok(target) => line.push_str(&format!(" -> {}", target.display())),
                Err(_) => line.push('@'),
            }
        }
        out.push(&line, MAX_ENTRIES);
    }
    let mut text = out.text;
    if total == 0 {
        text = format!("{} is empty{}.", start.display, hidden_note(hidden));
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
        raw_output: json!({"path": start.display, "entries": total, "shown": out.shown}),
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
                        start.display
                    )));
                }
                Ok(list(&start, depth, args.hidden, &cancel))
            })
            .await
        })
    }
}

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
    start: &SearchStart,
    glob: &NameGlob,
    pattern: &str,
    hidden: bool,
    cancel: &CancellationToken,
) -> ToolOutput {
    let mut out = Capped::default();
    let mut total = 0;
    for entry in start.walk(None, hidden).flatten() {
        if cancel.is_cancelled() || total >= MAX_COUNTED_ENTRIES {
            break;
        }
        if entry.file_type().is_none_or(|t| t.is_dir()) {
            continue;
        }
        let (Some(relative), Ok(from_start)) = (
            start.relative(entry.path()),
            entry.path().strip_prefix(&start.start),
        ) else {
            continue;
        };
        if !glob.matches(from_start) {
            continue;
        }
        total += 1;
        out.push(&display_path(relative), MAX_ENTRIES);
    }
    let mut text = out.text;
    if total == 0 {
        text = format!(
            "No files match `{pattern}` in {}{}.",
            start.display,
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
        raw_output: json!({"pattern": pattern, "path": start.display, "files": total, "shown": out.shown}),
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
                        start.display
                    )));
                }
                Ok(find(&start, &glob, &args.pattern, hidden, &cancel))
            })
            .await
        })
    }
}

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

/// Opens a file beneath the root through the capability handle: never a FIFO's blocking open,
/// never outside the root.
fn open_confined(dir: &Dir, relative: &Path) -> io::Result<std::fs::File> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    let file = dir.open_with(relative, &options)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(file.into_std())
}

struct GrepJob {
    start: SearchStart,
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
    for entry in start.walk(None, job.hidden).flatten() {
        if cancel.is_cancelled() || state.matches >= MAX_COUNTED_MATCHES {
            break;
        }
        // Only regular files: symlinks are not followed (as ripgrep does by default).
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Some(relative) = start.relative(entry.path()) else {
            continue;
        };
        if let Some(glob) = &job.glob {
            let from_start = entry
                .path()
                .strip_prefix(&start.start)
                .ok()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(relative);
            if !glob.matches(from_start) {
                continue;
            }
        }
        let Ok(file) = open_confined(&start.dir, relative) else {
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
            start.display,
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
            "path": start.display,
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
    fn globs_without_a_slash_match_names_anywhere() {
        let glob = NameGlob::new("*.rs").unwrap();
        assert!(glob.matches(Path::new("src/deep/main.rs")));
        assert!(!glob.matches(Path::new("src/main.rs.bak")));
        let glob = NameGlob::new("src/*.rs").unwrap();
        assert!(glob.matches(Path::new("src/main.rs")));
        assert!(!glob.matches(Path::new("src/deep/main.rs")));
        let glob = NameGlob::new("./src/**/*.rs").unwrap();
        assert!(glob.matches(Path::new("src/deep/main.rs")));
        assert!(NameGlob::new("/etc/*").is_err());
        assert!(NameGlob::new("a[").is_err());
    }

    #[test]
    fn hidden_components_are_recognised() {
        assert!(names_hidden(".github/**"));
        assert!(names_hidden("**/.env*"));
        assert!(!names_hidden("./src/**"));
        assert!(!names_hidden("../x"));
    }

    #[test]
    fn long_lines_are_cut() {
        let long = "é".repeat(MAX_LINE_CHARS + 5);
        let cut = cut_line(long.as_bytes());
        assert_eq!(cut.chars().count(), MAX_LINE_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(cut_line(b"abc\r\n"), "abc");
    }
}
