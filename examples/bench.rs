//! Punie's own overhead, measured against instant models and in-process clients: start-up,
//! `session/new`, the agent's cost per tool round trip, relaying streamed text, peak memory of
//! a 50-tool-call session, and 100 concurrent sessions. Prints a table, then the same figures
//! as JSON (also written to the path given with `--json PATH`).
//!
//! Run (release mode; start-up and memory spawn the release `punie` binary, built first):
//!
//! ```text
//! cargo build --release && cargo run --release --example bench
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    ContentBlock, InitializeRequest, NewSessionRequest, PromptRequest, SessionNotification,
    SessionUpdate,
};
use agent_client_protocol::{Agent as AgentRole, Channel, Client};
use futures::future::BoxFuture;
use punie::agent::{Agent, ModelRequestStats, StopReason, ToolCallStats, TurnObserver};
use punie::llm::{
    ChatModel, ChatRequest, FinishReason, LlmError, Message, ModelEvent, ModelStream, ToolCall,
};
use punie::testing::{FakeEditor, ScriptedModel};
use serde_json::{Value, json};

/// One measured figure.
struct Figure {
    name: &'static str,
    value: f64,
    unit: &'static str,
    /// The target, as "below this" (or "exactly" for error counts).
    target: Option<f64>,
    detail: String,
}

fn quantile(samples: &mut [f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A field of `/proc/<pid>/status` given in kB, in MiB.
fn status_field(pid: &str, name: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// `(VmHWM, VmRSS)` of a process, in MiB.
fn memory_of(pid: &str) -> (f64, f64) {
    (status_field(pid, "VmHWM:"), status_field(pid, "VmRSS:"))
}

/// Resident memory split into heap and the like (`RssAnon`) and mapped files (`RssFile`, mostly
/// the binary's own code), in MiB.
fn rss_split(pid: &str) -> String {
    format!(
        "anon {:.1} + file {:.1}",
        status_field(pid, "RssAnon:"),
        status_field(pid, "RssFile:")
    )
}

/// The release `punie` next to this example (`target/release/examples/bench`), or `PUNIE_BIN`.
fn punie_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("PUNIE_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/examples")
        .join("punie");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build --release` first (or set PUNIE_BIN)",
        bin.display()
    );
    bin
}

// ---------------------------------------------------------------------------------------------
// Start-up: spawn → `initialize` answered.

fn startup(logs: &Path) -> Figure {
    let bin = punie_binary();
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": 1, "clientCapabilities": {}}})
    .to_string()
        + "\n";
    let mut samples = Vec::new();
    for run in 0..40 {
        let started = Instant::now();
        let mut child = Command::new(&bin)
            .arg("--log-dir")
            .arg(logs)
            .env("PUNIE_MODEL", "http://127.0.0.1:9/v1/none")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn punie");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(init.as_bytes()).unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let elapsed = started.elapsed();
        assert!(line.contains("\"result\""), "initialize answered: {line}");
        drop(stdin);
        child.wait().unwrap();
        if run >= 5 {
            samples.push(ms(elapsed));
        }
    }
    let p50 = quantile(&mut samples, 0.5);
    Figure {
        name: "start-up (spawn → initialize answered), p50",
        value: p50,
        unit: "ms",
        target: Some(10.0),
        detail: format!(
            "min {:.2}, p95 {:.2}, {} runs",
            quantile(&mut samples, 0.0),
            quantile(&mut samples, 0.95),
            samples.len()
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// session/new over the in-memory transport.

async fn session_new() -> Figure {
    let agent = Agent::builder()
        .model(ScriptedModel::new())
        .build()
        .unwrap();
    let editor = FakeEditor::new();
    let connection = editor.connect(agent).await.unwrap();
    let mut samples = Vec::new();
    for _ in 0..1000 {
        let started = Instant::now();
        connection.new_session("/project").await.unwrap();
        samples.push(ms(started.elapsed()));
    }
    connection.close().await;
    let p50 = quantile(&mut samples, 0.5);
    Figure {
        name: "session/new (in memory), p50",
        value: p50,
        unit: "ms",
        target: None,
        detail: format!("p95 {:.3}, 1000 sessions", quantile(&mut samples, 0.95)),
    }
}

// ---------------------------------------------------------------------------------------------
// Agent overhead per tool round trip: turn time minus model time minus editor time.

#[derive(Default)]
struct Clock {
    turn_us: AtomicU64,
    model_us: AtomicU64,
    editor_us: AtomicU64,
    tool_us: AtomicU64,
    wait_us: AtomicU64,
    editor_requests: AtomicU64,
}

fn add(counter: &AtomicU64, d: Duration) {
    counter.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
}

impl TurnObserver for Clock {
    fn turn_finished(&self, _: &str, _: Option<StopReason>, elapsed: Duration) {
        add(&self.turn_us, elapsed);
    }
    fn model_request(&self, _: &str, stats: &ModelRequestStats) {
        add(&self.model_us, stats.total);
    }
    fn tool_call(&self, _: &str, stats: &ToolCallStats) {
        add(&self.tool_us, stats.elapsed);
    }
    fn permission_wait(&self, _: &str, _: &str, waited: Duration) {
        add(&self.wait_us, waited);
    }
    fn editor_request(&self, _: &str, _: &str, elapsed: Duration, _: bool) {
        add(&self.editor_us, elapsed);
        self.editor_requests.fetch_add(1, Ordering::Relaxed);
    }
}

/// A tool that does nothing, to see the loop's own cost without any editor round trip.
struct Noop;

impl punie::tools::Tool for Noop {
    fn name(&self) -> &str {
        "noop"
    }
    fn description(&self) -> &str {
        "Does nothing."
    }
    fn parameters(&self) -> Value {
        json!({"type": "object", "properties": {}})
    }
    fn kind(&self) -> punie::workspace::ToolKind {
        punie::workspace::ToolKind::Other
    }
    fn call<'a>(
        &'a self,
        _args: Value,
        _ctx: &'a punie::tools::ToolContext,
    ) -> BoxFuture<'a, Result<punie::tools::ToolOutput, punie::tools::ToolError>> {
        Box::pin(async { Ok(punie::tools::ToolOutput::text("ok")) })
    }
}

/// Runs `runs` turns of `calls` calls of `tool`; returns (overhead per call, editor round trip)
/// in ms, p50 over the runs.
async fn tool_turns(tool: &str, calls: usize, runs: usize) -> (f64, f64, f64) {
    let mut overheads = Vec::new();
    let mut round_trips = Vec::new();
    let mut totals = Vec::new();
    for run in 0..runs + 2 {
        let model = Arc::new(ScriptedModel::new());
        for _ in 0..calls {
            model.tool_call(tool, json!({"path": "src/lib.rs"}));
        }
        model.text("Done.");
        let clock = Arc::new(Clock::default());
        let agent = Agent::builder()
            .shared_model(model)
            .tool(Noop)
            .max_turn_requests(calls as u32 + 5)
            .observer(clock.clone())
            .build()
            .unwrap();
        let editor = FakeEditor::new().with_file("/project/src/lib.rs", "pub fn f() {}\n");
        let connection = editor.connect(agent).await.unwrap();
        let session = connection.new_session("/project").await.unwrap();
        let stop = connection.prompt(&session, "go").await.unwrap();
        assert_eq!(stop, StopReason::EndTurn);
        connection.close().await;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64 / 1000.0;
        let turn = get(&clock.turn_us);
        let overhead = turn - get(&clock.model_us) - get(&clock.editor_us) - get(&clock.wait_us);
        let requests = clock.editor_requests.load(Ordering::Relaxed).max(1) as f64;
        if run >= 2 {
            overheads.push(overhead / calls as f64);
            round_trips.push(get(&clock.editor_us) / requests);
            totals.push(turn / calls as f64);
        }
    }
    (
        quantile(&mut overheads, 0.5),
        quantile(&mut round_trips, 0.5),
        quantile(&mut totals, 0.5),
    )
}

// ---------------------------------------------------------------------------------------------
// Stream relay: model chunk yielded → `agent_message_chunk` received by the client.

struct Timestamped {
    chunks: usize,
    /// Time between chunks; zero for a burst.
    every: Duration,
    yielded: Arc<Mutex<Vec<Option<Instant>>>>,
}

impl ChatModel for Timestamped {
    fn stream(&self, _request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        let (chunks, every, yielded) = (self.chunks, self.every, self.yielded.clone());
        Box::pin(async move {
            let start = tokio::time::Instant::now();
            let stream = futures::stream::unfold(0usize, move |i| {
                let yielded = yielded.clone();
                async move {
                    if i > chunks {
                        return None;
                    }
                    if i == chunks {
                        return Some((Ok(ModelEvent::Finished(FinishReason::Stop)), i + 1));
                    }
                    if !every.is_zero() {
                        tokio::time::sleep_until(start + every * i as u32).await;
                    }
                    yielded.lock().unwrap()[i] = Some(Instant::now());
                    Some((Ok(ModelEvent::Text(format!("{i} "))), i + 1))
                }
            });
            Ok(Box::pin(stream) as ModelStream)
        })
    }
    fn describe(&self) -> String {
        "timestamped".into()
    }
}

/// Returns per-chunk delays in ms and the chunks per second from first yield to last receipt.
async fn relay(chunks: usize, every: Duration) -> (Vec<f64>, f64) {
    let yielded = Arc::new(Mutex::new(vec![None; chunks]));
    let received = Arc::new(Mutex::new(vec![None; chunks]));
    let model = Timestamped {
        chunks,
        every,
        yielded: yielded.clone(),
    };
    let agent = Agent::builder().model(model).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (agent_end, editor_end) = Channel::duplex();
    let served = tokio::spawn(punie::acp::serve(agent, agent_end));
    let got = received.clone();
    let cwd = dir.path().to_owned();
    Client
        .v1()
        .name("bench")
        .on_receive_notification(
            async move |n: SessionNotification, _cx| {
                let now = Instant::now();
                if let SessionUpdate::AgentMessageChunk(chunk) = &n.update
                    && let ContentBlock::Text(text) = &chunk.content
                    && let Ok(i) = text.text.trim().parse::<usize>()
                {
                    got.lock().unwrap()[i] = Some(now);
                }
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .connect_with(editor_end, async move |cx: ConnectionTo<AgentRole>| {
            cx.send_request(InitializeRequest::new(ProtocolVersion::V1))
                .block_task()
                .await?;
            let session = cx
                .send_request(NewSessionRequest::new(cwd))
                .block_task()
                .await?;
            cx.send_request(PromptRequest::new(
                session.session_id,
                vec![ContentBlock::from("go")],
            ))
            .block_task()
            .await?;
            Ok(())
        })
        .await
        .unwrap();
    served.abort();
    let yielded = yielded.lock().unwrap();
    let received = received.lock().unwrap();
    let delays: Vec<f64> = yielded
        .iter()
        .zip(received.iter())
        .map(|(y, r)| ms(r.expect("every chunk arrived") - y.expect("yielded")))
        .collect();
    let first = yielded[0].unwrap();
    let last = received.iter().flatten().max().copied().unwrap();
    (delays, chunks as f64 / (last - first).as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// Peak memory: the release binary driving a 50-tool-call session against a fake OpenAI server.

/// A minimal OpenAI-compatible server: the first `calls` chat requests answer with a
/// `read_file` tool call, the next with text; anything else is a 404. One answer per connection.
async fn fake_openai(calls: usize) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let served = served.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_end, length) = loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while buffer.len() < head_end + length {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
                let response = if head.starts_with("POST") && head.contains("/chat/completions") {
                    let n = served.fetch_add(1, Ordering::Relaxed);
                    let chunk = |delta: Value, finish: Option<&str>| {
                        json!({"id": "bench", "object": "chat.completion.chunk", "model": "fake",
                            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
                    };
                    let mut events = vec![chunk(json!({"role": "assistant"}), None)];
                    if n < calls {
                        events.push(chunk(
                            json!({"tool_calls": [{"index": 0, "id": format!("call_{n}"),
                                "type": "function", "function": {"name": "read_file",
                                "arguments": "{\"path\": \"notes.txt\"}"}}]}),
                            None,
                        ));
                        events.push(chunk(json!({}), Some("tool_calls")));
                    } else {
                        events.push(chunk(json!({"content": "All read."}), None));
                        events.push(chunk(json!({}), Some("stop")));
                    }
                    events.push(json!({"id": "bench", "object": "chat.completion.chunk",
                        "model": "fake", "choices": [],
                        "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}}));
                    let body: String = events
                        .iter()
                        .map(|e| format!("data: {e}\n\n"))
                        .chain(["data: [DONE]\n\n".to_owned()])
                        .collect();
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        .to_owned()
                };
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    address
}

/// Returns (VmHWM MiB, VmRSS MiB, turn ms, tool calls seen, RSS by stage).
fn memory_session(
    address: std::net::SocketAddr,
    logs: &Path,
    calls: usize,
) -> (f64, f64, f64, usize, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "buy milk\n".repeat(20)).unwrap();
    let mut child = Command::new(punie_binary())
        .arg("--log-dir")
        .arg(logs)
        .arg("--max-turn-requests")
        .arg((calls + 5).to_string())
        .env("PUNIE_MODEL", format!("http://{address}/v1/fake-model"))
        // The fake server reports no context window; 50 results need more than the default.
        .env("PUNIE_CONTEXT_SIZE", "131072")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn punie");
    let pid = child.id().to_string();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut send = |message: Value| {
        stdin
            .write_all((message.to_string() + "\n").as_bytes())
            .unwrap();
        stdin.flush().unwrap();
    };
    let mut wait_for = |id: u64, tool_calls: &mut usize| -> Value {
        loop {
            let mut line = String::new();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "punie exited");
            let message: Value = serde_json::from_str(&line).unwrap();
            if message["params"]["update"]["sessionUpdate"] == "tool_call" {
                *tool_calls += 1;
            }
            if message["id"] == id && message.get("method").is_none() {
                return message;
            }
        }
    };
    let mut tool_calls = 0;
    send(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": 1, "clientCapabilities": {}}}));
    wait_for(1, &mut tool_calls);
    let mut stages = vec![format!("initialized: {}", rss_split(&pid))];
    send(json!({"jsonrpc": "2.0", "id": 2, "method": "session/new",
        "params": {"cwd": dir.path(), "mcpServers": []}}));
    let session = wait_for(2, &mut tool_calls)["result"]["sessionId"].clone();
    stages.push(format!("session open: {}", rss_split(&pid)));
    let started = Instant::now();
    send(
        json!({"jsonrpc": "2.0", "id": 3, "method": "session/prompt",
        "params": {"sessionId": session, "prompt": [{"type": "text", "text": "read it all"}]}}),
    );
    let answer = wait_for(3, &mut tool_calls);
    let turn = ms(started.elapsed());
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    let (hwm, rss) = memory_of(&pid);
    stages.push(format!("after the turn: {}", rss_split(&pid)));
    drop(stdin);
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest);
    child.wait().unwrap();
    (hwm, rss, turn, tool_calls, stages.join("; "))
}

// ---------------------------------------------------------------------------------------------
// 100 concurrent sessions, in a child process so its memory is its own.

/// Calls `read_file` until the conversation holds `calls` tool results, then answers.
struct Stateless {
    calls: usize,
}

impl ChatModel for Stateless {
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        let done = request
            .messages
            .iter()
            .filter(|m| matches!(m, Message::Tool { .. }))
            .count();
        let events = if done < self.calls {
            vec![
                ModelEvent::ToolCall(ToolCall {
                    id: format!("call_{done}"),
                    name: "read_file".into(),
                    arguments: r#"{"path": "src/lib.rs"}"#.into(),
                }),
                ModelEvent::Finished(FinishReason::ToolCalls),
            ]
        } else {
            vec![
                ModelEvent::Text("Done.".into()),
                ModelEvent::Finished(FinishReason::Stop),
            ]
        };
        Box::pin(async move {
            Ok(Box::pin(futures::stream::iter(events.into_iter().map(Ok))) as ModelStream)
        })
    }
    fn describe(&self) -> String {
        "stateless".into()
    }
}

async fn concurrent_child(sessions: usize) -> Value {
    let agent = Agent::builder()
        .model(Stateless { calls: 3 })
        .build()
        .unwrap();
    let (_, before) = memory_of("self");
    let started = Instant::now();
    let tasks: Vec<_> = (0..sessions)
        .map(|_| {
            let agent = agent.clone();
            tokio::spawn(async move {
                let editor = FakeEditor::new().with_file("/project/src/lib.rs", "pub fn f() {}\n");
                let connection = editor.connect(agent).await.map_err(|e| e.to_string())?;
                let session = connection
                    .new_session("/project")
                    .await
                    .map_err(|e| e.to_string())?;
                let asked = Instant::now();
                let stop = connection
                    .prompt(&session, "go")
                    .await
                    .map_err(|e| e.to_string())?;
                let latency = ms(asked.elapsed());
                if stop != StopReason::EndTurn || editor.tool_calls().len() != 3 {
                    return Err(format!(
                        "stopped with {stop:?} after {:?}",
                        editor.tool_calls().len()
                    ));
                }
                Ok::<_, String>((latency, connection))
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    let mut connections = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok((latency, connection))) => {
                latencies.push(latency);
                connections.push(connection);
            }
            Ok(Err(error)) => errors.push(error),
            Err(error) => errors.push(error.to_string()),
        }
    }
    let wall = ms(started.elapsed());
    let (hwm, after) = memory_of("self");
    let open = agent.session_count();
    for connection in connections {
        connection.close().await;
    }
    json!({
        "sessions": sessions, "open_sessions": open, "errors": errors.len(),
        "first_errors": errors.iter().take(3).collect::<Vec<_>>(),
        "latency_p50_ms": quantile(&mut latencies.clone(), 0.5),
        "latency_p95_ms": quantile(&mut latencies.clone(), 0.95),
        "latency_max_ms": quantile(&mut latencies, 1.0),
        "wall_ms": wall,
        "rss_before_mib": before, "rss_after_mib": after, "hwm_mib": hwm,
        "per_session_kib": (after - before) * 1024.0 / sessions as f64,
    })
}

// ---------------------------------------------------------------------------------------------
// 100 concurrent sessions in one `punie serve` process, over WebSocket (10 connections of 10
// sessions each: serve allows 64 connections at once), against the fake OpenAI server.

async fn serve_sessions(connections: usize, per_connection: usize, logs: &Path) -> Value {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let address = fake_openai(0).await;
    let port_file = logs.join("serve.port");
    let workspace = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(punie_binary())
        .args(["serve", "--port", "0", "--port-file"])
        .arg(&port_file)
        .env("PUNIE_MODEL", format!("http://{address}/v1/fake"))
        .env("PUNIE_LOG_DIR", logs)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start punie serve");
    let pid = child.id().unwrap().to_string();
    let port = loop {
        if let Ok(text) = std::fs::read_to_string(&port_file)
            && let Ok(port) = text.trim().parse::<u16>()
        {
            break port;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (_, rss_before) = memory_of(&pid);
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let cwd = workspace.path().to_owned();
            tokio::spawn(async move {
                let url = format!("ws://127.0.0.1:{port}/acp");
                let (mut socket, _) = tokio_tungstenite::connect_async(url).await.map_err(|e| e.to_string())?;
                let mut pending: std::collections::HashMap<u64, Instant> = Default::default();
                let mut next_id = 0u64;
                let send = async |socket: &mut tokio_tungstenite::WebSocketStream<_>, method: &str, params: Value, next_id: &mut u64| {
                    *next_id += 1;
                    let message = json!({"jsonrpc": "2.0", "id": *next_id, "method": method, "params": params});
                    socket.send(Message::text(message.to_string())).await.map_err(|e| e.to_string())?;
                    Ok::<u64, String>(*next_id)
                };
                // Collects the answers to `ids`, returning (result, latency ms) by id.
                async fn answers(
                    socket: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
                    pending: &mut std::collections::HashMap<u64, Instant>,
                ) -> Result<Vec<(Value, f64)>, String> {
                    let mut out = Vec::new();
                    while !pending.is_empty() {
                        let frame = socket.next().await.ok_or("socket closed")?.map_err(|e| e.to_string())?;
                        let Message::Text(text) = frame else { continue };
                        let value: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                        if value.get("method").is_some() {
                            continue; // notifications (updates); no agent requests for text answers
                        }
                        let id = value["id"].as_u64().ok_or("response without id")?;
                        if let Some(sent) = pending.remove(&id) {
                            if value.get("error").is_some() {
                                return Err(value["error"].to_string());
                            }
                            out.push((value["result"].clone(), ms(sent.elapsed())));
                        }
                    }
                    Ok(out)
                }
                let id = send(&mut socket, "initialize", json!({"protocolVersion": 1}), &mut next_id).await?;
                pending.insert(id, Instant::now());
                answers(&mut socket, &mut pending).await?;
                for _ in 0..per_connection {
                    let id = send(&mut socket, "session/new", json!({"cwd": cwd, "mcpServers": []}), &mut next_id).await?;
                    pending.insert(id, Instant::now());
                }
                let sessions: Vec<String> = answers(&mut socket, &mut pending)
                    .await?
                    .into_iter()
                    .map(|(result, _)| result["sessionId"].as_str().unwrap_or_default().to_owned())
                    .collect();
                for session in &sessions {
                    let params = json!({"sessionId": session, "prompt": [{"type": "text", "text": "hello"}]});
                    let id = send(&mut socket, "session/prompt", params, &mut next_id).await?;
                    pending.insert(id, Instant::now());
                }
                let prompts = answers(&mut socket, &mut pending).await?;
                let mut latencies = Vec::new();
                for (result, latency) in prompts {
                    if result["stopReason"] != "end_turn" {
                        return Err(format!("stopped with {result}"));
                    }
                    latencies.push(latency);
                }
                Ok::<_, String>((latencies, socket))
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    let mut sockets = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok((mut l, socket))) => {
                latencies.append(&mut l);
                sockets.push(socket);
            }
            Ok(Err(error)) => errors.push(error),
            Err(error) => errors.push(error.to_string()),
        }
    }
    let wall = ms(started.elapsed());
    let (hwm, rss_after) = memory_of(&pid);
    let sessions = connections * per_connection;
    let _ = child.start_kill();
    let _ = child.wait().await;
    drop(sockets);
    json!({
        "sessions": sessions,
        // Every session that did not end its prompt with end_turn counts.
        "errors": sessions - latencies.len().min(sessions),
        "first_errors": errors.iter().take(3).collect::<Vec<_>>(),
        "latency_p50_ms": quantile(&mut latencies.clone(), 0.5),
        "latency_p95_ms": quantile(&mut latencies.clone(), 0.95),
        "latency_max_ms": quantile(&mut latencies, 1.0),
        "wall_ms": wall,
        "rss_before_mib": rss_before, "rss_after_mib": rss_after, "hwm_mib": hwm,
        "per_session_kib": (rss_after - rss_before) * 1024.0 / sessions as f64,
    })
}

// ---------------------------------------------------------------------------------------------
// The perf recorder's own cost per event (what `--perf` adds to each model request, tool call
// and editor request).

fn recorder_cost(threads: usize, events: usize) -> f64 {
    let perf = Arc::new(punie::perf::PerfRecorder::new());
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let perf = perf.clone();
            std::thread::spawn(move || {
                let sessions: Vec<String> = (0..10).map(|s| format!("sess_{t}_{s}")).collect();
                for i in 0..events {
                    let session = &sessions[i % sessions.len()];
                    if i % 100 == 0 {
                        perf.turn_started(session);
                    }
                    perf.editor_request(
                        session,
                        "fs/read_text_file",
                        Duration::from_micros(50),
                        true,
                    );
                    if i % 100 == 99 {
                        perf.turn_finished(
                            session,
                            Some(StopReason::EndTurn),
                            Duration::from_millis(5),
                        );
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    started.elapsed().as_nanos() as f64 / (threads * events) as f64
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if args.first().map(String::as_str) == Some("--child-concurrent") {
        let sessions = args.get(1).and_then(|n| n.parse().ok()).unwrap_or(100);
        println!("{}", runtime.block_on(concurrent_child(sessions)));
        return;
    }
    let json_path = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    // `--only start-up|session|tools|recorder|relay|memory|concurrent|serve` runs one part (for profiling).
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let wants = |part: &str| only.as_deref().is_none_or(|o| o == part);
    let logs = tempfile::tempdir().unwrap();
    let mut figures = Vec::new();

    if wants("start-up") {
        eprintln!("measuring start-up…");
        figures.push(startup(logs.path()));
    }
    runtime.block_on(async {
        if wants("session") {
            eprintln!("measuring session/new…");
            figures.push(session_new().await);
        }

        if wants("tools") {
            eprintln!("measuring tool round trips…");
            let (overhead, round_trip, total) = tool_turns("read_file", 50, 20).await;
            figures.push(Figure {
                name: "agent overhead per tool round trip (read_file via editor)",
                value: overhead,
                unit: "ms",
                target: Some(0.5),
                detail: format!(
                    "turn/calls {total:.3}; editor round trip {round_trip:.3}; 50 calls, p50 of 20 turns"
                ),
            });
            let (noop, _, noop_total) = tool_turns("noop", 50, 20).await;
            figures.push(Figure {
                name: "agent overhead per tool round trip (no-op tool)",
                value: noop,
                unit: "ms",
                target: Some(0.5),
                detail: format!("turn/calls {noop_total:.3}; 50 calls, p50 of 20 turns"),
            });
        }

        if wants("recorder") {
            eprintln!("measuring the perf recorder…");
            let one = recorder_cost(1, 1_000_000);
            let two = recorder_cost(2, 500_000);
            let snapshot = {
                let perf = punie::perf::PerfRecorder::new();
                for s in 0..10 {
                    let session = format!("sess_{s}");
                    perf.turn_started(&session);
                    for _ in 0..1_000 {
                        perf.editor_request(&session, "fs/read_text_file", Duration::from_micros(80), true);
                    }
                    perf.turn_finished(&session, Some(StopReason::EndTurn), Duration::from_millis(90));
                }
                let started = Instant::now();
                let html = perf.snapshot().to_html();
                (ms(started.elapsed()), html.len())
            };
            figures.push(Figure {
                name: "perf recorder cost per event (1 thread)",
                value: one,
                unit: "ns",
                target: None,
                detail: format!(
                    "{two:.0} ns/event with 2 threads; report of 10,000 spans: {:.1} ms, {} KiB HTML",
                    snapshot.0,
                    snapshot.1 / 1024
                ),
            });
        }

        if wants("relay") {
            eprintln!("measuring the stream relay…");
            let (mut paced, _) = relay(2000, Duration::from_millis(1)).await;
            figures.push(Figure {
                name: "relay delay at 1,000 chunks/s, p99",
                value: quantile(&mut paced, 0.99),
                unit: "ms",
                target: Some(1.0),
                detail: format!(
                    "p50 {:.3}, max {:.3}, 2000 chunks",
                    quantile(&mut paced, 0.5),
                    quantile(&mut paced, 1.0)
                ),
            });
            let (mut burst, rate) = relay(20_000, Duration::ZERO).await;
            figures.push(Figure {
                name: "relay throughput (burst)",
                value: rate,
                unit: "chunks/s",
                target: None,
                detail: format!(
                    "20000 chunks; delay p50 {:.3} ms, p99 {:.3} ms under backlog",
                    quantile(&mut burst, 0.5),
                    quantile(&mut burst, 0.99)
                ),
            });
        }

        if wants("memory") {
            eprintln!("measuring peak memory of a 50-tool-call session…");
            let address = fake_openai(50).await;
            let logs = logs.path().to_owned();
            let (hwm, rss, turn, calls, stages) =
                tokio::task::spawn_blocking(move || memory_session(address, &logs, 50))
                    .await
                    .unwrap();
            assert_eq!(calls, 50, "50 tool calls announced");
            figures.push(Figure {
                name: "peak resident memory, 50-tool-call session (punie binary)",
                value: hwm,
                unit: "MiB",
                target: Some(20.0),
                detail: format!(
                    "VmRSS at the end {rss:.1} MiB ({stages} MiB); turn {turn:.1} ms over HTTP + stdio"
                ),
            });
        }
    });

    let mut child = Value::Null;
    if wants("concurrent") {
        eprintln!("measuring 100 concurrent sessions…");
        let output = Command::new(std::env::current_exe().unwrap())
            .args(["--child-concurrent", "100"])
            .stderr(Stdio::inherit())
            .output()
            .expect("run the concurrent child");
        child = serde_json::from_slice(&output.stdout).expect("child JSON");
        let number = |key: &str| child[key].as_f64().unwrap_or(f64::NAN);
        figures.push(Figure {
            name: "100 concurrent sessions (3 tool calls each): errors",
            value: number("errors"),
            unit: "errors",
            target: Some(0.0),
            detail: format!(
                "prompt latency p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms; wall {:.1} ms",
                number("latency_p50_ms"),
                number("latency_p95_ms"),
                number("latency_max_ms"),
                number("wall_ms")
            ),
        });
        figures.push(Figure {
            name: "100 concurrent sessions: memory per session",
            value: number("per_session_kib"),
            unit: "KiB",
            target: None,
            detail: format!(
                "RSS {:.1} → {:.1} MiB, peak {:.1} MiB (one process, in-memory transport)",
                number("rss_before_mib"),
                number("rss_after_mib"),
                number("hwm_mib")
            ),
        });
    }

    let mut served = Value::Null;
    if wants("serve") {
        eprintln!("measuring 100 concurrent sessions in one punie serve…");
        served = runtime.block_on(serve_sessions(10, 10, logs.path()));
        let number = |key: &str| served[key].as_f64().unwrap_or(f64::NAN);
        figures.push(Figure {
            name: "100 concurrent sessions in one `punie serve` (WebSocket): errors",
            value: number("errors"),
            unit: "errors",
            target: Some(0.0),
            detail: format!(
                "10 connections × 10 sessions; prompt latency p50 {:.2} ms, p95 {:.2} ms; wall {:.1} ms; RSS {:.1} → {:.1} MiB ({:.0} KiB/session)",
                number("latency_p50_ms"),
                number("latency_p95_ms"),
                number("wall_ms"),
                number("rss_before_mib"),
                number("rss_after_mib"),
                number("per_session_kib")
            ),
        });
    }

    let header = format!(
        "{:<62} {:>12} {:<9} {:>8}  {}",
        "measure", "value", "unit", "target", "details"
    );
    println!("{header}");
    println!("{}", "-".repeat(130));
    let mut missed = 0;
    for f in &figures {
        let (target, verdict) = match f.target {
            Some(t) if t == 0.0 => (format!("= {t}"), f.value == 0.0),
            Some(t) => (format!("< {t}"), f.value < t),
            None => (String::new(), true),
        };
        missed += usize::from(!verdict);
        println!(
            "{:<62} {:>12.3} {:<9} {:>8}  {}{}",
            f.name,
            f.value,
            f.unit,
            target,
            if verdict { "" } else { "MISSED · " },
            f.detail
        );
    }
    let json = json!({
        "punie_version": env!("CARGO_PKG_VERSION"),
        "figures": figures.iter().map(|f| json!({
            "name": f.name, "value": f.value, "unit": f.unit, "target_below": f.target,
            "met": f.target.is_none_or(|t| if t == 0.0 { f.value == 0.0 } else { f.value < t }),
            "detail": f.detail,
        })).collect::<Vec<_>>(),
        "concurrent": child,
        "serve": served,
    });
    println!("\n{}", serde_json::to_string_pretty(&json).unwrap());
    if let Some(path) = json_path {
        std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    }
    if missed > 0 {
        eprintln!("{missed} target(s) missed");
    }
}
