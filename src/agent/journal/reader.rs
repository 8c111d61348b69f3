//! Reading a journal back: the model's history as it was, the records to replay to the editor,
//! and what was wrong with the file (a torn last line is dropped, a damaged record ends the
//! reading there, a newer format is refused).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use super::format::{
    FORMAT_VERSION, Header, JournalError, MAX_RECORD_BYTES, Record, StoredMessage,
};
use crate::llm::Message;

/// What the model reads in place of a tool call the process never finished.
pub(crate) const UNFINISHED_CALL: &str = "Not finished: Punie stopped (the process ended) while this call ran; its effect is unknown, check before repeating it.";

/// What the model reads after a turn the process never finished.
pub(crate) const INTERRUPTED_TURN: &str =
    "[Interrupted: Punie stopped (the process ended) before this answer was complete.]";

/// A journal read back.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Its header.
    pub header: Header,
    /// The history the model reads, well formed (an unfinished turn is closed and marked).
    pub history: Vec<Message>,
    /// Every record read, in order, for the replay to the editor.
    pub records: Vec<Record>,
    /// The session's title.
    pub title: Option<String>,
    /// The model it last switched to, if it did.
    pub model: Option<String>,
    /// The mode it was last in, as recorded (`None` in journals that recorded none).
    pub mode: Option<String>,
    /// True when the last turn never ended (the process was killed or crashed).
    pub interrupted: bool,
    /// Records skipped after a damaged one.
    pub skipped: usize,
    /// What the person should be told about the file.
    pub problems: Vec<String>,
    /// Bytes up to the end of the last good record.
    pub(crate) valid_len: u64,
}

/// Reads one line of at most [`MAX_RECORD_BYTES`]; `None` at the end. The flag is true when
/// the line ended with a newline.
fn next_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    line.clear();
    let read = reader
        .take(MAX_RECORD_BYTES as u64 + 1)
        .read_until(b'\n', line)?;
    if read == 0 {
        return Ok(None);
    }
    let complete = line.last() == Some(&b'\n');
    if complete {
        line.pop();
    }
    Ok(Some(complete))
}

fn parse_header(line: &[u8], path: &Path, id: &str) -> Result<Header, JournalError> {
    let unreadable = |reason: String| JournalError::Unreadable {
        id: id.to_owned(),
        path: path.to_owned(),
        reason,
    };
    let value: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| unreadable(format!("its header is not JSON: {e}")))?;
    let format = value.get("format").and_then(|f| f.as_u64()).unwrap_or(0);
    if format > u64::from(FORMAT_VERSION) {
        return Err(JournalError::NewerFormat {
            id: id.to_owned(),
            punie: value
                .get("punie")
                .and_then(|p| p.as_str())
                .unwrap_or("(unknown)")
                .chars()
                .take(40)
                .collect(),
            format: u32::try_from(format).unwrap_or(u32::MAX),
            ours: env!("CARGO_PKG_VERSION"),
        });
    }
    serde_json::from_value(value).map_err(|e| unreadable(format!("its header is incomplete: {e}")))
}

/// The identity a header gives, of any format version.
#[derive(serde::Deserialize)]
pub(crate) struct Identity {
    pub(crate) session: String,
    pub(crate) cwd: std::path::PathBuf,
    #[serde(default)]
    pub(crate) created_at: String,
}

/// Reads only the identity in the header of the journal at `path` (whatever its format).
pub(crate) fn read_header(path: &Path) -> Result<Identity, JournalError> {
    let id = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned();
    let file = File::open(path).map_err(|source| JournalError::Io {
        action: "open",
        path: path.to_owned(),
        source,
    })?;
    let mut reader = BufReader::new(file.take(64 * 1024));
    let mut line = Vec::new();
    match next_line(&mut reader, &mut line) {
        Ok(Some(_)) => serde_json::from_slice(&line).map_err(|e| JournalError::Unreadable {
            id,
            path: path.to_owned(),
            reason: format!("its header is not readable: {e}"),
        }),
        _ => Err(JournalError::Unreadable {
            id,
            path: path.to_owned(),
            reason: "it is empty".to_owned(),
        }),
    }
}

/// Reads the journal `file` (at `path`) of session `id`.
pub(crate) fn read_journal(file: &File, path: &Path, id: &str) -> Result<Loaded, JournalError> {
    let io = |source| JournalError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let header = match next_line(&mut reader, &mut line).map_err(io)? {
        Some(_) => parse_header(&line, path, id)?,
        None => {
            return Err(JournalError::Unreadable {
                id: id.to_owned(),
                path: path.to_owned(),
                reason: "it is empty".to_owned(),
            });
        }
    };
    if header.session != id {
        return Err(JournalError::Unreadable {
            id: id.to_owned(),
            path: path.to_owned(),
            reason: format!("its header names session {}", header.session),
        });
    }
    let mut valid_len = line.len() as u64 + 1;
    let mut records = Vec::new();
    let mut problems = Vec::new();
    let mut skipped = 0;
    let mut number = 1;
    while let Some(complete) = next_line(&mut reader, &mut line).map_err(io)? {
        number += 1;
        match serde_json::from_slice::<Record>(&line) {
            Ok(record) if complete => {
                valid_len += line.len() as u64 + 1;
                records.push(record);
            }
            _ if !complete => {
                // The last write was cut short by a crash: nothing in it was complete.
                tracing::warn!(
                    session = id,
                    line = number,
                    bytes = line.len(),
                    "the journal's last line is torn; ignored"
                );
                break;
            }
            Ok(_) | Err(_) => {
                while next_line(&mut reader, &mut line).map_err(io)?.is_some() {
                    skipped += 1;
                }
                skipped += 1;
                tracing::warn!(
                    session = id,
                    line = number,
                    skipped,
                    "a damaged record in the journal; loaded up to it"
                );
                problems.push(format!(
                    "Line {number} of this session's journal ({}) is damaged: the conversation was loaded up to it, and the {skipped} line(s) from there on were skipped (a copy of the original is kept next to it as {id}.damaged-*.jsonl).",
                    path.display()
                ));
                break;
            }
        }
    }
    let mut loaded = Loaded {
        header,
        history: Vec::new(),
        records,
        title: None,
        model: None,
        mode: None,
        interrupted: false,
        skipped,
        problems,
        valid_len,
    };
    rebuild(&mut loaded);
    Ok(loaded)
}

/// The model's history from the records: a failed turn is dropped (as it was live), an
/// unfinished one is closed and marked.
fn rebuild(loaded: &mut Loaded) {
    let mut history: Vec<Message> = Vec::new();
    let mut turn_start: Option<usize> = None;
    for record in &loaded.records {
        match record {
            Record::Prompt { text, images, .. } => {
                // The previous turn never ended (the process died) and the session went on:
                // close it as it was closed when it was loaded then.
                if turn_start.is_some() {
                    close_unfinished(&mut history);
                }
                turn_start = Some(history.len());
                history.push(Message::User {
                    content: text.clone(),
                });
                if !images.is_empty() {
                    history.push(Message::Images {
                        images: images.clone(),
                    });
                }
            }
            Record::Message { message, .. } => history.push(message.to_message()),
            Record::Compacted { history: compacted } => {
                history = compacted.iter().map(StoredMessage::to_message).collect();
                turn_start = turn_start.map(|_| history.len());
            }
            Record::TurnEnd { stop, .. } => {
                if stop == "failed"
                    && let Some(start) = turn_start
                {
                    history.truncate(start);
                }
                turn_start = None;
            }
            Record::Title { title } => loaded.title = Some(title.clone()),
            Record::Model { name } => loaded.model = Some(name.clone()),
            Record::Mode { mode } => loaded.mode = Some(mode.clone()),
            Record::ToolCall { .. } | Record::Command { .. } => {}
        }
    }
    if turn_start.is_some() {
        loaded.interrupted = true;
        close_unfinished(&mut history);
    }
    loaded.history = history;
}

/// Gives every tool call of the last answer a result and ends the history with an answer, so
/// the model sees a well-formed conversation that says it was cut off.
fn close_unfinished(history: &mut Vec<Message>) {
    let last_calls = history.iter().rposition(
        |m| matches!(m, Message::Assistant { tool_calls, .. } if !tool_calls.is_empty()),
    );
    if let Some(index) = last_calls
        && let Message::Assistant { tool_calls, .. } = history[index].clone()
    {
        for call in tool_calls {
            let answered = history[index + 1..].iter().any(
                |m| matches!(m, Message::Tool { tool_call_id, .. } if *tool_call_id == call.id),
            );
            if !answered {
                history.push(Message::Tool {
                    tool_call_id: call.id.clone(),
                    content: UNFINISHED_CALL.to_owned(),
                });
            }
        }
    }
    let ends_with_answer = matches!(history.last(), Some(Message::Assistant { tool_calls, .. }) if tool_calls.is_empty());
    if !ends_with_answer {
        history.push(Message::Assistant {
            content: Some(INTERRUPTED_TURN.to_owned()),
            tool_calls: Vec::new(),
        });
    }
}
