//! Retries of requests that failed for reasons that pass: a server still starting (connection
//! refused), rate limiting (429), a proxy or a busy server (502, 503, 504), and a stream cut
//! before anything of the answer went out. Waits grow exponentially with jitter, or follow the
//! server's `Retry-After`; an answer is never replayed once part of it reached the consumer.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream;
use serde_json::Value;
use tracing::warn;

use super::endpoint::{Endpoint, Failure};
use super::markup::{LeadingThoughts, MarkupFilter};
use super::{LlmError, ModelStream, ToolSpec};

/// How a request that failed for a passing reason is tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How many times a request is tried in all; 1 never retries. Default 3.
    pub max_attempts: u32,
    /// The wait before the first retry, doubled before each next one (then jittered: between
    /// half and all of it). Default 500 ms.
    pub base_delay: Duration,
    /// The longest wait between two tries, also the most of a server's `Retry-After` that is
    /// honoured. Default 8 s.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (1 for the first): the server's `Retry-After` if it
    /// sent one, else `base_delay · 2^(retry-1)` with jitter; at most `max_delay` either way.
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_delay);
        }
        let factor = 1u32 << retry.saturating_sub(1).min(20);
        let full = self.base_delay.saturating_mul(factor).min(self.max_delay);
        // "Equal jitter": clients retrying together spread out, yet each waits at least half.
        let random = (uuid::Uuid::new_v4().as_u128() % 1_000_001) as f64 / 1_000_000.0;
        full / 2 + (full / 2).mul_f64(random)
    }

    /// Runs `attempt` until it succeeds, fails for good, or no tries are left.
    pub(crate) async fn run<T, Fut>(
        &self,
        url: &str,
        attempt: impl FnMut() -> Fut,
    ) -> Result<T, LlmError>
    where
        Fut: Future<Output = Result<T, Failure>>,
    {
        self.run_counted(url, &mut 0, attempt).await
    }

    /// [`run`](Self::run), counting the tries in `made`, which may already count earlier ones
    /// of the same request (they use up the same allowance).
    async fn run_counted<T, Fut>(
        &self,
        url: &str,
        made: &mut u32,
        mut attempt: impl FnMut() -> Fut,
    ) -> Result<T, LlmError>
    where
        Fut: Future<Output = Result<T, Failure>>,
    {
        loop {
            *made += 1;
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(Failure {
                    error,
                    transient: true,
                    retry_after,
                }) if *made < self.max_attempts.max(1) => {
                    self.pause(url, *made, retry_after, &error).await;
                }
                Err(failure) => return Err(failure.error.with_attempts(*made)),
            }
        }
    }

    /// Logs the retry to come after try number `made` failed with `error`, and waits for it.
    async fn pause(&self, url: &str, made: u32, retry_after: Option<Duration>, error: &LlmError) {
        let delay = self.delay(made, retry_after);
        warn!(
            %url,
            "retrying ({}/{}) after {}: {}",
            made + 1,
            self.max_attempts.max(1),
            human(delay),
            reason(error)
        );
        tokio::time::sleep(delay).await;
    }
}

/// The short reason of a failure, for the retry log line.
fn reason(error: &LlmError) -> String {
    match error {
        LlmError::Unreachable { reason, .. } => reason.clone(),
        LlmError::Status {
            status, message, ..
        } => format!("HTTP {status}: {message}"),
        LlmError::StreamCut { .. } => "the stream was cut before the answer began".to_owned(),
        other => other.to_string(),
    }
}

/// How an answer's events are filtered once they arrive.
#[derive(Clone, Debug)]
pub(crate) struct FilterSetup {
    /// The tools offered (tool calls written as text are read when there are some).
    pub tools: Arc<[ToolSpec]>,
    /// What is known of how the model starts its answers.
    pub leading: Arc<LeadingThoughts>,
    /// The model's name.
    pub model: String,
}

/// The tries of one request: opens it, again while the failures are transient and tries are
/// left, and keeps the count.
#[derive(Debug)]
pub(crate) struct Attempts {
    endpoint: Endpoint,
    body: Arc<Value>,
    policy: RetryPolicy,
    filter: FilterSetup,
    made: u32,
}

impl Attempts {
    /// The tries of sending `body` to `endpoint`.
    pub(crate) fn new(
        endpoint: Endpoint,
        body: Value,
        policy: RetryPolicy,
        filter: FilterSetup,
    ) -> Self {
        Self {
            endpoint,
            body: Arc::new(body),
            policy,
            filter,
            made: 0,
        }
    }

    /// Opens the request, retrying transient failures; the events come filtered.
    pub(crate) async fn open(&mut self) -> Result<ModelStream, LlmError> {
        let (endpoint, body) = (&self.endpoint, &self.body);
        let raw = self
            .policy
            .run_counted(endpoint.url(), &mut self.made, || endpoint.open_chat(body))
            .await?;
        let filter = MarkupFilter::with_hint(
            &self.filter.tools,
            Arc::clone(&self.filter.leading),
            &self.filter.model,
        );
        Ok(filter.apply(raw))
    }

    fn max_attempts(&self) -> u32 {
        self.policy.max_attempts.max(1)
    }

    /// `first` (what [`Attempts::open`] gave), re-opened if it is cut before any event went out.
    pub(crate) fn into_stream(self, first: ModelStream) -> ModelStream {
        let state = (self, Some(first), false);
        stream::unfold(
            state,
            |(mut attempts, mut current, mut delivered)| async move {
                loop {
                    let item = current.as_mut()?.next().await;
                    match item {
                        Some(Ok(event)) => {
                            delivered = true;
                            return Some((Ok(event), (attempts, current, delivered)));
                        }
                        Some(Err(error @ LlmError::StreamCut { .. }))
                            if !delivered && attempts.made < attempts.max_attempts() =>
                        {
                            let url = attempts.endpoint.url().to_owned();
                            attempts
                                .policy
                                .pause(&url, attempts.made, None, &error)
                                .await;
                            match attempts.open().await {
                                Ok(next) => current = Some(next),
                                Err(error) => {
                                    return Some((Err(error), (attempts, None, delivered)));
                                }
                            }
                        }
                        Some(Err(error)) => {
                            let error = error.with_attempts(attempts.made);
                            return Some((Err(error), (attempts, None, delivered)));
                        }
                        None => return None,
                    }
                }
            },
        )
        .boxed()
    }
}

/// A wait as people read it: "500 ms", "2.5 s".
fn human(delay: Duration) -> String {
    if delay < Duration::from_secs(1) {
        format!("{} ms", delay.as_millis())
    } else {
        format!("{:.1} s", delay.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_with_jitter_and_stay_capped() {
        let policy = RetryPolicy::default();
        for _ in 0..50 {
            let first = policy.delay(1, None);
            assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(500));
            let second = policy.delay(2, None);
            assert!(second >= Duration::from_millis(500) && second <= Duration::from_secs(1));
            let late = policy.delay(30, None);
            assert!(late >= Duration::from_secs(4) && late <= Duration::from_secs(8));
        }
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(120))),
            Duration::from_secs(8)
        );
        assert_eq!(RetryPolicy::never().max_attempts, 1);
    }

    #[test]
    fn errors_say_how_often_they_were_tried() {
        let error = LlmError::StreamCut {
            url: "http://x/v1".into(),
            attempts: 1,
        };
        assert!(!error.to_string().contains("attempts"));
        let error = error.with_attempts(3);
        assert!(error.to_string().contains("(after 3 attempts)"), "{error}");
        let error = LlmError::Status {
            url: "http://x/v1".into(),
            status: 503,
            message: "Loading model".into(),
            hint: String::new(),
            attempts: 1,
        }
        .with_attempts(2);
        assert!(
            error
                .to_string()
                .contains("answered HTTP 503 (after 2 attempts): Loading model"),
            "{error}"
        );
        assert_eq!(human(Duration::from_millis(500)), "500 ms");
        assert_eq!(human(Duration::from_millis(2500)), "2.5 s");
    }
}
