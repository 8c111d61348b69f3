//! Descriptors shared by every session working in the same directory: one root handle and one
//! Landlock ruleset per distinct root, however many sessions use them.
//!
//! Each session used to open its own (two root handles and a ruleset: three descriptors held
//! until the connection ended), so a few thousand `session/new` ran the process out of
//! descriptors. Sessions of an editor almost always share one project directory, so sharing makes
//! an idle session cost no descriptor at all.
//!
//! A shared handle is only reused while the root path still names the same directory (same
//! device and inode, checked with `stat` at each reuse): a directory renamed away and recreated
//! under the same name gets a fresh handle, exactly as if each session opened its own. The
//! caches hold weak references, so a root's descriptors close with its last session.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use cap_std::fs::Dir;

use super::root::{open_root, opening_failed};
use super::sandbox::{Sandbox, SandboxOptions};
use crate::workspace::Result;

/// A directory's identity: device and inode.
type Identity = (u64, u64);

static ROOTS: LazyLock<Mutex<HashMap<PathBuf, Weak<Dir>>>> = LazyLock::new(Mutex::default);

/// What a ruleset is built from: the root (path and identity) and the options.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SandboxKey {
    root: PathBuf,
    identity: Identity,
    landlock: bool,
    writable_paths: Vec<PathBuf>,
}

static SANDBOXES: LazyLock<Mutex<HashMap<SandboxKey, Weak<Sandbox>>>> =
    LazyLock::new(Mutex::default);

/// The handle on the workspace root `root` (an existing directory), shared with every other
/// live user of the same directory under the same path.
pub(super) fn root_dir(root: &Path) -> Result<Arc<Dir>> {
    let wanted = identity_of_path(root)?;
    let mut roots = ROOTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(dir) = roots.get(root).and_then(Weak::upgrade)
        && identity_of_dir(&dir) == Some(wanted)
    {
        return Ok(dir);
    }
    let dir = Arc::new(open_root(root)?);
    // Dead entries go whenever a new root is opened, so the map stays as small as the set of
    // roots in use.
    roots.retain(|_, weak| weak.strong_count() > 0);
    roots.insert(root.to_owned(), Arc::downgrade(&dir));
    Ok(dir)
}

/// The prepared sandbox for commands run in `root` (whose handle is `dir`) with `options`,
/// shared with every other live user of the same root and options.
pub(super) fn sandbox(root: &Path, dir: &Dir, options: &SandboxOptions) -> Result<Arc<Sandbox>> {
    let Some(identity) = identity_of_dir(dir) else {
        // Cannot tell which directory this is: do not share.
        return Ok(Arc::new(Sandbox::new(root, options)?));
    };
    let key = SandboxKey {
        root: root.to_owned(),
        identity,
        landlock: options.landlock,
        writable_paths: options.writable_paths.clone(),
    };
    let mut sandboxes = SANDBOXES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(sandbox) = sandboxes.get(&key).and_then(Weak::upgrade) {
        return Ok(sandbox);
    }
    let sandbox = Arc::new(Sandbox::new(root, options)?);
    sandboxes.retain(|_, weak| weak.strong_count() > 0);
    sandboxes.insert(key, Arc::downgrade(&sandbox));
    Ok(sandbox)
}

fn identity_of_path(root: &Path) -> Result<Identity> {
    let stat = rustix::fs::stat(root).map_err(|err| opening_failed(root, err.into()))?;
    Ok((stat.st_dev as u64, stat.st_ino as u64))
}

fn identity_of_dir(dir: &Dir) -> Option<Identity> {
    let stat = rustix::fs::fstat(dir).ok()?;
    Some((stat.st_dev as u64, stat.st_ino as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_in_one_directory_share_one_handle() {
        let tmp = tempfile::tempdir().unwrap();
        let first = root_dir(tmp.path()).unwrap();
        let second = root_dir(tmp.path()).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
    }

    #[test]
    fn a_recreated_directory_gets_a_fresh_handle() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("project");
        std::fs::create_dir(&root).unwrap();
        let old = root_dir(&root).unwrap();
        std::fs::rename(&root, tmp.path().join("moved")).unwrap();
        std::fs::create_dir(&root).unwrap();
        let new = root_dir(&root).unwrap();
        assert!(
            !Arc::ptr_eq(&old, &new),
            "the old handle names the moved directory"
        );
        assert_eq!(identity_of_dir(&new), identity_of_path(&root).ok());
    }

    #[test]
    fn the_last_user_closes_the_handle() {
        let tmp = tempfile::tempdir().unwrap();
        let weak = Arc::downgrade(&root_dir(tmp.path()).unwrap());
        assert!(weak.upgrade().is_none());
    }
}
