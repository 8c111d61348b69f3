//! Sessions that survive the process: each session's append-only journal, the directory that
//! keeps them, and reading them back. See `specs/sessions.md`.
//!
//! `format` (the records and errors) → `reader` → `store` ↔ `writer` (the store opens a
//! journal's writer, the writer updates the store's summary file).

mod format;
mod reader;
mod store;
#[cfg(test)]
mod tests;
mod writer;

pub use format::{
    FORMAT_VERSION, Header, JournalError, MAX_RECORD_BYTES, Record, ShownCall, ShownContent,
    StoredCall, StoredMessage, Summary,
};
pub use reader::Loaded;
#[cfg(test)]
use reader::{INTERRUPTED_TURN, UNFINISHED_CALL};
pub use store::{LIST_PAGE, Retention, SessionPage, SessionStore};
pub use writer::Journal;
pub(crate) use writer::kind_of;
