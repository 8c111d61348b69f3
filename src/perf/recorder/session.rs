//! One session's raw record, in microseconds since the recorder started: its recent spans, its
//! turn summaries and the running sums of the turn under way.

use std::collections::VecDeque;

use crate::agent::StopReason;

/// An absent `u32` (tokens, time to first token).
pub(super) const NONE: u32 = u32::MAX;

/// What a raw span measures (the report's `SpanKind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Model,
    Tool,
    Editor,
    Waiting,
}

/// One raw span (48 bytes).
#[derive(Clone, Copy, Debug)]
pub(super) struct Event {
    /// Since the recorder's epoch (negative for spans that began before it).
    pub(super) start_us: i64,
    pub(super) dur_us: u64,
    /// The interned model, tool or method.
    pub(super) name: u32,
    /// Tool: the interned provider. Model: time to first token in µs (saturated), or NONE.
    pub(super) detail: u32,
    /// Model: tokens, or NONE.
    pub(super) prompt_tokens: u32,
    pub(super) completion_tokens: u32,
    /// Model: prompt tokens from the server's cache, or NONE.
    pub(super) cached_tokens: u32,
    /// Model: the server's own time reading the uncached prompt, in µs (saturated), or NONE.
    pub(super) server_prompt_us: u32,
    /// Model: the server's own generation time in µs (saturated), or NONE.
    pub(super) server_gen_us: u32,
    pub(super) kind: Kind,
    pub(super) ok: bool,
}

/// What a turn adds up to.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct TurnSums {
    pub(super) model_us: u64,
    pub(super) model_requests: u64,
    pub(super) tool_us: u64,
    pub(super) tool_own_us: u64,
    pub(super) tool_calls: u64,
    pub(super) editor_us: u64,
    pub(super) editor_requests: u64,
    pub(super) wait_us: u64,
    pub(super) permission_prompts: u64,
    pub(super) prompt_tokens: u64,
    pub(super) completion_tokens: u64,
    /// Generation time of the requests that reported completion tokens.
    pub(super) gen_us: u64,
    pub(super) cached_tokens: u64,
}

pub(super) fn add_sums(into: &mut TurnSums, sums: &TurnSums) {
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
    into.cached_tokens += sums.cached_tokens;
}

/// A finished turn as its session keeps it (about 150 bytes).
#[derive(Clone, Copy, Debug)]
pub(super) struct TurnSummary {
    pub(super) number: u64,
    pub(super) start_us: i64,
    pub(super) dur_us: u64,
    /// None when the turn failed.
    pub(super) stop: Option<StopReason>,
    pub(super) sums: TurnSums,
    /// Sequence numbers of its spans: `first_seq..end_seq`.
    pub(super) first_seq: u64,
    pub(super) end_seq: u64,
}

/// The turn under way: its sums grow with each span recorded.
#[derive(Debug)]
pub(super) struct OpenTurn {
    pub(super) started_us: i64,
    pub(super) first_seq: u64,
    pub(super) sums: TurnSums,
    /// Editor round trips since the last tool call ended: (start, duration).
    pub(super) editor_since_tool: Vec<(i64, u64)>,
}

impl OpenTurn {
    pub(super) fn new(started_us: i64, first_seq: u64) -> Self {
        Self {
            started_us,
            first_seq,
            sums: TurnSums::default(),
            editor_since_tool: Vec::new(),
        }
    }

    pub(super) fn account(&mut self, event: &Event) {
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
                if event.cached_tokens != NONE {
                    sums.cached_tokens += u64::from(event.cached_tokens);
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

/// What a shard keeps of one session.
#[derive(Debug)]
pub(super) struct SessionRecord {
    pub(super) order: u64,
    pub(super) first_us: u64,
    pub(super) last_us: u64,
    pub(super) events: VecDeque<Event>,
    /// Sequence number of `events.front()`.
    pub(super) first_seq: u64,
    pub(super) dropped_events: u64,
    pub(super) turns: VecDeque<TurnSummary>,
    pub(super) dropped_turns: u64,
    pub(super) turn_count: u64,
    pub(super) open: Option<OpenTurn>,
    /// The agent closed the session: it is retired before sessions that may still be used.
    pub(super) closed: bool,
}

impl SessionRecord {
    pub(super) fn new(order: u64, now_us: u64) -> Self {
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

    pub(super) fn end_seq(&self) -> u64 {
        self.first_seq + self.events.len() as u64
    }

    /// Drops up to `n` of the oldest spans; returns how many went.
    pub(super) fn drop_oldest(&mut self, n: usize) -> usize {
        let n = n.min(self.events.len());
        self.events.drain(..n);
        self.first_seq += n as u64;
        self.dropped_events += n as u64;
        n
    }
}

/// A model request's time after its first token, which tokens per second are measured over.
pub(super) fn generation_us(event: &Event) -> u64 {
    let ttft = if event.detail == NONE {
        0
    } else {
        u64::from(event.detail)
    };
    event.dur_us.saturating_sub(ttft)
}

/// A time since the epoch as a signed one (spans can start before the epoch), saturated.
pub(super) fn signed_us(us: u64) -> i64 {
    i64::try_from(us).unwrap_or(i64::MAX)
}
