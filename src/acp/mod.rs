//! The Agent Client Protocol face of Punie: handlers for the editor's requests, conversion
//! between wire types and Punie's own, and the editor-backed workspace.
//!
//! This is the only module that imports the ACP crate. A connection is any transport the ACP
//! crate can drive (stdio, a pair of byte streams, a WebSocket adapter); the agent never knows
//! which.
//!
//! The files form a one-way stack, each using only those before it: `error` (refusals and their
//! one conversion into JSON-RPC errors), `convert`, `editor` (the editor as a workspace),
//! `discovery`, `connection` (one editor's state), the handlers (`modes`, `models`, `perf`,
//! `sessions`, `handlers`),
//! and this file, which only registers them. The inbound transport stands apart: `precheck`
//! (the check of each inbound line), `outgoing` (the one writer of a connection's frames),
//! `lines` (the bounded line reader and the transports built on the two), and `websocket`;
//! `testing` (the fake editor of the test kit) sits on top, a client of [`serve`].

mod connection;
mod convert;
mod discovery;
mod editor;
mod error;
mod handlers;
mod lines;
mod models;
mod modes;
mod outgoing;
mod perf;
mod precheck;
mod sessions;
#[cfg(feature = "testing")]
pub(crate) mod testing;
mod websocket;

use std::sync::Arc;
use std::time::Duration;

use agent_client_protocol::{Agent as AgentRole, ConnectTo};
use tokio_util::sync::CancellationToken;

use crate::agent::Agent;
use connection::Connection;

pub use error::AcpError;
#[doc(hidden)]
pub use lines::fuzz_inbound_lines;
pub use lines::{Frame, MAX_LINE_BYTES};
pub use websocket::websocket_transport;

/// How long a shutdown waits for the answers to the editor's pending requests (a cancelled
/// prompt's `stopReason: "cancelled"`) before the connection is dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Registers `handler` (an `async fn(&Arc<Connection>, request, responder, cx)`) for the
/// request type it takes, handing it this connection's state.
macro_rules! request {
    ($connection:expr, $handler:path) => {{
        let connection = $connection.clone();
        async move |request, responder, cx| $handler(&connection, request, responder, cx).await
    }};
}

/// Serves `agent` to one editor over `transport` until the editor hangs up.
///
/// Sessions opened over this connection are closed (their turns cancelled, their commands
/// killed) when it ends.
pub async fn serve<T: ConnectTo<AgentRole>>(
    agent: Arc<Agent>,
    transport: T,
) -> Result<(), AcpError> {
    serve_connection(Arc::new(Connection::new(agent)), transport).await
}

/// [`serve`] with the connection's state made by the caller.
async fn serve_connection<T: ConnectTo<AgentRole>>(
    connection: Arc<Connection>,
    transport: T,
) -> Result<(), AcpError> {
    let agent = connection.agent.clone();
    let cancel = {
        let connection = connection.clone();
        async move |notification, cx| handlers::cancel(&connection, notification, cx).await
    };
    let result = AgentRole
        .v1()
        .name("punie")
        .on_receive_request(
            request!(connection, handlers::initialize),
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            request!(connection, handlers::authenticate),
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            request!(connection, handlers::new_session),
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            request!(connection, handlers::prompt),
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            request!(connection, models::set_config_option),
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            request!(connection, modes::set_mode),
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            request!(connection, sessions::list),
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            request!(connection, sessions::load),
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            request!(connection, sessions::resume),
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            request!(connection, sessions::close),
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            request!(connection, sessions::delete),
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_notification(cancel, agent_client_protocol::on_receive_notification!())
        .on_receive_request(
            request!(connection, perf::perf_report),
            agent_client_protocol::on_receive_request!(),
        )
        // Registered last: it sees only requests no other handler took.
        .on_receive_request(
            request!(connection, handlers::untyped),
            agent_client_protocol::on_receive_request!(),
        )
        .connect_to(transport)
        .await;

    for id in connection.take_sessions() {
        agent.close_session(&id).await;
    }
    result.map_err(|e| AcpError::Connection(e.to_string()))
}

/// Serves `agent` to one editor over any byte stream pair (a socket, a pipe, an in-memory
/// duplex), newline-delimited JSON-RPC as on stdio.
///
/// Each inbound line is at most [`MAX_LINE_BYTES`]; a longer one, one that is not UTF-8, or a
/// malformed request is answered with a JSON-RPC error and the connection goes on.
pub async fn serve_io<R, W>(agent: Arc<Agent>, reader: R, writer: W) -> Result<(), AcpError>
where
    R: tokio::io::AsyncRead + Send + 'static,
    W: tokio::io::AsyncWrite + Send + 'static,
{
    serve_io_until(agent, reader, writer, std::future::pending()).await
}

/// [`serve_io`] until the editor hangs up or `shutdown` resolves. On shutdown every turn of
/// this connection is cancelled, and the answers to the editor's pending requests (a prompt's
/// `stopReason: "cancelled"`) are written, waiting at most [`SHUTDOWN_GRACE`], before the
/// connection ends and its sessions are closed.
pub async fn serve_io_until<R, W>(
    agent: Arc<Agent>,
    reader: R,
    writer: W,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AcpError>
where
    R: tokio::io::AsyncRead + Send + 'static,
    W: tokio::io::AsyncWrite + Send + 'static,
{
    let stop = CancellationToken::new();
    let pending = Arc::new(outgoing::Pending::default());
    let transport = lines::byte_transport(reader, writer, stop.clone(), pending.clone());
    let connection = Arc::new(Connection::new(agent.clone()));
    let serving = serve_connection(connection.clone(), transport);
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => return result,
        () = shutdown => {}
    }
    // Taken now, so the connection's own cleanup does not close them while their prompts are
    // still answering; closed below once the answers are out.
    let sessions = connection.take_sessions();
    for id in &sessions {
        // A session opened and closed meanwhile is not an error worth more than a log line.
        if let Err(error) = agent.cancel(id) {
            tracing::debug!(%error, "cancel on shutdown");
        }
    }
    let drained = tokio::select! {
        result = &mut serving => Some(result),
        outcome = tokio::time::timeout(SHUTDOWN_GRACE, pending.drained()) => {
            if outcome.is_err() {
                tracing::warn!(
                    grace = ?SHUTDOWN_GRACE,
                    "shutting down with requests unanswered"
                );
            }
            None
        }
    };
    let result = match drained {
        Some(result) => result,
        None => {
            // No more input: the ACP crate then flushes what it holds and ends.
            stop.cancel();
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut serving).await {
                Ok(result) => result,
                Err(_) => Ok(()),
            }
        }
    };
    for id in sessions {
        agent.close_session(&id).await;
    }
    result
}

/// Serves `agent` to the editor that started this process, over stdin and stdout.
pub async fn serve_stdio(agent: Arc<Agent>) -> Result<(), AcpError> {
    serve_stdio_until(agent, std::future::pending()).await
}

/// [`serve_stdio`] until the editor closes stdin or `shutdown` resolves (see
/// [`serve_io_until`] for what a shutdown does).
pub async fn serve_stdio_until(
    agent: Arc<Agent>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AcpError> {
    serve_io_until(agent, tokio::io::stdin(), tokio::io::stdout(), shutdown).await
}
