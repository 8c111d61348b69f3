//! The accept loop of [`serve`](super::serve): every TCP connection holds one of the
//! [`max_connections`](super::ServerOptions::max_connections) slots from the moment it is
//! accepted (still sending its headers, serving `/health`, or carrying a WebSocket), and a
//! connection whose request headers do not arrive within
//! [`header_timeout`](super::ServerOptions::header_timeout) is dropped.
//!
//! `axum::serve` does neither: a client that opened sockets and never finished a request held
//! them (and their descriptors) for ever, uncounted. Beyond the limit a connection is answered
//! `503` and closed; at most [`MAX_REFUSING`] such answers are in progress at once, past which
//! new connections are closed at once (a flood costs nothing but the accept).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use super::ServerState;

/// Refusals (503 answers to connections beyond the limit) in progress at once.
pub(super) const MAX_REFUSING: usize = 64;

/// How long a refusal waits for the request it answers, and for the answer to be taken.
const REFUSAL_PATIENCE: Duration = Duration::from_secs(2);

/// The largest request head a refusal reads before answering.
const REFUSAL_READ_LIMIT: usize = 16 * 1024;

/// How long to wait after `accept` fails (typically out of descriptors) before trying again,
/// so a failing accept does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A TCP connection's slot, handed to the request handlers: the WebSocket handler takes the
/// permit so that it stays held for as long as the socket lives (after the HTTP connection
/// itself has ended in the upgrade).
#[derive(Clone, Debug)]
pub(super) struct ConnectionSlot(Arc<Mutex<Option<OwnedSemaphorePermit>>>);

impl ConnectionSlot {
    /// Takes the connection's permit, if no request on it took it before.
    pub(super) fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Accepts connections until shutdown, then waits for the HTTP connections it started (not
/// for WebSockets, which end on shutdown by themselves).
pub(super) async fn accept_loop(listener: TcpListener, state: Arc<ServerState>, router: Router) {
    let tracker = TaskTracker::new();
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = state.shutdown.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accepting a connection failed");
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    () = state.shutdown.cancelled() => break,
                }
            }
        };
        match state.connections.clone().try_acquire_owned() {
            Ok(permit) => {
                let slot = ConnectionSlot(Arc::new(Mutex::new(Some(permit))));
                tracker.spawn(serve_connection(
                    stream,
                    state.clone(),
                    router.clone(),
                    slot,
                ));
            }
            Err(_) => {
                let max = state.options.max_connections;
                tracing::warn!(max, "refused a connection: too many open");
                if let Ok(permit) = refusing.clone().try_acquire_owned() {
                    tracker.spawn(refuse(stream, max, permit));
                }
            }
        }
    }
    tracker.close();
    tracker.wait().await;
}

/// Serves HTTP/1.1 on one connection, its headers due within the header timeout (for the
/// first request and for each one after on a kept-alive connection).
async fn serve_connection(
    stream: TcpStream,
    state: Arc<ServerState>,
    router: Router,
    slot: ConnectionSlot,
) {
    let tower = TowerToHyperService::new(router);
    let handed = slot.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(handed.clone());
        hyper::service::Service::call(&tower, request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.options.header_timeout);
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = state.shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "HTTP connection ended");
    }
    drop(slot);
}

/// Answers `503` to a connection beyond the limit: reads its request head first (briefly), so
/// closing does not reset the connection before the client has read the answer.
async fn refuse(mut stream: TcpStream, max: usize, _permit: OwnedSemaphorePermit) {
    let body = format!("too many connections (at most {max}): try again later\n");
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_PATIENCE, async {
        let mut head = Vec::new();
        let mut buffer = [0u8; 2048];
        while head.len() < REFUSAL_READ_LIMIT && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buffer[..n]),
            }
        }
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
}
