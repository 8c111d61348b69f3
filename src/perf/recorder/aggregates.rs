//! Counters and histograms that cover every span and turn, dropped or not: kept per shard under
//! interned ids, merged by name when a report is made.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use super::session::{Event, Kind, NONE, TurnSummary, TurnSums, add_sums, generation_us};
use crate::perf::histogram::Histogram;
use crate::perf::report::DurationStats;

/// Durations with an error count.
#[derive(Clone, Debug, Default)]
pub(super) struct Stat {
    pub(super) histogram: Histogram,
    pub(super) errors: u64,
}

impl Stat {
    fn record(&mut self, us: u64, ok: bool) {
        self.histogram.record(us);
        self.errors += u64::from(!ok);
    }

    fn merge(&mut self, other: &Stat) {
        self.histogram.merge(&other.histogram);
        self.errors += other.errors;
    }

    pub(super) fn report(&self) -> DurationStats {
        let h = &self.histogram;
        let count = h.count();
        DurationStats {
            count,
            errors: self.errors,
            total_ms: ms(h.sum_us()),
            mean_ms: if count == 0 {
                0.0
            } else {
                round_ms(h.sum_us() as f64 / count as f64 / 1000.0)
            },
            p50_ms: round_ms(h.quantile_us(0.5) / 1000.0),
            p95_ms: round_ms(h.quantile_us(0.95) / 1000.0),
            max_ms: ms(h.max_us()),
        }
    }
}

/// One model's requests, times to first token and tokens.
#[derive(Clone, Debug, Default)]
pub(super) struct ModelStat {
    pub(super) requests: Stat,
    pub(super) ttft: Stat,
    pub(super) prompt_tokens: u64,
    pub(super) completion_tokens: u64,
    pub(super) gen_us: u64,
    pub(super) cached_tokens: u64,
    /// Prompt tokens read (not cached) by requests whose server timed it, and that time.
    pub(super) prompt_read: u64,
    pub(super) server_prompt_us: u64,
    /// Completion tokens of requests whose server timed their generation, and that time.
    pub(super) server_generated: u64,
    pub(super) server_gen_us: u64,
}

impl ModelStat {
    fn merge(&mut self, other: &ModelStat) {
        self.cached_tokens += other.cached_tokens;
        self.prompt_read += other.prompt_read;
        self.server_prompt_us += other.server_prompt_us;
        self.server_generated += other.server_generated;
        self.server_gen_us += other.server_gen_us;
        self.requests.merge(&other.requests);
        self.ttft.merge(&other.ttft);
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.gen_us += other.gen_us;
    }
}

/// Counters and histograms, keyed by name (interned ids in a shard, strings once merged).
#[derive(Clone, Debug)]
pub(super) struct Aggregates<K: Eq + Hash> {
    pub(super) sessions: u64,
    pub(super) sessions_retired: u64,
    pub(super) turns: u64,
    pub(super) turns_failed: u64,
    pub(super) split: TurnSums,
    pub(super) turn_us: u64,
    pub(super) models: HashMap<K, ModelStat>,
    pub(super) tools: HashMap<(K, K), Stat>,
    pub(super) providers: HashMap<K, Stat>,
    pub(super) methods: HashMap<K, Stat>,
    pub(super) waiting: Stat,
    /// Tool calls read from text, by shape.
    pub(super) recovered_calls: HashMap<K, u64>,
    pub(super) dropped_events: u64,
    pub(super) dropped_turns: u64,
}

impl<K: Eq + Hash> Default for Aggregates<K> {
    fn default() -> Self {
        Self {
            sessions: 0,
            sessions_retired: 0,
            turns: 0,
            turns_failed: 0,
            split: TurnSums::default(),
            turn_us: 0,
            models: HashMap::new(),
            tools: HashMap::new(),
            providers: HashMap::new(),
            methods: HashMap::new(),
            waiting: Stat::default(),
            recovered_calls: HashMap::new(),
            dropped_events: 0,
            dropped_turns: 0,
        }
    }
}

impl<K: Eq + Hash> Aggregates<K> {
    pub(super) fn add_event(&mut self, event: &Event, key: impl Fn(u32) -> K) {
        match event.kind {
            Kind::Model => {
                let stat = self.models.entry(key(event.name)).or_default();
                stat.requests.record(event.dur_us, event.ok);
                if event.detail != NONE {
                    stat.ttft.record(u64::from(event.detail), true);
                }
                if event.prompt_tokens != NONE {
                    stat.prompt_tokens += u64::from(event.prompt_tokens);
                }
                if event.completion_tokens != NONE {
                    stat.completion_tokens += u64::from(event.completion_tokens);
                    stat.gen_us += generation_us(event);
                }
                let cached = (event.cached_tokens != NONE).then_some(event.cached_tokens);
                if let Some(cached) = cached {
                    stat.cached_tokens += u64::from(cached);
                }
                if event.server_prompt_us != NONE && event.prompt_tokens != NONE {
                    let read = event.prompt_tokens.saturating_sub(cached.unwrap_or(0));
                    stat.prompt_read += u64::from(read);
                    stat.server_prompt_us += u64::from(event.server_prompt_us);
                }
                if event.server_gen_us != NONE && event.completion_tokens != NONE {
                    stat.server_generated += u64::from(event.completion_tokens);
                    stat.server_gen_us += u64::from(event.server_gen_us);
                }
            }
            Kind::Tool => {
                self.tools
                    .entry((key(event.name), key(event.detail)))
                    .or_default()
                    .record(event.dur_us, event.ok);
                self.providers
                    .entry(key(event.detail))
                    .or_default()
                    .record(event.dur_us, event.ok);
            }
            Kind::Editor => self
                .methods
                .entry(key(event.name))
                .or_default()
                .record(event.dur_us, event.ok),
            Kind::Waiting => self.waiting.record(event.dur_us, true),
        }
    }

    pub(super) fn add_turn(&mut self, turn: &TurnSummary) {
        self.turns += 1;
        self.turns_failed += u64::from(turn.stop.is_none());
        self.turn_us += turn.dur_us;
        add_sums(&mut self.split, &turn.sums);
    }
}

/// Adds a shard's aggregates into `into`, turning its interned ids into names with `name`:
/// ids differ between shards, names do not.
pub(super) fn merge_named(
    into: &mut Aggregates<Arc<str>>,
    from: &Aggregates<u32>,
    name: &impl Fn(u32) -> Arc<str>,
) {
    into.sessions += from.sessions;
    into.sessions_retired += from.sessions_retired;
    into.turns += from.turns;
    into.turns_failed += from.turns_failed;
    into.turn_us += from.turn_us;
    add_sums(&mut into.split, &from.split);
    for (id, stat) in &from.models {
        into.models.entry(name(*id)).or_default().merge(stat);
    }
    for ((tool, provider), stat) in &from.tools {
        into.tools
            .entry((name(*tool), name(*provider)))
            .or_default()
            .merge(stat);
    }
    for (id, stat) in &from.providers {
        into.providers.entry(name(*id)).or_default().merge(stat);
    }
    for (id, stat) in &from.methods {
        into.methods.entry(name(*id)).or_default().merge(stat);
    }
    into.waiting.merge(&from.waiting);
    for (id, count) in &from.recovered_calls {
        *into.recovered_calls.entry(name(*id)).or_default() += count;
    }
    into.dropped_events += from.dropped_events;
    into.dropped_turns += from.dropped_turns;
}

/// `ms` rounded to the microsecond, the precision a report carries.
pub(super) fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// Microseconds as a report's milliseconds.
pub(super) fn ms(us: u64) -> f64 {
    round_ms(us as f64 / 1000.0)
}
