//! One running MCP server: its process (for stdio), its client, and what its tools share about
//! it (the [`Link`]): how to reach it and, once it is gone, why.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rmcp::ServiceExt;
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::{Peer, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::{oneshot, watch};

use super::{EXIT_GRACE, McpServerConfig, STDERR_LINE_BYTES, STDERR_TAIL_LINES};
use crate::tools::ToolError;
use crate::workspace::ToolKind;

/// What tools share about their server: the connection and how it ended, if it did.
pub(super) struct Link {
    pub(super) server: String,
    pub(super) peer: Peer<RoleClient>,
    /// `Some(how)` once a stdio server's process has exited.
    pub(super) exit: watch::Receiver<Option<String>>,
    pub(super) stderr: Arc<Mutex<VecDeque<String>>>,
    /// Set when Punie shut the connection down.
    pub(super) closed: AtomicBool,
}

impl Link {
    fn stderr_tail(&self) -> Option<String> {
        let lines = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        (!lines.is_empty()).then(|| lines.iter().cloned().collect::<Vec<_>>().join("\n"))
    }

    /// Why the server can no longer answer, if it cannot.
    pub(super) fn dead_reason(&self) -> Option<String> {
        if self.closed.load(Ordering::Acquire) {
            return Some("Punie shut the connection down".to_owned());
        }
        if let Some(exit) = self.exit.borrow().clone() {
            return Some(self.with_stderr(format!("its process exited ({exit})")));
        }
        self.peer
            .is_transport_closed()
            .then(|| self.with_stderr("its connection closed".to_owned()))
    }

    fn with_stderr(&self, reason: String) -> String {
        match self.stderr_tail() {
            Some(tail) => format!("{reason}; its last error output:\n{tail}"),
            None => reason,
        }
    }

    /// The message for a call that found the server gone; waits briefly for the process's exit
    /// status, which usually arrives just after the connection closes.
    pub(super) async fn not_running(&self) -> ToolError {
        let mut exit = self.exit.clone();
        let _ = tokio::time::timeout(
            Duration::from_millis(500),
            exit.wait_for(|exit| exit.is_some()),
        )
        .await;
        let reason = self
            .dead_reason()
            .unwrap_or_else(|| self.with_stderr("its connection closed".to_owned()));
        ToolError::Failed(format!(
            "MCP server {} is not running: {reason}. Its tools cannot be used in this session.",
            self.server
        ))
    }
}

/// A stdio server's process: killed with its process group when dropped.
pub(super) struct Process {
    pub(super) pid: u32,
    /// Dropping it tells the supervisor to kill and reap the process.
    kill: Option<oneshot::Sender<()>>,
    exit: watch::Receiver<Option<String>>,
}

impl Process {
    fn signal_group(&self, signal: rustix::process::Signal) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            // The server leads its own group, so this reaches what it started too (`npx`, `uvx`).
            let _ = rustix::process::kill_process_group(pid, signal);
        }
    }

    async fn exited_within(&self, limit: Duration) -> bool {
        let mut exit = self.exit.clone();
        tokio::time::timeout(limit, exit.wait_for(|exit| exit.is_some()))
            .await
            .is_ok()
    }

    /// Lets the process exit (its stdin is already closed), then insists.
    async fn stop(mut self) {
        if !self.exited_within(EXIT_GRACE).await {
            self.signal_group(rustix::process::Signal::TERM);
            if !self.exited_within(EXIT_GRACE).await {
                self.signal_group(rustix::process::Signal::KILL);
            }
        }
        // Anything the server left in its group goes too.
        self.signal_group(rustix::process::Signal::KILL);
        drop(self.kill.take());
        let _ = self.exited_within(EXIT_GRACE).await;
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.kill.is_some() {
            self.signal_group(rustix::process::Signal::KILL);
        }
    }
}

/// Waits for the child, or kills it when told (or when the [`Process`] is dropped), and
/// publishes how it ended.
async fn supervise(
    mut child: Child,
    kill: oneshot::Receiver<()>,
    exit: watch::Sender<Option<String>>,
) {
    let status = tokio::select! {
        status = child.wait() => status,
        _ = kill => {
            let _ = child.start_kill();
            child.wait().await
        }
    };
    let how = match status {
        Ok(status) => describe_exit(status),
        Err(err) => format!("could not be waited for: {err}"),
    };
    let _ = exit.send(Some(how));
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "exited".to_owned(),
    }
}

/// Logs a server's stderr and keeps its last lines to explain failures.
async fn read_stderr(server: String, stderr: ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(server, "MCP server stderr: {line}");
        let mut kept = line;
        if kept.len() > STDERR_LINE_BYTES {
            let mut cut = STDERR_LINE_BYTES;
            while !kept.is_char_boundary(cut) {
                cut -= 1;
            }
            kept.truncate(cut);
            kept.push('…');
        }
        let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(kept);
    }
}

/// A tool as the server described it, with the name the model sees.
pub(super) struct RemoteTool {
    pub(super) name: String,
    pub(super) remote_name: String,
    pub(super) title: String,
    pub(super) description: String,
    pub(super) schema: Value,
    pub(super) read_only: bool,
    pub(super) kind: ToolKind,
}

impl RemoteTool {
    fn new(server: &str, tool: rmcp::model::Tool) -> Self {
        let annotations = tool.annotations.as_ref();
        let read_only = annotations.and_then(|a| a.read_only_hint) == Some(true);
        let open_world = annotations.and_then(|a| a.open_world_hint) == Some(true);
        let kind = match (read_only, open_world) {
            (true, true) => ToolKind::Fetch,
            (true, false) => ToolKind::Read,
            (false, _) => ToolKind::Other,
        };
        let title = annotations
            .and_then(|a| a.title.clone())
            .or_else(|| tool.title.clone())
            .unwrap_or_else(|| tool.name.to_string());
        let description = tool.description.as_deref().map_or_else(
            || format!("Tool `{}` of the MCP server {server}.", tool.name),
            str::to_owned,
        );
        Self {
            name: String::new(),
            remote_name: tool.name.into_owned(),
            title,
            description,
            schema: Value::Object((*tool.input_schema).clone()),
            read_only,
            kind,
        }
    }
}

/// One running server.
pub(super) struct Connection {
    pub(super) link: Arc<Link>,
    pub(super) service: Option<RunningService<RoleClient, ClientConfig>>,
    pub(super) process: Option<Process>,
    pub(super) remote_tools: Vec<Arc<RemoteTool>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.link.closed.store(true, Ordering::Release);
    }
}

fn client_config() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("punie", env!("CARGO_PKG_VERSION")),
    )
}

impl Connection {
    pub(super) async fn open(config: McpServerConfig) -> Result<Self, String> {
        match config {
            McpServerConfig::Stdio {
                name,
                command,
                args,
                env,
            } => Self::open_stdio(name, command, args, env).await,
            McpServerConfig::Http { name, url, headers } => {
                Self::open_http(name, url, headers).await
            }
            McpServerConfig::Sse { url, .. } => Err(format!(
                "the legacy HTTP+SSE transport ({url}) is not supported; configure the server's \
                 streamable HTTP endpoint (often ending in /mcp) as an HTTP server instead"
            )),
        }
    }

    async fn open_stdio(
        name: String,
        command: PathBuf,
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> Result<Self, String> {
        let shown = command.display().to_string();
        let mut child = Command::new(&command)
            .args(&args)
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .map_err(|err| match err.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "the command `{shown}` was not found; check that it is installed and on PATH, \
                     or give its full path"
                ),
                std::io::ErrorKind::PermissionDenied => {
                    format!("the command `{shown}` could not be run (permission denied)")
                }
                _ => format!("the command `{shown}` could not be started: {err}"),
            })?;
        let pid = child.id().unwrap_or(0);
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("its standard streams could not be opened".to_owned());
        };
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_task = tokio::spawn(read_stderr(name.clone(), stderr, Arc::clone(&tail)));
        let (exit_tx, exit) = watch::channel(None);
        let (kill, kill_rx) = oneshot::channel();
        tokio::spawn(supervise(child, kill_rx, exit_tx));
        let process = Process {
            pid,
            kill: Some(kill),
            exit: exit.clone(),
        };

        let service = match client_config().serve((stdout, stdin)).await {
            Ok(service) => service,
            Err(err) => {
                // Let the process's last words and exit status arrive before explaining.
                let _ = tokio::time::timeout(Duration::from_millis(500), stderr_task).await;
                let _ = process.exited_within(Duration::from_millis(200)).await;
                let mut reason = format!("the MCP handshake failed ({err})");
                if let Some(how) = exit.borrow().clone() {
                    reason.push_str(&format!("; the process exited ({how})"));
                }
                let lines = tail.lock().unwrap_or_else(PoisonError::into_inner);
                if !lines.is_empty() {
                    reason.push_str("; its last error output:\n");
                    reason.push_str(&lines.iter().cloned().collect::<Vec<_>>().join("\n"));
                }
                return Err(reason);
            }
        };
        Self::finish(name, service, Some(process), exit, tail).await
    }

    async fn open_http(
        name: String,
        url: String,
        headers: Vec<(String, String)>,
    ) -> Result<Self, String> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("`{url}` is not an http:// or https:// URL"));
        }
        let mut custom_headers = std::collections::HashMap::new();
        for (key, value) in headers {
            let header = reqwest::header::HeaderName::from_bytes(key.as_bytes())
                .map_err(|_| format!("`{key}` is not a valid HTTP header name"))?;
            let value = reqwest::header::HeaderValue::from_str(&value)
                .map_err(|_| format!("the value of header `{key}` is not valid in HTTP"))?;
            custom_headers.insert(header, value);
        }
        let mut config = StreamableHttpClientTransportConfig::with_uri(url);
        config.custom_headers = custom_headers;
        let transport = StreamableHttpClientTransport::with_client(http_client()?, config);
        let service = client_config()
            .serve(transport)
            .await
            .map_err(|err| format!("the MCP handshake failed ({err})"))?;
        let (_, exit) = watch::channel(None);
        Self::finish(name, service, None, exit, Arc::default()).await
    }

    /// Lists the server's tools and assembles the connection.
    async fn finish(
        name: String,
        service: RunningService<RoleClient, ClientConfig>,
        process: Option<Process>,
        exit: watch::Receiver<Option<String>>,
        stderr: Arc<Mutex<VecDeque<String>>>,
    ) -> Result<Self, String> {
        let peer = service.peer().clone();
        let offers_tools = peer
            .peer_info()
            .is_none_or(|info| info.capabilities.tools.is_some());
        let tools = if offers_tools {
            peer.list_all_tools()
                .await
                .map_err(|err| format!("listing its tools failed ({err})"))?
        } else {
            Vec::new()
        };
        let remote_tools = tools
            .into_iter()
            .map(|tool| Arc::new(RemoteTool::new(&name, tool)))
            .collect();
        Ok(Self {
            link: Arc::new(Link {
                server: name,
                peer,
                exit,
                stderr,
                closed: AtomicBool::new(false),
            }),
            service: Some(service),
            process,
            remote_tools,
        })
    }

    pub(super) async fn close(mut self) {
        self.link.closed.store(true, Ordering::Release);
        if let Some(mut service) = self.service.take() {
            // Closing the transport closes a stdio server's stdin, its cue to exit.
            let _ = service.close_with_timeout(EXIT_GRACE).await;
        }
        if let Some(process) = self.process.take() {
            process.stop().await;
        }
    }
}

/// The HTTP client for streamable HTTP servers: rustls with the ring provider (installed as the
/// process default if there is none), the system's CA certificates, and same-origin 307/308
/// redirects only (as rmcp's default client does).
fn http_client() -> Result<reqwest013::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = || {
        reqwest013::Client::builder()
            .pool_max_idle_per_host(0)
            .redirect(same_origin_redirects())
    };
    match builder().build() {
        Ok(client) => Ok(client),
        // No CA certificates on this system: plain http:// still works, https:// will say why.
        Err(err) => builder()
            .tls_certs_only(Vec::new())
            .build()
            .map_err(|_| format!("the HTTP client could not be set up: {err}")),
    }
}

fn same_origin_redirects() -> reqwest013::redirect::Policy {
    reqwest013::redirect::Policy::custom(|attempt| {
        let keeps_body = matches!(
            attempt.status(),
            reqwest013::StatusCode::TEMPORARY_REDIRECT | reqwest013::StatusCode::PERMANENT_REDIRECT
        );
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if !keeps_body || !same_origin {
            attempt.stop()
        } else if attempt.previous().len() > 10 {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}
