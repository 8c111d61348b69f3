//! Plain `punie` (ACP on stdio) ends cleanly on a signal: exit code 0, log flushed.

mod support;

use std::process::Stdio;

use tokio::io::AsyncReadExt;

use support::served::{PATIENCE, eventually, log_text, punie_command};

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
        let pid = rustix::process::Pid::from_raw(child.id().unwrap() as i32).unwrap();
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
