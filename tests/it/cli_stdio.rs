//! Plain `punie` (ACP on stdio) ends cleanly on a signal: exit code 0, log flushed.

use std::process::Stdio;

use tokio::io::AsyncReadExt;

use crate::support::served::{PATIENCE, eventually, log_text, punie_command};

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_and_sigint_end_plain_punie_cleanly() {
    for signal in [rustix::process::Signal::TERM, rustix::process::Signal::INT] {
        let logs = tempfile::tempdir().unwrap();
        let mut child = punie_command(logs.path())
            .env("PUNIE_MODEL", "http://127.0.0.1:9/v1/none")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Held open until punie exits: the signal, not the end of stdin, must end it.
        let _stdin = child.stdin.take();
        let mut stdout = child.stdout.take().unwrap();
        eventually("punie starts", || {
            log_text(logs.path()).contains("punie starting")
        })
        .await;
        let raw_pid = child.id().unwrap();
        // "punie starting" is logged before the signal handlers exist; a signal sent in between
        // would kill punie outright (more likely on a busy machine).
        eventually("punie catches the signal", || catches(raw_pid, signal)).await;
        let pid = rustix::process::Pid::from_raw(raw_pid as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
        let status = tokio::time::timeout(PATIENCE, child.wait())
            .await
            .expect("punie exits after the signal")
            .unwrap();
        assert_eq!(status.code(), Some(0), "{signal:?}");
        let mut printed = Vec::new();
        stdout.read_to_end(&mut printed).await.unwrap();
        assert!(printed.is_empty(), "{signal:?}");
        let log = log_text(logs.path());
        assert!(log.contains("shutting down"), "{signal:?}: {log}");
        assert!(log.contains("punie exiting"), "{signal:?}: flushed: {log}");
    }
}

/// Whether process `pid` has a handler for `signal` (its `SigCgt` mask in `/proc`).
fn catches(pid: u32, signal: rustix::process::Signal) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal.as_raw() - 1)) != 0)
}
