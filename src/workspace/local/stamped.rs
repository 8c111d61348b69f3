//! Small files read with their change stamp through a handle on a root directory: how project
//! instructions (`AGENTS.md`) are read, so that each prompt checks them with one confined `stat`
//! and re-reads only what changed. A symlink that leads out of the root is refused like any
//! other escape ([`WorkspaceError::OutsideRoot`]).

use std::io::Read;
use std::path::Path;

use cap_std::fs::MetadataExt;

use super::root::{map_io_error, open_for_reading};
use super::shared;
use crate::workspace::{Result, WorkspaceError};

/// What changes when a file is edited or replaced: its size, modification time and identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    len: u64,
    modified: (i64, i64),
    identity: (u64, u64),
}

impl FileStamp {
    fn of(metadata: &cap_std::fs::Metadata) -> Self {
        Self {
            len: metadata.len(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
            identity: (metadata.dev(), metadata.ino()),
        }
    }
}

/// A file's text (at most the bytes asked for) and the stamp it had when read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StampedText {
    /// The text; bytes that are not UTF-8 are replaced.
    pub text: String,
    /// The file's stamp.
    pub stamp: FileStamp,
    /// Whether the file was longer than the bytes read.
    pub truncated: bool,
}

/// The stamp of the regular file `relative` beneath `root`; `None` when there is none (or it is
/// a directory, a FIFO…). Symlinks are followed while they stay beneath `root`.
pub fn stat_beneath(root: &Path, relative: &Path) -> Result<Option<FileStamp>> {
    let dir = shared::root_dir(root)?;
    let display = root.join(relative).display().to_string();
    match dir.metadata(relative) {
        Ok(metadata) if metadata.is_file() => Ok(Some(FileStamp::of(&metadata))),
        Ok(_) => Ok(None),
        Err(err) => match map_io_error(err, "checking", &display, root) {
            WorkspaceError::NotFound { .. } => Ok(None),
            other => Err(other),
        },
    }
}

/// Reads at most `max_bytes` of the regular file `relative` beneath `root`.
pub fn read_beneath(root: &Path, relative: &Path, max_bytes: u64) -> Result<StampedText> {
    let dir = shared::root_dir(root)?;
    let display = root.join(relative).display().to_string();
    let failed = |err| map_io_error(err, "reading", &display, root);
    let file = open_for_reading(&dir, relative).map_err(failed)?;
    let metadata = file.metadata().map_err(failed)?;
    if !metadata.is_file() {
        return Err(WorkspaceError::Io {
            operation: "reading",
            path: display.clone(),
            reason: "it is not a regular file".to_owned(),
        });
    }
    let mut bytes = Vec::new();
    file.take(max_bytes)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    Ok(StampedText {
        text: String::from_utf8_lossy(&bytes).into_owned(),
        stamp: FileStamp::of(&metadata),
        truncated: metadata.len() > max_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_changes_the_stamp_and_an_escape_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("project");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("AGENTS.md"), "one").unwrap();
        let first = stat_beneath(&root, Path::new("AGENTS.md"))
            .unwrap()
            .unwrap();
        let read = read_beneath(&root, Path::new("AGENTS.md"), 2).unwrap();
        assert_eq!((read.text.as_str(), read.truncated), ("on", true));
        assert_eq!(read.stamp, first);
        std::fs::write(root.join("AGENTS.md"), "two!").unwrap();
        let second = stat_beneath(&root, Path::new("AGENTS.md"))
            .unwrap()
            .unwrap();
        assert_ne!(first, second);
        assert_eq!(stat_beneath(&root, Path::new("CLAUDE.md")).unwrap(), None);

        std::fs::write(tmp.path().join("secret.md"), "outside").unwrap();
        std::os::unix::fs::symlink("../secret.md", root.join("GEMINI.md")).unwrap();
        assert!(matches!(
            read_beneath(&root, Path::new("GEMINI.md"), 100),
            Err(WorkspaceError::OutsideRoot { .. })
        ));
        assert!(stat_beneath(&root, Path::new("GEMINI.md")).is_err());
    }
}
