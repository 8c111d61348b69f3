//! The recorder: a [`TurnObserver`] that keeps, per session, the recent raw timings and, for
//! everything, counters and histograms.
//!
//! State is split in 16 shards by session id, each behind its own mutex, so concurrent sessions
//! rarely wait for each other; an event costs one lock, a few hash lookups and a push. Names
//! (tools, methods, models) are interned per shard, so recording allocates nothing once a name
//! has been seen.
//!
//! The files, each using only those listed before it: `session.rs` (one session's raw spans and
//! turns), `aggregates.rs` (counters and histograms), `shard.rs` (one shard's bookkeeping and
//! its bounds, see [`Limits`](crate::perf::Limits)), `snapshot.rs` (reports made from the
//! shards), and here the recorder, which timestamps each callback and hands it to its shard.

mod aggregates;
mod session;
mod shard;
mod snapshot;

use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use self::session::{Event, Kind, NONE, signed_us};
pub use self::shard::{MAX_EVENTS, MAX_EVENTS_PER_SESSION, MAX_SESSIONS, MAX_TURNS_PER_SESSION};
use self::shard::{Names, SHARDS, Shard, lock};
use crate::agent::{ModelRequestStats, StopReason, ToolCallStats, TurnObserver};
use crate::perf::histogram::micros;
use crate::perf::report::PerfReport;

/// The permission prompt's own editor request: counted as waiting, not editor time.
const PERMISSION_METHOD: &str = "session/request_permission";

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

/// An optional count or time for an [`Event`] field: `NONE` when absent, saturated below it.
fn u32_or_none(value: Option<u64>) -> u32 {
    value.map_or(NONE, |v| u32::try_from(v).unwrap_or(NONE - 1))
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
            cached_tokens: NONE,
            server_prompt_us: NONE,
            server_gen_us: NONE,
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
        snapshot::report(&self.shards, self.epoch, self.started_at, only)
    }
}

impl TurnObserver for PerfRecorder {
    fn turn_started(&self, session: &str) {
        let now = self.now_us();
        self.shard(session).start_turn(session, now);
    }

    fn turn_finished(&self, session: &str, stop: Option<StopReason>, elapsed: Duration) {
        let now = self.now_us();
        let dur_us = micros(elapsed);
        self.shard(session).finish_turn(session, stop, dur_us, now);
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
                e.cached_tokens = u32_or_none(stats.usage.and_then(|u| u.cached_tokens));
                let timings = stats.usage.and_then(|u| u.timings);
                e.server_prompt_us = u32_or_none(
                    timings
                        .filter(|t| t.prompt_read > 0)
                        .map(|t| micros(t.prompt_time)),
                );
                e.server_gen_us = u32_or_none(
                    timings
                        .filter(|t| t.generated > 0)
                        .map(|t| micros(t.generation_time)),
                );
            },
        );
        if !stats.recovered_calls.is_empty() {
            let mut shard = self.shard(session);
            for shape in &stats.recovered_calls {
                let id = shard.names.id(shape);
                *shard.stats.recovered_calls.entry(id).or_default() += 1;
            }
        }
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
        self.shard(session).close_session(session);
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
