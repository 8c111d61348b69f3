//! A custom tool: typed arguments with a derived JSON Schema, added to an agent with the
//! builder. A scripted model calls it and a fake editor shows what happened, all in memory.
//!
//! Run: `cargo run --example custom_tool`

use std::sync::Arc;

use futures::future::BoxFuture;
use punie::agent::Agent;
use punie::testing::{FakeEditor, ScriptedModel};
use punie::tools::{Tool, ToolContext, ToolError, ToolOutput, parse_args, schema_for};
use punie::workspace::ToolKind;
use serde_json::{Value, json};

/// Converts a temperature from Celsius to Fahrenheit.
struct Fahrenheit;

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Args {
    /// Degrees Celsius.
    celsius: f64,
}

impl Tool for Fahrenheit {
    fn name(&self) -> &str {
        "to_fahrenheit"
    }

    fn description(&self) -> &str {
        "Convert a temperature from Celsius to Fahrenheit."
    }

    fn parameters(&self) -> Value {
        schema_for::<Args>()
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
            let args: Args = parse_args(self.name(), &args)?;
            if !args.celsius.is_finite() {
                return Err(ToolError::Failed("celsius must be a finite number".into()));
            }
            Ok(ToolOutput::text(format!(
                "{:.1} °F",
                args.celsius * 9.0 / 5.0 + 32.0
            )))
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model = Arc::new(ScriptedModel::new());
    model.tool_call("to_fahrenheit", json!({"celsius": 21.5}));
    model.text("21.5 °C is 70.7 °F.");
    let agent = Agent::builder()
        .model(model.clone())
        .tool(Fahrenheit)
        .build()?;

    let editor = FakeEditor::new();
    let connection = editor.connect(agent).await?;
    let session = connection.new_session("/project").await?;
    connection
        .prompt(&session, "What is 21.5 °C in Fahrenheit?")
        .await?;

    println!("schema offered: {}", schema_for::<Args>());
    for call in editor.tool_calls() {
        println!("tool call: {} ({:?})", call.title, call.kind);
    }
    if let Some(punie::llm::Message::Tool { content, .. }) = model.requests()[1].messages.last() {
        println!("tool result given to the model: {content}");
    }
    println!("answer: {}", editor.message_text());
    connection.close().await;
    Ok(())
}
