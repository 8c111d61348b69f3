//! Fuzzes the workspace boundary: arbitrary path strings, resolved by `WorkspacePath` and then
//! read and written through the local sandbox's `LocalFileSystem`, must never panic and never
//! reach outside a real temporary root that holds symlinks leading out (relative, absolute, to a
//! file and to a directory) and a sibling directory whose name extends the root's.

#![no_main]

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use punie::workspace::local::LocalFileSystem;
use punie::workspace::{FileSystem, WorkspacePath};

/// What only the files outside the root contain: a read that returns it has escaped.
const SECRET: &str = "SECRET-outside-the-root";

struct Fixture {
    /// Holds the temporary directory for the whole run.
    _dir: tempfile::TempDir,
    root: PathBuf,
    /// Directories outside the root, each holding only `secret.txt`.
    outside: [PathBuf; 2],
    runtime: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("punie-fuzz-path-")
            .tempdir()
            .expect("a temporary directory");
        // Canonical, so that no symlink in the root's own path blurs what "outside" means.
        let base = dir.path().canonicalize().expect("canonical temp dir");
        let root = base.join("root");
        let outside = [base.join("outside"), base.join("rootx")];
        for place in &outside {
            std::fs::create_dir(place).unwrap();
            std::fs::write(place.join("secret.txt"), SECRET).unwrap();
        }
        let fixture = Fixture {
            _dir: dir,
            root,
            outside,
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a tokio runtime"),
        };
        lay_root(&fixture);
        fixture
    })
}

/// (Re)creates the root: a file, a directory, and symlinks in and out.
fn lay_root(fixture: &Fixture) {
    let root = &fixture.root;
    if root.exists() {
        // Does not follow symlinks: only the root's own entries go.
        std::fs::remove_dir_all(root).unwrap();
    }
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("inside.txt"), "inside").unwrap();
    let link =
        |target: &Path, name: &str| std::os::unix::fs::symlink(target, root.join(name)).unwrap();
    link(Path::new("../../outside"), "sub/up");
    link(Path::new("../inside.txt"), "sub/ok");
    link(&fixture.outside[0], "abs");
    link(Path::new("../outside/secret.txt"), "leak");
    link(&fixture.outside[1].join("secret.txt"), "leak_abs");
    link(Path::new("../rootx"), "sibling");
    link(Path::new("loop"), "loop");
}

/// Panics unless every directory outside the root still holds exactly its secret.
fn assert_outside_untouched(fixture: &Fixture, path: &str) {
    for place in &fixture.outside {
        let names: Vec<_> = std::fs::read_dir(place)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            ["secret.txt"],
            "{path:?} created a file in {place:?}"
        );
        let text = std::fs::read_to_string(place.join("secret.txt")).unwrap();
        assert_eq!(text, SECRET, "{path:?} wrote to {place:?}/secret.txt");
    }
}

fn check(fixture: &Fixture, path: &str) {
    let root = &fixture.root;
    // Opened anew each time: a write that succeeded has the root laid again.
    let files = LocalFileSystem::new(root.clone()).expect("the root opens");
    let Ok(resolved) = WorkspacePath::resolve(root, path) else {
        return;
    };
    // Lexically: under the root, normalised, and the two views agree.
    assert!(
        resolved.absolute().starts_with(root),
        "{path:?} -> {resolved:?}"
    );
    assert!(
        resolved
            .relative()
            .components()
            .all(|c| matches!(c, Component::Normal(_))),
        "{path:?} -> {resolved:?}"
    );
    assert_eq!(
        resolved.absolute(),
        root.join(resolved.relative()),
        "{path:?}"
    );

    // At open time: symlinks leading out are refused by the kernel.
    let read = fixture
        .runtime
        .block_on(files.read_text_file(&resolved, None, None));
    if let Ok(text) = &read {
        assert!(
            !text.contains(SECRET),
            "{path:?} read a file outside the root"
        );
    }
    let written = fixture
        .runtime
        .block_on(files.write_text_file(&resolved, "fuzz"));
    assert_outside_untouched(fixture, path);
    if written.is_ok() {
        lay_root(fixture);
    }
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let path = String::from_utf8_lossy(data);
    check(fixture, &path);
    // The same text after the root, so that absolute paths (which the fuzzer cannot guess)
    // are explored too, with and without a separator.
    let root = fixture.root.display();
    check(fixture, &format!("{root}/{path}"));
    check(fixture, &format!("{root}{path}"));
});
