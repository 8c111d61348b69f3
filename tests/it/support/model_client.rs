//! Driving `OpenAiModel` against the fake server and gathering what one answer said: shared by
//! the `llm_client`, `llm_server` and `llm_text_tools` suites.

use std::time::Duration;

use futures::StreamExt;
use punie::llm::{
    ChatModel, ChatRequest, FinishReason, LlmError, Message, ModelEvent, ModelSpec, ModelStream,
    OpenAiModel, RetryPolicy, ToolCall, ToolSpec, Usage,
};
use serde_json::{Value, json};

use super::fake_model::FakeModelServer;

/// Everything one answer said, gathered.
#[derive(Debug, Default, PartialEq)]
pub struct Answer {
    pub text: String,
    pub thought: String,
    pub calls: Vec<ToolCall>,
    /// The token counts of the last usage the server reported (its cache and timings are
    /// checked by the perf suites).
    pub usage: Option<Usage>,
    pub finish: Option<FinishReason>,
}

/// Reads a stream to its end, checking its shape: no empty text, nothing after `Finished` or an
/// error, and a `Finished` unless it failed.
pub async fn collect(mut stream: ModelStream) -> Result<Answer, (Answer, LlmError)> {
    let mut answer = Answer::default();
    while let Some(item) = stream.next().await {
        assert!(answer.finish.is_none(), "an event after Finished: {item:?}");
        match item {
            Ok(ModelEvent::Text(text)) => {
                assert!(!text.is_empty(), "empty text event");
                answer.text.push_str(&text);
            }
            Ok(ModelEvent::Thought(text)) => {
                assert!(!text.is_empty(), "empty thought event");
                answer.thought.push_str(&text);
            }
            Ok(ModelEvent::ToolCall(call)) => answer.calls.push(call),
            Ok(ModelEvent::Usage(usage)) => {
                answer.usage = Some(Usage {
                    prompt_tokens: usage.prompt_tokens,
                    completion_tokens: usage.completion_tokens,
                    ..Usage::default()
                })
            }
            // How the calls were written and how far the prompt was read: not part of the answer.
            Ok(ModelEvent::RecoveredCall(_) | ModelEvent::PromptProgress(_)) => {}
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

/// Retries without waiting long.
pub fn quick_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        server_wait: Duration::ZERO,
    }
}

/// A client of the model `name` on `server`, retrying quickly.
pub fn model(server: &FakeModelServer, name: &str) -> OpenAiModel {
    OpenAiModel::new(ModelSpec::parse(&server.spec_for(name)).unwrap(), None)
        .with_retry(quick_retries(3))
}

/// A tool spec whose arguments have these JSON Schema `properties`.
pub fn tool(name: &str, properties: Value) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: format!("The {name} tool"),
        parameters: json!({"type": "object", "properties": properties}),
    }
}

/// The few tools the requests offer.
pub fn tools() -> Vec<ToolSpec> {
    vec![
        tool("read_file", json!({"path": {"type": "string"}})),
        tool(
            "write_file",
            json!({"path": {"type": "string"}, "content": {"type": "string"}}),
        ),
        tool(
            "grep",
            json!({
                "pattern": {"type": "string"},
                "max_results": {"type": "integer"},
                "case_sensitive": {"type": "boolean"},
            }),
        ),
        tool("list_dir", json!({"path": {"type": "string"}})),
    ]
}

/// A system prompt and one user message, offering `tools`.
pub fn request(tools: Vec<ToolSpec>) -> ChatRequest {
    ChatRequest {
        messages: vec![
            Message::System {
                content: "You are Punie.".into(),
            },
            Message::User {
                content: "Look at the project".into(),
            },
        ],
        tools,
        ..ChatRequest::default()
    }
}

/// Sends `request` and gathers the answer (an error before the stream gives an empty one).
pub async fn ask(model: &OpenAiModel, request: ChatRequest) -> Result<Answer, (Answer, LlmError)> {
    match model.stream(request).await {
        Ok(stream) => collect(stream).await,
        Err(error) => Err((Answer::default(), error)),
    }
}
