//! End-to-end at the byte level: malformed JSON-RPC, unknown methods and bad params get the
//! right error codes, the agent keeps serving, and stdout carries nothing but JSON-RPC.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

struct Punie {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    _logs: tempfile::TempDir,
}

impl Punie {
    fn start() -> Self {
        let logs = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_punie"))
            .env("PUNIE_LOG_DIR", logs.path())
            .env("PUNIE_STATE_DIR", logs.path().join("state"))
            .env("PUNIE_MODEL", "http://127.0.0.1:9/v1/none")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin: Some(stdin),
            lines,
            _logs: logs,
        }
    }

    fn send_raw(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    fn send(&mut self, message: Value) {
        self.send_raw(&message.to_string());
    }

    /// The next answer on stdout, past the notifications before it (a new session's command
    /// menu, say), which must be JSON-RPC too.
    fn recv(&self) -> Value {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .expect("an answer on stdout");
            let frame: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            if frame.get("id").is_some() || frame.get("method").is_none() {
                return frame;
            }
            assert_eq!(frame["jsonrpc"], "2.0", "{frame}");
        }
    }

    fn initialize(&mut self, version: u64) -> Value {
        self.send(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": version}}));
        self.recv()
    }
}

impl Drop for Punie {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_client_asking_for_another_version_gets_1() {
    let mut punie = Punie::start();
    let answer = punie.initialize(7);
    assert_eq!(answer["result"]["protocolVersion"], 1, "{answer}");
    assert_eq!(answer["result"]["agentInfo"]["name"], "punie");
    assert_eq!(
        answer["result"]["agentCapabilities"]["loadSession"], true,
        "saved sessions can be loaded (specs/sessions.md)"
    );
}

#[test]
fn bad_input_gets_the_right_error_and_the_agent_keeps_serving() {
    let mut punie = Punie::start();
    punie.initialize(1);

    punie.send_raw("{this is not json");
    let answer = punie.recv();
    assert_eq!(answer["error"]["code"], -32700, "{answer}");
    assert_eq!(answer["id"], Value::Null);

    punie.send(json!({"jsonrpc": "2.0", "id": 1, "method": "no/such_method", "params": {}}));
    let answer = punie.recv();
    assert_eq!(
        (answer["id"].clone(), answer["error"]["code"].clone()),
        (json!(1), json!(-32601)),
        "{answer}"
    );

    punie.send(json!({"jsonrpc": "2.0", "id": 2, "method": "session/new", "params": {"cwd": 42, "mcpServers": []}}));
    let answer = punie.recv();
    assert_eq!(
        (answer["id"].clone(), answer["error"]["code"].clone()),
        (json!(2), json!(-32602)),
        "{answer}"
    );

    punie.send(json!({"jsonrpc": "2.0", "id": 3, "method": "session/new", "params": {"cwd": "relative/dir", "mcpServers": []}}));
    let answer = punie.recv();
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("absolute"),
        "{answer}"
    );

    punie.send(json!({"jsonrpc": "2.0", "id": 4, "method": "session/prompt", "params": {"sessionId": "sess_missing", "prompt": [{"type": "text", "text": "hi"}]}}));
    let answer = punie.recv();
    assert_eq!(answer["id"], 4);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sess_missing"),
        "names the session: {answer}"
    );

    // A cancel for an unknown session is a notification: no answer, no crash.
    punie.send(json!({"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": "sess_missing"}}));

    let dir = tempfile::tempdir().unwrap();
    punie.send(json!({"jsonrpc": "2.0", "id": 5, "method": "session/new", "params": {"cwd": dir.path(), "mcpServers": []}}));
    let answer = punie.recv();
    assert_eq!(answer["id"], 5);
    assert!(
        answer["result"]["sessionId"]
            .as_str()
            .unwrap()
            .starts_with("sess_"),
        "still serving: {answer}"
    );

    punie.send(json!({"jsonrpc": "2.0", "id": 6, "method": "authenticate", "params": {"methodId": "none"}}));
    let answer = punie.recv();
    assert_eq!(answer["id"], 6);
    assert!(
        answer.get("result").is_some(),
        "authenticate succeeds: {answer}"
    );
}

#[test]
fn exits_cleanly_when_the_editor_closes_stdin() {
    let mut punie = Punie::start();
    punie.initialize(1);
    drop(punie.stdin.take());
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = punie.child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = status.expect("punie exits after stdin EOF");
    assert!(status.success(), "{status:?}");
}
