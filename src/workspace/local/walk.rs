//! Walking the workspace for the search tools (`list_dir`, `glob`, `grep`), confined to the root.
//!
//! The walk uses ripgrep's `ignore` crate: it honours `.gitignore`, `.ignore` and git's excludes
//! (even outside a git repository), skips hidden files unless asked and always skips `.git`.
//!
//! Confinement: the start path is resolved lexically ([`WorkspacePath`]) and then canonicalized
//! through a `cap_std` handle on the root, so a start path that leads out (through a symlink) is
//! refused; walking never follows symlinks; every file read is opened through that handle, which
//! refuses anything that resolves outside the root at open time. What remains is a race in which
//! a directory swapped for a symlink mid-walk lets the walker *list names* outside the root;
//! contents are never read from there.

use std::fs::FileType;
use std::io;
use std::path::{Path, PathBuf};

use cap_std::fs::Dir;
use ignore::WalkBuilder;

use super::root::{canonical_root, map_io_error, open_for_reading, open_root};
use crate::workspace::{Result, WorkspacePath};

/// Where a walk starts: a handle on the root and the start beneath it, both canonical.
pub(crate) struct Walker {
    dir: Dir,
    /// The canonical workspace root.
    root: PathBuf,
    /// The canonical start directory or file (beneath `root`).
    start: PathBuf,
    /// The start relative to the root, for messages ("." for the root).
    display: String,
}

impl Walker {
    /// Resolves `path` (relative to the workspace root) and checks it stays beneath the root once
    /// symlinks are resolved. Blocking.
    pub(crate) fn open(workspace_root: &Path, path: &WorkspacePath) -> Result<Self> {
        let dir = open_root(workspace_root)?;
        let root = canonical_root(workspace_root)?;
        let relative = if path.relative().as_os_str().is_empty() {
            PathBuf::new()
        } else {
            dir.canonicalize(path.relative())
                .map_err(|err| map_io_error(err, "searching", &path.display(), workspace_root))?
        };
        let display = if relative.as_os_str().is_empty() {
            ".".to_owned()
        } else {
            relative.to_string_lossy().into_owned()
        };
        Ok(Self {
            start: root.join(&relative),
            dir,
            root,
            display,
        })
    }

    /// The start relative to the root, for messages ("." for the root).
    pub(crate) fn display(&self) -> &str {
        &self.display
    }

    /// True when the start is a directory (not a file).
    pub(crate) fn is_dir(&self) -> bool {
        self.start.is_dir()
    }

    /// The regular files directly inside the start directory whose names end with `suffix`,
    /// sorted by name, ignore files and hidden names notwithstanding: at most `max` of them,
    /// each opened through the root handle, with how many there were in all. Blocking.
    pub(crate) fn files_in(
        &self,
        suffix: &str,
        max: usize,
    ) -> io::Result<(Vec<(String, std::fs::File)>, usize)> {
        let relative = self.start.strip_prefix(&self.root).unwrap_or(Path::new(""));
        let listed = if relative.as_os_str().is_empty() {
            self.dir.entries()?
        } else {
            self.dir.read_dir(relative)?
        };
        let mut names: Vec<String> = listed
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name.ends_with(suffix))
            .collect();
        names.sort();
        let total = names.len();
        let mut files = Vec::new();
        for name in names.into_iter().take(max) {
            let file = open_for_reading(&self.dir, &relative.join(&name))?;
            if file.metadata()?.is_file() {
                files.push((name, file.into_std()));
            }
        }
        Ok((files, total))
    }

    /// The entries beneath the start (the start itself first, at depth 0), sorted by name, never
    /// following symlinks; `hidden` includes hidden files. Unreadable entries, and any that are
    /// not lexically beneath the root, are skipped.
    pub(crate) fn entries(
        &self,
        max_depth: Option<usize>,
        hidden: bool,
    ) -> impl Iterator<Item = WalkEntry<'_>> {
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
        builder.build().flatten().filter_map(move |entry| {
            let relative = entry.path().strip_prefix(&self.root).ok()?.to_path_buf();
            Some(WalkEntry {
                walker: self,
                entry,
                relative,
            })
        })
    }
}

/// One entry of a walk.
pub(crate) struct WalkEntry<'w> {
    walker: &'w Walker,
    entry: ignore::DirEntry,
    relative: PathBuf,
}

impl WalkEntry<'_> {
    /// How deep below the start it is (0 for the start itself).
    pub(crate) fn depth(&self) -> usize {
        self.entry.depth()
    }

    /// Its type, not following symlinks.
    pub(crate) fn file_type(&self) -> Option<FileType> {
        self.entry.file_type()
    }

    /// Its path relative to the workspace root.
    pub(crate) fn relative(&self) -> &Path {
        &self.relative
    }

    /// Its path relative to the start (empty for the start itself).
    pub(crate) fn relative_to_start(&self) -> Option<&Path> {
        self.entry.path().strip_prefix(&self.walker.start).ok()
    }

    /// Where a symlink points, as written in the link (never followed).
    pub(crate) fn link_target(&self) -> io::Result<PathBuf> {
        std::fs::read_link(self.entry.path())
    }

    /// Opens it for reading through the root handle: never a FIFO's blocking open, never outside
    /// the root, and only if it is a regular file.
    pub(crate) fn open(&self) -> io::Result<std::fs::File> {
        let file = open_for_reading(&self.walker.dir, &self.relative)?;
        if !file.metadata()?.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(file.into_std())
    }
}
