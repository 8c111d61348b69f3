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
//!
//! The files form a one-way stack: each uses only the ones above it in this list, so a request
//! goes down `openai` → `retry` → `endpoint` → `stream` and never back up.
//!
//! | file | what |
//! |---|---|
//! | `error` | [`LlmError`], and what a server's error message or a transport error means |
//! | this file | the conversation, [`ChatModel`], [`Timeouts`], [`Limits`], [`ModelHealth`] |
//! | `sse`, `assemble`, `spec` | server-sent events, tool-call assembly, model specs |
//! | `wire` | the JSON sent and received, read leniently |
//! | `stream` | one answer's body turned into events |
//! | `endpoint` | one server over HTTP: requests, error statuses, which failures pass |
//! | `markup` | `<think>` and tool calls written in the answer's text |
//! | `retry` | tries again what failed for a passing reason |
//! | `models` | what the server tells of its models: the list, the context window |
//! | `tokens` | a prompt's tokens as the server counts them (llama.cpp's `/apply-template` + `/tokenize`) |
//! | `prompted` | tools described in the prompt, for servers that refuse `tools` |
//! | `probe` | [`ServerProbe`](probe::ServerProbe): a raw look at a server, for `punie doctor` |
//! | `openai` | [`OpenAiModel`], which puts them together |

pub mod assemble;
mod endpoint;
mod error;
#[cfg(test)]
mod fixture_tests;
mod markup;
mod models;
mod openai;
pub mod probe;
mod prompted;
mod retry;
mod spec;
pub mod sse;
mod stream;
mod tokens;
mod wire;
#[cfg(test)]
mod wire_image_tests;

pub use assemble::{ToolCallAssembler, ToolCallDelta};
pub use error::LlmError;
pub use markup::{MarkupFilter, filter_markup};
pub use openai::OpenAiModel;
pub use retry::{DEFAULT_SERVER_WAIT, RetryPolicy};
pub use spec::{DEFAULT_BASE_URL, ModelSpec};

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use futures::future::BoxFuture;

/// How long the client waits, at each stage of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the TCP (and TLS) connection. Default 10 s.
    pub connect: Duration,
    /// From sending the request to the first byte of the answer. Local servers process the whole
    /// prompt first, which takes minutes for a long conversation on a laptop. Default 600 s.
    pub first_byte: Duration,
    /// Between two meaningful events of a streaming answer (a token, a thought, a piece of a
    /// tool call, the end), once the first one came; keep-alive comments and empty chunks do
    /// not count, so a server sending only those cannot hold a turn. Also between two reads of
    /// a non-streaming body. Default 120 s.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(600),
            idle: Duration::from_secs(120),
        }
    }
}

/// How much a model server may send, so that one that misbehaves (an endless line, a
/// gigantic delta) fails the request with a clear error instead of exhausting memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// One line or one event of a streaming answer. Default 1 MiB: a real chunk is a few
    /// hundred bytes, a whole tool call a few KiB.
    pub max_event_bytes: usize,
    /// The text, thoughts and tool-call arguments of one answer together. Default 8 MiB: a
    /// 32,000-token answer is about 128 KiB.
    pub max_answer_bytes: usize,
    /// A whole non-streaming body: an error, a model list, an answer sent as one JSON
    /// document. Default 16 MiB.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_event_bytes: sse::DEFAULT_MAX_EVENT_BYTES,
            max_answer_bytes: 8 * 1024 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What a request reports while it waits for a model server that is not answering yet
/// (refusing connections, or answering 503 while it starts or loads the model), so that the
/// person can be told: loading a model takes tens of seconds. See
/// [`RetryPolicy::server_wait`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerWait {
    /// The server has not answered for `waited`; the request keeps trying for up to `limit`
    /// in all.
    Waiting {
        /// The server's base URL.
        url: String,
        /// Why it is not answering: "connection refused", "HTTP 503: Loading model".
        reason: String,
        /// How long the request has been waiting.
        waited: Duration,
        /// The most it waits in all ([`RetryPolicy::server_wait`]).
        limit: Duration,
    },
    /// The server answered after a [`ServerWait::Waiting`] was reported.
    Answered {
        /// The server's base URL.
        url: String,
        /// How long the request waited for it.
        waited: Duration,
    },
}

impl std::fmt::Display for ServerWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerWait::Waiting {
                url, reason, limit, ..
            } => write!(
                f,
                "the model server at {url} is not answering ({reason}) — waiting up to {} s; \
                 it may be starting or loading the model",
                limit.as_secs()
            ),
            ServerWait::Answered { url, waited } => write!(
                f,
                "the model server at {url} answered after {:.0} s",
                waited.as_secs_f64()
            ),
        }
    }
}

/// Receives the [`ServerWait`] reports of one request, as they happen.
pub type ServerWaitSink = Arc<dyn Fn(ServerWait) + Send + Sync>;

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
    /// Images shown to the model: right after the [`User`](Self::User) message of the prompt
    /// they came with, or after the [`Tool`](Self::Tool) results of the tool calls that
    /// returned them. Sent as `image_url` parts of a user message (joined to the prompt's),
    /// since most servers take only text in tool messages.
    Images {
        /// The images, in order.
        images: Vec<crate::image::Image>,
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
    /// Tokens in the prompt, the cached ones included.
    pub prompt_tokens: u64,
    /// Tokens generated.
    pub completion_tokens: u64,
    /// Prompt tokens the server took from its prompt cache instead of reading them again, when
    /// it says: `usage.prompt_tokens_details.cached_tokens` (OpenAI, vLLM, llama.cpp), else
    /// llama.cpp's `timings.cache_n`.
    pub cached_tokens: Option<u64>,
    /// What llama.cpp measured itself (`timings` on its last event), when it sent them.
    pub timings: Option<ServerTimings>,
}

/// llama.cpp's own measure of one request (the `timings` object of its last event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ServerTimings {
    /// Prompt tokens the server read (`prompt_n`): the prompt less what came from the cache.
    pub prompt_read: u64,
    /// Prompt tokens taken from the cache (`cache_n`).
    pub prompt_cached: u64,
    /// The time spent reading those `prompt_read` tokens (`prompt_ms`).
    pub prompt_time: Duration,
    /// Tokens generated (`predicted_n`).
    pub generated: u64,
    /// The time spent generating them (`predicted_ms`).
    pub generation_time: Duration,
}

impl ServerTimings {
    /// Prompt tokens read per second (llama.cpp's `prompt_per_second`); `None` when nothing
    /// was read.
    pub fn prompt_per_second(&self) -> Option<f64> {
        per_second(self.prompt_read, self.prompt_time)
    }

    /// Tokens generated per second (llama.cpp's `predicted_per_second`).
    pub fn generation_per_second(&self) -> Option<f64> {
        per_second(self.generated, self.generation_time)
    }
}

fn per_second(tokens: u64, time: Duration) -> Option<f64> {
    (tokens > 0 && !time.is_zero()).then(|| tokens as f64 / time.as_secs_f64())
}

/// How far a server has read a long prompt (llama.cpp streams this when asked with
/// `return_progress`, before the first token).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PromptProgress {
    /// Tokens in the prompt.
    pub total: u64,
    /// Of those, taken from the cache.
    pub cached: u64,
    /// Of those, done so far (the cached ones included).
    pub processed: u64,
    /// Since the server began reading.
    pub elapsed: Duration,
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
    /// How far the server has read the prompt; only before the answer starts, and only from
    /// servers that tell (llama.cpp).
    PromptProgress(PromptProgress),
    /// The next [`ModelEvent::ToolCall`] was read from the answer's text, written in this shape
    /// (`bare_json`, `fenced_json`, `tool_call` tags…), not sent as a structured call.
    RecoveredCall(&'static str),
    /// The end of the answer.
    Finished(FinishReason),
}

/// The stream of events of one model request. Dropping it aborts the request.
pub type ModelStream = Pin<Box<dyn Stream<Item = Result<ModelEvent, LlmError>> + Send>>;

/// What a model back end says of its health, for `GET /health` of `punie serve`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelHealth {
    /// The server's base URL, for a model behind one.
    pub base_url: Option<String>,
    /// The model's name, when known.
    pub name: Option<String>,
    /// Whether the model answers.
    pub up: bool,
    /// Why it does not, when it does not.
    pub error: Option<String>,
}

impl ModelHealth {
    /// A model that answers, under `name` when known.
    pub fn up(name: Option<String>) -> Self {
        Self {
            base_url: None,
            name,
            up: true,
            error: None,
        }
    }

    /// A model that does not answer, and why.
    pub fn down(name: Option<String>, error: impl Into<String>) -> Self {
        Self {
            base_url: None,
            name,
            up: false,
            error: Some(error.into()),
        }
    }

    /// The same report, for a model behind the server at `base_url`.
    pub fn at(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }
}

/// A chat model: a request in, a stream of events out.
///
/// Object safe, so an agent can hold any back end as `Arc<dyn ChatModel>`.
pub trait ChatModel: Send + Sync {
    /// Starts one request. Dropping the returned future or stream cancels it.
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>>;

    /// [`stream`](Self::stream), telling `waits` while the request waits for a server that is
    /// not answering yet (starting, restarting, loading the model). The default tells nothing.
    fn stream_with_waits(
        &self,
        request: ChatRequest,
        waits: ServerWaitSink,
    ) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        let _ = waits;
        self.stream(request)
    }

    /// A short description for logs and error messages, e.g. `qwen3 at http://localhost:1234/v1`.
    fn describe(&self) -> String;

    /// The model's context window in tokens, when the back end can tell (asked once, then
    /// remembered). The default knows nothing.
    fn context_size(&self) -> BoxFuture<'_, Option<u32>> {
        Box::pin(async { None })
    }

    /// The tokens `request`'s prompt takes as the server counts them (its chat template
    /// applied, tools included), when the back end can tell. The default cannot; the turn loop
    /// then estimates.
    fn count_prompt_tokens<'a>(&'a self, _request: &'a ChatRequest) -> BoxFuture<'a, Option<u32>> {
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
    fn switch_to(&self, _model: &str) -> Option<Arc<dyn ChatModel>> {
        None
    }

    /// Checks that the configured model exists, when the back end can tell
    /// ([`LlmError::UnknownModel`] lists what is available). Other failures (a server that is
    /// down) are not errors here: they surface on the first request.
    fn validate(&self) -> BoxFuture<'_, Result<(), LlmError>> {
        Box::pin(async { Ok(()) })
    }

    /// Whether the model can see images: `Some(true)` when its server says so (or the
    /// configuration does), `Some(false)` when it says it cannot, `None` when it does not tell.
    /// Asked once, then remembered. The default does not tell.
    fn sees(&self) -> BoxFuture<'_, Option<bool>> {
        Box::pin(async { None })
    }

    /// Whether the model answers, asked now rather than remembered, within `within`.
    ///
    /// The default reports a model that is always there, under its
    /// [`model_name`](Self::model_name) (if that comes within `within`).
    fn health(&self, within: Duration) -> BoxFuture<'_, ModelHealth> {
        Box::pin(async move {
            let name = tokio::time::timeout(within, self.model_name()).await;
            ModelHealth::up(name.ok().flatten())
        })
    }
}

/// A shared model is a model: lets a caller keep a handle (e.g. to a test's scripted model)
/// while the agent uses it.
impl<T: ChatModel + ?Sized> ChatModel for Arc<T> {
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        (**self).stream(request)
    }

    fn stream_with_waits(
        &self,
        request: ChatRequest,
        waits: ServerWaitSink,
    ) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        (**self).stream_with_waits(request, waits)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }

    fn context_size(&self) -> BoxFuture<'_, Option<u32>> {
        (**self).context_size()
    }

    fn count_prompt_tokens<'a>(&'a self, request: &'a ChatRequest) -> BoxFuture<'a, Option<u32>> {
        (**self).count_prompt_tokens(request)
    }

    fn model_name(&self) -> BoxFuture<'_, Option<String>> {
        (**self).model_name()
    }

    fn available_models(&self) -> BoxFuture<'_, Result<Vec<String>, LlmError>> {
        (**self).available_models()
    }

    fn switch_to(&self, model: &str) -> Option<Arc<dyn ChatModel>> {
        (**self).switch_to(model)
    }

    fn validate(&self) -> BoxFuture<'_, Result<(), LlmError>> {
        (**self).validate()
    }

    fn health(&self, within: Duration) -> BoxFuture<'_, ModelHealth> {
        (**self).health(within)
    }

    fn sees(&self) -> BoxFuture<'_, Option<bool>> {
        (**self).sees()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model that knows its name, if `Some`, and nothing else.
    struct Plain(Option<&'static str>);

    impl ChatModel for Plain {
        fn stream(&self, _: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
            Box::pin(async {
                Err(LlmError::Backend {
                    message: "not asked here".into(),
                })
            })
        }

        fn describe(&self) -> String {
            "plain".into()
        }

        fn model_name(&self) -> BoxFuture<'_, Option<String>> {
            Box::pin(async { self.0.map(str::to_owned) })
        }
    }

    /// A model with a health check of its own.
    struct Checked(ModelHealth);

    impl ChatModel for Checked {
        fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
            Plain(None).stream(request)
        }

        fn describe(&self) -> String {
            "checked".into()
        }

        fn health(&self, _within: Duration) -> BoxFuture<'_, ModelHealth> {
            Box::pin(async { self.0.clone() })
        }
    }

    #[tokio::test]
    async fn health_by_default_and_through_a_shared_handle() {
        let second = Duration::from_secs(1);
        assert_eq!(Plain(None).health(second).await, ModelHealth::up(None));
        assert_eq!(
            Plain(Some("local")).health(second).await,
            ModelHealth::up(Some("local".into()))
        );
        let down = ModelHealth::down(Some("local".into()), "no GPU").at("http://gpu:8000/v1");
        let shared: Arc<dyn ChatModel> = Arc::new(Arc::new(Checked(down.clone())));
        assert_eq!(shared.health(second).await, down);
    }
}
