//! One model request: streaming its answer to the editor, with the request's timings.

use std::time::{Duration, Instant};

use futures::StreamExt;

use super::repetition::{AnswerCalls, TextLoop, TextRepetition, quote};
use super::{Turn, unless_cancelled};
use crate::agent::events::TurnEvent;
use crate::agent::observe::ModelRequestStats;
use crate::llm::{ChatRequest, FinishReason, LlmError, ModelEvent, ToolCall, Usage};

/// The most bytes of text one message or thought chunk sent to the editor carries: a server
/// may send a delta of megabytes, which editors render badly in one piece.
const MAX_CHUNK_BYTES: usize = 16 * 1024;

/// `text` in pieces of at most `max` bytes (at least one character each), cut on character
/// boundaries.
fn pieces(text: &str, max: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut cut = max.min(rest.len());
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut == 0 {
            cut = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}

/// What one model request produced.
#[derive(Default)]
pub(super) struct Answer {
    pub(super) text: String,
    pub(super) tool_calls: Vec<ToolCall>,
    pub(super) finish: Option<FinishReason>,
    /// Set when Punie stopped the answer because it repeated itself: what the model is told in
    /// the last result of the calls that run (an answer without calls carries it in its text).
    pub(super) loop_note: Option<String>,
    /// The server's token counts, when it sent them.
    pub(super) usage: Option<Usage>,
}

impl Answer {
    /// True once anything of the answer reached the person.
    pub(super) fn streamed(&self) -> bool {
        !self.text.is_empty() || !self.tool_calls.is_empty()
    }
}

/// Why waiting for a model answer failed.
pub(super) enum ModelWait {
    /// The model failed.
    Failed(LlmError),
    /// The turn ran out of time ([`AgentConfig::turn_timeout`]).
    PastDeadline,
}

impl Turn<'_> {
    /// Streams one model answer into `answer`, relaying text and thoughts. Returns false when the
    /// turn was cancelled.
    pub(super) async fn stream_answer(
        &self,
        request: ChatRequest,
        answer: &mut Answer,
        deadline: tokio::time::Instant,
    ) -> Result<bool, ModelWait> {
        let started = Instant::now();
        let mut stats = ModelRequestStats {
            model: self.model().describe(),
            time_to_first_token: None,
            total: Duration::ZERO,
            usage: None,
            chunks: 0,
            recovered_calls: Vec::new(),
            completed: false,
        };
        let result =
            tokio::time::timeout_at(deadline, self.relay(request, answer, started, &mut stats))
                .await
                .unwrap_or(Err(ModelWait::PastDeadline));
        stats.total = started.elapsed();
        stats.completed = matches!(result, Ok(true));
        tracing::info!(
            session = %self.session.id,
            model = %stats.model,
            first_token_ms = stats.time_to_first_token.map(|d| d.as_millis() as u64),
            total_ms = stats.total.as_millis() as u64,
            prompt_tokens = stats.usage.map(|u| u.prompt_tokens),
            cached_tokens = stats.usage.and_then(|u| u.cached_tokens),
            prompt_per_second = stats.usage.and_then(|u| u.timings?.prompt_per_second()).map(|r| r.round() as u64),
            completion_tokens = stats.usage.map(|u| u.completion_tokens),
            generation_per_second = stats.usage.and_then(|u| u.timings?.generation_per_second()).map(|r| (r * 10.0).round() / 10.0),
            recovered_calls = ?stats.recovered_calls,
            tool_calls = answer.tool_calls.len(),
            finish = ?answer.finish,
            completed = stats.completed,
            "model request"
        );
        if let Some(observer) = self.observer {
            observer.model_request(&self.session.id, &stats);
        }
        result
    }

    /// Tells the person, as a notice, that the request waits for a model server that is not
    /// answering yet (and when it answers).
    fn server_wait_notices(&self) -> crate::llm::ServerWaitSink {
        let (events, session) = (self.events.clone(), self.session.id.clone());
        std::sync::Arc::new(move |wait: crate::llm::ServerWait| {
            let title = match wait {
                crate::llm::ServerWait::Answered { .. } => "Model server answering",
                _ => "Waiting for the model server",
            };
            let description = wait.to_string();
            events.emit(
                &session,
                TurnEvent::Notice {
                    title: title.to_owned(),
                    description,
                },
            );
        })
    }

    pub(super) async fn relay(
        &self,
        request: ChatRequest,
        answer: &mut Answer,
        started: Instant,
        stats: &mut ModelRequestStats,
    ) -> Result<bool, ModelWait> {
        let model = self.model();
        let waits = self.server_wait_notices();
        let opened = model.stream_with_waits(request, waits);
        let Some(stream) = unless_cancelled(&self.cancel, opened).await else {
            return Ok(false);
        };
        let mut stream = stream.map_err(ModelWait::Failed)?;
        let mut text_loops = TextRepetition::default();
        let mut thought_loops = TextRepetition::default();
        let mut calls = AnswerCalls::default();
        let repeated = loop {
            let Some(next) = unless_cancelled(&self.cancel, stream.next()).await else {
                return Ok(false);
            };
            let Some(event) = next else { break None };
            if let Ok(ModelEvent::PromptProgress(read)) = &event {
                // The server is still reading the prompt: no token yet.
                self.emit(TurnEvent::PromptProgress {
                    total: read.total,
                    cached: read.cached,
                    processed: read.processed,
                });
                continue;
            }
            stats
                .time_to_first_token
                .get_or_insert_with(|| started.elapsed());
            match event.map_err(ModelWait::Failed)? {
                ModelEvent::Text(text) => {
                    stats.chunks += 1;
                    answer.text.push_str(&text);
                    for piece in pieces(&text, MAX_CHUNK_BYTES) {
                        self.emit(TurnEvent::MessageChunk(piece.to_owned()));
                    }
                    if let Some(found) = text_loops.push(&text) {
                        answer.text.truncate(found.keep);
                        break Some(Repeated::Text(found));
                    }
                }
                ModelEvent::Thought(text) => {
                    stats.chunks += 1;
                    for piece in pieces(&text, MAX_CHUNK_BYTES) {
                        self.emit(TurnEvent::ThoughtChunk(piece.to_owned()));
                    }
                    if let Some(found) = thought_loops.push(&text) {
                        break Some(Repeated::Thought(found));
                    }
                }
                ModelEvent::ToolCall(call) => {
                    if calls.is_repeat(&call.name, &call.arguments) {
                        break Some(Repeated::Call(call));
                    }
                    answer.tool_calls.push(call);
                }
                ModelEvent::Usage(usage) => {
                    stats.usage = Some(usage);
                    answer.usage = Some(usage);
                }
                ModelEvent::RecoveredCall(shape) => stats.recovered_calls.push(shape),
                ModelEvent::PromptProgress(_) => {}
                ModelEvent::Finished(reason) => answer.finish = Some(reason),
            }
        };
        // Dropping the stream aborts the request: the server stops generating.
        drop(stream);
        if let Some(repeated) = repeated {
            self.stopped_looping(&repeated, answer);
        }
        Ok(true)
    }

    /// Tells the person and the log that the answer was stopped, and leaves the note for the
    /// model in `answer`.
    fn stopped_looping(&self, repeated: &Repeated, answer: &mut Answer) {
        let what = repeated.describe();
        tracing::warn!(session = %self.session.id, repeated = %what, kept_bytes = answer.text.len(), kept_calls = answer.tool_calls.len(), "the model repeated itself; its answer was stopped");
        let kept = if answer.tool_calls.is_empty() {
            "The answer up to the first repeat is kept."
        } else {
            "The tool calls it made are run once each."
        };
        self.emit(TurnEvent::Notice {
            title: "The model repeated itself".to_owned(),
            description: format!("Punie stopped the model: {what}. {kept}"),
        });
        let note = format!(
            "[Note from Punie: your answer {what}, so Punie stopped it there. Do not repeat \
             yourself: use what you have, then answer or do something different.]"
        );
        if answer.tool_calls.is_empty() {
            if !answer.text.is_empty() {
                answer.text.push_str("\n\n");
            }
            answer.text.push_str(&note);
        } else {
            answer.loop_note = Some(format!("\n\n{note}"));
        }
    }
}

/// What an answer repeated.
enum Repeated {
    Text(TextLoop),
    Thought(TextLoop),
    Call(ToolCall),
}

impl Repeated {
    /// "repeated …": what the person and the model are told.
    fn describe(&self) -> String {
        match self {
            Repeated::Text(found) => format!(
                "repeated \"{}\" {} times in a row",
                found.quote, found.copies
            ),
            Repeated::Thought(found) => format!(
                "repeated \"{}\" {} times in a row in its reasoning",
                found.quote, found.copies
            ),
            Repeated::Call(call) => format!(
                "asked for the same tool call twice ({} {})",
                call.name,
                quote(&call.arguments)
            ),
        }
    }
}
