//! Running one tool call: announcing it, its preview, the permission question, the call
//! itself and its result.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{Value, json};

use super::{Turn, unknown_tool, unless_cancelled};
use crate::agent::events::{ToolCallChange, ToolCallStart, ToolCallStatus, TurnEvent};
use crate::agent::observe::ToolCallStats;
use crate::image::Image;
use crate::llm::ToolCall;
use crate::tools::{ToolContext, ToolError};
use crate::workspace::{PermissionOutcome, PermissionRequest, ToolContent, WorkspaceError};

/// How a tool call ended, for the loop.
pub(super) enum CallOutcome {
    /// The text to answer the model with; `usable` is false when the call could not be run as
    /// written (an unknown tool, unusable arguments, a tool the session's mode does not allow);
    /// `images` are those the result holds (an MCP tool's), for a model that sees.
    Answered {
        text: String,
        usable: bool,
        images: Vec<Image>,
    },
    /// The turn was cancelled during the call.
    Cancelled,
}

impl Turn<'_> {
    pub(super) fn update(
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
    pub(super) fn fail(&self, id: &str, message: String, usable: bool) -> CallOutcome {
        self.update(
            id,
            ToolCallStatus::Failed,
            Some(vec![ToolContent::Text(message.clone())]),
            Some(json!({"error": message})),
        );
        CallOutcome::Answered {
            text: format!("Error: {message}"),
            usable,
            images: Vec::new(),
        }
    }

    /// Runs `call`; `named_command` is a command the person's request named, for the advice
    /// to a call of a tool that does not exist.
    pub(super) async fn run_tool_call(
        &self,
        call: &ToolCall,
        named_command: Option<&str>,
    ) -> CallOutcome {
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
        let tool = self
            .toolset
            .get(&call.name)
            .or_else(|| self.withheld.get(&call.name));
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
                unknown_tool::no_such_tool(&call.name, &names, named_command),
                false,
            );
        };
        // Refused before anything reaches the editor or the disk (not even a preview's read).
        let mode = self.session.mode();
        if !mode.allows(tool.as_ref()) {
            announce(Vec::new());
            tracing::info!(session = %self.session.id, tool = tool.name(), %mode, "tool call refused by the session's mode");
            // Counted like a malformed call: a small model that keeps calling a tool the mode
            // does not allow would otherwise run to the turn's request cap.
            return self.fail(&id, mode.refusal(tool.name()), false);
        }
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
        let plan_events = self.events.clone();
        let plan_session = self.session.id.clone();
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
        )
        .with_plan(Arc::new(move |entries| {
            plan_events.emit(&plan_session, TurnEvent::Plan(entries));
        }));

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
                None if !mode.asks_before(tool.as_ref()) => {
                    tracing::info!(session = %self.session.id, tool = tool.name(), %mode, "applied without asking: the session's mode allows it");
                    true
                }
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
                let images = output
                    .content
                    .iter()
                    .filter_map(|item| match item {
                        ToolContent::Image(image) => Some(image.clone()),
                        _ => None,
                    })
                    .collect();
                self.update(
                    &id,
                    ToolCallStatus::Completed,
                    (!output.content.is_empty()).then_some(output.content),
                    Some(output.raw_output),
                );
                CallOutcome::Answered {
                    text: output.text,
                    usable: true,
                    images,
                }
            }
            Err(error) => {
                tracing::info!(session = %self.session.id, tool = tool.name(), elapsed_ms, %error, "tool call failed");
                let usable = !matches!(error, ToolError::InvalidArguments { .. });
                self.fail(&id, error.to_string(), usable)
            }
        }
    }

    pub(super) fn cancelled(&self, id: &str) -> CallOutcome {
        self.update(
            id,
            ToolCallStatus::Failed,
            Some(vec![ToolContent::Text("Cancelled.".to_owned())]),
            None,
        );
        CallOutcome::Cancelled
    }
}
