//! The Agent Client Protocol face of Punie: handlers for the editor's requests, conversion
//! between wire types and Punie's own, and the editor-backed workspace.
//!
//! This is the only module that imports the ACP crate. A connection is any transport the ACP
//! crate can drive (stdio, a pair of byte streams, a WebSocket adapter); the agent never knows
//! which.
//!
//! The files form a one-way stack, each using only those before it: `error` (refusals and their
//! one conversion into JSON-RPC errors), `convert`, `editor` (the editor as a workspace),
//! `discovery`, `connection` (one editor's state), the handlers (`models`, `perf`, `handlers`),
//! and this file, which only registers them. `websocket` stands apart; `testing` (the fake
//! editor of the test kit) sits on top, a client of [`serve`].

mod connection;
mod convert;
mod discovery;
mod editor;
mod error;
mod handlers;
mod models;
mod perf;
#[cfg(feature = "testing")]
pub(crate) mod testing;
mod websocket;

use std::sync::Arc;

use agent_client_protocol::{Agent as AgentRole, ConnectTo};

use crate::agent::Agent;
use connection::Connection;

pub use error::AcpError;
pub use websocket::websocket_transport;

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
    let connection = Arc::new(Connection::new(agent.clone()));
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
pub async fn serve_io<R, W>(agent: Arc<Agent>, reader: R, writer: W) -> Result<(), AcpError>
where
    R: tokio::io::AsyncRead + Send + 'static,
    W: tokio::io::AsyncWrite + Send + 'static,
{
    use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
    let transport = agent_client_protocol::ByteStreams::new(
        Box::pin(writer).compat_write(),
        Box::pin(reader).compat(),
    );
    serve(agent, transport).await
}

/// Serves `agent` to the editor that started this process, over stdin and stdout.
pub async fn serve_stdio(agent: Arc<Agent>) -> Result<(), AcpError> {
    serve(agent, agent_client_protocol::Stdio::new()).await
}
