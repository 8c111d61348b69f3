//! What a perf report holds: plain serializable data, the same for the HTML page and the JSON
//! file (`format: "punie-perf/1"`). Durations are milliseconds (with microsecond precision);
//! times are milliseconds since the recording started unless a field says otherwise.
//!
//! Only the data lives here: the page is made in `html.rs` ([`PerfReport::to_html`]) and the
//! files are written in `files.rs` ([`PerfReport::write_to`]); they depend on these types, never
//! the other way round.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `format` field of every report this version writes.
pub const REPORT_FORMAT: &str = "punie-perf/1";

/// Everything a [`PerfRecorder`](super::PerfRecorder) measured, ready to render.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PerfReport {
    /// Always [`REPORT_FORMAT`] for this layout.
    pub format: String,
    /// The Punie version that wrote the report.
    pub punie_version: String,
    /// When the report was made (UTC, RFC 3339).
    pub generated_at: String,
    /// When recording started (UTC, RFC 3339).
    pub recording_started_at: String,
    /// How long the recorder had been running, in ms.
    pub recorded_ms: f64,
    /// `None` for the whole recorder, or the one session the report covers.
    pub session: Option<String>,
    /// Totals over every turn recorded (including sessions no longer kept in detail).
    pub totals: Totals,
    /// Where the time of finished turns went.
    pub split: TimeSplit,
    /// One row per model (as the model adapter describes itself).
    pub models: Vec<ModelStats>,
    /// One row per tool and provider.
    pub tools: Vec<ToolStats>,
    /// Tool calls grouped by provider: the editor, the local sandbox, MCP servers, bridges.
    pub providers: Vec<GroupStats>,
    /// Requests to the editor, by ACP method (permission prompts are under `waiting`).
    pub editor_methods: Vec<GroupStats>,
    /// Time the person took to answer permission prompts.
    pub waiting: DurationStats,
    /// The sessions kept in detail, oldest first.
    pub sessions: Vec<SessionReport>,
    /// The bounds the recorder keeps its raw samples within.
    pub limits: Limits,
}

/// Counts and token totals.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Totals {
    /// Sessions seen.
    pub sessions: u64,
    /// Sessions whose detail was dropped to stay within [`Limits::sessions`].
    pub sessions_retired: u64,
    /// Prompt turns finished.
    pub turns: u64,
    /// Turns that ended with an error (the model server failed).
    pub turns_failed: u64,
    /// Model requests.
    pub model_requests: u64,
    /// Tool calls.
    pub tool_calls: u64,
    /// Requests to the editor (not counting permission prompts).
    pub editor_requests: u64,
    /// Permission prompts answered.
    pub permission_prompts: u64,
    /// Prompt tokens, as the servers reported them.
    pub prompt_tokens: u64,
    /// Completion tokens, as the servers reported them.
    pub completion_tokens: u64,
    /// Completion tokens per second of generation (after the first token), over the requests
    /// that reported usage.
    pub tokens_per_second: Option<f64>,
    /// Prompt tokens the servers took from their prompt cache (of `prompt_tokens`), over the
    /// requests that said.
    #[serde(default)]
    pub cached_tokens: u64,
    /// Prompt tokens read per second, as the servers measured it (llama.cpp's `timings`),
    /// over the requests that said.
    #[serde(default)]
    pub prompt_tokens_per_second: Option<f64>,
    /// Completion tokens per second of generation as the servers measured it (llama.cpp's
    /// `timings`), over the requests that said.
    #[serde(default)]
    pub server_tokens_per_second: Option<f64>,
    /// Tool calls read from the answers' text rather than sent structured, by the shape they
    /// were written in (`bare_json`, `fenced_json`, `tool_call_tag`…).
    #[serde(default)]
    pub recovered_calls: BTreeMap<String, u64>,
    /// Raw samples dropped to stay within [`Limits`] (their counts and durations are still in
    /// every total and table).
    pub dropped_events: u64,
    /// Turn summaries dropped to stay within [`Limits::turns_per_session`].
    pub dropped_turns: u64,
}

/// How the time of turns divides.
///
/// `tool_ms` is the tools' own time: editor round trips made during a tool call are counted
/// under `editor_ms` instead, and permission prompts under `waiting_ms`. `other_ms` is the rest
/// of the turn: Punie itself, waiting for tools to load, and gaps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimeSplit {
    /// The whole turns.
    pub turn_ms: f64,
    /// Model requests, from sending to the end of the stream.
    pub model_ms: f64,
    /// Tool calls, minus the editor round trips inside them.
    pub tool_ms: f64,
    /// Editor round trips (`fs/*`, `terminal/*`, …).
    pub editor_ms: f64,
    /// Waiting for the person to answer permission prompts.
    pub waiting_ms: f64,
    /// Everything else.
    pub other_ms: f64,
}

/// Count, errors and the distribution of durations.
///
/// Percentiles of the whole-recorder report come from log histograms (within about 6%); those
/// of a one-session report from its raw samples the same way.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DurationStats {
    /// How many.
    pub count: u64,
    /// How many failed.
    pub errors: u64,
    /// Their total duration.
    pub total_ms: f64,
    /// Their mean duration.
    pub mean_ms: f64,
    /// The median.
    pub p50_ms: f64,
    /// The 95th percentile.
    pub p95_ms: f64,
    /// The longest.
    pub max_ms: f64,
}

/// One model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelStats {
    /// The model, as its adapter describes itself (e.g. `qwen3-8b at http://…/v1`).
    pub model: String,
    /// The model name part of `model`.
    pub name: String,
    /// The server part of `model`, when it names one.
    pub server: Option<String>,
    /// Whole requests (errors: failed or cancelled ones).
    pub requests: DurationStats,
    /// Time to the first streamed event.
    pub time_to_first_token: DurationStats,
    /// Prompt tokens reported.
    pub prompt_tokens: u64,
    /// Completion tokens reported.
    pub completion_tokens: u64,
    /// Completion tokens per second of generation, over the requests that reported usage.
    pub tokens_per_second: Option<f64>,
    /// Prompt tokens taken from the server's cache.
    #[serde(default)]
    pub cached_tokens: u64,
    /// Prompt tokens read per second, as the server measured it.
    #[serde(default)]
    pub prompt_tokens_per_second: Option<f64>,
    /// Completion tokens per second of generation, as the server measured it.
    #[serde(default)]
    pub server_tokens_per_second: Option<f64>,
}

/// One tool (on one provider).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolStats {
    /// The tool's name.
    pub name: String,
    /// Where it ran: `editor`, `local`, `mcp`, `bridged`…
    pub provider: String,
    /// Its calls (permission waits excluded).
    pub calls: DurationStats,
}

/// A group of calls under one key (a provider, an editor method).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GroupStats {
    /// The key.
    pub key: String,
    /// The calls.
    pub calls: DurationStats,
}

/// One session kept in detail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionReport {
    /// The session id.
    pub id: String,
    /// When it was first seen.
    pub first_seen_ms: f64,
    /// Turns finished in it (some may have been dropped, see `dropped_turns`).
    pub turn_count: u64,
    /// True once the agent closed it (its connection ended).
    pub closed: bool,
    /// Raw samples dropped from it.
    pub dropped_events: u64,
    /// Turn summaries dropped from it.
    pub dropped_turns: u64,
    /// Its turns kept, in order.
    pub turns: Vec<TurnReport>,
}

/// One prompt turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TurnReport {
    /// The session it ran in.
    pub session: String,
    /// Its number in the session, from 1.
    pub number: u64,
    /// When it started.
    pub start_ms: f64,
    /// How long it took.
    pub duration_ms: f64,
    /// `end_turn`, `max_tokens`, `max_turn_requests`, `cancelled`, or `failed` (the model
    /// server failed).
    pub stop: String,
    /// Where its time went.
    pub split: TimeSplit,
    /// Model requests.
    pub model_requests: u64,
    /// Tool calls.
    pub tool_calls: u64,
    /// Editor requests (not counting permission prompts).
    pub editor_requests: u64,
    /// Permission prompts.
    pub permission_prompts: u64,
    /// Prompt tokens reported.
    pub prompt_tokens: u64,
    /// Completion tokens reported.
    pub completion_tokens: u64,
    /// Completion tokens per second of generation, when usage was reported.
    pub tokens_per_second: Option<f64>,
    /// Prompt tokens the server took from its cache, over the requests that said.
    #[serde(default)]
    pub cached_tokens: u64,
    /// What happened in it, in order of start.
    pub spans: Vec<Span>,
    /// False when some of its spans were dropped to stay within [`Limits`].
    pub spans_complete: bool,
}

/// What a span measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SpanKind {
    /// A model request.
    Model,
    /// A tool call.
    Tool,
    /// A request to the editor.
    Editor,
    /// A permission prompt, waiting for the person.
    Waiting,
}

/// One timed thing inside a turn.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Span {
    /// What it is.
    pub kind: SpanKind,
    /// The model, tool or editor method (for a permission prompt: the tool asking).
    pub label: String,
    /// For a tool call: where it ran.
    pub provider: Option<String>,
    /// When it started, from the start of its turn.
    pub start_ms: f64,
    /// How long it took.
    pub duration_ms: f64,
    /// False when it failed (or was cancelled).
    pub ok: bool,
    /// For a model request: time to the first token.
    pub time_to_first_token_ms: Option<f64>,
    /// For a model request: prompt tokens, when reported.
    pub prompt_tokens: Option<u64>,
    /// For a model request: completion tokens, when reported.
    pub completion_tokens: Option<u64>,
    /// For a model request: completion tokens per second of generation.
    pub tokens_per_second: Option<f64>,
    /// For a model request: prompt tokens the server took from its cache, when it said.
    #[serde(default)]
    pub cached_tokens: Option<u64>,
    /// For a model request: prompt tokens read per second, as the server measured it.
    #[serde(default)]
    pub prompt_tokens_per_second: Option<f64>,
    /// For a model request: completion tokens per second, as the server measured it.
    #[serde(default)]
    pub server_tokens_per_second: Option<f64>,
}

/// The bounds on what the recorder keeps, so a long-running agent does not grow without end.
/// Counts, totals and the percentile histograms always cover everything.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Limits {
    /// Raw samples (spans) kept per session: the most recent ones.
    pub events_per_session: usize,
    /// Raw samples kept in all (the least recently active session loses its oldest first).
    pub events: usize,
    /// Turn summaries kept per session: the most recent ones.
    pub turns_per_session: usize,
    /// Sessions kept in detail: the least recently active closed (else idle) one is retired
    /// first.
    pub sessions: usize,
}

impl PerfReport {
    /// The report as pretty-printed JSON, for scripts.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report as a JSON value.
    pub fn to_json_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Reads a report written by [`PerfReport::to_json`].
    pub fn from_json(json: &str) -> serde_json::Result<Self> {
        serde_json::from_str(json)
    }

    /// Every turn of every session, in order of start.
    pub fn turns(&self) -> Vec<&TurnReport> {
        let mut turns: Vec<&TurnReport> = self.sessions.iter().flat_map(|s| &s.turns).collect();
        turns.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
        turns
    }
}
