//! The handlers of the editor's requests and notifications, one `async fn` each, except the
//! model picker's (`models.rs`) and the perf extension's (`perf.rs`).
//!
//! Each runs on the dispatch loop, so each answers at once or spawns the slow part: the loop
//! must stay free for `session/cancel` and for the editor's answers to our own requests.

use std::sync::Arc;

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema as wire;
use agent_client_protocol::v1::{ConnectionTo, Responder};
use agent_client_protocol::{Client, UntypedMessage};

use super::connection::Connection;
use super::convert;
use super::discovery;
use super::error::{RequestError, answer};
use super::models;
use super::modes;
use crate::agent::connect_mcp;

/// `initialize`: remembers what the editor can do and says what Punie can.
pub(crate) async fn initialize(
    connection: &Arc<Connection>,
    request: wire::InitializeRequest,
    responder: Responder<wire::InitializeResponse>,
    _cx: ConnectionTo<Client>,
) -> Result<(), agent_client_protocol::Error> {
    tracing::info!(
        client = ?request.client_info.as_ref().map(|i| (&i.name, &i.version)),
        requested_version = ?request.protocol_version,
        fs_read = request.client_capabilities.fs.read_text_file,
        fs_write = request.client_capabilities.fs.write_text_file,
        terminal = request.client_capabilities.terminal,
        "initialize"
    );
    connection.set_client(request.client_capabilities);
    let info = wire::Implementation::new("punie", env!("CARGO_PKG_VERSION"))
        .title(connection.agent.config().display_name.clone());
    // Whether the model sees decides `image`: asked of its server once (the probe usually
    // started with the process, see `Agent::warm_up`), waited for at most VISION_WAIT here, so
    // the answer is on a task.
    let agent = connection.agent.clone();
    tokio::spawn(async move {
        let sees = tokio::time::timeout(VISION_WAIT, agent.model().sees())
            .await
            .ok()
            .flatten()
            == Some(true);
        tracing::info!(image = sees, "prompt capabilities");
        let answer = initialize_response(&agent, info, sees);
        if let Err(error) = responder.respond(answer) {
            tracing::debug!(%error, "could not answer initialize");
        }
    });
    Ok(())
}

/// How long `initialize` waits to learn whether the model sees images; past it, `image` is
/// `false` (and a prompt's images are checked again when they come).
const VISION_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The `initialize` answer: `image` in the prompt capabilities when the model sees.
fn initialize_response(
    agent: &crate::agent::Agent,
    info: wire::Implementation,
    sees: bool,
) -> wire::InitializeResponse {
    let mut capabilities = wire::AgentCapabilities::new()
        .mcp_capabilities(wire::McpCapabilities::new().http(true).sse(false))
        .prompt_capabilities(
            wire::PromptCapabilities::new()
                .embedded_context(true)
                .image(sees),
        );
    // Saved sessions, when this Punie keeps them (see specs/sessions.md).
    if agent.journals().is_some() {
        capabilities = capabilities.load_session(true).session_capabilities(
            wire::SessionCapabilities::new()
                .list(wire::SessionListCapabilities::new())
                .resume(wire::SessionResumeCapabilities::new())
                .close(wire::SessionCloseCapabilities::new())
                .delete(wire::SessionDeleteCapabilities::new()),
        );
    }
    wire::InitializeResponse::new(ProtocolVersion::V1)
        .agent_capabilities(capabilities)
        .agent_info(info)
}

/// `authenticate`: always succeeds, local model servers need no account.
pub(crate) async fn authenticate(
    _connection: &Arc<Connection>,
    _request: wire::AuthenticateRequest,
    responder: Responder<wire::AuthenticateResponse>,
    _cx: ConnectionTo<Client>,
) -> Result<(), agent_client_protocol::Error> {
    responder.respond(wire::AuthenticateResponse::new())
}

/// `session/new`, refused beyond the per-connection and the global session caps. The session is
/// created (and counted as this connection's) at once; checking
/// its model asks the server, so the answer comes from a task. Editors expect the answer before
/// anything else about the session, so the tool catalog request and the MCP servers start only
/// after it.
pub(crate) async fn new_session(
    connection: &Arc<Connection>,
    request: wire::NewSessionRequest,
    responder: Responder<wire::NewSessionResponse>,
    cx: ConnectionTo<Client>,
) -> Result<(), agent_client_protocol::Error> {
    let opened = connection.check_room().and_then(|()| {
        let workspace = connection.workspace(&cx, request.cwd)?;
        Ok(connection.agent.open_session(workspace)?)
    });
    let opening = match opened {
        Ok(opening) => opening,
        Err(error) => return responder.respond_with_error(error.into()),
    };
    connection.adopt_session(opening.id());
    // Marked before the answer, so the session's first prompt waits for these tools.
    let discovery = connection
        .discovery_advertised()
        .then(|| opening.session().loading_tools());
    let mcp_servers = convert::mcp_servers(request.mcp_servers);
    let mcp = (!mcp_servers.is_empty()).then(|| opening.session().loading_tools());
    let editor = connection.editor(&cx, opening.id());
    let events = connection.events(cx.clone());
    let connection = connection.clone();
    tokio::spawn(async move {
        let agent = &connection.agent;
        let id = opening.id().to_owned();
        let session = match agent.finish_opening(opening).await {
            Ok(session) => session,
            Err(error) => {
                connection.forget_session(&id);
                return answer(responder, Err(error.into()));
            }
        };
        let options = models::config_options(agent, &session).await;
        models::follow_mode(agent.clone(), cx, &session);
        answer(
            responder,
            Ok(wire::NewSessionResponse::new(id)
                .config_options(options)
                .modes(modes::mode_state(&session))),
        );
        // Right after the answer: the editor's command menu.
        agent
            .announce_commands(&session, events.as_ref(), true)
            .await;
        if let Some(loading) = discovery {
            let (available, extra) = (agent.toolset(), agent.extra_tools().to_vec());
            tokio::spawn(discovery::discover(
                editor,
                session.clone(),
                loading,
                available,
                extra,
            ));
        }
        if let Some(loading) = mcp {
            tokio::spawn(connect_mcp(session, mcp_servers, loading));
        }
    });
    Ok(())
}

/// `session/prompt`. The session is claimed (and its cancellation armed) here, so a
/// `session/cancel` right behind the prompt is never lost; the turn itself runs on a task.
pub(crate) async fn prompt(
    connection: &Arc<Connection>,
    request: wire::PromptRequest,
    responder: Responder<wire::PromptResponse>,
    cx: ConnectionTo<Client>,
) -> Result<(), agent_client_protocol::Error> {
    let agent = connection.agent.clone();
    let started = connection
        .session(&request.session_id.0)
        .and_then(|session| agent.start_prompt(session, convert::prompt(&request.prompt)));
    let pending = match started {
        Ok(pending) => pending,
        Err(error) => return responder.respond_with_error(RequestError::from(error).into()),
    };
    let events = connection.events(cx);
    tokio::spawn(async move {
        let result = pending.run(&agent, events).await;
        let response = result
            .map(|stop| wire::PromptResponse::new(convert::stop_reason(stop)))
            .map_err(RequestError::from);
        answer(responder, response);
    });
    Ok(())
}

/// `session/cancel` (a notification, so nothing is answered): cancels the session's running
/// turn, if any.
pub(crate) async fn cancel(
    connection: &Arc<Connection>,
    notification: wire::CancelNotification,
    _cx: ConnectionTo<Client>,
) -> Result<(), agent_client_protocol::Error> {
    match connection.session(&notification.session_id.0) {
        Ok(session) => {
            if session.cancel() {
                tracing::info!(session = session.id(), "turn cancelled");
            }
        }
        Err(error) => tracing::warn!(%error, "session/cancel for an unknown session"),
    }
    Ok(())
}

/// Every request no typed handler took: the legacy `session/set_model`, or a method Punie does
/// not have.
pub(crate) async fn untyped(
    connection: &Arc<Connection>,
    request: UntypedMessage,
    responder: Responder<serde_json::Value>,
    _cx: ConnectionTo<Client>,
) -> Result<(), agent_client_protocol::Error> {
    let (method, params) = request.into_parts();
    if method != models::LEGACY_SET_MODEL {
        return responder.respond_with_error(RequestError::UnknownMethod(method).into());
    }
    models::set_model_legacy(connection, params, responder);
    Ok(())
}
