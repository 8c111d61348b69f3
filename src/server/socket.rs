//! `GET /acp`: each WebSocket is one ACP connection, one JSON-RPC message per frame (text, or
//! binary holding the same UTF-8).
//!
//! The socket's frames are mapped to plain strings here and handed to
//! [`crate::acp::websocket_transport`], so the protocol layer never sees a WebSocket type.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};

use super::ServerState;
use super::accept::ConnectionSlot;

/// Upgrades to a WebSocket and serves ACP on it, unless the server is full (503).
pub(super) async fn acp_socket(
    State(state): State<Arc<ServerState>>,
    slot: Option<Extension<ConnectionSlot>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    // Through `serve`, the TCP connection already holds a slot: the socket keeps it. In another
    // server (`router`), the socket takes one of its own.
    let permit = match slot.and_then(|Extension(slot)| slot.take()) {
        Some(permit) => Ok(permit),
        None => state.connections.clone().try_acquire_owned(),
    };
    let Ok(permit) = permit else {
        tracing::warn!(
            max = state.options.max_connections,
            "refused a WebSocket connection: too many open"
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many connections (at most {}): try again later\n",
                state.options.max_connections
            ),
        )
            .into_response();
    };
    let limit = state.options.max_message_bytes;
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_failed_upgrade(|error| tracing::warn!(%error, "WebSocket upgrade failed"))
        .on_upgrade(move |socket| async move {
            serve_socket(state, socket).await;
            drop(permit);
        })
}

async fn serve_socket(state: Arc<ServerState>, socket: WebSocket) {
    let id = state.next_connection.fetch_add(1, Ordering::Relaxed);
    state.sockets.fetch_add(1, Ordering::Relaxed);
    let _counted = SocketCount(&state);
    tracing::info!(connection = id, "WebSocket ACP connection opened");
    let (sink, stream) = socket.split();
    let outgoing = sink
        .with(|line: String| async move { Ok::<_, axum::Error>(Message::Text(line.into())) })
        .sink_map_err(io::Error::other);
    let incoming = stream
        .take_while(|frame| std::future::ready(!matches!(frame, Ok(Message::Close(_)))))
        .filter_map(|frame| {
            std::future::ready(match frame {
                Ok(Message::Text(text)) => {
                    Some(Ok(crate::acp::Frame::Text(text.as_str().to_owned())))
                }
                // Binary frames carry the same UTF-8 JSON as text frames (invalid UTF-8 gets the
                // same parse error as on stdio).
                Ok(Message::Binary(bytes)) => Some(Ok(crate::acp::Frame::Binary(bytes.to_vec()))),
                Ok(_) => None,
                Err(error) => Some(Err(io::Error::other(error))),
            })
        });
    let transport = crate::acp::websocket_transport(outgoing, incoming);
    tokio::select! {
        result = crate::acp::serve(state.agent.clone(), transport) => match result {
            Ok(()) => tracing::info!(connection = id, "WebSocket ACP connection closed"),
            Err(error) => tracing::info!(connection = id, %error, "WebSocket ACP connection ended"),
        },
        () = state.shutdown.cancelled() => {
            tracing::info!(connection = id, "WebSocket ACP connection dropped on shutdown");
        }
    }
}

/// Counts a WebSocket as open until dropped, however its task ends.
struct SocketCount<'a>(&'a ServerState);

impl Drop for SocketCount<'_> {
    fn drop(&mut self) {
        self.0.sockets.fetch_sub(1, Ordering::Relaxed);
    }
}
