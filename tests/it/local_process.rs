//! Local commands: output capture, exit statuses, killing whole process groups, output limits,
//! timeouts, children that die with Punie, and the Landlock sandbox.

use std::path::{Path, PathBuf};
use std::time::Duration;

use punie::workspace::local::{LandlockStatus, LocalTerminals, SandboxOptions};
use punie::workspace::{
    CommandRequest, ExitStatus, TerminalId, Terminals, WorkspaceError, WorkspacePath,
};

/// Generous: CI machines are small and busy.
const PATIENCE: Duration = Duration::from_secs(30);

struct Fixture {
    _temp: tempfile::TempDir,
    root: PathBuf,
    terminals: LocalTerminals,
}

impl Fixture {
    fn new() -> Self {
        Self::with(SandboxOptions::default())
    }

    fn with(options: SandboxOptions) -> Self {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().canonicalize().unwrap().join("root");
        std::fs::create_dir(&root).unwrap();
        let terminals = LocalTerminals::new(root.clone(), options).unwrap();
        Self {
            _temp: temp,
            root,
            terminals,
        }
    }

    fn request(&self, script: &str) -> CommandRequest {
        CommandRequest {
            command: "sh".to_owned(),
            args: vec!["-c".to_owned(), script.to_owned()],
            cwd: WorkspacePath::resolve(&self.root, ".").unwrap(),
            env: Vec::new(),
            output_byte_limit: None,
        }
    }

    async fn start(&self, script: &str) -> TerminalId {
        self.terminals.create(self.request(script)).await.unwrap()
    }

    async fn wait(&self, id: &TerminalId) -> ExitStatus {
        tokio::time::timeout(PATIENCE, self.terminals.wait_for_exit(id))
            .await
            .expect("the command did not finish in time")
            .unwrap()
    }

    /// Runs a script to completion: its exit status and output.
    async fn run(&self, script: &str) -> (ExitStatus, String) {
        let id = self.start(script).await;
        let status = self.wait(&id).await;
        let output = self.terminals.output(&id).await.unwrap();
        assert_eq!(output.exit_status.as_ref(), Some(&status));
        self.terminals.release(&id).await.unwrap();
        (status, output.output)
    }

    /// Waits until the output has `lines` lines and returns them.
    async fn lines(&self, id: &TerminalId, lines: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let output = self.terminals.output(id).await.unwrap().output;
            let found: Vec<String> = output.lines().map(str::to_owned).collect();
            if found.len() >= lines {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only got {output:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// True once the process no longer exists (or is a zombie nobody reaped yet: dead all the same).
fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

async fn assert_gone(pid: u32) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !is_gone(pid) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "process {pid} is still alive"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pid(line: &str) -> u32 {
    line.trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a pid: {line:?}"))
}

// --- output and exit statuses -------------------------------------------------------------------

#[tokio::test]
async fn output_is_captured_and_interleaved() {
    let fx = Fixture::new();
    let (status, output) = fx.run("echo out; echo err >&2; echo out again").await;
    assert!(status.success());
    assert_eq!(output, "out\nerr\nout again\n");
}

#[tokio::test]
async fn exit_codes_and_signals_are_reported() {
    let fx = Fixture::new();
    let (status, _) = fx.run("exit 3").await;
    assert_eq!(
        status,
        ExitStatus {
            exit_code: Some(3),
            signal: None
        }
    );
    assert!(!status.success());
    let (status, _) = fx.run("kill -TERM $$").await;
    assert_eq!(
        status,
        ExitStatus {
            exit_code: None,
            signal: Some("SIGTERM".to_owned())
        }
    );
}

#[tokio::test]
async fn commands_run_in_their_cwd_with_their_env() {
    let fx = Fixture::new();
    std::fs::create_dir(fx.root.join("sub")).unwrap();
    let mut request = fx.request("pwd; echo \"$GREETING\"; echo made > here.txt");
    request.cwd = WorkspacePath::resolve(&fx.root, "sub").unwrap();
    request.env = vec![("GREETING".to_owned(), "hello".to_owned())];
    let id = fx.terminals.create(request).await.unwrap();
    assert!(fx.wait(&id).await.success());
    let output = fx.terminals.output(&id).await.unwrap().output;
    assert_eq!(
        output,
        format!("{}\nhello\n", fx.root.join("sub").display())
    );
    assert_eq!(
        std::fs::read_to_string(fx.root.join("sub/here.txt")).unwrap(),
        "made\n"
    );
}

#[tokio::test]
async fn output_is_complete_as_soon_as_the_exit_is_known() {
    let fx = Fixture::new();
    for i in 0..30 {
        let (_, output) = fx.run(&format!("echo {i}")).await;
        assert_eq!(output, format!("{i}\n"));
    }
    let (_, output) = fx
        .run("head -c 300000 /dev/zero | tr '\\0' y; echo; echo DONE")
        .await;
    assert_eq!(output.len(), 300_000 + "\nDONE\n".len());
    assert!(output.ends_with("y\nDONE\n"));
}

#[tokio::test]
async fn output_can_be_read_while_waiting() {
    let fx = Fixture::new();
    let id = fx.start("echo first; sleep 1; echo second").await;
    let (status, first) = tokio::join!(fx.wait(&id), async { fx.lines(&id, 1).await });
    assert!(status.success());
    assert_eq!(first[0], "first");
    let output = fx.terminals.output(&id).await.unwrap();
    assert_eq!(output.output, "first\nsecond\n");
}

#[tokio::test]
async fn a_missing_program_is_a_clear_error() {
    let fx = Fixture::new();
    let mut request = fx.request("");
    request.command = "punie-no-such-program".to_owned();
    let err = fx.terminals.create(request).await.unwrap_err();
    assert!(err.to_string().contains("punie-no-such-program"), "{err}");
    assert!(err.to_string().contains("not found"), "{err}");
}

// --- limits ----------------------------------------------------------------------------------------

#[tokio::test]
async fn output_is_capped_keeping_the_most_recent_bytes() {
    let fx = Fixture::new();
    let mut request =
        fx.request("i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done; echo END");
    request.output_byte_limit = Some(1000);
    let id = fx.terminals.create(request).await.unwrap();
    fx.wait(&id).await;
    let output = fx.terminals.output(&id).await.unwrap();
    assert!(output.truncated);
    assert!(output.output.len() <= 1000);
    assert!(
        output.output.ends_with("line-2999\nEND\n"),
        "{:?}",
        output.output
    );
    assert!(!output.output.contains("line-0\n"));
}

#[tokio::test]
async fn the_cap_cuts_on_a_character_boundary() {
    let fx = Fixture::new();
    let mut request = fx.request("i=0; while [ $i -lt 2000 ]; do printf 'é'; i=$((i+1)); done");
    request.output_byte_limit = Some(1001);
    let id = fx.terminals.create(request).await.unwrap();
    fx.wait(&id).await;
    let output = fx.terminals.output(&id).await.unwrap();
    assert!(output.truncated);
    assert!(output.output.len() <= 1001);
    assert!(output.output.len() >= 998);
    assert!(
        output.output.chars().all(|c| c == 'é'),
        "{:?}",
        output.output
    );
}

#[tokio::test]
async fn the_default_cap_is_one_mebibyte() {
    let fx = Fixture::new();
    let (_, small) = fx.run("echo small").await;
    assert_eq!(small, "small\n");
    let id = fx.start("head -c 2500000 /dev/zero | tr '\\0' x").await;
    fx.wait(&id).await;
    let output = fx.terminals.output(&id).await.unwrap();
    assert!(output.truncated);
    assert_eq!(output.output.len(), 1024 * 1024);
}

// --- killing ---------------------------------------------------------------------------------------

#[tokio::test]
async fn kill_takes_the_whole_process_group() {
    let fx = Fixture::new();
    let id = fx.start("echo $$; sleep 300 & echo $!; wait").await;
    let lines = fx.lines(&id, 2).await;
    let (shell, child) = (pid(&lines[0]), pid(&lines[1]));
    assert!(!is_gone(shell) && !is_gone(child));
    fx.terminals.kill(&id).await.unwrap();
    let status = fx.wait(&id).await;
    assert_eq!(status.signal.as_deref(), Some("SIGKILL"));
    assert_gone(shell).await;
    assert_gone(child).await;
    // The output stays readable until released.
    let output = fx.terminals.output(&id).await.unwrap();
    assert_eq!(output.output.lines().count(), 2);
    assert_eq!(output.exit_status, Some(status));
    fx.terminals.release(&id).await.unwrap();
    assert!(fx.terminals.output(&id).await.is_err());
}

#[tokio::test]
async fn a_timeout_is_a_race_then_a_kill() {
    let fx = Fixture::new();
    let id = fx.start("echo $$; exec sleep 300").await;
    let lines = fx.lines(&id, 1).await;
    let waited =
        tokio::time::timeout(Duration::from_millis(300), fx.terminals.wait_for_exit(&id)).await;
    assert!(waited.is_err(), "sleep 300 finished early: {waited:?}");
    fx.terminals.kill(&id).await.unwrap();
    assert_eq!(fx.wait(&id).await.signal.as_deref(), Some("SIGKILL"));
    assert_gone(pid(&lines[0])).await;
}

#[tokio::test]
async fn release_kills_a_running_command_and_forgets_it() {
    let fx = Fixture::new();
    let id = fx.start("echo $$; sleep 300 & echo $!; wait").await;
    let lines = fx.lines(&id, 2).await;
    fx.terminals.release(&id).await.unwrap();
    assert_gone(pid(&lines[1])).await;
    // The shell was Punie's own child: released, it is reaped, not left a zombie.
    let shell = pid(&lines[0]);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while Path::new(&format!("/proc/{shell}")).exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "process {shell} was never reaped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(fx.terminals.wait_for_exit(&id).await.is_err());
    assert!(fx.terminals.release(&id).await.is_err());
}

#[tokio::test]
async fn unknown_ids_are_clear_errors() {
    let fx = Fixture::new();
    let id = TerminalId("no-such-terminal".to_owned());
    let err = fx.terminals.release(&id).await.unwrap_err();
    assert!(err.to_string().contains("no-such-terminal"), "{err}");
    assert!(err.to_string().contains("no such terminal"), "{err}");
    assert!(fx.terminals.output(&id).await.is_err());
    assert!(fx.terminals.kill(&id).await.is_err());
    assert!(fx.terminals.wait_for_exit(&id).await.is_err());
}

#[tokio::test]
async fn dropping_the_terminals_kills_every_command() {
    let fx = Fixture::new();
    let id = fx.start("echo $$; sleep 300 & echo $!; wait").await;
    let lines = fx.lines(&id, 2).await;
    let Fixture {
        _temp, terminals, ..
    } = fx;
    drop(terminals);
    assert_gone(pid(&lines[0])).await;
    assert_gone(pid(&lines[1])).await;
}

/// Live (non-zombie) processes whose command line mentions `marker`.
fn processes_mentioning(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(marker) && !is_gone(pid) {
            found.push(pid);
        }
    }
    found
}

#[tokio::test]
async fn an_abandoned_create_leaves_no_process_behind() {
    let fx = Fixture::new();
    // Polled once (the command is handed to its thread), then dropped before it reports back.
    // On an idle machine the thread may report back within that first poll: then that
    // command is released and the test tries again (seen once in CI).
    for attempt in 0..20 {
        let marker = format!("punie-abandoned-{}-{attempt}", std::process::id());
        let request = fx.request(&format!("sleep 300; : {marker}"));
        if let Some(created) = futures::FutureExt::now_or_never(fx.terminals.create(request)) {
            let id = created.unwrap();
            fx.terminals.kill(&id).await.unwrap();
            fx.terminals.release(&id).await.unwrap();
            continue;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !processes_mentioning(&marker).is_empty() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the abandoned command still runs"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        return;
    }
    panic!("create finished within its first poll 20 times: nothing was abandoned");
}

const ORPHAN_HELPER_ENV: &str = "PUNIE_ORPHAN_HELPER";

/// Not a test on its own: when re-run with `PUNIE_ORPHAN_HELPER=<root>`, starts `sleep 300`
/// (writing its pid to `<root>/pid`) and waits to be killed.
#[test]
fn orphan_helper_process() {
    let Ok(root) = std::env::var(ORPHAN_HELPER_ENV) else {
        return;
    };
    let root = PathBuf::from(root);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let terminals = LocalTerminals::new(root.clone(), SandboxOptions::default()).unwrap();
        let request = CommandRequest {
            command: "sh".to_owned(),
            args: vec![
                "-c".to_owned(),
                "echo $$ > pid.tmp && mv pid.tmp pid && exec sleep 300".to_owned(),
            ],
            cwd: WorkspacePath::resolve(&root, ".").unwrap(),
            env: Vec::new(),
            output_byte_limit: None,
        };
        let _id = terminals.create(request).await.unwrap();
        tokio::time::sleep(Duration::from_secs(600)).await;
    });
}

#[tokio::test]
async fn commands_die_with_punie() {
    let fx = Fixture::new();
    let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
        .arg(crate::support::libtest_name(
            module_path!(),
            "orphan_helper_process",
        ))
        .args(["--exact", "--nocapture", "--test-threads=1"])
        .env(ORPHAN_HELPER_ENV, &fx.root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = fx.root.join("pid");
    let deadline = std::time::Instant::now() + PATIENCE;
    while !pid_file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the helper never started its command"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sleeper = pid(&std::fs::read_to_string(&pid_file).unwrap());
    assert!(!is_gone(sleeper));
    helper.kill().unwrap(); // SIGKILL: no destructor runs, only PR_SET_PDEATHSIG can help
    helper.wait().unwrap();
    assert_gone(sleeper).await;
}

// --- Landlock -------------------------------------------------------------------------------------

/// A directory outside both the workspace and the temp dir, removed on drop.
struct OutsideDir(PathBuf);

impl OutsideDir {
    fn new(root: &Path) -> Option<Self> {
        let temp = std::env::temp_dir()
            .canonicalize()
            .unwrap_or_else(|_| std::env::temp_dir());
        // The root's parent is a fresh temp dir: its name makes this directory unique.
        let unique = root.parent()?.file_name()?.to_str()?;
        let name = format!("punie-landlock-test-{}-{unique}", std::process::id());
        let mut candidates = vec![PathBuf::from("/var/tmp")];
        candidates.extend(std::env::var_os("HOME").map(PathBuf::from));
        for base in candidates {
            let Ok(base) = base.canonicalize() else {
                continue;
            };
            if base.starts_with(&temp) || root.starts_with(&base) {
                continue;
            }
            let dir = base.join(&name);
            if std::fs::create_dir_all(&dir).is_ok() {
                return Some(Self(dir));
            }
        }
        None
    }
}

impl Drop for OutsideDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn landlock_confines_writes_to_the_workspace() {
    let fx = Fixture::new();
    let status = fx.terminals.landlock_status().clone();
    if !status.is_enforced() {
        eprintln!("skipping: Landlock is {status}");
        return;
    }
    let Some(outside) = OutsideDir::new(&fx.root) else {
        eprintln!("skipping: no writable directory outside the temp dir");
        return;
    };
    let target = outside.0.join("pwned.txt");
    let (status, output) = fx
        .run(&format!("echo pwned > '{}'", target.display()))
        .await;
    assert!(!status.success(), "the write outside succeeded: {output}");
    assert!(!target.exists());
    // Through a symlink inside the root: Landlock checks where the write really lands.
    std::os::unix::fs::symlink(&outside.0, fx.root.join("out_link")).unwrap();
    let (status, _) = fx.run("echo pwned > out_link/via_link.txt").await;
    assert!(!status.success());
    assert!(!outside.0.join("via_link.txt").exists());
    // Deleting and renaming outside are writes too.
    std::fs::write(outside.0.join("keep.txt"), "keep").unwrap();
    let (status, _) = fx
        .run(&format!("rm -f '{}/keep.txt'", outside.0.display()))
        .await;
    assert!(!status.success());
    assert_eq!(
        std::fs::read_to_string(outside.0.join("keep.txt")).unwrap(),
        "keep"
    );
    // Nor can an outside file be hard-linked into the root (to be edited there later).
    let (status, _) = fx
        .run(&format!("ln '{}/keep.txt' hard.txt", outside.0.display()))
        .await;
    assert!(!status.success());
    assert!(!fx.root.join("hard.txt").exists());

    // Inside the root, the temp dir and /dev/null, writing works; reading works everywhere.
    let temp_file = std::env::temp_dir().join(format!("punie-landlock-{}.txt", std::process::id()));
    let script = format!(
        "echo ok > inside.txt && mkdir -p a/b && echo ok > a/b/c.txt && echo ok > '{}' && echo ok > /dev/null \
         && echo ok > /dev/stderr && cat '{}/keep.txt' && ls / > /dev/null",
        temp_file.display(),
        outside.0.display()
    );
    let (status, output) = fx.run(&script).await;
    let _ = std::fs::remove_file(&temp_file);
    assert!(status.success(), "{output}");
    assert_eq!(output, "ok\nkeep");
    assert_eq!(
        std::fs::read_to_string(fx.root.join("a/b/c.txt")).unwrap(),
        "ok\n"
    );

    // Signalling processes outside the sandbox (Punie itself) is refused where the kernel can
    // (Landlock ABI 6 and later): informational, as older kernels only confine writes.
    let (status, _) = fx.run(&format!("kill -0 {}", std::process::id())).await;
    eprintln!(
        "signalling Punie from the sandbox: {}",
        if status.success() {
            "allowed (Landlock ABI < 6)"
        } else {
            "refused"
        }
    );
}

#[tokio::test]
async fn landlock_can_be_turned_off() {
    let fx = Fixture::with(SandboxOptions {
        landlock: false,
        ..SandboxOptions::default()
    });
    assert_eq!(fx.terminals.landlock_status(), &LandlockStatus::Disabled);
    let Some(outside) = OutsideDir::new(&fx.root) else {
        eprintln!("skipping: no writable directory outside the temp dir");
        return;
    };
    let target = outside.0.join("allowed.txt");
    let (status, _) = fx
        .run(&format!("echo unconfined > '{}'", target.display()))
        .await;
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "unconfined\n");
}

#[tokio::test]
async fn extra_writable_paths_are_honoured() {
    let probe = Fixture::new();
    if !probe.terminals.landlock_status().is_enforced() {
        eprintln!(
            "skipping: Landlock is {}",
            probe.terminals.landlock_status()
        );
        return;
    }
    let Some(outside) = OutsideDir::new(&probe.root) else {
        eprintln!("skipping: no writable directory outside the temp dir");
        return;
    };
    let fx = Fixture::with(SandboxOptions {
        landlock: true,
        writable_paths: vec![outside.0.clone()],
    });
    let target = outside.0.join("cache.txt");
    let (status, output) = fx
        .run(&format!("echo cached > '{}'", target.display()))
        .await;
    assert!(status.success(), "{output}");
    assert!(target.exists());
}

#[test]
fn landlock_status_is_reported() {
    let temp = tempfile::tempdir().unwrap();
    let terminals =
        LocalTerminals::new(temp.path().to_path_buf(), SandboxOptions::default()).unwrap();
    eprintln!("Landlock here: {}", terminals.landlock_status());
    assert_eq!(terminals.provider(), "local");
    let refused = LocalTerminals::new(temp.path().join("missing"), SandboxOptions::default());
    assert!(matches!(refused, Err(WorkspaceError::Io { .. })));
}
