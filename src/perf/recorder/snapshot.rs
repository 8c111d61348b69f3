//! Reports from the shards: their aggregates merged by name, each session's raw record turned
//! into turns and spans in milliseconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use super::aggregates::{Aggregates, ModelStat, Stat, merge_named, ms, round_ms};
use super::session::{Event, Kind, NONE, SessionRecord, TurnSums, generation_us};
use super::shard::{
    MAX_EVENTS, MAX_EVENTS_PER_SESSION, MAX_SESSIONS, MAX_TURNS_PER_SESSION, Names, Shard, lock,
};
use crate::agent::StopReason;
use crate::perf::calendar::rfc3339;
use crate::perf::histogram::micros;
use crate::perf::report::{
    GroupStats, Limits, ModelStats, PerfReport, REPORT_FORMAT, SessionReport, Span, SpanKind,
    TimeSplit, ToolStats, Totals, TurnReport,
};

/// A report of what `shards` hold: everything, or only the session `only`. `epoch` and
/// `started_at` are the recorder's.
pub(super) fn report(
    shards: &[Mutex<Shard>],
    epoch: Instant,
    started_at: SystemTime,
    only: Option<&str>,
) -> PerfReport {
    let mut merged: Aggregates<Arc<str>> = Aggregates::default();
    let mut sessions: Vec<(u64, u64, SessionReport)> = Vec::new();
    for shard in shards.iter() {
        let shard = lock(shard);
        let name = |id: u32| shard.names.get(id).clone();
        match only {
            None => merge_named(&mut merged, &shard.stats, &name),
            Some(id) => {
                let Some(record) = shard.sessions.get(id) else {
                    continue;
                };
                merged.sessions += 1;
                merged.dropped_events += record.dropped_events;
                merged.dropped_turns += record.dropped_turns;
                for event in &record.events {
                    merged.add_event(event, &name);
                }
                for turn in &record.turns {
                    merged.add_turn(turn);
                }
            }
        }
        for (id, record) in &shard.sessions {
            if only.is_some_and(|only| only != &**id) {
                continue;
            }
            let report = session_report(id, record, &shard.names);
            sessions.push((record.first_us, record.order, report));
        }
    }
    sessions.sort_by_key(|(first, order, _)| (*first, *order));
    assemble(
        merged,
        sessions.into_iter().map(|(_, _, s)| s).collect(),
        only,
        epoch,
        started_at,
    )
}

/// One session's report: its kept turns, each with those of its spans still held.
fn session_report(id: &str, record: &SessionRecord, names: &Names) -> SessionReport {
    let turns = record
        .turns
        .iter()
        .map(|turn| {
            let complete = turn.first_seq >= record.first_seq;
            let from = turn.first_seq.max(record.first_seq);
            let to = turn.end_seq.min(record.end_seq()).max(from);
            let spans = (from..to)
                .map(|seq| &record.events[(seq - record.first_seq) as usize])
                .map(|event| span_report(event, turn.start_us, names))
                .collect::<Vec<_>>();
            let mut spans = spans;
            spans.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
            TurnReport {
                session: id.to_owned(),
                number: turn.number,
                start_ms: round_ms(turn.start_us as f64 / 1000.0),
                duration_ms: ms(turn.dur_us),
                stop: stop_name(turn.stop).to_owned(),
                split: split_report(turn.dur_us, &turn.sums),
                model_requests: turn.sums.model_requests,
                tool_calls: turn.sums.tool_calls,
                editor_requests: turn.sums.editor_requests,
                permission_prompts: turn.sums.permission_prompts,
                prompt_tokens: turn.sums.prompt_tokens,
                completion_tokens: turn.sums.completion_tokens,
                tokens_per_second: tokens_per_second(turn.sums.completion_tokens, turn.sums.gen_us),
                cached_tokens: turn.sums.cached_tokens,
                spans,
                spans_complete: complete,
            }
        })
        .collect();
    SessionReport {
        id: id.to_owned(),
        first_seen_ms: ms(record.first_us),
        turn_count: record.turn_count,
        closed: record.closed,
        dropped_events: record.dropped_events,
        dropped_turns: record.dropped_turns,
        turns,
    }
}

/// The report around `merged` (its tables sorted) and `sessions`.
fn assemble(
    merged: Aggregates<Arc<str>>,
    sessions: Vec<SessionReport>,
    only: Option<&str>,
    epoch: Instant,
    started_at: SystemTime,
) -> PerfReport {
    let split = split_report(merged.turn_us, &merged.split);
    let mut models: Vec<ModelStats> = merged
        .models
        .iter()
        .map(|(model, stat)| {
            let (name, server) = match model.rsplit_once(" at ") {
                Some((name, server)) => (name.to_owned(), Some(server.to_owned())),
                None => (model.to_string(), None),
            };
            ModelStats {
                model: model.to_string(),
                name,
                server,
                requests: stat.requests.report(),
                time_to_first_token: stat.ttft.report(),
                prompt_tokens: stat.prompt_tokens,
                completion_tokens: stat.completion_tokens,
                tokens_per_second: tokens_per_second(stat.completion_tokens, stat.gen_us),
                cached_tokens: stat.cached_tokens,
                prompt_tokens_per_second: tokens_per_second(
                    stat.prompt_read,
                    stat.server_prompt_us,
                ),
                server_tokens_per_second: tokens_per_second(
                    stat.server_generated,
                    stat.server_gen_us,
                ),
            }
        })
        .collect();
    models.sort_by(|a, b| {
        b.requests
            .count
            .cmp(&a.requests.count)
            .then(a.model.cmp(&b.model))
    });
    let mut tools: Vec<ToolStats> = merged
        .tools
        .iter()
        .map(|((name, provider), stat)| ToolStats {
            name: name.to_string(),
            provider: provider.to_string(),
            calls: stat.report(),
        })
        .collect();
    tools.sort_by(|a, b| {
        b.calls
            .total_ms
            .total_cmp(&a.calls.total_ms)
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.provider.cmp(&b.provider))
    });
    let groups = |map: &HashMap<Arc<str>, Stat>| {
        let mut rows: Vec<GroupStats> = map
            .iter()
            .map(|(key, stat)| GroupStats {
                key: key.to_string(),
                calls: stat.report(),
            })
            .collect();
        rows.sort_by(|a, b| a.key.cmp(&b.key));
        rows
    };
    let model_requests: u64 = merged
        .models
        .values()
        .map(|m| m.requests.histogram.count())
        .sum();
    let (completion, gen_us) = merged
        .models
        .values()
        .fold((0, 0), |(t, g), m| (t + m.completion_tokens, g + m.gen_us));
    let sum = |field: fn(&ModelStat) -> u64| merged.models.values().map(field).sum::<u64>();
    let totals = Totals {
        sessions: merged.sessions,
        sessions_retired: merged.sessions_retired,
        turns: merged.turns,
        turns_failed: merged.turns_failed,
        model_requests,
        tool_calls: merged.tools.values().map(|s| s.histogram.count()).sum(),
        editor_requests: merged.methods.values().map(|s| s.histogram.count()).sum(),
        permission_prompts: merged.waiting.histogram.count(),
        prompt_tokens: merged.models.values().map(|m| m.prompt_tokens).sum(),
        completion_tokens: completion,
        tokens_per_second: tokens_per_second(completion, gen_us),
        cached_tokens: sum(|m| m.cached_tokens),
        prompt_tokens_per_second: tokens_per_second(
            sum(|m| m.prompt_read),
            sum(|m| m.server_prompt_us),
        ),
        server_tokens_per_second: tokens_per_second(
            sum(|m| m.server_generated),
            sum(|m| m.server_gen_us),
        ),
        recovered_calls: merged
            .recovered_calls
            .iter()
            .map(|(shape, count)| (shape.to_string(), *count))
            .collect(),
        dropped_events: merged.dropped_events,
        dropped_turns: merged.dropped_turns,
    };
    let now = SystemTime::now();
    PerfReport {
        format: REPORT_FORMAT.to_owned(),
        punie_version: env!("CARGO_PKG_VERSION").to_owned(),
        generated_at: rfc3339(now),
        recording_started_at: rfc3339(started_at),
        recorded_ms: ms(micros(epoch.elapsed())),
        session: only.map(str::to_owned),
        totals,
        split,
        models,
        tools,
        providers: groups(&merged.providers),
        editor_methods: groups(&merged.methods),
        waiting: merged.waiting.report(),
        sessions,
        limits: Limits {
            events_per_session: MAX_EVENTS_PER_SESSION,
            events: MAX_EVENTS,
            turns_per_session: MAX_TURNS_PER_SESSION,
            sessions: MAX_SESSIONS,
        },
    }
}

fn split_report(turn_us: u64, sums: &TurnSums) -> TimeSplit {
    let accounted = sums.model_us + sums.tool_own_us + sums.editor_us + sums.wait_us;
    TimeSplit {
        turn_ms: ms(turn_us),
        model_ms: ms(sums.model_us),
        tool_ms: ms(sums.tool_own_us),
        editor_ms: ms(sums.editor_us),
        waiting_ms: ms(sums.wait_us),
        other_ms: ms(turn_us.saturating_sub(accounted)),
    }
}

fn span_report(event: &Event, turn_start_us: i64, names: &Names) -> Span {
    let optional = |v: u32| (v != NONE).then_some(u64::from(v));
    let model = event.kind == Kind::Model;
    Span {
        kind: match event.kind {
            Kind::Model => SpanKind::Model,
            Kind::Tool => SpanKind::Tool,
            Kind::Editor => SpanKind::Editor,
            Kind::Waiting => SpanKind::Waiting,
        },
        label: names.get(event.name).to_string(),
        provider: (event.kind == Kind::Tool).then(|| names.get(event.detail).to_string()),
        start_ms: round_ms((event.start_us - turn_start_us) as f64 / 1000.0),
        duration_ms: ms(event.dur_us),
        ok: event.ok,
        time_to_first_token_ms: if model {
            optional(event.detail).map(ms)
        } else {
            None
        },
        prompt_tokens: if model {
            optional(event.prompt_tokens)
        } else {
            None
        },
        completion_tokens: if model {
            optional(event.completion_tokens)
        } else {
            None
        },
        tokens_per_second: if model && event.completion_tokens != NONE {
            tokens_per_second(u64::from(event.completion_tokens), generation_us(event))
        } else {
            None
        },
        cached_tokens: if model {
            optional(event.cached_tokens)
        } else {
            None
        },
        prompt_tokens_per_second: if model
            && event.server_prompt_us != NONE
            && event.prompt_tokens != NONE
        {
            let cached = optional(event.cached_tokens).unwrap_or(0);
            tokens_per_second(
                u64::from(event.prompt_tokens).saturating_sub(cached),
                u64::from(event.server_prompt_us),
            )
        } else {
            None
        },
        server_tokens_per_second: if model
            && event.server_gen_us != NONE
            && event.completion_tokens != NONE
        {
            tokens_per_second(
                u64::from(event.completion_tokens),
                u64::from(event.server_gen_us),
            )
        } else {
            None
        },
    }
}

fn tokens_per_second(tokens: u64, gen_us: u64) -> Option<f64> {
    (tokens > 0 && gen_us > 0)
        .then(|| (tokens as f64 * 1_000_000.0 / gen_us as f64 * 10.0).round() / 10.0)
}

fn stop_name(stop: Option<StopReason>) -> &'static str {
    match stop {
        None => "failed",
        Some(StopReason::EndTurn) => "end_turn",
        Some(StopReason::MaxTokens) => "max_tokens",
        Some(StopReason::MaxTurnRequests) => "max_turn_requests",
        Some(StopReason::Cancelled) => "cancelled",
        #[allow(unreachable_patterns)]
        Some(_) => "other",
    }
}
