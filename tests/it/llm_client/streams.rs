//! Answers as each server streams them: text, tool calls and thoughts, llama.cpp's recordings,
//! Ollama's and LM Studio's shapes, and servers that ignore `stream: true`.

use punie::llm::{FinishReason, ToolCall, Usage};
use serde_json::json;

use super::{LLAMA_HELLO, call, ok_answer, usage};
use crate::support::fake_model::{FakeModelServer, Part, Reply};
use crate::support::fixture;

#[tokio::test]
async fn text_stream() {
    let server = FakeModelServer::start().await;
    let answer = ok_answer(&server, Reply::text("Hello there, how are you?")).await;
    assert_eq!(answer.text, "Hello there, how are you?");
    assert_eq!(answer.finish, Some(FinishReason::Stop));
    assert!(answer.usage.is_some());
    assert!(answer.calls.is_empty());
    assert_eq!(server.completed(), 1);
}

#[tokio::test]
async fn tool_call_stream() {
    let server = FakeModelServer::start().await;
    let reply = Reply::parts(vec![
        Part::thought("I should read it."),
        Part::text("Reading."),
        Part::tool_call_with_id("call_7", "read_file", json!({"path": "src/main.rs"})),
        Part::tool_call("list_dir", json!({})),
    ]);
    let answer = ok_answer(&server, reply).await;
    assert_eq!(answer.thought, "I should read it.");
    assert_eq!(answer.text, "Reading.");
    assert_eq!(answer.calls.len(), 2);
    assert_eq!(
        answer.calls[0],
        call("call_7", "read_file", r#"{"path":"src/main.rs"}"#)
    );
    assert_eq!(answer.calls[1].name, "list_dir");
    assert_eq!(answer.calls[1].arguments, "{}");
    assert_eq!(answer.finish, Some(FinishReason::ToolCalls));
}

struct Expected {
    text: &'static str,
    thought: &'static str,
    calls: Vec<ToolCall>,
    usage: Option<Usage>,
    finish: FinishReason,
}

fn hello_stop(usage: Option<Usage>) -> Expected {
    Expected {
        text: LLAMA_HELLO,
        thought: "",
        calls: vec![],
        usage,
        finish: FinishReason::Stop,
    }
}

fn read_file(id: &str, path: &str) -> ToolCall {
    call(id, "read_file", &format!(r#"{{"path": "{path}"}}"#))
}

#[tokio::test]
async fn recorded_llama_cpp_streams() {
    let server = FakeModelServer::start().await;
    let cases: Vec<(&str, &str, Expected)> = vec![
        (
            "20",
            fixture!("llama.cpp/20_chat_stream_usage_stop.http"),
            hello_stop(usage(31, 13)),
        ),
        (
            "21",
            fixture!("llama.cpp/21_chat_stream_usage_length.http"),
            Expected {
                text: "Hello! I am a tiny random model",
                finish: FinishReason::Length,
                ..hello_stop(usage(31, 8))
            },
        ),
        (
            "22",
            fixture!("llama.cpp/22_chat_stream_without_stream_options.http"),
            // No `usage` without `stream_options`; llama.cpp's `timings` tell the counts.
            hello_stop(usage(31, 13)),
        ),
        (
            "23",
            fixture!("llama.cpp/23_chat_stream_length_cut_inside_utf8.http"),
            Expected {
                text: "Hello! I am a tiny random model",
                finish: FinishReason::Length,
                ..hello_stop(usage(31, 9))
            },
        ),
        (
            "24",
            fixture!("llama.cpp/24_chat_stream_usage_stop_RAWWIRE.http"),
            hello_stop(usage(31, 13)),
        ),
        (
            "31",
            fixture!("llama.cpp/31_tools_auto_stream_toolcall.http"),
            Expected {
                text: "",
                thought: "",
                calls: vec![read_file("EmY8XnrWzYcE4pMfGqWfiSwYwAmCIuyP", "src/main.rs")],
                usage: usage(175, 22),
                finish: FinishReason::ToolCalls,
            },
        ),
        (
            "32",
            fixture!("llama.cpp/32_tools_auto_stream_content.http"),
            hello_stop(usage(175, 13)),
        ),
        (
            "33",
            fixture!("llama.cpp/33_tools_required_stream_parallel.http"),
            Expected {
                text: "",
                thought: "",
                calls: vec![
                    read_file("qskjzFEGxD2KnewHehfXk7fOfGoGpk1o", "src/lib.rs"),
                    read_file("d3VRGvhlOTxM0ZSY3PyTDXy1Yjf7TY01", "src/lib.rs"),
                    read_file("PAO8Tgn0jJe4D77vnfkEPAEEJG3IDFgo", "src/main.rs"),
                ],
                usage: usage(175, 66),
                finish: FinishReason::ToolCalls,
            },
        ),
        (
            "34",
            fixture!("llama.cpp/34_tools_required_stream_length_mid_call.http"),
            Expected {
                text: "",
                thought: "",
                calls: vec![call(
                    "Qk30RupgEzGs5bmcgUtkSqLaPSnVoqLn",
                    "read_file",
                    "{\"path",
                )],
                usage: usage(175, 14),
                finish: FinishReason::Length,
            },
        ),
        (
            "35",
            fixture!("llama.cpp/35_tools_required_stream_RAWWIRE.http"),
            Expected {
                text: "",
                thought: "",
                calls: vec![read_file("LlJ0gzVEgaWBdSvzrFED3Tnfxc8mzrsy", "src/main.rs")],
                usage: usage(175, 22),
                finish: FinishReason::ToolCalls,
            },
        ),
        (
            "36",
            fixture!("llama.cpp/36_tools_required_stream_content_then_toolcall.http"),
            Expected {
                text: LLAMA_HELLO,
                thought: "",
                calls: vec![read_file("hPdMqXVuvlmgXJfMWUCmN0ttBeTppqzL", "src/main.rs")],
                usage: usage(175, 34),
                finish: FinishReason::ToolCalls,
            },
        ),
        (
            "50",
            fixture!("llama.cpp/50_tool_result_followup_stream.http"),
            hello_stop(usage(223, 13)),
        ),
        (
            "81",
            fixture!("llama.cpp/81_think_chat_stream.http"),
            Expected {
                thought: "Thinking...",
                ..hello_stop(usage(10, 18))
            },
        ),
        (
            "82",
            fixture!("llama.cpp/82_think_tools_auto_stream_toolcall.http"),
            Expected {
                text: "",
                thought: "Thinking...",
                calls: vec![read_file("dFVOavCoVkPiVecMPAxc8S4hmskaEu1B", "src/main.rs")],
                usage: usage(159, 27),
                finish: FinishReason::ToolCalls,
            },
        ),
        (
            "85",
            fixture!("llama.cpp/85_think_chat_stream_reasoning_format_none.http"),
            Expected {
                // With `reasoning_format: none` the thought is inline text, which the client
                // splits out like the server would have.
                thought: "Thinking...",
                ..hello_stop(usage(10, 18))
            },
        ),
        (
            "86",
            fixture!("llama.cpp/86_think_tools_auto_stream_content_then_toolcall.http"),
            Expected {
                text: LLAMA_HELLO,
                thought: "Thinking...",
                calls: vec![read_file("VHr6JrgnRtXDT2Z5KZOkxC8dN1pzhGVd", "src/main.rs")],
                usage: usage(159, 39),
                finish: FinishReason::ToolCalls,
            },
        ),
        (
            "87",
            fixture!("llama.cpp/87_think_chat_stream_length_inside_reasoning.http"),
            Expected {
                text: "",
                thought: "Thinking",
                calls: vec![],
                usage: usage(10, 2),
                finish: FinishReason::Length,
            },
        ),
    ];
    for (name, http, expected) in cases {
        let answer = ok_answer(&server, Reply::fixture(http)).await;
        assert_eq!(answer.text, expected.text, "fixture {name}");
        assert_eq!(answer.thought, expected.thought, "fixture {name}");
        assert_eq!(answer.calls, expected.calls, "fixture {name}");
        assert_eq!(answer.usage, expected.usage, "fixture {name}");
        assert_eq!(answer.finish, Some(expected.finish), "fixture {name}");
    }
}

#[tokio::test]
async fn recorded_content_then_tool_call_in_auto_mode() {
    let server = FakeModelServer::start().await;
    let http = fixture!("llama.cpp/37_tools_auto_stream_content_then_toolcall.http");
    let answer = ok_answer(&server, Reply::fixture(http)).await;
    assert_eq!(answer.text, LLAMA_HELLO);
    assert_eq!(answer.calls.len(), 1);
    assert_eq!(answer.calls[0].name, "read_file");
    assert_eq!(answer.finish, Some(FinishReason::ToolCalls));
}

#[tokio::test]
async fn recorded_context_fill_ends_with_length() {
    let server = FakeModelServer::start().await;
    let http = fixture!("llama.cpp/69_ctx_fill_stream_prompt_plus_max_tokens_exceeds_ctx.http");
    let answer = ok_answer(&server, Reply::fixture(http)).await;
    assert!(answer.text.starts_with(LLAMA_HELLO));
    assert_eq!(answer.usage, usage(4070, 26));
    assert_eq!(answer.finish, Some(FinishReason::Length));
}

#[tokio::test]
async fn raw_wire_fixtures_put_several_events_in_one_write() {
    let reply = Reply::fixture(fixture!("llama.cpp/24_chat_stream_usage_stop_RAWWIRE.http"));
    let decoded = Reply::fixture(fixture!("llama.cpp/20_chat_stream_usage_stop.http"));
    assert!(reply.writes() < decoded.writes());
}

#[tokio::test]
async fn server_ignoring_stream_true_answers_whole() {
    let server = FakeModelServer::start().await;
    let answer = ok_answer(
        &server,
        Reply::fixture(fixture!("llama.cpp/10_chat_nonstream_stop.http")),
    )
    .await;
    assert_eq!(answer.text, LLAMA_HELLO);
    assert_eq!(answer.finish, Some(FinishReason::Stop));
    assert_eq!(answer.usage, usage(31, 13));

    let answer = ok_answer(
        &server,
        Reply::fixture(fixture!("llama.cpp/41_tools_auto_nonstream_toolcall.http")),
    )
    .await;
    assert_eq!(
        answer.calls,
        vec![read_file("evZthbCFllf2J41fn0dTkvsYoscYPohl", "src/main.rs")]
    );
    assert_eq!(answer.finish, Some(FinishReason::ToolCalls));
}

#[tokio::test]
async fn ollama_streams() {
    let server = FakeModelServer::start().await;

    let answer = ok_answer(
        &server,
        Reply::sse_body(fixture!("ollama/text_with_reasoning.sse")),
    )
    .await;
    assert_eq!(answer.thought, "Okay, the user wants a greeting.");
    assert_eq!(answer.text, "Hello! How can I help with your code?");
    assert_eq!(answer.usage, usage(18, 24));
    assert_eq!(answer.finish, Some(FinishReason::Stop));

    let answer = ok_answer(
        &server,
        Reply::sse_body(fixture!("ollama/tool_calls_whole.sse")),
    )
    .await;
    assert_eq!(answer.thought, "I need to read both files.");
    assert_eq!(answer.text, "");
    assert_eq!(
        answer.calls,
        vec![
            call("call_9ps1nvqg", "read_file", r#"{"path":"src/lib.rs"}"#),
            call("call_x2mnw7ob", "read_file", r#"{"path":"src/main.rs"}"#),
        ]
    );
    assert_eq!(answer.usage, usage(312, 61));
    assert_eq!(answer.finish, Some(FinishReason::ToolCalls));

    let answer = ok_answer(
        &server,
        Reply::sse_body(fixture!("ollama/tool_calls_old_no_index.sse")),
    )
    .await;
    assert_eq!(
        answer.calls,
        vec![
            call("call_u4kq8cz1", "read_file", r#"{"path":"Cargo.toml"}"#),
            call("call_0rj2bw5e", "list_dir", r#"{"path":"."}"#),
        ]
    );
    assert_eq!(answer.usage, None);
    // Old Ollama said `stop`; the calls are what count.
    assert_eq!(answer.finish, Some(FinishReason::ToolCalls));

    let answer = ok_answer(
        &server,
        Reply::sse_body(fixture!("ollama/tool_calls_index_reused.sse")),
    )
    .await;
    assert_eq!(
        answer.calls,
        vec![
            call("call_k1d9s0aa", "read_file", r#"{"path":"README.md"}"#),
            call(
                "call_p3v8w2zz",
                "grep",
                r#"{"pattern":"TODO","path":"src"}"#
            ),
        ]
    );
}

#[tokio::test]
async fn lm_studio_streams() {
    let server = FakeModelServer::start().await;

    let answer = ok_answer(
        &server,
        Reply::sse_body(fixture!("lmstudio/tool_calls_fragmented.sse")),
    )
    .await;
    assert_eq!(answer.text, "I'll read both files.");
    assert_eq!(
        answer.calls,
        vec![
            call("601553427", "read_file", r#"{"path":"src/lib.rs"}"#),
            call("270885012", "read_file", r#"{"path":"src/main.rs"}"#),
        ]
    );
    assert_eq!(answer.usage, usage(1024, 57));
    assert_eq!(answer.finish, Some(FinishReason::ToolCalls));

    let answer = ok_answer(
        &server,
        Reply::sse_body(fixture!("lmstudio/reasoning_text.sse")),
    )
    .await;
    assert_eq!(answer.thought, "The user says hi. I should greet back.");
    assert_eq!(answer.text, "Hi! What are we building today?");
    assert_eq!(answer.usage, usage(12, 31));
    assert_eq!(answer.finish, Some(FinishReason::Stop));
}
