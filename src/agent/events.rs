//! What a turn reports as it runs, independent of any wire format: the ACP layer turns these
//! into `session/update` notifications, `punie ask` into terminal output.

use std::path::PathBuf;

use serde_json::Value;

use super::input::PromptBlock;
use crate::image::Image;
use crate::tools::builtin::PlanEntry;
use crate::workspace::{ToolContent, ToolKind};

/// The state of a tool call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolCallStatus {
    /// Announced, not started (e.g. waiting for permission).
    Pending,
    /// Running.
    InProgress,
    /// Finished successfully.
    Completed,
    /// Failed, was refused, or was cancelled.
    Failed,
}

/// A tool call as first announced.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCallStart {
    /// The call id.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// A short title.
    pub title: String,
    /// The tool's kind.
    pub kind: ToolKind,
    /// Files it touches (path, line).
    pub locations: Vec<(PathBuf, Option<u32>)>,
    /// The arguments.
    pub raw_input: Value,
    /// Initial status.
    pub status: ToolCallStatus,
    /// What the call will do (a diff, a command line), if known before it runs.
    pub content: Vec<ToolContent>,
}

/// A change to an announced tool call; `None` fields are unchanged.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ToolCallChange {
    /// The call id.
    pub id: String,
    /// New status.
    pub status: Option<ToolCallStatus>,
    /// New content (replaces the previous content).
    pub content: Option<Vec<ToolContent>>,
    /// Structured output.
    pub raw_output: Option<Value>,
}

/// One thing that happened during a turn.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum TurnEvent {
    /// A piece of the answer.
    MessageChunk(String),
    /// A piece of the model's reasoning.
    ThoughtChunk(String),
    /// A tool call was announced.
    ToolCall(ToolCallStart),
    /// A tool call changed.
    ToolCallUpdate(ToolCallChange),
    /// How full the model's context window is, estimated before a model request.
    Usage {
        /// Tokens in the prompt (estimated, or as the server counted them).
        used: u64,
        /// The context window in tokens.
        size: u64,
    },
    /// One block of the person's prompt as they sent it, replayed (in order) when a saved
    /// session is loaded.
    UserMessage {
        /// The block.
        block: PromptBlock,
        /// The image an image block names (`None` for other blocks, or an image given only
        /// by its URI).
        image: Option<Image>,
    },
    /// The session's title and last activity (RFC 3339), sent after each turn and on load.
    SessionInfo {
        /// The title, once the session has one.
        title: Option<String>,
        /// When the session was last active.
        updated_at: String,
    },
    /// How far the model server has read a long prompt, before the answer starts (from servers
    /// that tell: llama.cpp). ACP has no update for it; `punie ask` shows it.
    PromptProgress {
        /// Tokens in the prompt.
        total: u64,
        /// Of those, taken from the server's cache.
        cached: u64,
        /// Of those, done so far (the cached ones included).
        processed: u64,
    },
    /// The session's plan, whole (it replaces the one before): set by the model's
    /// `update_plan` calls, replayed when a saved session is loaded.
    Plan(Vec<PlanEntry>),
    /// Something the person should know that is not part of the answer (the history was
    /// compacted, an MCP server failed to start…).
    Notice {
        /// A short title.
        title: String,
        /// The details.
        description: String,
    },
    /// A compaction of the history (automatic, or asked for with `/compact`) started, ended or
    /// failed. Every compaction reports [`CompactionStatus::InProgress`] first and one final
    /// status last, with the same `id`.
    Compaction {
        /// Unique within the session.
        id: String,
        /// Where it stands.
        status: CompactionStatus,
        /// Once it ended: what was done, or why it failed, in words for the person.
        description: Option<String>,
    },
    /// A piece of what a compaction kept in place of the older turns (what it did, and the
    /// model's summary), sent between its start and its end.
    CompactionSummary {
        /// The compaction's id.
        id: String,
        /// The text to append.
        text: String,
    },
    /// The slash commands the session offers, sent when a session opens and whenever the list
    /// changes (a prompt file was added or removed).
    AvailableCommands(Vec<CommandInfo>),
    /// The session now uses another model (after `/model NAME`): the model pickers follow.
    ModelSwitched {
        /// The model in use.
        current: String,
        /// The models it could switch to.
        available: Vec<String>,
    },
}

/// Where a compaction of the history stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompactionStatus {
    /// Started, not finished.
    InProgress,
    /// Finished: the history is shorter.
    Completed,
    /// Did not happen: the history is as it was.
    Failed,
    /// Cancelled with the turn: the history is as it was.
    Cancelled,
}

/// A slash command, as the editor's command menu shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandInfo {
    /// The name typed after `/`.
    pub name: String,
    /// What it does.
    pub description: String,
    /// What to type after the name, for commands that take arguments.
    pub hint: Option<String>,
}

/// Receives a session's events, in order.
pub trait EventSink: Send + Sync {
    /// Delivers one event of the given session.
    fn emit(&self, session_id: &str, event: TurnEvent);
}

/// Why a turn ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The model finished its answer.
    EndTurn,
    /// The model hit the `max_tokens` limit.
    MaxTokens,
    /// The turn hit the cap on model requests.
    MaxTurnRequests,
    /// The turn was cancelled.
    Cancelled,
}
