//! The figures of one task (from the editor's record, Punie's perf report, Punie's log and the
//! server's log), the table, and the JSON.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_client_protocol::v1::schema::ToolCallStatus;
use serde_json::{Value, json};

use crate::Args;
use crate::editor::Record;
use crate::server::ServerTimings;

/// Punie's log line for a tool call read from the answer's text (bare or fenced JSON, tags):
/// a call "recovered from an unusual shape" (`src/llm/markup/scan.rs`).
const RECOVERED_LINE: &str = "tool call read from the answer's text";

/// One task's figures.
#[derive(Debug, serde::Serialize)]
pub struct TaskResult {
    pub task: String,
    pub success: bool,
    /// What the check found (why it passed or failed).
    pub detail: String,
    /// ACP's stop reason, `timeout` or `error`.
    pub stop: String,
    /// Tool calls Punie announced to the editor.
    pub tool_calls: usize,
    /// Of those, read from the answer's text rather than the server's structured calls.
    pub recovered: usize,
    /// Of those, ended `failed`.
    pub failed: usize,
    /// The tools' titles, in order.
    pub tools: Vec<String>,
    /// Permission prompts answered.
    pub permissions: usize,
    /// Model requests (perf report).
    pub model_requests: Option<u64>,
    /// Time to first token of the turn's first model request (perf report).
    pub first_token_ms: Option<f64>,
    /// From the prompt to the editor's first session update.
    pub first_update_ms: Option<f64>,
    /// From the prompt to its answer, as the editor saw it.
    pub wall_ms: f64,
    /// The turn's time less model requests, editor round trips and permission waits: Punie's
    /// own work and its local tools (perf report: `split.tool_ms + split.other_ms`).
    pub punie_ms: Option<f64>,
    /// The perf report's time split of the turn, as it is.
    pub split: Option<Value>,
    /// Prompt tokens over the turn's requests (perf report, from the server's `usage`).
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// Cached prompt tokens, when the perf report has such a field.
    pub cached_tokens_reported: Option<u64>,
    /// llama-server's own log for the task's requests.
    pub server: ServerTimings,
    /// Prompt tokens the server did not evaluate: `prompt_tokens − server.prompt_evaluated`.
    pub cached_tokens_server: Option<u64>,
    /// The 1-minute load average when the task started.
    pub load: f64,
    /// The answer's text (at most 400 characters).
    pub answer: String,
}

#[allow(clippy::too_many_arguments)]
pub fn task_result(
    task: &str,
    stop: &str,
    checked: Result<String, String>,
    wall: Duration,
    load: f64,
    record: &Record,
    perf: Option<&Value>,
    logs: &Path,
    server: ServerTimings,
    answer: String,
) -> TaskResult {
    let calls = record.tool_calls();
    let failed = calls
        .iter()
        .filter(|(_, s)| *s == Some(ToolCallStatus::Failed))
        .count();
    let turn = perf.and_then(|p| p["sessions"][0]["turns"][0].as_object().cloned());
    let turn = turn.map(Value::Object);
    let model_spans: Vec<&Value> = turn
        .as_ref()
        .and_then(|t| t["spans"].as_array())
        .map(|spans| spans.iter().filter(|s| s["kind"] == "model").collect())
        .unwrap_or_default();
    let totals = perf.map(|p| &p["totals"]);
    let split = turn.as_ref().map(|t| t["split"].clone());
    let prompt_tokens = totals.and_then(|t| t["prompt_tokens"].as_u64());
    let (success, detail) = match checked {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    };
    TaskResult {
        task: task.to_owned(),
        success,
        detail,
        stop: stop.to_owned(),
        tool_calls: calls.len(),
        recovered: count_lines(logs, RECOVERED_LINE),
        failed,
        tools: calls.into_iter().map(|(title, _)| title).collect(),
        permissions: record.permissions_asked,
        model_requests: totals.and_then(|t| t["model_requests"].as_u64()),
        first_token_ms: model_spans
            .first()
            .and_then(|s| s["time_to_first_token_ms"].as_f64()),
        first_update_ms: record.first_update().map(|d| d.as_secs_f64() * 1000.0),
        wall_ms: wall.as_secs_f64() * 1000.0,
        punie_ms: split
            .as_ref()
            .and_then(|s| Some(s["tool_ms"].as_f64()? + s["other_ms"].as_f64()?)),
        split,
        prompt_tokens,
        completion_tokens: totals.and_then(|t| t["completion_tokens"].as_u64()),
        cached_tokens_reported: cached(&model_spans, perf),
        cached_tokens_server: prompt_tokens
            .filter(|_| server.requests > 0)
            .map(|p| p.saturating_sub(server.prompt_evaluated)),
        server,
        load,
        answer: answer.chars().take(400).collect(),
    }
}

/// Cached prompt tokens from whatever field of the perf report names a cache (the report is
/// gaining llama.cpp's `timings`; the name is not settled): summed over the model spans, else
/// the totals, else the models. `None` when no such field exists.
fn cached(spans: &[&Value], perf: Option<&Value>) -> Option<u64> {
    fn field(v: &Value) -> Option<u64> {
        let object = v.as_object()?;
        let mut found = None;
        for (key, value) in object {
            if key.contains("cache") {
                if let Some(n) = value.as_u64() {
                    found = Some(found.unwrap_or(0) + n);
                } else if value.is_object() {
                    // e.g. "timings": {"cache_n": …} or "prompt_tokens_details": {"cached_tokens": …}
                    if let Some(n) = field(value) {
                        found = Some(found.unwrap_or(0) + n);
                    }
                }
            } else if value.is_object()
                && let Some(n) = field(value)
            {
                found = Some(found.unwrap_or(0) + n);
            }
        }
        found
    }
    let from_spans = spans.iter().filter_map(|s| field(s)).reduce(|a, b| a + b);
    from_spans
        .or_else(|| perf.and_then(|p| field(&p["totals"])))
        .or_else(|| {
            perf.and_then(|p| {
                p["models"]
                    .as_array()?
                    .iter()
                    .filter_map(field)
                    .reduce(|a, b| a + b)
            })
        })
}

fn count_lines(dir: &Path, needle: &str) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(needle))
                .count()
        })
        .sum()
}

/// What is wrong with Punie's stdout, if anything: every line must be a JSON-RPC 2.0 message.
pub fn stdout_problem(lines: &[String]) -> Option<String> {
    lines
        .iter()
        .find_map(|line| {
            let frame: Value = serde_json::from_str(line).ok()?;
            let ok = frame["jsonrpc"] == "2.0"
                && (frame.get("method").is_some() || frame.get("id").is_some());
            (!ok).then(|| format!("stdout line is not JSON-RPC 2.0: {}", short(line, 120)))
        })
        .or_else(|| {
            lines
                .iter()
                .find(|l| serde_json::from_str::<Value>(l).is_err())
                .map(|l| format!("stdout line is not JSON: {}", short(l, 120)))
        })
}

/// The 1-minute load average (`/proc/loadavg`), 0 where unreadable.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Now, as `yyyy-mm-dd hh:mm UTC`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

pub type ModelResults = (String, PathBuf, Vec<TaskResult>);

/// The table's caption: when, the machine's load, the score per model.
pub fn caption(started: &str, load_start: f64, load_end: f64, models: &[ModelResults]) -> String {
    let loads: Vec<f64> = models
        .iter()
        .flat_map(|(_, _, r)| r.iter().map(|t| t.load))
        .collect();
    let (low, high) = loads
        .iter()
        .fold((f64::MAX, 0.0_f64), |(l, h), x| (l.min(*x), h.max(*x)));
    let scores: Vec<String> = models
        .iter()
        .map(|(alias, _, r)| {
            let ok = r.iter().filter(|t| t.success).count();
            format!("{alias}: {ok}/{} tasks", r.len())
        })
        .collect();
    format!(
        "Real tasks, {started}, {} cores; load average (1 min) {load_start:.1} at the start, \
         {load_end:.1} at the end, {:.1}-{:.1} at the tasks' starts. {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if loads.is_empty() { 0.0 } else { low },
        high,
        scores.join("; ")
    )
}

/// The results as a Markdown table, one row per task and model.
pub fn table(caption: &str, models: &[ModelResults]) -> String {
    let secs = |ms: Option<f64>| ms.map_or("-".into(), |ms| format!("{:.1}", ms / 1000.0));
    let num = |n: Option<u64>| n.map_or("-".into(), |n| n.to_string());
    let mut out = format!(
        "{caption}\n\n| model | task | ok | tool calls made / recovered / failed | model requests \
         | first token s | first update s | wall s | Punie ms | prompt tokens | cached (report) \
         | cached (server log) | stop |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    );
    for (alias, _, results) in models {
        for r in results {
            out.push_str(&format!(
                "| {alias} | {} | {} | {} / {} / {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} |\n",
                r.task,
                if r.success { "yes" } else { "no" },
                r.tool_calls,
                r.recovered,
                r.failed,
                num(r.model_requests),
                secs(r.first_token_ms),
                secs(r.first_update_ms),
                r.wall_ms / 1000.0,
                r.punie_ms.map_or("-".into(), |ms| format!("{ms:.1}")),
                num(r.prompt_tokens),
                num(r.cached_tokens_reported),
                num(r.cached_tokens_server),
                r.stop,
            ));
        }
    }
    out.push('\n');
    for (alias, _, results) in models {
        for r in results {
            out.push_str(&format!("- {alias} {}: {}\n", r.task, r.detail));
        }
    }
    out
}

pub fn json(started: &str, caption: &str, args: &Args, models: &[ModelResults]) -> Value {
    json!({
        "format": "punie-real-tasks/1",
        "started": started,
        "caption": caption,
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "server_flags": "--jinja -np 1 -t 2 --seed 1 --temp 0 -c 8192",
        "timeout_s": args.timeout,
        "max_tokens": args.max_tokens,
        "max_turn_requests": args.max_requests,
        "models": models.iter().map(|(alias, path, results)| json!({
            "model": alias,
            "file": path.display().to_string(),
            "succeeded": results.iter().filter(|r| r.success).count(),
            "tasks": results,
        })).collect::<Vec<_>>(),
    })
}

fn short(text: &str, most: usize) -> String {
    match text.char_indices().nth(most) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
