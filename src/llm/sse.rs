//! An incremental Server-Sent-Events decoder: bytes in, whole events out, however the bytes
//! were cut into reads.
//!
//! Follows the WHATWG event-stream parsing rules (lines end in `\r\n`, `\n` or `\r`; `:` starts a
//! comment; `data:` lines of one event are joined with `\n`; one leading space after the colon is
//! dropped), with one addition for llama.cpp: older `llama-server` builds report an error inside
//! a streaming answer as a non-standard `error: {json}` line. The standard says to ignore unknown
//! fields; we surface it as an event of type `error` instead, so the client can show it.
//!
//! Bytes are buffered until a whole line has arrived and only then decoded as UTF-8, so a
//! character cut across two reads is never mangled (line ends cannot occur inside a multi-byte
//! sequence).
//!
//! The buffering is bounded: a line, or the data of one event, longer than the decoder's limit
//! is an [`SseTooLong`] error rather than memory that grows for as long as a server keeps
//! sending without a line end.

/// How much of an over-long line is kept to show in the error.
const START_BYTES: usize = 120;

/// One dispatched event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` type, if the server named one (`error` for llama.cpp's `error:` lines).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// The default bound of one line and of one event's data: 1 MiB, hundreds of times the
/// largest chunk a real server sends (a whole tool call from Ollama is a few KiB).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;

/// A line or an event longer than the decoder's limit: the stream cannot be read further.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a server-sent event of more than {limit} bytes (it began {start:?})")]
pub struct SseTooLong {
    /// The limit, in bytes.
    pub limit: usize,
    /// The first bytes of the line or event, decoded leniently.
    pub start: String,
}

/// Turns a byte stream into [`SseEvent`]s; feed it every read, then call [`SseDecoder::finish`]
/// at the end of the stream.
#[derive(Debug)]
pub struct SseDecoder {
    /// The most bytes one line, or the data of one event, may hold.
    max_bytes: usize,
    /// Bytes of the line being received (no line end in it yet).
    line: Vec<u8>,
    /// The previous read ended a line with `\r`: a `\n` starting the next read belongs to it.
    after_cr: bool,
    /// No line has been completed yet (a byte-order mark may start the stream).
    at_start: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    /// A decoder at the start of a stream, with lines and events bounded by
    /// [`DEFAULT_MAX_EVENT_BYTES`].
    pub fn new() -> Self {
        Self::with_limit(DEFAULT_MAX_EVENT_BYTES)
    }

    /// A decoder at the start of a stream whose lines, and events' data, may hold at most
    /// `max_bytes` bytes.
    pub fn with_limit(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            event: None,
            data: String::new(),
            has_data: false,
        }
    }

    /// Feeds one read of the stream; returns the events it completed, in order, or the error
    /// of a line or event over the limit (the events before it are lost with the stream).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseTooLong> {
        let mut events = Vec::new();
        let mut rest = bytes;
        if rest.is_empty() {
            return Ok(events);
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(stripped) = rest.strip_prefix(b"\n") {
                rest = stripped;
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.take_into_line(&rest[..end])?;
            let terminator = rest[end];
            rest = &rest[end + 1..];
            if terminator == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            let line = std::mem::take(&mut self.line);
            if let Some(event) = self.process_line(&line)? {
                events.push(event);
            }
        }
        self.take_into_line(rest)?;
        Ok(events)
    }

    /// Adds `bytes` to the line being received, unless that makes it too long.
    fn take_into_line(&mut self, bytes: &[u8]) -> Result<(), SseTooLong> {
        if self.line.len() + bytes.len() > self.max_bytes {
            let mut start = std::mem::take(&mut self.line);
            start.extend_from_slice(&bytes[..bytes.len().min(START_BYTES)]);
            return Err(self.too_long(&start));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn too_long(&self, start: &[u8]) -> SseTooLong {
        let start = &start[..start.len().min(START_BYTES)];
        SseTooLong {
            limit: self.max_bytes,
            start: format!("{}…", String::from_utf8_lossy(start)),
        }
    }

    /// Ends the stream: a last line without its line end still counts, and an event whose
    /// terminating blank line never came is dispatched anyway (the server closed the stream
    /// right after it).
    pub fn finish(&mut self) -> Result<Option<SseEvent>, SseTooLong> {
        let mut dispatched = None;
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            dispatched = self.process_line(&line)?;
        }
        Ok(dispatched.or_else(|| self.dispatch()))
    }

    fn process_line(&mut self, raw: &[u8]) -> Result<Option<SseEvent>, SseTooLong> {
        let mut line = String::from_utf8_lossy(raw);
        if std::mem::take(&mut self.at_start)
            && let Some(stripped) = line.strip_prefix('\u{feff}')
        {
            line = stripped.to_owned().into();
        }
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => self.push_data(value)?,
            "event" => self.event = Some(value.to_owned()),
            "error" => {
                self.event = Some("error".to_owned());
                self.push_data(value)?;
            }
            // `id`, `retry` and unknown fields mean nothing to a chat client.
            _ => {}
        }
        Ok(None)
    }

    /// Adds one `data:` line to the event, unless that makes the event too long (many short
    /// lines without the blank line that ends an event grow it as surely as one long line).
    fn push_data(&mut self, value: &str) -> Result<(), SseTooLong> {
        if self.data.len() + value.len() + 1 > self.max_bytes {
            let data = std::mem::take(&mut self.data);
            return Err(self.too_long(data.as_bytes()));
        }
        self.data.push_str(value);
        self.data.push('\n');
        self.has_data = true;
        Ok(())
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.ends_with('\n') {
            data.pop();
        }
        Some(SseEvent { event, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        for chunk in chunks {
            events.extend(decoder.feed(chunk).unwrap());
        }
        events.extend(decoder.finish().unwrap());
        events
    }

    fn data(text: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: text.to_owned(),
        }
    }

    /// Every way of cutting `input` in two (and byte by byte) gives the same events.
    fn assert_split_invariant(input: &[u8]) -> Vec<SseEvent> {
        let whole = decode_all(&[input]);
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(decode_all(&[a, b]), whole, "cut at byte {cut}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(decode_all(&bytes), whole, "byte by byte");
        whole
    }

    #[test]
    fn lines_and_events_are_bounded() {
        let mut decoder = SseDecoder::with_limit(16);
        assert_eq!(decoder.feed(b"data: 0123456789").unwrap(), vec![]);
        let error = decoder.feed(b"more").unwrap_err();
        assert_eq!(error.limit, 16);
        assert!(error.start.starts_with("data: 0123456789"), "{error}");
        // Short lines that never end the event grow it as surely.
        let mut decoder = SseDecoder::with_limit(16);
        assert!(decoder.feed(b"data: abcde\ndata: fghij\n").is_ok());
        assert!(decoder.feed(b"data: klmno\n").is_err());
        // Comments and events under the limit pass however many there are.
        let mut decoder = SseDecoder::with_limit(16);
        for _ in 0..100 {
            assert_eq!(
                decoder.feed(b": ping\ndata: x\n\n").unwrap(),
                vec![data("x")]
            );
        }
    }

    #[test]
    fn several_events_in_one_read() {
        let events = decode_all(&[b"data: one\n\ndata: two\n\ndata: [DONE]\n\n"]);
        assert_eq!(events, vec![data("one"), data("two"), data("[DONE]")]);
    }

    #[test]
    fn all_line_endings() {
        let events = assert_split_invariant(b"data: a\r\n\r\ndata: b\n\ndata: c\r\rdata: d\r\n\n");
        assert_eq!(events, vec![data("a"), data("b"), data("c"), data("d")]);
    }

    #[test]
    fn comments_multiline_data_and_event_types() {
        let input =
            b": keep-alive\n\nevent: update\ndata: first\ndata:second\nid: 7\nretry: 10\n\n";
        let events = assert_split_invariant(input);
        assert_eq!(
            events,
            vec![SseEvent {
                event: Some("update".into()),
                data: "first\nsecond".into()
            }]
        );
    }

    #[test]
    fn event_without_data_is_not_dispatched_and_its_type_does_not_leak() {
        let events = decode_all(&[b"event: ping\n\ndata: x\n\n"]);
        assert_eq!(events, vec![data("x")]);
    }

    #[test]
    fn llama_cpp_error_lines_become_error_events() {
        let input = b"error: {\"code\":500,\"message\":\"boom\",\"type\":\"server_error\"}\n\ndata: [DONE]\n\n";
        let events = assert_split_invariant(input);
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: Some("error".into()),
                    data: r#"{"code":500,"message":"boom","type":"server_error"}"#.into()
                },
                data("[DONE]")
            ]
        );
    }

    #[test]
    fn last_event_without_blank_line_is_flushed_at_the_end() {
        assert_eq!(decode_all(&[b"data: [DONE]"]), vec![data("[DONE]")]);
        assert_eq!(decode_all(&[b"data: [DONE]\n"]), vec![data("[DONE]")]);
        assert_eq!(decode_all(&[b"data: x\r"]), vec![data("x")]);
    }

    #[test]
    fn byte_order_mark_at_start_is_ignored() {
        assert_eq!(
            decode_all(&["\u{feff}data: x\n\n".as_bytes()]),
            vec![data("x")]
        );
    }

    #[test]
    fn utf8_split_across_reads_survives() {
        let input = "data: {\"content\":\" 🦙 naïve\"}\n\n".as_bytes();
        let events = assert_split_invariant(input);
        assert_eq!(events, vec![data("{\"content\":\" 🦙 naïve\"}")]);
    }

    #[test]
    fn llama_cpp_recorded_streams_split_anywhere() {
        for fixture in [
            include_str!("../../tests/fixtures/llama.cpp/20_chat_stream_usage_stop.http"),
            include_str!("../../tests/fixtures/llama.cpp/31_tools_auto_stream_toolcall.http"),
        ] {
            let body = fixture.split_once("\r\n\r\n").expect("http fixture").1;
            let events = assert_split_invariant(body.as_bytes());
            assert!(events.len() > 5);
            assert_eq!(events.last(), Some(&data("[DONE]")));
            for event in &events[..events.len() - 1] {
                serde_json::from_str::<serde_json::Value>(&event.data).expect("json event");
            }
        }
    }

    #[test]
    fn hand_made_streams_split_anywhere() {
        for body in [
            include_str!("../../tests/fixtures/ollama/tool_calls_whole.sse"),
            include_str!("../../tests/fixtures/lmstudio/tool_calls_fragmented.sse"),
        ] {
            let events = assert_split_invariant(body.as_bytes());
            assert_eq!(events.last(), Some(&data("[DONE]")));
        }
    }
}
