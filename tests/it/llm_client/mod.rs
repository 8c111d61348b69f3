//! The OpenAI-compatible client against a fake server replaying what llama.cpp, Ollama and
//! LM Studio really send: streams, tool calls, thoughts, errors of every shape, cut streams,
//! timeouts, and cancellation reaching the server.

mod errors;
mod requests;
mod streams;
mod timeouts;

use punie::llm::{
    ChatRequest, LlmError, Message, ModelSpec, OpenAiModel, RetryPolicy, ToolCall, Usage,
};

use crate::support::fake_model::{FakeModelServer, Reply};
use crate::support::model_client::{Answer, ask};

const LLAMA_HELLO: &str = "Hello! I am a tiny random model 🦙.";

/// A client of `server` that tries each request once: these tests are about what one answer
/// gives (retries are tested in `llm_server`).
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
    ask(&model_for(server), hello()).await
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
        ..Usage::default()
    })
}
