//! Assembling an [`Agent`] from parts: a model, settings, extra tools and a workspace policy.

use std::sync::Arc;

use super::{Agent, AgentConfig, TurnObserver};
use crate::llm::{ChatModel, LlmError, ModelSpec, OpenAiModel};
use crate::tools::Tool;
use crate::workspace::local::SandboxOptions;

/// Why an agent could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No model was given.
    #[error("no model: call AgentBuilder::model or AgentBuilder::openai")]
    NoModel,
    /// The model spec is invalid.
    #[error(transparent)]
    Model(#[from] LlmError),
    /// Two tools have the same name.
    #[error("two tools are named {0:?}: tool names must be unique")]
    DuplicateTool(String),
}

/// Builds an [`Agent`].
///
/// ```
/// # use punie::agent::AgentBuilder;
/// let agent = AgentBuilder::new()
///     .openai("http://localhost:1234/v1/qwen3-8b", None)?
///     .instructions("Answer in French.")
///     .build()?;
/// assert_eq!(agent.config().max_tokens, None);
/// # Ok::<(), punie::agent::BuildError>(())
/// ```
#[derive(Default)]
#[must_use]
pub struct AgentBuilder {
    model: Option<Arc<dyn ChatModel>>,
    config: AgentConfig,
    tools: Vec<Arc<dyn Tool>>,
    sandbox: SandboxOptions,
    observer: Option<Arc<dyn TurnObserver>>,
    journals: Option<Arc<crate::agent::journal::SessionStore>>,
}

impl std::fmt::Debug for AgentBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentBuilder")
            .field("model", &self.model.as_ref().map(|m| m.describe()))
            .field("config", &self.config)
            .field(
                "tools",
                &self
                    .tools
                    .iter()
                    .map(|t| t.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .field("sandbox", &self.sandbox)
            .finish()
    }
}

impl AgentBuilder {
    /// A builder with the default settings and no model yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `model` (any [`ChatModel`]).
    pub fn model(mut self, model: impl ChatModel + 'static) -> Self {
        self.model = Some(Arc::new(model));
        self
    }

    /// Uses an already shared model.
    pub fn shared_model(mut self, model: Arc<dyn ChatModel>) -> Self {
        self.model = Some(model);
        self
    }

    /// Uses an OpenAI-compatible server described by a model spec (see [`ModelSpec::parse`]),
    /// with an optional API key.
    pub fn openai(self, spec: &str, api_key: Option<String>) -> Result<Self, BuildError> {
        let spec = ModelSpec::parse(spec)?;
        Ok(self.model(OpenAiModel::new(spec, api_key)))
    }

    /// Replaces all settings.
    pub fn config(mut self, config: AgentConfig) -> Self {
        self.config = config;
        self
    }

    /// Extra instructions appended to the system prompt.
    pub fn instructions(mut self, instructions: impl Into<String>) -> Self {
        self.config.instructions = Some(instructions.into());
        self
    }

    /// The user-wide instructions file read before the project's `AGENTS.md` files (`None`:
    /// none). Default: [`default_user_instructions`](super::default_user_instructions).
    pub fn user_instructions(mut self, path: Option<std::path::PathBuf>) -> Self {
        self.config.user_instructions = path;
        self
    }

    /// The sampling temperature.
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.config.temperature = temperature;
        self
    }

    /// The most tokens per model answer.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.config.max_tokens = Some(max_tokens);
        self
    }

    /// The most model requests per prompt.
    pub fn max_turn_requests(mut self, max_turn_requests: u32) -> Self {
        self.config.max_turn_requests = max_turn_requests;
        self
    }

    /// Adds a tool every session gets, besides the built-in ones. A tool named like a built-in
    /// one replaces it.
    pub fn tool(mut self, tool: impl Tool + 'static) -> Self {
        self.tools.push(Arc::new(tool));
        self
    }

    /// Adds an already shared tool.
    pub fn shared_tool(mut self, tool: Arc<dyn Tool>) -> Self {
        self.tools.push(tool);
        self
    }

    /// How commands run locally (for editors that do not run them) are confined.
    pub fn sandbox(mut self, sandbox: SandboxOptions) -> Self {
        self.sandbox = sandbox;
        self
    }

    /// Receives the timings of every turn (see [`TurnObserver`]).
    pub fn observer(mut self, observer: Arc<dyn TurnObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Saves every session in `store`, so it can be listed, loaded and resumed later.
    pub fn journals(mut self, store: crate::agent::journal::SessionStore) -> Self {
        self.journals = Some(Arc::new(store));
        self
    }

    /// Builds the agent.
    pub fn build(self) -> Result<Arc<Agent>, BuildError> {
        let model = self.model.ok_or(BuildError::NoModel)?;
        let mut seen = std::collections::HashSet::new();
        for tool in &self.tools {
            if !seen.insert(tool.name().to_owned()) {
                return Err(BuildError::DuplicateTool(tool.name().to_owned()));
            }
        }
        let mut agent = Agent::new(model, self.config);
        agent.extra_tools = self.tools;
        agent.sandbox = self.sandbox;
        agent.observer = self.observer;
        agent.journals = self.journals;
        Ok(Arc::new(agent))
    }
}
