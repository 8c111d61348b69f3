//! Fuzzes the text tool-call scanner (`MarkupFilter`): arbitrary answer text, streamed in
//! arbitrary pieces, must never panic, and must give the same thoughts, text and tool calls
//! however it was cut (whole, character by character, or in pieces chosen by the input), with
//! and without tools offered.

#![no_main]

use libfuzzer_sys::fuzz_target;
use punie::llm::{FinishReason, MarkupFilter, ModelEvent, ToolSpec};
use serde_json::json;

mod split;

fn tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "read_file".into(),
            description: "Read a file".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        },
        ToolSpec {
            name: "write_file".into(),
            description: "Write a file".into(),
            parameters: json!({"type": "object", "properties": {
                "path": {"type": "string"},
                "content": {"type": "string"},
                "mode": {"type": "integer"},
            }}),
        },
    ]
}

/// What a user sees of an answer: consecutive text (and thought) deltas joined, tool calls with
/// their ids numbered in order (the filter makes up random ids), errors as their message.
#[derive(Debug, PartialEq)]
enum Seen {
    Text(String),
    Thought(String),
    Call(usize, String, String),
    Other(String),
}

fn filtered(tools: &[ToolSpec], deltas: &[&str]) -> Vec<Seen> {
    let mut filter = MarkupFilter::new(tools);
    let mut out = Vec::new();
    for delta in deltas {
        out.extend(filter.push(Ok(ModelEvent::Text((*delta).to_owned()))));
    }
    out.extend(filter.push(Ok(ModelEvent::Finished(FinishReason::Stop))));
    out.extend(filter.end());
    let mut seen: Vec<Seen> = Vec::new();
    let mut calls = 0;
    for item in out {
        match (seen.last_mut(), item) {
            (_, Ok(ModelEvent::Text(text) | ModelEvent::Thought(text))) if text.is_empty() => {
                panic!("an empty text or thought event for {deltas:?}")
            }
            (Some(Seen::Text(last)), Ok(ModelEvent::Text(more))) => last.push_str(&more),
            (Some(Seen::Thought(last)), Ok(ModelEvent::Thought(more))) => last.push_str(&more),
            (_, Ok(ModelEvent::Text(text))) => seen.push(Seen::Text(text)),
            (_, Ok(ModelEvent::Thought(text))) => seen.push(Seen::Thought(text)),
            (_, Ok(ModelEvent::ToolCall(call))) => {
                calls += 1;
                seen.push(Seen::Call(calls, call.name, call.arguments));
            }
            (_, Ok(other)) => seen.push(Seen::Other(format!("{other:?}"))),
            (_, Err(error)) => seen.push(Seen::Other(error.to_string())),
        }
    }
    seen
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let chars: Vec<String> = text.chars().map(String::from).collect();
    let chars: Vec<&str> = chars.iter().map(String::as_str).collect();
    let pieces = split::text_pieces(&text);
    for tools in [tools(), Vec::new()] {
        let whole = filtered(&tools, &[&text]);
        assert_eq!(
            filtered(&tools, &chars),
            whole,
            "character by character differs (tools offered: {})",
            !tools.is_empty()
        );
        assert_eq!(
            filtered(&tools, &pieces),
            whole,
            "pieces {pieces:?} differ (tools offered: {})",
            !tools.is_empty()
        );
    }
});
