//! Embedding the agent without any protocol: a session on a local, sandboxed workspace, driven
//! directly, printing every update as it happens.
//!
//! Run: `cargo run --example in_memory`

use std::sync::Arc;

use punie::agent::{Agent, EventSink, TurnEvent};
use punie::testing::ScriptedModel;
use punie::workspace::local::{ApprovePolicy, LocalOptions, local_workspace};
use serde_json::json;

/// Prints each event of a turn.
struct Printer;

impl EventSink for Printer {
    fn emit(&self, session_id: &str, event: TurnEvent) {
        match event {
            TurnEvent::MessageChunk(text) => println!("[{session_id}] says: {text}"),
            TurnEvent::ThoughtChunk(text) => println!("[{session_id}] thinks: {text}"),
            TurnEvent::ToolCall(call) => {
                println!("[{session_id}] calls {} ({:?})", call.title, call.kind)
            }
            TurnEvent::ToolCallUpdate(change) => match change.status {
                Some(status) => println!("[{session_id}] {} is now {status:?}", change.id),
                None => println!("[{session_id}] {} shows new content", change.id),
            },
            other => println!("[{session_id}] {other:?}"),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("notes.txt"), "buy milk\n")?;

    let model = Arc::new(ScriptedModel::new());
    model.tool_call("read_file", json!({"path": "notes.txt"}));
    model.tool_call(
        "write_file",
        json!({"path": "notes.txt", "content": "buy milk\nbuy bread\n"}),
    );
    model.thought_then_text("Both items are there now.", "Added bread to your notes.");
    let agent = Agent::builder().model(model).build()?;

    // Everything local, writes allowed by policy (nobody is asked).
    let options = LocalOptions {
        approve: Some(ApprovePolicy::Edits),
        ..LocalOptions::default()
    };
    let workspace = local_workspace(dir.path().to_owned(), options)?;
    let session = agent.new_session(|_| workspace, agent.toolset());
    let stop = agent
        .prompt(session, "Add bread to my notes".into(), Arc::new(Printer))
        .await?;

    println!("stop reason: {stop:?}");
    println!(
        "notes.txt now:\n{}",
        std::fs::read_to_string(dir.path().join("notes.txt"))?
    );
    Ok(())
}
