//! ACP over a message-framed connection such as a WebSocket: one JSON-RPC message per frame
//! instead of one per line.
//!
//! The adapter takes plain streams of frames, so this module knows nothing of any HTTP or
//! WebSocket library: the server maps its socket's text frames to `String`s and back, and its
//! binary frames to bytes.

use std::io;

use agent_client_protocol::{Agent as AgentRole, ConnectTo};
use futures::{Sink, Stream};

use super::lines::{Frame, frame_transport};

/// A transport for [`serve`](super::serve) over a connection that carries one JSON-RPC message
/// per frame (e.g. WebSocket frames).
///
/// `outgoing` receives each message the agent sends, as the text of one frame. `incoming`
/// yields each frame received (a `String` for a text frame, a `Vec<u8>` or [`Frame`] for a
/// binary one, read as UTF-8 exactly like text), and ends when the peer closes the connection
/// (which ends the ACP connection). A frame holding several newline-separated messages is
/// accepted; blank frames are ignored. Each message goes through the same checks as a line on
/// stdio: at most [`MAX_LINE_BYTES`](super::MAX_LINE_BYTES), UTF-8, a well-formed request, or it
/// is answered with a JSON-RPC error and the connection goes on.
pub fn websocket_transport<O, I, F>(outgoing: O, incoming: I) -> impl ConnectTo<AgentRole>
where
    O: Sink<String, Error = io::Error> + Send + 'static,
    I: Stream<Item = io::Result<F>> + Send + 'static,
    F: Into<Frame>,
{
    frame_transport(outgoing, incoming)
}
