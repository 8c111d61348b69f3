//! Running commands locally: one process group per command (killed whole), output captured into
//! one capped buffer, children that die with Punie, and the Landlock sandbox applied in the child.
//!
//! Each command is spawned by, and waited for on, its own small thread. The thread lives exactly
//! as long as the child, which matters because `PR_SET_PDEATHSIG` fires when the *thread* that
//! forked exits, not only the process: spawning from a pool thread that later retires would kill
//! a healthy command.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cap_std::fs::Dir;
use futures::future::BoxFuture;
use rustix::process::{Pid, Signal};
use tokio::net::unix::pipe::Receiver;
use tokio::sync::{oneshot, watch};

use super::output::OutputBuffer;
use super::root::{map_io_error, relative_to_root};
use super::sandbox::{LandlockStatus, Sandbox, SandboxOptions};
use super::shared;
use crate::workspace::{
    CommandRequest, ExitStatus, Result, TerminalId, TerminalOutput, Terminals, WorkspaceError,
};

/// Output kept per command when the request sets no limit: 1 MiB (the most recent bytes).
pub const DEFAULT_OUTPUT_BYTE_LIMIT: u64 = 1024 * 1024;

/// Commands run on this machine, confined to the workspace root.
#[derive(Debug)]
pub struct LocalTerminals {
    root: PathBuf,
    dir: Arc<Dir>,
    sandbox: Arc<Sandbox>,
    next_id: AtomicU64,
    terminals: Mutex<HashMap<TerminalId, Arc<Terminal>>>,
}

/// One command, running or finished.
#[derive(Debug)]
struct Terminal {
    /// The child's pid, which is also its process group id.
    pgid: Pid,
    command: String,
    shared: Arc<Mutex<Shared>>,
    exited: watch::Receiver<Option<ExitStatus>>,
    reader: tokio::task::JoinHandle<()>,
    /// Dropped with the terminal: tells its thread to kill what is left of the group and reap
    /// the leader.
    _release: std::sync::mpsc::Sender<()>,
}

/// What the reader task and the waiter thread both update.
#[derive(Debug)]
struct Shared {
    output: OutputBuffer,
    exit_status: Option<ExitStatus>,
}

impl LocalTerminals {
    /// Prepares to run commands in `root` (an existing directory, absolute path), confined as
    /// `options` say. The root handle and the Landlock ruleset are shared with every other
    /// user of the same directory (and options), so another session there costs no
    /// descriptor.
    pub fn new(root: PathBuf, options: SandboxOptions) -> Result<Self> {
        let dir = shared::root_dir(&root)?;
        let sandbox = shared::sandbox(&root, &dir, &options)?;
        Ok(Self {
            root,
            dir,
            sandbox,
            next_id: AtomicU64::new(1),
            terminals: Mutex::new(HashMap::new()),
        })
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether Landlock confines the commands, for logs and tests.
    pub fn landlock_status(&self) -> &LandlockStatus {
        self.sandbox.status()
    }

    fn table(&self) -> MutexGuard<'_, HashMap<TerminalId, Arc<Terminal>>> {
        self.terminals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, id: &TerminalId) -> Result<Arc<Terminal>> {
        self.table().get(id).cloned().ok_or_else(|| unknown(id))
    }

    /// Checks the request and hands the command to its own thread, which spawns it; the
    /// returned [`Starting`] resolves once the child has exec'd (or failed to).
    fn start(&self, request: CommandRequest) -> Result<Starting> {
        let failed = |operation: &'static str, err: std::io::Error| WorkspaceError::Io {
            operation,
            path: request.command.clone(),
            reason: err.to_string(),
        };
        // The working directory is opened beneath the root (refusing symlinks that lead out) and
        // the child enters it by descriptor, so a swap after this check changes nothing.
        let relative = relative_to_root(&request.cwd, &self.root)?;
        let display = request.cwd.absolute().display().to_string();
        let cwd = if relative.as_os_str().is_empty() {
            self.dir.try_clone()
        } else {
            self.dir.open_dir(&relative)
        }
        .map_err(|err| map_io_error(err, "entering", &display, &self.root))?;
        let cwd = OwnedFd::from(cwd.into_std_file());

        let limit = request
            .output_byte_limit
            .unwrap_or(DEFAULT_OUTPUT_BYTE_LIMIT);
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        // One pipe for stdout and stderr: the output is interleaved exactly as written.
        let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|err| failed("running", err.into()))?;
        let writer_too = writer.try_clone().map_err(|err| failed("running", err))?;
        // Non-blocking from here on: the reader task waits for readiness, the waiter drains.
        let reader =
            Arc::new(Receiver::from_owned_fd(reader).map_err(|err| failed("running", err))?);

        let mut command = std::process::Command::new(&request.command);
        command
            .args(&request.args)
            .envs(request.env.iter().map(|(k, v)| (k, v)))
            .env("PWD", request.cwd.absolute())
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::from(writer_too))
            .process_group(0);
        let parent = rustix::process::getpid();
        #[cfg(target_os = "linux")]
        let mut ruleset = self
            .sandbox
            .child_ruleset()
            .map_err(|err| failed("running", err))?;
        // SAFETY: the closure runs in the forked child before exec and only makes raw system
        // calls (prctl, getppid, fchdir, landlock_restrict_self); it allocates nothing and takes
        // no locks.
        unsafe {
            command.pre_exec(move || {
                #[cfg(target_os = "linux")]
                {
                    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                    // Punie died between fork and prctl: nobody will kill us later.
                    if rustix::process::getppid() != Some(parent) {
                        return Err(std::io::Error::from_raw_os_error(
                            rustix::io::Errno::SRCH.raw_os_error(),
                        ));
                    }
                }
                #[cfg(not(target_os = "linux"))]
                let _ = parent;
                rustix::process::fchdir(&cwd)?;
                #[cfg(target_os = "linux")]
                if let Some(ruleset) = ruleset.take() {
                    super::sandbox::restrict_child(ruleset)?;
                }
                Ok(())
            });
        }

        let shared = Arc::new(Mutex::new(Shared {
            output: OutputBuffer::new(limit),
            exit_status: None,
        }));
        let (exit_sender, exited) = watch::channel(None);
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (spawned_sender, spawned) = oneshot::channel::<std::io::Result<Pid>>();
        let waiter_shared = Arc::clone(&shared);
        let waiter_reader = Arc::clone(&reader);
        let name = request.command.clone();
        std::thread::Builder::new()
            .name("punie-command".to_owned())
            .spawn(move || {
                let spawned_child = command.spawn();
                // Close our copies of the pipe's write end (and the cwd, and the ruleset) so
                // that the output reaches end-of-file when the command's processes are done.
                drop(command);
                let pid = match spawned_child {
                    // The `Child` is only a pid here: dropping it neither waits nor kills.
                    Ok(child) => Pid::from_child(&child),
                    Err(err) => {
                        let _ = spawned_sender.send(Err(err));
                        return;
                    }
                };
                if spawned_sender.send(Ok(pid)).is_err() {
                    // `create` was abandoned before it could record the command: nobody could
                    // ever kill it, so do it now.
                    kill_and_reap(pid);
                    return;
                }
                let status = wait_without_reaping(pid, &name);
                let mut shared = waiter_shared.lock().unwrap_or_else(PoisonError::into_inner);
                // Whatever the command wrote before exiting is in the pipe now: take it before
                // announcing the exit, so `output` after `wait_for_exit` is complete.
                drain(waiter_reader.as_fd(), &mut shared.output);
                shared.exit_status = Some(status.clone());
                drop(shared);
                let _ = exit_sender.send(Some(status));
                // The exited leader stays a zombie until the terminal is released: while it
                // exists, its pid (the group id) cannot be reused, so a late kill can only
                // reach this command's own group.
                let _ = released.recv();
                kill_and_reap(pid);
            })
            .map_err(|err| failed("running", err))?;
        Ok(Starting {
            command: request.command,
            release,
            spawned: SpawnOutcome(spawned),
            reader,
            shared,
            exited,
        })
    }
}

/// The news that a command started. Dropped unread (its `create` abandoned at just the wrong
/// moment), it kills the command, which nobody could otherwise reach.
struct SpawnOutcome(oneshot::Receiver<std::io::Result<Pid>>);

impl Drop for SpawnOutcome {
    fn drop(&mut self) {
        if let Ok(Ok(pid)) = self.0.try_recv() {
            let _ = rustix::process::kill_process_group(pid, Signal::KILL);
        }
    }
}

/// A command handed to its thread, not yet known to have started.
struct Starting {
    command: String,
    release: std::sync::mpsc::Sender<()>,
    spawned: SpawnOutcome,
    reader: Arc<Receiver>,
    shared: Arc<Mutex<Shared>>,
    exited: watch::Receiver<Option<ExitStatus>>,
}

impl Starting {
    async fn started(mut self) -> Result<Terminal> {
        let pgid = match (&mut self.spawned.0).await {
            Ok(Ok(pid)) => pid,
            Ok(Err(err)) => return Err(spawn_error(&self.command, err)),
            Err(_) => {
                return Err(WorkspaceError::Io {
                    operation: "running",
                    path: self.command,
                    reason: "the thread starting the command ended early".to_owned(),
                });
            }
        };
        let reader = tokio::spawn(read_output(self.reader, Arc::clone(&self.shared)));
        Ok(Terminal {
            pgid,
            command: self.command,
            _release: self.release,
            shared: self.shared,
            exited: self.exited,
            reader,
        })
    }
}

impl Terminals for LocalTerminals {
    fn create<'a>(&'a self, request: CommandRequest) -> BoxFuture<'a, Result<TerminalId>> {
        Box::pin(async move {
            let terminal = self.start(request)?.started().await?;
            let id = TerminalId(format!(
                "local-{}",
                self.next_id.fetch_add(1, Ordering::Relaxed)
            ));
            tracing::debug!(id = %id.0, command = %terminal.command, pgid = terminal.pgid.as_raw_nonzero(), "started a command");
            self.table().insert(id.clone(), Arc::new(terminal));
            Ok(id)
        })
    }

    fn output<'a>(&'a self, id: &'a TerminalId) -> BoxFuture<'a, Result<TerminalOutput>> {
        Box::pin(async move {
            let terminal = self.get(id)?;
            let shared = terminal
                .shared
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let finished = shared.exit_status.is_some();
            Ok(TerminalOutput {
                output: shared.output.text(finished),
                truncated: shared.output.truncated(),
                exit_status: shared.exit_status.clone(),
            })
        })
    }

    fn wait_for_exit<'a>(&'a self, id: &'a TerminalId) -> BoxFuture<'a, Result<ExitStatus>> {
        Box::pin(async move {
            let mut exited = self.get(id)?.exited.clone();
            if let Ok(status) = exited.wait_for(Option::is_some).await {
                return Ok(status.clone().unwrap_or_default());
            }
            // The waiter thread is gone; it always publishes the status before it ends.
            let status = exited.borrow().clone();
            status.ok_or_else(|| WorkspaceError::Io {
                operation: "waiting for",
                path: id.0.clone(),
                reason: "the command's watcher ended without an exit status".to_owned(),
            })
        })
    }

    fn kill<'a>(&'a self, id: &'a TerminalId) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.get(id)?.kill();
            Ok(())
        })
    }

    fn release<'a>(&'a self, id: &'a TerminalId) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let terminal = self.table().remove(id).ok_or_else(|| unknown(id))?;
            terminal.kill();
            terminal.reader.abort();
            Ok(())
        })
    }

    fn provider(&self) -> &'static str {
        "local"
    }
}

impl Drop for LocalTerminals {
    fn drop(&mut self) {
        for terminal in self.table().values() {
            terminal.kill();
            terminal.reader.abort();
        }
    }
}

impl Terminal {
    /// Sends SIGKILL to the whole process group: the command and everything it started that
    /// stayed in its group. A group that is already gone is not an error.
    fn kill(&self) {
        match rustix::process::kill_process_group(self.pgid, Signal::KILL) {
            Ok(()) => {}
            Err(rustix::io::Errno::SRCH) => {}
            Err(err) => {
                tracing::warn!(command = %self.command, "killing the command failed: {err}")
            }
        }
    }
}

fn unknown(id: &TerminalId) -> WorkspaceError {
    WorkspaceError::Io {
        operation: "using terminal",
        path: id.0.clone(),
        reason: "no such terminal (it was never created here, or it was released)".to_owned(),
    }
}

fn spawn_error(command: &str, err: std::io::Error) -> WorkspaceError {
    let reason = match err.kind() {
        std::io::ErrorKind::NotFound => format!("command not found ({err})"),
        std::io::ErrorKind::PermissionDenied => format!("permission denied ({err})"),
        _ => err.to_string(),
    };
    WorkspaceError::Io {
        operation: "running",
        path: command.to_owned(),
        reason,
    }
}

/// Copies the command's output into the buffer as it arrives, until every writer is gone.
async fn read_output(reader: Arc<Receiver>, shared: Arc<Mutex<Shared>>) {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        if let Err(err) = reader.readable().await {
            tracing::warn!("reading a command's output failed: {err}");
            return;
        }
        // The lock is held across the read so that the waiter thread's final drain and this
        // read cannot reorder output.
        let result = reader.try_io(|| {
            let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
            let n = rustix::io::read(reader.as_fd(), &mut chunk[..])?;
            shared.output.push(&chunk[..n]);
            Ok(n)
        });
        match result {
            Ok(0) => return,
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => {
                tracing::warn!("reading a command's output failed: {err}");
                return;
            }
        }
    }
}

/// Reads what the non-blocking pipe holds right now, and no more, so that a background process
/// still writing cannot keep us here.
fn drain(fd: std::os::fd::BorrowedFd<'_>, output: &mut OutputBuffer) {
    let mut pending = rustix::io::ioctl_fionread(fd).unwrap_or(0);
    let mut chunk = [0u8; 16 * 1024];
    while pending > 0 {
        let want = chunk
            .len()
            .min(usize::try_from(pending).unwrap_or(usize::MAX));
        match rustix::io::read(fd, &mut chunk[..want]) {
            Ok(0) => return,
            Ok(n) => {
                output.push(&chunk[..n]);
                pending = pending.saturating_sub(n as u64);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

/// Waits until the child exits, leaving it unreaped (`WNOWAIT`).
fn wait_without_reaping(pid: Pid, command: &str) -> ExitStatus {
    use rustix::process::{WaitId, WaitIdOptions, waitid};
    loop {
        match waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {
            Ok(Some(status)) => {
                return ExitStatus {
                    exit_code: status
                        .exit_status()
                        .and_then(|code| u32::try_from(code).ok()),
                    signal: status.terminating_signal().map(signal_name),
                };
            }
            Ok(None) | Err(rustix::io::Errno::INTR) => {}
            Err(err) => {
                tracing::warn!(command, "waiting for a command failed: {err}");
                return ExitStatus::default();
            }
        }
    }
}

/// Kills whatever is left of the group, then reaps the leader.
fn kill_and_reap(pid: Pid) {
    let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    loop {
        match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()) {
            Err(rustix::io::Errno::INTR) => {}
            _ => return,
        }
    }
}

/// The conventional name of a signal number, e.g. "SIGKILL".
fn signal_name(number: i32) -> String {
    const NAMES: &[(Signal, &str)] = &[
        (Signal::HUP, "SIGHUP"),
        (Signal::INT, "SIGINT"),
        (Signal::QUIT, "SIGQUIT"),
        (Signal::ILL, "SIGILL"),
        (Signal::TRAP, "SIGTRAP"),
        (Signal::ABORT, "SIGABRT"),
        (Signal::BUS, "SIGBUS"),
        (Signal::FPE, "SIGFPE"),
        (Signal::KILL, "SIGKILL"),
        (Signal::USR1, "SIGUSR1"),
        (Signal::SEGV, "SIGSEGV"),
        (Signal::USR2, "SIGUSR2"),
        (Signal::PIPE, "SIGPIPE"),
        (Signal::ALARM, "SIGALRM"),
        (Signal::TERM, "SIGTERM"),
        (Signal::CHILD, "SIGCHLD"),
        (Signal::CONT, "SIGCONT"),
        (Signal::STOP, "SIGSTOP"),
        (Signal::TSTP, "SIGTSTP"),
        (Signal::TTIN, "SIGTTIN"),
        (Signal::TTOU, "SIGTTOU"),
        (Signal::URG, "SIGURG"),
        (Signal::XCPU, "SIGXCPU"),
        (Signal::XFSZ, "SIGXFSZ"),
        (Signal::VTALARM, "SIGVTALRM"),
        (Signal::PROF, "SIGPROF"),
        (Signal::WINCH, "SIGWINCH"),
        (Signal::IO, "SIGIO"),
        (Signal::SYS, "SIGSYS"),
    ];
    NAMES
        .iter()
        .find(|(signal, _)| signal.as_raw() == number)
        .map_or_else(|| format!("SIG{number}"), |(_, name)| (*name).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_have_their_usual_names() {
        assert_eq!(signal_name(Signal::KILL.as_raw()), "SIGKILL");
        assert_eq!(signal_name(Signal::TERM.as_raw()), "SIGTERM");
        assert_eq!(signal_name(200), "SIG200");
    }
}
