//! Writing one session's journal: a record per completed event, flushed as it is written and
//! synced at the end of each turn; the journal file stays locked while the session lives.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use super::format::{MAX_SHOWN_TEXT, Record, ShownCall, ShownContent, StoredMessage, Summary};
use super::store::now;
use super::store::write_summary;
use crate::agent::events::{ToolCallStatus, TurnEvent};
use crate::agent::input::{sent_as_text, typed_text};
use crate::agent::{Prompt, PromptBlock};
use crate::llm::Message;
use crate::workspace::{ToolContent, ToolKind};

/// The most characters of a first prompt that become the session's title.
const TITLE_CHARS: usize = 80;

/// An open, locked journal: the one writer of its session.
pub struct Journal {
    pub(crate) id: String,
    path: PathBuf,
    summary_path: PathBuf,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

/// Whether saving the session failed, and whether the person was told.
#[derive(Clone, Debug, PartialEq)]
enum Failure {
    /// Nothing failed.
    None,
    /// This failed (the first failure, in words); not told yet.
    Untold(String),
    /// Told: later failures are only logged.
    Told,
}

struct Inner {
    /// `None` once a write failed: the session goes on unsaved (logged as an error).
    file: Option<File>,
    summary: Summary,
    /// Reasoning streamed since the last answer was recorded.
    thought: String,
    /// Tool calls announced and not yet ended, by protocol id.
    open_calls: HashMap<String, ShownCall>,
    /// The first thing that failed saving the session, until the person is told.
    failure: Failure,
    /// The history as the journal has it during a turn: what a reader rebuilds.
    base: Vec<Message>,
    /// The history before the turn, while a compaction during the turn makes it differ from
    /// what a failed turn returns to.
    before: Option<Vec<Message>>,
}

impl Journal {
    pub(crate) fn new(
        id: String,
        path: PathBuf,
        summary_path: PathBuf,
        file: File,
        summary: Summary,
    ) -> Self {
        Self {
            id,
            path,
            summary_path,
            inner: Mutex::new(Inner {
                file: Some(file),
                summary,
                thought: String::new(),
                open_calls: HashMap::new(),
                failure: Failure::None,
                base: Vec::new(),
                before: None,
            }),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session's title, once it has one.
    pub fn title(&self) -> Option<String> {
        self.inner().summary.title.clone()
    }

    /// The session's last activity (RFC 3339).
    pub fn updated_at(&self) -> String {
        self.inner().summary.updated_at.clone()
    }

    /// What failed saving the session, the first time it is asked after a failure: the
    /// person is told once per session (every failure is logged).
    pub(crate) fn untold_failure(&self) -> Option<String> {
        let mut inner = self.inner();
        match std::mem::replace(&mut inner.failure, Failure::Told) {
            Failure::Untold(what) => Some(what),
            Failure::None => {
                inner.failure = Failure::None;
                None
            }
            Failure::Told => None,
        }
    }

    /// Notes that saving failed (`what`, in words), for the person to be told once.
    fn failed(inner: &mut Inner, what: String) {
        if inner.failure == Failure::None {
            inner.failure = Failure::Untold(what);
        }
    }

    /// Syncs what is written to disk (a finished turn or command is never lost) and records
    /// `at` as the session's last activity in its summary. A journal whose file was removed
    /// (its directory deleted) is written no more: nothing would read it.
    fn sync_and_touch(&self, inner: &mut Inner, at: String) {
        if let Some(file) = &inner.file {
            let synced = file.sync_data();
            let removed = file.metadata().is_ok_and(|m| m.nlink() == 0);
            if let Err(error) = synced {
                tracing::error!(session = %self.id, path = %self.path.display(), %error, "cannot sync the session journal");
                Self::failed(
                    inner,
                    format!("cannot save {}: {error}", self.path.display()),
                );
            }
            if removed {
                tracing::error!(session = %self.id, path = %self.path.display(), "the session journal was removed; the rest of this session is not saved");
                Self::failed(
                    inner,
                    format!("its journal {} was removed", self.path.display()),
                );
                inner.file = None;
            }
        }
        inner.summary.updated_at = at;
        if let Err(error) = write_summary(&self.summary_path, &inner.summary) {
            tracing::error!(session = %self.id, path = %self.summary_path.display(), %error, "cannot update the session summary");
            Self::failed(
                inner,
                format!("cannot write {}: {error}", self.summary_path.display()),
            );
        }
    }

    /// Appends `record` as one line. A failure is logged and ends the journal (the session
    /// goes on in memory); returns whether the record was written.
    fn append(&self, inner: &mut Inner, record: &Record) -> bool {
        let Some(file) = inner.file.as_mut() else {
            return false;
        };
        let mut line = match serde_json::to_vec(record) {
            Ok(line) => line,
            Err(error) => {
                tracing::warn!(session = %self.id, %error, "cannot encode a journal record");
                return false;
            }
        };
        line.push(b'\n');
        // One write of the whole line: a crash leaves at most this line torn.
        if let Err(error) = file.write_all(&line) {
            tracing::error!(session = %self.id, path = %self.path.display(), %error, "cannot write the session journal; the rest of this session is not saved");
            inner.file = None;
            Self::failed(
                inner,
                format!("cannot write {}: {error}", self.path.display()),
            );
            return false;
        }
        true
    }

    /// Records the person's prompt, which starts a turn on `before`, and the title if the
    /// session had none.
    pub(crate) fn begin_turn(&self, before: &[Message], prompt: &Prompt) {
        let (text, images) = (prompt.text.as_str(), prompt.images.as_slice());
        // Blocks that say no more than the text and the images are not written twice.
        // An embedded file's text is in `text` already: its block keeps it only up to the bound
        // of what is shown again, beyond which it comes back as a link.
        let blocks = if prompt.blocks == sent_as_text(text, images) {
            Vec::new()
        } else {
            prompt
                .blocks
                .iter()
                .map(|block| match block {
                    PromptBlock::Resource {
                        uri,
                        mime_type,
                        text: Some(text),
                    } if text.len() > MAX_SHOWN_TEXT => PromptBlock::Resource {
                        uri: uri.clone(),
                        mime_type: mime_type.clone(),
                        text: None,
                    },
                    other => other.clone(),
                })
                .collect()
        };
        let mut inner = self.inner();
        inner.base = before.to_vec();
        inner.base.push(Message::User {
            content: text.to_owned(),
        });
        if !images.is_empty() {
            inner.base.push(Message::Images {
                images: images.to_vec(),
            });
        }
        inner.before = None;
        inner.thought.clear();
        inner.open_calls.clear();
        let at = now();
        self.append(
            &mut inner,
            &Record::Prompt {
                at,
                text: text.to_owned(),
                images: images.to_vec(),
                blocks,
            },
        );
        // The title comes from what the person typed (a command as typed, not its expansion).
        if inner.summary.title.is_none()
            && let Some(title) = title_of(&typed_text(&prompt.sent()))
        {
            self.append(
                &mut inner,
                &Record::Title {
                    title: title.clone(),
                },
            );
            inner.summary.title = Some(title);
        }
    }

    /// Records what `history` (the running turn's) has beyond what the journal has: its new
    /// messages, or, when the turn compacted the history, the whole compacted history.
    pub(crate) fn sync(&self, history: &[Message]) {
        let mut inner = self.inner();
        let known = inner.base.len();
        if history.len() >= known && history[..known] == inner.base[..] {
            for message in &history[known..] {
                let Some(stored) = StoredMessage::from_message(message) else {
                    continue;
                };
                let thought = match message {
                    Message::Assistant { .. } if !inner.thought.is_empty() => {
                        Some(std::mem::take(&mut inner.thought))
                    }
                    _ => None,
                };
                self.append(
                    &mut inner,
                    &Record::Message {
                        message: stored,
                        thought,
                    },
                );
            }
            inner.base.extend_from_slice(&history[known..]);
            return;
        }
        if inner.before.is_none() {
            let before = inner.base[..inner.base.len().saturating_sub(1)].to_vec();
            inner.before = Some(before);
        }
        let compacted = history
            .iter()
            .filter_map(StoredMessage::from_message)
            .collect();
        self.append(&mut inner, &Record::Compacted { history: compacted });
        inner.base = history.to_vec();
    }

    /// Follows what the editor is shown: reasoning (kept with the next answer) and tool calls
    /// (recorded when they end).
    pub(crate) fn event(&self, event: &TurnEvent) {
        let mut inner = self.inner();
        match event {
            TurnEvent::ThoughtChunk(text) if inner.thought.len() < MAX_SHOWN_TEXT => {
                inner.thought.push_str(text);
            }
            TurnEvent::ToolCall(start) => {
                let call = ShownCall {
                    id: start.id.clone(),
                    name: start.name.clone(),
                    title: start.title.clone(),
                    kind: kind_name(start.kind).to_owned(),
                    status: String::new(),
                    locations: start.locations.iter().map(|(p, _)| p.clone()).collect(),
                    raw_input: start.raw_input.clone(),
                    raw_output: None,
                    content: shown(&start.content),
                };
                inner.open_calls.insert(start.id.clone(), call);
            }
            TurnEvent::ToolCallUpdate(change) => {
                let Some(call) = inner.open_calls.get_mut(&change.id) else {
                    return;
                };
                if let Some(content) = &change.content {
                    let content = shown(content);
                    if !content.is_empty() {
                        call.content = content;
                    }
                }
                if let Some(output) = &change.raw_output {
                    call.raw_output = Some(output.clone());
                }
                let status = match change.status {
                    Some(ToolCallStatus::Completed) => "completed",
                    Some(ToolCallStatus::Failed) => "failed",
                    _ => return,
                };
                let Some(mut call) = inner.open_calls.remove(&change.id) else {
                    return;
                };
                call.status = status.to_owned();
                self.append(
                    &mut inner,
                    &Record::ToolCall {
                        call: Box::new(call),
                    },
                );
            }
            _ => {}
        }
    }

    /// Records a slash command answered without the model, and, when it changed the history
    /// (`/clear`, `/compact`), the history from now on. Synced at once, as a turn's end is.
    pub(crate) fn command(&self, text: &str, output: &str, history: Option<&[Message]>) {
        let mut inner = self.inner();
        let at = now();
        if let Some(history) = history {
            let history = history
                .iter()
                .filter_map(StoredMessage::from_message)
                .collect();
            self.append(&mut inner, &Record::Compacted { history });
        }
        self.append(
            &mut inner,
            &Record::Command {
                at: at.clone(),
                text: text.to_owned(),
                output: output.to_owned(),
            },
        );
        self.sync_and_touch(&mut inner, at);
    }

    /// Records a model switch.
    pub(crate) fn model(&self, name: &str) {
        let mut inner = self.inner();
        self.append(
            &mut inner,
            &Record::Model {
                name: name.to_owned(),
            },
        );
    }

    /// Records the session's mode (at the journal's start and on a switch).
    pub(crate) fn mode(&self, mode: &str) {
        let mut inner = self.inner();
        self.append(
            &mut inner,
            &Record::Mode {
                mode: mode.to_owned(),
            },
        );
    }

    /// Ends the turn: records what `after` (the turn's history; `None` for a failed turn,
    /// whose history returns to what it was) still adds, then the stop; syncs the file to disk
    /// and updates the summary.
    pub(crate) fn end_turn(&self, after: Option<&[Message]>, stop: &str) {
        match after {
            Some(after) => self.sync(after),
            None => {
                let mut inner = self.inner();
                // A compaction during the failed turn is undone as well.
                if let Some(before) = inner.before.take() {
                    let history = before
                        .iter()
                        .filter_map(StoredMessage::from_message)
                        .collect();
                    self.append(&mut inner, &Record::Compacted { history });
                }
            }
        }
        let mut inner = self.inner();
        inner.base.clear();
        inner.before = None;
        let at = now();
        self.append(
            &mut inner,
            &Record::TurnEnd {
                at: at.clone(),
                stop: stop.to_owned(),
            },
        );
        self.sync_and_touch(&mut inner, at);
    }
}

/// A title from the first prompt: its first line of words, at most [`TITLE_CHARS`] characters.
fn title_of(prompt: &str) -> Option<String> {
    let line = prompt
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("<file "))?;
    let mut title: String = line.chars().take(TITLE_CHARS).collect();
    if line.chars().count() > TITLE_CHARS {
        title.push('…');
    }
    Some(title)
}

/// The kind's name on the wire.
pub(crate) fn kind_name(kind: ToolKind) -> &'static str {
    match kind {
        ToolKind::Read => "read",
        ToolKind::Edit => "edit",
        ToolKind::Delete => "delete",
        ToolKind::Move => "move",
        ToolKind::Search => "search",
        ToolKind::Execute => "execute",
        ToolKind::Think => "think",
        ToolKind::Fetch => "fetch",
        _ => "other",
    }
}

/// The kind a name stands for.
pub(crate) fn kind_of(name: &str) -> ToolKind {
    match name {
        "read" => ToolKind::Read,
        "edit" => ToolKind::Edit,
        "delete" => ToolKind::Delete,
        "move" => ToolKind::Move,
        "search" => ToolKind::Search,
        "execute" => ToolKind::Execute,
        "think" => ToolKind::Think,
        "fetch" => ToolKind::Fetch,
        _ => ToolKind::Other,
    }
}

/// What of `content` can be shown again: text and diffs, each bounded; a live terminal is gone
/// once the session ends, so it is left out (the call's output is in its raw output).
fn shown(content: &[ToolContent]) -> Vec<ShownContent> {
    let cut = |text: &str| -> String {
        if text.len() <= MAX_SHOWN_TEXT {
            return text.to_owned();
        }
        let mut end = MAX_SHOWN_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!(
            "{}\n[… {} more bytes not kept]",
            &text[..end],
            text.len() - end
        )
    };
    content
        .iter()
        .filter_map(|c| match c {
            ToolContent::Text(text) => Some(ShownContent::Text { text: cut(text) }),
            ToolContent::Diff {
                path,
                old_text,
                new_text,
            } if old_text.as_ref().map_or(0, String::len) + new_text.len()
                <= 2 * MAX_SHOWN_TEXT =>
            {
                Some(ShownContent::Diff {
                    path: path.clone(),
                    old_text: old_text.clone(),
                    new_text: new_text.clone(),
                })
            }
            ToolContent::Diff { path, .. } => Some(ShownContent::Text {
                text: format!(
                    "Changed {} (the diff was too large to keep).",
                    path.display()
                ),
            }),
            _ => None,
        })
        .collect()
}
