//! Tool calls in every shape small models write them outside the tags, through the whole
//! filter: what is read as a call, what stays text byte for byte, and that no cut of the text
//! changes either.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::candidate::MAX_CANDIDATE;
use super::tests::config;
use super::*;

/// The tools of a session: `grep` needs a pattern, `list_dir` needs nothing.
fn offered() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "grep".into(),
            description: "Search".into(),
            parameters: json!({"type": "object", "properties": {
                "pattern": {"type": "string"}, "path": {"type": "string"}, "hidden": {"type": "boolean"},
            }, "required": ["pattern"]}),
        },
        ToolSpec {
            name: "list_dir".into(),
            description: "List".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        },
        ToolSpec {
            name: "write_file".into(),
            description: "Write".into(),
            parameters: json!({"type": "object", "properties": {
                "path": {"type": "string"}, "content": {"type": "string"},
            }}),
        },
    ]
}

/// What a reader of the answer sees: calls as (name, arguments), text joined.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Text(String),
    Call(String, Value),
}

fn seen(tools: &[ToolSpec], chunks: &[&str]) -> Vec<Seen> {
    let mut filter = MarkupFilter::new(tools);
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(filter.push(Ok(ModelEvent::Text((*chunk).to_owned()))));
    }
    events.extend(filter.push(Ok(ModelEvent::Finished(FinishReason::Stop))));
    let mut out: Vec<Seen> = Vec::new();
    for event in events {
        match event.expect("no error") {
            ModelEvent::Text(text) => {
                assert!(!text.is_empty(), "an empty text event");
                match out.last_mut() {
                    Some(Seen::Text(last)) => last.push_str(&text),
                    _ => out.push(Seen::Text(text)),
                }
            }
            ModelEvent::ToolCall(call) => {
                let arguments =
                    serde_json::from_str(&call.arguments).unwrap_or(Value::String(call.arguments));
                out.push(Seen::Call(call.name, arguments));
            }
            _ => {}
        }
    }
    out
}

/// What `text` reads as, checked to be the same however it is cut in two or three.
fn read(tools: &[ToolSpec], text: &str) -> Vec<Seen> {
    let whole = seen(tools, &[text]);
    let bounds: Vec<usize> = (0..=text.len())
        .filter(|&i| text.is_char_boundary(i))
        .collect();
    for &i in &bounds {
        assert_eq!(
            seen(tools, &[&text[..i], &text[i..]]),
            whole,
            "{text:?} cut at {i}"
        );
    }
    for &i in bounds.iter().step_by(5) {
        for &j in bounds.iter().filter(|&&j| j >= i).step_by(7) {
            assert_eq!(
                seen(tools, &[&text[..i], &text[i..j], &text[j..]]),
                whole,
                "{text:?} cut at {i} and {j}"
            );
        }
    }
    whole
}

fn text(text: &str) -> Seen {
    Seen::Text(text.into())
}

fn call(name: &str, arguments: Value) -> Seen {
    Seen::Call(name.into(), arguments)
}

#[test]
fn the_shapes_from_the_issue() {
    let tools = offered();
    assert_eq!(
        read(
            &tools,
            r#"{"name": "grep", "arguments": {"pattern": "total_value", "path": "."}}"#
        ),
        vec![call("grep", json!({"pattern": "total_value", "path": "."}))]
    );
    assert_eq!(
        read(
            &tools,
            "```json\n{\"name\": \"grep\", \"arguments\": {\"pattern\": \"apply_discount\", \"path\": \"src/**/*.rs\", \"hidden\": false}}\n```"
        ),
        vec![call(
            "grep",
            json!({"pattern": "apply_discount", "path": "src/**/*.rs", "hidden": false})
        )]
    );
    assert_eq!(
        read(&tools, "<tool_response>list_dir</tool_response>"),
        vec![call("list_dir", json!({}))]
    );
}

/// Qwen2.5-Coder 1.5B writes a new file's content in Python's triple quotes (seen in the
/// real-task benchmark): a quote or brace inside does not end the call early.
#[test]
fn a_file_content_in_triple_quotes() {
    let tools = offered();
    let answer = "```json\n{\n  \"name\": \"write_file\",\n  \"arguments\": {\n    \"path\": \"tests/t.py\",\n    \"content\": \"\"\"\nimport unittest\nprint(\"a {\", 'b')\nx = \"\"\n\"\"\"\n  }\n}\n```";
    assert_eq!(
        read(&tools, answer),
        vec![call(
            "write_file",
            json!({"path": "tests/t.py", "content": "\nimport unittest\nprint(\"a {\", 'b')\nx = \"\"\n"})
        )]
    );
}

#[test]
fn every_way_of_writing_one_call() {
    let tools = offered();
    let grep = || call("grep", json!({"pattern": "x"}));
    for answer in [
        r#"{"name": "grep", "parameters": {"pattern": "x"}}"#,
        r#"{"name": "grep", "arguments": "{\"pattern\": \"x\"}"}"#,
        r#"{"type": "function", "function": {"name": "grep", "arguments": {"pattern": "x"}}}"#,
        r#"{"tool": "grep", "args": {"pattern": "x"}}"#,
        r#"[{"name": "grep", "arguments": {"pattern": "x"}}]"#,
        "{'name': 'grep', 'arguments': {'pattern': 'x',},}",
        "{name: \"grep\", arguments: {pattern: \"x\"}}",
        r#"{"name": "functions.grep", "arguments": {"pattern": "x"}}"#,
        r#"{"name": "Grep", "arguments": {"pattern": "x"}}"#,
        "```\n{\"name\": \"grep\", \"arguments\": {\"pattern\": \"x\"}}\n```",
        "```JSON\n[{\"name\": \"grep\", \"arguments\": {\"pattern\": \"x\"}}]\n```\n",
        "<tool_response>{\"name\": \"grep\", \"arguments\": {\"pattern\": \"x\"}}</tool_response>",
        "<function_call>{\"name\": \"grep\", \"arguments\": {\"pattern\": \"x\"}}</function_call>",
        "<|python_tag|>{\"name\": \"grep\", \"parameters\": {\"pattern\": \"x\"}}",
        "<tool_call>{\"name\": \"functions.GREP\", \"arguments\": {\"pattern\": \"x\"}}</tool_call>",
        // An object left open at the end of the answer.
        r#"{"name": "grep", "arguments": {"pattern": "x"}"#,
    ] {
        assert_eq!(read(&tools, answer), vec![grep()], "{answer}");
    }
    assert_eq!(
        read(
            &tools,
            "{'name': 'grep', 'arguments': {'pattern': 'x', 'hidden': True, 'path': None}}"
        ),
        vec![call(
            "grep",
            json!({"pattern": "x", "hidden": true, "path": null})
        )]
    );
}

#[test]
fn text_around_calls_and_several_calls() {
    let tools = offered();
    assert_eq!(
        read(
            &tools,
            "I'll search first.\n{\"name\": \"grep\", \"arguments\": {\"pattern\": \"x\"}}\nThen I'll list."
        ),
        // Calls are handed out at the end of the answer, after all its text.
        vec![
            text("I'll search first.\nThen I'll list."),
            call("grep", json!({"pattern": "x"})),
        ]
    );
    assert_eq!(
        read(
            &tools,
            "```json\n{\"name\": \"grep\", \"arguments\": {\"pattern\": \"x\"}}\n{\"name\": \"list_dir\"}\n```"
        ),
        vec![
            call("grep", json!({"pattern": "x"})),
            call("list_dir", json!({}))
        ]
    );
    assert_eq!(
        read(
            &tools,
            "[{\"name\": \"list_dir\", \"arguments\": {}}, {\"function\": {\"name\": \"grep\", \"arguments\": \"{\\\"pattern\\\": \\\"y\\\"}\"}}]"
        ),
        vec![
            call("list_dir", json!({})),
            call("grep", json!({"pattern": "y"}))
        ]
    );
}

#[test]
fn botched_calls_are_calls_for_the_turn_loop_to_correct() {
    let tools = offered();
    // A name that is no tool, in a call-shaped object: the turn loop names the right ones.
    assert_eq!(
        read(
            &tools,
            r#"{"name": "read_inventory/report.py", "arguments": {}}"#
        ),
        vec![call("read_inventory/report.py", json!({}))]
    );
    // Arguments that are no object: the turn loop says what they must be.
    assert_eq!(
        read(&tools, r#"{"name": "grep", "arguments": "total_value"}"#),
        vec![call("grep", json!("total_value"))]
    );
    // A bare name of a tool that needs arguments: called without, so its check names them.
    assert_eq!(
        read(&tools, "<tool_response>grep</tool_response>"),
        vec![call("grep", json!({}))]
    );
}

#[test]
fn json_that_is_no_call_stays_text_byte_for_byte() {
    let tools = offered();
    for answer in [
        "Your package.json:\n```json\n{\n  \"name\": \"my-app\",\n  \"version\": \"1.0.0\",\n  \"scripts\": {\"test\": \"jest\"}\n}\n```\nRun `npm test`.",
        "{\"dependencies\": {\"serde\": \"1\"}}",
        "{\"name\": \"unknown_tool\"}",
        "{\"name\": \"grep\", \"description\": \"Search files\"}",
        "```rust\nfn main() {\n    println!(\"{}\", 1);\n}\n```",
        "See [the docs](https://x.y) and [1, 2, 3] or {braces} and {\"a\": 1}.",
        "A list: [{\"id\": 1}, {\"id\": 2}]",
        "```\nplain\n```",
        "<tool_response>The grep found 3 matches</tool_response>",
        "<tool_response>{\"matches\": 3}</tool_response>",
        "Use `{` and `[` and ``` in prose.",
        "{\"name\": \"grep\", \"arguments\": {\"pattern\": x}} is broken",
        "[TOOL_REQUESTED] [TOOL_ and [",
        "A tool is declared like this:\n```json\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Weather\", \"parameters\": {\"type\": \"object\"}}}\n```",
    ] {
        assert_eq!(read(&tools, answer), vec![text(answer)], "{answer}");
    }
    // Without tools offered, even a call is text.
    let answer = r#"{"name": "grep", "arguments": {"pattern": "x"}}"#;
    assert_eq!(read(&[], answer), vec![text(answer)]);
}

#[test]
fn only_what_may_become_a_call_waits() {
    let mut filter = MarkupFilter::new(&offered());
    let mut pushed = |chunk: &str| -> String {
        filter
            .push(Ok(ModelEvent::Text(chunk.to_owned())))
            .into_iter()
            .map(|event| match event {
                Ok(ModelEvent::Text(text)) => text,
                other => panic!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(pushed("Use {"), "Use ");
    assert_eq!(pushed("} or "), "{} or ");
    assert_eq!(pushed("{\"version\""), "");
    assert_eq!(pushed(": 1} ok"), "{\"version\": 1} ok");
    assert_eq!(pushed("```rust\n"), "");
    assert_eq!(pushed("fn"), "```rust\nfn");
    assert_eq!(pushed(" {\"name\": \"a\", "), " ");
}

#[test]
fn a_candidate_past_the_bound_is_text() {
    let tools = offered();
    let answer = format!(
        "{{\"name\": \"write_file\", \"arguments\": {{\"path\": \"a\", \"content\": \"{}\"}}}}",
        "é".repeat(MAX_CANDIDATE / 2)
    );
    let whole = seen(&tools, &[&answer]);
    assert_eq!(whole, vec![text(&answer)]);
    let mid = (0..=answer.len() / 2)
        .rev()
        .find(|&i| answer.is_char_boundary(i))
        .unwrap();
    assert_eq!(seen(&tools, &[&answer[..mid], &answer[mid..]]), whole);
}

/// Pieces of answers with calls in the shapes above, to build arbitrary answers from.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Let me look. ".to_owned()),
        Just("é 🦙 ".to_owned()),
        Just("{\"name\": \"grep\", \"arguments\": {\"pattern\": \"a}b\"}}".to_owned()),
        Just("```json\n{\"name\": \"list_dir\", \"arguments\": {}}\n```".to_owned()),
        Just("[{'name': 'grep', 'arguments': {'pattern': 'x',},}]".to_owned()),
        Just("{name: \"functions.list_dir\"}".to_owned()),
        Just("<tool_response>list_dir</tool_response>".to_owned()),
        Just("<|python_tag|>{\"name\": \"grep\", \"parameters\": {\"pattern\": \"y\"}}".to_owned()),
        Just("```json\n{\"name\": \"my-app\", \"version\": \"1\"}\n```".to_owned()),
        Just("{\"dependencies\": {}}".to_owned()),
        Just(
            "{\"name\": \"write_file\", \"arguments\": {\"content\": \"\"\"a \" } \"\"\"}}"
                .to_owned()
        ),
        Just("[link](url) ".to_owned()),
        Just("```".to_owned()),
        Just("`".to_owned()),
        Just("{".to_owned()),
        Just("[".to_owned()),
        Just("<tool_call>{\"name\": \"grep\", \"arguments\": {}}</tool_call>".to_owned()),
        "[a-z {}\\[\\]'\":,`\n]{0,12}",
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_cut_of_any_answer_with_bare_calls_reads_the_same(
        fragments in proptest::collection::vec(fragment(), 0..6),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let tools = offered();
        let text: String = fragments.concat();
        let whole = seen(&tools, &[&text]);
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
        bounds.extend([0, text.len()]);
        bounds.sort_unstable();
        bounds.dedup();
        let pieces: Vec<&str> = bounds.windows(2).map(|pair| &text[pair[0]..pair[1]]).collect();
        prop_assert_eq!(seen(&tools, &pieces), whole.clone());
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let chars: Vec<&str> = chars.iter().map(String::as_str).collect();
        prop_assert_eq!(seen(&tools, &chars), whole.clone());
        // Text that holds no call is exactly what was written (but leading white space).
        if whole.iter().all(|piece| matches!(piece, Seen::Text(_))) {
            let shown: String = whole.iter().map(|piece| match piece {
                Seen::Text(text) => text.as_str(),
                Seen::Call(..) => "",
            }).collect();
            prop_assert_eq!(shown.as_str(), text.trim_start());
        }
    }
}
