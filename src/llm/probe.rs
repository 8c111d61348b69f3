//! A raw look at a server, for `punie doctor`: what it lists, its own JSON routes, and what one
//! chat request really brings back — structured tool calls or text, `reasoning_content` or
//! tags in the text, the first-event wait and llama.cpp's `timings` — before any of Punie's
//! reading (retries, the markup filter, text tool calls) smooths it over.
//!
//! It reuses what the client does: the same endpoint (bounded bodies, same-origin
//! redirects, the API key), the same request body, the same model list
//! and context-window questions. It never retries: the doctor
//! reports what it saw, and every request is bounded by the [`Timeouts`] it is built with.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::time::timeout;

use super::endpoint::Endpoint;
use super::models::{ModelList, context_size};
use super::retry::RetryPolicy;
use super::spec::ModelSpec;
use super::{ChatRequest, FinishReason, LlmError, ModelEvent, Timeouts, ToolCall, Usage, wire};

/// One server, asked without retries.
#[derive(Clone, Debug)]
pub struct ServerProbe {
    endpoint: Endpoint,
    /// The same server with the look-up waits.
    lookups: Endpoint,
    /// The most any one look-up (not a chat request) may take.
    lookup: Duration,
}

/// What `GET /v1/models` answered.
#[derive(Clone, Debug)]
pub struct ServerModels {
    list: ModelList,
}

impl ServerModels {
    /// The model ids, in the server's order.
    pub fn ids(&self) -> &[String] {
        &self.list.ids
    }

    /// The `owned_by` of the model `id` (or of the only model), lowercased: `llamacpp`,
    /// `library` (Ollama), `organization_owner` (LM Studio), `vllm`…; empty when not said.
    pub fn owner(&self, id: &str) -> String {
        self.entry(id)
            .and_then(|entry| entry.get("owned_by"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase()
    }

    /// The listed entry of `id`, or the only one.
    pub fn entry(&self, id: &str) -> Option<&Value> {
        let entries = self.list.value.get("data")?.as_array()?;
        entries
            .iter()
            .find(|entry| entry.get("id").and_then(Value::as_str) == Some(id))
            .or_else(|| (entries.len() == 1).then(|| &entries[0]))
    }

    /// The listed id that `wanted` names, as the client matches it (case, Ollama's `:latest`).
    pub fn find(&self, wanted: &str) -> Option<&str> {
        self.list.find(wanted)
    }

    /// Whether the server answers whatever model name it is sent (one llama-server model,
    /// mlx_lm.server), so that a name it does not list is no error.
    pub fn takes_any_name(&self, wanted: &str) -> bool {
        self.list.takes_any_name(wanted)
    }
}

/// What one streamed chat request brought back, unfiltered.
#[derive(Clone, Debug, Default)]
pub struct RawAnswer {
    /// The answer's text exactly as sent (tags and call-shaped JSON included).
    pub text: String,
    /// What came as `reasoning_content` (or `reasoning`).
    pub reasoning: String,
    /// Structured `tool_calls`, assembled.
    pub tool_calls: Vec<ToolCall>,
    /// The usage the server reported.
    pub usage: Option<Usage>,
    /// Why the answer ended, if it said.
    pub finish: Option<FinishReason>,
    /// From sending the request to its first event.
    pub first_event: Option<Duration>,
    /// From sending the request to its end.
    pub elapsed: Duration,
}

/// What a one-token request of a given prompt showed about prompt processing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PromptTiming {
    /// From sending the request to the whole (one-token) answer: about the first-token wait.
    pub elapsed: Duration,
    /// `usage.prompt_tokens`: the prompt as the server counts it.
    pub prompt_tokens: Option<u64>,
    /// llama.cpp `timings.prompt_n`: prompt tokens it processed (not taken from its cache).
    pub processed: Option<u64>,
    /// llama.cpp `timings.cache_n`: prompt tokens it took from its cache.
    pub cached: Option<u64>,
    /// llama.cpp `timings.prompt_ms`.
    pub prompt_ms: Option<f64>,
    /// llama.cpp `timings.prompt_per_second`.
    pub per_second: Option<f64>,
}

impl ServerProbe {
    /// A probe of the server `spec` names. Chat requests wait as `timeouts` say; every other
    /// look-up at most `lookup`.
    pub fn new(
        spec: ModelSpec,
        api_key: Option<String>,
        timeouts: Timeouts,
        lookup: Duration,
    ) -> Self {
        let endpoint = Endpoint::new(spec, api_key, timeouts);
        let lookups = endpoint.clone().with_timeouts(Timeouts {
            connect: lookup.min(timeouts.connect),
            first_byte: lookup,
            idle: lookup,
        });
        Self {
            endpoint,
            lookups,
            lookup,
        }
    }

    /// The OpenAI-compatible base URL.
    pub fn base_url(&self) -> &str {
        self.endpoint.url()
    }

    /// The server's root (the base URL without `/v1`), where servers keep their own routes.
    pub fn root(&self) -> &str {
        self.endpoint.root()
    }

    /// `GET {root}{path}` (e.g. `/health`, `/props`, `/api/version`), answered with JSON.
    pub async fn get(&self, path: &str) -> Result<Value, LlmError> {
        let url = format!("{}{path}", self.endpoint.root());
        self.lookups
            .get_json(&url, self.lookup)
            .await
            .map_err(|failure| failure.error)
    }

    /// `GET /v1/models`, tried once.
    pub async fn models(&self) -> Result<ServerModels, LlmError> {
        let list = ModelList::fetch(&self.lookups, &RetryPolicy::never(), None).await?;
        Ok(ServerModels { list })
    }

    /// The context window of `model`, asked as the client asks it; `None` when the server does not tell.
    pub async fn context_size(&self, models: Option<&ServerModels>, model: &str) -> Option<u32> {
        context_size(&self.lookups, models.map(|models| &models.list), model)
            .await
            .ok()
            .flatten()
    }

    /// Sends `request` to `model` as the turn sends it (streaming, same body) and reads the
    /// answer to its end without Punie's filters, within `within` in all.
    pub async fn answer(
        &self,
        model: &str,
        request: &ChatRequest,
        within: Duration,
    ) -> Result<RawAnswer, LlmError> {
        let body = wire::request_body(model, request);
        let started = Instant::now();
        let mut answer = RawAnswer::default();
        let read = async {
            let mut stream = self
                .endpoint
                .open_chat(&body)
                .await
                .map_err(|failure| failure.error)?;
            while let Some(event) = stream.next().await {
                answer.first_event.get_or_insert_with(|| started.elapsed());
                match event? {
                    ModelEvent::Text(text) => answer.text.push_str(&text),
                    ModelEvent::Thought(text) => answer.reasoning.push_str(&text),
                    ModelEvent::ToolCall(call) => answer.tool_calls.push(call),
                    ModelEvent::Usage(usage) => answer.usage = Some(usage),
                    // The probe asks for no progress; the shape of a text call is named by
                    // the doctor from the text itself.
                    ModelEvent::PromptProgress(_) | ModelEvent::RecoveredCall(_) => {}
                    ModelEvent::Finished(reason) => {
                        answer.finish = Some(reason);
                        break;
                    }
                }
            }
            Ok::<_, LlmError>(())
        };
        match timeout(within, read).await {
            Ok(result) => result?,
            Err(_) => return Err(self.too_long(within, "reading the answer")),
        }
        answer.elapsed = started.elapsed();
        Ok(answer)
    }

    /// Sends `request` to `model` for one token, not streaming, and reads how the server
    /// processed the prompt (usage, llama.cpp's `timings`), within `within`.
    pub async fn timed_prompt(
        &self,
        model: &str,
        request: &ChatRequest,
        within: Duration,
    ) -> Result<PromptTiming, LlmError> {
        let mut body = wire::request_body(model, request);
        if let Some(object) = body.as_object_mut() {
            object.insert("stream".into(), json!(false));
            object.remove("stream_options");
            object.insert("max_tokens".into(), json!(1));
        }
        let url = format!("{}/chat/completions", self.endpoint.url());
        let started = Instant::now();
        let value = match timeout(within, self.endpoint.post_json(&url, &body, within)).await {
            Ok(result) => result.map_err(|failure| failure.error)?,
            Err(_) => return Err(self.too_long(within, "waiting for the first token")),
        };
        let number = |pointer: &str| value.pointer(pointer).and_then(Value::as_f64);
        let count = |pointer: &str| value.pointer(pointer).and_then(Value::as_u64);
        Ok(PromptTiming {
            elapsed: started.elapsed(),
            prompt_tokens: count("/usage/prompt_tokens"),
            processed: count("/timings/prompt_n"),
            cached: count("/timings/cache_n"),
            prompt_ms: number("/timings/prompt_ms"),
            per_second: number("/timings/prompt_per_second"),
        })
    }

    fn too_long(&self, within: Duration, phase: &str) -> LlmError {
        LlmError::Timeout {
            url: self.endpoint.url().to_owned(),
            seconds: within.as_secs(),
            phase: phase.to_owned(),
            advice: " — the server is slow or busy; pass a longer --wait".to_owned(),
        }
    }
}
