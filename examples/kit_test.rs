//! The test kit in a test: a scripted model and a fake editor check that a refused write
//! changes nothing and that the model is told. Embedders write their tests the same way.
//!
//! Run: `cargo run --example kit_test` (it asserts, then prints "ok")

use std::sync::Arc;

use punie::agent::{Agent, StopReason};
use punie::llm::Message;
use punie::testing::{FakeEditor, PermissionAnswer, ScriptedModel};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model = Arc::new(ScriptedModel::new());
    model.tool_call(
        "write_file",
        json!({"path": "main.rs", "content": "fn main() {}"}),
    );
    model.text("OK, I left main.rs alone.");
    let agent = Agent::builder().model(model.clone()).build()?;
    let editor = FakeEditor::new()
        .with_file("/project/main.rs", "// hand-written")
        .answer(PermissionAnswer::RejectOnce);

    let connection = editor.connect(agent).await?;
    let session = connection.new_session("/project").await?;
    assert_eq!(
        connection.prompt(&session, "rewrite main.rs").await?,
        StopReason::EndTurn
    );

    assert_eq!(
        editor.file("/project/main.rs").as_deref(),
        Some("// hand-written")
    );
    assert_eq!(editor.permission_requests().len(), 1);
    let Some(Message::Tool { content, .. }) = model.requests()[1].messages.last().cloned() else {
        panic!("the model got the tool result");
    };
    assert!(content.contains("refused"), "{content}");
    connection.close().await;
    println!("ok");
    Ok(())
}
