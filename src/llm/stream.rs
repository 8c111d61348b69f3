//! A chat-completion response turned into [`ModelEvent`]s: server-sent events decoded, chunks
//! parsed leniently, text and thoughts passed on as they come, tool calls assembled, and the end
//! of the answer (`[DONE]`, a finish reason, an error, a cut, a timeout) told apart.
//!
//! A hostile or broken server is bounded three ways: one event and one whole answer have a size
//! limit ([`Limits`]); only meaningful events (tokens, thoughts, tool-call pieces, the end)
//! push the idle deadline back, so keep-alives cannot hold a turn; and the reader gives the
//! runtime a turn between reads, so a caller racing a cancel token sees it even while a server
//! floods the connection with bytes that make no event.

use std::collections::VecDeque;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::Value;
use tokio::time::{Instant, timeout_at};
use tracing::{debug, warn};

use super::assemble::ToolCallAssembler;
use super::error::deepest_cause;
use super::sse::{SseDecoder, SseEvent, SseTooLong};
use super::wire::{self, ChunkWire};
use super::{
    FinishReason, Limits, LlmError, ModelEvent, ModelStream, ServerTimings, Timeouts, Usage,
};

/// How much of a stream's start is kept, to read or show when it is not an event stream.
const HEAD_BYTES: usize = 64 * 1024;

/// The events of an answer that came as one JSON document (a `chat.completion`) instead of a
/// stream; the error is what was wrong with it.
pub(super) fn whole_answer_events(value: Value) -> Result<Vec<ModelEvent>, String> {
    let mut state = ChunkState::default();
    let mut events = VecDeque::new();
    // The body's size was bounded as it was read.
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

/// What one chunk brought: whether it moved the answer on, and how many bytes of it.
#[derive(Default)]
struct Progress {
    /// Text, a thought, a piece of a tool call, a finish reason or usage: not a keep-alive.
    meaningful: bool,
    /// Bytes of text, thoughts and tool calls.
    bytes: usize,
}

impl Progress {
    fn add(&mut self, bytes: usize) {
        self.bytes += bytes;
        self.meaningful |= bytes > 0;
    }
}

/// The bytes a tool-call fragment adds to the answer.
fn tool_call_bytes(delta: &super::ToolCallDelta) -> usize {
    [&delta.id, &delta.name, &delta.arguments]
        .into_iter()
        .flatten()
        .map(String::len)
        .sum()
}

/// What the chunks of one answer have said so far.
#[derive(Default)]
struct ChunkState {
    assembler: ToolCallAssembler,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    /// llama.cpp's `timings`, the last ones sent.
    timings: Option<ServerTimings>,
}

impl ChunkState {
    /// Takes one parsed chunk; text and thoughts go to `events` at once. Returns what the
    /// chunk brought.
    fn absorb(
        &mut self,
        value: Value,
        events: &mut VecDeque<ModelEvent>,
    ) -> Result<Progress, String> {
        let chunk: ChunkWire = serde_json::from_value(value)
            .map_err(|error| format!("an unexpected chunk ({error})"))?;
        let mut progress = Progress::default();
        if let Some(read) = chunk.prompt_progress.and_then(|wire| wire.into_progress()) {
            // Not meaningful: the wait for the first token goes on under its own deadline.
            events.push_back(ModelEvent::PromptProgress(read));
        }
        if let Some(timings) = chunk.timings.and_then(|wire| wire.into_timings()) {
            self.timings = Some(timings);
        }
        for choice in chunk.choices {
            // Punie asks for one choice; a server adding others must not mix them in.
            if choice.index.is_some_and(|index| index != 0) {
                continue;
            }
            if let Some(delta) = choice.delta.or(choice.message) {
                if let Some(thought) = delta.thought() {
                    progress.add(thought.len());
                    events.push_back(ModelEvent::Thought(thought.to_owned()));
                }
                if let Some(text) = delta.content.filter(|text| !text.is_empty()) {
                    progress.add(text.len());
                    events.push_back(ModelEvent::Text(text));
                }
                for call in delta.tool_calls {
                    let delta = call.into_delta();
                    progress.add(tool_call_bytes(&delta));
                    self.assembler.push(delta);
                }
            }
            if let Some(reason) = choice.finish_reason.filter(|reason| !reason.is_empty()) {
                progress.meaningful = true;
                self.finish_reason = Some(reason);
            }
        }
        if let Some(usage) = chunk.usage {
            progress.meaningful = true;
            self.usage = Some(usage.into());
        }
        Ok(progress)
    }

    /// The end of the answer: the assembled calls, the usage, and the one `Finished`.
    fn finish(&mut self, events: &mut VecDeque<ModelEvent>) {
        let calls = std::mem::take(&mut self.assembler).finish();
        let has_calls = !calls.is_empty();
        events.extend(calls.into_iter().map(ModelEvent::ToolCall));
        if let Some(usage) = with_timings(self.usage.take(), self.timings.take()) {
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

/// The usage to report: the server's `usage` with llama.cpp's `timings` added (its `cache_n`
/// standing in for `cached_tokens` when `usage` did not say), or, from a server that sent only
/// `timings` (llama.cpp without `stream_options`), the usage they tell.
fn with_timings(usage: Option<Usage>, timings: Option<ServerTimings>) -> Option<Usage> {
    match (usage, timings) {
        (Some(mut usage), timings) => {
            usage.timings = timings;
            usage.cached_tokens = usage
                .cached_tokens
                .or(timings.map(|timings| timings.prompt_cached));
            Some(usage)
        }
        (None, Some(timings)) => Some(Usage {
            prompt_tokens: timings.prompt_read + timings.prompt_cached,
            completion_tokens: timings.generated,
            cached_tokens: Some(timings.prompt_cached),
            timings: Some(timings),
        }),
        (None, None) => None,
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
    /// When the wait for the next meaningful event runs out: the first-byte deadline set when
    /// the request was sent, until the first one came; then the idle timeout after the last.
    deadline: Instant,
    /// A meaningful event arrived (the first-byte wait is over).
    started: bool,
    /// Bytes of text, thoughts and tool calls so far.
    answer_bytes: usize,
    timeouts: Timeouts,
    limits: Limits,
}

impl StreamReader {
    /// A reader of `body`, whose first meaningful event must arrive before
    /// `first_byte_deadline`.
    pub(super) fn new(
        url: String,
        body: BoxStream<'static, reqwest::Result<Bytes>>,
        first_byte_deadline: Instant,
        timeouts: Timeouts,
        limits: Limits,
    ) -> Self {
        Self {
            url,
            body,
            decoder: SseDecoder::with_limit(limits.max_event_bytes),
            pending: VecDeque::new(),
            chunks: ChunkState::default(),
            ended: false,
            saw_event: false,
            head: Vec::new(),
            deadline: first_byte_deadline,
            started: false,
            answer_bytes: 0,
            timeouts,
            limits,
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
            // A server flooding the connection keeps every read ready, and reads that complete
            // no event never return to the caller: without this, a caller racing a cancel
            // token would not see it until the flood stopped.
            tokio::task::consume_budget().await;
            match timeout_at(self.deadline, self.body.next()).await {
                Err(_) => {
                    let error = self.timed_out();
                    self.fail(error);
                }
                Ok(Some(Ok(bytes))) => self.absorb_read(&bytes),
                Ok(Some(Err(error))) => {
                    debug!(error = %deepest_cause(&error), "model stream broken");
                    self.end_of_body();
                }
                Ok(None) => self.end_of_body(),
            }
        }
    }

    /// Takes one read of the body.
    fn absorb_read(&mut self, bytes: &[u8]) {
        let room = HEAD_BYTES.saturating_sub(self.head.len());
        self.head.extend_from_slice(&bytes[..room.min(bytes.len())]);
        match self.decoder.feed(bytes) {
            Ok(events) => {
                for event in events {
                    self.handle(event);
                    if self.ended {
                        break;
                    }
                }
            }
            Err(too_long) => self.event_too_long(too_long),
        }
    }

    fn event_too_long(&mut self, too_long: SseTooLong) {
        warn!(url = %self.url, limit = too_long.limit, "model server sent an over-long event");
        self.fail(LlmError::TooLarge {
            url: self.url.clone(),
            what: "a server-sent event (one line or one event of the stream)".to_owned(),
            limit: too_long.limit,
            excerpt: format!("it began {:?}", too_long.start),
        });
    }

    /// The error of a wait for a meaningful event that ran out.
    fn timed_out(&self) -> LlmError {
        let (seconds, phase, advice) = if self.started {
            (
                self.timeouts.idle,
                "waiting for the next chunk; keep-alive comments and empty chunks do not count",
                " — Punie's idle limit between tokens; if the model is really this slow, raise it \
                 with --idle-timeout SECONDS (PUNIE_IDLE_TIMEOUT)",
            )
        } else if self.head.is_empty() {
            (
                self.timeouts.first_byte,
                "waiting for the first byte",
                " — is it overloaded or stuck?",
            )
        } else {
            (
                self.timeouts.first_byte,
                "waiting for the first token; it sent only keep-alive comments or empty chunks",
                " — is it overloaded or stuck?",
            )
        };
        LlmError::Timeout {
            url: self.url.clone(),
            seconds: seconds.as_secs(),
            phase: phase.to_owned(),
            advice: advice.to_owned(),
        }
    }

    fn end_of_body(&mut self) {
        match self.decoder.finish() {
            Ok(Some(event)) => self.handle(event),
            Ok(None) => {}
            Err(too_long) => return self.event_too_long(too_long),
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
            Ok(progress) => {
                self.answer_bytes += progress.bytes;
                if self.answer_bytes > self.limits.max_answer_bytes {
                    warn!(url = %self.url, limit = self.limits.max_answer_bytes, "model answer over the limit");
                    return self.fail(LlmError::TooLarge {
                        url: self.url.clone(),
                        what: "an answer (text, thoughts and tool calls together)".to_owned(),
                        limit: self.limits.max_answer_bytes,
                        excerpt: format!("the last event began {}", excerpt(data.as_bytes())),
                    });
                }
                if progress.meaningful {
                    self.started = true;
                    self.deadline = Instant::now() + self.timeouts.idle;
                }
                self.pending.extend(events.into_iter().map(Ok));
            }
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
    replay_with(reads, Limits::default())
}

/// [`replay`] under other limits.
#[cfg(test)]
pub(super) fn replay_with(reads: &[&[u8]], limits: Limits) -> Vec<Result<ModelEvent, LlmError>> {
    let mut reader = StreamReader::new(
        "http://x/v1".into(),
        stream::empty().boxed(),
        Instant::now(),
        Timeouts::default(),
        limits,
    );
    for read in reads {
        reader.absorb_read(read);
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
    use std::time::Duration;

    use super::*;

    fn events_of(body: &str) -> Vec<Result<ModelEvent, String>> {
        replay(&[body.as_bytes()])
            .into_iter()
            .map(|item| item.map_err(|error| error.to_string()))
            .collect()
    }

    fn http_body(fixture: &str) -> &str {
        fixture.split_once("\r\n\r\n").expect("http fixture").1
    }

    fn usage_in(events: &[Result<ModelEvent, String>]) -> Usage {
        events
            .iter()
            .find_map(|event| match event {
                Ok(ModelEvent::Usage(usage)) => Some(*usage),
                _ => None,
            })
            .expect("a usage event")
    }

    #[test]
    fn llama_cpp_timings_and_cached_tokens_are_read() {
        // Recorded from llama-server: usage with `prompt_tokens_details` and `timings` on the
        // last chunk.
        let events = events_of(http_body(include_str!(
            "../../tests/fixtures/llama.cpp/20_chat_stream_usage_stop.http"
        )));
        let usage = usage_in(&events);
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (31, 13));
        assert_eq!(usage.cached_tokens, Some(30));
        let timings = usage.timings.expect("timings");
        assert_eq!((timings.prompt_read, timings.prompt_cached), (1, 30));
        assert_eq!(timings.prompt_time, Duration::from_micros(3_002));
        assert_eq!(timings.generated, 13);
        assert_eq!(timings.generation_time, Duration::from_micros(198_573));
        // 13 tokens in 198.573 ms (llama.cpp's own `predicted_per_second`, 60.43, divides by
        // one token less).
        let rate = timings.generation_per_second().unwrap();
        assert!((rate - 65.467).abs() < 0.01, "{rate}");
        let rate = timings.prompt_per_second().unwrap();
        assert!((rate - 333.111).abs() < 0.01, "{rate}");

        // Without `stream_options` llama.cpp sends no usage, only `timings`: the usage they tell.
        let events = events_of(http_body(include_str!(
            "../../tests/fixtures/llama.cpp/22_chat_stream_without_stream_options.http"
        )));
        let usage = usage_in(&events);
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (31, 13));
        assert_eq!(usage.cached_tokens, Some(30));
    }

    #[test]
    fn openai_cached_tokens_without_timings() {
        let events = events_of(
            "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\n\
             data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2006,\"completion_tokens\":300,\"prompt_tokens_details\":{\"cached_tokens\":1920}}}\n\n\
             data: [DONE]\n\n",
        );
        let usage = usage_in(&events);
        assert_eq!(usage.cached_tokens, Some(1920));
        assert_eq!(usage.timings, None);
    }

    #[test]
    fn prompt_progress_comes_as_events_and_does_not_start_the_answer() {
        // The shape llama.cpp streams with `return_progress` (server-task.cpp): an empty
        // assistant delta carrying `prompt_progress`, once before the prompt and after each batch.
        let progress = |processed: u64| {
            format!(
                "data: {{\"choices\":[{{\"finish_reason\":null,\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":null}}}}],\"object\":\"chat.completion.chunk\",\"prompt_progress\":{{\"total\":2013,\"cache\":13,\"processed\":{processed},\"time_ms\":{processed}.5}}}}\n\n"
            )
        };
        let body = format!(
            "{}{}data: {{\"choices\":[{{\"delta\":{{\"content\":\"Hi\"}},\"finish_reason\":\"stop\"}}]}}\n\ndata: [DONE]\n\n",
            progress(13),
            progress(2013)
        );
        let events = events_of(&body);
        assert_eq!(
            events[..3],
            [
                Ok(ModelEvent::PromptProgress(crate::llm::PromptProgress {
                    total: 2013,
                    cached: 13,
                    processed: 13,
                    elapsed: Duration::from_micros(13_500),
                })),
                Ok(ModelEvent::PromptProgress(crate::llm::PromptProgress {
                    total: 2013,
                    cached: 13,
                    processed: 2013,
                    elapsed: Duration::from_micros(2_013_500),
                })),
                Ok(ModelEvent::Text("Hi".into())),
            ]
        );

        // Progress alone is no first token: the first-byte deadline still holds.
        let mut reader = StreamReader::new(
            "http://x/v1".into(),
            stream::empty().boxed(),
            Instant::now(),
            Timeouts::default(),
            Limits::default(),
        );
        reader.absorb_read(progress(13).as_bytes());
        assert!(!reader.started);
    }

    #[test]
    fn an_answer_over_the_limit_fails_and_says_so() {
        let limits = Limits {
            max_answer_bytes: 10,
            ..Limits::default()
        };
        let event = b"data: {\"choices\":[{\"delta\":{\"content\":\"123456\"}}]}\n\n";
        let events = replay_with(&[event, event], limits);
        assert_eq!(
            events[0].as_ref().unwrap(),
            &ModelEvent::Text("123456".into())
        );
        let error = events[1].as_ref().unwrap_err().to_string();
        assert!(error.contains("sent an answer"), "{error}");
        assert!(error.contains("limit of 10 bytes"), "{error}");
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn an_event_over_the_limit_fails_with_its_start() {
        let limits = Limits {
            max_event_bytes: 64,
            ..Limits::default()
        };
        let line = format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}",
            "A".repeat(40)
        );
        let reads: Vec<&[u8]> = vec![line.as_bytes(), &[b'A'; 40], &[b'A'; 40]];
        let events = replay_with(&reads, limits);
        assert_eq!(events.len(), 1);
        let error = events[0].as_ref().unwrap_err().to_string();
        assert!(error.contains("over Punie's limit of 64 bytes"), "{error}");
        assert!(error.contains("data: {\\\"choices"), "{error}");
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
