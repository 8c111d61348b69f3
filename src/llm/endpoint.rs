//! One OpenAI-compatible server as seen over HTTP: sending a chat completion and reading its
//! answer (a stream, a whole JSON document, or an error of any shape), plus the small JSON
//! requests made to learn about the server. Cheap to clone, so a stream that must re-send its
//! request after a cut can own one.
//!
//! Written for what local servers really do rather than for the OpenAI spec: slow prompt
//! processing (a long wait for the first byte), errors as JSON bodies of several shapes, errors
//! inside a 200 stream, a JSON body instead of a stream, streams that end without `[DONE]`.
//! Nothing is spawned: the returned stream owns the HTTP response, so dropping it closes the
//! connection and the server stops generating.
//!
//! Every body read is bounded ([`Limits`]), and redirects are followed only within the
//! configured server's origin: a request carries the whole conversation and the API key.

use std::time::Duration;

use futures::stream::{self, StreamExt};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use serde_json::Value;
use tokio::time::{Instant, timeout, timeout_at};
use tracing::{debug, warn};

use super::error::human_bytes;
use super::error::{deepest_cause, is_context_overflow_message, is_tools_unsupported_message};
use super::spec::ModelSpec;
use super::stream::{StreamReader, excerpt, whole_answer_events};
use super::{Limits, LlmError, ModelEvent, ModelStream, Timeouts, wire};

/// A failed try, and whether trying again may help.
#[derive(Debug)]
pub(crate) struct Failure {
    /// What went wrong.
    pub error: LlmError,
    /// The cause passes (connection refused, 429, 502, 503, 504).
    pub transient: bool,
    /// The wait the server asked for.
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// Whether the server is not answering yet rather than busy: it refuses or drops
    /// connections (not started, restarting) or answers 503 (llama-server and LM Studio while
    /// they load the model). Such a failure is waited for longer
    /// ([`RetryPolicy::server_wait`](super::RetryPolicy::server_wait)).
    pub(crate) fn server_starting(&self) -> bool {
        matches!(
            self.error,
            LlmError::Unreachable { .. } | LlmError::Status { status: 503, .. }
        )
    }

    fn last(error: LlmError) -> Self {
        Self {
            error,
            transient: false,
            retry_after: None,
        }
    }
}

impl From<LlmError> for Failure {
    fn from(error: LlmError) -> Self {
        Self::last(error)
    }
}

/// The server: where it is, how to authenticate, how long to wait, how much to accept, and the
/// HTTP client.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    pub spec: ModelSpec,
    pub api_key: Option<String>,
    pub timeouts: Timeouts,
    pub limits: Limits,
    pub client: reqwest::Client,
}

impl Endpoint {
    /// The endpoint of `spec`.
    pub(crate) fn new(spec: ModelSpec, api_key: Option<String>, timeouts: Timeouts) -> Self {
        let client = build_client(&spec, timeouts);
        Self {
            spec,
            api_key: api_key.filter(|key| !key.trim().is_empty()),
            timeouts,
            limits: Limits::default(),
            client,
        }
    }

    /// The same endpoint with other timeouts.
    pub(crate) fn with_timeouts(self, timeouts: Timeouts) -> Self {
        let limits = self.limits;
        Self {
            limits,
            ..Self::new(self.spec, self.api_key, timeouts)
        }
    }

    /// The same endpoint with other limits.
    pub(crate) fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The OpenAI-compatible base URL (`…/v1`).
    pub(crate) fn url(&self) -> &str {
        &self.spec.base_url
    }

    /// The server's root: the base URL without its `/v1`, where llama.cpp, LM Studio and
    /// Ollama keep their own APIs.
    pub(crate) fn root(&self) -> &str {
        let base = self.spec.base_url.trim_end_matches('/');
        base.strip_suffix("/v1").unwrap_or(base)
    }

    /// Sends one chat completion request; the events come unfiltered.
    pub(crate) async fn open_chat(&self, body: &Value) -> Result<ModelStream, Failure> {
        let mut http = self
            .client
            .post(format!("{}/chat/completions", self.spec.base_url))
            .header(ACCEPT, "text/event-stream, application/json")
            .json(body);
        if let Some(key) = &self.api_key {
            http = http.bearer_auth(key);
        }
        let deadline = Instant::now() + self.timeouts.first_byte;
        let response = match timeout_at(deadline, self.send(http)).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(self
                    .timeout(self.timeouts.first_byte, "waiting for the first byte")
                    .into());
            }
        };
        let status = response.status();
        if status.is_redirection() {
            return Err(self.redirected(&response).into());
        }
        if !status.is_success() {
            let retry_after = retry_after(&response);
            let body = self.read_body(response).await?;
            let message = wire::error_message(&body).unwrap_or_default();
            let hint = static_hint(status, &message);
            return Err(Failure {
                error: self.status_error(status, &body, hint),
                transient: is_transient_status(status.as_u16()),
                retry_after,
            });
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
            return Err(self.malformed(&body, "an HTML page").into());
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
            self.limits,
        )
        .into_stream())
    }

    /// `GET url` answered with JSON, within `wait`.
    pub(crate) async fn get_json(&self, url: &str, wait: Duration) -> Result<Value, Failure> {
        self.json_request(self.client.get(url), wait).await
    }

    /// `POST url` with a JSON body, answered with JSON, within `wait`.
    pub(crate) async fn post_json(
        &self,
        url: &str,
        body: &Value,
        wait: Duration,
    ) -> Result<Value, Failure> {
        self.json_request(self.client.post(url).json(body), wait)
            .await
    }

    async fn json_request(
        &self,
        mut request: reqwest::RequestBuilder,
        wait: Duration,
    ) -> Result<Value, Failure> {
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        // The whole exchange, body included: a server trickling its answer must not hold the
        // caller past `wait`.
        match timeout(wait, self.json_exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(self.timeout(wait, "asking about the models").into()),
        }
    }

    async fn json_exchange(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let response = self.send(request).await?;
        let status = response.status();
        if status.is_redirection() {
            return Err(self.redirected(&response).into());
        }
        if !status.is_success() {
            let retry_after = retry_after(&response);
            let body = self.read_body(response).await?;
            let message = wire::error_message(&body).unwrap_or_default();
            return Err(Failure {
                error: self.status_error(status, &body, static_hint(status, &message)),
                transient: is_transient_status(status.as_u16()),
                retry_after,
            });
        }
        let body = self.read_body(response).await?;
        let value: Value = serde_json::from_slice(&body)
            .map_err(|_| self.malformed(&body, "an answer that is not JSON"))?;
        if let Some(message) = wire::error_in_value(&value) {
            return Err(self.in_stream(message).into());
        }
        Ok(value)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
        request.send().await.map_err(|error| {
            if error.is_timeout() {
                self.timeout(self.timeouts.connect, "connecting").into()
            } else if error.is_builder() {
                LlmError::BadSpec {
                    spec: self.spec.to_string(),
                    reason: deepest_cause(&error),
                }
                .into()
            } else {
                Failure {
                    transient: is_transient_connect_error(&error),
                    error: LlmError::Unreachable {
                        url: self.spec.base_url.clone(),
                        reason: deepest_cause(&error),
                        attempts: 1,
                    },
                    retry_after: None,
                }
            }
        })
    }

    /// A whole (non-streaming) body, waiting at most the idle timeout between reads, and at
    /// most [`Limits::max_body_bytes`] long. A body cut by the server is returned as far as it
    /// came: it is read only to be shown or parsed.
    async fn read_body(&self, response: reqwest::Response) -> Result<Vec<u8>, LlmError> {
        let limit = self.limits.max_body_bytes;
        if let Some(length) = response.content_length()
            && length > limit as u64
        {
            return Err(LlmError::TooLarge {
                url: self.spec.base_url.clone(),
                what: "a response body".to_owned(),
                limit,
                excerpt: format!("it announced {} bytes", length),
            });
        }
        let mut body = Vec::new();
        let mut chunks = response.bytes_stream();
        loop {
            match timeout(self.timeouts.idle, chunks.next()).await {
                Err(_) => return Err(self.timeout(self.timeouts.idle, "reading the answer")),
                Ok(None) => return Ok(body),
                Ok(Some(Ok(chunk))) => {
                    if body.len() + chunk.len() > limit {
                        return Err(LlmError::TooLarge {
                            url: self.spec.base_url.clone(),
                            what: format!("a response body of more than {}", human_bytes(limit)),
                            limit,
                            excerpt: format!("it began {}", excerpt(&body)),
                        });
                    }
                    body.extend_from_slice(&chunk);
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

    pub(crate) fn status_error(&self, status: StatusCode, body: &[u8], hint: String) -> LlmError {
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
            attempts: 1,
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

    pub(crate) fn timeout(&self, waited: Duration, phase: &str) -> LlmError {
        LlmError::Timeout {
            url: self.spec.base_url.clone(),
            seconds: waited.as_secs(),
            phase: phase.to_owned(),
            advice: " — is it overloaded or stuck?".to_owned(),
        }
    }

    /// The error of a redirect the client did not follow (only cross-origin ones are not).
    fn redirected(&self, response: &reqwest::Response) -> LlmError {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(|location| match response.url().join(location) {
                Ok(url) => url.to_string(),
                Err(_) => location.to_owned(),
            })
            .unwrap_or_else(|| "an unnamed place (no Location header)".to_owned());
        warn!(url = %self.spec.base_url, %location, "model server redirected to another origin");
        LlmError::CrossOriginRedirect {
            url: self.spec.base_url.clone(),
            location,
        }
    }
}

/// The wait a response's `Retry-After` header asks for.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_retry_after)
}

/// The wait a `Retry-After` header asks for (seconds; an HTTP date is not read).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(3600.0)))
}

/// Whether an HTTP status says "try again later".
fn is_transient_status(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// What to do about an error status, as far as the status and message tell (a 404's hint,
/// which needs the model list, is added by the model).
pub(crate) fn static_hint(status: StatusCode, message: &str) -> String {
    if is_context_overflow_message(message) {
        return " — the conversation no longer fits the model's context window; start a new \
                session, or load the model with a larger context (llama-server -c, Ollama \
                num_ctx, LM Studio's context length, vllm --max-model-len)"
            .to_owned();
    }
    let lowercase = message.to_ascii_lowercase();
    if lowercase.contains("--jinja") {
        return " — restart llama-server with --jinja so it can take tools".to_owned();
    }
    if lowercase.contains("--enable-auto-tool-choice") {
        return " — start vLLM with --enable-auto-tool-choice --tool-call-parser (e.g. hermes \
                for Qwen models) so it can take tools"
            .to_owned();
    }
    if lowercase.contains("cannot use tools with stream") {
        return " — this llama-server build cannot stream tool calls; update llama.cpp".to_owned();
    }
    if is_tools_unsupported_message(message) {
        return " — this model cannot call tools; choose one whose chat template supports \
                tools (e.g. a Qwen3 or Llama 3.1 model)"
            .to_owned();
    }
    match status.as_u16() {
        401 | 403 => " — set PUNIE_API_KEY to the server's API key".to_owned(),
        429 => " — the server is rate limiting; wait a moment and try again".to_owned(),
        503 => " — the server is busy or still loading the model; try again in a moment".to_owned(),
        500..=599 => " — check the server's log".to_owned(),
        _ => String::new(),
    }
}

fn build_client(spec: &ModelSpec, timeouts: Timeouts) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .redirect(same_origin_redirects())
        .user_agent(concat!("punie/", env!("CARGO_PKG_VERSION")));
    if is_loopback(&spec.base_url) {
        // A corporate HTTP_PROXY must not swallow requests to a server on this machine.
        builder = builder.no_proxy();
    }
    // Building fails only when the TLS backend cannot start; the default client then reports
    // the same problem on the first request.
    builder.build().unwrap_or_default()
}

/// The most redirects followed for one request (reqwest's own default).
const MAX_REDIRECTS: usize = 10;

/// Redirects within the origin the request was sent to (a proxy adding a slash, `http` on one
/// port moved to another path) are followed; one to another scheme, host or port is not, since
/// the request carries the whole conversation and the API key. The 3xx answer then reaches
/// [`Endpoint::redirected`], which says where the server pointed.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if !same_origin {
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
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

/// Whether a request failed in a way that a moment later may not: the server refused or
/// dropped the connection (it is starting, or restarting).
fn is_transient_connect_error(error: &reqwest::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
            )
        {
            return true;
        }
        if current
            .to_string()
            .contains("connection closed before message completed")
        {
            return true;
        }
        cause = current.source();
    }
    false
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
    fn roots() {
        for (base, root) in [
            ("http://localhost:1234/v1", "http://localhost:1234"),
            ("https://openrouter.ai/api/v1", "https://openrouter.ai/api"),
            ("http://host:8000", "http://host:8000"),
        ] {
            let spec = ModelSpec {
                base_url: base.into(),
                model: None,
            };
            assert_eq!(Endpoint::new(spec, None, Timeouts::default()).root(), root);
        }
    }

    #[test]
    fn retry_after_values() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn transient_statuses() {
        for status in [429, 502, 503, 504] {
            assert!(is_transient_status(status));
        }
        for status in [400, 401, 403, 404, 413, 422, 500, 501] {
            assert!(!is_transient_status(status));
        }
    }

    #[test]
    fn hints() {
        assert!(static_hint(StatusCode::BAD_REQUEST, "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set").contains("--enable-auto-tool-choice"));
        assert!(static_hint(StatusCode::SERVICE_UNAVAILABLE, "Loading model").contains("loading"));
        assert_eq!(static_hint(StatusCode::BAD_REQUEST, "bad"), "");
    }
}
