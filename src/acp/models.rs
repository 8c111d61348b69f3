//! The model picker: the session config option that lists the server's models, and the two
//! ways an editor switches a session's model (`session/set_config_option`, and the legacy
//! `session/set_model` of clients that predate config options).

use std::sync::Arc;

use agent_client_protocol::Client;
use agent_client_protocol::v1::schema as wire;
use agent_client_protocol::v1::{ConnectionTo, Responder};

use super::connection::Connection;
use super::convert::{self, MODEL_OPTION};
use super::error::{RequestError, answer};
use crate::agent::{Agent, Session};

/// The pre-config-option way to switch models, still sent by some clients.
pub(crate) const LEGACY_SET_MODEL: &str = "session/set_model";

/// The session's config options: a model picker, when the back end can switch models.
pub(crate) async fn config_options(
    agent: &Agent,
    session: &Session,
) -> Vec<wire::SessionConfigOption> {
    let (current, available) = agent.session_models(session).await;
    convert::model_options(current, available)
}

/// `session/set_config_option`. Listing and switching models asks the server, so this answers
/// from its own task.
pub(crate) async fn set_config_option(
    connection: &Arc<Connection>,
    request: wire::SetSessionConfigOptionRequest,
    responder: Responder<wire::SetSessionConfigOptionResponse>,
    _cx: ConnectionTo<Client>,
) -> Result<(), agent_client_protocol::Error> {
    let connection = connection.clone();
    tokio::spawn(async move {
        let result = switch_by_option(&connection, request).await;
        answer(responder, result);
    });
    Ok(())
}

async fn switch_by_option(
    connection: &Connection,
    request: wire::SetSessionConfigOptionRequest,
) -> Result<wire::SetSessionConfigOptionResponse, RequestError> {
    let session = connection.session(&request.session_id.0)?;
    let value = match (&*request.config_id.0, &request.value) {
        (MODEL_OPTION, wire::SessionConfigOptionValue::ValueId { value }) => value.0.to_string(),
        (MODEL_OPTION, _) => {
            return Err(RequestError::InvalidParams(
                "the model option takes a model id".to_owned(),
            ));
        }
        (other, _) => {
            return Err(RequestError::InvalidParams(format!(
                "unknown config option {other:?}; Punie has \"{MODEL_OPTION}\""
            )));
        }
    };
    let agent = &connection.agent;
    agent.set_session_model(&session, &value).await?;
    Ok(wire::SetSessionConfigOptionResponse::new(
        config_options(agent, &session).await,
    ))
}

/// The legacy `session/set_model` (`{sessionId, modelId}`, answered with `{}`), which arrives
/// untyped. Answers from its own task, like `session/set_config_option`.
pub(crate) fn set_model_legacy(
    connection: &Arc<Connection>,
    params: serde_json::Value,
    responder: Responder<serde_json::Value>,
) {
    let connection = connection.clone();
    tokio::spawn(async move {
        let result = switch_by_legacy_request(&connection, &params).await;
        answer(responder, result);
    });
}

async fn switch_by_legacy_request(
    connection: &Connection,
    params: &serde_json::Value,
) -> Result<serde_json::Value, RequestError> {
    let session_id = params
        .get("sessionId")
        .and_then(|v| v.as_str())
        .ok_or_else(|| RequestError::InvalidParams("sessionId is missing".to_owned()))?;
    let model = params
        .get("modelId")
        .and_then(|v| v.as_str())
        .ok_or_else(|| RequestError::InvalidParams("modelId is missing".to_owned()))?;
    let session = connection.session(session_id)?;
    connection.agent.set_session_model(&session, model).await?;
    Ok(serde_json::json!({}))
}
