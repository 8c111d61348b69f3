//! A chat-completion response turned into [`ModelEvent`]s: server-sent events decoded, chunks
//! parsed leniently, text and thoughts passed on as they come, tool calls assembled, and the end
//! of the answer (`[DONE]`, a finish reason, an error, a cut, a timeout) told apart.

use std::collections::VecDeque;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::Value;
use tokio::time::{Instant, timeout, timeout_at};
use tracing::{debug, warn};

use super::assemble::ToolCallAssembler;
use super::error::deepest_cause;
use super::sse::{SseDecoder, SseEvent};
use super::wire::{self, ChunkWire};
use super::{FinishReason, LlmError, ModelEvent, ModelStream, Timeouts, Usage};

/// How much of a stream's start is kept, to read or show when it is not an event stream.
const HEAD_BYTES: usize = 64 * 1024;

/// The events of an answer that came as one JSON document (a `chat.completion`) instead of a
/// stream; the error is what was wrong with it.
pub(super) fn whole_answer_events(value: Value) -> Result<Vec<ModelEvent>, String> {
    let mut state = ChunkState::default();
    let mut events = VecDeque::new();
    state.absorb(value, &mut events)?;
    state.finish(&mut events);
    Ok(events.into())
}

/// The start of a body, quoted, for error messages.
pub(super) fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "an empty body".to_owned();
    }
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// What the chunks of one answer have said so far.
#[derive(Default)]
struct ChunkState {
    assembler: ToolCallAssembler,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

impl ChunkState {
    /// Takes one parsed chunk; text and thoughts go to `events` at once.
    fn absorb(&mut self, value: Value, events: &mut VecDeque<ModelEvent>) -> Result<(), String> {
        let chunk: ChunkWire = serde_json::from_value(value)
            .map_err(|error| format!("an unexpected chunk ({error})"))?;
        for choice in chunk.choices {
            // Punie asks for one choice; a server adding others must not mix them in.
            if choice.index.is_some_and(|index| index != 0) {
                continue;
            }
            if let Some(delta) = choice.delta.or(choice.message) {
                if let Some(thought) = delta.thought() {
                    events.push_back(ModelEvent::Thought(thought.to_owned()));
                }
                if let Some(text) = delta.content.filter(|text| !text.is_empty()) {
                    events.push_back(ModelEvent::Text(text));
                }
                for call in delta.tool_calls {
                    self.assembler.push(call.into_delta());
                }
            }
            if let Some(reason) = choice.finish_reason.filter(|reason| !reason.is_empty()) {
                self.finish_reason = Some(reason);
            }
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into());
        }
        Ok(())
    }

    /// The end of the answer: the assembled calls, the usage, and the one `Finished`.
    fn finish(&mut self, events: &mut VecDeque<ModelEvent>) {
        let calls = std::mem::take(&mut self.assembler).finish();
        let has_calls = !calls.is_empty();
        events.extend(calls.into_iter().map(ModelEvent::ToolCall));
        if let Some(usage) = self.usage.take() {
            events.push_back(ModelEvent::Usage(usage));
        }
        let reason = match self.finish_reason.take().as_deref() {
            // Older Ollama and mlx_lm.server say `stop` even when the answer is tool calls.
            Some("stop") | None if has_calls => FinishReason::ToolCalls,
            None | Some("stop") => FinishReason::Stop,
            Some("length") => FinishReason::Length,
            Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
            Some("content_filter") => FinishReason::ContentFilter,
            Some(other) => FinishReason::Other(other.to_owned()),
        };
        events.push_back(ModelEvent::Finished(reason));
    }
}

/// The state of a streaming answer, owned by the stream handed to the caller.
pub(super) struct StreamReader {
    url: String,
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    decoder: SseDecoder,
    pending: VecDeque<Result<ModelEvent, LlmError>>,
    chunks: ChunkState,
    /// Nothing more will be yielded after `pending`.
    ended: bool,
    /// At least one server-sent event arrived.
    saw_event: bool,
    /// The first bytes of the body, to show when it turns out not to be an event stream.
    head: Vec<u8>,
    /// Until the first read, the deadline set when the request was sent.
    first_byte_deadline: Option<Instant>,
    timeouts: Timeouts,
}

impl StreamReader {
    /// A reader of `body`, whose first bytes must arrive before `first_byte_deadline`.
    pub(super) fn new(
        url: String,
        body: BoxStream<'static, reqwest::Result<Bytes>>,
        first_byte_deadline: Instant,
        timeouts: Timeouts,
    ) -> Self {
        Self {
            url,
            body,
            decoder: SseDecoder::new(),
            pending: VecDeque::new(),
            chunks: ChunkState::default(),
            ended: false,
            saw_event: false,
            head: Vec::new(),
            first_byte_deadline: Some(first_byte_deadline),
            timeouts,
        }
    }

    /// The events, as the stream handed to the caller; dropping it drops the response body,
    /// which closes the connection.
    pub(super) fn into_stream(self) -> ModelStream {
        stream::unfold(self, |mut reader| async move {
            let item = reader.next_item().await?;
            Some((item, reader))
        })
        .boxed()
    }

    async fn next_item(&mut self) -> Option<Result<ModelEvent, LlmError>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.ended {
                return None;
            }
            let read = match self.first_byte_deadline {
                Some(deadline) => timeout_at(deadline, self.body.next()).await,
                None => timeout(self.timeouts.idle, self.body.next()).await,
            };
            match read {
                Err(_) => {
                    let (waited, phase) = match self.first_byte_deadline {
                        Some(_) => (self.timeouts.first_byte, "waiting for the first byte"),
                        None => (self.timeouts.idle, "waiting for the next chunk"),
                    };
                    self.fail(LlmError::Timeout {
                        url: self.url.clone(),
                        seconds: waited.as_secs(),
                        phase: phase.to_owned(),
                    });
                }
                Ok(Some(Ok(bytes))) => {
                    self.first_byte_deadline = None;
                    let room = HEAD_BYTES.saturating_sub(self.head.len());
                    self.head.extend_from_slice(&bytes[..room.min(bytes.len())]);
                    for event in self.decoder.feed(&bytes) {
                        self.handle(event);
                        if self.ended {
                            break;
                        }
                    }
                }
                Ok(Some(Err(error))) => {
                    debug!(error = %deepest_cause(&error), "model stream broken");
                    self.end_of_body();
                }
                Ok(None) => self.end_of_body(),
            }
        }
    }

    fn end_of_body(&mut self) {
        if let Some(event) = self.decoder.finish() {
            self.handle(event);
        }
        if self.ended {
            return;
        }
        let only_comments = self.head.trim_ascii_start().starts_with(b":");
        if !self.saw_event && !self.head.is_empty() && !only_comments {
            // Not an event stream after all, whatever the content type said.
            let error = serde_json::from_slice::<Value>(&self.head)
                .ok()
                .and_then(|value| wire::error_in_value(&value));
            self.fail(match error {
                Some(message) => LlmError::InStream {
                    url: self.url.clone(),
                    message,
                },
                None => LlmError::Malformed {
                    url: self.url.clone(),
                    detail: format!("a body without server-sent events: {}", excerpt(&self.head)),
                },
            });
        } else if self.chunks.finish_reason.is_some() {
            // The answer was complete; only `[DONE]` is missing (ik_llama.cpp, newer llama.cpp
            // after an error, some proxies).
            self.finish();
        } else {
            self.fail(LlmError::StreamCut {
                url: self.url.clone(),
                attempts: 1,
            });
        }
    }

    fn handle(&mut self, event: SseEvent) {
        self.saw_event = true;
        let data = event.data.trim();
        if event.event.as_deref() == Some("error") {
            let message = serde_json::from_str::<Value>(data)
                .ok()
                .and_then(|value| wire::error_in_value(&value))
                .unwrap_or_else(|| data.to_owned());
            return self.fail(LlmError::InStream {
                url: self.url.clone(),
                message,
            });
        }
        if data.is_empty() {
            return;
        }
        if data == "[DONE]" {
            return self.finish();
        }
        let value: Value = match serde_json::from_str(data) {
            Ok(value) => value,
            Err(_) => {
                return self.fail(LlmError::Malformed {
                    url: self.url.clone(),
                    detail: format!("an event that is not JSON: {}", excerpt(data.as_bytes())),
                });
            }
        };
        if let Some(message) = wire::error_in_value(&value) {
            warn!(url = %self.url, %message, "model server reported an error in the stream");
            return self.fail(LlmError::InStream {
                url: self.url.clone(),
                message,
            });
        }
        let mut events = VecDeque::new();
        match self.chunks.absorb(value, &mut events) {
            Ok(()) => self.pending.extend(events.into_iter().map(Ok)),
            Err(detail) => self.fail(LlmError::Malformed {
                url: self.url.clone(),
                detail: format!("{detail}: {}", excerpt(data.as_bytes())),
            }),
        }
    }

    fn finish(&mut self) {
        let mut events = VecDeque::new();
        self.chunks.finish(&mut events);
        if let Some(ModelEvent::Finished(reason)) = events.back() {
            debug!(url = %self.url, ?reason, "chat completion finished");
        }
        self.pending.extend(events.into_iter().map(Ok));
        self.ended = true;
    }

    fn fail(&mut self, error: LlmError) {
        self.pending.push_back(Err(error));
        self.ended = true;
    }
}

/// The events a streaming body cut into `reads` gives, read without a network (for tests).
#[cfg(test)]
pub(super) fn replay(reads: &[&[u8]]) -> Vec<Result<ModelEvent, LlmError>> {
    let mut reader = StreamReader {
        url: "http://x/v1".into(),
        body: stream::empty().boxed(),
        decoder: SseDecoder::new(),
        pending: VecDeque::new(),
        chunks: ChunkState::default(),
        ended: false,
        saw_event: false,
        head: Vec::new(),
        first_byte_deadline: None,
        timeouts: Timeouts::default(),
    };
    for read in reads {
        let room = HEAD_BYTES.saturating_sub(reader.head.len());
        reader.head.extend_from_slice(&read[..room.min(read.len())]);
        for event in reader.decoder.feed(read) {
            reader.handle(event);
            if reader.ended {
                break;
            }
        }
        if reader.ended {
            break;
        }
    }
    if !reader.ended {
        reader.end_of_body();
    }
    reader.pending.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_of(body: &str) -> Vec<Result<ModelEvent, String>> {
        replay(&[body.as_bytes()])
            .into_iter()
            .map(|item| item.map_err(|error| error.to_string()))
            .collect()
    }

    #[test]
    fn stream_without_finish_reason_or_done_is_cut() {
        let events = events_of("data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n");
        assert_eq!(events[0], Ok(ModelEvent::Text("Hi".into())));
        assert!(
            events[1]
                .as_ref()
                .unwrap_err()
                .contains("closed the stream")
        );
    }

    #[test]
    fn stream_with_finish_reason_but_no_done_is_complete() {
        let events = events_of(
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n",
        );
        assert_eq!(
            events,
            vec![
                Ok(ModelEvent::Text("Hi".into())),
                Ok(ModelEvent::Finished(FinishReason::Stop))
            ]
        );
    }

    #[test]
    fn done_without_finish_reason() {
        let events = events_of(
            "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}\n\ndata: [DONE]\n\n",
        );
        assert_eq!(
            events.last(),
            Some(&Ok(ModelEvent::Finished(FinishReason::ToolCalls)))
        );
        let events = events_of("data: [DONE]\n\n");
        assert_eq!(events, vec![Ok(ModelEvent::Finished(FinishReason::Stop))]);
    }

    #[test]
    fn finish_reasons() {
        for (reason, expected) in [
            ("length", FinishReason::Length),
            ("function_call", FinishReason::ToolCalls),
            ("content_filter", FinishReason::ContentFilter),
            ("eos", FinishReason::Other("eos".into())),
        ] {
            let body = format!(
                "data: {{\"choices\":[{{\"delta\":{{}},\"finish_reason\":\"{reason}\"}}]}}\n\ndata: [DONE]\n\n"
            );
            assert_eq!(events_of(&body), vec![Ok(ModelEvent::Finished(expected))]);
        }
    }

    #[test]
    fn errors_inside_the_stream() {
        for body in [
            // llama.cpp, older builds
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\nerror: {\"code\":500,\"message\":\"boom\",\"type\":\"server_error\"}\n\ndata: [DONE]\n\n",
            // llama.cpp, newer builds
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {\"error\":{\"code\":500,\"message\":\"boom\",\"type\":\"server_error\"}}\n\n",
            // older vLLM
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {\"object\":\"error\",\"message\":\"boom\",\"type\":\"BadRequestError\",\"code\":400}\n\n",
            // an SSE `event: error`
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\nevent: error\ndata: boom\n\n",
        ] {
            let events = events_of(body);
            assert_eq!(events.len(), 2, "{body}");
            assert_eq!(events[0], Ok(ModelEvent::Text("Hi".into())));
            let error = events[1].as_ref().unwrap_err();
            assert!(
                error.contains("reported an error while answering: boom"),
                "{error}"
            );
        }
    }

    #[test]
    fn garbage_is_malformed() {
        let events = events_of("data: <html>\n\n");
        assert!(
            events[0]
                .as_ref()
                .unwrap_err()
                .contains("cannot understand")
        );
        let events = events_of("data: {\"choices\":\"nope\"}\n\n");
        assert!(
            events[0]
                .as_ref()
                .unwrap_err()
                .contains("cannot understand")
        );
    }

    #[test]
    fn other_choices_and_empty_text_are_ignored() {
        let events = events_of(concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"}},{\"index\":1,\"delta\":{\"content\":\"other\"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"mine\"},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        ));
        assert_eq!(
            events,
            vec![
                Ok(ModelEvent::Text("mine".into())),
                Ok(ModelEvent::Finished(FinishReason::Stop))
            ]
        );
    }
}
