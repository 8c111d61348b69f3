//! Session modes on the wire, offered both ways editors use them: `modes` (the mode state) in
//! the answers that open a session with `session/set_mode`, and a session config option of
//! category `mode` (its switch is in `models.rs`, with the other config options). The two stay
//! in sync: every change is announced with both `current_mode_update` and
//! `config_option_update` (see `models::follow_mode`).

use std::sync::Arc;

use agent_client_protocol::Client;
use agent_client_protocol::v1::schema as wire;
use agent_client_protocol::v1::{ConnectionTo, Responder};

use super::connection::Connection;
use super::error::{RequestError, answer};
use crate::agent::{Mode, Session};

/// The id of the session config option that picks the mode.
pub(crate) const MODE_OPTION: &str = "mode";

/// The session's mode and every mode it can switch to, for `session/new`, `load` and `resume`.
pub(crate) fn mode_state(session: &Session) -> wire::SessionModeState {
    let modes = Mode::ALL
        .iter()
        .map(|mode| {
            wire::SessionMode::new(mode.id(), mode.name())
                .description(mode.description().to_owned())
        })
        .collect();
    wire::SessionModeState::new(session.mode().id(), modes)
}

/// The mode picker as a session config option.
pub(crate) fn mode_option(session: &Session) -> wire::SessionConfigOption {
    let choices: Vec<wire::SessionConfigSelectOption> = Mode::ALL
        .iter()
        .map(|mode| {
            wire::SessionConfigSelectOption::new(mode.id(), mode.name())
                .description(mode.description().to_owned())
        })
        .collect();
    wire::SessionConfigOption::select(MODE_OPTION, "Mode", session.mode().id(), choices)
        .description("How much Punie may do without asking".to_owned())
        .category(wire::SessionConfigOptionCategory::Mode)
}

/// The mode a request names, or -32602 naming the modes.
pub(crate) fn parse_mode(id: &str) -> Result<Mode, RequestError> {
    id.parse::<Mode>()
        .map_err(|error| RequestError::InvalidParams(error.to_string()))
}

/// `session/set_mode`: answered at once; the change is announced by the session's follower.
pub(crate) async fn set_mode(
    connection: &Arc<Connection>,
    request: wire::SetSessionModeRequest,
    responder: Responder<wire::SetSessionModeResponse>,
    _cx: ConnectionTo<Client>,
) -> Result<(), agent_client_protocol::Error> {
    let result = connection
        .session(&request.session_id.0)
        .map_err(RequestError::from)
        .and_then(|session| {
            let mode = parse_mode(&request.mode_id.0)?;
            connection.agent.set_session_mode(&session, mode);
            Ok(wire::SetSessionModeResponse::new())
        });
    answer(responder, result);
    Ok(())
}
