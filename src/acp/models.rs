//! The session config options: the model picker (the server's models) and the mode picker
//! (`modes.rs`); `session/set_config_option` for both, the legacy `session/set_model` of
//! clients that predate config options, and the follower that announces mode changes.

use std::sync::Arc;

use agent_client_protocol::Client;
use agent_client_protocol::v1::schema as wire;
use agent_client_protocol::v1::{ConnectionTo, Responder};

use super::connection::Connection;
use super::convert::{self, MODEL_OPTION};
use super::error::{RequestError, answer};
use super::modes::{MODE_OPTION, mode_option, parse_mode};
use crate::agent::{Agent, Session};

/// The pre-config-option way to switch models, still sent by some clients.
pub(crate) const LEGACY_SET_MODEL: &str = "session/set_model";

/// The session's config options: a model picker, when the back end can switch models, then
/// the mode picker.
pub(crate) async fn config_options(
    agent: &Agent,
    session: &Session,
) -> Vec<wire::SessionConfigOption> {
    let mut options = Vec::new();
    if let Some(models) = model_option(agent, session).await {
        options.push(models);
    }
    options.push(mode_option(session));
    options
}

/// The model picker, when the server lists models.
async fn model_option(agent: &Agent, session: &Session) -> Option<wire::SessionConfigOption> {
    let (current, available) = agent.session_models(session).await;
    convert::model_options(current, available)
        .into_iter()
        .next()
}

/// Announces every change of `session`'s mode to the editor, whoever made it (`session/set_mode`,
/// the config option, a command, the library): a `current_mode_update` for clients that use
/// modes, then a `config_option_update` for those that use config options. Ends with the
/// session.
pub(crate) fn follow_mode(agent: Arc<Agent>, cx: ConnectionTo<Client>, session: &Session) {
    let mut changes = session.watch_mode();
    let id = session.id().to_owned();
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            let mode = *changes.borrow_and_update();
            let update =
                wire::SessionUpdate::CurrentModeUpdate(wire::CurrentModeUpdate::new(mode.id()));
            send(&cx, &id, update);
            // Looked up each time: holding the session here would keep it alive.
            let Ok(session) = agent.session(&id) else {
                break;
            };
            let options = config_options(&agent, &session).await;
            drop(session);
            let update =
                wire::SessionUpdate::ConfigOptionUpdate(wire::ConfigOptionUpdate::new(options));
            send(&cx, &id, update);
        }
    });
}

fn send(cx: &ConnectionTo<Client>, id: &str, update: wire::SessionUpdate) {
    let notification = wire::SessionNotification::new(id.to_owned(), update);
    if let Err(error) = cx.send_notification(notification) {
        tracing::debug!(session = id, %error, "could not send a mode change");
    }
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
    let agent = &connection.agent;
    let value = match &request.value {
        wire::SessionConfigOptionValue::ValueId { value } => Some(value.0.to_string()),
        _ => None,
    };
    match (&*request.config_id.0, value) {
        (MODEL_OPTION, Some(model)) => agent.set_session_model(&session, &model).await?,
        (MODE_OPTION, Some(mode)) => {
            agent.set_session_mode(&session, parse_mode(&mode)?);
        }
        (option @ (MODEL_OPTION | MODE_OPTION), None) => {
            return Err(RequestError::InvalidParams(format!(
                "the {option} option takes the id of one of its values"
            )));
        }
        (other, _) => {
            return Err(RequestError::InvalidParams(format!(
                "unknown config option {other:?}; Punie has \"{MODEL_OPTION}\" and \"{MODE_OPTION}\""
            )));
        }
    }
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
