//! What a Landlock-confined local command may not reach besides files outside the workspace:
//! abstract UNIX sockets and processes outside its sandbox (Landlock scopes, ABI 6), and device
//! nodes it would make inside the workspace (as root).
//!
//! Each test skips, saying why, where the machine cannot show the behaviour (no Landlock, an
//! older kernel, not root).

use std::path::PathBuf;
use std::time::Duration;

use punie::workspace::local::{LocalTerminals, SandboxOptions};
use punie::workspace::{CommandRequest, ExitStatus, Terminals, WorkspacePath};

/// Generous: CI machines are small and busy.
const PATIENCE: Duration = Duration::from_secs(30);

struct Fixture {
    _temp: tempfile::TempDir,
    root: PathBuf,
    terminals: LocalTerminals,
}

impl Fixture {
    fn new(landlock: bool) -> Self {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().canonicalize().unwrap().join("root");
        std::fs::create_dir(&root).unwrap();
        let options = SandboxOptions {
            landlock,
            ..SandboxOptions::default()
        };
        let terminals = LocalTerminals::new(root.clone(), options).unwrap();
        Self {
            _temp: temp,
            root,
            terminals,
        }
    }

    /// A confined fixture, or `None` (with the reason printed) where Landlock is not enforced.
    fn confined() -> Option<Self> {
        let fx = Self::new(true);
        let status = fx.terminals.landlock_status().clone();
        if status.is_enforced() {
            Some(fx)
        } else {
            eprintln!("skipping: Landlock is {status}");
            None
        }
    }

    async fn run_program(
        &self,
        command: String,
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> (ExitStatus, String) {
        let request = CommandRequest {
            command,
            args,
            cwd: WorkspacePath::resolve(&self.root, ".").unwrap(),
            env,
            output_byte_limit: None,
        };
        let id = self.terminals.create(request).await.unwrap();
        let status = tokio::time::timeout(PATIENCE, self.terminals.wait_for_exit(&id))
            .await
            .expect("the command did not finish in time")
            .unwrap();
        let output = self.terminals.output(&id).await.unwrap().output;
        self.terminals.release(&id).await.unwrap();
        (status, output)
    }

    async fn run(&self, script: &str) -> (ExitStatus, String) {
        self.run_program(
            "sh".to_owned(),
            vec!["-c".to_owned(), script.to_owned()],
            Vec::new(),
        )
        .await
    }
}

/// Whether the kernel has Landlock scopes (ABI 6, Linux 6.12); says so when it does not.
fn kernel_has_scopes(what: &str) -> bool {
    if punie::workspace::local::landlock_scopes_supported() {
        true
    } else {
        eprintln!("skipping {what}: this kernel's Landlock predates ABI 6 (no scopes)");
        false
    }
}

// --- abstract UNIX sockets -----------------------------------------------------------------------

const CONNECT_HELPER_ENV: &str = "PUNIE_ABSTRACT_SOCKET_HELPER";

/// Not a test on its own: re-run inside the sandbox with `PUNIE_ABSTRACT_SOCKET_HELPER=<name>`,
/// connects to that abstract socket and prints what happened.
#[test]
fn abstract_socket_client_helper() {
    use std::os::linux::net::SocketAddrExt;
    let Ok(name) = std::env::var(CONNECT_HELPER_ENV) else {
        return;
    };
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    match std::os::unix::net::UnixStream::connect_addr(&address) {
        Ok(_) => println!("HELPER: connected"),
        Err(error) => println!("HELPER: refused ({error})"),
    }
}

/// Runs the helper as a command of `fx`: what it printed.
async fn connect_from(fx: &Fixture, name: &str) -> String {
    let program = std::env::current_exe().unwrap().display().to_string();
    let args = vec![
        crate::support::libtest_name(module_path!(), "abstract_socket_client_helper"),
        "--exact".to_owned(),
        "--nocapture".to_owned(),
        "--test-threads=1".to_owned(),
    ];
    let env = vec![(CONNECT_HELPER_ENV.to_owned(), name.to_owned())];
    fx.run_program(program, args, env).await.1
}

#[tokio::test]
async fn a_command_cannot_reach_an_abstract_socket_outside_its_sandbox() {
    use std::os::linux::net::SocketAddrExt;
    let Some(fx) = Fixture::confined() else {
        return;
    };
    if !kernel_has_scopes("the abstract socket test") {
        return;
    }
    let name = format!("punie-test-listener-{}", std::process::id());
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    // Listening outside the sandbox, as a session bus or an X server would.
    let _listener = std::os::unix::net::UnixListener::bind_addr(&address).unwrap();
    // The helper itself works: unconfined, it connects.
    let unconfined = Fixture::new(false);
    let output = connect_from(&unconfined, &name).await;
    assert!(output.contains("HELPER: connected"), "{output}");
    let output = connect_from(&fx, &name).await;
    assert!(
        output.contains("HELPER: refused"),
        "a confined command reached a listener outside its sandbox: {output}"
    );
}

// --- signals -------------------------------------------------------------------------------------

#[tokio::test]
async fn a_command_cannot_signal_a_process_outside_its_sandbox() {
    let Some(fx) = Fixture::confined() else {
        return;
    };
    if !kernel_has_scopes("the signal test") {
        return;
    }
    // Our own child: same user, so only the sandbox stands between it and the command.
    let mut outsider = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let (status, output) = fx.run(&format!("kill -TERM {}", outsider.id())).await;
    let survived = outsider.try_wait().unwrap().is_none();
    let _ = outsider.kill();
    let _ = outsider.wait();
    assert!(!status.success(), "the kill was allowed: {output}");
    assert!(survived, "the process outside the sandbox was killed");
    // Inside its own sandbox, job control still works.
    let (status, output) = fx.run("sleep 30 & kill -TERM $! && wait $!; echo $?").await;
    assert!(status.success(), "{output}");
    assert!(
        output.trim_end().ends_with("143"),
        "the command's own child did not get the signal: {output}"
    );
}

// --- device nodes --------------------------------------------------------------------------------

fn running_as_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    // "Uid: real effective saved fs"
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

#[tokio::test]
async fn a_command_cannot_make_device_nodes_in_the_workspace() {
    if !running_as_root() {
        eprintln!("skipping: only root can mknod devices, and this test does not run as root");
        return;
    }
    // Without the sandbox, root can (unless the container withheld CAP_MKNOD).
    let unconfined = Fixture::new(false);
    let (status, output) = unconfined.run("mknod probe c 1 3").await;
    if !status.success() {
        eprintln!("skipping: even unconfined, mknod fails here: {output}");
        return;
    }
    let Some(fx) = Fixture::confined() else {
        return;
    };
    // A loop device (block 7,0) opened for write would be raw access to whatever it maps; a
    // char device such as /dev/mem's (1,1) is as bad.
    let (status, output) = fx.run("mknod loop0 b 7 0").await;
    assert!(!status.success(), "made a block device: {output}");
    assert!(!fx.root.join("loop0").exists());
    let (status, output) = fx.run("mknod mem c 1 1").await;
    assert!(!status.success(), "made a character device: {output}");
    assert!(!fx.root.join("mem").exists());
    // Nor in the shared temp dir, which is writable too.
    let temp_node = std::env::temp_dir().join(format!("punie-node-{}", std::process::id()));
    let (status, _) = fx
        .run(&format!("mknod '{}' c 1 3", temp_node.display()))
        .await;
    let made = temp_node.exists();
    let _ = std::fs::remove_file(&temp_node);
    assert!(!status.success() && !made, "made a device in the temp dir");
    // FIFOs and sockets are ordinary build-tool fare and stay allowed.
    let (status, output) = fx.run("mkfifo pipe && test -p pipe").await;
    assert!(status.success(), "{output}");
}
