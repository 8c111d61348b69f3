//! Where the time goes: a [`PerfRecorder`] that watches an agent's turns (as its
//! [`TurnObserver`](crate::agent::TurnObserver)) and the reports it makes — a standalone HTML
//! page and a JSON file with the same data.
//!
//! Perf recording is opt-in: an agent without an observer pays nothing, and nothing here is
//! global.
//!
//! ```
//! use std::sync::Arc;
//! use punie::perf::PerfRecorder;
//! use punie::testing::{FakeEditor, PermissionAnswer, ScriptedModel};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let model = Arc::new(ScriptedModel::new());
//! model.tool_call("write_file", serde_json::json!({"path": "a.txt", "content": "hi"}));
//! model.text("Done.");
//! let perf = Arc::new(PerfRecorder::new());
//! let agent = punie::agent::Agent::builder()
//!     .model(model)
//!     .observer(perf.clone())
//!     .build()
//!     .unwrap();
//! let editor = FakeEditor::new().answer(PermissionAnswer::AllowOnce);
//! let connection = editor.connect(agent).await.unwrap();
//! let session = connection.new_session("/project").await.unwrap();
//! connection.prompt(&session, "write a.txt").await.unwrap();
//!
//! let report = perf.snapshot();
//! assert_eq!(report.totals.turns, 1);
//! assert_eq!(report.tools[0].name, "write_file");
//! assert!(report.to_html().contains("<svg"));
//! # }
//! ```
//!
//! What a turn's time is made of (see [`TimeSplit`]): model requests, the tools' own time,
//! editor round trips (`fs/*`, `terminal/*`, including those made during a tool call), waiting
//! for the person to answer permission prompts, and the rest (Punie itself).

mod calendar;
mod files;
mod histogram;
mod html;
mod recorder;
mod report;

pub use recorder::{
    MAX_EVENTS, MAX_EVENTS_PER_SESSION, MAX_SESSIONS, MAX_TURNS_PER_SESSION, PerfRecorder,
};
pub use report::{
    DurationStats, GroupStats, Limits, ModelStats, PerfReport, REPORT_FORMAT, SessionReport, Span,
    SpanKind, TimeSplit, ToolStats, Totals, TurnReport,
};

#[cfg(test)]
mod tests;
