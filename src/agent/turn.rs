//! The turn loop: ask the model, relay what it streams, run the tools it calls, feed the results
//! back, and repeat until it answers, hits a limit, or the turn is cancelled.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::events::{EventSink, ToolCallChange, ToolCallStart, ToolCallStatus, TurnEvent};
use super::session::Session;
use super::{AgentConfig, StopReason};
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

/// What one model request produced.
#[derive(Default)]
struct Answer {
    text: String,
    tool_calls: Vec<ToolCall>,
    finish: Option<FinishReason>,
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
    pub(crate) model: &'a dyn ChatModel,
    pub(crate) config: &'a AgentConfig,
    pub(crate) events: Arc<dyn EventSink>,
    pub(crate) cancel: CancellationToken,
    pub(crate) call_counter: &'a AtomicU64,
}

impl Turn<'_> {
    fn emit(&self, event: TurnEvent) {
        self.events.emit(&self.session.id, event);
    }

    fn system_prompt(&self) -> String {
        let root = self.session.workspace.root().display();
        let tools: Vec<String> = self
            .session
            .toolset
            .iter()
            .map(|t| format!("- {}: {}", t.name(), t.description()))
            .collect();
        let mut prompt = format!(
            "You are Punie, a coding agent working in the project at {root}.\n\
             You help the user by reading, editing and running code in this project with your tools:\n{}\n\
             Guidelines:\n\
             - Use paths relative to the project root. You cannot access files outside it.\n\
             - Read a file before changing it; write the complete new content with write_file.\n\
             - The user approves every write and command; if they refuse, do not insist — ask what they want instead.\n\
             - Call tools with valid JSON arguments. When you are done, answer the user concisely.",
            tools.join("\n")
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
    pub(crate) async fn run(&self, history: &mut Vec<Message>) -> Result<StopReason, LlmError> {
        let system = Message::System {
            content: self.system_prompt(),
        };
        let tools = self.session.toolset.specs();
        let mut requests = 0;
        let mut empty_answers = 0;
        let mut bad_calls = 0;
        loop {
            if requests >= self.config.max_turn_requests {
                tracing::info!(session = %self.session.id, requests, "turn stopped: max_turn_requests");
                return Ok(StopReason::MaxTurnRequests);
            }
            requests += 1;
            let mut messages = Vec::with_capacity(history.len() + 1);
            messages.push(system.clone());
            messages.extend(history.iter().cloned());
            let request = ChatRequest {
                messages,
                tools: tools.clone(),
                temperature: Some(self.config.temperature),
                max_tokens: Some(self.config.max_tokens),
            };

            let mut answer = Answer::default();
            let completed = self.stream_answer(request, &mut answer).await?;
            if !completed {
                if !answer.text.is_empty() {
                    history.push(Message::Assistant {
                        content: Some(answer.text),
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

            let calls = answer.tool_calls;
            history.push(Message::Assistant {
                content: (!answer.text.is_empty()).then_some(answer.text),
                tool_calls: calls.clone(),
            });
            let mut cancelled = false;
            for call in &calls {
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
                history.push(Message::Tool {
                    tool_call_id: call.id.clone(),
                    content: text,
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

    /// Streams one model answer into `answer`, relaying text and thoughts. Returns false when the
    /// turn was cancelled.
    async fn stream_answer(
        &self,
        request: ChatRequest,
        answer: &mut Answer,
    ) -> Result<bool, LlmError> {
        let started = Instant::now();
        let Some(stream) = unless_cancelled(&self.cancel, self.model.stream(request)).await else {
            return Ok(false);
        };
        let mut stream = stream?;
        let mut first_token = None;
        loop {
            let Some(next) = unless_cancelled(&self.cancel, stream.next()).await else {
                return Ok(false);
            };
            let Some(event) = next else { break };
            if first_token.is_none() {
                first_token = Some(started.elapsed());
            }
            match event? {
                ModelEvent::Text(text) => {
                    answer.text.push_str(&text);
                    self.emit(TurnEvent::MessageChunk(text));
                }
                ModelEvent::Thought(text) => self.emit(TurnEvent::ThoughtChunk(text)),
                ModelEvent::ToolCall(call) => answer.tool_calls.push(call),
                ModelEvent::Usage(usage) => tracing::debug!(
                    session = %self.session.id,
                    prompt_tokens = usage.prompt_tokens,
                    completion_tokens = usage.completion_tokens,
                    "model usage"
                ),
                ModelEvent::Finished(reason) => answer.finish = Some(reason),
            }
        }
        tracing::info!(
            session = %self.session.id,
            model = %self.model.describe(),
            first_token_ms = first_token.map(|d| d.as_millis() as u64),
            total_ms = started.elapsed().as_millis() as u64,
            tool_calls = answer.tool_calls.len(),
            finish = ?answer.finish,
            "model request"
        );
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
        let started = Instant::now();
        let parsed: Result<Value, String> = if call.arguments.trim().is_empty() {
            Ok(json!({}))
        } else {
            match serde_json::from_str::<Value>(&call.arguments) {
                Ok(value @ Value::Object(_)) => Ok(value),
                Ok(other) => Err(format!("arguments must be a JSON object, got {other}")),
                Err(e) => Err(format!("arguments are not valid JSON ({e})")),
            }
        };
        let tool = self.session.toolset.get(&call.name);
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
            let names: Vec<&str> = self.session.toolset.iter().map(|t| t.name()).collect();
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
            let allowed = match self.session.permissions.recall(tool.name()) {
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
                    tracing::info!(session = %self.session.id, tool = tool.name(), ?outcome, wait_ms = waited.elapsed().as_millis() as u64, "permission");
                    match outcome {
                        Ok(PermissionOutcome::AllowOnce) => true,
                        Ok(PermissionOutcome::AllowAlways) => {
                            self.session.permissions.remember(tool.name(), true);
                            true
                        }
                        Ok(PermissionOutcome::RejectOnce) => false,
                        Ok(PermissionOutcome::RejectAlways) => {
                            self.session.permissions.remember(tool.name(), false);
                            false
                        }
                        Ok(PermissionOutcome::Cancelled) | Err(WorkspaceError::Cancelled) => {
                            self.cancel.cancel();
                            return self.cancelled(&id);
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

        self.update(&id, ToolCallStatus::InProgress, None, None);
        let Some(result) = unless_cancelled(&self.cancel, tool.call(args, &ctx)).await else {
            return self.cancelled(&id);
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(output) => {
                tracing::info!(session = %self.session.id, tool = tool.name(), elapsed_ms, provider = self.provider(tool.kind()), "tool call completed");
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

    fn provider(&self, kind: crate::workspace::ToolKind) -> &'static str {
        match kind {
            crate::workspace::ToolKind::Execute => self.session.workspace.terminals.provider(),
            _ => self.session.workspace.files.provider(),
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
