//! What `list_dir`, `glob` and `grep` share: finding things in the workspace without reading
//! whole files into the model's small context.
//!
//! They read the **local** workspace (editors offer no search method), so they work in every
//! tier. The walk and its confinement belong to the local sandbox (`workspace::local`'s walker);
//! here are the argument handling and the output: `globset` matches names, and results are capped
//! with a notice that says how many more there are and how to narrow the search.

use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};

use crate::tools::ToolError;
use crate::workspace::Workspace;
use crate::workspace::local::Walker;

/// What the search tools report as their provider: they always read the local disk.
pub(super) const PROVIDER: &str = "local";

/// Most entries `list_dir` and `glob` show.
pub(super) const MAX_ENTRIES: usize = 200;

/// Most bytes of output any of the three returns.
const MAX_OUTPUT_BYTES: usize = 50 * 1024;

/// Past the cap, entries are still counted (to say how many more), up to this many.
pub(super) const MAX_COUNTED_ENTRIES: usize = 100_000;

/// Resolves the tool's `path` argument and opens the walk's start, off the async threads.
pub(super) async fn open_start(
    workspace: &Workspace,
    path: Option<&str>,
) -> Result<Walker, ToolError> {
    let path = workspace.resolve(path.unwrap_or("."))?;
    let root = workspace.root().to_owned();
    run_blocking(move || Walker::open(&root, &path).map_err(ToolError::from)).await
}

/// Runs a blocking walk on the blocking pool.
pub(super) async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ToolError::Failed(format!("the search failed: {err}")))?
}

/// True when a glob or path names a hidden component explicitly (e.g. `.github/**`), which
/// counts as asking for hidden files.
pub(super) fn names_hidden(pattern: &str) -> bool {
    pattern
        .split('/')
        .any(|part| part.starts_with('.') && part != "." && part != "..")
}

/// A glob matched against paths relative to the search start; a pattern without `/` matches
/// file names at any depth.
pub(super) struct NameGlob {
    matcher: GlobMatcher,
    by_name: bool,
}

impl NameGlob {
    pub(super) fn new(pattern: &str) -> Result<Self, ToolError> {
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

    pub(super) fn matches(&self, relative_to_start: &Path) -> bool {
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
pub(super) struct Capped {
    pub(super) text: String,
    pub(super) shown: usize,
    full: bool,
}

impl Capped {
    /// Appends an entry (or a matching line) unless the entry or byte cap is reached; returns
    /// whether it was shown.
    pub(super) fn push(&mut self, line: &str, max_shown: usize) -> bool {
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
    pub(super) fn push_extra(&mut self, line: &str) -> bool {
        if self.full || self.text.len() + line.len() + 1 > MAX_OUTPUT_BYTES {
            self.full = true;
            return false;
        }
        self.text.push_str(line);
        self.text.push('\n');
        true
    }
}

pub(super) fn display_path(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

pub(super) fn hidden_note(hidden: bool) -> &'static str {
    if hidden {
        " (files ignored by .gitignore are not listed)"
    } else {
        " (files ignored by .gitignore and hidden files are not listed; set hidden to true for hidden files)"
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
}
