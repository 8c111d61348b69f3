//! Retries of requests that failed for reasons that pass: a server still starting (connection
//! refused), rate limiting (429), a proxy or a busy server (502, 503, 504), and a stream cut
//! before anything of the answer went out. Waits grow exponentially with jitter, or follow the
//! server's `Retry-After`; an answer is never replayed once part of it reached the consumer.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream;
use serde_json::Value;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::endpoint::{Endpoint, Failure};
use super::markup::{LeadingThoughts, MarkupFilter};
use super::{LlmError, ModelStream, ServerWait, ServerWaitSink, ToolSpec};

/// How long a server that is not answering yet is waited for unless told otherwise (see
/// [`RetryPolicy::server_wait`]): loading a model takes tens of seconds, a big one from a slow
/// disk more.
pub const DEFAULT_SERVER_WAIT: Duration = Duration::from_secs(120);

/// When a request still waiting for its server is reported ([`ServerWait::Waiting`]).
const TELL_AFTER: Duration = Duration::from_secs(3);

/// The longest pause between two tries of a server that is not answering yet: it should be
/// used as soon as it is up, not up to [`RetryPolicy::max_delay`] later.
const POLL_AT_MOST: Duration = Duration::from_secs(2);

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
    /// How long a server that refuses connections or answers 503 (starting, restarting,
    /// loading a model) is waited for: such a request is tried again, at most
    /// 2 s apart, beyond [`max_attempts`](Self::max_attempts) until this long has
    /// passed since its first try, and then fails with [`LlmError::NotReady`]. Zero waits no
    /// longer than `max_attempts` allow. Default [`DEFAULT_SERVER_WAIT`].
    pub server_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            server_wait: DEFAULT_SERVER_WAIT,
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            server_wait: Duration::ZERO,
            ..Self::default()
        }
    }

    /// The same policy without the long wait for a server that is not answering: for the
    /// questions asked outside a turn (opening a session, a health check, the context size),
    /// where nobody could be told why nothing happens.
    pub(crate) fn without_server_wait(self) -> Self {
        Self {
            server_wait: Duration::ZERO,
            ..self
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

    /// Runs `attempt` until it succeeds, fails for good, or no tries are left, telling `waits`
    /// while it waits for a server that is not answering yet.
    pub(crate) async fn run<T, Fut>(
        &self,
        url: &str,
        waits: Option<&ServerWaitSink>,
        attempt: impl FnMut() -> Fut,
    ) -> Result<T, LlmError>
    where
        Fut: Future<Output = Result<T, Failure>>,
    {
        self.run_counted(url, &mut 0, waits, attempt).await
    }

    /// [`run`](Self::run), counting the tries in `made`, which may already count earlier ones
    /// of the same request (they use up the same allowance).
    async fn run_counted<T, Fut>(
        &self,
        url: &str,
        made: &mut u32,
        waits: Option<&ServerWaitSink>,
        mut attempt: impl FnMut() -> Fut,
    ) -> Result<T, LlmError>
    where
        Fut: Future<Output = Result<T, Failure>>,
    {
        let started = Instant::now();
        let mut told = false;
        loop {
            *made += 1;
            let failure = match attempt().await {
                Ok(value) => {
                    if told && let Some(waits) = waits {
                        let waited = started.elapsed();
                        info!(%url, "the model server answered after {}", human(waited));
                        waits(ServerWait::Answered {
                            url: url.to_owned(),
                            waited,
                        });
                    }
                    return Ok(value);
                }
                Err(failure) => failure,
            };
            let Some(delay) = self.next_delay(&failure, *made, started) else {
                return Err(self.final_error(failure, *made, started, url));
            };
            let waiting = *made >= self.max_attempts.max(1);
            if !told && self.waits_for(&failure) && started.elapsed() + delay >= TELL_AFTER {
                told = true;
                let reason = short_reason(&failure.error);
                warn!(
                    %url,
                    "the model server is not answering ({reason}); waiting up to {} s for it",
                    self.server_wait.as_secs()
                );
                if let Some(waits) = waits {
                    waits(ServerWait::Waiting {
                        url: url.to_owned(),
                        reason,
                        waited: started.elapsed(),
                        limit: self.server_wait,
                    });
                }
            }
            if waiting {
                debug!(%url, "trying again in {}: {}", human(delay), reason(&failure.error));
                tokio::time::sleep(delay).await;
            } else {
                self.pause_for(url, *made, delay, &failure.error).await;
            }
        }
    }

    /// Whether `failure` is one of a server that is not answering yet, waited for up to
    /// [`server_wait`](Self::server_wait).
    fn waits_for(&self, failure: &Failure) -> bool {
        !self.server_wait.is_zero() && failure.transient && failure.server_starting()
    }

    /// The pause before trying again after try number `made` failed with `failure`, in a
    /// request first tried at `started`; `None` when it is not tried again.
    fn next_delay(&self, failure: &Failure, made: u32, started: Instant) -> Option<Duration> {
        if !failure.transient {
            return None;
        }
        let delay = self.delay(made, failure.retry_after);
        if !self.waits_for(failure) {
            return (made < self.max_attempts.max(1)).then_some(delay);
        }
        let left = self.server_wait.saturating_sub(started.elapsed());
        if made >= self.max_attempts.max(1) && left.is_zero() {
            return None;
        }
        Some(
            delay
                .min(POLL_AT_MOST)
                .min(left.max(Duration::from_millis(1))),
        )
    }

    /// The error of a request that is not tried again.
    fn final_error(&self, failure: Failure, made: u32, started: Instant, url: &str) -> LlmError {
        if self.waits_for(&failure) && made > self.max_attempts.max(1) {
            let waited = started.elapsed().as_secs_f64().round() as u64;
            warn!(%url, waited, attempts = made, "the model server did not come up");
            return LlmError::NotReady {
                url: url.to_owned(),
                reason: reason(&failure.error),
                waited,
                attempts: made,
            };
        }
        failure.error.with_attempts(made)
    }

    /// Logs the retry to come after try number `made` failed with `error`, and waits for it.
    async fn pause(&self, url: &str, made: u32, retry_after: Option<Duration>, error: &LlmError) {
        self.pause_for(url, made, self.delay(made, retry_after), error)
            .await;
    }

    async fn pause_for(&self, url: &str, made: u32, delay: Duration, error: &LlmError) {
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

/// What a person reads of why the server is not answering: "connection refused", "HTTP 503:
/// Loading model".
fn short_reason(error: &LlmError) -> String {
    match error {
        LlmError::Unreachable { reason, .. } => {
            let lowercase = reason.to_ascii_lowercase();
            ["refused", "reset", "aborted", "closed"]
                .iter()
                .find(|word| lowercase.contains(*word))
                .map_or_else(|| reason.clone(), |word| format!("connection {word}"))
        }
        other => reason(other),
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
pub(crate) struct Attempts {
    endpoint: Endpoint,
    body: Arc<Value>,
    policy: RetryPolicy,
    filter: FilterSetup,
    made: u32,
    /// Told while the request waits for a server that is not answering yet.
    waits: Option<ServerWaitSink>,
}

impl std::fmt::Debug for Attempts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempts")
            .field("endpoint", &self.endpoint)
            .field("policy", &self.policy)
            .field("made", &self.made)
            .field("waits", &self.waits.is_some())
            .finish_non_exhaustive()
    }
}

impl Attempts {
    /// The tries of sending `body` to `endpoint`.
    pub(crate) fn new(
        endpoint: Endpoint,
        body: Value,
        policy: RetryPolicy,
        filter: FilterSetup,
        waits: Option<ServerWaitSink>,
    ) -> Self {
        Self {
            endpoint,
            body: Arc::new(body),
            policy,
            filter,
            made: 0,
            waits,
        }
    }

    /// Opens the request, retrying transient failures; the events come filtered.
    pub(crate) async fn open(&mut self) -> Result<ModelStream, LlmError> {
        let (endpoint, body) = (&self.endpoint, &self.body);
        let raw = self
            .policy
            .run_counted(endpoint.url(), &mut self.made, self.waits.as_ref(), || {
                endpoint.open_chat(body)
            })
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

    fn refused() -> Failure {
        Failure {
            error: LlmError::Unreachable {
                url: "http://x/v1".into(),
                reason: "Connection refused (os error 111)".into(),
                attempts: 1,
            },
            transient: true,
            retry_after: None,
        }
    }

    #[test]
    fn a_server_that_is_not_answering_is_waited_for_by_time() {
        let policy = RetryPolicy::default();
        let now = Instant::now();
        // Past the three tries, still within the wait: polled at most 2 s apart.
        let delay = policy.next_delay(&refused(), 10, now).unwrap();
        assert!(delay <= POLL_AT_MOST, "{delay:?}");
        // Without the wait, three tries as for any passing failure.
        let short = policy.without_server_wait();
        assert!(short.next_delay(&refused(), 2, now).is_some());
        assert!(short.next_delay(&refused(), 3, now).is_none());
        // A 429 is a busy server, not a starting one: three tries.
        let busy = Failure {
            error: LlmError::Status {
                url: "http://x/v1".into(),
                status: 429,
                message: "slow down".into(),
                hint: String::new(),
                attempts: 1,
            },
            transient: true,
            retry_after: None,
        };
        assert!(policy.next_delay(&busy, 3, now).is_none());
        // The wait used up: the error says how long and what to change.
        let error = policy.final_error(refused(), 40, now, "http://x/v1");
        let message = error.to_string();
        assert!(matches!(error, LlmError::NotReady { attempts: 40, .. }));
        assert!(
            message.contains("did not answer within 0 s (40 attempts; last: Connection refused"),
            "{message}"
        );
        assert!(message.contains("--server-wait SECONDS"), "{message}");
        assert_eq!(short_reason(&refused().error), "connection refused");
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
