//! Punie: a coding agent for editors, speaking the Agent Client Protocol (ACP v1), running on
//! models you host yourself (LM Studio, llama.cpp, Ollama, vLLM, mlx_lm.server).
//!
//! The `punie` binary is what JetBrains IDEs and Zed start; this library is the same agent, to
//! embed in your own program with your own tools and model back end.
//!
//! # Quickstart
//!
//! An agent on an OpenAI-compatible server, with one extra tool, served to an editor over
//! stdio:
//!
//! ```no_run
//! use futures::future::BoxFuture;
//! use punie::agent::Agent;
//! use punie::tools::{Tool, ToolContext, ToolError, ToolKind, ToolOutput, parse_args, schema_for};
//! use serde_json::Value;
//!
//! /// Tells the model what time it is.
//! struct Clock;
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema)]
//! struct ClockArgs {
//!     /// An IANA time zone, e.g. "Europe/Paris".
//!     zone: Option<String>,
//! }
//!
//! impl Tool for Clock {
//!     fn name(&self) -> &str { "clock" }
//!     fn description(&self) -> &str { "The current time." }
//!     fn parameters(&self) -> Value { schema_for::<ClockArgs>() }
//!     fn kind(&self) -> ToolKind { ToolKind::Other }
//!     fn call<'a>(&'a self, args: Value, _ctx: &'a ToolContext)
//!         -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
//!         Box::pin(async move {
//!             let args: ClockArgs = parse_args(self.name(), &args)?;
//!             let zone = args.zone.unwrap_or_else(|| "UTC".into());
//!             Ok(ToolOutput::text(format!("It is noon in {zone}.")))
//!         })
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let agent = Agent::builder()
//!     .openai("http://localhost:1234/v1/qwen/qwen3-coder-30b", None)?
//!     .instructions("Keep answers short.")
//!     .tool(Clock)
//!     .build()?;
//! punie::acp::serve_stdio(agent).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # The parts
//!
//! - [`agent`]: [`Agent`](agent::Agent) and its [builder](agent::AgentBuilder), sessions, the
//!   turn loop, [`TurnEvent`](agent::TurnEvent)s.
//! - [`llm`]: the [`ChatModel`](llm::ChatModel) trait and the OpenAI-compatible client.
//! - [`tools`]: the [`Tool`](tools::Tool) trait and the built-in tools.
//! - [`workspace`]: where tools act — the editor or the local sandbox.
//! - [`image`]: images in prompts and tool results, and their bounds.
//! - [`acp`]: serving an agent over stdio, any byte stream, or in memory.
//! - `testing` (feature `testing`): a scripted model and a fake editor for tests.
#![deny(clippy::print_stdout, clippy::print_stderr)]
#![warn(missing_docs)]

pub mod acp;
pub mod agent;
pub mod image;
pub mod llm;
pub mod perf;
pub mod server;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tools;
pub mod workspace;
