//! A custom model back end: anything that implements `ChatModel` can drive the agent. This one
//! is a tiny rule-based "model" that reads a file with a tool, then summarises it.
//!
//! Run: `cargo run --example custom_model`

use futures::future::BoxFuture;
use punie::agent::Agent;
use punie::llm::{
    ChatModel, ChatRequest, FinishReason, LlmError, Message, ModelEvent, ModelStream, ToolCall,
};
use punie::testing::FakeEditor;

/// First asks to read `README.md`, then reports how many lines it had.
struct ReadmeCounter;

impl ChatModel for ReadmeCounter {
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        let tool_result = request.messages.iter().rev().find_map(|m| match m {
            Message::Tool { content, .. } => Some(content.clone()),
            _ => None,
        });
        let events = match tool_result {
            None => vec![
                ModelEvent::Thought("I should look at the README first.".into()),
                ModelEvent::ToolCall(ToolCall {
                    id: "call_1".into(),
                    name: "read_file".into(),
                    arguments: r#"{"path": "README.md"}"#.into(),
                }),
                ModelEvent::Finished(FinishReason::ToolCalls),
            ],
            Some(text) => vec![
                ModelEvent::Text(format!("The README has {} lines.", text.lines().count())),
                ModelEvent::Finished(FinishReason::Stop),
            ],
        };
        Box::pin(async move {
            Ok(Box::pin(futures::stream::iter(events.into_iter().map(Ok))) as ModelStream)
        })
    }

    fn describe(&self) -> String {
        "readme counter".into()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let agent = Agent::builder().model(ReadmeCounter).build()?;
    let editor = FakeEditor::new().with_file("/project/README.md", "# Demo\n\nTwo more lines.\n");
    let connection = editor.connect(agent).await?;
    let session = connection.new_session("/project").await?;
    let stop = connection
        .prompt(&session, "How long is the README?")
        .await?;
    println!("thought: {}", editor.thought_text());
    println!("answer: {} ({stop:?})", editor.message_text());
    connection.close().await;
    Ok(())
}
