//! Markup inside the answer's text, turned into events: `<think>…</think>` into
//! [`ModelEvent::Thought`]s, and tool calls written as text (when the server did not parse them)
//! into [`ModelEvent::ToolCall`]s.
//!
//! [`MarkupFilter`] sits on the event stream of every `OpenAiModel` answer, and any other
//! `ChatModel` can put it on its own with
//! [`filter_markup`]. Text outside markup goes on streaming as it comes (only a possible start
//! of a tag waits for the next chunk); markup never reaches [`ModelEvent::Text`], however the
//! server cut it into chunks; the calls are handed out just before [`ModelEvent::Finished`],
//! which then says [`FinishReason::ToolCalls`].
//!
//! Tool calls are read from the text only when the request offered tools and the server sent no
//! structured `tool_calls` in that answer: if it does, markup already read is given back as
//! text. Recognised dialects: Hermes/Qwen `<tool_call>{…}</tool_call>`, Qwen3-Coder
//! `<tool_call><function=…>…</function></tool_call>` (also without the wrapper), LM Studio
//! `[TOOL_REQUEST]…[END_TOOL_REQUEST]`, Mistral `[TOOL_CALLS][…]` and `[TOOL_CALLS]name[ARGS]{…}`;
//! and the shapes small models write outside any tags: call-shaped JSON (bare, or in a
//! ```` ```json ```` fence, loose as it may be), calls inside `<tool_response>`,
//! `<function_call>` or `<|python_tag|>`, and a bare tool name in `<tool_response>` (see
//! `specs/tool-calls.md`).

mod body;
mod candidate;
mod lenient;
mod parse;
mod scan;
mod shapes;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use futures::stream::{self, StreamExt};
use tracing::debug;

use self::parse::TextCall;
use self::scan::{Leading, Piece, Scanner};
use super::{FinishReason, LlmError, ModelEvent, ModelStream, ToolCall, ToolSpec, Usage};

/// Puts a [`MarkupFilter`] on `stream`: inline thoughts become [`ModelEvent::Thought`]s and,
/// when `tools` is not empty, tool calls written as text become [`ModelEvent::ToolCall`]s.
pub fn filter_markup(stream: ModelStream, tools: &[ToolSpec]) -> ModelStream {
    MarkupFilter::new(tools).apply(stream)
}

/// What a model is known to do at the start of its answers, shared by all the answers of one
/// model: whether its leading text may be a thought whose `<think>` the chat template put in the
/// prompt (then that text is held until it is known).
#[derive(Debug)]
pub(crate) struct LeadingThoughts(AtomicU8);

const UNSET: u8 = 0;
const STREAM: u8 = 1;
const HOLD: u8 = 2;

impl LeadingThoughts {
    pub(crate) fn new() -> Self {
        Self(AtomicU8::new(UNSET))
    }

    /// Whether to hold the leading text of the next answer of `model`: as learnt from its
    /// earlier answers, or, before the first, guessed from its name (reasoning models whose
    /// templates open the thought: Qwen3 "Thinking" releases, QwQ, DeepSeek-R1 and its
    /// distillations).
    pub(crate) fn hold_for(&self, model: &str) -> bool {
        let name = model.to_ascii_lowercase();
        let guess = ["thinking", "qwq", "deepseek-r1", "-r1", "r1-"]
            .iter()
            .any(|marker| name.contains(marker));
        let _ = self.0.compare_exchange(
            UNSET,
            if guess { HOLD } else { STREAM },
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.0.load(Ordering::Relaxed) == HOLD
    }

    fn learn(&self, leading: Leading) {
        match leading {
            Leading::Thought => {
                if self.0.swap(HOLD, Ordering::Relaxed) != HOLD {
                    debug!(
                        "the model starts its answers inside a thought opened by its chat \
                         template; holding leading text until </think> from now on"
                    );
                }
            }
            Leading::Answer => self.0.store(STREAM, Ordering::Relaxed),
            Leading::Unknown => {}
        }
    }
}

/// Turns inline markup of one answer into events: `<think>…</think>` into thoughts and, when
/// the request offered tools, tool calls written as text (Hermes/Qwen `<tool_call>`, Qwen3-Coder
/// `<function=…>`, LM Studio `[TOOL_REQUEST]`, Mistral `[TOOL_CALLS]`, call-shaped JSON with no
/// tags) into tool calls.
///
/// Feed it every item of the answer's stream with [`MarkupFilter::push`], in order, and then
/// [`MarkupFilter::end`] if the stream ended without [`ModelEvent::Finished`] or an error; or let
/// [`MarkupFilter::apply`] do that.
pub struct MarkupFilter {
    scanner: Scanner,
    hint: Option<Arc<LeadingThoughts>>,
    /// Calls read from the text, handed out at the end.
    calls: Vec<(Vec<TextCall>, String)>,
    /// The shape of each call in `calls`, in order.
    shapes: Vec<&'static str>,
    /// The server sent structured tool calls in this answer.
    structured_calls: bool,
    /// A call read from the text repeats one read before (a looping model writes the same call
    /// again and again): the answer ends there, the repeat handed out for the turn to see.
    repeated_call: bool,
    usage: Option<Usage>,
    ended: bool,
    new_id: Box<dyn FnMut() -> String + Send>,
}

impl std::fmt::Debug for MarkupFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarkupFilter")
            .field("scanner", &self.scanner)
            .field("calls", &self.calls)
            .field("structured_calls", &self.structured_calls)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl MarkupFilter {
    /// A filter for one answer to a request that offered `tools` (tool calls are read from the
    /// text only when there are some).
    pub fn new(tools: &[ToolSpec]) -> Self {
        Self::build(tools, false, None)
    }

    /// A filter that learns from, and follows, what `hint` knows of `model`'s answers.
    pub(crate) fn with_hint(tools: &[ToolSpec], hint: Arc<LeadingThoughts>, model: &str) -> Self {
        Self::build(tools, hint.hold_for(model), Some(hint))
    }

    pub(crate) fn build(
        tools: &[ToolSpec],
        hold_leading: bool,
        hint: Option<Arc<LeadingThoughts>>,
    ) -> Self {
        let tools = (!tools.is_empty()).then(|| Arc::from(tools.to_vec()));
        Self {
            scanner: Scanner::new(hold_leading, tools),
            hint,
            calls: Vec::new(),
            shapes: Vec::new(),
            structured_calls: false,
            repeated_call: false,
            usage: None,
            ended: false,
            new_id: Box::new(|| format!("call_{}", uuid::Uuid::new_v4().simple())),
        }
    }

    /// The same filter, naming the calls it reads with `new_id` (tests want stable ids).
    #[cfg(test)]
    pub(crate) fn with_ids(mut self, new_id: impl FnMut() -> String + Send + 'static) -> Self {
        self.new_id = Box::new(new_id);
        self
    }

    /// Takes the next item of the answer; returns what to pass on, in order.
    pub fn push(
        &mut self,
        item: Result<ModelEvent, LlmError>,
    ) -> Vec<Result<ModelEvent, LlmError>> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        match item {
            Ok(ModelEvent::Text(text)) => {
                self.scanner.push(&text);
                self.drain(&mut out);
                if self.repeated_call {
                    debug!("a tool call in the text repeats an earlier one: the answer ends here");
                    self.flush(&mut out);
                    out.push(Ok(ModelEvent::Finished(FinishReason::ToolCalls)));
                    self.ended = true;
                }
            }
            Ok(ModelEvent::Thought(text)) => {
                self.scanner.structured_thought();
                self.drain(&mut out);
                out.push(Ok(ModelEvent::Thought(text)));
            }
            Ok(ModelEvent::ToolCall(call)) => {
                if !self.structured_calls {
                    self.structured_calls = true;
                    let given_back: String = std::mem::take(&mut self.calls)
                        .into_iter()
                        .map(|(_, raw)| raw)
                        .collect();
                    self.shapes.clear();
                    if !given_back.is_empty() {
                        debug!("structured tool calls arrived: tool-call markup stays text");
                        out.push(Ok(ModelEvent::Text(given_back)));
                    }
                    self.scanner.stop_calls();
                    self.drain(&mut out);
                }
                out.push(Ok(ModelEvent::ToolCall(call)));
            }
            Ok(ModelEvent::Usage(usage)) => self.usage = Some(usage),
            // Nothing to read in them: passed on as they come.
            Ok(event @ (ModelEvent::PromptProgress(_) | ModelEvent::RecoveredCall(_))) => {
                out.push(Ok(event));
            }
            Ok(ModelEvent::Finished(reason)) => {
                self.scanner.finish(reason != FinishReason::Length);
                let has_calls = self.flush(&mut out);
                let reason = match reason {
                    FinishReason::Length | FinishReason::ContentFilter => reason,
                    _ if has_calls => FinishReason::ToolCalls,
                    other => other,
                };
                out.push(Ok(ModelEvent::Finished(reason)));
                self.ended = true;
            }
            Err(error) => {
                // Held text is dropped: the answer failed, and a retry must start clean.
                out.push(Err(error));
                self.ended = true;
            }
        }
        out
    }

    /// The stream ended without [`ModelEvent::Finished`] or an error: what was held.
    pub fn end(&mut self) -> Vec<Result<ModelEvent, LlmError>> {
        let mut out = Vec::new();
        if !self.ended {
            self.scanner.finish(false);
            self.flush(&mut out);
            self.ended = true;
        }
        out
    }

    /// `stream` with this filter on it.
    pub fn apply(self, stream: ModelStream) -> ModelStream {
        let state = (stream, self, VecDeque::new(), false);
        stream::unfold(
            state,
            |(mut stream, mut filter, mut queue, mut done)| async move {
                loop {
                    if let Some(item) = queue.pop_front() {
                        return Some((item, (stream, filter, queue, done)));
                    }
                    if done {
                        return None;
                    }
                    match stream.next().await {
                        Some(item) => {
                            queue.extend(filter.push(item));
                            done = filter.ended;
                        }
                        None => {
                            queue.extend(filter.end());
                            done = true;
                        }
                    }
                }
            },
        )
        .boxed()
    }

    /// The scanner's text and thoughts out; its calls kept for the end.
    fn drain(&mut self, out: &mut Vec<Result<ModelEvent, LlmError>>) {
        for piece in self.scanner.take() {
            if self.repeated_call {
                // What follows a repeated call is the loop going on: dropped, wherever the
                // server cut the text.
                continue;
            }
            match piece {
                Piece::Text(text) => out.push(Ok(ModelEvent::Text(text))),
                Piece::Thought(text) => out.push(Ok(ModelEvent::Thought(text))),
                Piece::Calls { calls, raw } => {
                    let same = |a: &TextCall, b: &TextCall| {
                        a.name == b.name
                            && (a.arguments == b.arguments
                                || serde_json::from_str::<serde_json::Value>(&a.arguments)
                                    .ok()
                                    .zip(
                                        serde_json::from_str::<serde_json::Value>(&b.arguments)
                                            .ok(),
                                    )
                                    .is_some_and(|(a, b)| a == b))
                    };
                    self.repeated_call |= calls.iter().any(|call| {
                        self.calls
                            .iter()
                            .flat_map(|(held, _)| held)
                            .any(|held| same(held, call))
                    });
                    self.calls.push((calls, raw));
                }
            }
        }
        self.shapes.extend(self.scanner.take_shapes());
    }

    /// Everything held, the calls read from the text, and the usage; whether there were calls.
    fn flush(&mut self, out: &mut Vec<Result<ModelEvent, LlmError>>) -> bool {
        self.drain(out);
        if let Some(hint) = &self.hint {
            hint.learn(self.scanner.leading());
        }
        let calls: Vec<TextCall> = std::mem::take(&mut self.calls)
            .into_iter()
            .flat_map(|(calls, _)| calls)
            .collect();
        let has_calls = !calls.is_empty();
        if has_calls {
            debug!(
                calls = calls.len(),
                "tool calls read from the answer's text"
            );
        }
        let mut shapes = std::mem::take(&mut self.shapes).into_iter();
        for call in calls {
            if let Some(shape) = shapes.next() {
                out.push(Ok(ModelEvent::RecoveredCall(shape)));
            }
            let id = call.id.unwrap_or_else(&mut self.new_id);
            out.push(Ok(ModelEvent::ToolCall(ToolCall {
                id,
                name: call.name,
                arguments: call.arguments,
            })));
        }
        if let Some(usage) = self.usage.take() {
            out.push(Ok(ModelEvent::Usage(usage)));
        }
        has_calls
    }
}

#[cfg(test)]
mod shape_tests;
#[cfg(test)]
pub(crate) mod tests;
