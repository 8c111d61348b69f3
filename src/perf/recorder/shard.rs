//! One shard of the recorder's state: the sessions it holds in detail, its interned names and
//! its aggregates, and the bookkeeping that keeps them within bounds.
//!
//! Bounds (see [`Limits`](crate::perf::Limits)): each session keeps its last
//! [`MAX_EVENTS_PER_SESSION`] spans and [`MAX_TURNS_PER_SESSION`] turn summaries; all sessions
//! together keep at most [`MAX_EVENTS`] spans (the least recently active session loses its
//! oldest first) and at most [`MAX_SESSIONS`] sessions in detail (the least recently active
//! closed, else idle, session is retired); each shard enforces its sixteenth of the last two.
//! Counters and histograms cover everything. A span takes 48 bytes and a turn summary about
//! 150, so the worst case is about 12 MB of spans and 10 MB of turn summaries; a typical
//! session uses a few hundred kilobytes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::aggregates::Aggregates;
use super::session::{Event, OpenTurn, SessionRecord, TurnSummary, signed_us};
use crate::agent::StopReason;

/// Spans kept per session (the most recent).
pub const MAX_EVENTS_PER_SESSION: usize = 10_000;
/// Turn summaries kept per session (the most recent).
pub const MAX_TURNS_PER_SESSION: usize = 500;
/// Spans kept in all.
pub const MAX_EVENTS: usize = 250_000;
/// Sessions kept in detail.
pub const MAX_SESSIONS: usize = 128;

/// Shards the sessions are spread over, each behind its own mutex.
pub(super) const SHARDS: usize = 16;
/// Names interned per shard; more share the id of "(other)".
const NAMES_PER_SHARD: usize = 4096;

/// Interned names of one shard; id 0 stands for every name past the cap.
#[derive(Debug)]
pub(super) struct Names {
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
    pub(super) fn id(&mut self, name: &str) -> u32 {
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

    pub(super) fn get(&self, id: u32) -> &Arc<str> {
        &self.names[id as usize]
    }
}

/// The part of the recorder's state for the sessions whose id hashes to it.
#[derive(Debug, Default)]
pub(super) struct Shard {
    pub(super) sessions: HashMap<Arc<str>, SessionRecord>,
    pub(super) names: Names,
    pub(super) stats: Aggregates<u32>,
    pub(super) events_held: usize,
    next_order: u64,
}

/// Locks `mutex` even if a panic poisoned it: a perf recorder must never take the agent down
/// with it.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Opens a turn in `session`, starting now.
    pub(super) fn start_turn(&mut self, session: &str, now_us: u64) {
        let record = self.session(session, now_us);
        record.open = Some(OpenTurn::new(signed_us(now_us), record.end_seq()));
    }

    /// Closes the turn of `session` that took `dur_us` until now, keeping its summary (the
    /// session keeps its last [`MAX_TURNS_PER_SESSION`]) and counting it.
    pub(super) fn finish_turn(
        &mut self,
        session: &str,
        stop: Option<StopReason>,
        dur_us: u64,
        now_us: u64,
    ) {
        let record = self.session(session, now_us);
        let open = record.open.take().unwrap_or_else(|| {
            OpenTurn::new(signed_us(now_us) - signed_us(dur_us), record.end_seq())
        });
        // The turn's `elapsed` also covers waiting for tools to load, before `turn_started`.
        let start_us = (signed_us(now_us) - signed_us(dur_us)).min(open.started_us);
        record.turn_count += 1;
        let summary = TurnSummary {
            number: record.turn_count,
            start_us,
            dur_us: (signed_us(now_us) - start_us).unsigned_abs(),
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
        self.stats.add_turn(&summary);
        self.stats.dropped_turns += dropped;
    }

    /// Marks `session` closed, so it is retired before sessions that may still be used.
    pub(super) fn close_session(&mut self, session: &str) {
        if let Some(record) = self.sessions.get_mut(session) {
            record.closed = true;
        }
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
    pub(super) fn record(&mut self, session: &str, event: Event, now_us: u64) {
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
