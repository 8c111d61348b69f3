//! The OpenAI-compatible client against a fake server replaying what llama.cpp, Ollama and
//! LM Studio really send: streams, tool calls, thoughts, errors of every shape, cut streams,
//! timeouts, and cancellation reaching the server.

use std::time::Duration;

use crate::support::fake_model::{FAKE_MODEL, FakeModelServer, Part, Reply};
use crate::support::fixture;
use futures::StreamExt;
use punie::llm::{
    ChatModel, ChatRequest, FinishReason, LlmError, Message, ModelEvent, ModelSpec, ModelStream,
    OpenAiModel, RetryPolicy, Timeouts, ToolCall, ToolSpec, Usage,
};
use serde_json::{Value, json};

const LLAMA_HELLO: &str = "Hello! I am a tiny random model 🦙.";

/// Everything one answer said, gathered.
#[derive(Debug, Default, PartialEq)]
struct Answer {
    text: String,
    thought: String,
    calls: Vec<ToolCall>,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
}

async fn collect(mut stream: ModelStream) -> Result<Answer, (Answer, LlmError)> {
    let mut answer = Answer::default();
    while let Some(item) = stream.next().await {
        assert!(answer.finish.is_none(), "an event after Finished: {item:?}");
        match item {
            Ok(ModelEvent::Text(text)) => {
                assert!(!text.is_empty(), "empty text event");
                answer.text.push_str(&text);
            }
            Ok(ModelEvent::Thought(text)) => answer.thought.push_str(&text),
            Ok(ModelEvent::ToolCall(call)) => answer.calls.push(call),
            Ok(ModelEvent::Usage(usage)) => answer.usage = Some(usage),
            Ok(ModelEvent::Finished(reason)) => answer.finish = Some(reason),
            Ok(other) => panic!("unexpected event {other:?}"),
            Err(error) => {
                assert!(stream.next().await.is_none(), "an item after an error");
                return Err((answer, error));
            }
        }
    }
    assert!(answer.finish.is_some(), "the stream ended without Finished");
    Ok(answer)
}

/// A client of `server` that tries each request once: these tests are about what one answer
/// gives (retries are tested in `llm_server.rs`).
fn model_for(server: &FakeModelServer) -> OpenAiModel {
    OpenAiModel::new(ModelSpec::parse(&server.base_url()).unwrap(), None)
        .with_retry(RetryPolicy::never())
}

fn hello() -> ChatRequest {
    ChatRequest {
        messages: vec![Message::User {
            content: "Say hello".into(),
        }],
        ..ChatRequest::default()
    }
}

async fn answer(server: &FakeModelServer, reply: Reply) -> Result<Answer, (Answer, LlmError)> {
    server.push(reply);
    match model_for(server).stream(hello()).await {
        Ok(stream) => collect(stream).await,
        Err(error) => Err((Answer::default(), error)),
    }
}

async fn ok_answer(server: &FakeModelServer, reply: Reply) -> Answer {
    answer(server, reply).await.expect("a complete answer")
}

async fn error_of(server: &FakeModelServer, reply: Reply) -> LlmError {
    match answer(server, reply).await {
        Ok(answer) => panic!("expected an error, got {answer:?}"),
        Err((_, error)) => error,
    }
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
    }
}

fn usage(prompt_tokens: u64, completion_tokens: u64) -> Option<Usage> {
    Some(Usage {
        prompt_tokens,
        completion_tokens,
    })
}

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

#[tokio::test]
async fn request_body_carries_messages_tools_and_stream_options() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("ok"));
    let model = OpenAiModel::new(
        ModelSpec::parse(&server.spec_for("qwen/qwen3-coder-30b")).unwrap(),
        Some("sk-local".into()),
    );
    let request = ChatRequest {
        messages: vec![
            Message::System {
                content: "You are Punie.".into(),
            },
            Message::User {
                content: "Read src/main.rs".into(),
            },
            Message::Assistant {
                content: None,
                tool_calls: vec![call("call_0", "read_file", r#"{"path": "src/main.rs"}"#)],
            },
            Message::Tool {
                tool_call_id: "call_0".into(),
                content: "fn main() {}".into(),
            },
        ],
        tools: vec![ToolSpec {
            name: "read_file".into(),
            description: "Read a file from disk".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
        }],
        temperature: Some(0.2),
        max_tokens: Some(512),
    };
    collect(model.stream(request).await.unwrap()).await.unwrap();
    assert_eq!(
        server.requests(),
        vec![json!({
            "model": "qwen/qwen3-coder-30b",
            "messages": [
                {"role": "system", "content": "You are Punie."},
                {"role": "user", "content": "Read src/main.rs"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_0", "type": "function",
                     "function": {"name": "read_file", "arguments": "{\"path\": \"src/main.rs\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_0", "content": "fn main() {}"},
            ],
            "tools": [{"type": "function", "function": {
                "name": "read_file",
                "description": "Read a file from disk",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
            }}],
            "temperature": 0.2,
            "max_tokens": 512,
            "stream": true,
            "stream_options": {"include_usage": true},
        })]
    );
    assert_eq!(
        server.authorizations(),
        vec![Some("Bearer sk-local".to_owned())]
    );
    // The model was named: no need to ask the server for its list.
    assert_eq!(server.model_list_requests(), 0);
    assert_eq!(
        model.describe(),
        format!("qwen/qwen3-coder-30b at {}", server.base_url())
    );
}

#[tokio::test]
async fn unnamed_model_is_the_servers_first_asked_once() {
    let server = FakeModelServer::start().await;
    server.set_models(vec!["first".into(), "second".into()]);
    let model = model_for(&server);
    assert!(model.describe().contains(&server.base_url()));
    for _ in 0..2 {
        server.push(Reply::text("hi"));
        collect(model.stream(hello()).await.unwrap()).await.unwrap();
    }
    assert_eq!(server.model_list_requests(), 1);
    let requests = server.requests();
    assert!(requests.iter().all(|request| request["model"] == "first"));
    assert!(
        requests
            .iter()
            .all(|request| request.get("tools").is_none())
    );
    assert_eq!(server.authorizations(), vec![None, None]);
    assert_eq!(model.describe(), format!("first at {}", server.base_url()));
    assert_eq!(model.list_models().await.unwrap(), vec!["first", "second"]);
}

#[tokio::test]
async fn no_model_loaded() {
    let server = FakeModelServer::start().await;
    server.set_models(vec![]);
    let error = error_of(&server, Reply::text("unused")).await;
    assert!(matches!(error, LlmError::NoModel { .. }), "{error:?}");
    assert!(error.to_string().contains(&server.base_url()));
    assert!(server.requests().is_empty());
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
            hello_stop(None),
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

#[tokio::test]
async fn server_down_is_unreachable_and_names_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/v1");
    let model = OpenAiModel::new(
        ModelSpec::parse(&format!("{url}/some-model")).unwrap(),
        None,
    )
    .with_retry(RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    });
    let error = match model.stream(hello()).await {
        Ok(_) => panic!("a stream from a closed port"),
        Err(error) => error,
    };
    assert!(
        matches!(error, LlmError::Unreachable { attempts: 3, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("(after 3 attempts)"), "{message}");
    // Also when the model must first be looked up.
    let model = OpenAiModel::new(ModelSpec::parse(&url).unwrap(), None).with_retry(RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    });
    let error = model.list_models().await.unwrap_err();
    assert!(
        matches!(error, LlmError::Unreachable { attempts: 2, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn recorded_llama_cpp_errors() {
    let server = FakeModelServer::start().await;
    let cases = [
        (
            fixture!("llama.cpp/60_err_bad_json.http"),
            500,
            "[json.exception.parse_error.101] parse error",
        ),
        (
            fixture!("llama.cpp/62_err_context_overflow_nonstream.http"),
            400,
            "request (5030 tokens) exceeds the available context size (4096 tokens)",
        ),
        (
            fixture!("llama.cpp/63_err_context_overflow_stream.http"),
            400,
            "request (5030 tokens) exceeds the available context size (4096 tokens)",
        ),
        (
            fixture!("llama.cpp/64_err_missing_messages.http"),
            400,
            "'messages' is required",
        ),
        (
            fixture!("llama.cpp/65_err_invalid_tool_choice.http"),
            400,
            "Invalid tool_choice: bogus",
        ),
    ];
    for (http, expected_status, expected_message) in cases {
        let error = error_of(&server, Reply::fixture(http)).await;
        let LlmError::Status {
            status, message, ..
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(*status, expected_status);
        assert!(message.starts_with(expected_message), "{message}");
        assert!(error.to_string().contains(&server.base_url()));
    }
    let overflow = error_of(
        &server,
        Reply::fixture(fixture!("llama.cpp/63_err_context_overflow_stream.http")),
    )
    .await;
    assert!(overflow.is_context_overflow());
    assert!(
        overflow.to_string().contains("context window"),
        "{overflow}"
    );
    let server_error = error_of(
        &server,
        Reply::fixture(fixture!("llama.cpp/60_err_bad_json.http")),
    )
    .await;
    assert!(!server_error.is_context_overflow());
    assert!(server_error.to_string().contains("check the server's log"));
}

#[tokio::test]
async fn not_found_hints() {
    let server = FakeModelServer::start().await;
    server.set_models(vec!["qwen3:8b".into(), "llama3.1:8b".into()]);
    // Ollama's answer to an unknown model.
    server.push(Reply::error(
        404,
        json!({"error": {"message": "model \"qwen3:80b\" not found, try pulling it first", "type": "api_error", "param": null, "code": null}}),
    ));
    let model = OpenAiModel::new(
        ModelSpec::parse(&server.spec_for("qwen3:80b")).unwrap(),
        None,
    );
    let error = model.stream(hello()).await.err().expect("an error");
    let message = error.to_string();
    assert!(message.contains("HTTP 404"), "{message}");
    assert!(
        message.contains("model \"qwen3:80b\" not found"),
        "{message}"
    );
    assert!(
        message
            .contains("`punie` was asked for qwen3:80b); the server lists: qwen3:8b, llama3.1:8b"),
        "{message}"
    );

    // The model exists, the endpoint does not (llama.cpp's 404).
    server.push(Reply::fixture(fixture!(
        "llama.cpp/70_err_unknown_endpoint.http"
    )));
    let model = OpenAiModel::new(
        ModelSpec::parse(&server.spec_for("qwen3:8b")).unwrap(),
        None,
    );
    let message = model
        .stream(hello())
        .await
        .err()
        .expect("an error")
        .to_string();
    assert!(message.contains("File Not Found"), "{message}");
    assert!(message.contains("OpenAI-compatible"), "{message}");
}

#[tokio::test]
async fn error_bodies_of_every_shape_read_well() {
    let server = FakeModelServer::start().await;
    let cases = [
        // llama.cpp, vLLM
        (
            503,
            json!({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}),
            "Loading model",
            "still loading",
        ),
        // mlx_lm.server
        (
            500,
            json!({"error": "Model not loaded"}),
            "Model not loaded",
            "server's log",
        ),
        // OpenAI shape: Ollama, LM Studio
        (
            400,
            json!({"error": {"message": "invalid message format", "type": "invalid_request_error", "param": null, "code": null}}),
            "invalid message format",
            "",
        ),
        (
            401,
            json!({"error": {"message": "Invalid API key", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}),
            "Invalid API key",
            "PUNIE_API_KEY",
        ),
        (
            403,
            json!({"detail": "Forbidden"}),
            "Forbidden",
            "PUNIE_API_KEY",
        ),
        (
            422,
            json!({"detail": [{"loc": ["body", "messages"], "msg": "field required", "type": "value_error.missing"}]}),
            "body.messages: field required",
            "",
        ),
        (
            400,
            json!({"object": "error", "message": "This model's maximum context length is 8192 tokens", "type": "BadRequestError", "param": null, "code": 400}),
            "This model's maximum context length is 8192 tokens",
            "context window",
        ),
        (
            429,
            json!({"message": "Too many requests"}),
            "Too many requests",
            "rate limiting",
        ),
    ];
    for (status, body, expected_message, expected_hint) in cases {
        let error = error_of(&server, Reply::error(status, body)).await;
        let text = error.to_string();
        let LlmError::Status {
            status: got,
            message,
            hint,
            ..
        } = error
        else {
            panic!("{text}");
        };
        assert_eq!(got, status, "{text}");
        assert_eq!(message, expected_message, "{text}");
        assert!(hint.contains(expected_hint), "{text}");
        assert!(
            text.contains(&format!("HTTP {status}: {expected_message}")),
            "{text}"
        );
    }
    // Not JSON at all.
    let error = error_of(
        &server,
        Reply::raw(502, "text/html", "<html><body>Bad Gateway</body></html>"),
    )
    .await;
    assert!(
        error.to_string().contains("HTTP 502: an HTML page"),
        "{error}"
    );
    let error = error_of(&server, Reply::raw(500, "text/plain", "")).await;
    assert!(
        error
            .to_string()
            .contains("HTTP 500: Internal Server Error"),
        "{error}"
    );
}

#[tokio::test]
async fn json_error_with_status_200() {
    let server = FakeModelServer::start().await;
    // llama.cpp failing a streaming request before its first token; LM Studio on unknown paths.
    for (body, expected) in [
        (
            r#"{"error":{"code":500,"message":"failed to process the prompt","type":"server_error"}}"#,
            "failed to process the prompt",
        ),
        (
            r#"{"error":"Unexpected endpoint or method. (POST /v1/chat/completions). Returning 200 anyway"}"#,
            "Unexpected endpoint or method.",
        ),
    ] {
        let error = error_of(
            &server,
            Reply::raw(200, "application/json; charset=utf-8", body),
        )
        .await;
        assert!(matches!(error, LlmError::InStream { .. }), "{error:?}");
        assert!(error.to_string().contains(expected), "{error}");
        // The same with the content type of a stream.
        let error = error_of(&server, Reply::raw(200, "text/event-stream", body)).await;
        assert!(matches!(error, LlmError::InStream { .. }), "{error:?}");
        assert!(error.to_string().contains(expected), "{error}");
    }
}

#[tokio::test]
async fn error_inside_a_200_stream() {
    let server = FakeModelServer::start().await;
    let first =
        json!({"choices": [{"finish_reason": null, "index": 0, "delta": {"content": "Hel"}}]});
    // Newer llama.cpp: the error as a data event, then the stream ends.
    let newer = Reply::raw(
        200,
        "text/event-stream",
        &format!(
            "data: {first}\n\ndata: {}\n\n",
            json!({"error": {"code": 500, "message": "the slot was cancelled", "type": "server_error"}})
        ),
    );
    // Older llama.cpp: a non-standard `error:` line, then [DONE].
    let older = Reply::raw(
        200,
        "text/event-stream",
        &format!(
            "data: {first}\n\nerror: {}\n\ndata: [DONE]\n\n",
            json!({"code": 500, "message": "the slot was cancelled", "type": "server_error"})
        ),
    );
    for reply in [newer, older] {
        let (answer, error) = answer(&server, reply)
            .await
            .expect_err("an in-stream error");
        assert_eq!(answer.text, "Hel");
        assert!(matches!(error, LlmError::InStream { .. }), "{error:?}");
        assert!(
            error.to_string().contains("the slot was cancelled"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn garbage_is_malformed() {
    let server = FakeModelServer::start().await;
    for reply in [
        Reply::raw(200, "text/event-stream", "data: <html>oops</html>\n\n"),
        Reply::raw(200, "application/json", "{\"object\":\"list\"}"),
        Reply::raw(200, "application/json", "not json"),
        Reply::raw(200, "text/html", "<html><body>LM Studio</body></html>"),
        Reply::raw(200, "text/plain", "Not Found"),
    ] {
        let error = error_of(&server, reply).await;
        assert!(matches!(error, LlmError::Malformed { .. }), "{error:?}");
        assert!(error.to_string().contains("OpenAI-compatible"), "{error}");
    }
}

#[tokio::test]
async fn stream_cut_before_done_is_stream_cut() {
    let server = FakeModelServer::start().await;
    let (answer, error) = answer(&server, Reply::text("Hello there, friend").cut_after(3))
        .await
        .expect_err("a cut stream");
    assert!(!answer.text.is_empty());
    assert!(matches!(error, LlmError::StreamCut { .. }), "{error:?}");
    assert!(error.to_string().contains(&server.base_url()));

    // An empty 200 stream is cut too, and one with only keep-alive comments.
    for body in ["", ": ping\n\n: ping\n\n"] {
        let error = error_of(&server, Reply::raw(200, "text/event-stream", body)).await;
        assert!(matches!(error, LlmError::StreamCut { .. }), "{error:?}");
    }

    // A complete answer that only lacks [DONE] is fine (ik_llama.cpp).
    let http = fixture!("llama.cpp/20_chat_stream_usage_stop.http");
    let without_done = Reply::fixture(http);
    let writes = without_done.writes();
    let answer = ok_answer(&server, without_done.cut_after(writes - 1)).await;
    assert_eq!(answer.text, LLAMA_HELLO);
    assert_eq!(answer.usage, usage(31, 13));
}

#[tokio::test]
async fn dropping_the_stream_aborts_the_request() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("Hello there, friend").hang_after(3));
    let mut stream = model_for(&server).stream(hello()).await.unwrap();
    assert!(matches!(stream.next().await, Some(Ok(ModelEvent::Text(_)))));
    assert!(matches!(stream.next().await, Some(Ok(ModelEvent::Text(_)))));
    assert_eq!(server.disconnects(), 0);
    drop(stream);
    assert!(
        server.wait_for_disconnects(1, Duration::from_secs(5)).await,
        "the server did not see the client go away"
    );
    assert_eq!(server.completed(), 0);
}

#[tokio::test]
async fn dropping_a_slow_stream_aborts_the_request() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("Hello there, friend").chunk_delay(Duration::from_millis(50)));
    let mut stream = model_for(&server).stream(hello()).await.unwrap();
    assert!(matches!(stream.next().await, Some(Ok(ModelEvent::Text(_)))));
    drop(stream);
    assert!(server.wait_for_disconnects(1, Duration::from_secs(5)).await);
    assert_eq!(server.completed(), 0);
}

fn short_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        first_byte: Duration::from_millis(500),
        idle: Duration::from_millis(500),
    }
}

#[tokio::test]
async fn silence_before_the_first_byte_times_out() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("never").hang_after(0));
    let model = OpenAiModel::new(
        ModelSpec::parse(&server.spec_for(FAKE_MODEL)).unwrap(),
        None,
    )
    .with_timeouts(short_timeouts());
    let started = std::time::Instant::now();
    let error = match model.stream(hello()).await {
        Ok(stream) => collect(stream).await.expect_err("a timeout").1,
        Err(error) => error,
    };
    assert!(started.elapsed() < Duration::from_secs(3));
    let LlmError::Timeout { phase, .. } = &error else {
        panic!("{error:?}");
    };
    assert!(phase.contains("first byte"), "{error}");
    assert!(server.wait_for_disconnects(1, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn silence_between_chunks_times_out() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("Hello there, friend").hang_after(2));
    let model = OpenAiModel::new(
        ModelSpec::parse(&server.spec_for(FAKE_MODEL)).unwrap(),
        None,
    )
    .with_timeouts(short_timeouts());
    assert_eq!(model.timeouts(), short_timeouts());
    let (answer, error) = collect(model.stream(hello()).await.unwrap())
        .await
        .expect_err("a timeout");
    assert!(!answer.text.is_empty());
    let LlmError::Timeout { phase, .. } = &error else {
        panic!("{error:?}");
    };
    assert!(phase.contains("next chunk"), "{error}");
}

#[tokio::test]
async fn slow_chunks_within_the_idle_timeout_are_fine() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("Hello there").chunk_delay(Duration::from_millis(100)));
    let model = OpenAiModel::new(
        ModelSpec::parse(&server.spec_for(FAKE_MODEL)).unwrap(),
        None,
    )
    .with_timeouts(short_timeouts());
    let answer = collect(model.stream(hello()).await.unwrap()).await.unwrap();
    assert_eq!(answer.text, "Hello there");
}

#[tokio::test]
async fn exhausted_script_is_a_readable_500() {
    let server = FakeModelServer::start().await;
    let model = model_for(&server);
    let error = model.stream(hello()).await.err().expect("an error");
    assert!(error.to_string().contains("script is exhausted"), "{error}");
    assert_eq!(server.remaining(), 0);
}

#[tokio::test]
async fn fake_server_records_and_lists() {
    let server = FakeModelServer::start().await;
    let value: Value = reqwest::get(format!("{}/models", server.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        value,
        json!({"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "punie-tests"}]})
    );
    let response = reqwest::get(format!("{}/nothing", server.base_url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(server.wait_for_requests(0, Duration::from_millis(10)).await);
}

#[tokio::test]
async fn servers_that_take_no_tools_say_so() {
    let server = FakeModelServer::start().await;
    for (status, body, hint) in [
        (
            400,
            json!({"error": {"message": "registry.ollama.ai/library/gemma3:1b does not support tools", "type": "api_error", "param": null, "code": null}}),
            "cannot call tools",
        ),
        (
            500,
            json!({"error": {"code": 500, "message": "tools param requires --jinja flag", "type": "server_error"}}),
            "--jinja",
        ),
    ] {
        let error = error_of(&server, Reply::error(status, body)).await;
        assert!(error.is_tools_unsupported(), "{error:?}");
        assert!(!error.is_context_overflow(), "{error:?}");
        assert!(error.to_string().contains(hint), "{error}");
    }
}
