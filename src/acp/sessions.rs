//! The handlers of saved sessions: `session/list`, `session/load` (replays the conversation
//! before answering), `session/resume` (the same without the replay), `session/close` and
//! `session/delete`. See `specs/sessions.md`.

use std::sync::Arc;

use agent_client_protocol::v1::schema as wire;
use agent_client_protocol::v1::{ConnectionTo, Responder};
use agent_client_protocol::{Client, JsonRpcResponse};

use super::connection::Connection;
use super::convert;
use super::discovery;
use super::error::{RequestError, answer};
use super::models;
use super::modes;
use crate::agent::{AgentError, EventSink, LoadedSession, TurnEvent, connect_mcp};

/// `session/list`: the saved sessions (of `cwd` when given), newest activity first, a page at
/// a time. The directory is read off the dispatch loop.
pub(crate) async fn list(
    connection: &Arc<Connection>,
    request: wire::ListSessionsRequest,
    responder: Responder<wire::ListSessionsResponse>,
    _cx: ConnectionTo<Client>,
) -> Result<(), agent_client_protocol::Error> {
    let agent = connection.agent.clone();
    tokio::spawn(async move {
        let listed = tokio::task::spawn_blocking(move || {
            agent.saved_sessions(request.cwd.as_deref(), request.cursor.as_deref())
        })
        .await;
        let response = match listed {
            Ok(Ok(page)) => {
                let sessions = page
                    .sessions
                    .into_iter()
                    .map(|s| {
                        wire::SessionInfo::new(s.session, s.cwd)
                            .title(s.title)
                            .updated_at(s.updated_at)
                    })
                    .collect();
                Ok(wire::ListSessionsResponse::new(sessions).next_cursor(page.next_cursor))
            }
            Ok(Err(error)) => Err(RequestError::from(error)),
            Err(error) => Err(RequestError::InvalidMessage(format!(
                "listing the saved sessions failed: {error}"
            ))),
        };
        answer(responder, response);
    });
    Ok(())
}

/// Opens a saved session on this connection: the shared part of load and resume. Returns the
/// session, registered as this connection's, or the error to answer.
fn open(
    connection: &Arc<Connection>,
    cx: &ConnectionTo<Client>,
    id: &str,
    cwd: std::path::PathBuf,
    mcp_servers: Vec<wire::McpServer>,
) -> Result<LoadedSession, RequestError> {
    // Not replayed a second time: the editor has the conversation, and a second copy of the
    // session would fight the first over its journal.
    if connection.session(id).is_ok() {
        return Err(AgentError::SessionOpenHere(id.to_owned()).into());
    }
    connection.check_room()?;
    let workspace = connection.workspace(cx, cwd.clone())?;
    let loaded = connection.agent.load_session(id, &cwd, workspace)?;
    connection.adopt_session(id);
    let session = loaded.session.clone();
    if connection.discovery_advertised() {
        let loading = session.loading_tools();
        let agent = &connection.agent;
        let (available, extra) = (agent.toolset(), agent.extra_tools().to_vec());
        tokio::spawn(discovery::discover(
            connection.editor(cx, id),
            session.clone(),
            loading,
            available,
            extra,
        ));
    }
    let servers = convert::mcp_servers(mcp_servers);
    if !servers.is_empty() {
        let loading = session.loading_tools();
        tokio::spawn(connect_mcp(session, servers, loading));
    }
    Ok(loaded)
}

/// `session/load`: the conversation is replayed as `session/update`s, then answered.
pub(crate) async fn load(
    connection: &Arc<Connection>,
    request: wire::LoadSessionRequest,
    responder: Responder<wire::LoadSessionResponse>,
    cx: ConnectionTo<Client>,
) -> Result<(), agent_client_protocol::Error> {
    let id = request.session_id.0.to_string();
    let loaded = match open(connection, &cx, &id, request.cwd, request.mcp_servers) {
        Ok(loaded) => loaded,
        Err(error) => return responder.respond_with_error(error.into()),
    };
    // Sent before the answer, in order: the editor rebuilds the conversation from these.
    answer_opened(
        connection,
        cx,
        &id,
        loaded,
        Replay::All,
        responder,
        |options, modes| {
            wire::LoadSessionResponse::new()
                .config_options(options)
                .modes(modes)
        },
    );
    Ok(())
}

/// What `session/load` sends of the saved conversation before its answer.
#[derive(Clone, Copy, PartialEq)]
enum Replay {
    /// All of it.
    All,
    /// Only what was wrong with the file (`session/resume`).
    Notices,
}

/// What `session/load` and `session/resume` share once the session is open: the replay, then
/// (from a task: listing models asks the server) the answer with the model and mode pickers,
/// and right after it the editor's command menu.
fn answer_opened<T: JsonRpcResponse + Send + 'static>(
    connection: &Arc<Connection>,
    cx: ConnectionTo<Client>,
    id: &str,
    loaded: LoadedSession,
    replay: Replay,
    responder: Responder<T>,
    response: impl FnOnce(Vec<wire::SessionConfigOption>, wire::SessionModeState) -> T + Send + 'static,
) {
    let events = connection.events(cx.clone());
    for event in loaded.replay {
        if replay == Replay::All || matches!(event, TurnEvent::Notice { .. }) {
            events.emit(id, event);
        }
    }
    let agent = connection.agent.clone();
    let session = loaded.session;
    tokio::spawn(async move {
        let options = models::config_options(&agent, &session).await;
        models::follow_mode(agent.clone(), cx, &session);
        answer(
            responder,
            Ok(response(options, modes::mode_state(&session))),
        );
        agent
            .announce_commands(&session, events.as_ref(), true)
            .await;
    });
}

/// `session/resume`: the saved session continues, nothing is replayed.
pub(crate) async fn resume(
    connection: &Arc<Connection>,
    request: wire::ResumeSessionRequest,
    responder: Responder<wire::ResumeSessionResponse>,
    cx: ConnectionTo<Client>,
) -> Result<(), agent_client_protocol::Error> {
    let id = request.session_id.0.to_string();
    let loaded = match open(connection, &cx, &id, request.cwd, request.mcp_servers) {
        Ok(loaded) => loaded,
        Err(error) => return responder.respond_with_error(error.into()),
    };
    // Nothing of the past is replayed, but what was wrong with the file is said.
    answer_opened(
        connection,
        cx,
        &id,
        loaded,
        Replay::Notices,
        responder,
        |options, modes| {
            wire::ResumeSessionResponse::new()
                .config_options(options)
                .modes(modes)
        },
    );
    Ok(())
}

/// `session/close`: cancels the session's turn, kills its commands, stops its MCP servers and
/// unlocks its journal, which is kept. On a task: releasing terminals asks the editor.
pub(crate) async fn close(
    connection: &Arc<Connection>,
    request: wire::CloseSessionRequest,
    responder: Responder<wire::CloseSessionResponse>,
    _cx: ConnectionTo<Client>,
) -> Result<(), agent_client_protocol::Error> {
    let id = request.session_id.0.to_string();
    if let Err(error) = connection.session(&id) {
        return responder.respond_with_error(RequestError::from(error).into());
    }
    connection.forget_session(&id);
    let agent = connection.agent.clone();
    tokio::spawn(async move {
        agent.close_session(&id).await;
        tracing::info!(session = %id, "session closed");
        answer(responder, Ok(wire::CloseSessionResponse::new()));
    });
    Ok(())
}

/// `session/delete`: removes a saved session; one open on this connection is closed first.
pub(crate) async fn delete(
    connection: &Arc<Connection>,
    request: wire::DeleteSessionRequest,
    responder: Responder<wire::DeleteSessionResponse>,
    _cx: ConnectionTo<Client>,
) -> Result<(), agent_client_protocol::Error> {
    let id = request.session_id.0.to_string();
    let ours = connection.session(&id).is_ok();
    if ours {
        connection.forget_session(&id);
    }
    let agent = connection.agent.clone();
    tokio::spawn(async move {
        if ours {
            agent.close_session(&id).await;
        }
        let deleted = {
            let agent = agent.clone();
            let id = id.clone();
            tokio::task::spawn_blocking(move || agent.delete_saved(&id)).await
        };
        let response = match deleted {
            Ok(Ok(())) => {
                tracing::info!(session = %id, "saved session deleted");
                Ok(wire::DeleteSessionResponse::new())
            }
            Ok(Err(error)) => Err(RequestError::from(error)),
            Err(_) => Err(RequestError::from(AgentError::UnknownSession(id))),
        };
        answer(responder, response);
    });
    Ok(())
}
