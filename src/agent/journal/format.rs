//! The journal's on-disk format: one JSON object per line, a header first, then one record per
//! completed event of the conversation. See `specs/sessions.md`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::agent::PromptBlock;
use crate::image::Image;
use crate::llm::{Message, ToolCall};

/// The format version this Punie writes and the newest it reads. Version 2 added the `mode`
/// record: a Punie that reads only version 1 would take it for a damaged line, so it is told
/// to upgrade instead. Version 3 added the prompt's `blocks` (the prompt as the person sent
/// it): a Punie that reads only version 2 would replay the expanded text. Journals of versions
/// 1 and 2 still load (no mode: the default; no blocks: the text and the images are replayed).
pub const FORMAT_VERSION: u32 = 3;

/// The most bytes one journal line may have when read back; longer lines count as corrupt.
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;

/// The most bytes of text one shown tool result keeps (diff sides, text content): the model's
/// own copy of the result is kept in full, this is only what the editor re-displays.
pub(crate) const MAX_SHOWN_TEXT: usize = 256 * 1024;

/// The first line of every journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The journal format version ([`FORMAT_VERSION`] when this Punie wrote it).
    pub format: u32,
    /// The version of Punie that created the journal.
    pub punie: String,
    /// The session id.
    pub session: String,
    /// The session's working directory.
    pub cwd: PathBuf,
    /// When the session was created (RFC 3339, UTC).
    pub created_at: String,
    /// The model the session started with (no credentials: the back end's description).
    pub model: String,
}

/// One tool call as the editor was shown it when it ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShownCall {
    /// The call's id on the protocol (`call-N`).
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The title shown.
    pub title: String,
    /// The tool kind (`read`, `edit`, `execute`…).
    pub kind: String,
    /// The final status: `completed` or `failed`.
    pub status: String,
    /// Files it touched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<PathBuf>,
    /// The arguments.
    #[serde(default)]
    pub raw_input: Value,
    /// The structured output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_output: Option<Value>,
    /// The content shown last (text, diffs; a live terminal becomes a note).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<ShownContent>,
}

/// Content attached to a shown tool call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ShownContent {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// A file change.
    Diff {
        /// The file.
        path: PathBuf,
        /// The previous text; `None` for a new file.
        old_text: Option<String>,
        /// The new text.
        new_text: String,
    },
}

/// A message of the model's history, as written to the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum StoredMessage {
    /// The person's prompt.
    User {
        /// Its text.
        content: String,
    },
    /// An answer of the model.
    Assistant {
        /// Its text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        /// The tool calls it made.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<StoredCall>,
    },
    /// A tool result, as the model read it.
    Tool {
        /// The model's id of the call.
        tool_call_id: String,
        /// The result.
        content: String,
    },
    /// Images shown to the model (after a prompt, or after tool results), kept in full.
    Images {
        /// The images.
        images: Vec<Image>,
    },
}

/// A tool call of the model, as written to the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredCall {
    /// The model's call id.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as the model wrote them.
    pub arguments: String,
}

impl StoredMessage {
    /// The journal's copy of `message`; `None` for a system message, which is never journaled
    /// (it is rebuilt for every request).
    pub fn from_message(message: &Message) -> Option<Self> {
        Some(match message {
            Message::System { .. } => return None,
            Message::User { content } => Self::User {
                content: content.clone(),
            },
            Message::Assistant {
                content,
                tool_calls,
            } => Self::Assistant {
                content: content.clone(),
                tool_calls: tool_calls
                    .iter()
                    .map(|c| StoredCall {
                        id: c.id.clone(),
                        name: c.name.clone(),
                        arguments: c.arguments.clone(),
                    })
                    .collect(),
            },
            Message::Tool {
                tool_call_id,
                content,
            } => Self::Tool {
                tool_call_id: tool_call_id.clone(),
                content: content.clone(),
            },
            Message::Images { images } => Self::Images {
                images: images.clone(),
            },
        })
    }

    /// The message the model reads.
    pub fn to_message(&self) -> Message {
        match self {
            Self::User { content } => Message::User {
                content: content.clone(),
            },
            Self::Assistant {
                content,
                tool_calls,
            } => Message::Assistant {
                content: content.clone(),
                tool_calls: tool_calls
                    .iter()
                    .map(|c| ToolCall {
                        id: c.id.clone(),
                        name: c.name.clone(),
                        arguments: c.arguments.clone(),
                    })
                    .collect(),
            },
            Self::Tool {
                tool_call_id,
                content,
            } => Message::Tool {
                tool_call_id: tool_call_id.clone(),
                content: content.clone(),
            },
            Self::Images { images } => Message::Images {
                images: images.clone(),
            },
        }
    }
}

/// One line after the header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// The person's prompt: starts a turn.
    Prompt {
        /// When (RFC 3339).
        at: String,
        /// The prompt as the model reads it (text blocks verbatim, files inline).
        text: String,
        /// The images attached to it, in full (absent when none).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        images: Vec<Image>,
        /// The prompt as the person sent it (version 3; absent when it was `text` alone, and
        /// in older journals): text as typed, image blocks naming `images` by index, resource
        /// links, embedded files.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        blocks: Vec<PromptBlock>,
    },
    /// A completed message of the turn (an answer with its thoughts and tool calls, or a tool
    /// result as the model read it).
    Message {
        /// The message.
        message: StoredMessage,
        /// The model's reasoning streamed before this answer, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thought: Option<String>,
    },
    /// A tool call as the editor was shown it when it ended.
    ToolCall {
        /// The call.
        call: Box<ShownCall>,
    },
    /// The whole history after the turn compacted it: replaces what the model reads from here.
    Compacted {
        /// The history the model reads from here on.
        history: Vec<StoredMessage>,
    },
    /// A slash command answered without the model (`/context`, `/clear`, `/compact`…): shown
    /// again on load, never part of what the model reads. A command that changed the history
    /// is followed by a `compacted` record with the history from there on.
    Command {
        /// When (RFC 3339).
        at: String,
        /// The command as typed.
        text: String,
        /// What Punie answered.
        output: String,
    },
    /// The session switched models.
    Model {
        /// The model's name.
        name: String,
    },
    /// The session's mode (`ask`, `plan`, `code`, `edit`): written when the journal starts and
    /// on each switch. A journal without one loads in the default mode.
    Mode {
        /// The mode's id.
        mode: String,
    },
    /// The session's title.
    Title {
        /// The title.
        title: String,
    },
    /// The turn ended.
    TurnEnd {
        /// When (RFC 3339).
        at: String,
        /// How: `end_turn`, `max_tokens`, `max_turn_requests`, `cancelled`, or `failed`
        /// (its messages are then dropped from the model's history, as they were live).
        stop: String,
    },
}

/// The small summary kept next to each journal so `session/list` reads no conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The session id.
    pub session: String,
    /// The session's working directory.
    pub cwd: PathBuf,
    /// Its title, once it has one.
    #[serde(default)]
    pub title: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// Its last activity (RFC 3339).
    pub updated_at: String,
}

/// What can go wrong with a session's journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// No journal for this id.
    #[error("no saved session {0}: `punie sessions list` shows the saved ones")]
    NotFound(String),
    /// The id cannot name a journal.
    #[error("{0:?} is not a Punie session id (expected letters, digits, `_` or `-`, at most 100)")]
    BadId(String),
    /// Another process holds the journal.
    #[error(
        "session {0} is open in another Punie process (another editor window?): close it there first, then load it here"
    )]
    Locked(String),
    /// A newer Punie wrote the journal.
    #[error(
        "session {id} was saved by Punie {punie} in journal format {format}; this Punie {ours} reads format {FORMAT_VERSION} at most: upgrade Punie to load it"
    )]
    NewerFormat {
        /// The session.
        id: String,
        /// The version that wrote it.
        punie: String,
        /// Its format version.
        format: u32,
        /// This Punie's version.
        ours: &'static str,
    },
    /// The file does not start with a readable header.
    #[error(
        "the journal of session {id} at {path} is unreadable ({reason}); delete it with `punie sessions delete {id}`"
    )]
    Unreadable {
        /// The session.
        id: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing the file failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}
