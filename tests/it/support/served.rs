//! `punie serve` under test: spawns the real binary on a free port (`--port 0 --port-file`),
//! reads its stdout and stderr, sends it signals, and talks ACP to it over WebSocket with a
//! small JSON-RPC client that records what it receives and answers permission requests.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous: CI boxes are slow and busy.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// How `punie serve` is started.
#[derive(Clone, Debug, Default)]
pub struct ServeConfig {
    /// `--model`; an unreachable server when `None`.
    pub model: Option<String>,
    /// Extra arguments after `serve`.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Keep stdin open (piped) instead of closing it at once.
    pub stdin: bool,
}

/// A running `punie serve`.
pub struct Served {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub port: u16,
    pub logs: tempfile::TempDir,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    _scratch: tempfile::TempDir,
}

fn collect(reader: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// A `punie` command with a private log directory and no inherited `PUNIE_*` settings.
pub fn punie_command(logs: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_punie"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PUNIE_") {
            command.env_remove(name);
        }
    }
    command
        .env("PUNIE_LOG_DIR", logs)
        .env("PUNIE_STATE_DIR", logs.join("state"))
        .kill_on_drop(true);
    command
}

impl Served {
    /// Starts `punie serve --port 0` and waits until it listens.
    pub async fn start(config: ServeConfig) -> Self {
        let logs = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let port_file = scratch.path().join("port");
        let mut command = punie_command(logs.path());
        command
            .env(
                "PUNIE_MODEL",
                config
                    .model
                    .unwrap_or_else(|| "http://127.0.0.1:9/v1/none".to_owned()),
            )
            .arg("serve")
            .args(["--port", "0", "--port-file"])
            .arg(&port_file)
            .args(&config.args)
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .stdin(if config.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn punie serve");
        let stdin = child.stdin.take();
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Ok(port) = text.trim().parse::<u16>()
            {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "punie serve exited ({status}) before listening: {:?}",
                    stderr.lock().unwrap()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "punie serve did not write its port file"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Self {
            child,
            stdin,
            port,
            logs,
            stdout,
            stderr,
            _scratch: scratch,
        }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The `/acp` WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/acp", self.port)
    }

    /// `GET /health` as JSON.
    pub async fn health(&self) -> Value {
        let response = reqwest::get(self.url("/health"))
            .await
            .expect("GET /health");
        assert_eq!(response.status(), 200);
        response.json().await.expect("health is JSON")
    }

    /// Connects a WebSocket ACP client.
    pub async fn connect(&self) -> WsClient {
        WsClient::connect(&self.ws_url(), &[]).await
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("still running");
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).unwrap(),
            rustix::process::Signal::TERM,
        )
        .expect("send SIGTERM");
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn wait(&mut self) -> Option<i32> {
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("punie exits in time")
            .unwrap();
        status.code()
    }

    /// Writes one line to stdin.
    pub async fn send_stdin(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is piped");
        stdin.write_all(line.as_bytes()).await.unwrap();
        stdin.write_all(b"\n").await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// The next stdout line (waiting for it).
    pub async fn stdout_line(&self, index: usize) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self.stdout.lock().unwrap().get(index) {
                return line.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no stdout line {index}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything in the log directory, concatenated.
    pub fn log_text(&self) -> String {
        log_text(self.logs.path())
    }
}

/// Everything in a log directory, concatenated.
pub fn log_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path: PathBuf = entry.unwrap().path();
        text.push_str(&std::fs::read_to_string(path).unwrap_or_default());
    }
    text
}

/// Waits until `condition` holds, or panics naming `what`.
pub async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How the client answers `session/request_permission`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    Allow,
    Reject,
}

/// A minimal ACP client over WebSocket: raw JSON-RPC, one message per text frame.
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Every notification received, in order.
    pub notifications: Vec<Value>,
    /// Every request the agent sent us, in order.
    pub agent_requests: Vec<Value>,
}

impl WsClient {
    /// Connects, with extra request headers.
    pub async fn connect(url: &str, headers: &[(&str, &str)]) -> Self {
        Self::try_connect(url, headers)
            .await
            .unwrap_or_else(|error| panic!("WebSocket connection to {url} failed: {error}"))
    }

    /// Connects, or returns the HTTP status of the refusal.
    pub async fn try_connect(url: &str, headers: &[(&str, &str)]) -> Result<Self, String> {
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            let name: tokio_tungstenite::tungstenite::http::HeaderName = name.parse().unwrap();
            request.headers_mut().insert(name, value.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(Self {
                socket,
                next_id: 1,
                notifications: Vec::new(),
                agent_requests: Vec::new(),
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16().to_string())
            }
            Err(error) => Err(error.to_string()),
        }
    }

    /// Sends one message.
    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("send a frame");
    }

    /// The next message (any kind).
    pub async fn recv(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("a message in time")
                .expect("the socket is open")
                .expect("a frame");
            match frame {
                Message::Text(text) => {
                    return serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("frame is not JSON ({e}): {text}"));
                }
                Message::Close(_) => panic!("the server closed the socket"),
                _ => continue,
            }
        }
    }

    /// Sends a request; returns its id.
    pub async fn send_request(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        id
    }

    /// Sends a request and waits for its response (the whole message: `result` or `error`),
    /// answering permission requests with `permission` meanwhile.
    pub async fn request(&mut self, method: &str, params: Value, permission: Permission) -> Value {
        let id = self.send_request(method, params).await;
        self.response_to(id, permission).await
    }

    /// Waits for the response to request `id`, answering permission requests meanwhile.
    pub async fn response_to(&mut self, id: u64, permission: Permission) -> Value {
        loop {
            let message = self.recv().await;
            if message.get("method").is_some() {
                if message.get("id").is_some() {
                    self.answer(&message, permission).await;
                } else {
                    self.notifications.push(message);
                }
            } else if message["id"] == json!(id) {
                return message;
            }
        }
    }

    /// Waits for the agent's next request (recording notifications on the way), unanswered.
    pub async fn next_agent_request(&mut self) -> Value {
        loop {
            let message = self.recv().await;
            if message.get("method").is_some() {
                if message.get("id").is_some() {
                    self.agent_requests.push(message.clone());
                    return message;
                }
                self.notifications.push(message);
            }
        }
    }

    /// Answers a request from the agent.
    pub async fn answer(&mut self, request: &Value, permission: Permission) {
        self.agent_requests.push(request.clone());
        let result = match request["method"].as_str() {
            Some("session/request_permission") => {
                let kind = match permission {
                    Permission::Allow => "allow_once",
                    Permission::Reject => "reject_once",
                };
                let option = request["params"]["options"]
                    .as_array()
                    .and_then(|options| options.iter().find(|o| o["kind"] == kind))
                    .unwrap_or_else(|| panic!("no {kind} option in {request}"));
                json!({"outcome": {"outcome": "selected", "optionId": option["optionId"]}})
            }
            other => panic!("unexpected request from the agent: {other:?} in {request}"),
        };
        self.send(json!({"jsonrpc": "2.0", "id": request["id"], "result": result}))
            .await;
    }

    /// `initialize` (advertising no fs and no terminal) then `session/new` in `cwd`; returns
    /// the session id.
    pub async fn open_session(&mut self, cwd: &Path) -> String {
        let init = self
            .request(
                "initialize",
                json!({"protocolVersion": 1, "clientCapabilities": {}}),
                Permission::Reject,
            )
            .await;
        assert_eq!(init["result"]["protocolVersion"], 1, "{init}");
        let session = self
            .request(
                "session/new",
                json!({"cwd": cwd, "mcpServers": []}),
                Permission::Reject,
            )
            .await;
        session["result"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {session}"))
            .to_owned()
    }

    /// The concatenated text of the agent_message_chunks received.
    pub fn message_text(&self) -> String {
        self.notifications
            .iter()
            .filter(|n| n["params"]["update"]["sessionUpdate"] == "agent_message_chunk")
            .filter_map(|n| n["params"]["update"]["content"]["text"].as_str())
            .collect()
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
