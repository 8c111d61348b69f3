//! The markup filter on event streams: what it hands out, in which order, and that the way the
//! server cut the text into chunks never changes it.

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn read_file() -> ToolSpec {
    ToolSpec {
        name: "read_file".into(),
        description: "Read a file".into(),
        parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
    }
}

fn write_file() -> ToolSpec {
    ToolSpec {
        name: "write_file".into(),
        description: "Write a file".into(),
        parameters: json!({"type": "object", "properties": {
            "path": {"type": "string"},
            "content": {"type": "string"},
            "mode": {"type": "integer"},
        }}),
    }
}

fn numbered_ids() -> impl FnMut() -> String + Send + 'static {
    let mut next = 0;
    move || {
        next += 1;
        format!("text_call_{next}")
    }
}

fn run(filter: MarkupFilter, items: Vec<Result<ModelEvent, LlmError>>) -> Vec<ModelEvent> {
    let mut filter = filter.with_ids(numbered_ids());
    let mut out = Vec::new();
    for item in items {
        out.extend(filter.push(item));
    }
    out.extend(filter.end());
    out.into_iter()
        .map(|item| item.expect("no error"))
        // How each call was written is checked on its own (`each_call_read_from_text_says_its_shape`).
        .filter(|event| !matches!(event, ModelEvent::RecoveredCall(_)))
        .collect()
}

#[test]
fn each_call_read_from_text_says_its_shape() {
    let mut filter = MarkupFilter::new(&[read_file()]);
    let mut out = Vec::new();
    for chunk in [
        "<tool_call>{\"name\": \"read_file\", \"arguments\": {\"path\": \"a\"}}</tool_call>",
        "\n```json\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"b\"}}\n```\n",
    ] {
        out.extend(filter.push(Ok(ModelEvent::Text(chunk.to_owned()))));
    }
    out.extend(filter.push(Ok(ModelEvent::Finished(FinishReason::Stop))));
    let order: Vec<String> = out
        .into_iter()
        .filter_map(|event| match event.expect("no error") {
            ModelEvent::RecoveredCall(shape) => Some(shape.to_owned()),
            ModelEvent::ToolCall(call) => Some(format!("call {}", call.arguments)),
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        [
            "tool_call_tag",
            r#"call {"path":"a"}"#,
            "fenced_json",
            r#"call {"path":"b"}"#
        ]
    );

    // Structured calls give the markup back as text, and its shapes go with it.
    let mut filter = MarkupFilter::new(&[read_file()]);
    let mut out = filter.push(Ok(ModelEvent::Text(
        "<tool_call>{\"name\": \"read_file\", \"arguments\": {}}</tool_call>".into(),
    )));
    out.extend(filter.push(Ok(call("c1", "read_file", "{}"))));
    out.extend(filter.push(Ok(ModelEvent::Finished(FinishReason::ToolCalls))));
    assert!(
        !out.iter()
            .any(|event| matches!(event, Ok(ModelEvent::RecoveredCall(_)))),
        "{out:?}"
    );
}

/// Adjacent text and adjacent thoughts joined: what a reader of the answer sees.
fn joined(events: Vec<ModelEvent>) -> Vec<ModelEvent> {
    let mut out: Vec<ModelEvent> = Vec::new();
    for event in events {
        match (out.last_mut(), event) {
            (_, ModelEvent::Text(text) | ModelEvent::Thought(text)) if text.is_empty() => {
                panic!("an empty text or thought event")
            }
            (Some(ModelEvent::Text(last)), ModelEvent::Text(more)) => last.push_str(&more),
            (Some(ModelEvent::Thought(last)), ModelEvent::Thought(more)) => last.push_str(&more),
            (_, event) => out.push(event),
        }
    }
    out
}

fn text_events(chunks: &[&str], finish: FinishReason) -> Vec<Result<ModelEvent, LlmError>> {
    let mut items: Vec<_> = chunks
        .iter()
        .map(|chunk| Ok(ModelEvent::Text((*chunk).to_owned())))
        .collect();
    items.push(Ok(ModelEvent::Usage(Usage {
        prompt_tokens: 5,
        completion_tokens: 7,
        ..Default::default()
    })));
    items.push(Ok(ModelEvent::Finished(finish)));
    items
}

fn call(id: &str, name: &str, arguments: &str) -> ModelEvent {
    ModelEvent::ToolCall(ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    })
}

fn usage() -> ModelEvent {
    ModelEvent::Usage(Usage {
        prompt_tokens: 5,
        completion_tokens: 7,
        ..Default::default()
    })
}

#[test]
fn text_calls_come_before_usage_and_finish_says_tool_calls() {
    let events = run(
        MarkupFilter::new(&[read_file()]),
        text_events(
            &[
                "I'll read it.\n<tool_",
                "call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"src/main.rs\"}}\n</tool_call>",
            ],
            FinishReason::Stop,
        ),
    );
    assert_eq!(
        joined(events),
        vec![
            ModelEvent::Text("I'll read it.\n".into()),
            call("text_call_1", "read_file", r#"{"path":"src/main.rs"}"#),
            usage(),
            ModelEvent::Finished(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn a_call_cut_by_the_length_limit_keeps_length() {
    let events = run(
        MarkupFilter::new(&[read_file()]),
        text_events(
            &["<tool_call>{\"name\": \"read_file\", \"arguments\": {\"pa"],
            FinishReason::Length,
        ),
    );
    assert_eq!(
        joined(events),
        vec![
            call(
                "text_call_1",
                "read_file",
                "{\"name\": \"read_file\", \"arguments\": {\"pa"
            ),
            usage(),
            ModelEvent::Finished(FinishReason::Length),
        ]
    );
}

#[test]
fn without_tools_markup_is_text_but_thoughts_are_thoughts() {
    let events = run(
        MarkupFilter::new(&[]),
        text_events(
            &["<think>Hmm</think>\n\n<tool_call>{\"name\": \"x\"}</tool_call>"],
            FinishReason::Stop,
        ),
    );
    assert_eq!(
        joined(events),
        vec![
            ModelEvent::Thought("Hmm".into()),
            ModelEvent::Text("<tool_call>{\"name\": \"x\"}</tool_call>".into()),
            usage(),
            ModelEvent::Finished(FinishReason::Stop),
        ]
    );
}

#[test]
fn structured_calls_give_the_markup_back_as_text() {
    let structured = call("call_1", "read_file", r#"{"path":"b"}"#);
    let mut items = vec![Ok(ModelEvent::Text(
        "a <tool_call>{\"name\": \"read_file\", \"arguments\": {}}</tool_call> b <tool_call>{\"na"
            .into(),
    ))];
    items.push(Ok(structured.clone()));
    items.push(Ok(ModelEvent::Finished(FinishReason::ToolCalls)));
    let events = run(MarkupFilter::new(&[read_file()]), items);
    assert_eq!(
        joined(events),
        vec![
            ModelEvent::Text(
                "a  b <tool_call>{\"name\": \"read_file\", \"arguments\": {}}</tool_call><tool_call>{\"na"
                    .into()
            ),
            structured,
            ModelEvent::Finished(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn errors_end_the_answer_and_drop_what_was_held() {
    let mut filter = MarkupFilter::new(&[read_file()]);
    assert_eq!(
        filter
            .push(Ok(ModelEvent::Text("Hi <tool_".into())))
            .into_iter()
            .map(Result::unwrap)
            .collect::<Vec<_>>(),
        vec![ModelEvent::Text("Hi ".into())]
    );
    let out = filter.push(Err(LlmError::StreamCut {
        url: "http://x/v1".into(),
        attempts: 1,
    }));
    assert!(matches!(out.as_slice(), [Err(LlmError::StreamCut { .. })]));
    assert!(filter.push(Ok(ModelEvent::Text("late".into()))).is_empty());
    assert!(filter.end().is_empty());
}

#[test]
fn structured_reasoning_passes_and_other_events_keep_their_order() {
    let events = run(
        MarkupFilter::new(&[]),
        vec![
            Ok(ModelEvent::Thought("Let me see.".into())),
            Ok(ModelEvent::Text("Hello".into())),
            Ok(ModelEvent::Finished(FinishReason::Stop)),
        ],
    );
    assert_eq!(
        events,
        vec![
            ModelEvent::Thought("Let me see.".into()),
            ModelEvent::Text("Hello".into()),
            ModelEvent::Finished(FinishReason::Stop),
        ]
    );
}

#[test]
fn the_hint_learns_how_a_model_starts() {
    let hint = Arc::new(LeadingThoughts::new());
    // A name that suggests a template opening the thought: held from the first answer.
    assert!(hint.hold_for("qwen3-30b-a3b-thinking-2507"));
    let items = text_events(&["Okay.", "</think>", "Hi"], FinishReason::Stop);
    let events = run(
        MarkupFilter::with_hint(&[], Arc::clone(&hint), "qwen3-30b-a3b-thinking-2507"),
        items,
    );
    assert_eq!(
        joined(events)[..2],
        [
            ModelEvent::Thought("Okay.".into()),
            ModelEvent::Text("Hi".into())
        ]
    );
    assert!(hint.hold_for("qwen3-30b-a3b-thinking-2507"));

    // Another model streams at once, and learns from a stray `</think>`.
    let hint = Arc::new(LeadingThoughts::new());
    let mut filter = MarkupFilter::with_hint(&[], Arc::clone(&hint), "qwen3-8b");
    assert_eq!(
        filter
            .push(Ok(ModelEvent::Text("Okay".into())))
            .into_iter()
            .map(Result::unwrap)
            .collect::<Vec<_>>(),
        vec![ModelEvent::Text("Okay".into())]
    );
    filter.push(Ok(ModelEvent::Text(".</think>Hi".into())));
    filter.push(Ok(ModelEvent::Finished(FinishReason::Stop)));
    assert!(hint.hold_for("qwen3-8b"));
    // An answer that turns out not to start with a thought sets it back.
    let events = run(
        MarkupFilter::with_hint(&[], Arc::clone(&hint), "qwen3-8b"),
        text_events(&["Just text."], FinishReason::Stop),
    );
    assert_eq!(joined(events)[0], ModelEvent::Text("Just text.".into()));
    assert!(!hint.hold_for("qwen3-8b"));
}

#[test]
fn filter_markup_on_a_stream() {
    let items = text_events(
        &[
            "<think>a</think>",
            "[TOOL_REQUEST]{\"name\": \"read_file\", \"arguments\": {}}[END_TOOL_REQUEST]",
        ],
        FinishReason::Stop,
    );
    let stream: ModelStream = stream::iter(items).boxed();
    let events: Vec<ModelEvent> = futures::executor::block_on(
        filter_markup(stream, &[read_file()])
            .map(Result::unwrap)
            .collect::<Vec<_>>(),
    );
    assert_eq!(events.len(), 5);
    assert_eq!(events[0], ModelEvent::Thought("a".into()));
    assert_eq!(
        events[1],
        ModelEvent::RecoveredCall("lm_studio_tool_request")
    );
    let ModelEvent::ToolCall(call) = &events[2] else {
        panic!("{events:?}");
    };
    assert_eq!(call.name, "read_file");
    assert!(call.id.starts_with("call_"));
    assert_eq!(events[4], ModelEvent::Finished(FinishReason::ToolCalls));
}

/// Pieces answers are made of, to build arbitrary answers from.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Let me look. ".to_owned()),
        Just("é ü 🦙 ".to_owned()),
        Just("<think>\nplan\n</think>\n\n".to_owned()),
        Just("</think>".to_owned()),
        Just("<think>".to_owned()),
        Just("<".to_owned()),
        Just("[".to_owned()),
        Just("`<tool_call>` ".to_owned()),
        Just("<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a </tool_call> b\"}}\n</tool_call>".to_owned()),
        Just("<tool_call>{\"name\": \"read_file\", \"arguments\": \"{\\\"path\\\": \\\"x\\\"}\"}</tool_call>".to_owned()),
        Just("<tool_call>\n<function=write_file>\n<parameter=path>\na.rs\n</parameter>\n<parameter=content>\n</tool_call>\n</parameter>\n<parameter=mode>\n420\n</parameter>\n</function>\n</tool_call>".to_owned()),
        Just("<function=read_file>\n<parameter=path>\nb\n</parameter>\n</function>".to_owned()),
        Just("[TOOL_REQUEST]{\"name\": \"read_file\", \"arguments\": {\"path\": \"c\"}}[END_TOOL_REQUEST]".to_owned()),
        Just("[TOOL_CALLS][{\"name\": \"read_file\", \"arguments\": {\"path\": \"d\"}}]".to_owned()),
        Just("[TOOL_CALLS]read_file[ARGS]{\"path\": \"e\"}".to_owned()),
        Just("<tool_call>{\"name\": \"read_file\", \"arguments\": {\"path\": broken}</tool_call>".to_owned()),
        Just("<tool_call> is a tag ".to_owned()),
        Just("{\"name\": \"read_file\", \"arguments\": {'path': 'f',}}".to_owned()),
        Just("```json\n[{\"function\": {\"name\": \"functions.read_file\", \"arguments\": \"{}\"}}]\n```\n".to_owned()),
        Just("<tool_response>read_file</tool_response>".to_owned()),
        Just("{\"name\": \"my-app\", \"version\": \"1\"} ".to_owned()),
        Just("```".to_owned()),
        "[a-z <>\\[\\]/{}\"\n]{0,12}",
    ]
}

/// `text` cut at `cuts` (byte offsets, moved to character boundaries).
fn cut(text: &str, cuts: &[usize]) -> Vec<String> {
    let mut bounds: Vec<usize> = cuts
        .iter()
        .map(|&at| {
            let mut at = at % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            at
        })
        .collect();
    bounds.push(0);
    bounds.push(text.len());
    bounds.sort_unstable();
    bounds.dedup();
    bounds
        .windows(2)
        .map(|pair| text[pair[0]..pair[1]].to_owned())
        .collect()
}

fn filtered(hold: bool, tools: &[ToolSpec], chunks: &[String]) -> Vec<ModelEvent> {
    let mut filter = MarkupFilter::build(tools, hold, None);
    filter = filter.with_ids(numbered_ids());
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(filter.push(Ok(ModelEvent::Text(chunk.clone()))));
    }
    out.extend(filter.push(Ok(ModelEvent::Finished(FinishReason::Stop))));
    joined(out.into_iter().map(Result::unwrap).collect())
}

/// Deterministic runs (a fixed seed), and no regression files written into the tree: a failure
/// prints its minimal input, to be added to the unit tests above.
pub(crate) fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x0070_756e_6965),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn any_cut_of_any_answer_reads_the_same(
        fragments in proptest::collection::vec(fragment(), 0..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        hold in any::<bool>(),
        offer_tools in any::<bool>(),
    ) {
        let text: String = fragments.concat();
        let tools = if offer_tools { vec![read_file(), write_file()] } else { vec![] };
        let whole = filtered(hold, &tools, std::slice::from_ref(&text));
        let pieces = cut(&text, &cuts);
        prop_assert_eq!(filtered(hold, &tools, &pieces), whole.clone());
        // Character by character, the worst a server can do.
        let chars: Vec<String> = text.chars().map(String::from).collect();
        prop_assert_eq!(filtered(hold, &tools, &chars), whole.clone());
        // No markup ever leaks into text when tools are offered, unless it was not a call.
        if offer_tools {
            for event in &whole {
                if let ModelEvent::Text(text) = event {
                    prop_assert!(!text.contains("[END_TOOL_REQUEST]"), "{}", text);
                }
            }
        }
    }
}
