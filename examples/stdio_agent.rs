//! A minimal Punie agent over stdio, assembled from the library's public parts: an
//! OpenAI-compatible model from `PUNIE_MODEL` (LM Studio by default) and the default settings.
//!
//! Point an ACP client at `cargo run --example stdio_agent`. Logs are off: stdout is the protocol.

use std::sync::Arc;

use punie::agent::{Agent, AgentConfig};
use punie::llm::{ModelSpec, OpenAiModel};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = ModelSpec::parse(&std::env::var("PUNIE_MODEL").unwrap_or_default())?;
    let model = OpenAiModel::new(spec, std::env::var("PUNIE_API_KEY").ok());
    let agent = Arc::new(Agent::new(Arc::new(model), AgentConfig::default()));
    punie::acp::serve_stdio(agent.clone()).await?;
    agent.close_all().await;
    Ok(())
}
