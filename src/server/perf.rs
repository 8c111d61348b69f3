//! `GET /perf` (HTML) and `GET /perf.json`: the current perf report, when `--perf` is on.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ServerState;

const PERF_OFF: &str = "perf is off: start punie serve with --perf or PUNIE_PERF=1\n";

/// The report as a standalone HTML page.
pub(super) async fn html(State(state): State<Arc<ServerState>>) -> Response {
    match state
        .agent
        .observer()
        .and_then(|observer| observer.report_html())
    {
        Some(page) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response(),
        None => (StatusCode::NOT_FOUND, PERF_OFF).into_response(),
    }
}

/// The same data as JSON, for scripts.
pub(super) async fn json(State(state): State<Arc<ServerState>>) -> Response {
    match state
        .agent
        .observer()
        .and_then(|observer| observer.report_json())
    {
        Some(report) => axum::Json(report).into_response(),
        None => (StatusCode::NOT_FOUND, PERF_OFF).into_response(),
    }
}
