//! The model side of a turn: a [`ChatModel`] trait yielding a stream of [`ModelEvent`]s, and an
//! OpenAI-compatible client for the local servers people really run (LM Studio, llama.cpp,
//! Ollama, vLLM, mlx_lm.server).
//!
//! Made for local models: inline `<think>` and tool calls written as text become events
//! ([`MarkupFilter`]), servers that refuse `tools` get them described in the prompt, passing
//! failures are retried ([`RetryPolicy`]), and the context window is asked of the server
//! ([`ChatModel::context_size`]).
//!
//! Nothing here knows about ACP or tools beyond their JSON schemas.

pub mod assemble;
mod endpoint;
#[cfg(test)]
mod fixture_tests;
mod markup;
mod openai;
mod prompted;
mod retry;
mod server;
mod spec;
pub mod sse;
mod stream;
mod wire;

pub use assemble::{ToolCallAssembler, ToolCallDelta};
pub use markup::{MarkupFilter, filter_markup};
pub use openai::{OpenAiModel, Timeouts};
pub use retry::RetryPolicy;
pub use spec::{DEFAULT_BASE_URL, ModelSpec};

use std::pin::Pin;

use futures::Stream;
use futures::future::BoxFuture;

/// One message of the conversation sent to the model.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Message {
    /// Instructions for the model.
    System {
        /// The instructions.
        content: String,
    },
    /// What the person asked.
    User {
        /// The prompt text.
        content: String,
    },
    /// What the model answered earlier, including the tool calls it made.
    Assistant {
        /// The answer text, if any.
        content: Option<String>,
        /// The tool calls the model made in that answer.
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call, answered back to the model.
    Tool {
        /// The id of the call this answers.
        tool_call_id: String,
        /// The result (or error) as text.
        content: String,
    },
}

/// A complete tool call the model asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCall {
    /// The call id (generated when the server sent none).
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments exactly as the model wrote them (JSON text, possibly invalid).
    pub arguments: String,
}

/// A tool offered to the model.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSpec {
    /// The tool's name.
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON Schema of the tool's arguments.
    pub parameters: serde_json::Value,
}

/// One request to the model.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ChatRequest {
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// The tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Upper bound on generated tokens.
    pub max_tokens: Option<u32>,
}

/// Why the model stopped generating.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FinishReason {
    /// A natural end of the answer.
    Stop,
    /// The `max_tokens` limit (or the context window) cut the answer.
    Length,
    /// The model stopped to have its tool calls run.
    ToolCalls,
    /// The server's content filter stopped it.
    ContentFilter,
    /// Anything else the server said.
    Other(String),
}

/// Token counts reported by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
}

/// What the model stream yields, in order.
///
/// Text and thoughts arrive as the server streams them; each [`ModelEvent::ToolCall`] is a
/// complete, assembled call; the stream ends with exactly one [`ModelEvent::Finished`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ModelEvent {
    /// A piece of the answer.
    Text(String),
    /// A piece of the model's reasoning.
    Thought(String),
    /// A complete tool call.
    ToolCall(ToolCall),
    /// Token usage, when the server reports it.
    Usage(Usage),
    /// The end of the answer.
    Finished(FinishReason),
}

/// The stream of events of one model request. Dropping it aborts the request.
pub type ModelStream = Pin<Box<dyn Stream<Item = Result<ModelEvent, LlmError>> + Send>>;

/// A chat model: a request in, a stream of events out.
///
/// Object safe, so an agent can hold any back end as `Arc<dyn ChatModel>`.
pub trait ChatModel: Send + Sync {
    /// Starts one request. Dropping the returned future or stream cancels it.
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>>;

    /// A short description for logs and error messages, e.g. `qwen3 at http://localhost:1234/v1`.
    fn describe(&self) -> String;

    /// The model's context window in tokens, when the back end can tell (asked once, then
    /// remembered). The default knows nothing.
    fn context_size(&self) -> BoxFuture<'_, Option<u32>> {
        Box::pin(async { None })
    }

    /// The name of the model in use, when known (for the editor's model picker).
    fn model_name(&self) -> BoxFuture<'_, Option<String>> {
        Box::pin(async { None })
    }

    /// The models this back end can switch to (for the editor's model picker); empty when it
    /// cannot switch.
    fn available_models(&self) -> BoxFuture<'_, Result<Vec<String>, LlmError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// The same back end serving `model` instead, if it can switch.
    fn switch_to(&self, _model: &str) -> Option<std::sync::Arc<dyn ChatModel>> {
        None
    }

    /// Checks that the configured model exists, when the back end can tell
    /// ([`LlmError::UnknownModel`] lists what is available). Other failures (a server that is
    /// down) are not errors here: they surface on the first request.
    fn validate(&self) -> BoxFuture<'_, Result<(), LlmError>> {
        Box::pin(async { Ok(()) })
    }
}

/// What can go wrong talking to a model server. Every message names the server and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The server could not be reached at all.
    #[error(
        "cannot reach the model server at {url}{}: {reason} — start the server (LM Studio, llama-server, ollama serve, vllm serve, mlx_lm.server) or pass --model URL",
        tries(*.attempts)
    )]
    Unreachable {
        /// The base URL tried.
        url: String,
        /// Why (connection refused, DNS, TLS…).
        reason: String,
        /// How many times the request was tried.
        attempts: u32,
    },
    /// The server answered with an HTTP error status.
    #[error(
        "the model server at {url} answered HTTP {status}{}: {message}{hint}",
        tries(*.attempts)
    )]
    Status {
        /// The base URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The server's error message, from whichever error body shape it uses.
        message: String,
        /// What to do about it (may be empty), starting with " — ".
        hint: String,
        /// How many times the request was tried.
        attempts: u32,
    },
    /// The server reported an error inside a successful stream.
    #[error("the model server at {url} reported an error while answering: {message}")]
    InStream {
        /// The base URL.
        url: String,
        /// The server's error message.
        message: String,
    },
    /// The server sent something that is not an OpenAI-compatible answer.
    #[error(
        "the model server at {url} sent a response Punie cannot understand ({detail}) — is {url} an OpenAI-compatible /v1 endpoint?"
    )]
    Malformed {
        /// The base URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// The stream stopped before the answer was complete.
    #[error(
        "the model server at {url} closed the stream before the answer was complete{} — check the server's log",
        tries(*.attempts)
    )]
    StreamCut {
        /// The base URL.
        url: String,
        /// How many times the request was tried.
        attempts: u32,
    },
    /// The server did not answer in time.
    #[error(
        "the model server at {url} did not answer within {seconds} s ({phase}) — is it overloaded or stuck?"
    )]
    Timeout {
        /// The base URL.
        url: String,
        /// How long Punie waited.
        seconds: u64,
        /// Which wait ran out (connect, first byte, between chunks).
        phase: String,
    },
    /// No model was named and the server lists none.
    #[error(
        "the model server at {url} has no model loaded — load one (e.g. in LM Studio) or pass --model NAME"
    )]
    NoModel {
        /// The base URL.
        url: String,
    },
    /// The model named in the spec is not one the server has.
    #[error(
        "the model server at {url} has no model {model:?}; it lists: {} — pass one of them with --model",
        available.join(", ")
    )]
    UnknownModel {
        /// The base URL.
        url: String,
        /// The model asked for.
        model: String,
        /// The models the server lists.
        available: Vec<String>,
    },
    /// A model back end that is not an HTTP server (a scripted model, an embedder's own) failed.
    #[error("the model failed: {message}")]
    Backend {
        /// What went wrong.
        message: String,
    },
    /// The model spec given on the command line or in `PUNIE_MODEL` is not valid.
    #[error("invalid model spec {spec:?}: {reason}")]
    BadSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// " (after N attempts)" when a request was tried more than once.
fn tries(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

impl LlmError {
    /// Whether the server refused or failed the request because the conversation does not fit
    /// the model's context window (so compacting the history and retrying may help).
    ///
    /// Recognises llama.cpp (`exceed_context_size_error`: "exceeds the available context
    /// size"), vLLM ("maximum context length is … tokens", "longer than the maximum model
    /// length"), LM Studio ("context length of only … tokens"), Ollama, mlx_lm.server and
    /// OpenAI (`context_length_exceeded`).
    pub fn is_context_overflow(&self) -> bool {
        match self {
            LlmError::Status { message, .. } | LlmError::InStream { message, .. } => {
                openai::is_context_overflow_message(message)
            }
            _ => false,
        }
    }

    /// Whether the server or model refused the request because it does not take tools at all
    /// (Ollama models without a tool template, llama-server without `--jinja`, vLLM without
    /// `--enable-auto-tool-choice`). [`OpenAiModel`] handles these itself by describing the tools
    /// in the prompt from then on; another back end's caller may do the same.
    pub fn is_tools_unsupported(&self) -> bool {
        match self {
            LlmError::Status { message, .. } | LlmError::InStream { message, .. } => {
                openai::is_tools_unsupported_message(message)
            }
            _ => false,
        }
    }
}

/// A shared model is a model: lets a caller keep a handle (e.g. to a test's scripted model)
/// while the agent uses it.
impl<T: ChatModel + ?Sized> ChatModel for std::sync::Arc<T> {
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        (**self).stream(request)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }

    fn context_size(&self) -> BoxFuture<'_, Option<u32>> {
        (**self).context_size()
    }

    fn model_name(&self) -> BoxFuture<'_, Option<String>> {
        (**self).model_name()
    }

    fn available_models(&self) -> BoxFuture<'_, Result<Vec<String>, LlmError>> {
        (**self).available_models()
    }

    fn switch_to(&self, model: &str) -> Option<std::sync::Arc<dyn ChatModel>> {
        (**self).switch_to(model)
    }

    fn validate(&self) -> BoxFuture<'_, Result<(), LlmError>> {
        (**self).validate()
    }
}
