//! The recorder fed directly, as the turn loop would: attribution, bounds, concurrency and
//! escaping.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::agent::{ModelRequestStats, StopReason, ToolCallStats, TurnObserver};
use crate::llm::{ServerTimings, Usage};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn model(total: u64, ttft: u64, completion: Option<u64>) -> ModelRequestStats {
    ModelRequestStats {
        model: "qwen3-8b at http://127.0.0.1:1234/v1".to_owned(),
        time_to_first_token: Some(ms(ttft)),
        total: ms(total),
        usage: completion.map(|c| Usage {
            prompt_tokens: 1000,
            completion_tokens: c,
            ..Default::default()
        }),
        chunks: 3,
        recovered_calls: Vec::new(),
        completed: true,
    }
}

fn tool(name: &str, provider: &'static str, elapsed: u64, ok: bool) -> ToolCallStats {
    ToolCallStats {
        name: name.to_owned(),
        provider,
        elapsed: ms(elapsed),
        ok,
    }
}

/// One turn: a model request, a permission prompt, a tool call that reads through the editor,
/// another model request. Callbacks come after the fact, as from the turn loop. Durations are
/// long so that the real time between the calls (scheduling) cannot change the results.
fn play_turn(perf: &PerfRecorder, session: &str) {
    perf.turn_started(session);
    perf.model_request(session, &model(100, 20, Some(40)));
    perf.editor_request(session, "session/request_permission", ms(50), true);
    perf.permission_wait(session, "write_file", ms(50));
    perf.editor_request(session, "fs/read_text_file", ms(5), true);
    perf.tool_call(session, &tool("write_file", "editor", 8_000, true));
    perf.model_request(session, &model(60, 10, None));
    perf.turn_finished(session, Some(StopReason::EndTurn), ms(300_000));
}

#[test]
fn a_turn_is_split_into_model_tool_editor_and_waiting_time() {
    let perf = PerfRecorder::new();
    play_turn(&perf, "s1");
    let report = perf.snapshot();

    let split = &report.split;
    assert_eq!(split.turn_ms, 300_000.0);
    assert_eq!(split.model_ms, 160.0);
    assert_eq!(
        split.editor_ms, 5.0,
        "the permission prompt's request is not editor time"
    );
    assert_eq!(
        split.tool_ms, 7_995.0,
        "the editor read inside the tool call is editor time"
    );
    assert_eq!(split.waiting_ms, 50.0);
    assert_eq!(split.other_ms, 300_000.0 - 8_210.0);

    let totals = &report.totals;
    assert_eq!(
        (
            totals.sessions,
            totals.turns,
            totals.model_requests,
            totals.tool_calls,
            totals.editor_requests,
            totals.permission_prompts
        ),
        (1, 1, 2, 1, 1, 1)
    );
    assert_eq!(totals.completion_tokens, 40);
    assert_eq!(totals.prompt_tokens, 1000);
    // 40 tokens over 100 - 20 ms of generation.
    assert_eq!(totals.tokens_per_second, Some(500.0));

    let model = &report.models[0];
    assert_eq!(model.name, "qwen3-8b");
    assert_eq!(model.server.as_deref(), Some("http://127.0.0.1:1234/v1"));
    assert_eq!(model.requests.count, 2);

    let turn = &report.sessions[0].turns[0];
    assert_eq!((turn.number, turn.stop.as_str()), (1, "end_turn"));
    assert!(turn.spans_complete);
    let kinds: Vec<SpanKind> = turn.spans.iter().map(|s| s.kind).collect();
    assert_eq!(kinds.len(), 5);
    for kind in [
        SpanKind::Model,
        SpanKind::Tool,
        SpanKind::Editor,
        SpanKind::Waiting,
    ] {
        assert!(kinds.contains(&kind), "{kind:?} in {kinds:?}");
    }
    assert!(
        turn.spans.iter().all(|s| s.start_ms >= 0.0),
        "{:?}",
        turn.spans
    );
    assert_eq!(report.tools[0].provider, "editor");
    assert_eq!(report.providers[0].key, "editor");
    assert_eq!(report.editor_methods[0].key, "fs/read_text_file");
    assert_eq!(report.waiting.count, 1);
}

#[test]
fn a_failed_turn_and_events_outside_turns_are_counted() {
    let perf = PerfRecorder::new();
    perf.editor_request("s", "_punie/discover_tools", ms(3), true);
    perf.turn_started("s");
    perf.model_request("s", &model(10, 5, None));
    perf.turn_finished("s", None, ms(12));
    let report = perf.snapshot();
    assert_eq!((report.totals.turns, report.totals.turns_failed), (1, 1));
    assert_eq!(report.totals.editor_requests, 1);
    let turn = &report.sessions[0].turns[0];
    assert_eq!(turn.stop, "failed");
    assert_eq!(
        turn.spans.len(),
        1,
        "the discovery request is not part of the turn"
    );
    assert_eq!(turn.split.editor_ms, 0.0);
}

#[test]
fn a_long_session_keeps_its_recent_spans_and_counts_all() {
    let perf = PerfRecorder::new();
    let n = MAX_EVENTS_PER_SESSION + 5_000;
    perf.turn_started("long");
    for i in 0..n {
        perf.tool_call("long", &tool("read_file", "local", 1, i % 10 != 0));
    }
    perf.turn_finished("long", Some(StopReason::EndTurn), ms(20_000));
    assert_eq!(perf.held_events(), MAX_EVENTS_PER_SESSION);
    let report = perf.snapshot();
    assert_eq!(report.totals.tool_calls, n as u64);
    assert_eq!(report.tools[0].calls.errors, (n as u64).div_ceil(10));
    assert_eq!(report.totals.dropped_events, 5_000);
    let turn = &report.sessions[0].turns[0];
    assert!(!turn.spans_complete);
    assert_eq!(turn.spans.len(), MAX_EVENTS_PER_SESSION);
    assert_eq!(
        turn.tool_calls, n as u64,
        "the turn's sums cover every call"
    );
    assert!(report.to_html().contains("dropped"));
}

#[test]
fn turn_summaries_are_bounded_per_session() {
    let perf = PerfRecorder::new();
    for _ in 0..MAX_TURNS_PER_SESSION + 7 {
        perf.turn_started("s");
        perf.turn_finished("s", Some(StopReason::EndTurn), ms(1));
    }
    let report = perf.snapshot();
    assert_eq!(report.totals.turns, MAX_TURNS_PER_SESSION as u64 + 7);
    assert_eq!(report.totals.dropped_turns, 7);
    let session = &report.sessions[0];
    assert_eq!(session.turns.len(), MAX_TURNS_PER_SESSION);
    assert_eq!(session.turns[0].number, 8);
    assert_eq!(session.turn_count, MAX_TURNS_PER_SESSION as u64 + 7);
}

#[test]
fn many_sessions_stay_within_the_global_bounds() {
    let perf = PerfRecorder::new();
    for s in 0..40 {
        let session = format!("sess_{s}");
        for _ in 0..MAX_EVENTS / 30 {
            perf.editor_request(&session, "fs/read_text_file", ms(1), true);
        }
    }
    assert!(perf.held_events() <= MAX_EVENTS, "{}", perf.held_events());
    for s in 0..400 {
        perf.editor_request(&format!("short_{s}"), "fs/write_text_file", ms(1), true);
    }
    let report = perf.snapshot();
    assert!(
        report.sessions.len() <= MAX_SESSIONS,
        "{}",
        report.sessions.len()
    );
    assert_eq!(report.totals.sessions, 440);
    assert_eq!(
        report.totals.sessions_retired,
        440 - report.sessions.len() as u64
    );
    assert_eq!(
        report.totals.editor_requests,
        40 * (MAX_EVENTS / 30) as u64 + 400
    );
}

#[test]
fn closed_sessions_are_retired_first() {
    let perf = PerfRecorder::new();
    perf.turn_started("closed");
    perf.turn_finished("closed", Some(StopReason::EndTurn), ms(1));
    perf.session_closed("closed");
    perf.session_closed("never seen");
    // Enough new sessions to fill every shard (about 32 each for 8 places): the closed session
    // is retired whatever its age; half of the new ones are mid-turn and cannot be.
    for s in 0..MAX_SESSIONS * 4 {
        let session = format!("new_{s}");
        perf.turn_started(&session);
        if s % 2 == 0 {
            perf.turn_finished(&session, Some(StopReason::EndTurn), ms(1));
        }
    }
    let report = perf.snapshot();
    let ids: Vec<&str> = report.sessions.iter().map(|s| s.id.as_str()).collect();
    assert!(!ids.contains(&"closed"), "the closed session was retired");
    assert_eq!(report.totals.sessions, 1 + MAX_SESSIONS as u64 * 4);
}

#[test]
fn concurrent_sessions_are_all_counted() {
    let perf = Arc::new(PerfRecorder::new());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let perf = perf.clone();
            std::thread::spawn(move || {
                for s in 0..10 {
                    let session = format!("t{t}-s{s}");
                    for _ in 0..5 {
                        play_turn(&perf, &session);
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let report = perf.snapshot();
    assert_eq!(report.totals.sessions, 80);
    assert_eq!(report.totals.turns, 400);
    assert_eq!(report.totals.tool_calls, 400);
    assert_eq!(report.split.turn_ms, 400.0 * 300_000.0);
    assert_eq!(report.split.tool_ms, 400.0 * 7_995.0);
    let one = perf.snapshot_session("t3-s7").expect("held");
    assert_eq!(one.totals.turns, 5);
    assert_eq!(one.sessions.len(), 1);
    assert_eq!(one.tools[0].calls.count, 5);
    assert!(perf.snapshot_session("nobody").is_none());
}

#[test]
fn names_are_escaped_in_the_page_and_kept_in_the_json() {
    let perf = PerfRecorder::new();
    let evil = "<script>alert('x')</script>";
    perf.turn_started("s<1>");
    perf.model_request(
        "s<1>",
        &ModelRequestStats {
            model: "\"><img src=x onerror=alert(1)> at http://h/v1".to_owned(),
            ..model(10, 1, Some(3))
        },
    );
    perf.tool_call("s<1>", &tool(evil, "mcp", 2, false));
    perf.turn_finished("s<1>", Some(StopReason::Cancelled), ms(20));
    let report = perf.snapshot();
    let html = report.to_html();
    assert!(!html.contains("<script"), "a script tag got through");
    assert!(!html.contains("<img"), "an img tag got through");
    assert!(
        html.contains("&lt;script&gt;"),
        "the tool name is shown, escaped"
    );
    assert!(html.contains("s&lt;1&gt;"));
    let back = PerfReport::from_json(&report.to_json()).unwrap();
    assert_eq!(back, report);
    assert_eq!(back.tools[0].name, evil);
    assert_eq!(perf.report_json().unwrap()["format"], REPORT_FORMAT);
    assert!(perf.report_html().unwrap().starts_with("<!DOCTYPE html>"));
}

#[test]
fn an_empty_report_renders() {
    let report = PerfRecorder::new().snapshot();
    let html = report.to_html();
    assert!(html.contains("No turns recorded yet."));
    assert!(html.trim_end().ends_with("</html>"));
    assert_eq!(report.totals.tokens_per_second, None);
}

/// A request to llama.cpp: `cached` of `prompt` tokens from its cache, the rest read in
/// `prompt_ms`; 20 tokens generated in 400 ms by its clock.
fn llama_cpp_request(prompt: u64, cached: u64, prompt_ms: u64) -> ModelRequestStats {
    let timings = ServerTimings {
        prompt_read: prompt - cached,
        prompt_cached: cached,
        prompt_time: ms(prompt_ms),
        generated: 20,
        generation_time: ms(400),
    };
    ModelRequestStats {
        usage: Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: 20,
            cached_tokens: Some(cached),
            timings: Some(timings),
        }),
        ..model(2_000, 1_000, Some(20))
    }
}

#[test]
fn the_servers_cache_and_timings_and_recovered_calls_are_reported() {
    let perf = PerfRecorder::new();
    perf.turn_started("s1");
    // Cold: 2,000 tokens read in 20 s; warm: 40 new tokens in 0.4 s, the rest from the cache.
    perf.model_request("s1", &llama_cpp_request(2_000, 0, 20_000));
    perf.model_request(
        "s1",
        &ModelRequestStats {
            recovered_calls: vec!["bare_json", "fenced_json", "bare_json"],
            ..llama_cpp_request(2_040, 2_000, 400)
        },
    );
    // A server that says nothing of its cache.
    perf.model_request("s1", &model(100, 10, Some(5)));
    perf.turn_finished("s1", Some(StopReason::EndTurn), ms(10_000));
    let report = perf.snapshot();

    let totals = &report.totals;
    assert_eq!(totals.prompt_tokens, 5_040);
    assert_eq!(totals.cached_tokens, 2_000);
    // (2,000 + 40) tokens read in 20.4 s by the server's clock.
    assert_eq!(totals.prompt_tokens_per_second, Some(100.0));
    // 40 tokens in 0.8 s by the server's clock, whatever Punie's clock said.
    assert_eq!(totals.server_tokens_per_second, Some(50.0));
    assert_eq!(
        totals.recovered_calls,
        [("bare_json".to_owned(), 2), ("fenced_json".to_owned(), 1)].into()
    );
    let model = &report.models[0];
    assert_eq!(model.cached_tokens, 2_000);
    assert_eq!(model.prompt_tokens_per_second, Some(100.0));

    let turn = &report.sessions[0].turns[0];
    assert_eq!(turn.cached_tokens, 2_000);
    let spans: Vec<_> = turn.spans.iter().collect();
    assert_eq!(spans[0].cached_tokens, Some(0));
    assert_eq!(spans[0].prompt_tokens_per_second, Some(100.0));
    assert_eq!(spans[1].cached_tokens, Some(2_000));
    assert_eq!(spans[1].prompt_tokens_per_second, Some(100.0));
    assert_eq!(spans[1].server_tokens_per_second, Some(50.0));
    assert_eq!(spans[2].cached_tokens, None);
    assert_eq!(spans[2].prompt_tokens_per_second, None);

    let html = report.to_html();
    assert!(html.contains("2000 (40%)"), "the cache share is shown");
    assert!(html.contains("bare_json 2, fenced_json 1"));
    let back = PerfReport::from_json(&report.to_json()).unwrap();
    assert_eq!(back, report);
}
