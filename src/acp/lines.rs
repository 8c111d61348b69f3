//! Punie's own inbound transport: reads newline-delimited JSON-RPC with a bound on each line,
//! runs every line through the [pre-check](super::precheck), and hands the ACP crate only the
//! lines it handles well (through `agent_client_protocol::Lines`).
//!
//! The crate's own byte transport reads with `BufReader::lines()`: a non-UTF-8 line ends the
//! connection and a line without a newline is buffered without limit.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use agent_client_protocol::{Agent as AgentRole, ConnectTo};
use futures::{Stream, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio_util::sync::CancellationToken;

use super::error::{RequestError, error_frame};
use super::outgoing::{Destination, Outgoing, Pending};
use super::precheck::{Verdict, check_bytes};

/// The longest inbound message, in bytes without its newline: 64 MiB, room for an editor that
/// embeds a big file in a prompt. A longer line is answered with an error and skipped.
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// One line from a [`LineReader`].
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A whole line, without its `\n` (or `\r\n`).
    Whole(Vec<u8>),
    /// A line went past the limit: what was read of it is dropped, and so is the rest, up to
    /// and including its newline, before the next line is read.
    TooLong,
}

/// Reads lines of at most `limit` bytes, never holding more than that.
struct LineReader<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
    limit: usize,
    /// Inside a line already reported as too long: skip to its newline.
    skipping: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    fn new(reader: R, limit: usize) -> Self {
        Self {
            reader: BufReader::with_capacity(64 * 1024, reader),
            line: Vec::new(),
            limit,
            skipping: false,
        }
    }

    /// The next line; `None` at the end of the stream. A last line without a newline counts.
    async fn next(&mut self) -> io::Result<Option<Line>> {
        loop {
            let buffer = self.reader.fill_buf().await?;
            if buffer.is_empty() {
                self.skipping = false;
                if self.line.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.take()));
            }
            let newline = buffer.iter().position(|&b| b == b'\n');
            let chunk = newline.unwrap_or(buffer.len());
            if self.skipping {
                self.skipping = newline.is_none();
                self.reader.consume(newline.map_or(chunk, |at| at + 1));
                continue;
            }
            // A `\r` before the newline is not part of the line, so it does not count.
            let counted = match newline {
                Some(at) if at > 0 && buffer[at - 1] == b'\r' => at - 1,
                _ => chunk,
            };
            if self.line.len() + counted > self.limit {
                self.line = Vec::new();
                self.skipping = newline.is_none();
                self.reader.consume(newline.map_or(chunk, |at| at + 1));
                return Ok(Some(Line::TooLong));
            }
            self.line.extend_from_slice(&buffer[..chunk]);
            self.reader.consume(newline.map_or(chunk, |at| at + 1));
            if newline.is_some() {
                return Ok(Some(self.take()));
            }
        }
    }

    fn take(&mut self) -> Line {
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Line::Whole(line)
    }
}

/// What the inbound side does with one line: forward it to the crate or answer it.
async fn route(line: Line, outgoing: &Outgoing, pending: &Pending) -> io::Result<Option<String>> {
    let verdict = match line {
        Line::Whole(bytes) => check_bytes(bytes),
        Line::TooLong => {
            tracing::warn!(limit = MAX_LINE_BYTES, "inbound line too long; skipped");
            Verdict::Answer(error_frame(
                None,
                RequestError::LineTooLong {
                    limit: MAX_LINE_BYTES,
                },
            ))
        }
    };
    match verdict {
        Verdict::Forward { line, request_id } => {
            if let Some(id) = request_id {
                pending.insert(id);
            }
            Ok(Some(line))
        }
        Verdict::Answer(frame) => {
            tracing::debug!("answered a malformed inbound line");
            outgoing.send(frame).await?;
            Ok(None)
        }
    }
}

/// The transport for newline-delimited JSON-RPC on a byte stream pair. The inbound side ends
/// at the reader's end, or as soon as `stop` is cancelled. `pending` tracks the requests not
/// yet answered.
pub(crate) fn byte_transport<R, W>(
    reader: R,
    writer: W,
    stop: CancellationToken,
    pending: Arc<Pending>,
) -> impl ConnectTo<AgentRole>
where
    R: AsyncRead + Send + 'static,
    W: tokio::io::AsyncWrite + Send + 'static,
{
    // The editor closing its reading end ends the input too, but separately from `stop`: a
    // shutdown that cancels `stop` must still let queued frames out.
    let hung_up = CancellationToken::new();
    let outgoing = Outgoing::new(
        Destination::Bytes(Box::pin(writer)),
        pending.clone(),
        hung_up.clone(),
    );
    let reader = LineReader::new(Box::pin(reader), MAX_LINE_BYTES);
    let state = (reader, outgoing.clone(), pending, stop, hung_up);
    let incoming = futures::stream::unfold(state, |mut state| async move {
        let (reader, outgoing, pending, stop, hung_up) = &mut state;
        loop {
            let line = tokio::select! {
                biased;
                () = stop.cancelled() => return None,
                () = hung_up.cancelled() => return None,
                line = reader.next() => line,
            };
            let routed = match line {
                Ok(Some(line)) => route(line, outgoing, pending).await,
                Ok(None) => return None,
                Err(error) => Err(error),
            };
            match routed {
                Ok(Some(line)) => return Some((Ok(line), state)),
                Ok(None) => {}
                Err(error) => {
                    // The connection ends on this error; nothing more is read.
                    stop.cancel();
                    return Some((Err(error), state));
                }
            }
        }
    });
    agent_client_protocol::Lines::new(outgoing.agent_sink(), Box::pin(incoming))
}

/// One received WebSocket message, as text or as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A text frame.
    Text(String),
    /// A binary frame: read exactly like a text frame (the same bytes, as UTF-8), so invalid
    /// UTF-8 gets the same parse error as on stdio.
    Binary(Vec<u8>),
}

impl From<String> for Frame {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<Vec<u8>> for Frame {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Binary(bytes)
    }
}

impl Frame {
    fn into_bytes(self) -> Vec<u8> {
        match self {
            Self::Text(text) => text.into_bytes(),
            Self::Binary(bytes) => bytes,
        }
    }
}

/// The lines of one frame: split at newlines, `\r` stripped, blank ones dropped.
fn frame_lines(frame: Vec<u8>, into: &mut VecDeque<Line>) {
    for piece in frame.split(|&b| b == b'\n') {
        let piece = piece.strip_suffix(b"\r").unwrap_or(piece);
        if piece.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if piece.len() > MAX_LINE_BYTES {
            into.push_back(Line::TooLong);
        } else {
            into.push_back(Line::Whole(piece.to_vec()));
        }
    }
}

/// The transport for a framed connection (one or more messages per frame).
pub(crate) fn frame_transport<O, I, F>(outgoing: O, incoming: I) -> impl ConnectTo<AgentRole>
where
    O: futures::Sink<String, Error = io::Error> + Send + 'static,
    I: Stream<Item = io::Result<F>> + Send + 'static,
    F: Into<Frame>,
{
    let pending = Arc::new(Pending::default());
    // A closed WebSocket ends through its own incoming side; the token is only for byte streams.
    let outgoing = Outgoing::new(
        Destination::Frames(Box::pin(outgoing)),
        pending.clone(),
        CancellationToken::new(),
    );
    let state = (
        Box::pin(incoming),
        VecDeque::new(),
        outgoing.clone(),
        pending,
    );
    let incoming = futures::stream::unfold(state, |mut state| async move {
        let (frames, lines, outgoing, pending) = &mut state;
        loop {
            let Some(line) = lines.pop_front() else {
                match frames.next().await? {
                    Ok(frame) => frame_lines(frame.into().into_bytes(), lines),
                    Err(error) => return Some((Err(error), state)),
                }
                continue;
            };
            match route(line, outgoing, pending).await {
                Ok(Some(line)) => return Some((Ok(line), state)),
                Ok(None) => {}
                Err(error) => return Some((Err(error), state)),
            }
        }
    });
    agent_client_protocol::Lines::new(outgoing.agent_sink(), Box::pin(incoming))
}

/// Runs `data` through the inbound line handling (the bounded reader, with a 4 KiB limit so
/// that path is reached, and the pre-check), checking what it promises: every line is either
/// forwarded byte for byte or answered with one small JSON-RPC error frame. Panics otherwise.
/// For fuzz targets.
#[doc(hidden)]
pub fn fuzz_inbound_lines(data: &[u8]) {
    const LIMIT: usize = 4096;
    futures::executor::block_on(async {
        let mut reader = LineReader::new(data, LIMIT);
        let mut expected = data.split(|&b| b == b'\n').peekable();
        while let Some(line) = reader.next().await.expect("reading memory cannot fail") {
            let raw = expected.next().expect("no more lines than newlines + 1");
            match line {
                Line::TooLong => assert!(raw.len() > LIMIT),
                Line::Whole(bytes) => {
                    assert_eq!(raw.strip_suffix(b"\r").unwrap_or(raw), bytes.as_slice());
                    match check_bytes(bytes.clone()) {
                        Verdict::Forward { line, .. } => assert_eq!(line.as_bytes(), bytes),
                        Verdict::Answer(frame) => {
                            assert!(!frame.contains('\n'), "{frame}");
                            assert!(frame.len() < 8 * 1024, "{} bytes", frame.len());
                            let reply: serde_json::Value =
                                serde_json::from_str(&frame).expect("an answer is JSON");
                            assert!(reply["error"]["code"].is_i64(), "{frame}");
                            assert!(
                                reply["id"].is_null()
                                    || reply["id"].is_string()
                                    || reply["id"].is_number(),
                                "{frame}"
                            );
                        }
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(data: &[u8], limit: usize) -> Vec<Line> {
        let mut reader = LineReader::new(data, limit);
        let mut out = Vec::new();
        while let Some(line) = reader.next().await.unwrap() {
            out.push(line);
        }
        out
    }

    #[tokio::test]
    async fn lines_are_split_and_bounded() {
        let whole = |s: &str| Line::Whole(s.as_bytes().to_vec());
        assert_eq!(
            lines(b"a\r\nbb\n\nlast", 4).await,
            vec![whole("a"), whole("bb"), whole(""), whole("last")]
        );
        assert_eq!(
            lines(b"12345678\nok\n123456", 4).await,
            vec![Line::TooLong, whole("ok"), Line::TooLong]
        );
        // Exactly the limit (a `\r` not counted) is fine.
        assert_eq!(lines(b"1234\r\n", 4).await, vec![whole("1234")]);
    }

    #[tokio::test]
    async fn a_long_line_is_skipped_across_reads() {
        let mut data = vec![b'x'; 200_000];
        data.extend(b"\nnext\n");
        assert_eq!(
            lines(&data, 1000).await,
            vec![Line::TooLong, Line::Whole(b"next".to_vec())]
        );
    }

    #[test]
    fn the_fuzz_entry_accepts_odd_input() {
        fuzz_inbound_lines(b"\xff\n{\"id\":1}\n[]\n\r\n");
        fuzz_inbound_lines(&[b'{'; 10_000]);
        fuzz_inbound_lines(b"");
    }
}
