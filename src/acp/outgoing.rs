//! The one writer of a connection's outgoing frames, shared by the ACP crate and by the inbound
//! pre-check (which answers bad lines itself), so two frames never interleave mid-line; it also
//! cuts oversized error replies and notes which requests have been answered.

use std::collections::HashSet;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::{FutureExt, Sink, SinkExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::error::bounded_error_frame;
use super::precheck::response_id;

/// Where frames are written: a byte stream (one frame per line) or a framed connection.
pub(crate) enum Destination {
    /// Newline-delimited frames on a byte stream (stdio, a socket).
    Bytes(Pin<Box<dyn AsyncWrite + Send>>),
    /// One frame per message (WebSocket text frames).
    Frames(Pin<Box<dyn Sink<String, Error = io::Error> + Send>>),
}

/// The requests the editor sent that the ACP crate has not answered yet (ids in canonical
/// JSON), so a shutdown can wait for their answers.
#[derive(Default)]
pub(crate) struct Pending {
    ids: Mutex<HashSet<String>>,
    changed: tokio::sync::Notify,
}

impl Pending {
    pub(crate) fn insert(&self, id: String) {
        self.lock().insert(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn answered(&self, id: &str) {
        if self.lock().remove(id) {
            self.changed.notify_waiters();
        }
    }

    /// Resolves once every request seen so far has been answered (and the answer written).
    pub(crate) async fn drained(&self) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.is_empty() {
                return;
            }
            changed.await;
        }
    }
}

/// The shared writer.
pub(crate) struct Outgoing {
    destination: tokio::sync::Mutex<Destination>,
    pending: Arc<Pending>,
    /// Cancelled when the editor closes its reading end: the connection then ends as if its
    /// input had ended, instead of failing (an editor that quits mid-turn is not an error).
    hung_up: CancellationToken,
}

impl Outgoing {
    pub(crate) fn new(
        destination: Destination,
        pending: Arc<Pending>,
        hung_up: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            destination: tokio::sync::Mutex::new(destination),
            pending,
            hung_up,
        })
    }

    /// Writes one frame (without its newline) and flushes it.
    pub(crate) async fn send(&self, frame: String) -> io::Result<()> {
        let frame = bounded_error_frame(&frame).unwrap_or(frame);
        let answers = if self.pending.is_empty() {
            None
        } else {
            response_id(&frame)
        };
        if self.hung_up.is_cancelled() {
            return Ok(());
        }
        let written = match &mut *self.destination.lock().await {
            Destination::Bytes(writer) => {
                let mut bytes = frame.into_bytes();
                bytes.push(b'\n');
                match writer.write_all(&bytes).await {
                    Ok(()) => writer.flush().await,
                    Err(error) => Err(error),
                }
            }
            Destination::Frames(sink) => sink.send(frame).await,
        };
        match written {
            Err(error) if is_hang_up(&error) => {
                tracing::info!(%error, "the editor closed its end of the connection; ending it");
                self.hung_up.cancel();
                return Ok(());
            }
            other => other?,
        }
        if let Some(id) = answers {
            self.pending.answered(&id);
        }
        Ok(())
    }

    async fn close(&self) -> io::Result<()> {
        match &mut *self.destination.lock().await {
            Destination::Bytes(writer) => writer.shutdown().await,
            Destination::Frames(sink) => sink.close().await,
        }
    }

    /// The sink handed to the ACP crate: each frame goes through [`Outgoing::send`], and closing
    /// it closes the destination (a WebSocket's close frame, a socket's write half).
    pub(crate) fn agent_sink(self: &Arc<Self>) -> AgentSink {
        AgentSink {
            outgoing: self.clone(),
            busy: None,
            closing: false,
        }
    }
}

/// The peer stopped reading: nobody is left to tell, so this ends the connection cleanly.
fn is_hang_up(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset | io::ErrorKind::NotConnected
    )
}

/// A `Sink<String>` over the shared writer, one frame in flight at a time.
pub(crate) struct AgentSink {
    outgoing: Arc<Outgoing>,
    busy: Option<BoxFuture<'static, io::Result<()>>>,
    closing: bool,
}

impl AgentSink {
    fn poll_busy(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(busy) = &mut self.busy {
            let result = futures::ready!(busy.poll_unpin(cx));
            self.busy = None;
            result?;
        }
        Poll::Ready(Ok(()))
    }
}

impl Sink<String> for AgentSink {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_busy(cx)
    }

    fn start_send(self: Pin<&mut Self>, frame: String) -> io::Result<()> {
        let this = self.get_mut();
        let outgoing = this.outgoing.clone();
        this.busy = Some(async move { outgoing.send(frame).await }.boxed());
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_busy(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        futures::ready!(this.poll_busy(cx))?;
        if !this.closing {
            this.closing = true;
            let outgoing = this.outgoing.clone();
            this.busy = Some(async move { outgoing.close().await }.boxed());
        }
        this.poll_busy(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader has gone, as stdout is once the editor quits.
    struct Gone;

    impl AsyncWrite for Gone {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn an_editor_that_stopped_reading_ends_the_connection_without_an_error() {
        let hung_up = CancellationToken::new();
        let outgoing = Outgoing::new(
            Destination::Bytes(Box::pin(Gone)),
            Arc::default(),
            hung_up.clone(),
        );
        outgoing
            .send("{}".to_owned())
            .await
            .expect("a hang-up is no error");
        assert!(hung_up.is_cancelled(), "the connection is told to end");
        outgoing
            .send("{}".to_owned())
            .await
            .expect("later frames are dropped");
    }
}
