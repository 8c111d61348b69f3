//! Punie's fixed prompt — the system prompt and the tool schemas every request of a session
//! starts with — taken from the turn itself: an agent with the built-in tools runs one prompt
//! against a model that only records the request it is sent. Whatever the turn puts first
//! (today or after a change to the prompt or the tool profiles), the doctor measures that.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use punie::agent::{Agent, EventSink, TurnEvent};
use punie::llm::{ChatModel, ChatRequest, LlmError, Message, ModelStream, ToolSpec};
use punie::workspace::local::{LocalOptions, SandboxOptions, local_workspace};

/// The system prompt and the tools of a session's requests.
#[derive(Clone, Debug)]
pub struct FixedPrompt {
    /// The system prompt.
    pub system: String,
    /// The tools offered with it.
    pub tools: Vec<ToolSpec>,
}

impl FixedPrompt {
    /// Its size in bytes as sent (the system prompt and the tools' JSON).
    pub fn bytes(&self) -> usize {
        self.system.len()
            + self
                .tools
                .iter()
                .map(|tool| {
                    tool.name.len() + tool.description.len() + tool.parameters.to_string().len()
                })
                .sum::<usize>()
    }
}

/// A window large enough that the turn shortens nothing.
const ROOMY_WINDOW: u32 = 1 << 20;

/// Records the first request and fails it.
#[derive(Default)]
struct Recorder(Mutex<Option<ChatRequest>>);

impl ChatModel for Recorder {
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(request);
        Box::pin(async {
            Err(LlmError::Backend {
                message: "recorded by punie doctor".to_owned(),
            })
        })
    }

    fn describe(&self) -> String {
        "punie doctor's recorder".to_owned()
    }

    fn context_size(&self) -> BoxFuture<'_, Option<u32>> {
        Box::pin(async { Some(ROOMY_WINDOW) })
    }
}

struct Ignore;

impl EventSink for Ignore {
    fn emit(&self, _session_id: &str, _event: TurnEvent) {}
}

/// The fixed prompt of a session in `root` (the system prompt names the project's path).
pub async fn fixed_prompt(root: PathBuf, sandbox: SandboxOptions) -> anyhow::Result<FixedPrompt> {
    let recorder = Arc::new(Recorder::default());
    let agent = Agent::builder()
        .model(Arc::clone(&recorder))
        .sandbox(sandbox.clone())
        .build()?;
    let options = LocalOptions {
        sandbox,
        approve: None,
        interactive: false,
    };
    let workspace = local_workspace(root, options)?;
    let session = agent.new_session(move |_| workspace, agent.toolset());
    // The recorder fails the request, so the turn ends with an error: expected.
    let _ = agent
        .prompt(session, "Say OK.".into(), Arc::new(Ignore))
        .await;
    agent.close_all().await;
    let request = recorder
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .ok_or_else(|| anyhow::anyhow!("the turn sent no request to read the fixed prompt from"))?;
    let system = request
        .messages
        .iter()
        .find_map(|message| match message {
            Message::System { content } => Some(content.clone()),
            _ => None,
        })
        .unwrap_or_default();
    Ok(FixedPrompt {
        system,
        tools: request.tools,
    })
}
