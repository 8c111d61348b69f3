//! Escape attempts against the local sandbox's files (and a command's working directory), atomic
//! writes under SIGKILL, and the local permission policies.
//!
//! Every escape case checks two things: the operation is refused, and nothing outside the
//! workspace root was read (the secret never comes back) or changed (the outside tree is
//! byte-for-byte and mtime-for-mtime what it was).

use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use punie::workspace::local::{
    ApprovePolicy, LocalFileSystem, LocalOptions, PolicyPermissions, SandboxOptions,
    TtyPermissions, local_permissions, local_workspace,
};
use punie::workspace::{
    CommandRequest, FileSystem, PermissionOutcome, PermissionRequest, Permissions, ToolKind,
    Workspace, WorkspaceError, WorkspacePath,
};

const SECRET: &str = "TOP SECRET: outside the workspace\n";

/// A temp dir holding `root/` (the workspace) and `outside/` (which must never be touched).
struct Fixture {
    _temp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    before: BTreeMap<PathBuf, (Option<Vec<u8>>, SystemTime)>,
    workspace: Workspace,
}

impl Fixture {
    fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let base = temp.path().canonicalize().unwrap();
        let root = base.join("root");
        let outside = base.join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(outside.join("dir")).unwrap();
        std::fs::write(outside.join("secret.txt"), SECRET).unwrap();
        std::fs::write(outside.join("dir/secret.txt"), SECRET).unwrap();
        let workspace = local_workspace(
            root.clone(),
            LocalOptions {
                approve: Some(ApprovePolicy::All),
                ..LocalOptions::default()
            },
        )
        .unwrap();
        let before = snapshot(&outside);
        Self {
            _temp: temp,
            root,
            outside,
            before,
            workspace,
        }
    }

    fn resolve(&self, path: &str) -> WorkspacePath {
        self.workspace.resolve(path).unwrap()
    }

    async fn read(&self, path: &str) -> Result<String, WorkspaceError> {
        let path = self.workspace.resolve(path)?;
        self.workspace.files.read_text_file(&path, None, None).await
    }

    async fn write(&self, path: &str, content: &str) -> Result<(), WorkspaceError> {
        let path = self.workspace.resolve(path)?;
        self.workspace.files.write_text_file(&path, content).await
    }

    /// The outside tree is exactly as it was: same entries, same bytes, same mtimes.
    fn assert_outside_untouched(&self) {
        let after = snapshot(&self.outside);
        assert_eq!(
            self.before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>(),
            "entries outside the root changed"
        );
        for (path, (content, mtime)) in &self.before {
            let (content_after, mtime_after) = &after[path];
            assert_eq!(content, content_after, "{} changed", path.display());
            assert_eq!(mtime, mtime_after, "{} was modified", path.display());
        }
    }
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Option<Vec<u8>>, SystemTime)> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let metadata = std::fs::symlink_metadata(&path).unwrap();
            let content = if metadata.is_file() {
                Some(std::fs::read(&path).unwrap())
            } else {
                None
            };
            if metadata.is_dir() {
                pending.push(path.clone());
            }
            entries.insert(path, (content, metadata.modified().unwrap()));
        }
    }
    entries
}

#[track_caller]
fn assert_outside_root<T: std::fmt::Debug>(result: Result<T, WorkspaceError>, root: &Path) {
    match result {
        Err(WorkspaceError::OutsideRoot { root: named, .. }) => assert_eq!(named, root),
        other => panic!("expected OutsideRoot, got {other:?}"),
    }
}

#[track_caller]
fn assert_no_secret(result: &Result<String, WorkspaceError>) {
    if let Ok(text) = result {
        assert!(
            !text.contains("TOP SECRET"),
            "read outside the root: {text:?}"
        );
    }
}

// --- 1. lexical escapes ------------------------------------------------------------------------

#[tokio::test]
async fn dot_dot_traversal_is_refused() {
    let fx = Fixture::new();
    for path in [
        "../outside/secret.txt",
        "a/../../outside/secret.txt",
        "./../outside/new.txt",
    ] {
        let read = fx.read(path).await;
        assert_no_secret(&read);
        assert_outside_root(read, &fx.root);
        assert_outside_root(fx.write(path, "pwned").await, &fx.root);
    }
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn absolute_paths_outside_are_refused() {
    let fx = Fixture::new();
    let secret = fx.outside.join("secret.txt").display().to_string();
    assert_outside_root(fx.read(&secret).await, &fx.root);
    assert_outside_root(fx.write(&secret, "pwned").await, &fx.root);
    // A sibling whose name merely starts with the root's.
    let sibling = format!("{}-evil/x.txt", fx.root.display());
    assert_outside_root(fx.write(&sibling, "pwned").await, &fx.root);
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn proc_self_root_is_refused() {
    let fx = Fixture::new();
    let through_proc = format!("/proc/self/root{}", fx.outside.join("secret.txt").display());
    assert_outside_root(fx.read(&through_proc).await, &fx.root);
    // The same trick planted as a symlink inside the root (an absolute magic link).
    symlink("/proc/self/root", fx.root.join("proc_root")).unwrap();
    let via_link = format!("proc_root{}", fx.outside.join("secret.txt").display());
    let read = fx.read(&via_link).await;
    assert_no_secret(&read);
    assert_outside_root(read, &fx.root);
    assert_outside_root(fx.write("proc_root/tmp/pwned.txt", "pwned").await, &fx.root);
    symlink("/proc/self/cwd", fx.root.join("proc_cwd")).unwrap();
    assert!(fx.read("proc_cwd/Cargo.toml").await.is_err());
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn nul_bytes_are_refused() {
    let fx = Fixture::new();
    for path in ["a\0b", "secret.txt\0../../outside/secret.txt"] {
        assert!(matches!(
            fx.read(path).await,
            Err(WorkspaceError::InvalidPath { .. })
        ));
        assert!(matches!(
            fx.write(path, "x").await,
            Err(WorkspaceError::InvalidPath { .. })
        ));
    }
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn very_long_paths_are_refused() {
    let fx = Fixture::new();
    let huge = "a/".repeat(3000);
    assert!(matches!(
        fx.write(&huge, "x").await,
        Err(WorkspaceError::InvalidPath { .. })
    ));
    // Under the total limit but with a component longer than any filesystem allows.
    let long_name = "n".repeat(300);
    assert!(fx.write(&long_name, "x").await.is_err());
    // Deep but legal nesting stays inside and works.
    let deep = format!("{}file.txt", "d/".repeat(200));
    fx.write(&deep, "deep").await.unwrap();
    assert_eq!(fx.read(&deep).await.unwrap(), "deep");
    fx.assert_outside_untouched();
}

// --- 2. symlinks that lead out -----------------------------------------------------------------

#[tokio::test]
async fn symlink_to_a_file_outside_is_refused() {
    let fx = Fixture::new();
    symlink(fx.outside.join("secret.txt"), fx.root.join("link.txt")).unwrap();
    let read = fx.read("link.txt").await;
    assert_no_secret(&read);
    assert_outside_root(read, &fx.root);
    assert_outside_root(fx.write("link.txt", "pwned").await, &fx.root);
    // The link itself is left alone.
    assert!(
        std::fs::symlink_metadata(fx.root.join("link.txt"))
            .unwrap()
            .is_symlink()
    );
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn symlink_to_a_directory_outside_then_a_path_through_it_is_refused() {
    let fx = Fixture::new();
    symlink(fx.outside.join("dir"), fx.root.join("ldir")).unwrap();
    let read = fx.read("ldir/secret.txt").await;
    assert_no_secret(&read);
    assert_outside_root(read, &fx.root);
    assert_outside_root(fx.write("ldir/secret.txt", "pwned").await, &fx.root);
    assert_outside_root(fx.write("ldir/new.txt", "pwned").await, &fx.root);
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn symlink_chain_in_in_out_is_refused() {
    let fx = Fixture::new();
    symlink("b", fx.root.join("a")).unwrap();
    symlink("c", fx.root.join("b")).unwrap();
    symlink("../outside/secret.txt", fx.root.join("c")).unwrap();
    for path in ["a", "b", "c"] {
        let read = fx.read(path).await;
        assert_no_secret(&read);
        assert_outside_root(read, &fx.root);
        assert_outside_root(fx.write(path, "pwned").await, &fx.root);
    }
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn relative_symlink_climbing_out_is_refused() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.root.join("sub")).unwrap();
    symlink("../../outside/secret.txt", fx.root.join("sub/rel")).unwrap();
    symlink("../../outside/dir", fx.root.join("sub/reldir")).unwrap();
    let read = fx.read("sub/rel").await;
    assert_no_secret(&read);
    assert_outside_root(read, &fx.root);
    assert_outside_root(fx.write("sub/rel", "pwned").await, &fx.root);
    assert_outside_root(fx.write("sub/reldir/new.txt", "pwned").await, &fx.root);
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn symlink_to_the_filesystem_root_is_refused() {
    let fx = Fixture::new();
    symlink("/", fx.root.join("slash")).unwrap();
    let through = format!("slash{}", fx.outside.join("secret.txt").display());
    let read = fx.read(&through).await;
    assert_no_secret(&read);
    assert_outside_root(read, &fx.root);
    assert_outside_root(fx.read("slash/etc/passwd").await, &fx.root);
    let write_through = format!("slash{}", fx.outside.join("new.txt").display());
    assert_outside_root(fx.write(&write_through, "pwned").await, &fx.root);
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn dangling_symlink_to_a_missing_file_outside_creates_nothing_there() {
    let fx = Fixture::new();
    // A naive "open with O_CREAT" would follow this link and create the file outside.
    symlink(fx.outside.join("created.txt"), fx.root.join("dangling")).unwrap();
    symlink("../outside/created2.txt", fx.root.join("dangling_rel")).unwrap();
    assert_outside_root(fx.write("dangling", "pwned").await, &fx.root);
    assert_outside_root(fx.write("dangling_rel", "pwned").await, &fx.root);
    assert!(!fx.outside.join("created.txt").exists());
    assert!(!fx.outside.join("created2.txt").exists());
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn writing_through_a_symlinked_parent_directory_is_refused() {
    let fx = Fixture::new();
    symlink(fx.outside.join("dir"), fx.root.join("parent")).unwrap();
    assert_outside_root(fx.write("parent/file.txt", "pwned").await, &fx.root);
    assert!(!fx.outside.join("dir/file.txt").exists());
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn creating_parent_directories_through_an_outside_symlink_is_refused() {
    let fx = Fixture::new();
    symlink(fx.outside.join("dir"), fx.root.join("parent")).unwrap();
    assert_outside_root(
        fx.write("parent/new/deeper/file.txt", "pwned").await,
        &fx.root,
    );
    assert!(!fx.outside.join("dir/new").exists());
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn a_lexically_valid_path_that_hits_a_symlink_is_refused_by_the_filesystem_itself() {
    let fx = Fixture::new();
    symlink(fx.outside.join("dir"), fx.root.join("ok_looking")).unwrap();
    // Passes every lexical check: it is under the root, with no `..`.
    let path = fx.resolve("ok_looking/secret.txt");
    let files = LocalFileSystem::new(fx.root.clone()).unwrap();
    let read = files.read_text_file(&path, None, None).await;
    assert_no_secret(&read);
    assert_outside_root(read, &fx.root);
    assert_outside_root(files.write_text_file(&path, "pwned").await, &fx.root);
    // A path resolved against another root is not taken at its word either.
    let foreign = WorkspacePath::resolve(&fx.outside, "secret.txt").unwrap();
    assert_outside_root(files.read_text_file(&foreign, None, None).await, &fx.root);
    assert_outside_root(files.write_text_file(&foreign, "pwned").await, &fx.root);
    fx.assert_outside_untouched();
}

// --- 3. hard links, special files, races ------------------------------------------------------

#[tokio::test]
async fn writing_a_hard_link_to_an_outside_file_replaces_the_link() {
    let fx = Fixture::new();
    std::fs::hard_link(fx.outside.join("secret.txt"), fx.root.join("hard.txt")).unwrap();
    fx.write("hard.txt", "new content\n").await.unwrap();
    assert_eq!(
        std::fs::read_to_string(fx.root.join("hard.txt")).unwrap(),
        "new content\n"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(fx.root.join("hard.txt")).unwrap().nlink(),
        1
    );
    assert_eq!(
        std::fs::metadata(fx.outside.join("secret.txt"))
            .unwrap()
            .nlink(),
        1
    );
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn fifos_and_directories_are_not_read_or_written_as_files() {
    let fx = Fixture::new();
    let status = std::process::Command::new("mkfifo")
        .arg(fx.root.join("pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::create_dir(fx.root.join("dir")).unwrap();
    // Must not hang waiting for a writer.
    let read = tokio::time::timeout(Duration::from_secs(30), fx.read("pipe"))
        .await
        .unwrap();
    assert!(matches!(read, Err(WorkspaceError::Io { .. })), "{read:?}");
    assert!(fx.write("pipe", "x").await.is_err());
    assert!(fx.read("dir").await.is_err());
    assert!(fx.write("dir", "x").await.is_err());
    assert!(fx.read(".").await.is_err());
    assert!(fx.write(".", "x").await.is_err());
    fx.assert_outside_untouched();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_symlink_mid_operation_never_lets_anything_out() {
    let fx = Fixture::new();
    let swap = fx.root.join("swap");
    let target = fx.outside.join("dir");
    std::fs::create_dir(&swap).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let stop = Arc::clone(&stop);
        let swap = swap.clone();
        std::thread::spawn(move || {
            let mut flips = 0u64;
            while !stop.load(Ordering::Relaxed) {
                match std::fs::symlink_metadata(&swap) {
                    Ok(metadata) if metadata.is_symlink() => {
                        let _ = std::fs::remove_file(&swap);
                        let _ = std::fs::create_dir(&swap);
                    }
                    Ok(_) => {
                        let _ = std::fs::remove_dir_all(&swap);
                        let _ = symlink(&target, &swap);
                    }
                    Err(_) => {
                        let _ = symlink(&target, &swap);
                    }
                }
                flips += 1;
            }
            flips
        })
    };
    let mut successes = 0;
    for i in 0..400 {
        if fx
            .write("swap/file.txt", &format!("write {i}\n"))
            .await
            .is_ok()
        {
            successes += 1;
        }
        let _ = fx.write("swap/deeper/file.txt", "deeper\n").await;
        assert_no_secret(&fx.read("swap/secret.txt").await);
        assert!(!fx.outside.join("dir/file.txt").exists(), "a write escaped");
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    eprintln!("{flips} flips, {successes} writes landed inside");
    assert!(!fx.outside.join("dir/file.txt").exists());
    assert!(!fx.outside.join("dir/deeper").exists());
    fx.assert_outside_untouched();
}

// --- 4. commands ------------------------------------------------------------------------------

#[tokio::test]
async fn a_command_cannot_start_outside_the_root() {
    let fx = Fixture::new();
    assert_outside_root(fx.workspace.resolve("../outside"), &fx.root);
    symlink(fx.outside.join("dir"), fx.root.join("cwd_link")).unwrap();
    let request = CommandRequest {
        command: "sh".to_owned(),
        args: vec!["-c".to_owned(), "touch escaped.txt".to_owned()],
        cwd: fx.resolve("cwd_link"),
        env: Vec::new(),
        output_byte_limit: None,
    };
    assert_outside_root(fx.workspace.terminals.create(request).await, &fx.root);
    std::fs::create_dir(fx.root.join("sub")).unwrap();
    symlink("../../outside", fx.root.join("sub/up")).unwrap();
    let request = CommandRequest {
        command: "sh".to_owned(),
        args: vec!["-c".to_owned(), "touch escaped.txt".to_owned()],
        cwd: fx.resolve("sub/up"),
        env: Vec::new(),
        output_byte_limit: None,
    };
    assert_outside_root(fx.workspace.terminals.create(request).await, &fx.root);
    assert!(!fx.outside.join("dir/escaped.txt").exists());
    assert!(!fx.outside.join("escaped.txt").exists());
    fx.assert_outside_untouched();
}

// --- 5. what is allowed ---------------------------------------------------------------------------

#[tokio::test]
async fn symlinks_that_stay_inside_are_followed() {
    let fx = Fixture::new();
    std::fs::create_dir(fx.root.join("real")).unwrap();
    std::fs::write(fx.root.join("real/file.txt"), "one\ntwo\nthree\n").unwrap();
    symlink("real/file.txt", fx.root.join("alias.txt")).unwrap();
    symlink("real", fx.root.join("alias_dir")).unwrap();
    assert_eq!(fx.read("alias.txt").await.unwrap(), "one\ntwo\nthree\n");
    assert_eq!(
        fx.workspace
            .files
            .read_text_file(&fx.resolve("alias_dir/file.txt"), Some(2), Some(1))
            .await
            .unwrap(),
        "two\n"
    );
    // Writing through the link changes the file it points to and keeps the link.
    fx.write("alias.txt", "changed\n").await.unwrap();
    assert!(
        std::fs::symlink_metadata(fx.root.join("alias.txt"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(fx.root.join("real/file.txt")).unwrap(),
        "changed\n"
    );
    fx.write("alias_dir/new/nested.txt", "nested\n")
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(fx.root.join("real/new/nested.txt")).unwrap(),
        "nested\n"
    );
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn reads_and_writes_inside_work() {
    let fx = Fixture::new();
    fx.write("src/deep/lib.rs", "fn main() {}\n").await.unwrap();
    assert_eq!(fx.read("src/deep/lib.rs").await.unwrap(), "fn main() {}\n");
    let absolute = fx.root.join("src/deep/lib.rs").display().to_string();
    assert_eq!(fx.read(&absolute).await.unwrap(), "fn main() {}\n");
    assert!(matches!(
        fx.read("missing.txt").await,
        Err(WorkspaceError::NotFound { .. })
    ));
    std::fs::write(fx.root.join("binary.bin"), b"\x00\xff\xfe").unwrap();
    let err = fx.read("binary.bin").await.unwrap_err();
    assert!(err.to_string().contains("not UTF-8"), "{err}");
    // No temporary files are left behind by successful writes.
    let leftovers: Vec<_> = std::fs::read_dir(fx.root.join("src/deep"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("lib.rs")]);
    fx.assert_outside_untouched();
}

#[tokio::test]
async fn writes_keep_the_file_mode() {
    let fx = Fixture::new();
    let path = fx.root.join("script.sh");
    std::fs::write(&path, "#!/bin/sh\necho old\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o754)).unwrap();
    fx.write("script.sh", "#!/bin/sh\necho new\n")
        .await
        .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o754);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "#!/bin/sh\necho new\n"
    );
}

// --- 6. atomic writes under SIGKILL -----------------------------------------------------------------

const HELPER_ENV: &str = "PUNIE_ATOMIC_WRITE_HELPER";
const WRITE_SIZE: usize = 4 * 1024 * 1024;

fn content_of(letter: char) -> String {
    let line: String = std::iter::repeat_n(letter, 63)
        .chain(std::iter::once('\n'))
        .collect();
    line.repeat(WRITE_SIZE / 64)
}

/// Not a test on its own: when re-run with `PUNIE_ATOMIC_WRITE_HELPER=<root>` it writes
/// `target.txt` in a loop, alternately all `a`s and all `b`s, until it is killed.
#[test]
fn atomic_write_helper_process() {
    let Ok(root) = std::env::var(HELPER_ENV) else {
        return;
    };
    let root = PathBuf::from(root);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let files = LocalFileSystem::new(root.clone()).unwrap();
        let target = WorkspacePath::resolve(&root, "target.txt").unwrap();
        let contents = [content_of('a'), content_of('b')];
        for round in 0u64.. {
            files
                .write_text_file(&target, &contents[(round % 2) as usize])
                .await
                .unwrap();
            if round == 1 {
                std::fs::write(root.parent().unwrap().join("started"), "").unwrap();
            }
        }
    });
}

#[test]
fn a_write_killed_midway_leaves_the_old_or_the_new_content() {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let target = root.join("target.txt");
    std::fs::write(&target, content_of('a')).unwrap();
    let (a, b) = (content_of('a'), content_of('b'));
    for (round, delay_ms) in [5u64, 40, 90, 150, 230].into_iter().enumerate() {
        let _ = std::fs::remove_file(temp.path().join("started"));
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg(crate::support::libtest_name(
                module_path!(),
                "atomic_write_helper_process",
            ))
            .args(["--exact", "--nocapture", "--test-threads=1"])
            .env(HELPER_ENV, &root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !temp.path().join("started").exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the helper never started writing"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "the helper exited early"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let content = std::fs::read_to_string(&target).unwrap();
        assert_eq!(content.len(), WRITE_SIZE, "round {round}: truncated target");
        assert!(content == a || content == b, "round {round}: mixed content");
        // Only the target and, at worst, temporary files beside it.
        let mut leftovers = 0;
        for entry in std::fs::read_dir(&root).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                name == "target.txt" || name.starts_with(".punie-tmp-"),
                "unexpected {name}"
            );
            leftovers += usize::from(name != "target.txt");
        }
        // A leftover temporary file is the sign that the kill did land mid-write.
        eprintln!("round {round}: {leftovers} temporary file(s) left by the kill");
    }
}

// --- 7. permissions -------------------------------------------------------------------------------

fn request(kind: ToolKind) -> PermissionRequest {
    PermissionRequest {
        tool_call_id: "call-1".to_owned(),
        title: format!("a {kind:?} call"),
        kind,
        content: Vec::new(),
        raw_input: serde_json::Value::Null,
    }
}

const EDITS: [ToolKind; 3] = [ToolKind::Edit, ToolKind::Delete, ToolKind::Move];
const COMMANDS: [ToolKind; 4] = [
    ToolKind::Execute,
    ToolKind::Fetch,
    ToolKind::Think,
    ToolKind::Other,
];
const READS: [ToolKind; 2] = [ToolKind::Read, ToolKind::Search];

async fn allowed(permissions: &dyn Permissions, kind: ToolKind) -> bool {
    match permissions.request(request(kind)).await {
        Ok(PermissionOutcome::AllowOnce | PermissionOutcome::AllowAlways) => true,
        Ok(_) => false,
        Err(WorkspaceError::PermissionRefused { reason }) => {
            assert!(reason.contains("--approve"), "{reason}");
            false
        }
        Err(other) => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn approve_policies_answer_as_documented() {
    let expectations = [
        (ApprovePolicy::None, false, false),
        (ApprovePolicy::Edits, true, false),
        (ApprovePolicy::All, true, true),
    ];
    for (policy, edits, commands) in expectations {
        let permissions = PolicyPermissions::new(policy);
        for kind in READS {
            assert!(allowed(&permissions, kind).await, "{policy} {kind:?}");
        }
        for kind in EDITS {
            assert_eq!(
                allowed(&permissions, kind).await,
                edits,
                "{policy} {kind:?}"
            );
        }
        for kind in COMMANDS {
            assert_eq!(
                allowed(&permissions, kind).await,
                commands,
                "{policy} {kind:?}"
            );
        }
        // The explicit policy wins over asking.
        let chosen = local_permissions(Some(policy), true);
        assert_eq!(allowed(chosen.as_ref(), ToolKind::Execute).await, commands);
    }
    assert_eq!(
        "edits".parse::<ApprovePolicy>().unwrap(),
        ApprovePolicy::Edits
    );
    assert!("sometimes".parse::<ApprovePolicy>().is_err());
}

#[tokio::test]
async fn without_a_policy_or_a_terminal_everything_is_refused_with_the_how_to() {
    let permissions = local_permissions(None, false);
    for kind in EDITS.into_iter().chain(COMMANDS) {
        match permissions.request(request(kind)).await {
            Err(WorkspaceError::PermissionRefused { reason }) => {
                assert!(
                    reason.contains("nobody can be asked: pass --approve edits or --approve all"),
                    "{reason}"
                );
            }
            other => panic!("{kind:?}: expected a refusal, got {other:?}"),
        }
    }
    for kind in READS {
        assert_eq!(
            permissions.request(request(kind)).await.unwrap(),
            PermissionOutcome::AllowOnce
        );
    }
}

#[tokio::test]
async fn the_terminal_prompt_understands_its_answers() {
    let tty = |answers: &'static str| {
        TtyPermissions::from_streams(
            Box::new(std::io::Cursor::new(answers)),
            Box::new(std::io::sink()),
        )
    };
    let ask = |permissions: TtyPermissions, kind| async move {
        permissions.request(request(kind)).await.unwrap()
    };
    assert_eq!(
        ask(tty("y\n"), ToolKind::Execute).await,
        PermissionOutcome::AllowOnce
    );
    assert_eq!(
        ask(tty("n\n"), ToolKind::Edit).await,
        PermissionOutcome::RejectOnce
    );
    assert_eq!(
        ask(tty(""), ToolKind::Edit).await,
        PermissionOutcome::RejectOnce
    );
    assert_eq!(
        ask(tty("what?\nyes\n"), ToolKind::Edit).await,
        PermissionOutcome::AllowOnce
    );
    assert_eq!(
        ask(tty("maybe\nhmm\nno idea\ny\n"), ToolKind::Edit).await,
        PermissionOutcome::RejectOnce
    );
    assert_eq!(
        ask(tty(""), ToolKind::Read).await,
        PermissionOutcome::AllowOnce
    );
    // "always" is remembered for that kind: the second question is never asked.
    let always = tty("a\n");
    assert_eq!(
        always.request(request(ToolKind::Execute)).await.unwrap(),
        PermissionOutcome::AllowAlways
    );
    assert_eq!(
        always.request(request(ToolKind::Execute)).await.unwrap(),
        PermissionOutcome::AllowAlways
    );
    assert_eq!(
        always.request(request(ToolKind::Edit)).await.unwrap(),
        PermissionOutcome::RejectOnce
    );
}

#[test]
fn sandbox_options_default_to_landlock_on() {
    assert!(SandboxOptions::default().landlock);
}
