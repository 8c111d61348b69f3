//! The recorder: a [`TurnObserver`] that keeps, per session, the recent raw timings and, for
//! everything, counters and histograms.
//!
//! State is split in 16 shards by session id, each behind its own mutex, so concurrent sessions
//! rarely wait for each other; an event costs one lock, a few hash lookups and a push. Names
//! (tools, methods, models) are interned per shard, so recording allocates nothing once a name
//! has been seen.
//!
//! Bounds (see [`Limits`]): each session keeps its last [`MAX_EVENTS_PER_SESSION`] spans and
//! [`MAX_TURNS_PER_SESSION`] turn summaries; all sessions together keep at most [`MAX_EVENTS`]
//! spans (the least recently active session loses its oldest first) and at most
//! [`MAX_SESSIONS`] sessions in detail (the least recently active closed, else idle, session is
//! retired).
//! Counters and histograms cover everything. A span takes 40 bytes and a turn summary about
//! 150, so the worst case is about 10 MB of spans and 10 MB of turn summaries; a typical
//! session uses a few hundred kilobytes.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use super::histogram::{Histogram, micros};
use super::report::{
    DurationStats, GroupStats, Limits, ModelStats, PerfReport, REPORT_FORMAT, SessionReport, Span,
    SpanKind, TimeSplit, ToolStats, Totals, TurnReport,
};
use crate::agent::{ModelRequestStats, StopReason, ToolCallStats, TurnObserver};

/// Spans kept per session (the most recent).
pub const MAX_EVENTS_PER_SESSION: usize = 10_000;
/// Turn summaries kept per session (the most recent).
pub const MAX_TURNS_PER_SESSION: usize = 500;
/// Spans kept in all.
pub const MAX_EVENTS: usize = 250_000;
/// Sessions kept in detail.
pub const MAX_SESSIONS: usize = 128;

const SHARDS: usize = 16;
const NAMES_PER_SHARD: usize = 4096;
/// The permission prompt's own editor request: counted as waiting, not editor time.
const PERMISSION_METHOD: &str = "session/request_permission";
/// An absent `u32` (tokens, time to first token).
const NONE: u32 = u32::MAX;

/// Records the timings of an agent's turns for the perf reports.
///
/// Install it with [`AgentBuilder::observer`](crate::agent::AgentBuilder::observer), keep a
/// clone of the `Arc`, and ask it for a [`PerfReport`] (or files) whenever you like:
///
/// ```
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use punie::agent::Agent;
/// use punie::perf::PerfRecorder;
///
/// let perf = Arc::new(PerfRecorder::new());
/// let agent = Agent::builder()
///     .openai("http://localhost:1234/v1/qwen3-8b", None)?
///     .observer(perf.clone())
///     .build()?;
/// // … serve the agent …
/// let (html, json) = perf.write_reports(std::env::temp_dir())?;
/// # Ok(())
/// # }
/// ```
pub struct PerfRecorder {
    shards: Box<[Mutex<Shard>]>,
    hasher: std::collections::hash_map::RandomState,
    epoch: Instant,
    started_at: SystemTime,
}

impl std::fmt::Debug for PerfRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerfRecorder")
            .field("started_at", &self.started_at)
            .finish_non_exhaustive()
    }
}

impl Default for PerfRecorder {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Model,
    Tool,
    Editor,
    Waiting,
}

/// One raw span (40 bytes).
#[derive(Clone, Copy, Debug)]
struct Event {
    /// Since the recorder's epoch (negative for spans that began before it).
    start_us: i64,
    dur_us: u64,
    /// The interned model, tool or method.
    name: u32,
    /// Tool: the interned provider. Model: time to first token in µs (saturated), or NONE.
    detail: u32,
    /// Model: tokens, or NONE.
    prompt_tokens: u32,
    completion_tokens: u32,
    kind: Kind,
    ok: bool,
}

/// What a turn adds up to.
#[derive(Clone, Copy, Debug, Default)]
struct TurnSums {
    model_us: u64,
    model_requests: u64,
    tool_us: u64,
    tool_own_us: u64,
    tool_calls: u64,
    editor_us: u64,
    editor_requests: u64,
    wait_us: u64,
    permission_prompts: u64,
    prompt_tokens: u64,
    completion_tokens: u64,
    /// Generation time of the requests that reported completion tokens.
    gen_us: u64,
}

#[derive(Clone, Copy, Debug)]
struct TurnSummary {
    number: u64,
    start_us: i64,
    dur_us: u64,
    /// None when the turn failed.
    stop: Option<StopReason>,
    sums: TurnSums,
    /// Sequence numbers of its spans: `first_seq..end_seq`.
    first_seq: u64,
    end_seq: u64,
}

#[derive(Debug)]
struct OpenTurn {
    started_us: i64,
    first_seq: u64,
    sums: TurnSums,
    /// Editor round trips since the last tool call ended: (start, duration).
    editor_since_tool: Vec<(i64, u64)>,
}

#[derive(Debug)]
struct SessionRecord {
    order: u64,
    first_us: u64,
    last_us: u64,
    events: VecDeque<Event>,
    /// Sequence number of `events.front()`.
    first_seq: u64,
    dropped_events: u64,
    turns: VecDeque<TurnSummary>,
    dropped_turns: u64,
    turn_count: u64,
    open: Option<OpenTurn>,
    /// The agent closed the session: it is retired before sessions that may still be used.
    closed: bool,
}

impl SessionRecord {
    fn new(order: u64, now_us: u64) -> Self {
        Self {
            order,
            first_us: now_us,
            last_us: now_us,
            events: VecDeque::new(),
            first_seq: 0,
            dropped_events: 0,
            turns: VecDeque::new(),
            dropped_turns: 0,
            turn_count: 0,
            open: None,
            closed: false,
        }
    }

    fn end_seq(&self) -> u64 {
        self.first_seq + self.events.len() as u64
    }

    /// Drops up to `n` of the oldest spans; returns how many went.
    fn drop_oldest(&mut self, n: usize) -> usize {
        let n = n.min(self.events.len());
        self.events.drain(..n);
        self.first_seq += n as u64;
        self.dropped_events += n as u64;
        n
    }
}

/// Durations with an error count.
#[derive(Clone, Debug, Default)]
struct Stat {
    histogram: Histogram,
    errors: u64,
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

    fn report(&self) -> DurationStats {
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

#[derive(Clone, Debug, Default)]
struct ModelStat {
    requests: Stat,
    ttft: Stat,
    prompt_tokens: u64,
    completion_tokens: u64,
    gen_us: u64,
}

impl ModelStat {
    fn merge(&mut self, other: &ModelStat) {
        self.requests.merge(&other.requests);
        self.ttft.merge(&other.ttft);
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.gen_us += other.gen_us;
    }
}

/// Counters and histograms, keyed by name (interned ids in a shard, strings once merged).
#[derive(Clone, Debug)]
struct Aggregates<K: Eq + Hash> {
    sessions: u64,
    sessions_retired: u64,
    turns: u64,
    turns_failed: u64,
    split: TurnSums,
    turn_us: u64,
    models: HashMap<K, ModelStat>,
    tools: HashMap<(K, K), Stat>,
    providers: HashMap<K, Stat>,
    methods: HashMap<K, Stat>,
    waiting: Stat,
    dropped_events: u64,
    dropped_turns: u64,
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
            dropped_events: 0,
            dropped_turns: 0,
        }
    }
}

impl<K: Eq + Hash> Aggregates<K> {
    fn add_event(&mut self, event: &Event, key: impl Fn(u32) -> K) {
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

    fn add_turn(&mut self, turn: &TurnSummary) {
        self.turns += 1;
        self.turns_failed += u64::from(turn.stop.is_none());
        self.turn_us += turn.dur_us;
        add_sums(&mut self.split, &turn.sums);
    }
}

fn add_sums(into: &mut TurnSums, sums: &TurnSums) {
    into.model_us += sums.model_us;
    into.model_requests += sums.model_requests;
    into.tool_us += sums.tool_us;
    into.tool_own_us += sums.tool_own_us;
    into.tool_calls += sums.tool_calls;
    into.editor_us += sums.editor_us;
    into.editor_requests += sums.editor_requests;
    into.wait_us += sums.wait_us;
    into.permission_prompts += sums.permission_prompts;
    into.prompt_tokens += sums.prompt_tokens;
    into.completion_tokens += sums.completion_tokens;
    into.gen_us += sums.gen_us;
}

fn generation_us(event: &Event) -> u64 {
    let ttft = if event.detail == NONE {
        0
    } else {
        u64::from(event.detail)
    };
    event.dur_us.saturating_sub(ttft)
}

/// Interned names of one shard; id 0 stands for every name past the cap.
#[derive(Debug)]
struct Names {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Default for Names {
    fn default() -> Self {
        let other: Arc<str> = Arc::from("(other)");
        Self {
            ids: HashMap::from([(other.clone(), 0)]),
            names: vec![other],
        }
    }
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        if self.names.len() >= NAMES_PER_SHARD {
            return 0;
        }
        let id = self.names.len() as u32;
        let name: Arc<str> = Arc::from(name);
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }

    fn get(&self, id: u32) -> &Arc<str> {
        &self.names[id as usize]
    }
}

#[derive(Debug, Default)]
struct Shard {
    sessions: HashMap<Arc<str>, SessionRecord>,
    names: Names,
    stats: Aggregates<u32>,
    events_held: usize,
    next_order: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

fn ms(us: u64) -> f64 {
    round_ms(us as f64 / 1000.0)
}

fn signed_us(us: u64) -> i64 {
    i64::try_from(us).unwrap_or(i64::MAX)
}

fn u32_or_none(value: Option<u64>) -> u32 {
    value.map_or(NONE, |v| u32::try_from(v).unwrap_or(NONE - 1))
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

impl Shard {
    /// The session's record, created (and the shard trimmed to its session cap) on first sight.
    fn session(&mut self, id: &str, now_us: u64) -> &mut SessionRecord {
        if !self.sessions.contains_key(id) {
            if self.sessions.len() >= MAX_SESSIONS / SHARDS {
                self.retire_one();
            }
            self.stats.sessions += 1;
            self.next_order += 1;
            let record = SessionRecord::new(self.next_order, now_us);
            self.sessions.insert(Arc::from(id), record);
        }
        let record = self.sessions.get_mut(id).expect("inserted above");
        record.last_us = now_us;
        record
    }

    /// Forgets the detail of the least recently active closed session, or else idle one.
    fn retire_one(&mut self) {
        let oldest = self
            .sessions
            .iter()
            .filter(|(_, s)| s.open.is_none())
            .min_by_key(|(_, s)| (!s.closed, s.last_us))
            .map(|(id, _)| id.clone());
        if let Some(id) = oldest
            && let Some(record) = self.sessions.remove(&id)
        {
            self.events_held -= record.events.len();
            self.stats.sessions_retired += 1;
            self.stats.dropped_events += record.events.len() as u64;
            self.stats.dropped_turns += record.turns.len() as u64;
        }
    }

    /// Keeps the shard's spans within its share of [`MAX_EVENTS`], taking from the least
    /// recently active session a chunk at a time.
    fn trim_events(&mut self) {
        while self.events_held > MAX_EVENTS / SHARDS {
            let Some(record) = self
                .sessions
                .values_mut()
                .filter(|s| !s.events.is_empty())
                .min_by_key(|s| s.last_us)
            else {
                return;
            };
            let chunk = (record.events.len() / 8).max(256);
            let dropped = record.drop_oldest(chunk);
            self.events_held -= dropped;
            self.stats.dropped_events += dropped as u64;
        }
    }

    /// Records a span: counts it, adds it to the open turn's sums and keeps it.
    fn record(&mut self, session: &str, event: Event, now_us: u64) {
        self.stats.add_event(&event, |id| id);
        let record = self.session(session, now_us);
        if let Some(open) = &mut record.open {
            open.account(&event);
        }
        let dropped = if record.events.len() >= MAX_EVENTS_PER_SESSION {
            record.drop_oldest(1)
        } else {
            0
        };
        record.events.push_back(event);
        self.events_held = self.events_held + 1 - dropped;
        self.stats.dropped_events += dropped as u64;
        if self.events_held > MAX_EVENTS / SHARDS {
            self.trim_events();
        }
    }
}

impl OpenTurn {
    fn new(started_us: i64, first_seq: u64) -> Self {
        Self {
            started_us,
            first_seq,
            sums: TurnSums::default(),
            editor_since_tool: Vec::new(),
        }
    }

    fn account(&mut self, event: &Event) {
        let sums = &mut self.sums;
        match event.kind {
            Kind::Model => {
                sums.model_us += event.dur_us;
                sums.model_requests += 1;
                if event.prompt_tokens != NONE {
                    sums.prompt_tokens += u64::from(event.prompt_tokens);
                }
                if event.completion_tokens != NONE {
                    sums.completion_tokens += u64::from(event.completion_tokens);
                    sums.gen_us += generation_us(event);
                }
            }
            Kind::Tool => {
                // Editor round trips that started inside this call are editor time.
                let inside: u64 = self
                    .editor_since_tool
                    .drain(..)
                    .filter(|&(start, _)| start >= event.start_us)
                    .map(|(_, dur)| dur)
                    .sum();
                sums.tool_us += event.dur_us;
                sums.tool_own_us += event.dur_us.saturating_sub(inside);
                sums.tool_calls += 1;
            }
            Kind::Editor => {
                sums.editor_us += event.dur_us;
                sums.editor_requests += 1;
                if self.editor_since_tool.len() < 4096 {
                    self.editor_since_tool.push((event.start_us, event.dur_us));
                }
            }
            Kind::Waiting => {
                sums.wait_us += event.dur_us;
                sums.permission_prompts += 1;
            }
        }
    }
}

impl PerfRecorder {
    /// A recorder with nothing recorded yet.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            epoch: Instant::now(),
            started_at: SystemTime::now(),
        }
    }

    fn shard(&self, session: &str) -> MutexGuard<'_, Shard> {
        lock(&self.shards[self.hasher.hash_one(session) as usize % SHARDS])
    }

    fn now_us(&self) -> u64 {
        micros(self.epoch.elapsed())
    }

    /// Records a span that ended now after `elapsed`.
    fn span(
        &self,
        session: &str,
        kind: Kind,
        name: &str,
        elapsed: Duration,
        ok: bool,
        fill: impl FnOnce(&mut Names, &mut Event),
    ) {
        let now = self.now_us();
        let dur_us = micros(elapsed);
        let start_us = signed_us(now) - signed_us(dur_us);
        let mut shard = self.shard(session);
        let mut event = Event {
            start_us,
            dur_us,
            name: shard.names.id(name),
            detail: NONE,
            prompt_tokens: NONE,
            completion_tokens: NONE,
            kind,
            ok,
        };
        fill(&mut shard.names, &mut event);
        shard.record(session, event, now);
    }

    /// A report of everything recorded so far.
    pub fn snapshot(&self) -> PerfReport {
        self.report(None)
    }

    /// A report of one session (its tables computed from the spans it still holds), or `None`
    /// when the recorder does not hold it (never seen, or retired).
    pub fn snapshot_session(&self, session: &str) -> Option<PerfReport> {
        let held = self.shard(session).sessions.contains_key(session);
        held.then(|| self.report(Some(session)))
    }

    fn report(&self, only: Option<&str>) -> PerfReport {
        let mut merged: Aggregates<Arc<str>> = Aggregates::default();
        let mut sessions: Vec<(u64, u64, SessionReport)> = Vec::new();
        for shard in self.shards.iter() {
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
                let report = self.session_report(id, record, &shard.names);
                sessions.push((record.first_us, record.order, report));
            }
        }
        sessions.sort_by_key(|(first, order, _)| (*first, *order));
        self.assemble(
            merged,
            sessions.into_iter().map(|(_, _, s)| s).collect(),
            only,
        )
    }

    fn session_report(&self, id: &str, record: &SessionRecord, names: &Names) -> SessionReport {
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
                    tokens_per_second: tokens_per_second(
                        turn.sums.completion_tokens,
                        turn.sums.gen_us,
                    ),
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

    fn assemble(
        &self,
        merged: Aggregates<Arc<str>>,
        sessions: Vec<SessionReport>,
        only: Option<&str>,
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
            dropped_events: merged.dropped_events,
            dropped_turns: merged.dropped_turns,
        };
        let now = SystemTime::now();
        PerfReport {
            format: REPORT_FORMAT.to_owned(),
            punie_version: env!("CARGO_PKG_VERSION").to_owned(),
            generated_at: super::calendar::rfc3339(now),
            recording_started_at: super::calendar::rfc3339(self.started_at),
            recorded_ms: ms(self.now_us()),
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
}

fn merge_named(
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
    into.dropped_events += from.dropped_events;
    into.dropped_turns += from.dropped_turns;
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
    }
}

impl TurnObserver for PerfRecorder {
    fn turn_started(&self, session: &str) {
        let now = self.now_us();
        let mut shard = self.shard(session);
        let record = shard.session(session, now);
        record.open = Some(OpenTurn::new(signed_us(now), record.end_seq()));
    }

    fn turn_finished(&self, session: &str, stop: Option<StopReason>, elapsed: Duration) {
        let now = self.now_us();
        let dur_us = micros(elapsed);
        let mut shard = self.shard(session);
        let record = shard.session(session, now);
        let open = record
            .open
            .take()
            .unwrap_or_else(|| OpenTurn::new(signed_us(now) - signed_us(dur_us), record.end_seq()));
        // `elapsed` also covers waiting for tools to load, before `turn_started`.
        let start_us = (signed_us(now) - signed_us(dur_us)).min(open.started_us);
        record.turn_count += 1;
        let summary = TurnSummary {
            number: record.turn_count,
            start_us,
            dur_us: (signed_us(now) - start_us).unsigned_abs(),
            stop,
            sums: open.sums,
            first_seq: open.first_seq,
            end_seq: record.end_seq(),
        };
        let mut dropped = 0;
        if record.turns.len() >= MAX_TURNS_PER_SESSION {
            record.turns.pop_front();
            record.dropped_turns += 1;
            dropped = 1;
        }
        record.turns.push_back(summary);
        shard.stats.add_turn(&summary);
        shard.stats.dropped_turns += dropped;
    }

    fn model_request(&self, session: &str, stats: &ModelRequestStats) {
        self.span(
            session,
            Kind::Model,
            &stats.model,
            stats.total,
            stats.completed,
            |_, e| {
                e.detail = u32_or_none(stats.time_to_first_token.map(micros));
                e.prompt_tokens = u32_or_none(stats.usage.map(|u| u.prompt_tokens));
                e.completion_tokens = u32_or_none(stats.usage.map(|u| u.completion_tokens));
            },
        );
    }

    fn tool_call(&self, session: &str, stats: &ToolCallStats) {
        self.span(
            session,
            Kind::Tool,
            &stats.name,
            stats.elapsed,
            stats.ok,
            |names, e| {
                e.detail = names.id(stats.provider);
            },
        );
    }

    fn permission_wait(&self, session: &str, tool: &str, waited: Duration) {
        self.span(session, Kind::Waiting, tool, waited, true, |_, _| {});
    }

    fn editor_request(&self, session: &str, method: &str, elapsed: Duration, ok: bool) {
        if method == PERMISSION_METHOD {
            // Already measured as `permission_wait`: the person's time, not the editor's.
            return;
        }
        self.span(session, Kind::Editor, method, elapsed, ok, |_, _| {});
    }

    fn session_closed(&self, session: &str) {
        let mut shard = self.shard(session);
        if let Some(record) = shard.sessions.get_mut(session) {
            record.closed = true;
        }
    }

    fn report_json(&self) -> Option<serde_json::Value> {
        Some(self.snapshot().to_json_value())
    }

    fn report_html(&self) -> Option<String> {
        Some(self.snapshot().to_html())
    }
}

#[cfg(test)]
impl PerfRecorder {
    /// Spans held in all, for the bound tests.
    pub(crate) fn held_events(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let shard = lock(shard);
                let held: usize = shard.sessions.values().map(|s| s.events.len()).sum();
                assert_eq!(held, shard.events_held, "the shard's count is right");
                held
            })
            .sum()
    }
}
