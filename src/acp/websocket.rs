//! ACP over a message-framed connection such as a WebSocket: one JSON-RPC message per text
//! frame instead of one per line.
//!
//! The adapter takes plain streams of frame texts, so this module knows nothing of any HTTP or
//! WebSocket library: the server maps its socket's text frames to `String`s and back.

use std::io;

use agent_client_protocol::{Agent as AgentRole, ConnectTo};
use futures::{Sink, Stream, StreamExt};

/// A transport for [`serve`](super::serve) over a connection that carries one JSON-RPC message
/// per frame (e.g. WebSocket text frames).
///
/// `outgoing` receives each message the agent sends, as the text of one frame. `incoming`
/// yields the text of each frame received, and ends when the peer closes the connection (which
/// ends the ACP connection). A frame holding several newline-separated messages is accepted;
/// blank frames are ignored.
pub fn websocket_transport<O, I>(outgoing: O, incoming: I) -> impl ConnectTo<AgentRole>
where
    O: Sink<String, Error = io::Error> + Send + 'static,
    I: Stream<Item = io::Result<String>> + Send + 'static,
{
    let incoming = incoming.flat_map(|frame| {
        let messages: Vec<io::Result<String>> = match frame {
            Ok(text) => text
                .lines()
                .filter(|line| !line.trim().is_empty())
                .map(|line| Ok(line.to_owned()))
                .collect(),
            Err(error) => vec![Err(error)],
        };
        futures::stream::iter(messages)
    });
    agent_client_protocol::Lines::new(outgoing, Box::pin(incoming))
}
