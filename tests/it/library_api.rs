//! Punie as a library: everything here uses only the public API, as an outside crate would.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use punie::agent::{Agent, AgentBuilder, BuildError, StopReason};
use punie::llm::{
    ChatModel, ChatRequest, FinishReason, LlmError, Message, ModelEvent, ModelStream,
};
use punie::testing::{FakeEditor, PermissionAnswer, ScriptedModel};
use punie::tools::{Tool, ToolContext, ToolError, ToolOutput, parse_args, schema_for};
use punie::workspace::ToolKind;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A custom tool with typed, schema-derived arguments.
struct WordCount;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct WordCountArgs {
    /// The text to count.
    text: String,
}

impl Tool for WordCount {
    fn name(&self) -> &str {
        "word_count"
    }
    fn description(&self) -> &str {
        "Count the words of a text."
    }
    fn parameters(&self) -> Value {
        schema_for::<WordCountArgs>()
    }
    fn kind(&self) -> ToolKind {
        ToolKind::Other
    }
    fn call<'a>(
        &'a self,
        args: Value,
        _ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let args: WordCountArgs = parse_args(self.name(), &args)?;
            Ok(ToolOutput::text(format!(
                "{} words",
                args.text.split_whitespace().count()
            )))
        })
    }
}

#[tokio::test]
async fn a_custom_tool_is_offered_and_called() {
    let model = Arc::new(ScriptedModel::new());
    model.tool_call("word_count", json!({"text": "one two three"}));
    model.text("Three words.");
    let agent = Agent::builder()
        .model(model.clone())
        .tool(WordCount)
        .build()
        .unwrap();
    let editor = FakeEditor::new();
    let connection = editor.connect(agent).await.unwrap();
    let session = connection.new_session("/project").await.unwrap();
    assert_eq!(
        connection.prompt(&session, "count").await.unwrap(),
        StopReason::EndTurn
    );

    let requests = model.requests();
    let offered = requests[0]
        .tools
        .iter()
        .find(|t| t.name == "word_count")
        .expect("offered to the model");
    assert_eq!(offered.parameters["properties"]["text"]["type"], "string");
    let Message::Tool { content, .. } = requests[1].messages.last().unwrap() else {
        panic!("a tool result")
    };
    assert_eq!(content, "3 words");
    assert_eq!(editor.tool_calls()[0].title, "word_count");
    assert_eq!(editor.message_text(), "Three words.");
    connection.close().await;
}

/// A custom model back end: answers with the last user message, reversed.
struct Reverser;

impl ChatModel for Reverser {
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        let last = request
            .messages
            .iter()
            .rev()
            .find_map(|m| match m {
                Message::User { content } => Some(content.clone()),
                _ => None,
            })
            .unwrap_or_default();
        Box::pin(async move {
            let events = vec![
                Ok(ModelEvent::Text(last.chars().rev().collect())),
                Ok(ModelEvent::Finished(FinishReason::Stop)),
            ];
            Ok(Box::pin(futures::stream::iter(events)) as ModelStream)
        })
    }
    fn describe(&self) -> String {
        "reverser".into()
    }
}

#[tokio::test]
async fn a_custom_model_back_end_drives_the_agent() {
    let agent = Agent::builder().model(Reverser).build().unwrap();
    let editor = FakeEditor::new();
    let connection = editor.connect(agent).await.unwrap();
    let session = connection.new_session("/project").await.unwrap();
    connection.prompt(&session, "punie").await.unwrap();
    assert_eq!(editor.message_text(), "einup");
}

/// A model that starts answering and never finishes.
struct Stuck;

impl ChatModel for Stuck {
    fn stream(&self, _request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        Box::pin(async {
            let first = futures::stream::iter([Ok(ModelEvent::Text("thinking about it".into()))]);
            Ok(
                Box::pin(futures::StreamExt::chain(first, futures::stream::pending()))
                    as ModelStream,
            )
        })
    }
    fn describe(&self) -> String {
        "stuck".into()
    }
}

#[tokio::test]
async fn cancel_through_the_kit_ends_the_turn_as_cancelled() {
    let agent = Agent::builder().model(Stuck).build().unwrap();
    let editor = FakeEditor::new();
    let connection = Arc::new(editor.connect(agent).await.unwrap());
    let session = connection.new_session("/project").await.unwrap();
    let turn = tokio::spawn({
        let (connection, session) = (connection.clone(), session.clone());
        async move { connection.prompt(&session, "go").await }
    });
    for _ in 0..200 {
        if !editor.message_text().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    connection.cancel(&session).unwrap();
    let stop = tokio::time::timeout(Duration::from_secs(10), turn)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(stop, StopReason::Cancelled);
}

#[tokio::test]
async fn the_kit_edits_files_in_memory_with_scripted_permissions() {
    let model = Arc::new(ScriptedModel::new());
    model.tool_call("write_file", json!({"path": "a.txt", "content": "new"}));
    model.tool_call("write_file", json!({"path": "b.txt", "content": "refused"}));
    model.tool_call("run_command", json!({"command": "cargo", "args": ["test"]}));
    model.text("done");
    let agent = Agent::builder().model(model.clone()).build().unwrap();
    let editor = FakeEditor::new()
        .with_file("/project/a.txt", "old")
        .answer(PermissionAnswer::AllowOnce)
        .answer(PermissionAnswer::RejectOnce)
        .answer(PermissionAnswer::AllowOnce)
        .command_output("cargo test", "test result: ok", 0);
    let connection = editor.connect(agent).await.unwrap();
    let session = connection.new_session("/project").await.unwrap();
    connection.prompt(&session, "work").await.unwrap();
    assert_eq!(editor.file("/project/a.txt").as_deref(), Some("new"));
    assert_eq!(editor.file("/project/b.txt"), None);
    assert_eq!(editor.commands_run(), vec!["cargo test"]);
    assert_eq!(editor.permission_requests().len(), 3);
    let Message::Tool { content, .. } = model.requests()[3].messages.last().unwrap().clone() else {
        panic!()
    };
    assert!(
        content.contains("exit code 0") && content.contains("test result: ok"),
        "{content}"
    );
}

#[tokio::test]
async fn serves_over_any_byte_stream_pair() {
    let agent = Agent::builder().model(Reverser).build().unwrap();
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (server_read, server_write) = tokio::io::split(server);
    tokio::spawn(punie::acp::serve_io(agent, server_read, server_write));
    let (client_read, mut client_write) = tokio::io::split(client);
    let mut lines = BufReader::new(client_read).lines();
    let mut send = async |message: Value| {
        client_write
            .write_all(format!("{message}\n").as_bytes())
            .await
            .unwrap();
    };
    send(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1}})).await;
    let answer: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(answer["result"]["agentInfo"]["name"], "punie");
}

#[test]
fn building_checks_its_parts() {
    assert!(matches!(
        AgentBuilder::new().build(),
        Err(BuildError::NoModel)
    ));
    let duplicate = AgentBuilder::new()
        .model(Reverser)
        .tool(WordCount)
        .tool(WordCount)
        .build();
    assert!(matches!(duplicate, Err(BuildError::DuplicateTool(name)) if name == "word_count"));
    let agent = AgentBuilder::new()
        .model(Reverser)
        .instructions("Be brief.")
        .max_tokens(100)
        .build()
        .unwrap();
    assert_eq!(agent.config().max_tokens, Some(100));
    assert!(agent.toolset().get("read_file").is_some());
}
