//! The same tool call made again in a later request of the turn: a read-only call gets its
//! earlier result back with a note instead of running again (see `specs/turn-loop.md`, "Loops").

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::Turn;
use super::call::CallOutcome;
use super::repetition::TurnCalls;
use crate::agent::events::{ToolCallStart, ToolCallStatus, TurnEvent};
use crate::llm::ToolCall;
use crate::workspace::{ToolContent, ToolKind};

/// What the model reads before an earlier result given again.
const RECALL_NOTE: &str = "[Note from Punie: you already made this exact call in this turn, and \
nothing has changed since; here is its result again. Do not call it again: use this result, do \
something different, or answer.]";

impl Turn<'_> {
    /// Runs `call`, or answers it from `calls` when the turn already made it (read-only tools
    /// only, and only while no other kind of tool ran in between).
    pub(super) async fn run_or_recall(
        &self,
        call: &ToolCall,
        calls: &mut TurnCalls,
        named_command: Option<&str>,
    ) -> CallOutcome {
        let tool = self.toolset.get(&call.name);
        let recallable = tool.is_some_and(|tool| {
            !tool.needs_permission() && matches!(tool.kind(), ToolKind::Read | ToolKind::Search)
        });
        if !recallable {
            if tool.is_some() {
                calls.forget();
            }
            return self.run_tool_call(call, named_command).await;
        }
        if let Some((text, usable)) = calls.recall(&call.name, &call.arguments) {
            tracing::info!(session = %self.session.id, tool = %call.name, repeats = calls.repeats(), "the model repeated a call of this turn; its earlier result is given again");
            self.announce_recalled(call);
            return CallOutcome::Answered {
                text: format!("{RECALL_NOTE}\n\n{text}"),
                usable,
                images: Vec::new(),
            };
        }
        let outcome = self.run_tool_call(call, named_command).await;
        if let CallOutcome::Answered { text, usable, .. } = &outcome {
            calls.remember(&call.name, &call.arguments, text, *usable);
        }
        outcome
    }

    /// Shows the editor the repeated call, completed at once with a line saying why.
    fn announce_recalled(&self, call: &ToolCall) {
        let id = format!(
            "call-{}",
            self.call_counter.fetch_add(1, Ordering::Relaxed) + 1
        );
        let raw_input = serde_json::from_str::<Value>(&call.arguments)
            .unwrap_or_else(|_| Value::String(call.arguments.clone()));
        let tool = self.toolset.get(&call.name);
        let line = "Already run in this turn: the model was given the earlier result again.";
        self.emit(TurnEvent::ToolCall(ToolCallStart {
            id: id.clone(),
            name: call.name.clone(),
            title: tool.map_or_else(|| call.name.clone(), |t| t.title(&raw_input)),
            kind: tool.map_or(ToolKind::Other, |t| t.kind()),
            locations: tool
                .map(|t| t.locations(&raw_input, &self.session.workspace))
                .unwrap_or_default(),
            raw_input,
            status: ToolCallStatus::Pending,
            content: Vec::new(),
        }));
        self.update(
            &id,
            ToolCallStatus::Completed,
            Some(vec![ToolContent::Text(line.to_owned())]),
            Some(json!({"repeated": true})),
        );
    }
}
