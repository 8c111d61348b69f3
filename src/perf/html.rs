//! The HTML page of a report: geometry and number formatting here, markup in `report.html`
//! (a minijinja template rendered with HTML auto-escaping, so every name a model, tool or
//! editor chose is escaped). The page has embedded CSS, inline SVG charts, no scripts and a
//! Content-Security-Policy that forbids loading anything. [`PerfReport::to_html`] is defined
//! here, next to what it needs, so the report's data types know nothing of rendering.

use serde::Serialize;

use super::report::{DurationStats, PerfReport, Span, SpanKind, TimeSplit, TurnReport};

/// The template; its name ends in `.html`, which turns HTML auto-escaping on.
const TEMPLATE: &str = include_str!("report.html");
const TEMPLATE_NAME: &str = "report.html";

/// Turns drawn as waterfalls (the most recent).
pub(crate) const WATERFALL_TURNS: usize = 30;
/// Spans drawn per waterfall.
pub(crate) const WATERFALL_ROWS: usize = 150;
/// Turns in the trend charts (the most recent).
pub(crate) const TREND_TURNS: usize = 200;

/// Chart width (SVG user units; the charts scale to the page).
const WIDTH: f64 = 1100.0;
const LABEL_WIDTH: f64 = 280.0;
const RIGHT_PAD: f64 = 30.0;

impl PerfReport {
    /// The report as a standalone HTML page: no scripts, no external assets, everything it
    /// shows escaped.
    pub fn to_html(&self) -> String {
        render(self)
    }
}

/// Renders `report` as a standalone page.
fn render(report: &PerfReport) -> String {
    let page = Page::new(report);
    let mut env = minijinja::Environment::new();
    let rendered = env
        .add_template(TEMPLATE_NAME, TEMPLATE)
        .and_then(|()| env.get_template(TEMPLATE_NAME))
        .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&page))));
    match rendered {
        Ok(html) => html,
        Err(error) => {
            tracing::error!(%error, "cannot render the perf report");
            fallback_page(&error.to_string())
        }
    }
}

/// A page saying the report could not be rendered (a bug in the template).
fn fallback_page(error: &str) -> String {
    let escaped = error
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Punie perf report</title></head>\
         <body><h1>Punie perf report</h1><p>The report could not be rendered: {escaped}</p></body></html>"
    )
}

/// A duration for people: `0.042 ms`, `3.14 ms`, `250.0 ms`, `1.25 s`, `2 min 5 s`.
pub(crate) fn duration(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return "–".to_owned();
    }
    if ms < 1.0 {
        format!("{ms:.3} ms")
    } else if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else if ms < 60_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        let secs = (ms / 1000.0).round() as u64;
        format!("{} min {} s", secs / 60, secs % 60)
    }
}

/// A duration on an axis: like [`duration`], but a plain `0` at the origin.
fn axis_label(ms: f64) -> String {
    if ms == 0.0 {
        "0".to_owned()
    } else {
        duration(ms)
    }
}

fn percent(part: f64, whole: f64) -> String {
    if whole <= 0.0 {
        "0%".to_owned()
    } else {
        format!("{:.0}%", part / whole * 100.0)
    }
}

fn num(value: f64) -> String {
    format!("{value:.1}")
}

fn rate(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"))
}

/// A "nice" axis step (1, 2 or 5 × 10ⁿ) giving at most `max_ticks` ticks over `span`.
fn tick_step(span: f64, max_ticks: f64) -> f64 {
    if span <= 0.0 {
        return 1.0;
    }
    let raw = span / max_ticks;
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

fn ticks(span_ms: f64, x0: f64, width: f64, max_ticks: f64) -> Vec<Tick> {
    let step = tick_step(span_ms, max_ticks);
    let mut ticks = Vec::new();
    let mut at = 0.0;
    while at <= span_ms + step * 1e-9 && ticks.len() <= 20 {
        ticks.push(Tick {
            x: num(x0 + at / span_ms.max(f64::MIN_POSITIVE) * width),
            label: axis_label(at),
        });
        at += step;
    }
    ticks
}

#[derive(Serialize)]
struct Tick {
    x: String,
    label: String,
}

#[derive(Serialize)]
struct Card {
    label: &'static str,
    value: String,
}

#[derive(Serialize)]
struct Segment {
    class: &'static str,
    label: &'static str,
    x: String,
    width: String,
    value: String,
    share: String,
}

#[derive(Serialize)]
struct Row {
    y: String,
    text_y: String,
    x: String,
    width: String,
    class: &'static str,
    /// Shortened to fit the label column; the tooltip has it whole.
    label: String,
    tooltip: String,
}

#[derive(Serialize)]
struct Waterfall {
    id: String,
    heading: String,
    summary: String,
    height: String,
    axis_y: String,
    rows: Vec<Row>,
    ticks: Vec<Tick>,
    note: Option<String>,
}

#[derive(Serialize)]
struct StatRow {
    name: String,
    provider: String,
    count: u64,
    mean: String,
    p50: String,
    p95: String,
    max: String,
    total: String,
    errors: u64,
}

#[derive(Serialize)]
struct ModelRow {
    name: String,
    server: String,
    requests: u64,
    failed: u64,
    ttft_p50: String,
    ttft_p95: String,
    total_p50: String,
    tokens_per_second: String,
    prompt_tokens: u64,
    completion_tokens: u64,
    cached_tokens: String,
    prompt_tokens_per_second: String,
    server_tokens_per_second: String,
}

#[derive(Serialize)]
struct HBar {
    y: String,
    text_y: String,
    width: String,
    value_x: String,
    label: String,
    value: String,
}

#[derive(Serialize)]
struct TrendBar {
    class: &'static str,
    x: String,
    y: String,
    width: String,
    height: String,
    tooltip: String,
}

#[derive(Serialize)]
struct Dot {
    x: String,
    y: String,
    tooltip: String,
}

#[derive(Serialize)]
struct Trends {
    turns: usize,
    bars: Vec<TrendBar>,
    y_ticks: Vec<Tick>,
    rate_points: String,
    rate_dots: Vec<Dot>,
    rate_ticks: Vec<Tick>,
}

#[derive(Serialize)]
struct Page<'a> {
    title: String,
    scope: String,
    report: &'a PerfReport,
    models_named: String,
    servers: String,
    cards: Vec<Card>,
    split: Vec<Segment>,
    split_total: String,
    waterfalls: Vec<Waterfall>,
    waterfall_note: Option<String>,
    tools: Vec<StatRow>,
    providers: Vec<StatRow>,
    provider_bars: Vec<HBar>,
    provider_chart_height: String,
    methods: Vec<StatRow>,
    waiting: StatRow,
    models: Vec<ModelRow>,
    trends: Option<Trends>,
    notes: Vec<String>,
}

const CATEGORIES: [(&str, &str); 5] = [
    ("model", "Model"),
    ("tool", "Tools"),
    ("editor", "Editor"),
    ("waiting", "Waiting for you"),
    ("other", "Other"),
];

fn category_values(split: &TimeSplit) -> [f64; 5] {
    [
        split.model_ms,
        split.tool_ms,
        split.editor_ms,
        split.waiting_ms,
        split.other_ms,
    ]
}

fn stat_row(name: &str, provider: &str, stats: &DurationStats) -> StatRow {
    StatRow {
        name: name.to_owned(),
        provider: provider.to_owned(),
        count: stats.count,
        mean: duration(stats.mean_ms),
        p50: duration(stats.p50_ms),
        p95: duration(stats.p95_ms),
        max: duration(stats.max_ms),
        total: duration(stats.total_ms),
        errors: stats.errors,
    }
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

fn span_class(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Model => "model",
        SpanKind::Tool => "tool",
        SpanKind::Editor => "editor",
        SpanKind::Waiting => "waiting",
    }
}

fn span_label(span: &Span) -> String {
    match (span.kind, &span.provider) {
        (SpanKind::Tool, Some(provider)) => format!("{} ({provider})", span.label),
        (SpanKind::Waiting, _) => format!("permission: {}", span.label),
        (SpanKind::Model, _) => match span.label.rsplit_once(" at ") {
            Some((name, _)) => name.to_owned(),
            None => span.label.clone(),
        },
        _ => span.label.clone(),
    }
}

fn span_tooltip(span: &Span) -> String {
    let mut text = format!(
        "{}: {} from {}{}",
        span_label(span),
        duration(span.duration_ms),
        duration(span.start_ms.max(0.0)),
        if span.ok { "" } else { ", failed" }
    );
    if let Some(ttft) = span.time_to_first_token_ms {
        text.push_str(&format!(", first token after {}", duration(ttft)));
    }
    if let (Some(prompt), Some(completion)) = (span.prompt_tokens, span.completion_tokens) {
        text.push_str(&format!(
            ", {prompt} prompt + {completion} completion tokens"
        ));
    }
    if let Some(cached) = span.cached_tokens {
        text.push_str(&format!(", {cached} prompt tokens from the server's cache"));
    }
    if let Some(rate) = span.tokens_per_second {
        text.push_str(&format!(", {rate:.1} tokens/s"));
    }
    if let Some(rate) = span.prompt_tokens_per_second {
        text.push_str(&format!(", prompt read at {rate:.1} tokens/s"));
    }
    if let Some(rate) = span.server_tokens_per_second {
        text.push_str(&format!(", {rate:.1} tokens/s by the server's clock"));
    }
    text
}

fn waterfall(turn: &TurnReport) -> Waterfall {
    const ROW: f64 = 18.0;
    const AXIS: f64 = 26.0;
    let chart = WIDTH - LABEL_WIDTH - RIGHT_PAD;
    let span_ms = turn
        .spans
        .iter()
        .map(|s| s.start_ms + s.duration_ms)
        .fold(turn.duration_ms, f64::max)
        .max(0.001);
    let scale = |ms: f64| ms.max(0.0) / span_ms * chart;
    let rows: Vec<Row> = turn
        .spans
        .iter()
        .take(WATERFALL_ROWS)
        .enumerate()
        .map(|(i, span)| {
            let y = AXIS + i as f64 * ROW;
            Row {
                y: num(y + 3.0),
                text_y: num(y + 13.0),
                x: num(LABEL_WIDTH + scale(span.start_ms)),
                width: num(scale(span.duration_ms).max(1.0)),
                class: span_class(span.kind),
                label: shorten(&span_label(span), 44),
                tooltip: span_tooltip(span),
            }
        })
        .collect();
    let mut notes = Vec::new();
    if turn.spans.len() > WATERFALL_ROWS {
        notes.push(format!(
            "Showing the first {WATERFALL_ROWS} of {} spans.",
            turn.spans.len()
        ));
    }
    if !turn.spans_complete {
        notes.push("Older spans of this turn were dropped to keep memory bounded.".to_owned());
    }
    let split = &turn.split;
    Waterfall {
        id: format!("turn-{}-{}", turn.session, turn.number),
        heading: format!("Turn {} of {}", turn.number, turn.session),
        summary: format!(
            "{} · {} · model {} · tools {} · editor {} · waiting {} · other {}",
            duration(turn.duration_ms),
            turn.stop,
            duration(split.model_ms),
            duration(split.tool_ms),
            duration(split.editor_ms),
            duration(split.waiting_ms),
            duration(split.other_ms)
        ),
        height: num(AXIS + rows.len().max(1) as f64 * ROW + 6.0),
        axis_y: num(AXIS - 8.0),
        rows,
        ticks: ticks(span_ms, LABEL_WIDTH, chart, 8.0),
        note: (!notes.is_empty()).then(|| notes.join(" ")),
    }
}

fn trends(turns: &[&TurnReport]) -> Option<Trends> {
    if turns.is_empty() {
        return None;
    }
    const HEIGHT: f64 = 180.0;
    const TOP: f64 = 10.0;
    let left = 70.0;
    let chart = WIDTH - left - RIGHT_PAD;
    let longest = turns
        .iter()
        .map(|t| t.duration_ms)
        .fold(0.0, f64::max)
        .max(0.001);
    let step = chart / turns.len() as f64;
    let bar_width = (step * 0.8).max(1.0);
    let mut bars = Vec::new();
    for (i, turn) in turns.iter().enumerate() {
        let mut bottom = TOP + HEIGHT;
        let x = left + i as f64 * step + (step - bar_width) / 2.0;
        for ((class, label), value) in CATEGORIES.iter().zip(category_values(&turn.split)) {
            let height = value / longest * HEIGHT;
            if height <= 0.0 {
                continue;
            }
            bottom -= height;
            bars.push(TrendBar {
                class,
                x: num(x),
                y: num(bottom),
                width: num(bar_width),
                height: num(height.max(0.5)),
                tooltip: format!(
                    "turn {} of {}: {label} {} of {}",
                    turn.number,
                    turn.session,
                    duration(value),
                    duration(turn.duration_ms)
                ),
            });
        }
    }
    let y_step = tick_step(longest, 4.0);
    let y_ticks = (0..=4)
        .map(|k| k as f64 * y_step)
        .take_while(|v| *v <= longest * 1.0001)
        .map(|v| Tick {
            x: num(TOP + HEIGHT - v / longest * HEIGHT),
            label: axis_label(v),
        })
        .collect();
    let rated: Vec<(usize, f64, &TurnReport)> = turns
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.tokens_per_second.map(|r| (i, r, *t)))
        .collect();
    let top_rate = rated
        .iter()
        .map(|(_, r, _)| *r)
        .fold(0.0, f64::max)
        .max(0.1);
    let point = |i: usize, r: f64| {
        (
            left + i as f64 * step + step / 2.0,
            TOP + HEIGHT - r / top_rate * HEIGHT,
        )
    };
    let rate_points = rated
        .iter()
        .map(|(i, r, _)| {
            let (x, y) = point(*i, *r);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    let rate_dots = rated
        .iter()
        .map(|(i, r, t)| {
            let (x, y) = point(*i, *r);
            Dot {
                x: num(x),
                y: num(y),
                tooltip: format!("turn {} of {}: {r:.1} tokens/s", t.number, t.session),
            }
        })
        .collect();
    let rate_step = tick_step(top_rate, 4.0);
    let rate_ticks = (0..=4)
        .map(|k| k as f64 * rate_step)
        .take_while(|v| *v <= top_rate * 1.0001)
        .map(|v| Tick {
            x: num(TOP + HEIGHT - v / top_rate * HEIGHT),
            label: format!("{v:.0}"),
        })
        .collect();
    Some(Trends {
        turns: turns.len(),
        bars,
        y_ticks,
        rate_points,
        rate_dots,
        rate_ticks,
    })
}

impl<'a> Page<'a> {
    fn new(report: &'a PerfReport) -> Self {
        let totals = &report.totals;
        let mut models_named: Vec<String> = report.models.iter().map(|m| m.name.clone()).collect();
        models_named.sort();
        models_named.dedup();
        let mut servers: Vec<String> = report
            .models
            .iter()
            .filter_map(|m| m.server.clone())
            .collect();
        servers.sort();
        servers.dedup();
        let cards = vec![
            Card {
                label: "Sessions",
                value: totals.sessions.to_string(),
            },
            Card {
                label: "Turns",
                value: totals.turns.to_string(),
            },
            Card {
                label: "Turn time",
                value: duration(report.split.turn_ms),
            },
            Card {
                label: "Model requests",
                value: totals.model_requests.to_string(),
            },
            Card {
                label: "Tool calls",
                value: totals.tool_calls.to_string(),
            },
            Card {
                label: "Editor requests",
                value: totals.editor_requests.to_string(),
            },
            Card {
                label: "Permission prompts",
                value: totals.permission_prompts.to_string(),
            },
            Card {
                label: "Tokens (prompt / completion)",
                value: format!("{} / {}", totals.prompt_tokens, totals.completion_tokens),
            },
            Card {
                label: "Tokens per second",
                value: rate(totals.tokens_per_second),
            },
            Card {
                label: "Prompt tokens from the server's cache",
                value: format!(
                    "{} ({})",
                    totals.cached_tokens,
                    percent(totals.cached_tokens as f64, totals.prompt_tokens as f64)
                ),
            },
            Card {
                label: "Prompt read, tokens per second (server)",
                value: rate(totals.prompt_tokens_per_second),
            },
            Card {
                label: "Generation, tokens per second (server)",
                value: rate(totals.server_tokens_per_second),
            },
            Card {
                label: "Tool calls read from text, by shape",
                value: if totals.recovered_calls.is_empty() {
                    "none".to_owned()
                } else {
                    totals
                        .recovered_calls
                        .iter()
                        .map(|(shape, count)| format!("{shape} {count}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            },
        ];
        let whole = report.split.turn_ms;
        let mut x = 0.0;
        let split = CATEGORIES
            .iter()
            .zip(category_values(&report.split))
            .map(|((class, label), value)| {
                let width = if whole > 0.0 {
                    value / whole * WIDTH
                } else {
                    0.0
                };
                let segment = Segment {
                    class,
                    label,
                    x: num(x),
                    width: num(width),
                    value: duration(value),
                    share: percent(value, whole),
                };
                x += width;
                segment
            })
            .collect();

        let turns = report.turns();
        let shown = &turns[turns.len().saturating_sub(WATERFALL_TURNS)..];
        let waterfalls = shown.iter().rev().map(|t| waterfall(t)).collect();
        let waterfall_note = (turns.len() > WATERFALL_TURNS).then(|| {
            format!(
                "Showing the {WATERFALL_TURNS} most recent of {} turns kept; the JSON file has them all.",
                turns.len()
            )
        });
        let trend_turns = &turns[turns.len().saturating_sub(TREND_TURNS)..];

        let tools = report
            .tools
            .iter()
            .map(|t| stat_row(&t.name, &t.provider, &t.calls))
            .collect();
        let providers: Vec<StatRow> = report
            .providers
            .iter()
            .map(|p| stat_row(&p.key, &p.key, &p.calls))
            .collect();
        let slowest = report
            .providers
            .iter()
            .map(|p| p.calls.mean_ms)
            .fold(0.0, f64::max)
            .max(0.001);
        let provider_bars = report
            .providers
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let width = (p.calls.mean_ms / slowest * (WIDTH - 420.0)).max(1.0);
                HBar {
                    y: num(i as f64 * 24.0 + 4.0),
                    text_y: num(i as f64 * 24.0 + 18.0),
                    width: num(width),
                    value_x: num(110.0 + width + 8.0),
                    label: p.key.clone(),
                    value: format!(
                        "{} mean over {} calls",
                        duration(p.calls.mean_ms),
                        p.calls.count
                    ),
                }
            })
            .collect();
        let methods = report
            .editor_methods
            .iter()
            .map(|m| stat_row(&m.key, "editor", &m.calls))
            .collect();
        let models = report
            .models
            .iter()
            .map(|m| ModelRow {
                name: m.name.clone(),
                server: m.server.clone().unwrap_or_else(|| "–".to_owned()),
                requests: m.requests.count,
                failed: m.requests.errors,
                ttft_p50: duration(m.time_to_first_token.p50_ms),
                ttft_p95: duration(m.time_to_first_token.p95_ms),
                total_p50: duration(m.requests.p50_ms),
                tokens_per_second: rate(m.tokens_per_second),
                prompt_tokens: m.prompt_tokens,
                completion_tokens: m.completion_tokens,
                cached_tokens: format!(
                    "{} ({})",
                    m.cached_tokens,
                    percent(m.cached_tokens as f64, m.prompt_tokens as f64)
                ),
                prompt_tokens_per_second: rate(m.prompt_tokens_per_second),
                server_tokens_per_second: rate(m.server_tokens_per_second),
            })
            .collect();
        let mut notes = Vec::new();
        if totals.dropped_events > 0 || totals.dropped_turns > 0 || totals.sessions_retired > 0 {
            notes.push(format!(
                "To bound memory, {} spans, {} turn summaries and the detail of {} sessions were \
                 dropped; every count, total and percentile still includes them.",
                totals.dropped_events, totals.dropped_turns, totals.sessions_retired
            ));
        }
        Page {
            title: match &report.session {
                Some(session) => format!("Punie perf report: {session}"),
                None => "Punie perf report".to_owned(),
            },
            scope: match &report.session {
                Some(session) => format!("session {session}"),
                None => "all sessions".to_owned(),
            },
            report,
            models_named: if models_named.is_empty() {
                "none yet".to_owned()
            } else {
                models_named.join(", ")
            },
            servers: if servers.is_empty() {
                "–".to_owned()
            } else {
                servers.join(", ")
            },
            cards,
            split,
            split_total: duration(whole),
            waterfalls,
            waterfall_note,
            tools,
            provider_chart_height: num(report.providers.len().max(1) as f64 * 24.0 + 8.0),
            providers,
            provider_bars,
            methods,
            waiting: stat_row("permission prompts", "", &report.waiting),
            models,
            trends: trends(trend_turns),
            notes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0.0421), "0.042 ms");
        assert_eq!(duration(3.456), "3.46 ms");
        assert_eq!(duration(250.0), "250.0 ms");
        assert_eq!(duration(1250.0), "1.25 s");
        assert_eq!(duration(125_000.0), "2 min 5 s");
        assert_eq!(duration(f64::NAN), "–");
    }

    #[test]
    fn axis_steps_are_round() {
        assert_eq!(tick_step(1000.0, 8.0), 200.0);
        assert_eq!(tick_step(7.0, 8.0), 1.0);
        assert_eq!(tick_step(0.3, 4.0), 0.1);
        let ticks = ticks(1000.0, 0.0, 100.0, 8.0);
        assert_eq!(ticks.len(), 6);
        assert_eq!(ticks.last().unwrap().x, "100.0");
    }
}
