//! The turn loop: ask the model, relay what it streams, run the tools it calls, feed the results
//! back, and repeat until it answers, hits a limit, or the turn is cancelled.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::config::AgentConfig;
use super::context::{self, DEFAULT_CONTEXT_TOKENS, KEPT_TURNS, MIN_ANSWER_TOKENS};
use super::error::AgentError;
use super::events::{
    EventSink, StopReason, ToolCallChange, ToolCallStart, ToolCallStatus, TurnEvent,
};
use super::observe::{ModelRequestStats, ToolCallStats, TurnObserver};
use super::session::Session;
use crate::llm::{ChatModel, ChatRequest, FinishReason, LlmError, Message, ModelEvent, ToolCall};
use crate::tools::{ToolContext, ToolError};
use crate::workspace::{PermissionOutcome, PermissionRequest, ToolContent, WorkspaceError};

/// Awaits `future` unless the turn is cancelled first.
async fn unless_cancelled<F: Future>(cancel: &CancellationToken, future: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => None,
        output = future => Some(output),
    }
}

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
struct Answer {
    text: String,
    tool_calls: Vec<ToolCall>,
    finish: Option<FinishReason>,
}

impl Answer {
    /// True once anything of the answer reached the person.
    fn streamed(&self) -> bool {
        !self.text.is_empty() || !self.tool_calls.is_empty()
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

/// What the model reads after the last call that ran, when `dropped` calls of `asked` were not.
fn dropped_calls_note(asked: usize, dropped: usize) -> String {
    format!(
        "\n\n[Note from Punie: your answer made {asked} tool calls; at most \
         {MAX_TOOL_CALLS_PER_ANSWER} run per answer, so only the first {MAX_TOOL_CALLS_PER_ANSWER} \
         ran and the other {dropped} were NOT run. Look at these results first, then call again \
         only what you still need.]"
    )
}

/// Why waiting for a model answer failed.
enum ModelWait {
    /// The model failed.
    Failed(LlmError),
    /// The turn ran out of time ([`AgentConfig::turn_timeout`]).
    PastDeadline,
}

/// How a tool call ended, for the loop.
enum CallOutcome {
    /// The text to answer the model with; `usable` is false when the call itself was malformed.
    Answered { text: String, usable: bool },
    /// The turn was cancelled during the call.
    Cancelled,
}

pub(crate) struct Turn<'a> {
    pub(crate) session: &'a Session,
    /// The agent's model; a session may have switched to another.
    pub(crate) model: &'a Arc<dyn ChatModel>,
    pub(crate) config: &'a AgentConfig,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) cancel: CancellationToken,
    pub(crate) call_counter: &'a AtomicU64,
    /// The session's tools as they were when the turn started.
    pub(crate) toolset: crate::tools::Toolset,
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

    fn system_prompt(&self) -> String {
        let root = self.session.workspace.root().display();
        // Tool descriptions travel with the tool schemas; naming the tools is enough here, and
        // small context windows cannot afford saying everything twice.
        let tools: Vec<&str> = self.toolset.iter().map(|t| t.name()).collect();
        let mut prompt = format!(
            "You are Punie, a coding agent working in the project at {root}.\n\
             You help the user by reading, editing and running code in this project with your tools ({}).\n\
             Guidelines:\n\
             - Use paths relative to the project root. You cannot access files outside it.\n\
             - Read a file before changing it (large files come back in pages). Change files with small exact edits (edit_file); write whole files only to create them.\n\
             - Search with grep, glob and list_dir instead of reading whole trees.\n\
             - The user approves every change and command; if they refuse, do not insist — ask what they want instead.\n\
             - Call tools with valid JSON arguments. When you are done, answer the user concisely.",
            tools.join(", ")
        );
        if let Some(extra) = &self.config.instructions {
            prompt.push_str("\n\n");
            prompt.push_str(extra);
        }
        prompt
    }

    /// Runs the turn on `history` (which already ends with the user's message). On success or
    /// cancellation `history` holds the complete, well-formed conversation; on error the caller
    /// discards it.
    pub(crate) async fn run(&self, history: &mut Vec<Message>) -> Result<StopReason, AgentError> {
        let system = Message::System {
            content: self.system_prompt(),
        };
        // The model knows a tool by its name, description and schema only.
        let tools: Vec<crate::llm::ToolSpec> = self
            .toolset
            .iter()
            .map(|tool| crate::llm::ToolSpec {
                name: tool.name().to_owned(),
                description: tool.description().to_owned(),
                parameters: tool.parameters(),
            })
            .collect();
        let tool_tokens = context::tool_tokens(&tools);
        for (title, description) in self.session.take_notices() {
            self.emit(TurnEvent::Notice { title, description });
        }
        let deadline = tokio::time::Instant::now() + self.config.turn_timeout;
        let mut window = self.context_window().await;
        let mut overflow_retried = false;
        let mut requests = 0;
        let mut empty_answers = 0;
        let mut bad_calls = 0;
        loop {
            if requests >= self.config.max_turn_requests {
                tracing::info!(session = %self.session.id, requests, "turn stopped: max_turn_requests");
                return Ok(StopReason::MaxTurnRequests);
            }
            requests += 1;
            let Some(max_tokens) = self.fit(&system, tool_tokens, history, window).await? else {
                return Ok(StopReason::Cancelled);
            };
            let mut messages = Vec::with_capacity(history.len() + 1);
            messages.push(system.clone());
            messages.extend(history.iter().cloned());
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
                    window = window * 3 / 4;
                    tracing::warn!(session = %self.session.id, window, %error, "the server says the context overflowed; compacting and retrying");
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
            if !completed {
                if !answer.text.is_empty() {
                    // Kept (the model should know what it had said), but shortened and marked,
                    // so a cancelled ramble neither fills the window nor reads as finished.
                    history.push(Message::Assistant {
                        content: Some(context::interrupted_answer(
                            &answer.text,
                            context::long_answer_limit(window),
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
            for (index, call) in calls.iter().enumerate() {
                let text = if cancelled {
                    "Not run: the user cancelled the turn.".to_owned()
                } else {
                    match self.run_tool_call(call).await {
                        CallOutcome::Answered { text, usable } => {
                            if !usable {
                                bad_calls += 1;
                            }
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
                    tool_result_limit(window),
                    "; ask for a smaller part, e.g. read_file with line and limit",
                );
                if dropped > 0 && index + 1 == calls.len() {
                    content.push_str(&dropped_calls_note(asked, dropped));
                }
                history.push(Message::Tool {
                    tool_call_id: call.id.clone(),
                    content,
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
                    "The model kept calling tools with unusable arguments, so Punie stopped this turn. \
                     Try rephrasing, or a model with better tool-calling support."
                        .to_owned(),
                ));
                return Ok(StopReason::EndTurn);
            }
            if answer.finish == Some(FinishReason::Length) {
                tracing::info!(session = %self.session.id, "tool call cut by max_tokens; the model is told and asked again");
            }
        }
    }

    /// The model's context window: from the server where it says so, else the configured size,
    /// else a conservative default.
    async fn context_window(&self) -> u32 {
        let from_server = unless_cancelled(&self.cancel, self.model().context_size())
            .await
            .flatten();
        let (window, source) = match (from_server, self.config.context_size) {
            (Some(size), _) => (size, "the model server"),
            (None, Some(size)) => (size, "--context-size"),
            (None, None) => (
                DEFAULT_CONTEXT_TOKENS,
                "the default (the server did not say; pass --context-size)",
            ),
        };
        tracing::debug!(session = %self.session.id, window, source, "context window");
        window
    }

    /// Makes the request fit the window: shortens old tool outputs, then summarises older turns.
    /// Returns the `max_tokens` to ask for, or `None` if the turn was cancelled meanwhile.
    async fn fit(
        &self,
        system: &Message,
        tools: u32,
        history: &mut Vec<Message>,
        window: u32,
    ) -> Result<Option<u32>, AgentError> {
        let fits = |history: &[Message]| {
            context::prompt_tokens(system, tools, history) + self.config.max_tokens.min(window / 2)
                <= window
        };
        let before = context::prompt_tokens(system, tools, history);
        let mut done = Vec::new();
        if !fits(history) {
            let keep_from = context::recent_turns_start(history, KEPT_TURNS);
            if context::shorten_old_tool_outputs(history, keep_from) {
                done.push("shortened old tool outputs");
            }
            // An answer over a quarter of the window is most likely a loop; cutting it is
            // cheaper than a summary, and a summary could not remove it from the kept turns.
            if !fits(history)
                && context::shorten_long_answers(history, context::long_answer_limit(window))
            {
                done.push("shortened long answers");
            }
            if !fits(history) && keep_from > 0 {
                let Some(summary) = self.summarise(&history[..keep_from], window).await else {
                    return Ok(None);
                };
                context::replace_with_summary(history, keep_from, &summary);
                done.push("summarised older turns");
            }
            let all = history.len();
            if !fits(history) && context::shorten_old_tool_outputs(history, all) {
                done.push("shortened this turn's tool outputs");
            }
            if context::shorten_answers_until(history, window, fits) {
                done.push("cut long answers further");
            }
        }
        let used = context::prompt_tokens(system, tools, history);
        if !done.is_empty() {
            let description = format!(
                "Punie {} to fit the model's {window}-token context window (about {before} → {used} tokens).",
                done.join(" and ")
            );
            tracing::info!(session = %self.session.id, before, used, window, "history compacted");
            self.emit(TurnEvent::Notice {
                title: "History compacted".to_owned(),
                description,
            });
        }
        self.emit(TurnEvent::Usage {
            used: used.into(),
            size: window.into(),
        });
        let room = window.saturating_sub(used);
        if room < MIN_ANSWER_TOKENS {
            return Err(AgentError::ContextTooSmall {
                needed: used + MIN_ANSWER_TOKENS,
                window,
            });
        }
        Ok(Some(self.config.max_tokens.min(room)))
    }

    /// Asks the model to summarise `older` messages. On failure the older turns are replaced by
    /// a note instead, so the conversation still fits. `None` if the turn was cancelled.
    async fn summarise(&self, older: &[Message], window: u32) -> Option<String> {
        let room = (window as usize).saturating_sub(1024) * 3;
        let transcript = context::head_and_tail(&context::transcript(older), room.max(2000), "");
        let request = ChatRequest {
            messages: vec![
                Message::System {
                    content: "Summarise this conversation between a user and a coding agent for the agent's own later use: \
                              what the user wants, files read or changed, commands run and their outcome, decisions, \
                              and what is still to do. Be concise and factual."
                        .to_owned(),
                },
                Message::User { content: transcript },
            ],
            tools: Vec::new(),
            temperature: Some(0.0),
            max_tokens: Some(512.min(window / 4)),
        };
        let summary = async {
            let mut stream = self.model().stream(request).await?;
            let mut text = String::new();
            while let Some(event) = stream.next().await {
                if let ModelEvent::Text(piece) = event? {
                    text.push_str(&piece);
                }
            }
            Ok::<_, LlmError>(text)
        };
        match unless_cancelled(&self.cancel, summary).await? {
            Ok(text) if !text.trim().is_empty() => Some(text),
            Ok(_) | Err(_) => {
                tracing::warn!(session = %self.session.id, "could not summarise the older turns; they are dropped");
                Some(
                    "(The earlier part of the conversation was dropped to fit the context window.)"
                        .to_owned(),
                )
            }
        }
    }

    /// Streams one model answer into `answer`, relaying text and thoughts. Returns false when the
    /// turn was cancelled.
    async fn stream_answer(
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
            completion_tokens = stats.usage.map(|u| u.completion_tokens),
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

    async fn relay(
        &self,
        request: ChatRequest,
        answer: &mut Answer,
        started: Instant,
        stats: &mut ModelRequestStats,
    ) -> Result<bool, ModelWait> {
        let model = self.model();
        let Some(stream) = unless_cancelled(&self.cancel, model.stream(request)).await else {
            return Ok(false);
        };
        let mut stream = stream.map_err(ModelWait::Failed)?;
        loop {
            let Some(next) = unless_cancelled(&self.cancel, stream.next()).await else {
                return Ok(false);
            };
            let Some(event) = next else { break };
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
                }
                ModelEvent::Thought(text) => {
                    stats.chunks += 1;
                    for piece in pieces(&text, MAX_CHUNK_BYTES) {
                        self.emit(TurnEvent::ThoughtChunk(piece.to_owned()));
                    }
                }
                ModelEvent::ToolCall(call) => answer.tool_calls.push(call),
                ModelEvent::Usage(usage) => stats.usage = Some(usage),
                ModelEvent::Finished(reason) => answer.finish = Some(reason),
            }
        }
        Ok(true)
    }

    fn update(
        &self,
        id: &str,
        status: ToolCallStatus,
        content: Option<Vec<ToolContent>>,
        raw_output: Option<Value>,
    ) {
        self.emit(TurnEvent::ToolCallUpdate(ToolCallChange {
            id: id.to_owned(),
            status: Some(status),
            content,
            raw_output,
        }));
    }

    /// Fails a tool call visibly and tells the model why.
    fn fail(&self, id: &str, message: String, usable: bool) -> CallOutcome {
        self.update(
            id,
            ToolCallStatus::Failed,
            Some(vec![ToolContent::Text(message.clone())]),
            Some(json!({"error": message})),
        );
        CallOutcome::Answered {
            text: format!("Error: {message}"),
            usable,
        }
    }

    async fn run_tool_call(&self, call: &ToolCall) -> CallOutcome {
        let id = format!(
            "call-{}",
            self.call_counter.fetch_add(1, Ordering::Relaxed) + 1
        );
        let parsed: Result<Value, String> = if call.arguments.trim().is_empty() {
            Ok(json!({}))
        } else {
            match serde_json::from_str::<Value>(&call.arguments) {
                Ok(value @ Value::Object(_)) => Ok(value),
                Ok(other) => Err(format!("arguments must be a JSON object, got {other}")),
                Err(e) => Err(format!("arguments are not valid JSON ({e})")),
            }
        };
        let tool = self.toolset.get(&call.name);
        let raw_input = parsed
            .clone()
            .unwrap_or_else(|_| Value::String(call.arguments.clone()));
        let announce = |content: Vec<ToolContent>| {
            self.emit(TurnEvent::ToolCall(ToolCallStart {
                id: id.clone(),
                name: call.name.clone(),
                title: tool.map_or_else(|| call.name.clone(), |t| t.title(&raw_input)),
                kind: tool.map_or(crate::workspace::ToolKind::Other, |t| t.kind()),
                locations: tool
                    .map(|t| t.locations(&raw_input, &self.session.workspace))
                    .unwrap_or_default(),
                raw_input: raw_input.clone(),
                status: ToolCallStatus::Pending,
                content,
            }))
        };
        let Some(tool) = tool else {
            announce(Vec::new());
            let names: Vec<&str> = self.toolset.iter().map(|t| t.name()).collect();
            return self.fail(
                &id,
                format!(
                    "there is no tool named `{}`; the tools are: {}",
                    call.name,
                    names.join(", ")
                ),
                false,
            );
        };
        let args = match parsed {
            Ok(args) => args,
            Err(reason) => {
                announce(Vec::new());
                return self.fail(
                    &id,
                    format!(
                        "{reason}. Call {} again with a valid JSON object matching its schema.",
                        call.name
                    ),
                    false,
                );
            }
        };

        let events = self.events.clone();
        let session_id = self.session.id.clone();
        let progress_id = id.clone();
        let ctx = ToolContext::new(
            self.session.workspace.clone(),
            id.clone(),
            self.cancel.clone(),
            self.session.terminals.clone(),
            self.config.command_timeout,
            Arc::new(move |content| {
                events.emit(
                    &session_id,
                    TurnEvent::ToolCallUpdate(ToolCallChange {
                        id: progress_id.clone(),
                        content: Some(content),
                        ..Default::default()
                    }),
                );
            }),
        );

        // The preview (a diff, a command line) is shown with the call from the start.
        let Some(preview) = unless_cancelled(&self.cancel, tool.preview(&args, &ctx)).await else {
            announce(Vec::new());
            return self.cancelled(&id);
        };
        let preview = match preview {
            Ok(preview) => preview,
            Err(error) => {
                announce(Vec::new());
                return self.fail(
                    &id,
                    error.to_string(),
                    matches!(error, ToolError::Workspace(_)),
                );
            }
        };
        announce(preview.clone());

        if tool.needs_permission() {
            let allowed = match self.session.remembered_permission(tool.name()) {
                Some(allowed) => allowed,
                None => {
                    let request = PermissionRequest {
                        tool_call_id: id.clone(),
                        title: tool.title(&args),
                        kind: tool.kind(),
                        content: preview.clone(),
                        raw_input: args.clone(),
                    };
                    let waited = Instant::now();
                    let asked = self.session.workspace.permissions.request(request);
                    let Some(outcome) = unless_cancelled(&self.cancel, asked).await else {
                        return self.cancelled(&id);
                    };
                    let waited = waited.elapsed();
                    tracing::info!(session = %self.session.id, tool = tool.name(), ?outcome, wait_ms = waited.as_millis() as u64, "permission");
                    if let Some(observer) = self.observer {
                        observer.permission_wait(&self.session.id, tool.name(), waited);
                    }
                    match outcome {
                        Ok(PermissionOutcome::AllowOnce) => true,
                        Ok(PermissionOutcome::AllowAlways) => {
                            self.session.remember_permission(tool.name(), true);
                            true
                        }
                        Ok(PermissionOutcome::RejectOnce) => false,
                        Ok(PermissionOutcome::RejectAlways) => {
                            self.session.remember_permission(tool.name(), false);
                            false
                        }
                        Ok(PermissionOutcome::Cancelled) | Err(WorkspaceError::Cancelled) => {
                            self.cancel.cancel();
                            return self.cancelled(&id);
                        }
                        Err(WorkspaceError::PermissionRefused { reason }) => {
                            return self.fail(
                                &id,
                                format!("permission refused: {reason}; nothing was changed or run"),
                                true,
                            );
                        }
                        Err(error) => {
                            return self.fail(
                                &id,
                                format!("could not ask for permission: {error}"),
                                true,
                            );
                        }
                    }
                }
            };
            if !allowed {
                return self.fail(
                    &id,
                    format!(
                        "the user refused to allow {}; nothing was changed or run",
                        tool.title(&args)
                    ),
                    true,
                );
            }
        }

        let started = Instant::now();
        self.update(&id, ToolCallStatus::InProgress, None, None);
        let Some(result) = unless_cancelled(&self.cancel, tool.call(args, &ctx)).await else {
            return self.cancelled(&id);
        };
        let elapsed = started.elapsed();
        let elapsed_ms = elapsed.as_millis() as u64;
        let provider = tool.provider(&self.session.workspace);
        if let Some(observer) = self.observer {
            let stats = ToolCallStats {
                name: tool.name().to_owned(),
                provider,
                elapsed,
                ok: result.is_ok(),
            };
            observer.tool_call(&self.session.id, &stats);
        }
        match result {
            Ok(output) => {
                tracing::info!(session = %self.session.id, tool = tool.name(), elapsed_ms, provider, "tool call completed");
                self.update(
                    &id,
                    ToolCallStatus::Completed,
                    (!output.content.is_empty()).then_some(output.content),
                    Some(output.raw_output),
                );
                CallOutcome::Answered {
                    text: output.text,
                    usable: true,
                }
            }
            Err(error) => {
                tracing::info!(session = %self.session.id, tool = tool.name(), elapsed_ms, %error, "tool call failed");
                let usable = !matches!(error, ToolError::InvalidArguments { .. });
                self.fail(&id, error.to_string(), usable)
            }
        }
    }

    fn cancelled(&self, id: &str) -> CallOutcome {
        self.update(
            id,
            ToolCallStatus::Failed,
            Some(vec![ToolContent::Text("Cancelled.".to_owned())]),
            None,
        );
        CallOutcome::Cancelled
    }
}
