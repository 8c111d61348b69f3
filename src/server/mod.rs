//! The HTTP face of `punie serve`: a health report and the Agent Client Protocol over
//! WebSocket, on one port.
//!
//! | route | what |
//! |---|---|
//! | `GET /health` | JSON: status, version, the agent's model and whether it answers, open sessions and connections, uptime |
//! | `GET /acp` (WebSocket upgrade) | one ACP connection per socket, one JSON-RPC message per text frame |
//!
//! Who may connect:
//!
//! - A loopback address is the default. Binding any other address needs an explicit
//!   `allow_remote` and a bearer token ([`check_bind`]).
//! - When a token is set, every request must carry it (`Authorization: Bearer TOKEN` or
//!   `?token=TOKEN`); otherwise 401.
//! - A request with an `Origin` header (a browser page) is refused (403) unless the origin is
//!   `http(s)://localhost`, `127.0.0.1` or `[::1]` on any port; so is, on a loopback bind, a
//!   `Host` that is not a loopback name (DNS rebinding).
//! - At most [`ServerOptions::max_connections`] connections at once (503 beyond): through
//!   [`serve`], every TCP connection counts from its accept, and one that has not sent its
//!   request headers within [`ServerOptions::header_timeout`] is dropped. Messages of at most
//!   [`ServerOptions::max_message_bytes`].
//!
//! On shutdown (the token given to [`serve`] is cancelled) the listener stops accepting and
//! every WebSocket connection is dropped; the caller then closes the agent's sessions
//! ([`Agent::close_all`]) to cancel turns and kill commands.

mod accept;
mod guard;
mod health;
mod perf;
mod socket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::agent::Agent;

/// WebSocket connections served at once unless told otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 64;

/// The largest WebSocket message (and frame) accepted unless told otherwise: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// How long a connection may take to send its request headers unless told otherwise.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `/health` waits for the model server unless told otherwise.
pub const DEFAULT_MODEL_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What can stop the server from starting or serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A non-loopback address was asked for without `allow_remote`.
    #[error(
        "{host} is not a loopback address: serving other machines needs --allow-remote and a token (--token or PUNIE_SERVE_TOKEN)"
    )]
    RemoteNotAllowed {
        /// The address asked for.
        host: String,
    },
    /// A non-loopback address was asked for without a token.
    #[error(
        "serving {host} to other machines needs a bearer token: set PUNIE_SERVE_TOKEN or pass --token"
    )]
    RemoteWithoutToken {
        /// The address asked for.
        host: String,
    },
    /// The address could not be resolved or bound.
    #[error("cannot listen on {address}: {reason}")]
    Bind {
        /// The address asked for.
        address: String,
        /// Why.
        reason: String,
    },
    /// The server failed while serving.
    #[error("the HTTP server failed: {0}")]
    Serve(String),
}

/// How the server behaves.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerOptions {
    /// The bearer token every request must carry, if any.
    pub token: Option<String>,
    /// True when bound to a non-loopback address: any `Host` header is then accepted.
    pub remote: bool,
    /// Connections served at once; more get 503. Through [`serve`] this counts every TCP
    /// connection (WebSockets, HTTP requests, and connections still sending their headers);
    /// through [`router`] in another server, WebSockets only.
    pub max_connections: usize,
    /// How long [`serve`] waits for a request's headers (on a new connection, or the next
    /// request on a kept-alive one) before dropping the connection.
    pub header_timeout: Duration,
    /// The largest WebSocket message (and frame) accepted, in bytes.
    pub max_message_bytes: usize,
    /// How long `/health` waits for the agent's model to say whether it answers
    /// ([`ChatModel::health`](crate::llm::ChatModel::health)).
    pub model_probe_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            token: None,
            remote: false,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            model_probe_timeout: DEFAULT_MODEL_PROBE_TIMEOUT,
        }
    }
}

/// What every handler shares.
struct ServerState {
    agent: Arc<Agent>,
    options: ServerOptions,
    started: Instant,
    connections: Arc<Semaphore>,
    /// WebSocket connections open now, for `/health`.
    sockets: AtomicUsize,
    next_connection: AtomicU64,
    shutdown: CancellationToken,
}

impl ServerState {
    fn new(agent: Arc<Agent>, options: ServerOptions, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            agent,
            connections: Arc::new(Semaphore::new(options.max_connections)),
            options,
            started: Instant::now(),
            sockets: AtomicUsize::new(0),
            next_connection: AtomicU64::new(1),
            shutdown,
        })
    }
}

/// Refuses a bind that would expose the agent beyond this machine without an explicit
/// `allow_remote` and a non-empty `token`. Returns whether the bind is remote.
pub fn check_bind(
    addresses: &[SocketAddr],
    host: &str,
    allow_remote: bool,
    token: Option<&str>,
) -> Result<bool, ServerError> {
    let remote = addresses.iter().any(|address| !address.ip().is_loopback());
    if !remote {
        return Ok(false);
    }
    if !allow_remote {
        return Err(ServerError::RemoteNotAllowed {
            host: host.to_owned(),
        });
    }
    if token.is_none_or(|token| token.trim().is_empty()) {
        return Err(ServerError::RemoteWithoutToken {
            host: host.to_owned(),
        });
    }
    Ok(true)
}

/// Resolves `host:port`, applies [`check_bind`], and binds. Returns the listener and whether
/// the bind is remote (for [`ServerOptions::remote`]).
pub async fn bind(
    host: &str,
    port: u16,
    allow_remote: bool,
    token: Option<&str>,
) -> Result<(TcpListener, bool), ServerError> {
    let address = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let bind_error = |reason: String| ServerError::Bind {
        address: address.clone(),
        reason,
    };
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host(&address)
        .await
        .map_err(|e| bind_error(e.to_string()))?
        .collect();
    if addresses.is_empty() {
        return Err(bind_error("the name resolves to no address".to_owned()));
    }
    let remote = check_bind(&addresses, host, allow_remote, token)?;
    let listener = TcpListener::bind(addresses.as_slice())
        .await
        .map_err(|e| bind_error(e.to_string()))?;
    Ok((listener, remote))
}

/// The routes, for embedding in another axum application. Connections end when `shutdown` is
/// cancelled.
pub fn router(agent: Arc<Agent>, options: ServerOptions, shutdown: CancellationToken) -> Router {
    routes(ServerState::new(agent, options, shutdown))
}

fn routes(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/acp", get(socket::acp_socket))
        .route("/perf", get(perf::html))
        .route("/perf.json", get(perf::json))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::check_request,
        ))
        .with_state(state)
}

/// Serves `agent` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: TcpListener,
    agent: Arc<Agent>,
    options: ServerOptions,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    if let Ok(address) = listener.local_addr() {
        tracing::info!(%address, remote = options.remote, token = options.token.is_some(), "HTTP server listening");
    }
    let state = ServerState::new(agent, options, shutdown);
    accept::accept_loop(listener, state.clone(), routes(state)).await;
    tracing::info!("HTTP server stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn loopback_needs_nothing() {
        assert!(!check_bind(&[addr("127.0.0.1:7777")], "127.0.0.1", false, None).unwrap());
        assert!(!check_bind(&[addr("[::1]:7777")], "::1", false, None).unwrap());
    }

    #[test]
    fn remote_needs_the_flag_and_a_token() {
        let any = [addr("0.0.0.0:7777")];
        assert!(matches!(
            check_bind(&any, "0.0.0.0", false, Some("t")),
            Err(ServerError::RemoteNotAllowed { .. })
        ));
        assert!(matches!(
            check_bind(&any, "0.0.0.0", true, None),
            Err(ServerError::RemoteWithoutToken { .. })
        ));
        assert!(matches!(
            check_bind(&any, "0.0.0.0", true, Some("  ")),
            Err(ServerError::RemoteWithoutToken { .. })
        ));
        assert!(check_bind(&any, "0.0.0.0", true, Some("secret")).unwrap());
    }
}
