//! Every recorded and hand-made stream in `tests/fixtures`, replayed offline through the
//! client's reader and the markup filter: however the bytes are cut into reads, and however the
//! answer's text is cut into chunks, the events read the same (once adjacent text and adjacent
//! thoughts are joined).

use proptest::prelude::*;
use serde_json::json;

use super::markup::MarkupFilter;
use super::stream::replay;
use super::{LlmError, ModelEvent, ToolSpec};

/// Events with errors as their messages, so they can be compared and cloned.
type Events = Vec<Result<ModelEvent, String>>;

macro_rules! fixture {
    ($path:literal) => {
        (
            $path,
            &include_bytes!(concat!("../../tests/fixtures/", $path))[..],
        )
    };
}

fn fixtures() -> Vec<(&'static str, &'static [u8])> {
    vec![
        fixture!("llama.cpp/20_chat_stream_usage_stop.http"),
        fixture!("llama.cpp/21_chat_stream_usage_length.http"),
        fixture!("llama.cpp/22_chat_stream_without_stream_options.http"),
        fixture!("llama.cpp/23_chat_stream_length_cut_inside_utf8.http"),
        fixture!("llama.cpp/24_chat_stream_usage_stop_RAWWIRE.http"),
        fixture!("llama.cpp/31_tools_auto_stream_toolcall.http"),
        fixture!("llama.cpp/32_tools_auto_stream_content.http"),
        fixture!("llama.cpp/33_tools_required_stream_parallel.http"),
        fixture!("llama.cpp/34_tools_required_stream_length_mid_call.http"),
        fixture!("llama.cpp/35_tools_required_stream_RAWWIRE.http"),
        fixture!("llama.cpp/36_tools_required_stream_content_then_toolcall.http"),
        fixture!("llama.cpp/37_tools_auto_stream_content_then_toolcall.http"),
        fixture!("llama.cpp/50_tool_result_followup_stream.http"),
        fixture!("llama.cpp/69_ctx_fill_stream_prompt_plus_max_tokens_exceeds_ctx.http"),
        fixture!("llama.cpp/81_think_chat_stream.http"),
        fixture!("llama.cpp/82_think_tools_auto_stream_toolcall.http"),
        fixture!("llama.cpp/85_think_chat_stream_reasoning_format_none.http"),
        fixture!("llama.cpp/86_think_tools_auto_stream_content_then_toolcall.http"),
        fixture!("llama.cpp/87_think_chat_stream_length_inside_reasoning.http"),
        fixture!("ollama/text_with_reasoning.sse"),
        fixture!("ollama/tool_calls_index_reused.sse"),
        fixture!("ollama/tool_calls_old_no_index.sse"),
        fixture!("ollama/tool_calls_whole.sse"),
        fixture!("lmstudio/reasoning_text.sse"),
        fixture!("lmstudio/tool_calls_fragmented.sse"),
        fixture!("text_tools/hermes_llama_cpp.sse"),
        fixture!("text_tools/hermes_vllm_think_parallel.sse"),
        fixture!("text_tools/qwen3_coder_lmstudio.sse"),
        fixture!("text_tools/tool_request_lmstudio.sse"),
        fixture!("text_tools/mistral_array_ollama.sse"),
        fixture!("text_tools/mistral_args_llama_cpp.sse"),
        fixture!("text_tools/split_tags.sse"),
        fixture!("text_tools/think_opened_by_template.sse"),
        fixture!("text_tools/unreadable_markup.sse"),
        fixture!("text_tools/bare_json_llama_cpp.sse"),
        fixture!("text_tools/fenced_json_llama_cpp.sse"),
        fixture!("text_tools/tool_response_name_llama_cpp.sse"),
        fixture!("failures/cut_before_done.sse"),
        fixture!("failures/cut_before_content.sse"),
        fixture!("failures/in_stream_error.sse"),
    ]
}

/// The body of a fixture: an `.sse` file as it is, an `.http` file after its headers (with
/// HTTP chunking undone where the recording kept it).
fn body_of(name: &str, bytes: &[u8]) -> Vec<u8> {
    if !name.ends_with(".http") {
        return bytes.to_vec();
    }
    let split = bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("headers end");
    let head = String::from_utf8_lossy(&bytes[..split]).to_ascii_lowercase();
    let mut body = &bytes[split + 4..];
    if !head.contains("transfer-encoding: chunked") || !name.contains("RAWWIRE") {
        return body.to_vec();
    }
    let mut decoded = Vec::new();
    while let Some(end) = body.windows(2).position(|pair| pair == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&body[..end]).unwrap().trim(), 16)
            .expect("a chunk size");
        body = &body[end + 2..];
        if size == 0 {
            break;
        }
        decoded.extend_from_slice(&body[..size]);
        body = body[size..].strip_prefix(b"\r\n").unwrap_or_default();
    }
    decoded
}

fn tools() -> Vec<ToolSpec> {
    ["read_file", "write_file", "grep", "list_dir"]
        .iter()
        .map(|name| ToolSpec {
            name: (*name).into(),
            description: String::new(),
            parameters: json!({"type": "object", "properties": {
                "path": {"type": "string"},
                "content": {"type": "string"},
                "pattern": {"type": "string"},
                "max_results": {"type": "integer"},
                "case_sensitive": {"type": "boolean"},
            }}),
        })
        .collect()
}

fn unfiltered(reads: &[&[u8]]) -> Events {
    replay(reads)
        .into_iter()
        .map(|item| item.map_err(|error| error.to_string()))
        .collect()
}

/// What the consumer sees: the events filtered, adjacent text and thoughts joined, generated
/// ids made stable.
fn seen(events: &Events, offer_tools: bool, hold: bool) -> Events {
    let tools = if offer_tools { tools() } else { Vec::new() };
    let mut next = 0;
    let mut filter = MarkupFilter::build(&tools, hold, None).with_ids(move || {
        next += 1;
        format!("text_call_{next}")
    });
    let mut out = Vec::new();
    for item in events {
        let item = match item {
            Ok(event) => Ok(event.clone()),
            Err(message) => Err(LlmError::Backend {
                message: message.clone(),
            }),
        };
        out.extend(filter.push(item));
    }
    out.extend(filter.end());
    let mut joined: Events = Vec::new();
    for item in out {
        match (joined.last_mut(), item.map_err(|error| error.to_string())) {
            (_, Ok(ModelEvent::Text(text) | ModelEvent::Thought(text))) if text.is_empty() => {
                panic!("an empty text or thought")
            }
            (Some(Ok(ModelEvent::Text(last))), Ok(ModelEvent::Text(more)))
            | (Some(Ok(ModelEvent::Thought(last))), Ok(ModelEvent::Thought(more))) => {
                last.push_str(&more)
            }
            (_, Ok(ModelEvent::ToolCall(mut call))) => {
                // The assembler names calls the server sent without an id at random.
                if call.id.len() == 37 && call.id.starts_with("call_") {
                    call.id = "call_generated".into();
                }
                joined.push(Ok(ModelEvent::ToolCall(call)));
            }
            (_, item) => joined.push(item),
        }
    }
    joined
}

/// `events` with the text of each run of text events cut at `cuts` (offsets into all the
/// answer's text, moved to character boundaries) instead of where the server cut it.
fn recut(events: &Events, cuts: &[usize]) -> Events {
    let mut out = Vec::new();
    let mut offset = 0;
    let mut index = 0;
    while index < events.len() {
        let mut run = String::new();
        while let Some(Ok(ModelEvent::Text(text))) = events.get(index) {
            run.push_str(text);
            index += 1;
        }
        if run.is_empty() {
            out.push(events[index].clone());
            index += 1;
            continue;
        }
        let mut bounds: Vec<usize> = cuts
            .iter()
            .filter(|&&cut| cut > offset && cut < offset + run.len())
            .map(|&cut| {
                let mut at = cut - offset;
                while !run.is_char_boundary(at) {
                    at -= 1;
                }
                at
            })
            .collect();
        bounds.extend([0, run.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        for pair in bounds.windows(2) {
            out.push(Ok(ModelEvent::Text(run[pair[0]..pair[1]].to_owned())));
        }
        offset += run.len();
    }
    out
}

fn text_len(events: &Events) -> usize {
    events
        .iter()
        .map(|item| match item {
            Ok(ModelEvent::Text(text)) => text.len(),
            _ => 0,
        })
        .sum()
}

#[test]
fn every_cut_of_the_text_reads_the_same() {
    for (name, bytes) in fixtures() {
        let body = body_of(name, bytes);
        let events = unfiltered(&[&body]);
        let length = text_len(&events);
        for (offer_tools, hold) in [(true, false), (false, false), (true, true)] {
            let whole = seen(&events, offer_tools, hold);
            for at in 0..=length {
                assert_eq!(
                    seen(&recut(&events, &[at]), offer_tools, hold),
                    whole,
                    "{name}: text cut at {at} (tools {offer_tools}, hold {hold})"
                );
            }
            let everywhere: Vec<usize> = (0..=length).collect();
            assert_eq!(
                seen(&recut(&events, &everywhere), offer_tools, hold),
                whole,
                "{name}: text cut everywhere"
            );
        }
    }
}

#[test]
fn markup_never_reaches_text() {
    for (name, bytes) in fixtures() {
        if !name.starts_with("text_tools/") {
            continue;
        }
        let events = seen(&unfiltered(&[&body_of(name, bytes)]), true, false);
        let calls = events
            .iter()
            .filter(|item| matches!(item, Ok(ModelEvent::ToolCall(_))))
            .count();
        assert!(calls > 0, "{name}: {events:?}");
        for item in &events {
            if let Ok(ModelEvent::Text(text) | ModelEvent::Thought(text)) = item {
                for tag in [
                    "</tool_call>",
                    "</function>",
                    "[END_TOOL_REQUEST]",
                    "[ARGS]",
                    "<think>",
                    "</think>",
                ] {
                    // The one exception: markup that names no tool stays text.
                    let unreadable = name.contains("unreadable") && tag == "</tool_call>";
                    assert!(unreadable || !text.contains(tag), "{name}: {text:?}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(super::markup::tests::config(128))]

    #[test]
    fn any_cut_of_the_bytes_and_the_text_reads_the_same(
        which in 0..40usize,
        byte_cuts in proptest::collection::vec(any::<usize>(), 0..10),
        text_cuts in proptest::collection::vec(any::<usize>(), 0..10),
        offer_tools in any::<bool>(),
        hold in any::<bool>(),
    ) {
        let fixtures = fixtures();
        let (name, bytes) = fixtures[which % fixtures.len()];
        let body = body_of(name, bytes);
        let whole = seen(&unfiltered(&[&body]), offer_tools, hold);
        let mut bounds: Vec<usize> = byte_cuts.iter().map(|cut| cut % (body.len() + 1)).collect();
        bounds.extend([0, body.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        let reads: Vec<&[u8]> = bounds.windows(2).map(|pair| &body[pair[0]..pair[1]]).collect();
        let events = unfiltered(&reads);
        prop_assert_eq!(seen(&events, offer_tools, hold), whole.clone(), "{} read in {} pieces", name, reads.len());
        let length = text_len(&events).max(1);
        let cuts: Vec<usize> = text_cuts.iter().map(|cut| cut % length).collect();
        prop_assert_eq!(seen(&recut(&events, &cuts), offer_tools, hold), whole, "{} with its text cut at {:?}", name, cuts);
    }
}
