//! MCP servers as tool providers: the client side of the Model Context Protocol, over stdio
//! (a child process Punie starts) or streamable HTTP, with the official `rmcp` crate.
//!
//! [`McpConnections::connect`] starts every configured server at once, each within a timeout,
//! and never fails as a whole: a server that cannot be reached becomes an [`McpProblem`] and the
//! others still connect. Each server's tools become [`Tool`]s named `<server>__<tool>`.
//!
//! What a call does when things go wrong:
//!
//! - the server reports an error (`isError: true`) → [`ToolError::Failed`](super::ToolError::Failed) with its text;
//! - the server process died or the connection closed → "MCP server X is not running: …" at
//!   once (with its exit status and last stderr lines), never a hang;
//! - the server does not answer within the call timeout → an error, and the request is cancelled
//!   (`notifications/cancelled`), as it is when the call's future is dropped (turn cancelled).
//!
//! Child processes run in their own process group, are killed with it on drop, and are asked to
//! stop (stdin closed, then `SIGTERM`, then `SIGKILL`) by [`McpConnections::shutdown`].

mod connection;
mod tool;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::AbortOnDropHandle;

use super::Tool;
use connection::Connection;
use tool::McpTool;

/// How long [`McpConnections::connect`] gives each server by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a tool call may take by default before it is cancelled.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Longest tool name models are given (OpenAI's limit, which local servers copy).
const MAX_TOOL_NAME: usize = 64;

/// Most bytes of a tool's result the model reads; the rest is cut with a notice.
const MAX_RESULT_BYTES: usize = 50 * 1024;

/// Lines of a server's stderr kept to explain a failure.
const STDERR_TAIL_LINES: usize = 20;

/// Longest stderr line kept, in bytes.
const STDERR_LINE_BYTES: usize = 400;

/// How long a stdio server gets to exit after its stdin closes, then after `SIGTERM`.
const EXIT_GRACE: Duration = Duration::from_millis(1500);

/// An MCP server to connect to, as the editor (ACP `mcpServers`) or the configuration gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum McpServerConfig {
    /// A local program speaking MCP on its stdin/stdout.
    Stdio {
        /// The server's name (prefixes its tools' names).
        name: String,
        /// The program (a path, or a name looked up on `PATH`).
        command: PathBuf,
        /// Its arguments.
        args: Vec<String>,
        /// Environment variables added to Punie's own.
        env: Vec<(String, String)>,
    },
    /// A server reached over MCP's streamable HTTP transport.
    Http {
        /// The server's name.
        name: String,
        /// Its endpoint, e.g. `http://localhost:8000/mcp`.
        url: String,
        /// HTTP headers sent with every request (e.g. `Authorization`).
        headers: Vec<(String, String)>,
    },
    /// A server reached over the legacy HTTP+SSE transport (MCP 2024-11-05). Not supported:
    /// connecting reports a problem that suggests the streamable HTTP endpoint.
    Sse {
        /// The server's name.
        name: String,
        /// Its SSE endpoint.
        url: String,
        /// HTTP headers.
        headers: Vec<(String, String)>,
    },
}

impl McpServerConfig {
    /// The server's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Stdio { name, .. } | Self::Http { name, .. } | Self::Sse { name, .. } => name,
        }
    }
}

/// A server that could not be connected, and why, in words a person can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct McpProblem {
    /// The server's name, as configured.
    pub server: String,
    /// What went wrong.
    pub reason: String,
}

impl std::fmt::Display for McpProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MCP server `{}`: {}", self.server, self.reason)
    }
}

/// The running MCP clients of a session (or of the whole agent), and their tools.
///
/// Dropping it kills the servers' processes (best effort, at once); [`shutdown`](Self::shutdown)
/// stops them gracefully. Tools handed out by [`tools`](Self::tools) outlive it but then answer
/// "not running".
pub struct McpConnections {
    connections: Vec<Connection>,
    call_timeout: Duration,
}

impl std::fmt::Debug for McpConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.connections.iter().map(|c| &c.link.server))
            .finish()
    }
}

impl McpConnections {
    /// No servers.
    pub fn empty() -> Self {
        Self {
            connections: Vec::new(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }

    /// Connects to every server concurrently, giving each `timeout` to start, complete the MCP
    /// handshake and list its tools. Servers that fail are skipped and reported as problems.
    pub async fn connect(
        servers: Vec<McpServerConfig>,
        timeout: Duration,
    ) -> (Self, Vec<McpProblem>) {
        let mut problems = Vec::new();
        let mut names = HashSet::new();
        let mut pending = Vec::new();
        for config in servers {
            let name = config.name().to_owned();
            if !names.insert(name.clone()) {
                problems.push(McpProblem {
                    server: name,
                    reason: "another MCP server has the same name; only the first is used"
                        .to_owned(),
                });
                continue;
            }
            // Each server connects on its own task: a panic in one is that server's problem.
            let task = AbortOnDropHandle::new(tokio::spawn(async move {
                match tokio::time::timeout(timeout, Connection::open(config)).await {
                    Ok(result) => result,
                    Err(_) => Err(format!(
                        "it did not finish starting (MCP handshake and tool list) within {} s",
                        timeout.as_secs_f32()
                    )),
                }
            }));
            pending.push((name, task));
        }
        let names: Vec<String> = pending.iter().map(|(name, _)| name.clone()).collect();
        let results = futures::future::join_all(pending.into_iter().map(|(_, task)| task)).await;
        let mut connections = Vec::new();
        for (server, result) in names.into_iter().zip(results) {
            match result {
                Ok(Ok(connection)) => {
                    tracing::info!(
                        server,
                        tools = connection.remote_tools.len(),
                        "MCP server connected"
                    );
                    connections.push(connection);
                }
                Ok(Err(reason)) => problems.push(McpProblem { server, reason }),
                Err(join_error) => problems.push(McpProblem {
                    server,
                    reason: format!("connecting failed unexpectedly: {join_error}"),
                }),
            }
        }
        for problem in &problems {
            tracing::warn!(
                server = problem.server,
                reason = problem.reason,
                "MCP server skipped"
            );
        }
        let mut this = Self {
            connections,
            call_timeout: DEFAULT_CALL_TIMEOUT,
        };
        this.name_tools();
        (this, problems)
    }

    /// Sets how long each tool call may take before it is cancelled (for tools handed out
    /// afterwards by [`tools`](Self::tools)).
    pub fn set_call_timeout(&mut self, timeout: Duration) {
        self.call_timeout = timeout;
    }

    /// Every connected server's tools, named `<server>__<tool>` (sanitized to `[A-Za-z0-9_-]`,
    /// at most 64 characters, unique), with the server's description and input schema.
    pub fn tools(&self) -> Vec<Arc<dyn Tool>> {
        self.connections
            .iter()
            .flat_map(|connection| {
                connection.remote_tools.iter().map(|remote| {
                    Arc::new(McpTool {
                        remote: Arc::clone(remote),
                        link: Arc::clone(&connection.link),
                        call_timeout: self.call_timeout,
                    }) as Arc<dyn Tool>
                })
            })
            .collect()
    }

    /// The connected servers' names.
    pub fn servers(&self) -> Vec<String> {
        self.connections
            .iter()
            .map(|c| c.link.server.clone())
            .collect()
    }

    /// The process id of each connected stdio server, by server name (for diagnostics).
    pub fn processes(&self) -> Vec<(String, u32)> {
        self.connections
            .iter()
            .filter_map(|c| Some((c.link.server.clone(), c.process.as_ref()?.pid)))
            .collect()
    }

    /// Stops every server: closes the connections, lets stdio servers exit (stdin closed, then
    /// `SIGTERM`, then `SIGKILL` to their process group) and waits for them. Takes at most a few
    /// seconds.
    pub async fn shutdown(mut self) {
        let connections = std::mem::take(&mut self.connections);
        futures::future::join_all(connections.into_iter().map(Connection::close)).await;
    }

    /// Gives every tool its unique model-facing name.
    fn name_tools(&mut self) {
        let mut used = HashSet::new();
        for connection in &mut self.connections {
            let server = sanitize(&connection.link.server);
            for remote in &mut connection.remote_tools {
                let name = unique_name(
                    &format!("{server}__{}", sanitize(&remote.remote_name)),
                    &mut used,
                );
                if let Some(remote) = Arc::get_mut(remote) {
                    remote.name = name;
                }
            }
        }
    }
}

impl Drop for McpConnections {
    fn drop(&mut self) {
        // Dropping each connection kills its process group; nothing else to do.
        self.connections.clear();
    }
}

/// Replaces every character outside `[A-Za-z0-9_-]` with `_`.
fn sanitize(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "mcp".to_owned()
    } else {
        cleaned
    }
}

/// Cuts `name` to the length limit and makes it unique among `used` with a numeric suffix.
fn unique_name(name: &str, used: &mut HashSet<String>) -> String {
    let mut candidate: String = name.chars().take(MAX_TOOL_NAME).collect();
    let mut n = 2;
    while used.contains(&candidate) {
        let suffix = format!("_{n}");
        let stem: String = name.chars().take(MAX_TOOL_NAME - suffix.len()).collect();
        candidate = format!("{stem}{suffix}");
        n += 1;
    }
    used.insert(candidate.clone());
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitized_cut_and_unique() {
        let mut used = HashSet::new();
        assert_eq!(sanitize("my server.v2"), "my_server_v2");
        assert_eq!(sanitize(""), "mcp");
        let long = format!("{}__{}", "s".repeat(40), "t".repeat(40));
        let first = unique_name(&long, &mut used);
        assert_eq!(first.len(), MAX_TOOL_NAME);
        let second = unique_name(&long, &mut used);
        assert_eq!(second.len(), MAX_TOOL_NAME);
        assert!(second.ends_with("_2"));
        assert_ne!(first, second);
    }
}
