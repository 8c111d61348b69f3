//! Reading and writing text files beneath the workspace root, through a capability handle on the
//! root so that the kernel (not a string check) refuses every way out.
//!
//! Behaviour worth knowing:
//!
//! - Symlinks are followed only while they stay beneath the root; absolute symlinks, `..` above
//!   the root and `/proc` magic links are refused with [`WorkspaceError::OutsideRoot`].
//! - Reads refuse text that is not valid UTF-8 (a clear error, never silently altered bytes that
//!   an edit would then write back), files that are not regular files (FIFOs, devices) and files
//!   larger than [`MAX_READ_BYTES`].
//! - Writes are atomic: a temporary `.punie-tmp-…` file is created in the target's own directory,
//!   written, fsynced, given the old file's permissions (and owner, when allowed), renamed over
//!   the target, then the directory is fsynced. A crash leaves either the old or the new content
//!   under the target's name; at worst a stray `.punie-tmp-…` file remains beside it.
//! - Writing to a symlink writes to the file it points to (when that is beneath the root); a
//!   dangling symlink is refused.
//! - A hard link is a directory entry inside the root, so a read through it reads the shared
//!   file; a write *replaces* the link with a new file, so a file outside the root that shares
//!   the inode is never modified.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use futures::future::BoxFuture;

use super::root::{map_io_error, open_for_reading, relative_to_root};
use super::shared;
use crate::workspace::{FileSystem, Result, WorkspaceError, WorkspacePath};

/// Largest file [`LocalFileSystem`] reads whole, in bytes (256 MiB): larger files are refused
/// rather than exhausting memory.
pub const MAX_READ_BYTES: u64 = 256 * 1024 * 1024;

/// Prefix of the temporary files atomic writes create beside their target.
const TEMP_PREFIX: &str = ".punie-tmp-";

/// Files served from the local disk, confined to the workspace root at open time.
#[derive(Clone, Debug)]
pub struct LocalFileSystem {
    root: PathBuf,
    dir: Arc<Dir>,
}

impl LocalFileSystem {
    /// Opens the workspace root (an existing directory, absolute path). The handle is shared
    /// with every other user of the same directory, so another session there costs no
    /// descriptor.
    pub fn new(root: PathBuf) -> Result<Self> {
        let dir = shared::root_dir(&root)?;
        Ok(Self { root, dir })
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn confined(&self, path: &WorkspacePath) -> Result<Confined> {
        let relative = relative_to_root(path, &self.root)?;
        Ok(Confined {
            dir: Arc::clone(&self.dir),
            root: self.root.clone(),
            display: path.absolute().display().to_string(),
            relative,
        })
    }
}

impl FileSystem for LocalFileSystem {
    fn read_text_file<'a>(
        &'a self,
        path: &'a WorkspacePath,
        line: Option<u32>,
        limit: Option<u32>,
    ) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let confined = self.confined(path)?;
            let text = run_blocking(move || confined.read()).await?;
            Ok(select_lines(&text, line, limit))
        })
    }

    fn write_text_file<'a>(
        &'a self,
        path: &'a WorkspacePath,
        content: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let confined = self.confined(path)?;
            let content = content.to_owned();
            run_blocking(move || confined.write(content.as_bytes())).await
        })
    }

    fn provider(&self) -> &'static str {
        "local"
    }
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| WorkspaceError::Io {
            operation: "running",
            path: "a file operation".to_owned(),
            reason: err.to_string(),
        })?
}

/// One operation's view: the root handle and the path relative to it.
struct Confined {
    dir: Arc<Dir>,
    root: PathBuf,
    display: String,
    relative: PathBuf,
}

impl Confined {
    fn error(&self, operation: &'static str, err: std::io::Error) -> WorkspaceError {
        map_io_error(err, operation, &self.display, &self.root)
    }

    fn io(&self, operation: &'static str, reason: impl Into<String>) -> WorkspaceError {
        WorkspaceError::Io {
            operation,
            path: self.display.clone(),
            reason: reason.into(),
        }
    }

    fn read(&self) -> Result<String> {
        let operation = "reading";
        if self.relative.as_os_str().is_empty() {
            return Err(self.io(operation, "it is a directory (the workspace root)"));
        }
        let mut file = open_for_reading(&self.dir, &self.relative)
            .map_err(|err| self.error(operation, err))?;
        let metadata = file.metadata().map_err(|err| self.error(operation, err))?;
        if metadata.is_dir() {
            return Err(self.io(operation, "it is a directory"));
        }
        if !metadata.is_file() {
            return Err(self.io(
                operation,
                "it is not a regular file (a device, FIFO or socket)",
            ));
        }
        if metadata.len() > MAX_READ_BYTES {
            return Err(self.io(
                operation,
                format!(
                    "it is {} bytes, more than the {} bytes Punie reads at once",
                    metadata.len(),
                    MAX_READ_BYTES
                ),
            ));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
        std::io::Read::by_ref(&mut file)
            .take(MAX_READ_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|err| self.error(operation, err))?;
        if bytes.len() as u64 > MAX_READ_BYTES {
            return Err(self.io(operation, "it grew past the size Punie reads at once"));
        }
        String::from_utf8(bytes).map_err(|err| {
            self.io(
                operation,
                format!(
                    "it is not UTF-8 text (invalid byte at offset {}); Punie reads and edits text files only",
                    err.utf8_error().valid_up_to()
                ),
            )
        })
    }

    fn write(&self, content: &[u8]) -> Result<()> {
        let operation = "writing";
        let mut target = self.relative.clone();
        // At most one hop: a symlink is replaced by its (confined) canonical target, which has no
        // symlinks left unless someone swaps one in meanwhile, which is then refused.
        for hop in 0..2 {
            let (parent, name) =
                split_parent(&target).ok_or_else(|| WorkspaceError::InvalidPath {
                    path: self.display.clone(),
                    reason: "it names a directory, not a file".to_owned(),
                })?;
            let parent_dir = if parent.as_os_str().is_empty() {
                self.dir
                    .try_clone()
                    .map_err(|err| self.error(operation, err))?
            } else {
                if let Err(err) = self.dir.create_dir_all(&parent) {
                    // cap-std reports an existing symlink that leads out as "already exists";
                    // opening the parent says what is really wrong (usually: outside the root).
                    return Err(match self.dir.open_dir(&parent) {
                        Err(open_err) => self.error(operation, open_err),
                        Ok(_) => self.error("creating the parent directories of", err),
                    });
                }
                self.dir
                    .open_dir(&parent)
                    .map_err(|err| self.error(operation, err))?
            };
            let existing = match parent_dir.symlink_metadata(&name) {
                Ok(metadata) => Some(metadata),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
                Err(err) => return Err(self.error(operation, err)),
            };
            match existing {
                Some(metadata) if metadata.is_symlink() => {
                    if hop > 0 {
                        return Err(self.io(
                            operation,
                            "it changed into a symbolic link during the write",
                        ));
                    }
                    target = self.dir.canonicalize(&target).map_err(|err| {
                        if err.kind() == std::io::ErrorKind::NotFound {
                            self.io(
                                operation,
                                "it is a symbolic link to a file that does not exist",
                            )
                        } else {
                            self.error(operation, err)
                        }
                    })?;
                }
                Some(metadata) if metadata.is_dir() => {
                    return Err(self.io(operation, "it is a directory"));
                }
                Some(metadata) if !metadata.is_file() => {
                    return Err(self.io(
                        operation,
                        "it is not a regular file (a device, FIFO or socket)",
                    ));
                }
                existing => {
                    return write_atomically(&parent_dir, &name, content, existing.as_ref())
                        .map_err(|err| self.error(operation, err));
                }
            }
        }
        Err(self.io(operation, "too many symbolic links"))
    }
}

/// Splits a relative path into its parent and final normal component.
fn split_parent(path: &Path) -> Option<(PathBuf, PathBuf)> {
    match path.components().next_back()? {
        Component::Normal(name) => Some((
            path.parent().map(Path::to_path_buf).unwrap_or_default(),
            PathBuf::from(name),
        )),
        _ => None,
    }
}

/// Writes `content` to `name` in `dir` so that readers only ever see the old or the new bytes.
fn write_atomically(
    dir: &Dir,
    name: &Path,
    content: &[u8],
    existing: Option<&cap_std::fs::Metadata>,
) -> std::io::Result<()> {
    let (temp_name, mut file) = create_temp_file(dir, existing.is_some())?;
    let result = (|| {
        file.write_all(content)?;
        if let Some(metadata) = existing {
            preserve_owner_and_mode(&file, metadata)?;
        }
        file.sync_all()?;
        drop(file);
        dir.rename(&temp_name, dir, name)?;
        // The rename is durable once the directory is: `Dir` handles are `O_PATH`, which cannot
        // be fsynced, so open the directory itself for that.
        let mut read = OpenOptions::new();
        read.read(true);
        rustix::fs::fsync(dir.open_with(".", &read)?)?;
        Ok(())
    })();
    if result.is_err() {
        // Best effort: the temporary file may already have been renamed.
        let _ = dir.remove_file(&temp_name);
    }
    result
}

/// Creates a fresh `.punie-tmp-…` file in `dir`, private (0600) when it will replace an existing
/// file (whose mode is applied before the rename), or with the usual 0666-minus-umask otherwise.
fn create_temp_file(
    dir: &Dir,
    replaces_existing: bool,
) -> std::io::Result<(String, cap_std::fs::File)> {
    let mode = if replaces_existing { 0o600 } else { 0o666 };
    let mut last_error = None;
    for _ in 0..8 {
        let name = format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let mut options = OpenOptions::new();
        options.write(true).create_new(true).mode(mode);
        match dir.open_with(&name, &options) {
            Ok(file) => return Ok((name, file)),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(err),
            Err(err) => return Err(err),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("could not create a temporary file")))
}

/// Gives the new file the old one's owner (when the process may) and permission bits.
fn preserve_owner_and_mode(
    file: &cap_std::fs::File,
    old: &cap_std::fs::Metadata,
) -> std::io::Result<()> {
    use cap_std::fs::MetadataExt;
    use rustix::fs::{Gid, Uid};
    let current = file.metadata()?;
    if current.uid() != old.uid() || current.gid() != old.gid() {
        // Only root (or the owner, for the group) may do this; otherwise keep our ownership.
        let _ = rustix::fs::fchown(
            file,
            Some(Uid::from_raw(old.uid())),
            Some(Gid::from_raw(old.gid())),
        );
    }
    file.set_permissions(old.permissions())
}

/// Keeps `limit` lines starting at the 1-based `line` (0 counts as 1), line endings intact.
fn select_lines(text: &str, line: Option<u32>, limit: Option<u32>) -> String {
    if line.is_none() && limit.is_none() {
        return text.to_owned();
    }
    let skip = line.map_or(0, |l| l.saturating_sub(1) as usize);
    let take = limit.map_or(usize::MAX, |l| l as usize);
    text.split_inclusive('\n').skip(skip).take(take).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based_and_keep_their_endings() {
        let text = "a\nb\nc\nd";
        assert_eq!(select_lines(text, None, None), text);
        assert_eq!(select_lines(text, Some(2), Some(2)), "b\nc\n");
        assert_eq!(select_lines(text, Some(0), Some(1)), "a\n");
        assert_eq!(select_lines(text, Some(4), None), "d");
        assert_eq!(select_lines(text, Some(9), None), "");
        assert_eq!(select_lines(text, None, Some(0)), "");
    }

    #[test]
    fn split_parent_needs_a_file_name() {
        assert_eq!(
            split_parent(Path::new("a/b.txt")),
            Some((PathBuf::from("a"), PathBuf::from("b.txt")))
        );
        assert_eq!(
            split_parent(Path::new("b.txt")),
            Some((PathBuf::new(), PathBuf::from("b.txt")))
        );
        assert_eq!(split_parent(Path::new("")), None);
    }
}
