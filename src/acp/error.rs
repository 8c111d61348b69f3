//! The errors of the ACP layer: what ends a connection, and what a request is answered with,
//! turned into a JSON-RPC error object in exactly one place.

use agent_client_protocol::v1::Responder;
use agent_client_protocol::v1::schema as wire;
use agent_client_protocol::{ErrorCode, JsonRpcResponse};

use crate::agent::AgentError;

/// The JSON-RPC code of a prompt that cannot fit the model's context window even after
/// compaction (`AgentError::ContextTooSmall`): Punie's own, in the range JSON-RPC leaves to
/// servers, so an editor can tell "load the model with a larger window" from a failure.
pub(crate) const CONTEXT_TOO_SMALL: ErrorCode = ErrorCode::new(-32010);

/// What can end an ACP connection abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcpError {
    /// The transport failed or the protocol engine stopped with an error.
    #[error("ACP connection failed: {0}")]
    Connection(String),
}

/// Why a request from the editor is refused. Its text is the JSON-RPC error's `message`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    /// Parameters Punie cannot act on.
    #[error("{0}")]
    InvalidParams(String),
    /// A method Punie does not implement (the method's name).
    #[error("Method not found: {0}")]
    UnknownMethod(String),
    /// `session/new` on a connection that already has as many sessions as one may have.
    #[error(
        "this connection already has {max} sessions open, the most one connection may have: open a new connection for more (a connection's sessions close when it ends), or start Punie with a higher --max-sessions-per-connection"
    )]
    TooManySessions {
        /// The per-connection limit.
        max: usize,
    },
    /// `_punie/perf_report` while nothing records timings: the method is as good as absent.
    #[error("perf is off: start punie with --perf or PUNIE_PERF=1")]
    PerfOff,
    /// The agent refused or failed.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// An inbound line that is not UTF-8 (`at`: the offset of the first bad byte).
    #[error(
        "Parse error: the line is not UTF-8 (invalid byte at offset {at} of {bytes}); \
         ACP messages are UTF-8 JSON, one per line"
    )]
    NotUtf8 { at: usize, bytes: usize },
    /// An inbound line too long to repeat whole that is not JSON.
    #[error("Parse error: {reason} (the line has {bytes} bytes)")]
    NotJson {
        reason: String,
        start: String,
        bytes: usize,
    },
    /// An inbound line longer than the limit; the rest of it is discarded.
    #[error(
        "message too long: more than {limit} bytes without a newline (at most {limit} bytes per \
         message); the rest of that line was discarded"
    )]
    LineTooLong { limit: usize },
    /// A JSON-RPC message that is not a valid request (what is wrong with it).
    #[error("Invalid request: {0}")]
    InvalidMessage(String),
}

impl From<RequestError> for agent_client_protocol::Error {
    /// The one place a JSON-RPC error is built for the editor. Editors show `message`; `data`
    /// repeats it for those that show only `data`, and for an unknown session it carries the
    /// `sessionId` the protocol defines.
    fn from(error: RequestError) -> Self {
        let message = error.to_string();
        let text = || Some(serde_json::Value::String(message.clone()));
        let (code, data) = match &error {
            RequestError::InvalidParams(_)
            | RequestError::Agent(
                AgentError::UnknownModel { .. }
                | AgentError::InvalidModel(_)
                | AgentError::Image(_)
                | AgentError::ModelCannotSee { .. },
            ) => (ErrorCode::INVALID_PARAMS, text()),
            RequestError::UnknownMethod(method) => {
                (ErrorCode::METHOD_NOT_FOUND, Some(method.clone().into()))
            }
            RequestError::PerfOff => (ErrorCode::METHOD_NOT_FOUND, None),
            RequestError::Agent(AgentError::UnknownSession(id)) => {
                let not_found = wire::Error::session_not_found(id.clone());
                (not_found.code.into(), not_found.data)
            }
            RequestError::Agent(
                AgentError::Busy(_)
                | AgentError::TooManySessions { .. }
                | AgentError::SessionOpen(_)
                | AgentError::SessionOpenHere(_)
                | AgentError::Journal(_),
            )
            | RequestError::TooManySessions { .. }
            | RequestError::InvalidMessage(_) => (ErrorCode::INVALID_REQUEST, text()),
            RequestError::NotUtf8 { .. } => (ErrorCode::PARSE_ERROR, text()),
            RequestError::NotJson { start, bytes, .. } => (
                ErrorCode::PARSE_ERROR,
                Some(serde_json::json!({ "line": start, "lineBytes": bytes, "truncated": true })),
            ),
            RequestError::LineTooLong { limit } => (
                ErrorCode::INVALID_REQUEST,
                Some(serde_json::json!({ "limit": limit, "reason": message })),
            ),
            RequestError::Agent(AgentError::ContextTooSmall { needed, window }) => (
                CONTEXT_TOO_SMALL,
                Some(serde_json::json!({
                    "window": window,
                    "needed": needed,
                    "suggestedContext": AgentError::suggested_context(*needed),
                    "fix": message,
                })),
            ),
            RequestError::Agent(_) => (ErrorCode::INTERNAL_ERROR, text()),
        };
        agent_client_protocol::Error::new(code, message).data(data)
    }
}

/// Sends a handler's answer, a refusal going through the conversion above. Failing to send only
/// means the editor has gone away, so that is logged, not returned.
pub(crate) fn answer<T: JsonRpcResponse>(responder: Responder<T>, result: Result<T, RequestError>) {
    let method = responder.method().to_owned();
    if let Err(error) = responder.respond_with_result(result.map_err(Into::into)) {
        tracing::debug!(%error, "could not answer {method}");
    }
}

/// A whole JSON-RPC error response for an inbound line Punie answers itself. `id` is the
/// request's id as JSON text (already checked to be a string or an integer), `None` for `null`.
pub(crate) fn error_frame(id: Option<&str>, error: RequestError) -> String {
    let error = agent_client_protocol::Error::from(error);
    let error = serde_json::to_string(&error)
        .unwrap_or_else(|_| r#"{"code":-32603,"message":"Internal error"}"#.to_owned());
    format!(
        r#"{{"jsonrpc":"2.0","id":{},"error":{error}}}"#,
        id.unwrap_or("null")
    )
}

/// How much of an outgoing error's `message` and `data` is kept (bytes): errors may quote the
/// request (a method name, a serde message), and an editor should not get 20 MB back.
pub(crate) const ERROR_TEXT_LIMIT: usize = 1024;

/// `frame` with its error's `message` and `data` cut to [`ERROR_TEXT_LIMIT`] when `frame` is a
/// big error response; `None` when it needs no change.
pub(crate) fn bounded_error_frame(frame: &str) -> Option<String> {
    if frame.len() <= 4 * ERROR_TEXT_LIMIT {
        return None;
    }
    let mut value: serde_json::Value = serde_json::from_str(frame).ok()?;
    let error = value.get_mut("error")?.as_object_mut()?;
    let cut = |text: &str| {
        let mut end = ERROR_TEXT_LIMIT.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes in all)", &text[..end], text.len())
    };
    if let Some(serde_json::Value::String(message)) = error.get_mut("message")
        && message.len() > ERROR_TEXT_LIMIT
    {
        *message = cut(message);
    }
    if let Some(data) = error.get_mut("data") {
        let text = match &*data {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        if text.len() > ERROR_TEXT_LIMIT {
            *data = serde_json::json!({ "truncated": cut(&text), "bytes": text.len() });
        }
    }
    Some(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::LlmError;

    fn wire(error: impl Into<RequestError>) -> serde_json::Value {
        serde_json::to_value(agent_client_protocol::Error::from(error.into())).unwrap()
    }

    #[test]
    fn each_refusal_keeps_its_code_message_and_data() {
        let bad = wire(RequestError::InvalidParams("cwd must be absolute".into()));
        assert_eq!(
            bad,
            serde_json::json!({"code": -32602, "message": "cwd must be absolute", "data": "cwd must be absolute"})
        );
        let unknown = wire(RequestError::UnknownMethod("no/such".into()));
        assert_eq!(
            unknown,
            serde_json::json!({"code": -32601, "message": "Method not found: no/such", "data": "no/such"})
        );
        let off = wire(RequestError::PerfOff);
        assert_eq!(
            off,
            serde_json::json!({"code": -32601, "message": "perf is off: start punie with --perf or PUNIE_PERF=1"})
        );
    }

    #[test]
    fn agent_errors_map_by_kind() {
        let missing = wire(AgentError::UnknownSession("sess_x".into()));
        assert_eq!(missing["code"], -32002);
        assert_eq!(missing["data"], serde_json::json!({"sessionId": "sess_x"}));
        assert!(missing["message"].as_str().unwrap().contains("sess_x"));

        let busy = wire(AgentError::Busy("sess_x".into()));
        assert_eq!(busy["code"], -32600);
        assert_eq!(busy["data"], busy["message"]);

        let model = wire(AgentError::UnknownModel {
            model: "big".into(),
            available: vec!["small".into()],
        });
        assert_eq!(model["code"], -32602);
        assert_eq!(model["data"], model["message"]);

        let refused = wire(AgentError::InvalidModel(LlmError::UnknownModel {
            url: "http://localhost:1/v1".into(),
            model: "typo".into(),
            available: vec!["real".into()],
        }));
        assert_eq!(refused["code"], -32602);
        assert!(refused["message"].as_str().unwrap().contains("typo"));

        let failed = wire(AgentError::Model(LlmError::Backend {
            message: "down".into(),
        }));
        assert_eq!(failed["code"], -32603);
        assert_eq!(failed["data"], failed["message"]);
    }

    #[test]
    fn a_window_too_small_has_its_own_code_and_the_numbers_in_data() {
        let small = wire(AgentError::ContextTooSmall {
            needed: 2310,
            window: 2048,
        });
        assert_eq!(small["code"], -32010);
        let message = small["message"].as_str().unwrap();
        assert!(
            message.contains("2,048 tokens") && message.contains("-c 8192"),
            "{message}"
        );
        assert_eq!(
            small["data"],
            serde_json::json!({
                "window": 2048,
                "needed": 2310,
                "suggestedContext": 8192,
                "fix": message,
            })
        );
    }

    #[test]
    fn big_error_replies_are_cut_small_ones_kept() {
        let method = "m".repeat(100_000);
        let frame = format!(
            r#"{{"jsonrpc":"2.0","id":1,"error":{}}}"#,
            serde_json::to_string(&agent_client_protocol::Error::from(
                RequestError::UnknownMethod(method)
            ))
            .unwrap()
        );
        let cut = bounded_error_frame(&frame).unwrap();
        assert!(cut.len() < 4 * ERROR_TEXT_LIMIT, "{}", cut.len());
        let value: serde_json::Value = serde_json::from_str(&cut).unwrap();
        assert_eq!(value["id"], 1);
        assert_eq!(value["error"]["code"], -32601);
        assert!(
            value["error"]["message"]
                .as_str()
                .unwrap()
                .contains("100018 bytes")
        );
        assert_eq!(value["error"]["data"]["bytes"], 100_000);
        assert!(bounded_error_frame(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#).is_none());
    }
}
