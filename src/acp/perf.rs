//! Punie's perf extension: `_punie/perf_report` (editor → agent) hands the editor the perf
//! report of this agent when it records one (`--perf`).

use std::sync::Arc;

use agent_client_protocol::Client;
use agent_client_protocol::v1::{ConnectionTo, Responder};

use super::connection::Connection;
use super::error::{RequestError, answer};
use crate::agent::TurnObserver;

/// `_punie/perf_report` (editor → agent): the perf report, when the agent records one
/// (`--perf`). Params `{}`, absent, or `{"format": "html" | "json"}`; the answer holds `html`
/// (the standalone page) and/or `json` (the same data), or a -32601 error when perf is off.
#[derive(
    Debug, Clone, serde::Serialize, serde::Deserialize, agent_client_protocol::JsonRpcRequest,
)]
#[request(method = "_punie/perf_report", response = PerfReportResponse)]
pub(crate) struct PerfReportRequest(Option<PerfReportParams>);

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct PerfReportParams {
    #[serde(default)]
    format: Option<String>,
}

#[derive(
    Debug, Clone, serde::Serialize, serde::Deserialize, agent_client_protocol::JsonRpcResponse,
)]
pub(crate) struct PerfReportResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    html: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    json: Option<serde_json::Value>,
}

/// `_punie/perf_report`. Rendering a long recording takes a while, so it happens off the
/// dispatch loop.
pub(crate) async fn perf_report(
    connection: &Arc<Connection>,
    request: PerfReportRequest,
    responder: Responder<PerfReportResponse>,
    _cx: ConnectionTo<Client>,
) -> Result<(), agent_client_protocol::Error> {
    let agent = connection.agent.clone();
    tokio::task::spawn_blocking(move || {
        answer(
            responder,
            report(agent.observer().map(|o| o.as_ref()), request),
        );
    });
    Ok(())
}

fn report(
    observer: Option<&dyn TurnObserver>,
    request: PerfReportRequest,
) -> Result<PerfReportResponse, RequestError> {
    let (html, json) = match request.0.and_then(|p| p.format).as_deref() {
        None => (true, true),
        Some("html") => (true, false),
        Some("json") => (false, true),
        Some(other) => {
            return Err(RequestError::InvalidParams(format!(
                "unknown format {other:?}: use \"html\" or \"json\""
            )));
        }
    };
    let response = PerfReportResponse {
        html: observer.filter(|_| html).and_then(|o| o.report_html()),
        json: observer.filter(|_| json).and_then(|o| o.report_json()),
    };
    if response.html.is_none() && response.json.is_none() {
        return Err(RequestError::PerfOff);
    }
    Ok(response)
}
