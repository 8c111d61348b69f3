//! Lexical resolution of tool-supplied paths against the workspace root.
//!
//! This is the first line of defence (it refuses `..` escapes, foreign absolute paths and NUL
//! bytes before anything touches the disk or the editor); implementations that open files must
//! still enforce the boundary at open time, because symlinks are invisible to a lexical check.

use std::path::{Component, Path, PathBuf};

use super::error::WorkspaceError;

/// Longest path Punie accepts, in bytes (Linux's `PATH_MAX`).
const MAX_PATH_BYTES: usize = 4096;

/// A path inside the workspace: absolute, normalised, and lexically under the root.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkspacePath {
    absolute: PathBuf,
    relative: PathBuf,
}

impl WorkspacePath {
    /// Resolves `path` (relative to `root`, or absolute) or refuses it.
    pub fn resolve(root: &Path, path: &str) -> Result<Self, WorkspaceError> {
        let invalid = |reason: &str| WorkspaceError::InvalidPath {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        if path.contains('\0') {
            return Err(invalid("it contains a NUL byte"));
        }
        if path.len() > MAX_PATH_BYTES {
            return Err(invalid("it is longer than 4096 bytes"));
        }
        let outside = || WorkspaceError::OutsideRoot {
            path: path.to_owned(),
            root: root.to_owned(),
        };
        let candidate = Path::new(path);
        let relative_to_root = if candidate.is_absolute() {
            candidate.strip_prefix(root).map_err(|_| outside())?
        } else {
            candidate
        };
        let mut relative = PathBuf::new();
        for component in relative_to_root.components() {
            match component {
                Component::CurDir => {}
                Component::Normal(part) => relative.push(part),
                Component::ParentDir => {
                    if !relative.pop() {
                        return Err(outside());
                    }
                }
                Component::RootDir | Component::Prefix(_) => return Err(outside()),
            }
        }
        Ok(Self {
            absolute: root.join(&relative),
            relative,
        })
    }

    /// The absolute path (root joined with the relative part).
    pub fn absolute(&self) -> &Path {
        &self.absolute
    }

    /// The path relative to the root; empty for the root itself.
    pub fn relative(&self) -> &Path {
        &self.relative
    }

    /// The path for display: relative to the root, or `.` for the root.
    pub fn display(&self) -> String {
        if self.relative.as_os_str().is_empty() {
            ".".to_owned()
        } else {
            self.relative.display().to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        PathBuf::from("/work/project")
    }

    #[test]
    fn relative_paths_join_the_root() {
        let p = WorkspacePath::resolve(&root(), "src/./main.rs").unwrap();
        assert_eq!(p.absolute(), Path::new("/work/project/src/main.rs"));
        assert_eq!(p.relative(), Path::new("src/main.rs"));
    }

    #[test]
    fn absolute_paths_inside_the_root_are_accepted() {
        let p = WorkspacePath::resolve(&root(), "/work/project/a/../b.txt").unwrap();
        assert_eq!(p.absolute(), Path::new("/work/project/b.txt"));
    }

    #[test]
    fn escapes_are_refused() {
        for bad in [
            "../x",
            "a/../../x",
            "/etc/passwd",
            "/work/projectx/a",
            "/work/project/../x",
        ] {
            let err = WorkspacePath::resolve(&root(), bad).unwrap_err();
            assert!(
                matches!(err, WorkspaceError::OutsideRoot { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("/work/project"), "{err}");
        }
    }

    #[test]
    fn nul_bytes_and_huge_paths_are_refused() {
        assert!(matches!(
            WorkspacePath::resolve(&root(), "a\0b"),
            Err(WorkspaceError::InvalidPath { .. })
        ));
        let long = "a/".repeat(3000);
        assert!(matches!(
            WorkspacePath::resolve(&root(), &long),
            Err(WorkspaceError::InvalidPath { .. })
        ));
    }

    #[test]
    fn the_root_itself_resolves() {
        let p = WorkspacePath::resolve(&root(), ".").unwrap();
        assert_eq!(p.absolute(), root());
        assert_eq!(p.display(), ".");
    }
}
