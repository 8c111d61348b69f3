//! What the client sends and whom it asks: the request body, the server's first model when none
//! is named, and the fake server's own answers.

use std::time::Duration;

use punie::llm::{ChatModel, ChatRequest, LlmError, Message, ModelSpec, OpenAiModel, ToolSpec};
use serde_json::{Value, json};

use super::{call, error_of, hello, model_for};
use crate::support::fake_model::{FakeModelServer, Reply};
use crate::support::model_client::collect;

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
