//! The OpenAI-compatible client: `POST {base}/chat/completions` with `stream: true`, read back as
//! Server-Sent Events and turned into [`ModelEvent`]s.
//!
//! Written for what local servers really do rather than for the OpenAI spec: slow prompt
//! processing (a long wait for the first byte), errors as JSON bodies of several shapes, errors
//! inside a 200 stream, a JSON body instead of a stream, streams that end without `[DONE]`.
//! Nothing is spawned: the returned stream owns the HTTP response, so dropping it closes the
//! connection and the server stops generating.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;
use tokio::sync::OnceCell;
use tokio::time::{Instant, timeout, timeout_at};
use tracing::{debug, warn};

use super::spec::ModelSpec;
use super::stream::{StreamReader, excerpt, whole_answer_events};
use super::wire;
use super::{ChatModel, ChatRequest, LlmError, ModelEvent, ModelStream};

/// How long the client waits, at each stage of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing the TCP (and TLS) connection. Default 10 s.
    pub connect: Duration,
    /// From sending the request to the first byte of the answer. Local servers process the whole
    /// prompt first, which takes minutes for a long conversation on a laptop. Default 600 s.
    pub first_byte: Duration,
    /// Between two reads of a streaming answer. Default 120 s.
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

/// The most a non-streaming answer (an error, a model list, a whole completion) may weigh.
const MAX_WHOLE_BODY: usize = 16 * 1024 * 1024;

/// How long the extra look-ups made to explain an error (the model list) may take.
const HINT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A model behind an OpenAI-compatible `/v1` endpoint: LM Studio, llama.cpp's `llama-server`,
/// Ollama, vLLM, mlx_lm.server, or a remote service.
#[derive(Debug)]
pub struct OpenAiModel {
    spec: ModelSpec,
    api_key: Option<String>,
    timeouts: Timeouts,
    client: reqwest::Client,
    /// The model name to send, resolved from the server's list when the spec names none.
    model: OnceCell<String>,
}

impl OpenAiModel {
    /// A client for `spec`, sending `api_key` as a bearer token when given.
    pub fn new(spec: ModelSpec, api_key: Option<String>) -> Self {
        let timeouts = Timeouts::default();
        let client = build_client(&spec, timeouts);
        let model = match &spec.model {
            Some(name) => OnceCell::new_with(Some(name.clone())),
            None => OnceCell::new(),
        };
        Self {
            spec,
            api_key: api_key.filter(|key| !key.trim().is_empty()),
            timeouts,
            client,
            model,
        }
    }

    /// The same client with other timeouts.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self.client = build_client(&self.spec, timeouts);
        self
    }

    /// The server and model this client talks to, as configured.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// The ids of the models the server lists (`GET {base}/models`), in the server's order.
    pub async fn list_models(&self) -> Result<Vec<String>, LlmError> {
        let url = format!("{}/models", self.spec.base_url);
        let mut request = self.client.get(&url);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = match timeout(self.timeouts.first_byte, self.send(request)).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(self.timeout(self.timeouts.first_byte, "listing the models"));
            }
        };
        let status = response.status();
        let body = self.read_body(response).await?;
        if !status.is_success() {
            return Err(self.status_error(status, &body, String::new()));
        }
        let value: Value = serde_json::from_slice(&body)
            .map_err(|_| self.malformed(&body, "a model list that is not JSON"))?;
        if let Some(message) = wire::error_in_value(&value) {
            return Err(self.in_stream(message));
        }
        wire::model_ids(&value).ok_or_else(|| self.malformed(&body, "a model list without `data`"))
    }

    /// The model name requests are sent with: the spec's, or the first one the server lists
    /// (asked once, then remembered).
    pub async fn model_name(&self) -> Result<String, LlmError> {
        self.model
            .get_or_try_init(|| async {
                let models = self.list_models().await?;
                let first = models.into_iter().next().ok_or_else(|| LlmError::NoModel {
                    url: self.spec.base_url.clone(),
                })?;
                debug!(model = %first, url = %self.spec.base_url, "using the server's first model");
                Ok(first)
            })
            .await
            .cloned()
    }

    async fn open(&self, request: ChatRequest) -> Result<ModelStream, LlmError> {
        let model = self.model_name().await?;
        let body = wire::request_body(&model, &request);
        debug!(
            url = %self.spec.base_url,
            model = %model,
            messages = request.messages.len(),
            tools = request.tools.len(),
            "chat completion request"
        );
        let mut http = self
            .client
            .post(format!("{}/chat/completions", self.spec.base_url))
            .header(ACCEPT, "text/event-stream, application/json")
            .json(&body);
        if let Some(key) = &self.api_key {
            http = http.bearer_auth(key);
        }
        let deadline = Instant::now() + self.timeouts.first_byte;
        let response = match timeout_at(deadline, self.send(http)).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(self.timeout(self.timeouts.first_byte, "waiting for the first byte"));
            }
        };
        let status = response.status();
        if !status.is_success() {
            let body = self.read_body(response).await?;
            let hint = self.hint(status, &body, &model).await;
            return Err(self.status_error(status, &body, hint));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.contains("html") {
            // A web UI or a captive portal, not an API.
            let body = self.read_body(response).await?;
            return Err(self.malformed(&body, "an HTML page"));
        }
        if content_type.contains("json") {
            // A server that failed before the first token (llama.cpp), ignored `stream: true`, or
            // answered an unknown path with 200 (LM Studio).
            let body = self.read_body(response).await?;
            let events = self.whole_answer(&body)?;
            return Ok(stream::iter(events.into_iter().map(Ok)).boxed());
        }
        Ok(StreamReader::new(
            self.spec.base_url.clone(),
            response.bytes_stream().boxed(),
            deadline,
            self.timeouts,
        )
        .into_stream())
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, LlmError> {
        request.send().await.map_err(|error| {
            if error.is_timeout() {
                self.timeout(self.timeouts.connect, "connecting")
            } else if error.is_builder() {
                LlmError::BadSpec {
                    spec: self.spec.to_string(),
                    reason: deepest_cause(&error),
                }
            } else {
                LlmError::Unreachable {
                    url: self.spec.base_url.clone(),
                    reason: deepest_cause(&error),
                }
            }
        })
    }

    /// A whole (non-streaming) body, waiting at most the idle timeout between reads. A body
    /// cut by the server is returned as far as it came: it is read only to be shown or parsed.
    async fn read_body(&self, response: reqwest::Response) -> Result<Vec<u8>, LlmError> {
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        loop {
            match timeout(self.timeouts.idle, chunks.next()).await {
                Err(_) => return Err(self.timeout(self.timeouts.idle, "reading the answer")),
                Ok(None) => return Ok(body),
                Ok(Some(Ok(chunk))) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > MAX_WHOLE_BODY {
                        return Err(self.malformed(&body, "an answer of more than 16 MiB"));
                    }
                }
                Ok(Some(Err(error))) => {
                    debug!(error = %deepest_cause(&error), "error body cut");
                    return Ok(body);
                }
            }
        }
    }

    /// The events of a 200 answer that came as one JSON document instead of a stream.
    fn whole_answer(&self, body: &[u8]) -> Result<Vec<ModelEvent>, LlmError> {
        let value: Value = serde_json::from_slice(body).map_err(|_| {
            self.malformed(body, "a JSON content type with a body that is not JSON")
        })?;
        if let Some(message) = wire::error_in_value(&value) {
            return Err(self.in_stream(message));
        }
        if value.get("choices").is_none() {
            return Err(self.malformed(body, "JSON without `choices`"));
        }
        whole_answer_events(value).map_err(|detail| self.malformed(body, &detail))
    }

    async fn hint(&self, status: StatusCode, body: &[u8], model: &str) -> String {
        let message = wire::error_message(body).unwrap_or_default();
        if is_context_overflow_message(&message) {
            return " — the conversation no longer fits the model's context window; start a new \
                    session, or load the model with a larger context (llama-server -c, Ollama \
                    num_ctx, LM Studio's context length)"
                .to_owned();
        }
        let lowercase = message.to_ascii_lowercase();
        if lowercase.contains("--jinja") {
            return " — restart llama-server with --jinja so it can take tools".to_owned();
        }
        if lowercase.contains("cannot use tools with stream") {
            return " — this llama-server build cannot stream tool calls; update llama.cpp"
                .to_owned();
        }
        if is_tools_unsupported_message(&message) {
            return " — this model cannot call tools; choose one whose chat template supports \
                    tools (e.g. a Qwen3 or Llama 3.1 model)"
                .to_owned();
        }
        match status.as_u16() {
            401 | 403 => " — set PUNIE_API_KEY to the server's API key".to_owned(),
            404 => match timeout(HINT_LOOKUP_TIMEOUT, self.list_models()).await {
                Ok(Ok(models)) if models.iter().any(|listed| listed == model) => format!(
                    " — the server has {model} but no {}/chat/completions; is this an \
                     OpenAI-compatible /v1 endpoint?",
                    self.spec.base_url
                ),
                Ok(Ok(models)) if models.is_empty() => format!(
                    " — check the model name (`punie` was asked for {model}); the server lists no models"
                ),
                Ok(Ok(models)) => format!(
                    " — check the model name (`punie` was asked for {model}); the server lists: {}",
                    models.join(", ")
                ),
                _ => format!(
                    " — check the model name (`punie` was asked for {model}) and that the URL is \
                     the server's OpenAI-compatible /v1 endpoint"
                ),
            },
            429 => " — the server is rate limiting; wait a moment and try again".to_owned(),
            503 => {
                " — the server is busy or still loading the model; try again in a moment".to_owned()
            }
            500..=599 => " — check the server's log".to_owned(),
            _ => String::new(),
        }
    }

    fn status_error(&self, status: StatusCode, body: &[u8], hint: String) -> LlmError {
        let message = wire::error_message(body).unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("no error message")
                .to_owned()
        });
        warn!(url = %self.spec.base_url, status = status.as_u16(), %message, "model server error");
        LlmError::Status {
            url: self.spec.base_url.clone(),
            status: status.as_u16(),
            message,
            hint,
        }
    }

    fn in_stream(&self, message: String) -> LlmError {
        warn!(url = %self.spec.base_url, %message, "model server reported an error");
        LlmError::InStream {
            url: self.spec.base_url.clone(),
            message,
        }
    }

    fn malformed(&self, body: &[u8], what: &str) -> LlmError {
        LlmError::Malformed {
            url: self.spec.base_url.clone(),
            detail: format!("{what}: {}", excerpt(body)),
        }
    }

    fn timeout(&self, waited: Duration, phase: &str) -> LlmError {
        LlmError::Timeout {
            url: self.spec.base_url.clone(),
            seconds: waited.as_secs(),
            phase: phase.to_owned(),
        }
    }
}

impl ChatModel for OpenAiModel {
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        Box::pin(self.open(request))
    }

    fn describe(&self) -> String {
        match self.model.get() {
            Some(model) => format!("{model} at {}", self.spec.base_url),
            None => format!("the first model at {}", self.spec.base_url),
        }
    }
}

fn build_client(spec: &ModelSpec, timeouts: Timeouts) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .user_agent(concat!("punie/", env!("CARGO_PKG_VERSION")));
    if is_loopback(&spec.base_url) {
        // A corporate HTTP_PROXY must not swallow requests to a server on this machine.
        builder = builder.no_proxy();
    }
    // Building fails only when the TLS backend cannot start; the default client then reports
    // the same problem on the first request.
    builder.build().unwrap_or_default()
}

fn is_loopback(base_url: &str) -> bool {
    let after_scheme = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest);
    let authority = after_scheme.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The innermost cause of an error: "Connection refused (os error 111)" rather than
/// "error sending request for url (…)".
pub(super) fn deepest_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = error;
    while let Some(source) = deepest.source() {
        deepest = source;
    }
    deepest.to_string()
}

/// Whether a server's error message says the prompt does not fit the context window
/// (llama.cpp, vLLM, LM Studio and mlx each word it differently).
pub(crate) fn is_context_overflow_message(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "context size",
        "context length",
        "context window",
        "context_length",
        "exceed_context",
        "n_ctx",
        "maximum context",
    ]
    .iter()
    .any(|words| message.contains(words))
}

/// Whether a server's error message says the server or model does not take tools at all
/// (Ollama: "… does not support tools"; llama-server without `--jinja`; OpenRouter).
pub(crate) fn is_tools_unsupported_message(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "does not support tools",
        "support tool use",
        "tools param requires --jinja",
        "cannot use tools with stream",
    ]
    .iter()
    .any(|words| message.contains(words))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for url in [
            "http://localhost:1234/v1",
            "http://127.0.0.1:8080/v1",
            "http://[::1]:8000/v1",
            "http://LOCALHOST/v1",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "http://gpu-box:8000/v1",
            "https://openrouter.ai/api/v1",
            "http://10.0.0.2/v1",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }

    #[test]
    fn context_overflow_wordings() {
        for message in [
            "request (5030 tokens) exceeds the available context size (4096 tokens), try increasing it",
            "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens",
            "Trying to keep the first 5000 tokens when context the overflows. However, the model is loaded with context length of only 4096 tokens",
        ] {
            assert!(is_context_overflow_message(message), "{message}");
        }
        assert!(!is_context_overflow_message("'messages' is required"));
    }

    #[test]
    fn tools_unsupported_wordings() {
        for message in [
            "registry.ollama.ai/library/gemma3:270m does not support tools",
            "tools param requires --jinja flag",
            "No endpoints found that support tool use",
        ] {
            assert!(is_tools_unsupported_message(message), "{message}");
        }
        assert!(!is_tools_unsupported_message("Connection refused"));
    }
}
