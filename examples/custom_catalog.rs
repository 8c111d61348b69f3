//! The editor side of Punie's tool-discovery extension: a (fake) editor advertises
//! `punie.dev/discoverTools` and serves a catalog of its own tools — here an IDE refactoring
//! and an inspection. The model sees them with their real schemas; calls come back to the
//! editor as `_punie/call_tool`. An IDE plugin answers the same two requests
//! (see specs/tool-discovery.md).
//!
//! Run: `cargo run --example custom_catalog`

use std::sync::Arc;

use punie::agent::Agent;
use punie::testing::{FakeEditor, PermissionAnswer, ScriptedModel};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let catalog = json!({"tools": [
        {
            "name": "rename_symbol",
            "kind": "edit",
            "description": "Rename a symbol and every usage of it, like the IDE's Rename refactoring.",
            "parameters": {
                "type": "object",
                "properties": {
                    "symbol": {"type": "string", "description": "Fully qualified name"},
                    "new_name": {"type": "string"}
                },
                "required": ["symbol", "new_name"]
            },
            "requiresPermission": true,
            "categories": ["refactoring"]
        },
        {
            "name": "inspect_file",
            "kind": "read",
            "description": "Run the IDE's inspections on a file and list the problems.",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
        },
        {"name": "read_file", "kind": "read", "description": "the built-in one is used"}
    ]});

    let model = Arc::new(ScriptedModel::new());
    model.tool_call("inspect_file", json!({"path": "src/lib.rs"}));
    model.tool_call(
        "rename_symbol",
        json!({"symbol": "crate::parse", "new_name": "parse_config"}),
    );
    model.text("Renamed `parse` to `parse_config`; the inspection found one unused import.");
    let agent = Agent::builder().model(model.clone()).build()?;

    let editor = FakeEditor::new()
        .with_catalog(catalog)
        .catalog_result(
            "inspect_file",
            json!({"content": [{"type": "text", "text": "src/lib.rs:3: unused import `std::fmt`"}]}),
        )
        .answer(PermissionAnswer::AllowOnce);
    let connection = editor.connect(agent).await?;
    let session = connection.new_session("/project").await?;
    connection
        .prompt(&session, "Rename parse to parse_config")
        .await?;

    let offered: Vec<String> = model.requests()[0]
        .tools
        .iter()
        .map(|t| t.name.clone())
        .collect();
    println!("tools offered to the model: {}", offered.join(", "));
    for (name, arguments) in editor.bridged_calls() {
        println!("_punie/call_tool {name} {arguments}");
    }
    println!(
        "permission asked {} time(s)",
        editor.permission_requests().len()
    );
    println!("answer: {}", editor.message_text());
    connection.close().await;
    Ok(())
}
