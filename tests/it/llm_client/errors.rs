//! Errors of every shape: a server that is down, error bodies of each server, errors inside a
//! 200 stream, garbage, cut streams, and servers that take no tools.

use std::time::Duration;

use punie::llm::{ChatModel, LlmError, ModelSpec, OpenAiModel, RetryPolicy};
use serde_json::json;

use super::{LLAMA_HELLO, answer, error_of, hello, ok_answer, usage};
use crate::support::fake_model::{FakeModelServer, Reply};
use crate::support::fixture;

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
        server_wait: Duration::ZERO,
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
        server_wait: Duration::ZERO,
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
