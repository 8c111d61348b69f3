//! The check every inbound JSON-RPC line goes through before the ACP crate sees it: lines the
//! crate handles well pass through untouched, the few it mishandles are answered here.
//!
//! What the crate (5.0) gets wrong, seen by driving the binary with `printf`: a non-UTF-8 line
//! ends the connection; a request whose `params` is not structured, whose `jsonrpc` is missing
//! or wrong, whose `method` is missing or not a string, or whose integer id does not fit in an
//! `i64`, is answered `id: null` although the id is readable; a float, boolean, array or object
//! id is answered without saying why; and a long unparsable line is echoed whole in the error.
//! Everything else (including short unparsable lines, batches, notifications and responses) is
//! left to the crate, so its behaviour stays the reference.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::error::RequestError;

/// How much of a refused line (in bytes) an error's `data` repeats.
pub(crate) const ECHO_LIMIT: usize = 1024;

/// What to do with one inbound line.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Hand the line to the ACP crate unchanged. `request_id` is the request's id in canonical
    /// JSON when the line is a request the crate will answer (so shutdown can wait for it).
    Forward {
        line: String,
        request_id: Option<String>,
    },
    /// Answer the line with this error frame (one JSON-RPC response, no newline) and drop it.
    Answer(String),
}

/// Checks one line (without its newline).
pub(crate) fn check_bytes(line: Vec<u8>) -> Verdict {
    match String::from_utf8(line) {
        Ok(text) => check_text(text),
        Err(error) => {
            let at = error.utf8_error().valid_up_to();
            let bytes = error.as_bytes();
            // The id may still be readable with the bad bytes replaced: echo it if so.
            let lossy = String::from_utf8_lossy(bytes);
            let id = serde_json::from_str::<Envelope<'_>>(&lossy)
                .ok()
                .and_then(|envelope| envelope.id.map(IdKind::of))
                .and_then(|kind| kind.echo().map(str::to_owned));
            let refusal = RequestError::NotUtf8 {
                at,
                bytes: bytes.len(),
            };
            Verdict::Answer(super::error::error_frame(id.as_deref(), refusal))
        }
    }
}

/// Checks one line of text (without its newline).
pub(crate) fn check_text(line: String) -> Verdict {
    match refusal(&line) {
        Ok(request_id) => Verdict::Forward { line, request_id },
        Err((id, refusal)) => Verdict::Answer(super::error::error_frame(id.as_deref(), refusal)),
    }
}

/// The fields of a JSON-RPC message, unparsed, borrowed from the line. JSON `null` reads as
/// absent, as it does for the crate.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<&'a RawValue>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

/// What kind of JSON value an id is, judged from its text.
#[derive(Debug, Clone, Copy)]
enum IdKind<'a> {
    /// A string: the crate takes it; echoed as written (unless absurdly long).
    Text(&'a str),
    /// An integer that fits in an `i64`: the crate takes it.
    Integer(&'a str),
    /// An integer beyond `i64`: valid JSON-RPC, refused by the crate; echoed as written.
    BigInteger(&'a str),
    /// A float, boolean, array or object: not a valid JSON-RPC id, so not echoed.
    Invalid(&'static str),
}

impl<'a> IdKind<'a> {
    fn of(raw: &'a RawValue) -> Self {
        let text = raw.get().trim();
        match text.as_bytes().first() {
            Some(b'"') => Self::Text(text),
            Some(b'-' | b'0'..=b'9') => {
                let digits = text.strip_prefix('-').unwrap_or(text);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    Self::Invalid("fractional or exponent number")
                } else if text.parse::<i64>().is_ok() {
                    Self::Integer(text)
                } else {
                    Self::BigInteger(text)
                }
            }
            Some(b't' | b'f') => Self::Invalid("boolean"),
            Some(b'[') => Self::Invalid("array"),
            _ => Self::Invalid("object"),
        }
    }

    /// The id as it goes into an error reply, if it can go there at all.
    fn echo(self) -> Option<&'a str> {
        match self {
            Self::Text(text) | Self::Integer(text) | Self::BigInteger(text)
                if text.len() <= ECHO_LIMIT =>
            {
                Some(text)
            }
            _ => None,
        }
    }
}

/// The kind of a JSON value from its first character, for error messages.
fn json_kind(raw: &RawValue) -> &'static str {
    match raw.get().trim().as_bytes().first() {
        Some(b'"') => "string",
        Some(b't' | b'f') => "boolean",
        Some(b'[') => "array",
        Some(b'{') => "object",
        _ => "number",
    }
}

/// `Ok(request id to track)` for a line to forward, or the id to echo and the refusal.
#[allow(clippy::type_complexity)]
fn refusal(line: &str) -> Result<Option<String>, (Option<String>, RequestError)> {
    if let Err(error) = serde_json::from_str::<&RawValue>(line) {
        // The crate's own parse error repeats the line: fine for a short one.
        if line.len() <= ECHO_LIMIT {
            return Ok(None);
        }
        let mut cut = ECHO_LIMIT;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        return Err((
            None,
            RequestError::NotJson {
                reason: error.to_string(),
                start: line[..cut].to_owned(),
                bytes: line.len(),
            },
        ));
    }
    // Not an object (a batch, a scalar) or with duplicate keys: the crate answers those well.
    let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(line) else {
        return Ok(None);
    };
    let Some(raw_id) = envelope.id else {
        // A notification (or a request with a null id): no id to echo, the crate's answer
        // (if any) is as good as ours.
        return Ok(None);
    };
    if envelope.method.is_none() && (envelope.result.is_some() || envelope.error.is_some()) {
        // A response to one of our requests: the crate matches it (or drops it).
        return Ok(None);
    }
    let kind = IdKind::of(raw_id);
    let echo = kind.echo().map(str::to_owned);
    let invalid = |why: String| Err((echo.clone(), RequestError::InvalidMessage(why)));
    if let IdKind::Invalid(what) = kind {
        return invalid(format!(
            "the id is a {what}; JSON-RPC ids are strings or integers"
        ));
    }
    let version = envelope
        .jsonrpc
        .and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
    if version.as_deref() != Some("2.0") {
        let got = envelope.jsonrpc.map_or("nothing", |raw| raw.get());
        let got: String = got.chars().take(40).collect();
        return invalid(format!(r#""jsonrpc" must be "2.0", got {got}"#));
    }
    let Some(method) = envelope.method else {
        return invalid(r#"no "method": a request needs a method name"#.to_owned());
    };
    if !method.get().trim_start().starts_with('"') {
        return invalid(format!(
            r#""method" must be a string, got a {}"#,
            json_kind(method)
        ));
    }
    if let Some(params) = envelope.params {
        let structured = matches!(
            params.get().trim_start().as_bytes().first(),
            Some(b'{' | b'[')
        );
        if !structured {
            return invalid(format!(
                r#""params" must be an object or an array, got a {}"#,
                json_kind(params)
            ));
        }
    }
    if let IdKind::BigInteger(text) = kind {
        let shown = echo.as_deref().unwrap_or("(too long to show)");
        return invalid(format!(
            "the id {shown} is out of range ({} digits): integer ids must fit in 64 signed bits \
             (-9223372036854775808 to 9223372036854775807); use a smaller integer or a string",
            text.trim_start_matches('-').len()
        ));
    }
    // The crate answers this request itself; remember its id in the form the crate writes it.
    let canonical = serde_json::from_str::<serde_json::Value>(raw_id.get())
        .ok()
        .map(|id| id.to_string());
    Ok(canonical)
}

/// The id of a response Punie is sending (in canonical JSON), if `frame` is a response.
pub(crate) fn response_id(frame: &str) -> Option<String> {
    let envelope = serde_json::from_str::<Envelope<'_>>(frame).ok()?;
    if envelope.method.is_some() || (envelope.result.is_none() && envelope.error.is_none()) {
        return None;
    }
    let id = serde_json::from_str::<serde_json::Value>(envelope.id?.get()).ok()?;
    Some(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn answer(line: &str) -> Value {
        match check_text(line.to_owned()) {
            Verdict::Answer(frame) => serde_json::from_str(&frame).unwrap(),
            Verdict::Forward { .. } => panic!("forwarded: {line}"),
        }
    }

    fn forwarded(line: &str) -> Option<String> {
        match check_text(line.to_owned()) {
            Verdict::Forward {
                line: out,
                request_id,
            } => {
                assert_eq!(out, line);
                request_id
            }
            Verdict::Answer(frame) => panic!("answered {line}: {frame}"),
        }
    }

    #[test]
    fn what_the_crate_handles_passes_through() {
        let init =
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1}}"#;
        assert_eq!(forwarded(init).as_deref(), Some("1"));
        let text_id = r#"{"jsonrpc":"2.0","id":"\u0041","method":"x","params":[1]}"#;
        assert_eq!(forwarded(text_id).as_deref(), Some(r#""A""#));
        assert_eq!(
            forwarded(r#"{"jsonrpc":"2.0","method":"session/cancel","params":{}}"#),
            None
        );
        assert_eq!(forwarded(r#"{"jsonrpc":"2.0","id":3,"result":{}}"#), None);
        assert_eq!(forwarded("garbage"), None);
        assert_eq!(forwarded("[]"), None);
        assert_eq!(forwarded(""), None);
        assert_eq!(
            forwarded(r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#),
            None
        );
    }

    #[test]
    fn readable_ids_are_echoed() {
        let cases = [
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":"x"}"#,
                json!(1),
            ),
            (
                r#"{"jsonrpc":"2.0","id":"s","method":"m","params":3}"#,
                json!("s"),
            ),
            (r#"{"jsonrpc":"2.0","id":5}"#, json!(5)),
            (r#"{"id":6,"method":"m"}"#, json!(6)),
            (r#"{"jsonrpc":"1.0","id":7,"method":"m"}"#, json!(7)),
            (r#"{"jsonrpc":"2.0","id":8,"method":5}"#, json!(8)),
        ];
        for (line, id) in cases {
            let reply = answer(line);
            assert_eq!(reply["id"], id, "{line}: {reply}");
            assert_eq!(reply["error"]["code"], -32600, "{line}");
        }
        let big = r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"m"}"#;
        match check_text(big.to_owned()) {
            Verdict::Answer(frame) => {
                assert!(
                    frame.contains(r#""id":123456789012345678901234567890"#),
                    "{frame}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_ids_are_null_and_explained() {
        for (id, what) in [("1.5", "fractional"), ("true", "boolean"), ("[1]", "array")] {
            let reply = answer(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#));
            assert_eq!(reply["id"], Value::Null);
            assert!(
                reply["error"]["message"].as_str().unwrap().contains(what),
                "{reply}"
            );
        }
    }

    #[test]
    fn long_garbage_is_answered_briefly() {
        let line = "x".repeat(100_000);
        let reply = answer(&line);
        assert_eq!(reply["error"]["code"], -32700);
        assert_eq!(reply["error"]["data"]["lineBytes"], 100_000);
        assert!(reply.to_string().len() < 2 * ECHO_LIMIT);
    }

    #[test]
    fn non_utf8_gets_a_parse_error_with_the_id_when_readable() {
        let mut line = br#"{"jsonrpc":"2.0","id":4,"method":"m","params":{"t":""#.to_vec();
        line.extend([0xff, b'"', b'}', b'}']);
        let Verdict::Answer(frame) = check_bytes(line) else {
            panic!()
        };
        let reply: Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(reply["id"], 4);
        assert_eq!(reply["error"]["code"], -32700);
        let Verdict::Answer(frame) = check_bytes(vec![0xff]) else {
            panic!()
        };
        let reply: Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(reply["id"], Value::Null);
    }

    #[test]
    fn responses_are_recognised() {
        assert_eq!(
            response_id(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#).as_deref(),
            Some(r#""a""#)
        );
        assert_eq!(
            response_id(r#"{"jsonrpc":"2.0","id":1,"method":"x"}"#),
            None
        );
        assert_eq!(response_id(r#"{"jsonrpc":"2.0","method":"x"}"#), None);
    }
}
