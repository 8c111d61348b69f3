//! The OpenAI-compatible model: `POST {base}/chat/completions` with `stream: true`, read back as
//! Server-Sent Events and turned into [`ModelEvent`](super::ModelEvent)s, made for the local
//! servers people really run:
//!
//! - transient failures (a server still starting, 429, 502–504, a stream cut before anything
//!   came) are retried with backoff ([`RetryPolicy`]);
//! - inline `<think>` and tool calls written as text are turned into events (the
//!   [markup filter](super::markup));
//! - a server that refuses the `tools` parameter (vLLM without `--enable-auto-tool-choice`,
//!   llama-server without `--jinja`, an Ollama model without a tool template) makes the model
//!   switch to text tool calling for the rest of its life (the [prompted](super::prompted)
//!   module);
//! - the model list is cached briefly, a configured model can be checked against it, and the
//!   context window is asked of the server in its own dialect;
//! - a health check asks for the model list afresh, with short timeouts of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::OnceCell;
use tokio::time::timeout;
use tracing::{debug, warn};

use super::endpoint::Endpoint;
use super::markup::LeadingThoughts;
use super::models::{LIST_TTL, ModelList, context_size, vision};
use super::prompted::{native_tools_advice, prompted_request};
use super::retry::{Attempts, FilterSetup, RetryPolicy};
use super::spec::ModelSpec;
use super::{
    ChatModel, ChatRequest, Limits, LlmError, ModelHealth, ModelStream, ServerWaitSink, Timeouts,
};
use super::{tokens, wire};

/// How long the extra look-ups made to explain an error (the model list) may take.
const HINT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The waits of a health check: short, since someone (or a process manager) is waiting for the
/// answer, and a server that takes longer than this to list its models is not healthy.
const HEALTH_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(2),
    first_byte: Duration::from_secs(3),
    idle: Duration::from_secs(3),
};

/// A model behind an OpenAI-compatible `/v1` endpoint: LM Studio, llama.cpp's `llama-server`,
/// Ollama, vLLM, mlx_lm.server, or a remote service.
#[derive(Debug)]
pub struct OpenAiModel {
    endpoint: Endpoint,
    retry: RetryPolicy,
    /// The model name to send, resolved from the server's list when the spec names none.
    model: OnceCell<String>,
    /// The last model list, and when it was fetched.
    models: Mutex<Option<(Instant, Arc<ModelList>)>>,
    /// The context window, once the server told (or told it does not tell).
    context: OnceCell<Option<u32>>,
    context_override: Option<u32>,
    /// Whether the model sees images, once the server told (or told it does not tell).
    vision: OnceCell<Option<bool>>,
    /// Whether it sees, as configured (`vision = true` in the config file), over the server.
    vision_override: Option<bool>,
    /// Tools are described in the prompt instead of sent as `tools`.
    text_tools: AtomicBool,
    /// Prompts the server counted lately.
    counts: tokens::CountCache,
    leading: Arc<LeadingThoughts>,
    /// The same server with [`HEALTH_TIMEOUTS`], built at the first health check (a client of
    /// its own, since the connect timeout belongs to the client).
    health_endpoint: OnceLock<Endpoint>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl OpenAiModel {
    /// A client for `spec`, sending `api_key` as a bearer token when given.
    pub fn new(spec: ModelSpec, api_key: Option<String>) -> Self {
        let model = match &spec.model {
            Some(name) => OnceCell::new_with(Some(name.clone())),
            None => OnceCell::new(),
        };
        Self {
            endpoint: Endpoint::new(spec, api_key, Timeouts::default()),
            retry: RetryPolicy::default(),
            model,
            models: Mutex::new(None),
            context: OnceCell::new(),
            context_override: None,
            vision: OnceCell::new(),
            vision_override: None,
            text_tools: AtomicBool::new(false),
            counts: tokens::CountCache::default(),
            leading: Arc::new(LeadingThoughts::new()),
            health_endpoint: OnceLock::new(),
        }
    }

    /// A client for another model of the same server, with the same settings and connection
    /// pool (the context size is asked anew: it differs per model).
    pub fn sibling(&self, model: &str) -> Self {
        let mut endpoint = self.endpoint.clone();
        endpoint.spec.model = Some(model.to_owned());
        Self {
            endpoint,
            retry: self.retry,
            model: OnceCell::new_with(Some(model.to_owned())),
            models: Mutex::new(lock(&self.models).clone()),
            context: OnceCell::new(),
            context_override: self.context_override,
            vision: OnceCell::new(),
            vision_override: self.vision_override,
            text_tools: AtomicBool::new(self.text_tools.load(Ordering::Relaxed)),
            counts: tokens::CountCache::default(),
            leading: Arc::new(LeadingThoughts::new()),
            health_endpoint: OnceLock::new(),
        }
    }

    /// The same client, told whether the model sees images (`vision` in the config file)
    /// instead of asking the server. Kept by [`sibling`](Self::sibling)s.
    pub fn with_vision(mut self, sees: bool) -> Self {
        self.vision_override = Some(sees);
        self
    }

    /// Whether the model sees images: as configured, else as the server tells (asked once;
    /// asked again later while the server cannot be reached).
    async fn probe_vision(&self) -> Option<bool> {
        if let Some(sees) = self.vision_override {
            return Some(sees);
        }
        let found = self
            .vision
            .get_or_try_init(|| async {
                let model = self.model_name().await.map_err(|_| ())?;
                let list = self.model_list().await.ok();
                let sees = vision(&self.endpoint, list.as_deref(), &model).await?;
                debug!(url = %self.endpoint.url(), %model, ?sees, "whether the model sees images");
                Ok::<_, ()>(sees)
            })
            .await;
        found.ok().copied().flatten()
    }

    /// The same client with other timeouts.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.endpoint = self.endpoint.with_timeouts(timeouts);
        self
    }

    /// The same client accepting at most what `limits` allow of each answer.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.endpoint = self.endpoint.with_limits(limits);
        self
    }

    /// The same client retrying transient failures as `policy` says.
    pub fn with_retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The same client, describing the tools in the prompt and reading the calls from the
    /// answer's text from the start (`true`), rather than only once the server has refused the
    /// `tools` parameter.
    pub fn with_text_tool_calls(self, text: bool) -> Self {
        self.text_tools.store(text, Ordering::Relaxed);
        self
    }

    /// The same client, reporting `tokens` as the context window instead of asking the server.
    pub fn with_context_size(mut self, tokens: u32) -> Self {
        self.context_override = Some(tokens);
        self
    }

    /// The server and model this client talks to, as configured.
    pub fn spec(&self) -> &ModelSpec {
        &self.endpoint.spec
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> Timeouts {
        self.endpoint.timeouts
    }

    /// The size limits in force.
    pub fn limits(&self) -> Limits {
        self.endpoint.limits
    }

    /// The retry policy in force.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// Whether tools are described in the prompt (configured, or since the server refused the
    /// `tools` parameter).
    pub fn uses_text_tool_calls(&self) -> bool {
        self.text_tools.load(Ordering::Relaxed)
    }

    /// The ids of the models the server lists (`GET {base}/models`), in the server's order.
    /// The list is reused for 10 s.
    pub async fn list_models(&self) -> Result<Vec<String>, LlmError> {
        Ok(self.model_list().await?.ids.clone())
    }

    /// Whether the model list already fetched (never fetched for this) says the server is
    /// llama.cpp's, which streams its progress through a long prompt when asked.
    fn known_llama_cpp(&self) -> bool {
        lock(&self.models)
            .as_ref()
            .is_some_and(|(_, list)| wire::lists_llama_cpp(&list.value))
    }

    /// The model list, asked without waiting long for a server that is not answering (nobody
    /// would be told why nothing happens).
    async fn model_list(&self) -> Result<Arc<ModelList>, LlmError> {
        self.model_list_with(&self.retry.without_server_wait(), None)
            .await
    }

    async fn model_list_with(
        &self,
        policy: &RetryPolicy,
        waits: Option<&ServerWaitSink>,
    ) -> Result<Arc<ModelList>, LlmError> {
        if let Some((fetched, list)) = lock(&self.models).as_ref()
            && fetched.elapsed() < LIST_TTL
        {
            return Ok(Arc::clone(list));
        }
        let list = Arc::new(ModelList::fetch(&self.endpoint, policy, waits).await?);
        *lock(&self.models) = Some((Instant::now(), Arc::clone(&list)));
        Ok(list)
    }

    /// The model name requests are sent with: the spec's, or the first one the server lists
    /// (asked once, then remembered).
    pub async fn model_name(&self) -> Result<String, LlmError> {
        self.resolve_model(&self.retry.without_server_wait(), None)
            .await
    }

    /// [`model_name`](Self::model_name), asking the server as `policy` says.
    async fn resolve_model(
        &self,
        policy: &RetryPolicy,
        waits: Option<&ServerWaitSink>,
    ) -> Result<String, LlmError> {
        self.model
            .get_or_try_init(|| async {
                let models = self.model_list_with(policy, waits).await?.ids.clone();
                let first = models.into_iter().next().ok_or_else(|| LlmError::NoModel {
                    url: self.endpoint.url().to_owned(),
                })?;
                debug!(model = %first, url = %self.endpoint.url(), "using the server's first model");
                Ok(first)
            })
            .await
            .cloned()
    }

    /// Checks that the server can be reached and has the configured model; returns the model
    /// name requests will use.
    ///
    /// A server that lists no models, has no model list, or answers with whatever model it has
    /// loaded whatever the name (llama-server) is taken at its word. Otherwise a name it does
    /// not list is [`LlmError::UnknownModel`], which lists what it has.
    pub async fn validate(&self) -> Result<String, LlmError> {
        let Some(wanted) = self.endpoint.spec.model.clone() else {
            return self.model_name().await;
        };
        let list = match self.model_list().await {
            Ok(list) => list,
            Err(LlmError::Status {
                status: 404 | 405 | 501,
                ..
            })
            | Err(LlmError::Malformed { .. }) => {
                debug!(url = %self.endpoint.url(), "the server has no model list to check against");
                return Ok(wanted);
            }
            Err(error) => return Err(error),
        };
        if list.ids.is_empty() || list.find(&wanted).is_some() || list.takes_any_name(&wanted) {
            Ok(wanted)
        } else {
            Err(LlmError::UnknownModel {
                url: self.endpoint.url().to_owned(),
                model: wanted,
                available: list.ids.clone(),
            })
        }
    }

    /// Lists the server's models now (never from the cache), within `within`.
    async fn check_health(&self, within: Duration) -> ModelHealth {
        let spec = &self.endpoint.spec;
        let endpoint = self
            .health_endpoint
            .get_or_init(|| self.endpoint.clone().with_timeouts(HEALTH_TIMEOUTS));
        let policy = self.retry.without_server_wait();
        let listed = timeout(within, ModelList::fetch(endpoint, &policy, None)).await;
        let health = match listed {
            Ok(Ok(list)) => {
                ModelHealth::up(spec.model.clone().or_else(|| list.ids.first().cloned()))
            }
            Ok(Err(error)) => ModelHealth::down(spec.model.clone(), error.to_string()),
            Err(_) => ModelHealth::down(
                spec.model.clone(),
                format!(
                    "{} did not answer within {} s",
                    spec.base_url,
                    within.as_secs_f32()
                ),
            ),
        };
        health.at(spec.base_url.clone())
    }

    async fn probe_context_size(&self) -> Option<u32> {
        if let Some(tokens) = self.context_override {
            return Some(tokens);
        }
        let found = self
            .context
            .get_or_try_init(|| async {
                let model = self.model_name().await.map_err(|_| ())?;
                let list = self.model_list().await.ok();
                let size = context_size(&self.endpoint, list.as_deref(), &model).await?;
                if size.is_none() {
                    debug!(url = %self.endpoint.url(), %model, "the server does not tell its context size");
                }
                Ok::<_, ()>(size)
            })
            .await;
        found.ok().copied().flatten()
    }

    async fn open(
        &self,
        request: ChatRequest,
        waits: Option<ServerWaitSink>,
    ) -> Result<ModelStream, LlmError> {
        let model = self.resolve_model(&self.retry, waits.as_ref()).await?;
        let filter = FilterSetup {
            tools: Arc::from(request.tools.clone()),
            leading: Arc::clone(&self.leading),
            model: model.clone(),
        };
        loop {
            let text_tools = !request.tools.is_empty() && self.uses_text_tool_calls();
            let mut body = if text_tools {
                wire::request_body(&model, &prompted_request(&request))
            } else {
                wire::request_body(&model, &request)
            };
            if self.known_llama_cpp() {
                wire::ask_for_progress(&mut body);
            }
            debug!(
                url = %self.endpoint.url(),
                model = %model,
                messages = request.messages.len(),
                tools = request.tools.len(),
                text_tools,
                "chat completion request"
            );
            let mut attempts = Attempts::new(
                self.endpoint.clone(),
                body,
                self.retry,
                filter.clone(),
                waits.clone(),
            );
            match attempts.open().await {
                Ok(first) => return Ok(attempts.into_stream(first)),
                Err(error) if !text_tools && !request.tools.is_empty() => {
                    let Some(advice) = native_tools_advice(&error) else {
                        return Err(self.with_hint(error, &model).await);
                    };
                    if !self.text_tools.swap(true, Ordering::Relaxed) {
                        warn!(
                            url = %self.endpoint.url(),
                            %model,
                            "the server refused the `tools` parameter ({}); describing the tools \
                             in the prompt and reading tool calls from the answers' text from now \
                             on — {advice}",
                            match &error {
                                LlmError::Status { message, .. } => message.as_str(),
                                _ => "",
                            }
                        );
                    }
                }
                Err(error) => return Err(self.with_hint(error, &model).await),
            }
        }
    }

    /// `error` with the hint that needs the model list: which models a 404 could have meant.
    async fn with_hint(&self, error: LlmError, model: &str) -> LlmError {
        let LlmError::Status {
            url,
            status: 404,
            message,
            hint,
            attempts,
        } = error
        else {
            return error;
        };
        let hint = if hint.is_empty() {
            self.not_found_hint(model).await
        } else {
            hint
        };
        LlmError::Status {
            url,
            status: 404,
            message,
            hint,
            attempts,
        }
    }

    async fn not_found_hint(&self, model: &str) -> String {
        match timeout(HINT_LOOKUP_TIMEOUT, self.list_models()).await {
            Ok(Ok(models)) if models.iter().any(|listed| listed == model) => format!(
                " — the server has {model} but no {}/chat/completions; is this an \
                 OpenAI-compatible /v1 endpoint?",
                self.endpoint.url()
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
        }
    }
}

impl ChatModel for OpenAiModel {
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        Box::pin(self.open(request, None))
    }

    fn stream_with_waits(
        &self,
        request: ChatRequest,
        waits: ServerWaitSink,
    ) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        Box::pin(self.open(request, Some(waits)))
    }

    fn describe(&self) -> String {
        match self.model.get() {
            Some(model) => format!("{model} at {}", self.endpoint.url()),
            None => format!("the first model at {}", self.endpoint.url()),
        }
    }

    fn context_size(&self) -> BoxFuture<'_, Option<u32>> {
        Box::pin(self.probe_context_size())
    }

    fn count_prompt_tokens<'a>(&'a self, request: &'a ChatRequest) -> BoxFuture<'a, Option<u32>> {
        Box::pin(async move {
            let model = OpenAiModel::model_name(self).await.ok()?;
            if !tokens::counts_tokens(&*self.model_list().await.ok()?) {
                return None;
            }
            let body = if !request.tools.is_empty() && self.uses_text_tool_calls() {
                wire::request_body(&model, &prompted_request(request))
            } else {
                wire::request_body(&model, request)
            };
            self.counts.count(&self.endpoint, &body).await
        })
    }

    fn model_name(&self) -> BoxFuture<'_, Option<String>> {
        Box::pin(async move { OpenAiModel::model_name(self).await.ok() })
    }

    fn available_models(&self) -> BoxFuture<'_, Result<Vec<String>, LlmError>> {
        Box::pin(self.list_models())
    }

    fn switch_to(&self, model: &str) -> Option<Arc<dyn ChatModel>> {
        Some(Arc::new(self.sibling(model)))
    }

    fn validate(&self) -> BoxFuture<'_, Result<(), LlmError>> {
        Box::pin(async move {
            match OpenAiModel::validate(self).await {
                Err(error @ LlmError::UnknownModel { .. }) => Err(error),
                _ => Ok(()),
            }
        })
    }

    fn health(&self, within: Duration) -> BoxFuture<'_, ModelHealth> {
        Box::pin(self.check_health(within))
    }

    fn sees(&self) -> BoxFuture<'_, Option<bool>> {
        Box::pin(self.probe_vision())
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    use super::*;

    /// A model server that lists `models` to every request, and passes on the head of each
    /// request (lowercased) once it has read it.
    async fn model_server(models: &'static str) -> (String, mpsc::UnboundedReceiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let (heads, received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buffer = [0; 1024];
                while !head.windows(4).any(|end| end == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(read) => head.extend_from_slice(&buffer[..read]),
                    }
                }
                let _ = heads.send(String::from_utf8_lossy(&head).to_lowercase());
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{models}",
                    models.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (url, received)
    }

    fn spec(base_url: &str, model: Option<&str>) -> ModelSpec {
        ModelSpec {
            base_url: base_url.to_owned(),
            model: model.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn health_lists_the_models_afresh_with_the_api_key() {
        let (url, mut heads) =
            model_server(r#"{"object":"list","data":[{"id":"first"},{"id":"second"}]}"#).await;
        // As `punie` builds it from a config entry's `api_key_env`.
        let model = OpenAiModel::new(spec(&url, None), Some("key-from-the-config".into()));
        assert_eq!(model.list_models().await.unwrap(), ["first", "second"]);
        for _ in 0..2 {
            assert_eq!(
                model.health(Duration::from_secs(3)).await,
                ModelHealth::up(Some("first".into())).at(&url)
            );
        }
        for _ in 0..3 {
            let head = heads.recv().await.unwrap();
            assert!(head.starts_with("get /v1/models "), "{head}");
            assert!(
                head.contains("\r\nauthorization: bearer key-from-the-config\r\n"),
                "{head}"
            );
        }
        assert!(heads.try_recv().is_err(), "one request per call");
    }

    #[tokio::test]
    async fn health_of_a_server_that_is_down() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", closed.local_addr().unwrap());
        drop(closed);
        let model =
            OpenAiModel::new(spec(&url, Some("qwen3")), None).with_retry(RetryPolicy::never());
        let health = model.health(Duration::from_secs(3)).await;
        assert!(!health.up);
        assert_eq!(health.name.as_deref(), Some("qwen3"));
        assert_eq!(health.base_url.as_deref(), Some(url.as_str()));
        let error = health.error.unwrap();
        assert!(
            error.starts_with(&format!("cannot reach the model server at {url}: ")),
            "{error}"
        );
    }

    #[tokio::test]
    async fn health_of_a_server_that_does_not_answer() {
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", silent.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                held.push(socket);
            }
        });
        let model = OpenAiModel::new(spec(&url, None), None);
        let health = model.health(Duration::from_millis(200)).await;
        assert_eq!(
            health,
            ModelHealth::down(None, format!("{url} did not answer within 0.2 s")).at(&url)
        );
    }
}
