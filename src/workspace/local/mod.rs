//! The local sandbox: files, commands and permission prompts served on this machine, confined to
//! the workspace root, for every capability the editor does not offer.
//!
//! What confines what:
//!
//! - **Files** ([`LocalFileSystem`]): every open goes through a `cap_std::fs::Dir` handle on the
//!   root (on Linux `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`, elsewhere a
//!   component-by-component walk), so `..`, absolute symlinks, symlinks leading out and symlinks
//!   swapped in mid-operation are refused by the kernel at open time, not by string checks.
//!   Writes are atomic (temporary file in the target's directory, fsync, rename, fsync).
//! - **Commands** ([`LocalTerminals`]): each runs in its own process group (killed whole), dies
//!   with Punie (`PR_SET_PDEATHSIG`), starts in a directory verified to be beneath the root, and
//!   on Linux may only *write* beneath the root, the temp directory and a few devices (Landlock),
//!   while reading and executing stay allowed everywhere.
//! - **Walks** (`Walker`, for the search tools): the start is canonicalized through the same
//!   handle, symlinks are never followed, and every file searched is opened through the handle.
//! - **Descriptors**: sessions in the same directory share one root handle and one Landlock
//!   ruleset (`shared`), so an idle session holds no descriptor of its own.
//! - **Permissions** ([`PolicyPermissions`], [`TtyPermissions`]): a fixed `--approve` policy, or
//!   a question to the person at the terminal, or a refusal that says how to allow.

mod files;
mod output;
mod permissions;
mod root;
mod sandbox;
mod shared;
mod stamped;
mod terminals;
mod walk;

use std::path::PathBuf;
use std::sync::Arc;

pub use files::{LocalFileSystem, MAX_READ_BYTES};
pub use permissions::{ApprovePolicy, PolicyPermissions, TtyPermissions, local_permissions};
pub use sandbox::{LandlockStatus, SandboxOptions, landlock_scopes_supported};
pub use stamped::{FileStamp, StampedText, read_beneath, stat_beneath};
pub use terminals::{DEFAULT_OUTPUT_BYTE_LIMIT, LocalTerminals};
pub(crate) use walk::Walker;

use super::{Result, Workspace};

/// How to build a fully local workspace with [`local_workspace`].
#[derive(Clone, Debug, Default)]
pub struct LocalOptions {
    /// How commands are confined.
    pub sandbox: SandboxOptions,
    /// The `--approve` policy, if one was given; it wins over asking.
    pub approve: Option<ApprovePolicy>,
    /// True when a person is at the terminal and may be asked (e.g. `punie ask` in a TTY).
    pub interactive: bool,
}

/// Builds a workspace whose files, commands and permissions are all served locally, confined to
/// `root` (which must be an existing directory; it is made absolute against the current
/// directory if needed).
pub fn local_workspace(root: PathBuf, options: LocalOptions) -> Result<Workspace> {
    let root = if root.is_absolute() {
        root
    } else {
        std::path::absolute(&root).map_err(|err| super::WorkspaceError::Io {
            operation: "resolving",
            path: root.display().to_string(),
            reason: err.to_string(),
        })?
    };
    let files = LocalFileSystem::new(root.clone())?;
    let terminals = LocalTerminals::new(root.clone(), options.sandbox)?;
    let permissions = local_permissions(options.approve, options.interactive);
    Ok(Workspace::new(
        root,
        Arc::new(files),
        Arc::new(terminals),
        permissions,
    ))
}
