//! The OpenAI chat-completions wire format as local servers really speak it: the request body
//! we send, and lenient types for what comes back.
//!
//! Every incoming field is optional and unknown fields are ignored, because each server adds or
//! leaves out something: llama.cpp's `timings`, `reasoning_content` vs `reasoning`, tool-call
//! deltas without `index` or `id`, arguments sent as a JSON object, a usage chunk with
//! `choices: []`, and at least five shapes of error body.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::assemble::ToolCallDelta;
use super::error::is_context_overflow_message;
use super::{ChatRequest, Message, PromptProgress, ServerTimings, ToolCall, Usage};

/// The body of `POST /chat/completions` for `request`, streaming, with usage reporting.
pub(crate) fn request_body(model: &str, request: &ChatRequest) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert(
        "messages".into(),
        Value::Array(messages_json(&request.messages)),
    );
    if !request.tools.is_empty() {
        let tools = request
            .tools
            .iter()
            .map(|tool| {
                json!({
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    }
                })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(temperature) = request.temperature {
        // Through f64's shortest representation of the f32, so 0.2 goes out as 0.2, not
        // 0.20000000298023224.
        let temperature: f64 = temperature
            .to_string()
            .parse()
            .unwrap_or(f64::from(temperature));
        body.insert("temperature".into(), json!(temperature));
    }
    if let Some(max_tokens) = request.max_tokens {
        body.insert("max_tokens".into(), json!(max_tokens));
    }
    body.insert("stream".into(), json!(true));
    body.insert("stream_options".into(), json!({ "include_usage": true }));
    Value::Object(body)
}

/// Asks for llama.cpp's prompt progress in `body` (a [`request_body`]): chunks with
/// `prompt_progress` while a long prompt is read. Only for llama.cpp: other servers may refuse
/// a field they do not know (OpenAI's API does).
pub(crate) fn ask_for_progress(body: &mut Value) {
    if let Some(body) = body.as_object_mut() {
        body.insert("return_progress".into(), json!(true));
    }
}

/// Whether a `GET /models` answer comes from llama.cpp's server (`owned_by: "llamacpp"`).
pub(crate) fn lists_llama_cpp(models: &Value) -> bool {
    models
        .get("data")
        .and_then(Value::as_array)
        .is_some_and(|data| {
            data.iter()
                .any(|model| model.get("owned_by").and_then(Value::as_str) == Some("llamacpp"))
        })
}

const TOOL_IMAGES_INTRO: &str = "The images the tool calls above returned:";

/// The messages as sent. [`Message::Images`] become `image_url` parts: joined to the user
/// message before them, else (after tool results, which most servers take as text only) a
/// user message of their own.
fn messages_json(messages: &[Message]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(messages.len());
    for message in messages {
        let Message::Images { images } = message else {
            out.push(message_json(message));
            continue;
        };
        if images.is_empty() {
            continue;
        }
        let parts = images.iter().map(image_part);
        match out.last_mut() {
            Some(last) if last["role"] == "user" => {
                let content = &mut last["content"];
                if let Value::String(text) = content {
                    *content = json!([{ "type": "text", "text": std::mem::take(text) }]);
                }
                if let Value::Array(existing) = content {
                    existing.extend(parts);
                }
            }
            _ => {
                let intro = json!({ "type": "text", "text": TOOL_IMAGES_INTRO });
                let content: Vec<Value> = std::iter::once(intro).chain(parts).collect();
                out.push(json!({ "role": "user", "content": content }));
            }
        }
    }
    out
}

/// An `image_url` content part with the image as a `data:` URL.
fn image_part(image: &crate::image::Image) -> Value {
    json!({ "type": "image_url", "image_url": { "url": image.data_url() } })
}

fn message_json(message: &Message) -> Value {
    match message {
        // Joined to their neighbours by `messages_json`; alone, a user message of image parts.
        Message::Images { images } => json!({
            "role": "user",
            "content": images.iter().map(image_part).collect::<Vec<_>>(),
        }),
        Message::System { content } => json!({ "role": "system", "content": content }),
        Message::User { content } => json!({ "role": "user", "content": content }),
        Message::Assistant {
            content,
            tool_calls,
        } => {
            let content = content.as_deref().filter(|text| !text.is_empty());
            if tool_calls.is_empty() {
                // Some servers reject a null content when there is nothing else in the message.
                json!({ "role": "assistant", "content": content.unwrap_or("") })
            } else {
                json!({
                    "role": "assistant",
                    "content": content,
                    "tool_calls": tool_calls.iter().map(tool_call_json).collect::<Vec<_>>(),
                })
            }
        }
        Message::Tool {
            tool_call_id,
            content,
        } => json!({ "role": "tool", "tool_call_id": tool_call_id, "content": content }),
    }
}

fn tool_call_json(call: &ToolCall) -> Value {
    json!({
        "id": call.id,
        "type": "function",
        "function": { "name": call.name, "arguments": history_arguments(&call.arguments) },
    })
}

/// Arguments of a past call as sent back in the history. llama.cpp (and vLLM with some chat
/// templates) parse them to render the template and fail the whole request with a 500 when they
/// are not JSON — which happens when `max_tokens` cut a call. Invalid text is wrapped in a JSON
/// object so the conversation can go on and the model still sees what it wrote.
fn history_arguments(arguments: &str) -> String {
    let trimmed = arguments.trim();
    if trimmed.is_empty() {
        return "{}".to_owned();
    }
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(_)) => arguments.to_owned(),
        _ => json!({ "invalid_arguments": arguments }).to_string(),
    }
}

/// One `chat.completion.chunk` (or, from a server that ignored `stream: true`, a whole
/// `chat.completion`: its `message` is read like a delta).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ChunkWire {
    #[serde(deserialize_with = "null_as_default")]
    pub choices: Vec<ChoiceWire>,
    pub usage: Option<UsageWire>,
    /// llama.cpp's own measure of the request, on its last event.
    pub timings: Option<TimingsWire>,
    /// llama.cpp's progress through the prompt (asked with `return_progress`).
    pub prompt_progress: Option<ProgressWire>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ChoiceWire {
    pub index: Option<u64>,
    pub delta: Option<DeltaWire>,
    pub message: Option<DeltaWire>,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct DeltaWire {
    #[serde(deserialize_with = "lenient_text")]
    pub content: Option<String>,
    #[serde(deserialize_with = "lenient_text")]
    pub reasoning_content: Option<String>,
    #[serde(deserialize_with = "lenient_text")]
    pub reasoning: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub tool_calls: Vec<ToolCallWire>,
}

impl DeltaWire {
    /// The thought in this delta. vLLM has sent the same text under both names; take one.
    pub fn thought(&self) -> Option<&str> {
        self.reasoning_content
            .as_deref()
            .filter(|text| !text.is_empty())
            .or_else(|| self.reasoning.as_deref().filter(|text| !text.is_empty()))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ToolCallWire {
    pub index: Option<u64>,
    #[serde(deserialize_with = "lenient_id")]
    pub id: Option<String>,
    pub function: Option<FunctionWire>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct FunctionWire {
    pub name: Option<String>,
    pub arguments: Option<Value>,
}

impl ToolCallWire {
    /// The delta in the assembler's terms: arguments sent as a JSON object (Ollama's native
    /// habit, seen through some proxies) become their JSON text.
    pub fn into_delta(self) -> ToolCallDelta {
        let function = self.function.unwrap_or_default();
        let arguments = match function.arguments {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text),
            Some(other) => Some(other.to_string()),
        };
        ToolCallDelta {
            index: self.index,
            id: self.id.filter(|id| !id.is_empty()),
            name: function.name.filter(|name| !name.is_empty()),
            arguments,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct UsageWire {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub prompt_tokens_details: Option<PromptDetailsWire>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PromptDetailsWire {
    pub cached_tokens: Option<u64>,
}

impl From<UsageWire> for Usage {
    fn from(wire: UsageWire) -> Self {
        Usage {
            prompt_tokens: wire.prompt_tokens.unwrap_or(0),
            completion_tokens: wire.completion_tokens.unwrap_or(0),
            cached_tokens: wire.prompt_tokens_details.and_then(|d| d.cached_tokens),
            timings: None,
        }
    }
}

/// llama.cpp's `timings`: counts, and times in milliseconds (fractions of one).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TimingsWire {
    pub prompt_n: Option<u64>,
    pub cache_n: Option<u64>,
    pub prompt_ms: Option<f64>,
    pub predicted_n: Option<u64>,
    pub predicted_ms: Option<f64>,
}

/// Milliseconds as a duration; nonsense (negative, NaN, endless) is none.
fn millis(ms: Option<f64>) -> std::time::Duration {
    ms.filter(|ms| ms.is_finite() && *ms >= 0.0)
        .and_then(|ms| std::time::Duration::try_from_secs_f64(ms / 1000.0).ok())
        .unwrap_or_default()
}

impl TimingsWire {
    /// The timings, when they say anything about the prompt or the answer.
    pub fn into_timings(self) -> Option<ServerTimings> {
        if self.prompt_n.is_none() && self.cache_n.is_none() && self.predicted_n.is_none() {
            return None;
        }
        Some(ServerTimings {
            prompt_read: self.prompt_n.unwrap_or(0),
            prompt_cached: self.cache_n.unwrap_or(0),
            prompt_time: millis(self.prompt_ms),
            generated: self.predicted_n.unwrap_or(0),
            generation_time: millis(self.predicted_ms),
        })
    }
}

/// llama.cpp's `prompt_progress`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ProgressWire {
    pub total: Option<u64>,
    pub cache: Option<u64>,
    pub processed: Option<u64>,
    pub time_ms: Option<f64>,
}

impl ProgressWire {
    /// The progress, when it has a total.
    pub fn into_progress(self) -> Option<PromptProgress> {
        let total = self.total.filter(|total| *total > 0)?;
        Some(PromptProgress {
            total,
            cached: self.cache.unwrap_or(0).min(total),
            processed: self.processed.unwrap_or(0).min(total),
            elapsed: millis(self.time_ms),
        })
    }
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Text that may come as a string, null, or (from a few servers) an array of content parts.
fn lenient_text<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(match Value::deserialize(deserializer)? {
        Value::String(text) => Some(text),
        Value::Array(parts) => {
            let text: String = parts
                .iter()
                .filter_map(|part| match part {
                    Value::String(text) => Some(text.as_str()),
                    other => other.get("text").and_then(Value::as_str),
                })
                .collect();
            Some(text)
        }
        _ => None,
    })
}

/// A tool-call id as a string, whether the server sent a string or a number.
fn lenient_id<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(match Value::deserialize(deserializer)? {
        Value::String(id) => Some(id),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    })
}

/// The error carried by a JSON value, if it is an error body (or an error event) of any of the
/// shapes servers use; `None` for anything that is not one.
///
/// - `{"error":{"code":400,"message":"…","type":"…"}}` — llama.cpp, vLLM
/// - `{"error":{"message":"…","type":"…","param":…,"code":…}}` — OpenAI, Ollama, LM Studio
/// - `{"error":"text"}` — mlx_lm.server, LM Studio's unknown endpoints
/// - `{"object":"error","message":"…"}` — older vLLM
/// - `{"detail":"…"}` or `{"detail":[{"loc":[…],"msg":"…"}]}` — FastAPI-based servers
/// - `{"code":500,"message":"…","type":"…"}` — llama.cpp's in-stream `error:` event payload
pub(crate) fn error_in_value(value: &Value) -> Option<String> {
    let object = value.as_object()?;
    if let Some(error) = object.get("error").filter(|error| !error.is_null()) {
        return Some(match error {
            Value::String(text) => text.clone(),
            Value::Object(fields) => match fields.get("message") {
                Some(Value::String(message)) => with_overflow_code(message, fields),
                _ => error.to_string(),
            },
            other => other.to_string(),
        });
    }
    if let Some(detail) = object.get("detail").filter(|detail| !detail.is_null()) {
        return Some(match detail {
            Value::String(text) => text.clone(),
            Value::Array(items) => items
                .iter()
                .map(|item| {
                    let message = item
                        .get("msg")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .unwrap_or_else(|| item.to_string());
                    match item.get("loc").and_then(Value::as_array) {
                        Some(loc) => {
                            let path: Vec<String> = loc
                                .iter()
                                .map(|part| match part {
                                    Value::String(text) => text.clone(),
                                    other => other.to_string(),
                                })
                                .collect();
                            format!("{}: {message}", path.join("."))
                        }
                        None => message,
                    }
                })
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        });
    }
    let is_chunk = object.contains_key("choices");
    match object.get("message") {
        Some(Value::String(message)) if !is_chunk => Some(with_overflow_code(message, object)),
        _ => None,
    }
}

/// `message`, followed by the error's code when that code says the context window overflowed
/// and the words do not (so [`LlmError::is_context_overflow`](super::LlmError) can tell).
fn with_overflow_code(message: &str, fields: &Map<String, Value>) -> String {
    let code = ["code", "type"]
        .iter()
        .filter_map(|key| fields.get(*key).and_then(Value::as_str))
        .find(|code| {
            matches!(
                *code,
                "context_length_exceeded" | "exceed_context_size_error"
            )
        });
    match code {
        Some(code) if !is_context_overflow_message(message) => {
            format!("{message} ({code})")
        }
        _ => message.to_owned(),
    }
}

/// The message to show for an error response body: the error of whichever shape the body has,
/// else the body itself when it is short text (an HTML error page is summed up by its size).
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return Some(error_in_value(&value).unwrap_or_else(|| value.to_string()))
            .map(|message| shorten(&message));
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        None
    } else if text.starts_with('<') {
        Some(format!("an HTML page of {} bytes", body.len()))
    } else {
        Some(shorten(text))
    }
}

/// Error messages end up in one line of an editor's UI; some servers put a whole prompt in them.
fn shorten(text: &str) -> String {
    const MAX_CHARS: usize = 1000;
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The model ids in a `GET /models` answer: OpenAI's `data[].id`, or the `models[].name` list
/// that llama.cpp and Ollama-style servers also send.
pub(crate) fn model_ids(value: &Value) -> Option<Vec<String>> {
    if let Some(data) = value.get("data").and_then(Value::as_array) {
        return Some(
            data.iter()
                .filter_map(|model| model.get("id").and_then(Value::as_str))
                .map(str::to_owned)
                .collect(),
        );
    }
    let models = value.get("models").and_then(Value::as_array)?;
    Some(
        models
            .iter()
            .filter_map(|model| {
                model
                    .get("name")
                    .or_else(|| model.get("model"))
                    .and_then(Value::as_str)
            })
            .map(str::to_owned)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ToolSpec;

    fn http_body(fixture: &str) -> &str {
        fixture.split_once("\r\n\r\n").expect("http fixture").1
    }

    #[test]
    fn error_bodies_of_every_shape() {
        let cases: &[(&str, &str)] = &[
            // llama.cpp, recorded
            (
                http_body(include_str!(
                    "../../tests/fixtures/llama.cpp/63_err_context_overflow_stream.http"
                )),
                "request (5030 tokens) exceeds the available context size (4096 tokens), try increasing it",
            ),
            (
                http_body(include_str!(
                    "../../tests/fixtures/llama.cpp/70_err_unknown_endpoint.http"
                )),
                "File Not Found",
            ),
            // vLLM
            (
                r#"{"error":{"message":"The model `qwen` does not exist.","type":"NotFoundError","param":null,"code":404}}"#,
                "The model `qwen` does not exist.",
            ),
            // older vLLM
            (
                r#"{"object":"error","message":"This model's maximum context length is 4096 tokens.","type":"BadRequestError","param":null,"code":400}"#,
                "This model's maximum context length is 4096 tokens.",
            ),
            // mlx_lm.server
            (r#"{"error": "Model not found"}"#, "Model not found"),
            // Ollama
            (
                r#"{"error":{"message":"model \"qwen3:8b\" not found, try pulling it first","type":"api_error","param":null,"code":null}}"#,
                "model \"qwen3:8b\" not found, try pulling it first",
            ),
            // LM Studio
            (
                r#"{"error":{"message":"Model unloaded.","type":"invalid_request_error","param":"model","code":"model_not_found"}}"#,
                "Model unloaded.",
            ),
            (
                r#"{"error":"Unexpected endpoint or method. (GET /v1/nope). Returning 200 anyway"}"#,
                "Unexpected endpoint or method. (GET /v1/nope). Returning 200 anyway",
            ),
            // FastAPI
            (r#"{"detail":"Not Found"}"#, "Not Found"),
            (
                r#"{"detail":[{"loc":["body","messages"],"msg":"field required","type":"value_error.missing"}]}"#,
                "body.messages: field required",
            ),
            (r#"{"message":"Unauthorized"}"#, "Unauthorized"),
            // an error object without a message keeps all it has
            (r#"{"error":{"code":503}}"#, r#"{"code":503}"#),
            // not JSON
            ("Internal Server Error\n", "Internal Server Error"),
        ];
        for (body, expected) in cases {
            assert_eq!(
                error_message(body.as_bytes()).as_deref(),
                Some(*expected),
                "{body}"
            );
        }
        assert_eq!(error_message(b"  "), None);
        assert_eq!(
            error_message(b"<html><body>502 Bad Gateway</body></html>").as_deref(),
            Some("an HTML page of 41 bytes")
        );
        assert!(
            error_message("x".repeat(5000).as_bytes())
                .unwrap()
                .chars()
                .count()
                < 1100
        );
    }

    #[test]
    fn chunks_are_not_errors() {
        let chunk: Value = serde_json::from_str(
            r#"{"choices":[{"index":0,"delta":{"content":"hi"}}],"message":"odd but harmless"}"#,
        )
        .unwrap();
        assert_eq!(error_in_value(&chunk), None);
        assert_eq!(error_in_value(&json!({"error": null, "choices": []})), None);
        assert_eq!(error_in_value(&json!("text")), None);
    }

    #[test]
    fn llama_cpp_in_stream_error_payloads() {
        // old builds: `error: {...}` line carrying the bare error object
        let bare = json!({"code": 500, "message": "slot unavailable", "type": "server_error"});
        assert_eq!(error_in_value(&bare).as_deref(), Some("slot unavailable"));
        // newer builds: `data: {"error": {...}}`
        let wrapped = json!({"error": {"code": 400, "message": "too long", "type": "exceed_context_size_error"}});
        assert_eq!(
            error_in_value(&wrapped).as_deref(),
            Some("too long (exceed_context_size_error)")
        );
        // OpenAI's code, when the words do not say it.
        let openai = json!({"error": {"message": "Input is too long for this model.", "type": "invalid_request_error", "code": "context_length_exceeded"}});
        assert_eq!(
            error_in_value(&openai).as_deref(),
            Some("Input is too long for this model. (context_length_exceeded)")
        );
        let openai = json!({"error": {"message": "This model's maximum context length is 8192 tokens.", "code": "context_length_exceeded"}});
        assert_eq!(
            error_in_value(&openai).as_deref(),
            Some("This model's maximum context length is 8192 tokens.")
        );
    }

    #[test]
    fn lenient_chunks() {
        let chunk: ChunkWire = serde_json::from_str(
            r#"{"choices":null,"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7},"timings":{"x":1}}"#,
        )
        .unwrap();
        assert!(chunk.choices.is_empty());
        assert_eq!(
            Usage::from(chunk.usage.unwrap()),
            Usage {
                prompt_tokens: 3,
                completion_tokens: 4,
                ..Usage::default()
            }
        );
        assert!(chunk.timings.unwrap().into_timings().is_none());

        let chunk: ChunkWire = serde_json::from_str(
            r#"{"choices":[{"delta":{"role":"assistant","content":null,"reasoning":"hmm","tool_calls":[{"id":12345,"function":{"name":"f","arguments":{"a":1}}}]},"finish_reason":null,"logprobs":null}]}"#,
        )
        .unwrap();
        let choice = &chunk.choices[0];
        let delta = choice.delta.as_ref().unwrap();
        assert_eq!(delta.content, None);
        assert_eq!(delta.thought(), Some("hmm"));
        assert_eq!(choice.finish_reason, None);
        let call = chunk
            .choices
            .into_iter()
            .next()
            .unwrap()
            .delta
            .unwrap()
            .tool_calls;
        let delta = call.into_iter().next().unwrap().into_delta();
        assert_eq!(delta.index, None);
        assert_eq!(delta.id.as_deref(), Some("12345"));
        assert_eq!(delta.name.as_deref(), Some("f"));
        assert_eq!(delta.arguments.as_deref(), Some(r#"{"a":1}"#));

        let both: DeltaWire =
            serde_json::from_str(r#"{"reasoning_content":"a","reasoning":"a"}"#).unwrap();
        assert_eq!(both.thought(), Some("a"));
        let parts: DeltaWire =
            serde_json::from_str(r#"{"content":[{"type":"text","text":"x"},"y"]}"#).unwrap();
        assert_eq!(parts.content.as_deref(), Some("xy"));
    }

    #[test]
    fn model_lists() {
        let llama = http_body(include_str!(
            "../../tests/fixtures/llama.cpp/01_models.http"
        ));
        let value: Value = serde_json::from_str(llama).unwrap();
        assert_eq!(model_ids(&value), Some(vec!["models/tiny.gguf".to_owned()]));
        let ollama_native = json!({"models": [{"name": "qwen3:8b"}]});
        assert_eq!(model_ids(&ollama_native), Some(vec!["qwen3:8b".to_owned()]));
        assert_eq!(model_ids(&json!({"data": []})), Some(vec![]));
        assert_eq!(model_ids(&json!({"nothing": 1})), None);
    }

    fn read_file_tool() -> ToolSpec {
        ToolSpec {
            name: "read_file".into(),
            description: "Read a file from disk".into(),
            parameters: json!({
                "type": "object",
                "properties": {"path": {"type": "string", "description": "Path of the file"}},
                "required": ["path"]
            }),
        }
    }

    #[test]
    fn request_body_matches_what_llama_cpp_was_sent() {
        let request = ChatRequest {
            messages: vec![
                Message::User {
                    content: "Read src/main.rs".into(),
                },
                Message::Assistant {
                    content: None,
                    tool_calls: vec![ToolCall {
                        id: "call_0".into(),
                        name: "read_file".into(),
                        arguments: r#"{"path": "src/main.rs"}"#.into(),
                    }],
                },
                Message::Tool {
                    tool_call_id: "call_0".into(),
                    content: r#"fn main() { println!("hi"); }"#.into(),
                },
            ],
            tools: vec![read_file_tool()],
            temperature: None,
            max_tokens: Some(40),
        };
        let body = request_body("tiny", &request);
        let mut recorded: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/llama.cpp/50_tool_result_followup_stream.request.json"
        ))
        .unwrap();
        // What the recording added that Punie does not send.
        let recorded_object = recorded.as_object_mut().unwrap();
        recorded_object.remove("seed");
        recorded_object.remove("tool_choice");
        assert_eq!(body, recorded);
    }

    #[test]
    fn request_body_details() {
        let request = ChatRequest {
            messages: vec![
                Message::System {
                    content: "Be brief.".into(),
                },
                Message::User {
                    content: "hi".into(),
                },
                Message::Assistant {
                    content: Some("Hello.".into()),
                    tool_calls: vec![],
                },
                Message::Assistant {
                    content: None,
                    tool_calls: vec![],
                },
                Message::Assistant {
                    content: Some("Let me look.".into()),
                    tool_calls: vec![
                        ToolCall {
                            id: "a".into(),
                            name: "read_file".into(),
                            arguments: r#"{"path"#.into(),
                        },
                        ToolCall {
                            id: "b".into(),
                            name: "list".into(),
                            arguments: String::new(),
                        },
                    ],
                },
            ],
            tools: vec![],
            temperature: Some(0.2),
            max_tokens: None,
        };
        let body = request_body("qwen3:8b", &request);
        assert_eq!(
            body,
            json!({
                "model": "qwen3:8b",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "Hello."},
                    {"role": "assistant", "content": ""},
                    {"role": "assistant", "content": "Let me look.", "tool_calls": [
                        {"id": "a", "type": "function", "function": {
                            "name": "read_file",
                            "arguments": r#"{"invalid_arguments":"{\"path"}"#}},
                        {"id": "b", "type": "function", "function": {"name": "list", "arguments": "{}"}},
                    ]},
                ],
                "temperature": 0.2,
                "stream": true,
                "stream_options": {"include_usage": true},
            })
        );
        assert!(body.get("tools").is_none());
        assert!(body.get("max_tokens").is_none());
    }
}
