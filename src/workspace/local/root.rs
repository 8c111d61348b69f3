//! The workspace root as a capability handle: the one place the local sandbox opens it, and the
//! one place that reads cap-std's refusals to leave it as [`WorkspaceError::OutsideRoot`].

use std::io;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, File, OpenOptions, OpenOptionsExt};

use crate::workspace::{Result, WorkspaceError, WorkspacePath};

/// Opens the workspace root (an existing directory): every confined open goes through the
/// returned handle, never through an ambient path.
pub(super) fn open_root(root: &Path) -> Result<Dir> {
    Dir::open_ambient_dir(root, ambient_authority()).map_err(|err| opening_failed(root, err))
}

/// The root with its symlinks resolved, so that paths the walker yields can be compared with it.
pub(super) fn canonical_root(root: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(root).map_err(|err| opening_failed(root, err))
}

pub(super) fn opening_failed(root: &Path, err: io::Error) -> WorkspaceError {
    WorkspaceError::Io {
        operation: "opening the workspace",
        path: root.display().to_string(),
        reason: err.to_string(),
    }
}

/// Maps an I/O error from a confined operation to a workspace error, recognising cap-std's
/// refusals (an escape attempt has no OS error code; `EXDEV` is what `openat2` reports).
pub(super) fn map_io_error(
    err: io::Error,
    operation: &'static str,
    path: &str,
    root: &Path,
) -> WorkspaceError {
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
            operation,
            path: path.to_owned(),
            reason: err.to_string(),
        }
    }
}

/// The path of `path` relative to `root`, or a refusal when it is not lexically under it (a
/// [`WorkspacePath`] resolved against another root).
pub(super) fn relative_to_root(path: &WorkspacePath, root: &Path) -> Result<PathBuf> {
    path.absolute()
        .strip_prefix(root)
        .map(PathBuf::from)
        .map_err(|_| WorkspaceError::OutsideRoot {
            path: path.absolute().display().to_string(),
            root: root.to_owned(),
        })
}

/// Opens `relative` beneath `dir` for reading without blocking, so that a FIFO planted in the
/// workspace cannot hang the open.
pub(super) fn open_for_reading(dir: &Dir, relative: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    dir.open_with(relative, &options)
}
