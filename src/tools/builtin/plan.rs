//! `update_plan`: the model's task list for work in several steps. Each call replaces the whole
//! list, which the editor shows as the session's plan (ACP's `plan` update).
//!
//! Small models get the shape wrong in small ways, so the input is read leniently: statuses
//! such as "done" or "in progress", a missing priority or status, entries written as plain
//! strings, the list under `steps` or `tasks`, or sent as a JSON string. What cannot be read
//! (no list, an empty step, an unknown status) is refused with what to send instead. The list
//! is bounded: [`MAX_PLAN_ENTRIES`] entries of at most [`MAX_ENTRY_CHARS`] characters.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::tools::{Tool, ToolContext, ToolError, ToolKind, ToolOutput};
use crate::workspace::Workspace;

/// The tool's name.
pub const PLAN_TOOL: &str = "update_plan";
/// The most entries one plan may have.
pub const MAX_PLAN_ENTRIES: usize = 50;
/// The most characters one entry's text may have.
pub const MAX_ENTRY_CHARS: usize = 500;

/// Where a step of the plan stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    /// Not started.
    Pending,
    /// Being worked on.
    InProgress,
    /// Done.
    Completed,
}

/// How much a step matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanPriority {
    /// Critical to the goal.
    High,
    /// Important (what a step without a priority gets).
    Medium,
    /// Nice to have.
    Low,
}

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanEntry {
    /// What the step does.
    pub content: String,
    /// Where it stands.
    pub status: PlanStatus,
    /// How much it matters.
    pub priority: PlanPriority,
}

/// The whole plan as the tool's `rawOutput` carries it (and a saved session keeps it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOutput {
    /// The entries, in order.
    pub entries: Vec<PlanEntry>,
}

/// The `update_plan` tool.
#[derive(Clone, Copy, Debug, Default)]
pub struct UpdatePlan;

impl Tool for UpdatePlan {
    fn name(&self) -> &str {
        PLAN_TOOL
    }

    fn description(&self) -> &str {
        "Keep a task list for work with several steps. Send the whole list each time, \
         marking each step pending, in_progress or completed."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "entries": {
                    "type": "array",
                    "description": "Every step, in order.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "content": {"type": "string"},
                            "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
                            "priority": {"type": "string", "enum": ["high", "medium", "low"]}
                        },
                        "required": ["content", "status"]
                    }
                }
            },
            "required": ["entries"]
        })
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Think
    }

    /// Folded by the compact profiles: its schema would add 137 tokens (18 %) to the compact
    /// toolset, which a 2,048- or 4,096-token window cannot spare for an optional tool. It still
    /// runs when called by name (the system prompt names it).
    fn rarely_used(&self) -> bool {
        true
    }

    fn provider(&self, _workspace: &Workspace) -> &'static str {
        "punie"
    }

    fn title(&self, args: &Value) -> String {
        match parse_plan(args) {
            Ok(entries) => {
                let done = entries
                    .iter()
                    .filter(|e| e.status == PlanStatus::Completed)
                    .count();
                format!("Plan: {done} of {} done", entries.len())
            }
            Err(_) => "Update the plan".to_owned(),
        }
    }

    fn call<'a>(
        &'a self,
        args: Value,
        ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let entries = parse_plan(&args).map_err(|reason| ToolError::InvalidArguments {
                tool: PLAN_TOOL.to_owned(),
                reason,
            })?;
            let count = |status| entries.iter().filter(|e| e.status == status).count();
            let text = format!(
                "Plan updated: {} steps ({} completed, {} in progress, {} pending).",
                entries.len(),
                count(PlanStatus::Completed),
                count(PlanStatus::InProgress),
                count(PlanStatus::Pending),
            );
            let raw_output = serde_json::to_value(PlanOutput {
                entries: entries.clone(),
            })
            .unwrap_or_default();
            ctx.show_plan(entries);
            Ok(ToolOutput {
                content: Vec::new(),
                raw_output,
                text,
            })
        })
    }
}

/// The plan in `args`, read leniently, or what is wrong with it in words the model can act on.
pub fn parse_plan(args: &Value) -> Result<Vec<PlanEntry>, String> {
    const SHAPE: &str =
        "send {\"entries\": [{\"content\": \"what to do\", \"status\": \"pending\"}, …]}";
    let list = ["entries", "plan", "steps", "tasks", "todos", "items"]
        .iter()
        .find_map(|key| args.get(key))
        .or_else(|| args.is_array().then_some(args))
        .ok_or_else(|| format!("no `entries` list: {SHAPE}"))?;
    // Some models send the list as a JSON string.
    let decoded;
    let list = match list {
        Value::String(text) => {
            decoded = serde_json::from_str::<Value>(text)
                .map_err(|_| format!("`entries` must be a list, not a string: {SHAPE}"))?;
            &decoded
        }
        other => other,
    };
    let items = list
        .as_array()
        .ok_or_else(|| format!("`entries` must be a list, got {list}: {SHAPE}"))?;
    if items.len() > MAX_PLAN_ENTRIES {
        return Err(format!(
            "the plan has {} entries; at most {MAX_PLAN_ENTRIES} are kept: merge small steps into larger ones",
            items.len()
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_entry(index + 1, item))
        .collect()
}

fn parse_entry(number: usize, item: &Value) -> Result<PlanEntry, String> {
    let (content, status, priority) = match item {
        Value::String(text) => (Some(text.as_str()), None, None),
        Value::Object(fields) => (
            ["content", "step", "task", "title", "text", "description"]
                .iter()
                .find_map(|key| fields.get(*key).and_then(Value::as_str)),
            fields.get("status").and_then(Value::as_str),
            fields.get("priority").and_then(Value::as_str),
        ),
        other => {
            return Err(format!(
                "entry {number} is {other}; each entry is {{\"content\": \"…\", \"status\": \"pending\"}}"
            ));
        }
    };
    let content = content.map(str::trim).unwrap_or_default();
    if content.is_empty() {
        return Err(format!(
            "entry {number} has no `content`: say what the step does"
        ));
    }
    let chars = content.chars().count();
    if chars > MAX_ENTRY_CHARS {
        return Err(format!(
            "entry {number} is {chars} characters long; at most {MAX_ENTRY_CHARS}: describe the step in a sentence"
        ));
    }
    let status = match status.map(normalized).as_deref() {
        None
        | Some("")
        | Some("pending" | "todo" | "to_do" | "not_started" | "open" | "planned") => {
            PlanStatus::Pending
        }
        Some(
            "in_progress" | "inprogress" | "progress" | "active" | "doing" | "started" | "working"
            | "current" | "ongoing",
        ) => PlanStatus::InProgress,
        Some("completed" | "complete" | "done" | "finished" | "succeeded" | "success") => {
            PlanStatus::Completed
        }
        Some(_) => {
            return Err(format!(
                "entry {number} has the status {:?}; use pending, in_progress or completed",
                status.unwrap_or_default()
            ));
        }
    };
    let priority = match priority.map(normalized).as_deref() {
        None | Some("" | "medium" | "med" | "normal") => PlanPriority::Medium,
        Some("high" | "urgent" | "critical") => PlanPriority::High,
        Some("low" | "minor") => PlanPriority::Low,
        Some(_) => {
            return Err(format!(
                "entry {number} has the priority {:?}; use high, medium or low (or leave it out)",
                priority.unwrap_or_default()
            ));
        }
    };
    Ok(PlanEntry {
        content: content.to_owned(),
        status,
        priority,
    })
}

/// `"In Progress"`, `"in-progress"` → `"in_progress"`.
fn normalized(word: &str) -> String {
    word.trim().to_lowercase().replace([' ', '-'], "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_shapes_are_read() {
        let plan = parse_plan(&json!({"steps": [
            "read the code",
            {"task": "fix the bug", "status": "In Progress", "priority": "HIGH"},
            {"content": "run the tests", "status": "done"},
        ]}))
        .unwrap();
        assert_eq!(
            plan,
            [
                PlanEntry {
                    content: "read the code".into(),
                    status: PlanStatus::Pending,
                    priority: PlanPriority::Medium
                },
                PlanEntry {
                    content: "fix the bug".into(),
                    status: PlanStatus::InProgress,
                    priority: PlanPriority::High
                },
                PlanEntry {
                    content: "run the tests".into(),
                    status: PlanStatus::Completed,
                    priority: PlanPriority::Medium
                },
            ]
        );
        let as_string = parse_plan(&json!({"entries": "[{\"content\": \"a\"}]"})).unwrap();
        assert_eq!(as_string.len(), 1);
        assert_eq!(parse_plan(&json!({"entries": []})).unwrap(), []);
    }

    #[test]
    fn unreadable_plans_say_what_to_send() {
        let cases = [
            (json!({}), "no `entries` list"),
            (json!({"entries": 3}), "must be a list"),
            (
                json!({"entries": [{"status": "pending"}]}),
                "entry 1 has no `content`",
            ),
            (
                json!({"entries": ["a", {"content": "b", "status": "maybe"}]}),
                "entry 2 has the status \"maybe\"; use pending, in_progress or completed",
            ),
            (
                json!({"entries": [{"content": "a", "priority": "9"}]}),
                "use high, medium or low",
            ),
            (
                json!({"entries": vec!["x"; MAX_PLAN_ENTRIES + 1]}),
                "the plan has 51 entries; at most 50",
            ),
            (
                json!({"entries": ["y".repeat(MAX_ENTRY_CHARS + 1)]}),
                "entry 1 is 501 characters long; at most 500",
            ),
        ];
        for (args, expected) in cases {
            let error = parse_plan(&args).unwrap_err();
            assert!(error.contains(expected), "{args}: {error}");
        }
    }
}
