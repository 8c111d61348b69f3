//! A seam for watching where a turn's time goes (the perf reports plug in here). Every method
//! has an empty default; an agent without an observer pays nothing.

use std::time::Duration;

use super::events::StopReason;
use crate::llm::Usage;

/// One model request, as measured by the turn loop.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ModelRequestStats {
    /// The model, as it describes itself.
    pub model: String,
    /// From sending the request to the first streamed event.
    pub time_to_first_token: Option<Duration>,
    /// From sending the request to the end of the stream.
    pub total: Duration,
    /// Token counts, when the server reported them.
    pub usage: Option<Usage>,
    /// Text and thought pieces relayed.
    pub chunks: u32,
    /// The shape of each tool call read from the answer's text rather than sent structured
    /// (`bare_json`, `fenced_json`, `tool_call_tag`…), in order.
    pub recovered_calls: Vec<&'static str>,
    /// False when the request failed or was cancelled.
    pub completed: bool,
}

/// One tool call, as measured by the turn loop (permission waits excluded).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ToolCallStats {
    /// The tool's name.
    pub name: String,
    /// Where it ran: "editor", "local", "mcp", "bridged"…
    pub provider: &'static str,
    /// How long it ran.
    pub elapsed: Duration,
    /// False when it failed, was refused or cancelled.
    pub ok: bool,
}

/// Receives timings from every session of an agent. Called from many tasks at once.
pub trait TurnObserver: Send + Sync {
    /// A prompt turn began.
    fn turn_started(&self, _session: &str) {}
    /// A prompt turn ended (`None` when the model server failed).
    fn turn_finished(&self, _session: &str, _stop: Option<StopReason>, _elapsed: Duration) {}
    /// A model request ended.
    fn model_request(&self, _session: &str, _stats: &ModelRequestStats) {}
    /// A tool call ended.
    fn tool_call(&self, _session: &str, _stats: &ToolCallStats) {}
    /// The person answered (or dismissed) a permission prompt after `waited`.
    fn permission_wait(&self, _session: &str, _tool: &str, _waited: Duration) {}
    /// A request to the editor (`fs/*`, `terminal/*`, …) was answered after `elapsed`.
    fn editor_request(&self, _session: &str, _method: &str, _elapsed: Duration, _ok: bool) {}
    /// A session was closed (its connection ended, or the agent is shutting down).
    fn session_closed(&self, _session: &str) {}
    /// A report of what this observer recorded, as JSON, for the `_punie/perf_report` ACP
    /// extension method; `None` (the default) when it keeps no report.
    fn report_json(&self) -> Option<serde_json::Value> {
        None
    }
    /// The same report as a standalone HTML page; `None` (the default) when it keeps none.
    fn report_html(&self) -> Option<String> {
        None
    }
}
