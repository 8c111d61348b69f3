//! The turn loop: ask the model, relay what it streams, run the tools it calls, feed the results
//! back, and repeat until it answers, hits a limit, or the turn is cancelled.

mod answer;
mod budget;
mod call;
mod prompt;
mod recall;
mod repetition;
mod unknown_tool;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio_util::sync::CancellationToken;

use super::config::AgentConfig;
use super::context;
use super::error::AgentError;
use super::events::{EventSink, StopReason, TurnEvent};
use super::observe::TurnObserver;
use super::session::Session;
use crate::llm::{ChatModel, ChatRequest, FinishReason, Message};
use answer::{Answer, ModelWait};
pub(crate) use budget::{CompactOutcome, ContextUse};
use call::CallOutcome;
use repetition::{MAX_REPEATED_CALLS, TurnCalls};

/// Awaits `future` unless the turn is cancelled first.
async fn unless_cancelled<F: Future>(cancel: &CancellationToken, future: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => None,
        output = future => Some(output),
    }
}

/// The most characters of one tool result that enter the history: about a quarter of the
/// window (at 3 bytes per token), and never less than 1000.
fn tool_result_limit(window: u32) -> usize {
    (window as usize / 4 * 3).max(1000)
}

/// Tool calls run from one answer. A looping model can emit thousands (5,000 were seen): the
/// first ones run, the rest are dropped, and the model is told so in the last result.
pub(crate) const MAX_TOOL_CALLS_PER_ANSWER: usize = 32;

/// What the model reads after an empty answer, before it answers again. Qwen2.5-Coder 1.5B,
/// having read the file a question named, answered nothing twice over (real-task benchmark);
/// with this note it answered from the file.
const EMPTY_ANSWER_NOTE: &str = "[Note from Punie: your last answer was empty. Answer the \
     user's request from the tool results above, or call a tool if you need more.]";

/// What the model reads after the last call that ran, when `dropped` calls of `asked` were not.
fn dropped_calls_note(asked: usize, dropped: usize) -> String {
    format!(
        "\n\n[Note from Punie: your answer made {asked} tool calls; at most \
         {MAX_TOOL_CALLS_PER_ANSWER} run per answer, so only the first {MAX_TOOL_CALLS_PER_ANSWER} \
         ran and the other {dropped} were NOT run. Look at these results first, then call again \
         only what you still need.]"
    )
}

pub(crate) struct Turn<'a> {
    pub(crate) session: &'a Session,
    /// The agent's model; a session may have switched to another.
    pub(crate) model: &'a Arc<dyn ChatModel>,
    pub(crate) config: &'a AgentConfig,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) cancel: CancellationToken,
    pub(crate) call_counter: &'a AtomicU64,
    /// The session's tools as they were when the turn started, those its mode offers.
    pub(crate) toolset: crate::tools::Toolset,
    /// The session's other tools, which its mode did not offer: a call to one is refused
    /// with a reason unless the mode has changed since.
    pub(crate) withheld: crate::tools::Toolset,
    /// The session's mode when the turn started (what the system prompt says).
    pub(crate) mode: super::mode::Mode,
    /// Receives timings, if anyone listens.
    pub(crate) observer: Option<&'a dyn TurnObserver>,
}

impl Turn<'_> {
    /// The model for the next request: the session's choice, else the agent's. Read anew for
    /// every request, so a switch takes effect between requests, never during one.
    fn model(&self) -> Arc<dyn ChatModel> {
        self.session
            .model_override()
            .unwrap_or_else(|| self.model.clone())
    }

    fn emit(&self, event: TurnEvent) {
        self.events.emit(&self.session.id, event);
    }

    /// Runs the turn on `history` (which already ends with the user's message). On success or
    /// cancellation `history` holds the complete, well-formed conversation; on error the caller
    /// discards it.
    pub(crate) async fn run(&self, history: &mut Vec<Message>) -> Result<StopReason, AgentError> {
        for (title, description) in self.session.take_notices() {
            self.emit(TurnEvent::Notice { title, description });
        }
        let deadline = tokio::time::Instant::now() + self.config.turn_timeout;
        let window = self.context_window().await;
        // After the window: the project instructions may take a share of it.
        let system = Message::System {
            content: self.system_prompt(window),
        };
        // The model knows a tool by its name, description and schema only, in as much detail
        // as the window affords.
        let Some((tools, mut budget)) = self.fit_tools(&system, window, history).await else {
            return Ok(StopReason::Cancelled);
        };
        let mut overflow_retried = false;
        let mut requests = 0;
        let mut empty_answers = 0;
        // Set when the last answer was empty: asked again as it was, a model at temperature 0
        // answers the same nothing, so the next request ends with a note saying so.
        let mut after_empty = false;
        let mut bad_calls = 0;
        let mut made_calls = TurnCalls::default();
        // A command the person's request names, for the advice to an invented tool's call.
        let named_command = history
            .iter()
            .rev()
            .find_map(|m| match m {
                Message::User { content } => Some(content.as_str()),
                _ => None,
            })
            .and_then(unknown_tool::command_named)
            .map(str::to_owned);
        loop {
            if requests >= self.config.max_turn_requests {
                tracing::info!(session = %self.session.id, requests, "turn stopped: max_turn_requests");
                return Ok(StopReason::MaxTurnRequests);
            }
            requests += 1;
            self.session.journal_progress(history);
            let Some(max_tokens) = self.fit(&mut budget, history).await? else {
                return Ok(StopReason::Cancelled);
            };
            let mut messages = Vec::with_capacity(history.len() + 1);
            messages.push(system.clone());
            // Images reach only a model that sees (the session may have switched models since
            // they were shown); for another, a text note stands for them.
            // Asked only when there are images: the answer may wait for a server that is down.
            let sees = !history.iter().any(|m| matches!(m, Message::Images { .. }))
                || self.model().sees().await == Some(true);
            for message in history.iter() {
                match (message, messages.last_mut()) {
                    (Message::Images { images }, Some(Message::User { content })) if !sees => {
                        content.push('\n');
                        content.push_str(&context::images_note(images));
                    }
                    (Message::Images { images }, _) if !sees => messages.push(Message::User {
                        content: context::images_note(images),
                    }),
                    _ => messages.push(message.clone()),
                }
            }
            if std::mem::take(&mut after_empty) {
                // Only in this request: the history (and the journal) keep the conversation.
                messages.push(Message::User {
                    content: EMPTY_ANSWER_NOTE.to_owned(),
                });
            }
            let request = ChatRequest {
                messages,
                tools: tools.clone(),
                temperature: Some(self.config.temperature),
                max_tokens: Some(max_tokens),
            };

            let mut answer = Answer::default();
            let completed = match self.stream_answer(request, &mut answer, deadline).await {
                Err(ModelWait::Failed(error))
                    if error.is_context_overflow() && !overflow_retried && !answer.streamed() =>
                {
                    // Our estimate was too optimistic for this server: assume a smaller window,
                    // compact, and try once more.
                    overflow_retried = true;
                    budget.window = budget.window * 3 / 4;
                    budget.distrust();
                    tracing::warn!(session = %self.session.id, window = budget.window, %error, "the server says the context overflowed; compacting and retrying");
                    requests -= 1;
                    continue;
                }
                Err(ModelWait::Failed(error)) => return Err(error.into()),
                Err(ModelWait::PastDeadline) => {
                    tracing::warn!(session = %self.session.id, "turn stopped: turn_timeout");
                    return Err(AgentError::TurnTimeout {
                        seconds: self.config.turn_timeout.as_secs(),
                    });
                }
                Ok(completed) => completed,
            };
            budget.observe(answer.usage);
            if !completed {
                if !answer.text.is_empty() {
                    // Kept (the model should know what it had said), but shortened and marked,
                    // so a cancelled ramble neither fills the window nor reads as finished.
                    history.push(Message::Assistant {
                        content: Some(context::interrupted_answer(
                            &answer.text,
                            context::long_answer_limit(budget.window),
                        )),
                        tool_calls: Vec::new(),
                    });
                }
                return Ok(StopReason::Cancelled);
            }

            if answer.tool_calls.is_empty() {
                let finish = answer.finish.clone();
                if finish == Some(FinishReason::Length) {
                    history.push(Message::Assistant {
                        content: Some(answer.text),
                        tool_calls: Vec::new(),
                    });
                    return Ok(StopReason::MaxTokens);
                }
                if answer.text.trim().is_empty() && empty_answers < self.config.empty_answer_retries
                {
                    empty_answers += 1;
                    after_empty = true;
                    tracing::info!(session = %self.session.id, attempt = empty_answers, "empty answer from the model; asking again");
                    continue;
                }
                history.push(Message::Assistant {
                    content: Some(answer.text),
                    tool_calls: Vec::new(),
                });
                return Ok(StopReason::EndTurn);
            }

            let mut calls = answer.tool_calls;
            let asked = calls.len();
            let dropped = asked.saturating_sub(MAX_TOOL_CALLS_PER_ANSWER);
            // Dropped from the history too: every call there needs a result, and results that
            // only say "not run" would fill a small window.
            calls.truncate(MAX_TOOL_CALLS_PER_ANSWER);
            if dropped > 0 {
                tracing::warn!(session = %self.session.id, asked, dropped, "too many tool calls in one answer; the rest are not run");
                self.emit(TurnEvent::Notice {
                    title: "Too many tool calls".to_owned(),
                    description: format!(
                        "The model asked for {asked} tool calls in one answer; Punie ran the first \
                         {MAX_TOOL_CALLS_PER_ANSWER} and skipped the other {dropped}."
                    ),
                });
            }
            history.push(Message::Assistant {
                content: (!answer.text.is_empty()).then_some(answer.text),
                tool_calls: calls.clone(),
            });
            let mut cancelled = false;
            let mut shown_images = Vec::new();
            for (index, call) in calls.iter().enumerate() {
                self.session.journal_progress(history);
                let text = if cancelled {
                    "Not run: the user cancelled the turn.".to_owned()
                } else {
                    match self
                        .run_or_recall(call, &mut made_calls, named_command.as_deref())
                        .await
                    {
                        CallOutcome::Answered {
                            text,
                            usable,
                            images,
                        } => {
                            if !usable {
                                bad_calls += 1;
                            }
                            shown_images.extend(images);
                            text
                        }
                        CallOutcome::Cancelled => {
                            cancelled = true;
                            "Cancelled by the user.".to_owned()
                        }
                    }
                };
                let mut content = context::head_and_tail(
                    &text,
                    tool_result_limit(budget.window),
                    "; ask for a smaller part, e.g. read_file with line and limit",
                );
                if dropped > 0 && index + 1 == calls.len() {
                    content.push_str(&dropped_calls_note(asked, dropped));
                }
                if let Some(note) = answer
                    .loop_note
                    .as_ref()
                    .filter(|_| index + 1 == calls.len())
                {
                    content.push_str(note);
                }
                history.push(Message::Tool {
                    tool_call_id: call.id.clone(),
                    content,
                });
            }
            // After every result of the answer, so no message comes between a call and its
            // result; a model that cannot see reads the results' text placeholders instead.
            if !shown_images.is_empty() {
                shown_images.truncate(crate::image::MAX_PROMPT_IMAGES);
                history.push(Message::Images {
                    images: shown_images,
                });
            }
            if cancelled {
                self.session
                    .terminals
                    .release_all(self.session.workspace.terminals.as_ref())
                    .await;
                return Ok(StopReason::Cancelled);
            }
            if bad_calls > self.config.bad_tool_call_retries {
                self.emit(TurnEvent::MessageChunk(
                    "The model kept making tool calls Punie could not run (unknown tools, unusable \
                     arguments or tools this mode does not allow), so Punie stopped this turn. Try \
                     rephrasing, or a model with better tool-calling support."
                        .to_owned(),
                ));
                return Ok(StopReason::EndTurn);
            }
            if made_calls.exhausted() {
                tracing::warn!(session = %self.session.id, repeats = made_calls.repeats(), "turn stopped: the model kept repeating its tool calls");
                self.emit(TurnEvent::MessageChunk(format!(
                    "The model kept repeating tool calls it had already made ({MAX_REPEATED_CALLS} \
                     repeats in this turn), so Punie stopped this turn. Try rephrasing the request, \
                     or a larger model."
                )));
                return Ok(StopReason::EndTurn);
            }
            if answer.finish == Some(FinishReason::Length) {
                tracing::info!(session = %self.session.id, "tool call cut by max_tokens; the model is told and asked again");
            }
        }
    }
}
