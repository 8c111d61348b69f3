//! Plain `punie` started by hand in a terminal, the way a newcomer meets it: it says on stderr
//! what it is for and what to run instead, answers a typed line on stdout with the protocol's
//! parse error (and nothing else there), and ends with exit code 0 when the terminal is closed,
//! whether closing shows as a failing read (EIO) or as SIGHUP.
//!
//! The terminal is a real pseudo-terminal, driven by `support/pty_harness.py` (Python's `pty`
//! module, run with `python3`).

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// The harness, run by `python3 -c`.
const HARNESS: &str = include_str!("support/pty_harness.py");

/// How long one run may take in all; only a hang reaches it.
const PATIENCE_SECS: u64 = 60;

/// What the harness saw.
struct Run {
    code: Value,
    waited: bool,
    stdout: String,
    stderr: String,
}

/// Runs plain `punie` with stdin on a pseudo-terminal (see the harness for `spec`'s fields),
/// with logs in `logs` and a model server that is not there (nothing here asks it anything).
fn in_terminal(logs: &Path, spec: Value) -> Run {
    let mut spec = spec;
    spec["argv"] = json!([env!("CARGO_BIN_EXE_punie")]);
    spec["env"] = json!({
        "PATH": std::env::var("PATH").unwrap_or_default(),
        "PUNIE_MODEL": "http://127.0.0.1:9/v1/none",
        "PUNIE_LOG_DIR": logs.display().to_string(),
        "PUNIE_STATE_DIR": logs.join("state").display().to_string(),
    });
    spec["patience"] = json!(PATIENCE_SECS);
    let output = Command::new("python3")
        .arg("-c")
        .arg(HARNESS)
        .arg(spec.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs the pseudo-terminal harness (install python3 to run these tests)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the harness failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("the harness prints JSON");
    Run {
        code: report["code"].clone(),
        waited: report["waited"].as_bool().unwrap(),
        stdout: report["stdout"].as_str().unwrap().to_owned(),
        stderr: report["stderr"].as_str().unwrap().to_owned(),
    }
}

#[test]
fn in_a_terminal_punie_explains_itself_on_stderr_and_stdout_stays_the_protocol() {
    let logs = tempfile::tempdir().unwrap();
    let run = in_terminal(
        logs.path(),
        json!({
            "wait_for": "punie --help",
            "lines": [["hello punie", "-32700"]],
            "controlling": false,
            "stdout_on_terminal": false,
        }),
    );
    assert!(run.waited, "no hint on stderr: {:?}", run.stderr);
    for needle in [
        "editor",
        "JSON-RPC",
        "punie ask",
        "punie init",
        "punie doctor",
        "punie --help",
        "-32700",
    ] {
        assert!(run.stderr.contains(needle), "{needle:?} in {}", run.stderr);
    }
    // The typed line is answered on stdout, as an editor would be, and nothing else is there.
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{:?}", run.stdout);
    let frame: Value = serde_json::from_str(lines[0]).expect("stdout carries JSON-RPC only");
    assert_eq!(frame["error"]["code"], -32700, "{frame}");
    assert_eq!(frame["error"]["data"]["line"], "hello punie", "{frame}");
    // The terminal closed under a blocked read (EIO): the end of input, not a failure.
    assert_eq!(run.code, json!(0), "{}", run.stderr);
    assert!(!run.stderr.contains("Input/output error"), "{}", run.stderr);
    assert!(!run.stderr.contains("failed"), "{}", run.stderr);
}

#[test]
fn closing_its_controlling_terminal_ends_punie_with_exit_code_0() {
    let logs = tempfile::tempdir().unwrap();
    // As in a terminal window: stdin and stdout on the terminal, which is the session's
    // controlling terminal, so closing it sends SIGHUP as well.
    let run = in_terminal(
        logs.path(),
        json!({
            "wait_for": "punie --help",
            "lines": [],
            "controlling": true,
            "stdout_on_terminal": true,
        }),
    );
    assert!(run.waited, "no hint on stderr: {:?}", run.stderr);
    assert_eq!(run.code, json!(0), "{}", run.stderr);
    assert!(!run.stderr.contains("Input/output error"), "{}", run.stderr);
    let log = crate::support::served::log_text(logs.path());
    assert!(log.contains("punie exiting code=0"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn started_by_an_editor_punie_writes_nothing_to_stderr() {
    let logs = tempfile::tempdir().unwrap();
    let output = crate::support::served::punie_command(logs.path())
        .env("PUNIE_MODEL", "http://127.0.0.1:9/v1/none")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "",
        "no hint for an editor"
    );
}
