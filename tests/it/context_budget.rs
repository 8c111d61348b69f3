//! Small context windows: a long session keeps running inside the window (old tool outputs
//! shortened, older turns summarised, the person told), and a server's context-overflow error
//! leads to compaction and one retry.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use punie::agent::{Agent, StopReason};
use punie::llm::{
    ChatModel, ChatRequest, FinishReason, LlmError, Message, ModelEvent, ModelStream, ToolCall,
};
use punie::testing::{FakeEditor, schema::SessionUpdate};
use serde_json::json;

/// Ollama's default context window.
const WINDOW: u32 = 4096;

/// Reads a big file on every prompt, then answers; summarises when asked without tools.
#[derive(Default)]
struct Reader {
    requests: Mutex<Vec<ChatRequest>>,
}

impl ChatModel for Reader {
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        let events = if request.tools.is_empty() {
            vec![ModelEvent::Text(
                "Summary: the user asked to read big.txt several times.".into(),
            )]
        } else if matches!(request.messages.last(), Some(Message::User { .. })) {
            vec![ModelEvent::ToolCall(ToolCall {
                id: format!("call_{}", self.requests.lock().unwrap().len()),
                name: "read_file".into(),
                arguments: json!({"path": "big.txt"}).to_string(),
            })]
        } else {
            vec![ModelEvent::Text("I read it.".into())]
        };
        self.requests.lock().unwrap().push(request);
        let mut events: Vec<_> = events.into_iter().map(Ok).collect();
        events.push(Ok(ModelEvent::Finished(FinishReason::Stop)));
        Box::pin(async move { Ok(Box::pin(futures::stream::iter(events)) as ModelStream) })
    }

    fn describe(&self) -> String {
        "reader".into()
    }

    fn context_size(&self) -> BoxFuture<'_, Option<u32>> {
        Box::pin(async { Some(WINDOW) })
    }
}

/// Bytes of everything a request sends; Punie's estimate is at most 3 bytes per token.
fn request_bytes(request: &ChatRequest) -> usize {
    let messages: usize = request
        .messages
        .iter()
        .map(|m| match m {
            Message::System { content } | Message::User { content } => content.len(),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                content.as_ref().map_or(0, String::len)
                    + tool_calls
                        .iter()
                        .map(|c| c.arguments.len() + c.name.len())
                        .sum::<usize>()
            }
            Message::Tool { content, .. } => content.len(),
            _ => 0,
        })
        .sum();
    let tools: usize = request
        .tools
        .iter()
        .map(|t| t.description.len() + t.parameters.to_string().len())
        .sum();
    messages + tools
}

#[tokio::test]
async fn a_long_session_stays_inside_a_small_window() {
    let model = Arc::new(Reader::default());
    let agent = Agent::builder().model(model.clone()).build().unwrap();
    let big: String = (0..400)
        .map(|i| format!("line {i} of a big file with some text\n"))
        .collect();
    let editor = FakeEditor::new().with_file("/project/big.txt", big.clone());
    let connection = editor.connect(agent).await.unwrap();
    let session = connection.new_session("/project").await.unwrap();
    for turn in 0..8 {
        let stop = connection
            .prompt(&session, &format!("read big.txt again ({turn})"))
            .await
            .unwrap();
        assert_eq!(stop, StopReason::EndTurn, "turn {turn}");
    }
    let requests = model.requests.lock().unwrap();
    for (i, request) in requests.iter().enumerate() {
        let bytes = request_bytes(request);
        let max_tokens = request.max_tokens.unwrap();
        assert!(
            bytes / 3 + max_tokens as usize <= WINDOW as usize + 200,
            "request {i}: {bytes} bytes + {max_tokens} tokens"
        );
    }
    assert!(
        requests.iter().any(|r| r.tools.is_empty()),
        "older turns were summarised by the model"
    );
    let last = requests.last().unwrap();
    assert!(
        last.messages.iter().any(|m| matches!(m, Message::User { content } if content.contains("Summary: the user asked"))),
        "the summary replaced the older turns"
    );
    // The big tool output was capped before it entered the history.
    let first_tool = requests[1].messages.iter().find_map(|m| match m {
        Message::Tool { content, .. } => Some(content.clone()),
        _ => None,
    });
    let first_tool = first_tool.unwrap();
    assert!(
        first_tool.len() < big.len() && first_tool.contains("cut"),
        "{} bytes",
        first_tool.len()
    );
    // The person was told, and saw how full the window is.
    assert!(
        editor.message_text().contains("context window"),
        "{}",
        editor.message_text()
    );
    assert!(
        editor
            .notifications()
            .iter()
            .all(|n| !matches!(n.update, SessionUpdate::UsageUpdate(_))),
        "the fake editor advertises no session capabilities"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_context_overflow_error_compacts_and_retries_once() {
    use crate::support::fake_model::{FakeModelServer, Reply};
    use crate::support::fixture;
    let server = FakeModelServer::start().await;
    server.push(Reply::fixture(fixture!(
        "llama.cpp/62_err_context_overflow_nonstream.http"
    )));
    server.push(Reply::text("fits now"));
    let spec = format!("{}/fake-model", server.base_url());
    let agent = Agent::builder()
        .openai(&spec, None)
        .unwrap()
        .build()
        .unwrap();
    let editor = FakeEditor::new();
    let connection = editor.connect(agent).await.unwrap();
    let session = connection.new_session("/project").await.unwrap();
    let stop = connection.prompt(&session, "hello").await.unwrap();
    assert_eq!(stop, StopReason::EndTurn);
    assert_eq!(editor.message_text(), "fits now");
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "one retry");
    assert!(requests[1]["max_tokens"].as_u64() <= requests[0]["max_tokens"].as_u64());
}
