//! Inbound lines that cannot hurt the agent, through the real binary on pipes: bytes that are
//! not UTF-8, malformed requests (their id echoed), huge and over-long lines, SIGTERM during a
//! prompt, and a WebSocket binary frame that is not UTF-8.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio_tungstenite::tungstenite::Message;

use crate::support::fake_model::{FAKE_MODEL, FakeModelServer, Reply};
use crate::support::served::{PATIENCE, ServeConfig, Served, eventually, log_text, punie_command};

const INITIALIZE: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1}}"#;

/// `punie` on pipes, read line by line.
struct Piped {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    logs: tempfile::TempDir,
}

impl Piped {
    fn start(model: &str) -> Self {
        let logs = tempfile::tempdir().unwrap();
        let mut child = punie_command(logs.path())
            .env("PUNIE_MODEL", model)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdin,
            stdout,
            logs,
        }
    }

    fn unreachable_model() -> Self {
        Self::start("http://127.0.0.1:9/v1/none")
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn send_line(&mut self, line: &str) {
        self.send(format!("{line}\n").as_bytes()).await;
    }

    /// The next line punie writes, as text.
    async fn next_raw(&mut self) -> String {
        tokio::time::timeout(PATIENCE, self.stdout.next_line())
            .await
            .expect("punie answers in time")
            .unwrap()
            .expect("punie is still running")
    }

    async fn next(&mut self) -> Value {
        let line = self.next_raw().await;
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Sends `initialize` and checks it is answered: the agent is alive and serving.
    async fn still_serves(&mut self) {
        self.send_line(INITIALIZE).await;
        let reply = self.next().await;
        assert_eq!(reply["id"], 1, "{reply}");
        assert_eq!(reply["result"]["protocolVersion"], 1, "{reply}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_line_that_is_not_utf8_is_answered_and_the_agent_keeps_serving() {
    let mut punie = Piped::unreachable_model();
    punie.send(b"\xff\n").await;
    let reply = punie.next().await;
    assert_eq!(reply["id"], Value::Null, "{reply}");
    assert_eq!(reply["error"]["code"], -32700, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("not UTF-8"), "{message}");
    punie.still_serves().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_their_id_back() {
    let mut punie = Piped::unreachable_model();
    let echoed = [
        (
            r#"{"jsonrpc":"2.0","id":11,"method":"initialize","params":"x"}"#,
            "11",
            "params",
        ),
        (
            r#"{"jsonrpc":"2.0","id":"twelve","method":"initialize","params":12}"#,
            r#""twelve""#,
            "params",
        ),
        (r#"{"jsonrpc":"2.0","id":5}"#, "5", "method"),
        (r#"{"jsonrpc":"2.0","id":13,"method":14}"#, "13", "method"),
        (r#"{"id":15,"method":"initialize"}"#, "15", "jsonrpc"),
        (
            r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"initialize"}"#,
            "123456789012345678901234567890",
            "out of range",
        ),
    ];
    for (line, id, says) in echoed {
        punie.send_line(line).await;
        let raw = punie.next_raw().await;
        assert!(raw.contains(&format!(r#""id":{id},"#)), "{line} -> {raw}");
        let reply: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(reply["error"]["code"], -32600, "{raw}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{line} -> {message}");
    }
    // Not valid JSON-RPC ids, so they cannot be echoed: null, and the message says why.
    for (id, what) in [("1.5", "fractional"), ("true", "boolean"), ("[1]", "array")] {
        punie
            .send_line(&format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"initialize"}}"#
            ))
            .await;
        let reply = punie.next().await;
        assert_eq!(reply["id"], Value::Null, "{reply}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.contains(what), "{id} -> {message}");
    }
    punie.still_serves().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_bad_line_gets_a_small_error() {
    let mut punie = Piped::unreachable_model();
    let mut garbage = vec![b'x'; 20_000_000];
    garbage.push(b'\n');
    punie.send(&garbage).await;
    let raw = punie.next_raw().await;
    assert!(raw.len() < 4096, "a {}-byte error", raw.len());
    let reply: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(reply["error"]["code"], -32700, "{raw}");
    assert_eq!(reply["error"]["data"]["lineBytes"], 20_000_000, "{raw}");

    // A 20 MB method name is not repeated in full either.
    punie.still_serves().await;
    let method = "m".repeat(20_000_000);
    punie
        .send_line(&format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"{method}","params":{{}}}}"#
        ))
        .await;
    let raw = punie.next_raw().await;
    assert!(raw.len() < 8192, "a {}-byte error", raw.len());
    let reply: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(reply["id"], 2, "{raw}");
    assert_eq!(reply["error"]["code"], -32601, "{raw}");
    punie.still_serves().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_over_long_line_gets_the_limit_error_and_the_next_line_is_served() {
    let mut punie = Piped::unreachable_model();
    let limit = punie::acp::MAX_LINE_BYTES;
    // One byte past the limit, no newline yet: the error must not wait for the line's end.
    let chunk = vec![b'x'; 1024 * 1024];
    let mut sent = 0;
    while sent <= limit {
        punie.send(&chunk).await;
        sent += chunk.len();
    }
    let reply = punie.next().await;
    assert_eq!(reply["id"], Value::Null, "{reply}");
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert_eq!(reply["error"]["data"]["limit"], limit, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains(&limit.to_string()), "{message}");
    // The rest of that line is discarded, and the next line is served.
    punie.send(&chunk).await;
    punie.send(b"\n").await;
    punie.still_serves().await;
}

/// Whether process `pid` has a handler for SIGTERM (its `SigCgt` mask in `/proc`).
fn catches_sigterm(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let term = rustix::process::Signal::TERM.as_raw();
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (term - 1)) != 0)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_prompt_answers_it_cancelled_before_exit() {
    let server = FakeModelServer::start().await;
    // A model that sends a little, then nothing: the turn runs until cancelled.
    server.push(Reply::text("one two three four five six").hang_after(3));
    let workspace = tempfile::tempdir().unwrap();
    let mut punie = Piped::start(&server.spec_for(FAKE_MODEL));
    punie.still_serves().await;
    let cwd = workspace.path().to_str().unwrap();
    punie
        .send_line(
            &json!({"jsonrpc":"2.0","id":2,"method":"session/new",
                "params":{"cwd":cwd,"mcpServers":[]}})
            .to_string(),
        )
        .await;
    let opened = punie.next().await;
    let session = opened["result"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("{opened}"))
        .to_owned();
    punie
        .send_line(
            &json!({"jsonrpc":"2.0","id":3,"method":"session/prompt",
                "params":{"sessionId":session,"prompt":[{"type":"text","text":"count"}]}})
            .to_string(),
        )
        .await;
    // The turn is running once its first chunk has arrived.
    loop {
        let frame = punie.next().await;
        if frame["method"] == "session/update"
            && frame["params"]["update"]["sessionUpdate"] == "agent_message_chunk"
        {
            break;
        }
        assert_ne!(frame["id"], 3, "the prompt ended early: {frame}");
    }
    let pid = punie.child.id().unwrap();
    eventually("punie catches SIGTERM", || catches_sigterm(pid)).await;
    let raw_pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
    rustix::process::kill_process(raw_pid, rustix::process::Signal::TERM).unwrap();
    let answer = loop {
        let frame = punie.next().await;
        if frame["id"] == 3 {
            break frame;
        }
    };
    assert_eq!(answer["result"]["stopReason"], "cancelled", "{answer}");
    let status = tokio::time::timeout(PATIENCE, punie.child.wait())
        .await
        .expect("punie exits after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let log = log_text(punie.logs.path());
    assert!(log.contains("shutting down"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_websocket_binary_frame_is_read_like_a_line_on_stdio() {
    let served = Served::start(ServeConfig::default()).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(served.ws_url())
        .await
        .unwrap();

    // Invalid UTF-8 gets exactly the error stdio gives for the same bytes.
    let bad =
        b"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"initialize\",\"params\":{\"x\":\"\xff\"}}";
    socket
        .send(Message::Binary(bad.to_vec().into()))
        .await
        .unwrap();
    let over_websocket = next_text(&mut socket).await;
    let mut punie = Piped::unreachable_model();
    punie.send(bad).await;
    punie.send(b"\n").await;
    let over_stdio = punie.next().await;
    assert_eq!(over_websocket["id"], 9, "{over_websocket}");
    assert_eq!(over_websocket["error"]["code"], -32700, "{over_websocket}");
    assert_eq!(over_websocket, over_stdio);

    // A binary frame holding valid UTF-8 JSON is served like a text frame.
    socket
        .send(Message::Binary(INITIALIZE.as_bytes().to_vec().into()))
        .await
        .unwrap();
    let reply = next_text(&mut socket).await;
    assert_eq!(reply["id"], 1, "{reply}");
    assert_eq!(reply["result"]["protocolVersion"], 1, "{reply}");
}

async fn next_text<S>(socket: &mut S) -> Value
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("an answer in time")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(text) = frame {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}
