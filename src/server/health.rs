//! `GET /health`: is Punie up, which model does it use, and does that model's server answer.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::ServerState;
use crate::llm::{ChatModel, ModelHealth};

/// How much longer than asked a model's health check may take before `/health` stops waiting:
/// the check is trusted to keep to its time, but an embedder's model must not hang the route.
const HEALTH_GRACE: Duration = Duration::from_secs(1);

/// The health report:
///
/// ```json
/// {"status": "ok", "version": "0.1.0",
///  "model": {"base_url": "http://localhost:1234/v1", "name": "qwen3-8b", "server": "up"},
///  "sessions": 1, "connections": 1, "uptime_seconds": 42}
/// ```
///
/// `status` is `degraded` when the model server does not answer (then `model.server` is `down`
/// and `model.error` says why). The HTTP status is 200 either way: Punie itself is up.
pub(super) async fn health(State(state): State<Arc<ServerState>>) -> Json<Value> {
    let model = probe(
        state.agent.model().as_ref(),
        state.options.model_probe_timeout,
    )
    .await;
    let connections = state.sockets.load(std::sync::atomic::Ordering::Relaxed);
    Json(json!({
        "status": if model.up { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "model": report(model),
        "sessions": state.agent.session_count(),
        "connections": connections,
        "uptime_seconds": state.started.elapsed().as_secs(),
    }))
}

/// The agent's model's own health check, given `within` to answer.
async fn probe(model: &dyn ChatModel, within: Duration) -> ModelHealth {
    match tokio::time::timeout(within + HEALTH_GRACE, model.health(within)).await {
        Ok(health) => health,
        Err(_) => ModelHealth::down(
            None,
            format!(
                "{} did not answer within {} s",
                model.describe(),
                within.as_secs_f32()
            ),
        ),
    }
}

/// The `model` part of the report; `error` only when there is one.
fn report(health: ModelHealth) -> Value {
    let mut report = json!({
        "base_url": health.base_url,
        "name": health.name,
        "server": if health.up { "up" } else { "down" },
    });
    if let Some(error) = health.error {
        report["error"] = Value::String(error);
    }
    report
}

#[cfg(test)]
mod tests {
    use futures::future::{BoxFuture, pending};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::agent::Agent;
    use crate::llm::{ChatRequest, LlmError, ModelStream};
    use crate::server::ServerOptions;

    /// A model whose health check answers `health`, or never.
    struct Checked(Option<ModelHealth>);

    impl ChatModel for Checked {
        fn stream(&self, _: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
            Box::pin(async {
                Err(LlmError::Backend {
                    message: "not asked here".into(),
                })
            })
        }

        fn describe(&self) -> String {
            "the checked model".into()
        }

        fn health(&self, _within: Duration) -> BoxFuture<'_, ModelHealth> {
            match self.0.clone() {
                Some(health) => Box::pin(async move { health }),
                None => Box::pin(pending()),
            }
        }
    }

    async fn health_of(model: Checked, probe_timeout: Duration) -> Value {
        let agent = Agent::builder().model(model).build().unwrap();
        let options = ServerOptions {
            model_probe_timeout: probe_timeout,
            ..ServerOptions::default()
        };
        let state = ServerState::new(agent, options, CancellationToken::new());
        let Json(report) = health(State(state)).await;
        report
    }

    #[tokio::test]
    async fn the_model_report_is_the_agent_model_s_own() {
        let down = ModelHealth::down(Some("qwen3".into()), "out to lunch").at("http://gpu:8000/v1");
        let report = health_of(Checked(Some(down)), Duration::from_secs(3)).await;
        assert_eq!(report["status"], "degraded", "{report}");
        assert_eq!(
            report["model"],
            json!({"base_url": "http://gpu:8000/v1", "name": "qwen3", "server": "down", "error": "out to lunch"})
        );
        let up = ModelHealth::up(None);
        let report = health_of(Checked(Some(up)), Duration::from_secs(3)).await;
        assert_eq!(report["status"], "ok", "{report}");
        assert_eq!(
            report["model"],
            json!({"base_url": null, "name": null, "server": "up"})
        );
    }

    #[tokio::test]
    async fn a_model_that_never_answers_is_down() {
        let report = health_of(Checked(None), Duration::from_millis(50)).await;
        assert_eq!(report["status"], "degraded", "{report}");
        assert_eq!(
            report["model"]["error"],
            "the checked model did not answer within 0.05 s"
        );
    }
}
