//! What can go wrong acting on the workspace, as one error enum for the workspace layer.

use std::path::PathBuf;

/// What can go wrong acting on the workspace. Each message names the path and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkspaceError {
    /// The path resolves outside the workspace root.
    #[error(
        "{path} is outside the workspace {root}: Punie only reads and writes inside the workspace"
    )]
    OutsideRoot {
        /// The path as given.
        path: String,
        /// The workspace root.
        root: PathBuf,
    },
    /// The path is not usable at all (empty, NUL byte, too long…).
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// The file does not exist.
    #[error("{path} does not exist")]
    NotFound {
        /// The path.
        path: String,
    },
    /// An I/O or editor error.
    #[error("{operation} {path} failed: {reason}")]
    Io {
        /// What was attempted, e.g. "reading".
        operation: &'static str,
        /// The path (or command).
        path: String,
        /// Why it failed.
        reason: String,
    },
    /// The capability is not available in this session.
    #[error("{0}")]
    Unsupported(String),
    /// Refused without a person's answer: by the `--approve` policy, or because nobody can be
    /// asked. The reason says how to allow it.
    #[error("permission refused: {reason}")]
    PermissionRefused {
        /// Why, and how to allow it.
        reason: String,
    },
    /// The editor or the person cancelled the operation.
    #[error("cancelled")]
    Cancelled,
}
