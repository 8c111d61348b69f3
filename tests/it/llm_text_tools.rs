//! Tool calls and thoughts written as text, through the front door of a fake server: every
//! dialect, tags cut anywhere (also over HTTP, at random bytes), structured calls winning, thoughts
//! opened by the chat template, and the switch to text tool calling when a server refuses `tools`.

use crate::support::fake_model::{FakeModelServer, Part, Reply};
use crate::support::fixture;
use crate::support::model_client::{Answer, ask, model, request, tools};
use futures::StreamExt;
use proptest::prelude::*;
use punie::llm::{ChatModel, ChatRequest, FinishReason, Message, ModelEvent, ToolCall};
use serde_json::{Value, json};

/// The calls as (name, arguments as JSON), ids checked to be generated ones.
fn calls(answer: &Answer) -> Vec<(String, Value)> {
    answer
        .calls
        .iter()
        .map(|call| {
            assert!(!call.id.is_empty());
            let arguments = serde_json::from_str(&call.arguments)
                .unwrap_or_else(|_| Value::String(call.arguments.clone()));
            (call.name.clone(), arguments)
        })
        .collect()
}

fn named(name: &str, arguments: Value) -> (String, Value) {
    (name.to_owned(), arguments)
}

// ---------------------------------------------------------------------------------------------
// Tool calls written as text

#[tokio::test]
async fn tool_calls_written_as_text_in_every_dialect() {
    let server = FakeModelServer::start().await;
    // (what, fixture, text, thought, calls)
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        Vec<(String, Value)>,
    );
    let cases: Vec<Case> = vec![
        (
            "hermes, llama.cpp without --jinja",
            fixture!("text_tools/hermes_llama_cpp.sse"),
            "I'll read the file first.\n",
            "",
            vec![named("read_file", json!({"path": "src/main.rs"}))],
        ),
        (
            "hermes, vLLM without a parser, thinking inline, arguments as a string",
            fixture!("text_tools/hermes_vllm_think_parallel.sse"),
            "",
            "The user wants both files. I'll read them.\n",
            vec![
                named("read_file", json!({"path": "Cargo.toml"})),
                named("read_file", json!({"path": "README.md"})),
            ],
        ),
        (
            "qwen3-coder XML, LM Studio",
            fixture!("text_tools/qwen3_coder_lmstudio.sse"),
            // The line between the two calls is text too.
            "Let me search for it.\n\n\n",
            "",
            vec![
                named(
                    "grep",
                    json!({"pattern": "fn main", "max_results": 20, "case_sensitive": false}),
                ),
                named(
                    "write_file",
                    json!({"path": "src/lib.rs", "content": "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n"}),
                ),
            ],
        ),
        (
            "LM Studio [TOOL_REQUEST]",
            fixture!("text_tools/tool_request_lmstudio.sse"),
            "",
            "",
            vec![named("read_file", json!({"path": "README.md"}))],
        ),
        (
            "Mistral array, Ollama",
            fixture!("text_tools/mistral_array_ollama.sse"),
            "",
            "",
            vec![
                named("read_file", json!({"path": "Cargo.toml"})),
                named("grep", json!({"pattern": "TODO", "max_results": 5})),
            ],
        ),
        (
            "Mistral [ARGS], llama.cpp",
            fixture!("text_tools/mistral_args_llama_cpp.sse"),
            "",
            "",
            vec![
                named("read_file", json!({"path": "src/lib.rs"})),
                named("grep", json!({"pattern": "unsafe"})),
            ],
        ),
        (
            "tags split across chunks",
            fixture!("text_tools/split_tags.sse"),
            "If a < b and [x] <b>bold</b>, then call <tool_call> tags: see below.\n  Done.",
            "Is a < b? Yes.",
            vec![
                named("read_file", json!({"path": "a </tool_call> b.txt"})),
                named("grep", json!({"pattern": "x"})),
            ],
        ),
        (
            "unreadable markup",
            fixture!("text_tools/unreadable_markup.sse"),
            "Use the <tool_call> tag to call tools.\n",
            "",
            vec![(
                "read_file".to_owned(),
                Value::String(
                    "{\"name\": \"read_file\", \"arguments\": {\"path\": src/main.rs}}".into(),
                ),
            )],
        ),
    ];
    let model = model(&server, "some-model");
    for (name, body, text, thought, expected) in cases {
        server.push(Reply::sse_body(body));
        let answer = ask(&model, request(tools())).await.expect(name);
        assert_eq!(answer.text, text, "{name}");
        assert_eq!(answer.thought, thought, "{name}");
        assert_eq!(calls(&answer), expected, "{name}");
        assert_eq!(answer.finish, Some(FinishReason::ToolCalls), "{name}");
        let mut ids: Vec<&str> = answer.calls.iter().map(|call| call.id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), answer.calls.len(), "{name}: ids are unique");
    }
}

#[tokio::test]
async fn markup_is_text_when_no_tools_were_offered() {
    let server = FakeModelServer::start().await;
    server.push(Reply::sse_body(fixture!("text_tools/hermes_llama_cpp.sse")));
    let answer = ask(&model(&server, "m"), request(vec![])).await.unwrap();
    assert!(answer.calls.is_empty());
    assert!(answer.text.contains("<tool_call>"), "{}", answer.text);
    assert_eq!(answer.finish, Some(FinishReason::Stop));
}

#[tokio::test]
async fn structured_tool_calls_win_over_markup() {
    let server = FakeModelServer::start().await;
    let markup = "<tool_call>{\"name\": \"list_dir\", \"arguments\": {}}</tool_call>";
    server.push(Reply::parts(vec![
        Part::text(&format!("Looking. {markup}")),
        Part::tool_call_with_id("call_9", "read_file", json!({"path": "a"})),
    ]));
    let answer = ask(&model(&server, "m"), request(tools())).await.unwrap();
    assert_eq!(answer.text, format!("Looking. {markup}"));
    assert_eq!(
        answer.calls,
        vec![ToolCall {
            id: "call_9".into(),
            name: "read_file".into(),
            arguments: r#"{"path":"a"}"#.into()
        }]
    );
}

#[tokio::test]
async fn thoughts_opened_by_the_chat_template() {
    let server = FakeModelServer::start().await;
    let body = fixture!("text_tools/think_opened_by_template.sse");

    // A name that says so: held from the first answer.
    let thinking = model(&server, "qwen3-30b-a3b-thinking-2507-q4_k_m.gguf");
    server.push(Reply::sse_body(body));
    let answer = ask(&thinking, request(tools())).await.unwrap();
    assert_eq!(answer.thought, "Okay, the user wants to see the files.\n");
    assert_eq!(answer.text, "I'll list the directory.\n");
    assert_eq!(calls(&answer), vec![named("list_dir", json!({}))]);

    // Any other model streams its first answer at once (the thought shows as text, without the
    // tag), and holds its next ones.
    let other = model(&server, "my-finetune");
    server.push(Reply::sse_body(body));
    let answer = ask(&other, request(tools())).await.unwrap();
    assert_eq!(answer.thought, "");
    assert_eq!(
        answer.text,
        "Okay, the user wants to see the files.\nI'll list the directory.\n"
    );
    server.push(Reply::sse_body(body));
    let answer = ask(&other, request(tools())).await.unwrap();
    assert_eq!(answer.thought, "Okay, the user wants to see the files.\n");
    assert_eq!(answer.text, "I'll list the directory.\n");
}

#[tokio::test]
async fn text_streams_before_the_answer_ends() {
    let server = FakeModelServer::start().await;
    server.push(
        Reply::parts(vec![Part::text(
            "Hello <tool_call>{\"name\": \"read_file\"}",
        )])
        .hang_after(3),
    );
    let mut stream = model(&server, "m").stream(request(tools())).await.unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        ModelEvent::Text("Hello ".into())
    );
}

// ---------------------------------------------------------------------------------------------
// Servers that refuse `tools`

fn history_with_calls() -> ChatRequest {
    ChatRequest {
        messages: vec![
            Message::System {
                content: "You are Punie.".into(),
            },
            Message::User {
                content: "Read a".into(),
            },
            Message::Assistant {
                content: None,
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "read_file".into(),
                    arguments: r#"{"path": "a"}"#.into(),
                }],
            },
            Message::Tool {
                tool_call_id: "call_1".into(),
                content: "A's content".into(),
            },
        ],
        tools: vec![tools().remove(0)],
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn servers_refusing_tools_switch_the_model_to_text_tool_calls() {
    for (server_kind, refusal) in [
        (
            "vLLM",
            Reply::fixture(fixture!("failures/vllm_auto_tool_choice_400.http")),
        ),
        (
            "llama.cpp",
            Reply::fixture(fixture!("failures/llama_cpp_no_jinja_500.http")),
        ),
        (
            "Ollama",
            Reply::fixture(fixture!("failures/ollama_no_tools_400.http")),
        ),
    ] {
        let server = FakeModelServer::start().await;
        let model = model(&server, "m");
        server.push(refusal);
        server.push(Reply::text(
            "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"b\"}}\n</tool_call>",
        ));
        let answer = ask(&model, history_with_calls()).await.expect(server_kind);
        assert_eq!(
            calls(&answer),
            vec![named("read_file", json!({"path": "b"}))],
            "{server_kind}"
        );
        assert!(model.uses_text_tool_calls());
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "{server_kind}");
        assert!(requests[0].get("tools").is_some());
        let retried = &requests[1];
        assert!(retried.get("tools").is_none(), "{server_kind}: {retried}");
        let messages = retried["messages"].as_array().unwrap();
        let system = messages[0]["content"].as_str().unwrap();
        assert!(system.starts_with("You are Punie.\n\n# Tools"), "{system}");
        assert!(system.contains("\"name\": \"read_file\""), "{system}");
        assert!(
            system.contains("\"parameters\": {")
                && system.contains("\"path\":{\"type\":\"string\"}"),
            "{system}"
        );
        assert!(
            system.contains(
                "<tool_call>\n{\"name\": \"tool_name\", \"arguments\": {\"argument\": \"value\"}}\n</tool_call>"
            ),
            "{system}"
        );
        assert_eq!(
            messages[1..],
            [
                json!({"role": "user", "content": "Read a"}),
                json!({"role": "assistant", "content": "<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\":\"a\"}}\n</tool_call>"}),
                json!({"role": "user", "content": "<tool_response>\nA's content\n</tool_response>"}),
            ]
        );

        // From now on, straight to text tool calls.
        server.push(Reply::text("Done."));
        let answer = ask(&model, history_with_calls()).await.unwrap();
        assert_eq!(answer.text, "Done.");
        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        assert!(requests[2].get("tools").is_none());
    }
}

#[tokio::test]
async fn text_tool_calls_can_be_chosen_up_front() {
    let server = FakeModelServer::start().await;
    let model = model(&server, "m").with_text_tool_calls(true);
    assert!(model.uses_text_tool_calls());
    server.push(Reply::text("Hi"));
    ask(&model, history_with_calls()).await.unwrap();
    // Without tools, a request is sent as it is.
    server.push(Reply::text("Hi"));
    ask(&model, request(vec![])).await.unwrap();
    let requests = server.requests();
    assert!(requests[0].get("tools").is_none());
    assert!(requests[0].to_string().contains("<tool_response>"));
    assert_eq!(requests[1]["messages"][0]["content"], "You are Punie.");
}

#[tokio::test]
async fn a_refusal_without_tools_offered_is_an_error() {
    let server = FakeModelServer::start().await;
    let model = model(&server, "m");
    server.push(Reply::fixture(fixture!(
        "failures/ollama_no_tools_400.http"
    )));
    let (_, error) = ask(&model, request(vec![])).await.unwrap_err();
    assert!(error.is_tools_unsupported(), "{error}");
    assert!(!model.uses_text_tool_calls());
}

// ---------------------------------------------------------------------------------------------
// However the bytes come

fn text_tool_fixtures() -> Vec<&'static str> {
    vec![
        fixture!("text_tools/hermes_llama_cpp.sse"),
        fixture!("text_tools/hermes_vllm_think_parallel.sse"),
        fixture!("text_tools/qwen3_coder_lmstudio.sse"),
        fixture!("text_tools/tool_request_lmstudio.sse"),
        fixture!("text_tools/mistral_array_ollama.sse"),
        fixture!("text_tools/mistral_args_llama_cpp.sse"),
        fixture!("text_tools/split_tags.sse"),
        fixture!("text_tools/think_opened_by_template.sse"),
        fixture!("text_tools/unreadable_markup.sse"),
    ]
}

/// The answer without its ids (generated at random for calls written as text).
fn without_ids(mut answer: Answer) -> Answer {
    for call in &mut answer.calls {
        call.id.clear();
    }
    answer
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x0070_756e_6965),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_cut_of_the_bytes_over_http_reads_the_same(
        which in 0..9usize,
        cuts in proptest::collection::vec(any::<usize>(), 1..12),
    ) {
        let body = text_tool_fixtures()[which];
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (whole, cut) = runtime.block_on(async {
            let server = FakeModelServer::start().await;
            server.push(Reply::sse_body(body));
            // Two models: each learns from its first answer how the next ones start.
            let whole = ask(&model(&server, "m"), request(tools())).await.unwrap();
            let model = model(&server, "m");
            let bytes = body.as_bytes();
            let mut bounds: Vec<usize> = cuts.iter().map(|cut| cut % (bytes.len() + 1)).collect();
            bounds.extend([0, bytes.len()]);
            bounds.sort_unstable();
            bounds.dedup();
            let writes = bounds.windows(2).map(|pair| bytes[pair[0]..pair[1]].to_vec()).collect();
            server.push(Reply::sse_writes(writes));
            let cut = ask(&model, request(tools())).await.unwrap();
            (without_ids(whole), without_ids(cut))
        });
        prop_assert_eq!(cut, whole);
    }
}
