//! Saved sessions: loading one from its journal (the history for the model, the replay for the
//! editor), listing and deleting them, and the event sink that journals what a turn shows.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::input::sent_as_text;
use super::journal::{
    Journal, JournalError, Loaded, Record, SessionPage, SessionStore, ShownContent, StoredMessage,
    kind_of,
};
use super::{
    Agent, AgentError, EventSink, Mode, PromptBlock, Session, StopReason, ToolCallChange,
    ToolCallStart, ToolCallStatus, TurnEvent,
};
use crate::tools::builtin::{PLAN_TOOL, PlanOutput};
use crate::workspace::{ToolContent, Workspace};

/// A session opened from its journal, and what to show the editor of its past.
pub struct LoadedSession {
    /// The session, registered and ready for prompts.
    pub session: Arc<Session>,
    /// The conversation so far as events, in order, ending with the session's title and any
    /// notices about the file (`session/load` sends them all, `session/resume` only the
    /// notices).
    pub replay: Vec<TurnEvent>,
}

impl std::fmt::Debug for LoadedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedSession")
            .field("session", &self.session.id())
            .field("replay", &self.replay.len())
            .finish()
    }
}

/// Passes a turn's events on and lets the journal follow them.
pub(super) struct Journaled {
    pub(super) journal: Arc<Journal>,
    pub(super) events: Arc<dyn EventSink>,
}

impl EventSink for Journaled {
    fn emit(&self, session_id: &str, event: TurnEvent) {
        self.journal.event(&event);
        self.events.emit(session_id, event);
        tell_failure(&self.journal, session_id, self.events.as_ref());
    }
}

/// Tells the person, once per session, that saving it failed (each failure is logged where
/// it happens); the turn goes on.
pub(super) fn tell_failure(journal: &Journal, session_id: &str, events: &dyn EventSink) {
    if let Some(what) = journal.untold_failure() {
        events.emit(
            session_id,
            TurnEvent::Notice {
                title: "This session is no longer saved".to_owned(),
                description: format!(
                    "Saving this session failed: {what}. The conversation goes on in this Punie, \
                     but what follows may be missing when the session is loaded again: free \
                     disk space or fix the sessions directory (--state-dir, PUNIE_STATE_DIR). \
                     (Said once for this session; the log has every failure.)"
                ),
            },
        );
    }
}

/// How the journal names a stop.
pub(super) fn stop_name(stop: StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn => "end_turn",
        StopReason::MaxTokens => "max_tokens",
        StopReason::MaxTurnRequests => "max_turn_requests",
        StopReason::Cancelled => "cancelled",
    }
}

fn no_journals() -> AgentError {
    AgentError::Journal(JournalError::Io {
        action: "find",
        path: "the sessions directory".into(),
        source: std::io::Error::other(
            "this Punie saves no sessions (start it with --state-dir DIR)",
        ),
    })
}

/// The events that show `loaded` again, in the order the editor first saw them.
fn replay(loaded: &Loaded, updated_at: String) -> Vec<TurnEvent> {
    let mut events = Vec::new();
    // The plan the editor showed last: the result of the last `update_plan` call that worked.
    let mut plan = None;
    for record in &loaded.records {
        match record {
            Record::Prompt {
                text,
                images,
                blocks,
                ..
            } => {
                // Older journals kept only the text the model read (and the images).
                let blocks = if blocks.is_empty() {
                    sent_as_text(text, images)
                } else {
                    blocks.clone()
                };
                events.extend(blocks.into_iter().map(|block| {
                    let image = match &block {
                        PromptBlock::Image {
                            image: Some(index), ..
                        } => images.get(*index).cloned(),
                        _ => None,
                    };
                    TurnEvent::UserMessage { block, image }
                }));
            }
            Record::Message {
                message: StoredMessage::Assistant { content, .. },
                thought,
            } => {
                if let Some(thought) = thought.as_ref().filter(|t| !t.is_empty()) {
                    events.push(TurnEvent::ThoughtChunk(thought.clone()));
                }
                if let Some(content) = content.as_ref().filter(|t| !t.is_empty()) {
                    events.push(TurnEvent::MessageChunk(content.clone()));
                }
            }
            Record::Command { text, output, .. } => {
                events.push(TurnEvent::UserMessage {
                    block: PromptBlock::Text { text: text.clone() },
                    image: None,
                });
                events.push(TurnEvent::MessageChunk(output.clone()));
            }
            Record::ToolCall { call } => {
                if call.name == PLAN_TOOL
                    && call.status == "completed"
                    && let Some(output) = call
                        .raw_output
                        .clone()
                        .and_then(|raw| serde_json::from_value::<PlanOutput>(raw).ok())
                {
                    plan = Some(output.entries);
                }
                let content: Vec<ToolContent> = call
                    .content
                    .iter()
                    .map(|c| match c {
                        ShownContent::Text { text } => ToolContent::Text(text.clone()),
                        ShownContent::Diff {
                            path,
                            old_text,
                            new_text,
                        } => ToolContent::Diff {
                            path: path.clone(),
                            old_text: old_text.clone(),
                            new_text: new_text.clone(),
                        },
                    })
                    .collect();
                events.push(TurnEvent::ToolCall(ToolCallStart {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    title: call.title.clone(),
                    kind: kind_of(&call.kind),
                    locations: call.locations.iter().map(|p| (p.clone(), None)).collect(),
                    raw_input: call.raw_input.clone(),
                    status: ToolCallStatus::Pending,
                    content: Vec::new(),
                }));
                events.push(TurnEvent::ToolCallUpdate(ToolCallChange {
                    id: call.id.clone(),
                    status: Some(if call.status == "completed" {
                        ToolCallStatus::Completed
                    } else {
                        ToolCallStatus::Failed
                    }),
                    content: Some(content),
                    raw_output: call.raw_output.clone(),
                }));
            }
            _ => {}
        }
    }
    if let Some(entries) = plan {
        events.push(TurnEvent::Plan(entries));
    }
    events.push(TurnEvent::SessionInfo {
        title: loaded.title.clone(),
        updated_at,
    });
    for problem in &loaded.problems {
        events.push(TurnEvent::Notice {
            title: "Part of this session could not be read".to_owned(),
            description: problem.clone(),
        });
    }
    if loaded.interrupted {
        events.push(TurnEvent::Notice {
            title: "The last turn was interrupted".to_owned(),
            description: "Punie stopped before the last turn finished; what was complete is kept, and the model is told the rest was cut off.".to_owned(),
        });
    }
    events
}

/// The highest `call-N` among the replayed tool calls.
fn last_call_number(loaded: &Loaded) -> u64 {
    loaded
        .records
        .iter()
        .filter_map(|r| match r {
            Record::ToolCall { call } => call.id.strip_prefix("call-")?.parse().ok(),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

impl Agent {
    /// Starts saving `session` (at its first prompt). A failure is logged and told to the
    /// person; the session goes on unsaved and the next prompt tries again.
    pub(super) fn start_journal(&self, session: &Session) -> Option<Arc<Journal>> {
        let store = self.journals.as_ref()?;
        match store.create(
            &session.id,
            session.workspace.root(),
            &self.model.describe(),
        ) {
            Ok(journal) => {
                // The mode it starts with, so a later load does not depend on the default.
                journal.mode(session.mode().id());
                session.set_journal(journal);
                session.journal()
            }
            Err(error) => {
                tracing::error!(session = %session.id, %error, "cannot save the session");
                // Each prompt tries again; the person is told once.
                if session.first_unsaved_notice() {
                    session.notify(
                        "This session is not saved",
                        format!(
                            "{error}. The conversation lives only as long as this Punie process; \
                             each prompt tries again to save it (said once for this session)."
                        ),
                    );
                }
                None
            }
        }
    }

    /// The mode a saved session resumes in: the one it recorded last, else (an older journal,
    /// or a mode this Punie does not know) the default.
    fn saved_mode(&self, id: &str, recorded: Option<&str>) -> Mode {
        match recorded.map(str::parse::<Mode>) {
            Some(Ok(mode)) => mode,
            Some(Err(error)) => {
                tracing::warn!(session = id, %error, default = %self.config.default_mode, "the saved mode is unknown; the session loads in the default mode");
                self.config.default_mode
            }
            None => self.config.default_mode,
        }
    }

    /// Where sessions are saved, if they are.
    pub fn journals(&self) -> Option<&Arc<SessionStore>> {
        self.journals.as_ref()
    }

    /// Opens the saved session `id` in `cwd` (which must be the session's own), working in the
    /// workspace `workspace` builds: its journal is locked for this process, the model's history
    /// restored (an unfinished last turn closed and marked interrupted; permissions answered
    /// "always" are not restored), and its past returned as events for the editor.
    pub fn load_session(
        &self,
        id: &str,
        cwd: &Path,
        workspace: impl FnOnce(&str) -> Workspace,
    ) -> Result<LoadedSession, AgentError> {
        let store = self.journals.as_ref().ok_or_else(no_journals)?;
        if self.sessions().contains_key(id) {
            return Err(AgentError::SessionOpen(id.to_owned()));
        }
        let max = self.config.max_sessions;
        if self.session_count() >= max {
            return Err(AgentError::TooManySessions { max });
        }
        let (journal, loaded) = store.open_session(id).map_err(|error| match error {
            JournalError::NotFound(id) => AgentError::UnknownSession(id),
            other => AgentError::Journal(other),
        })?;
        if loaded.header.cwd != cwd {
            return Err(AgentError::Journal(JournalError::Unreadable {
                id: id.to_owned(),
                path: store.journal_path(id),
                reason: format!(
                    "it belongs to the workspace {}, not {}: load it with that cwd",
                    loaded.header.cwd.display(),
                    cwd.display()
                ),
            }));
        }
        self.call_counter
            .fetch_max(last_call_number(&loaded), Ordering::Relaxed);
        let session = Arc::new(Session::new(id.to_owned(), workspace(id), self.toolset()));
        session.restore(loaded.history.clone());
        if let Some(name) = &loaded.model
            && let Some(model) = self.model.switch_to(name)
        {
            session.set_model(name.clone(), model);
        }
        session.set_mode(self.saved_mode(id, loaded.mode.as_deref()));
        let events = replay(&loaded, journal.updated_at());
        session.set_journal(journal);
        tracing::info!(
            session = id,
            messages = loaded.history.len(),
            interrupted = loaded.interrupted,
            skipped = loaded.skipped,
            "session loaded"
        );
        {
            let mut sessions = self.sessions();
            if sessions.contains_key(id) {
                return Err(AgentError::SessionOpen(id.to_owned()));
            }
            sessions.insert(id.to_owned(), session.clone());
        }
        Ok(LoadedSession {
            session,
            replay: events,
        })
    }

    /// One page of the saved sessions of `cwd` (all when `None`), newest activity first.
    pub fn saved_sessions(
        &self,
        cwd: Option<&Path>,
        cursor: Option<&str>,
    ) -> Result<SessionPage, AgentError> {
        let store = self.journals.as_ref().ok_or_else(no_journals)?;
        Ok(store.list(cwd, cursor)?)
    }

    /// Deletes the saved session `id`; refused while it is open in this Punie (close it
    /// first) or in another.
    pub fn delete_saved(&self, id: &str) -> Result<(), AgentError> {
        let store = self.journals.as_ref().ok_or_else(no_journals)?;
        if self.sessions().contains_key(id) {
            return Err(AgentError::SessionOpen(id.to_owned()));
        }
        store.delete(id).map_err(|error| match error {
            JournalError::NotFound(id) => AgentError::UnknownSession(id),
            other => AgentError::Journal(other),
        })
    }
}
