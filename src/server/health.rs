//! `GET /health`: is Punie up, which model does it use, and does that model's server answer.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::ServerState;
use crate::llm::OpenAiModel;

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
    let model = match &state.options.model {
        Some(model) => probe(model, &state).await,
        None => Value::Null,
    };
    let degraded = model.get("server").and_then(Value::as_str) == Some("down");
    let connections = state
        .options
        .max_connections
        .saturating_sub(state.connections.available_permits());
    Json(json!({
        "status": if degraded { "degraded" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
        "model": model,
        "sessions": state.agent.session_count(),
        "connections": connections,
        "uptime_seconds": state.started.elapsed().as_secs(),
    }))
}

/// Asks the model server for its model list, briefly.
async fn probe(model: &OpenAiModel, state: &ServerState) -> Value {
    let spec = model.spec();
    let listed = tokio::time::timeout(state.options.model_probe_timeout, model.list_models()).await;
    let (server, name, error) = match listed {
        Ok(Ok(models)) => {
            let name = spec.model.clone().or_else(|| models.first().cloned());
            ("up", name, None)
        }
        Ok(Err(error)) => ("down", spec.model.clone(), Some(error.to_string())),
        Err(_) => (
            "down",
            spec.model.clone(),
            Some(format!(
                "{} did not answer within {} s",
                spec.base_url,
                state.options.model_probe_timeout.as_secs_f32()
            )),
        ),
    };
    let mut report = json!({
        "base_url": spec.base_url,
        "name": name,
        "server": server,
    });
    if let Some(error) = error {
        report["error"] = Value::String(error);
    }
    report
}
