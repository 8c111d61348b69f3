//! The client against servers that are slow, busy, or particular, through the front door of a
//! fake server: retries of passing failures (and never of the rest), context overflows of every
//! server recognised, the model list cached and checked, and the context window asked the way
//! each server answers it.

use std::time::Duration;

use crate::support::fake_model::{FakeModelServer, Reply};
use crate::support::fixture;
use crate::support::model_client::{ask, model, quick_retries, request, tools};
use futures::future::BoxFuture;
use punie::llm::{
    ChatModel, ChatRequest, LlmError, ModelSpec, ModelStream, OpenAiModel, RetryPolicy,
};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Retries

#[tokio::test]
async fn rate_limited_then_answered() {
    let server = FakeModelServer::start().await;
    server.push(Reply::fixture(fixture!("failures/rate_limited_429.http")));
    server.push(Reply::text("Hello"));
    let answer = ask(&model(&server, "m"), request(vec![])).await.unwrap();
    assert_eq!(answer.text, "Hello");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn busy_twice_then_answered() {
    let server = FakeModelServer::start().await;
    server.push(Reply::fixture(fixture!("failures/loading_model_503.http")));
    server.push(Reply::fixture(fixture!("failures/proxy_502.http")));
    server.push(Reply::text("Hello"));
    let answer = ask(&model(&server, "m"), request(vec![])).await.unwrap();
    assert_eq!(answer.text, "Hello");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn gives_up_after_the_last_attempt() {
    let server = FakeModelServer::start().await;
    for _ in 0..4 {
        server.push(Reply::fixture(fixture!("failures/loading_model_503.http")));
    }
    let (_, error) = ask(&model(&server, "m"), request(vec![]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            LlmError::Status {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("answered HTTP 503 (after 3 attempts): Loading model"),
        "{message}"
    );
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.remaining(), 1);
}

#[tokio::test]
async fn request_errors_are_never_retried() {
    let server = FakeModelServer::start().await;
    let model = model(&server, "m");
    for status in [400, 401, 404, 422, 500] {
        server.push(Reply::error(
            status,
            json!({"error": {"message": "no", "type": "x"}}),
        ));
        server.push(Reply::text("unused"));
        let (_, error) = ask(&model, request(vec![])).await.unwrap_err();
        assert!(
            matches!(error, LlmError::Status { status: got, attempts: 1, .. } if got == status),
            "{error:?}"
        );
        assert_eq!(server.remaining(), 1, "HTTP {status}");
        // Take the unused reply.
        ask(&model, request(vec![])).await.unwrap();
    }
}

#[tokio::test]
async fn a_stream_cut_before_anything_went_out_is_sent_again() {
    let server = FakeModelServer::start().await;
    let model = model(&server, "m");
    server.push(Reply::sse_body(fixture!("failures/cut_before_content.sse")));
    server.push(Reply::text("Hello"));
    let answer = ask(&model, request(vec![])).await.unwrap();
    assert_eq!(answer.text, "Hello");
    assert_eq!(server.requests().len(), 2);

    // Cut every time: the error says how often it was tried.
    for _ in 0..3 {
        server.push(Reply::sse_body(fixture!("failures/cut_before_content.sse")));
    }
    let (_, error) = ask(&model, request(vec![])).await.unwrap_err();
    assert!(
        matches!(error, LlmError::StreamCut { attempts: 3, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("(after 3 attempts)"), "{error}");
}

#[tokio::test]
async fn a_stream_cut_after_text_went_out_is_not_replayed() {
    let server = FakeModelServer::start().await;
    server.push(Reply::sse_body(fixture!("failures/cut_before_done.sse")));
    server.push(Reply::text("unused"));
    let (answer, error) = ask(&model(&server, "m"), request(vec![]))
        .await
        .unwrap_err();
    assert_eq!(answer.text, "Hello there");
    assert!(
        matches!(error, LlmError::StreamCut { attempts: 1, .. }),
        "{error:?}"
    );
    assert_eq!(server.remaining(), 1);
}

#[tokio::test]
async fn errors_inside_the_stream_are_not_retried() {
    let server = FakeModelServer::start().await;
    server.push(Reply::sse_body(fixture!("failures/in_stream_error.sse")));
    server.push(Reply::text("unused"));
    let (answer, error) = ask(&model(&server, "m"), request(vec![]))
        .await
        .unwrap_err();
    assert_eq!(answer.text, "Hel");
    assert!(matches!(error, LlmError::InStream { .. }), "{error:?}");
    assert_eq!(server.remaining(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_still_starting_is_waited_for() {
    let address = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    // No model named: the model list is asked first, and waited for too.
    let spec = ModelSpec::parse(&format!("http://{address}/v1")).unwrap();
    let model = OpenAiModel::new(spec, None).with_retry(RetryPolicy {
        max_attempts: 200,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
        server_wait: Duration::ZERO,
    });
    let starting = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let server = FakeModelServer::start_at(address).await;
        server.push(Reply::text("Up at last"));
        server
    });
    let answer = ask(&model, request(vec![])).await.unwrap();
    assert_eq!(answer.text, "Up at last");
    let server = starting.await.unwrap();
    assert_eq!(server.requests().len(), 1);
    assert_eq!(server.requests()[0]["model"], "fake-model");
}

#[tokio::test]
async fn context_overflow_of_every_server_is_recognised() {
    let server = FakeModelServer::start().await;
    let model = model(&server, "m");
    for http in [
        fixture!("llama.cpp/62_err_context_overflow_nonstream.http"),
        fixture!("llama.cpp/63_err_context_overflow_stream.http"),
        fixture!("failures/vllm_context_overflow_400.http"),
        fixture!("failures/lmstudio_context_overflow_400.http"),
        fixture!("failures/openai_context_length_exceeded_400.http"),
    ] {
        server.push(Reply::fixture(http));
        let (_, error) = ask(&model, request(tools())).await.unwrap_err();
        assert!(error.is_context_overflow(), "{error}");
        assert!(!error.is_tools_unsupported(), "{error}");
        assert!(error.to_string().contains("context window"), "{error}");
    }
    assert_eq!(server.requests().len(), 5);
    assert!(!model.uses_text_tool_calls());
}

// ---------------------------------------------------------------------------------------------
// Models and context sizes

#[tokio::test]
async fn the_model_list_is_reused_for_a_while() {
    let server = FakeModelServer::start().await;
    let model = model(&server, "m");
    assert_eq!(model.list_models().await.unwrap(), vec!["fake-model"]);
    assert_eq!(model.list_models().await.unwrap(), vec!["fake-model"]);
    assert_eq!(server.model_list_requests(), 1);
}

#[tokio::test]
async fn validate_checks_the_model_against_the_list() {
    let server = FakeModelServer::start().await;
    server.set_models(vec!["qwen3:8b".into(), "llama3.1:latest".into()]);
    assert_eq!(
        model(&server, "qwen3:8b").validate().await.unwrap(),
        "qwen3:8b"
    );
    assert_eq!(
        model(&server, "llama3.1").validate().await.unwrap(),
        "llama3.1"
    );
    let error = model(&server, "qwen3:80b").validate().await.unwrap_err();
    let LlmError::UnknownModel {
        model: wanted,
        available,
        ..
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(wanted, "qwen3:80b");
    assert_eq!(available, &["qwen3:8b", "llama3.1:latest"]);
    let message = error.to_string();
    assert!(
        message.contains("has no model \"qwen3:80b\"; it lists: qwen3:8b, llama3.1:latest"),
        "{message}"
    );

    // Unnamed: the first listed.
    let unnamed = OpenAiModel::new(ModelSpec::parse(&server.base_url()).unwrap(), None);
    assert_eq!(unnamed.validate().await.unwrap(), "qwen3:8b");

    // A server listing nothing, or without a list, is taken at its word.
    server.set_models(vec![]);
    assert_eq!(model(&server, "x").validate().await.unwrap(), "x");
    server.set_models_reply(Reply::error(404, json!({"detail": "Not Found"})));
    assert_eq!(model(&server, "x").validate().await.unwrap(), "x");

    // llama-server answers with its one model whatever the name, but a name it does not list
    // is a mistake, refused as the README promises; its file name is accepted.
    server.set_models_reply(Reply::fixture(fixture!("llama.cpp/01_models.http")));
    let error = model(&server, "qwen3-coder").validate().await.unwrap_err();
    assert!(
        matches!(&error, LlmError::UnknownModel { available, .. } if available == &["models/tiny.gguf"]),
        "{error:?}"
    );
    assert_eq!(
        model(&server, "tiny.gguf").validate().await.unwrap(),
        "tiny.gguf"
    );

    // Unreachable is an error.
    drop(server);
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gone = OpenAiModel::new(
        ModelSpec::parse(&format!("http://{address}/v1/m")).unwrap(),
        None,
    )
    .with_retry(quick_retries(2));
    assert!(matches!(
        gone.validate().await,
        Err(LlmError::Unreachable { attempts: 2, .. })
    ));
}

#[tokio::test]
async fn context_size_of_llama_cpp() {
    let server = FakeModelServer::start().await;
    server.set_models_reply(Reply::fixture(fixture!("llama.cpp/01_models.http")));
    server.route(
        "GET",
        "/props",
        Reply::fixture(fixture!("llama.cpp/02_props.http")),
    );
    let model = model(&server, "models/tiny.gguf");
    assert_eq!(model.context_size().await, Some(4096));
    assert_eq!(model.context_size().await, Some(4096));
    assert_eq!(
        server.route_requests(),
        vec![("GET".to_owned(), "/props".to_owned(), Value::Null)]
    );

    // `/props` knows best (a slot's context); without it, the list's `meta.n_ctx`.
    let server = FakeModelServer::start().await;
    server.set_models_reply(Reply::fixture(fixture!("llama.cpp/01_models.http")));
    server.route(
        "GET",
        "/props",
        Reply::json(json!({"default_generation_settings": {"n_ctx": 2048}})),
    );
    assert_eq!(model_of(&server).context_size().await, Some(2048));
    let server = FakeModelServer::start().await;
    server.set_models_reply(Reply::fixture(fixture!("llama.cpp/01_models.http")));
    assert_eq!(model_of(&server).context_size().await, Some(4096));
}

fn model_of(server: &FakeModelServer) -> OpenAiModel {
    OpenAiModel::new(ModelSpec::parse(&server.base_url()).unwrap(), None)
}

#[tokio::test]
async fn context_size_of_vllm_lm_studio_and_ollama() {
    let server = FakeModelServer::start().await;
    server.set_models_reply(Reply::fixture(fixture!("vllm/models.http")));
    assert_eq!(model_of(&server).context_size().await, Some(32768));
    assert!(server.route_requests().is_empty());

    let server = FakeModelServer::start().await;
    server.set_models_reply(Reply::fixture(fixture!("lmstudio/models.http")));
    server.route(
        "GET",
        "/api/v0/models/qwen/qwen3-coder-30b",
        Reply::fixture(fixture!("lmstudio/api_v0_model.http")),
    );
    assert_eq!(model_of(&server).context_size().await, Some(16384));

    for (show, expected) in [
        (fixture!("ollama/api_show.http"), 4096),
        (fixture!("ollama/api_show_num_ctx.http"), 32768),
    ] {
        let server = FakeModelServer::start().await;
        server.set_models_reply(Reply::fixture(fixture!("ollama/models.http")));
        server.route("POST", "/api/show", Reply::fixture(show));
        assert_eq!(model_of(&server).context_size().await, Some(expected));
        assert_eq!(
            server.route_requests(),
            vec![(
                "POST".to_owned(),
                "/api/show".to_owned(),
                json!({"model": "qwen3:8b"})
            )]
        );
    }
}

#[tokio::test]
async fn context_size_unknown_configured_or_not_told() {
    // A server that tells nothing: asked once, then remembered.
    let server = FakeModelServer::start().await;
    let model = model(&server, "m");
    assert_eq!(model.context_size().await, None);
    let asked = server.route_requests().len();
    assert!(asked > 0);
    assert_eq!(model.context_size().await, None);
    assert_eq!(server.route_requests().len(), asked);

    // Configured: the server is not asked.
    let server = FakeModelServer::start().await;
    let configured = model_of(&server).with_context_size(8192);
    assert_eq!(configured.context_size().await, Some(8192));
    assert!(server.route_requests().is_empty());
    assert_eq!(server.model_list_requests(), 0);

    // Another back end knows nothing by default.
    struct Silent;
    impl ChatModel for Silent {
        fn stream(&self, _: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
            Box::pin(async {
                Err(LlmError::Backend {
                    message: "silent".into(),
                })
            })
        }
        fn describe(&self) -> String {
            "silent".into()
        }
    }
    assert_eq!(Silent.context_size().await, None);
}
