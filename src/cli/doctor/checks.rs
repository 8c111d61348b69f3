//! The checks, one function each: what to ask the server, and how to read the answer.

use std::time::Duration;

use punie::llm::probe::{RawAnswer, ServerModels, ServerProbe};
use punie::llm::{
    ChatRequest, FinishReason, LlmError, MarkupFilter, Message, ModelEvent, ToolSpec,
};
use serde_json::json;

use super::fixes;
use super::report::{Check, ServerKind, Verdict};

/// Whether anything answers: the model list, and llama.cpp's `/health`.
pub async fn reachable(probe: &ServerProbe) -> (Check, Option<ServerModels>) {
    let base = probe.base_url();
    let models = probe.models().await;
    let health = probe.get("/health").await;
    match models {
        Ok(models) => {
            let detail = match &health {
                Err(LlmError::Status {
                    status: 503,
                    message,
                    ..
                }) => {
                    let check = Check::new(
                        "reachable",
                        Verdict::Warn,
                        format!("{base} answers, but /health says 503: {message}"),
                    )
                    .fixed_by([
                        "wait until the server has loaded the model, then run punie doctor again"
                            .to_owned(),
                    ]);
                    return (check, Some(models));
                }
                Ok(value) if value.get("status").is_some() => format!(
                    "{base} answers (/v1/models lists {}, /health: {})",
                    models.ids().len(),
                    value["status"].as_str().unwrap_or("?")
                ),
                _ => format!("{base} answers (/v1/models lists {})", models.ids().len()),
            };
            (Check::new("reachable", Verdict::Ok, detail), Some(models))
        }
        Err(error @ LlmError::Unreachable { .. }) => {
            let reason = match &error {
                LlmError::Unreachable { reason, .. } => reason.clone(),
                _ => String::new(),
            };
            let check = Check::new(
                "reachable",
                Verdict::Fail,
                format!("cannot connect to {base}: {reason}"),
            )
            .fixed_by(fixes::start_a_server(base));
            (check, None)
        }
        Err(error) => {
            // Something answers, but no model list: Punie can still work if --model names one.
            let loading = matches!(error, LlmError::Status { status: 503, .. });
            let check = Check::new(
                "reachable",
                Verdict::Warn,
                format!("{base} answers, but lists no models: {error}"),
            )
            .fixed_by(loading.then(|| {
                "wait until the server has loaded the model, then run punie doctor again".to_owned()
            }));
            (check, None)
        }
    }
}

/// Which server this is: from what the model list says of its owner, else from the routes it
/// answers.
pub async fn server_kind(
    probe: &ServerProbe,
    models: Option<&ServerModels>,
    id: &str,
) -> ServerKind {
    let owner = models.map(|models| models.owner(id)).unwrap_or_default();
    match owner.as_str() {
        "llamacpp" => return ServerKind::LlamaCpp,
        "library" | "ollama" => return ServerKind::Ollama,
        "organization_owner" => return ServerKind::LmStudio,
        "vllm" => return ServerKind::Vllm,
        _ => {}
    }
    if models
        .and_then(|models| models.entry(id))
        .is_some_and(|entry| entry.get("max_model_len").is_some())
    {
        return ServerKind::Vllm;
    }
    if probe
        .get("/props")
        .await
        .is_ok_and(|props| props.get("default_generation_settings").is_some())
    {
        return ServerKind::LlamaCpp;
    }
    if probe
        .get("/api/version")
        .await
        .is_ok_and(|version| version.get("version").is_some())
    {
        return ServerKind::Ollama;
    }
    if probe.get("/api/v0/models").await.is_ok() {
        return ServerKind::LmStudio;
    }
    ServerKind::Unknown
}

/// The model id to send, and the `--model` value that names it. `None` when there is none.
pub fn model(
    base: &str,
    wanted: Option<&str>,
    entry: Option<&str>,
    models: Option<&ServerModels>,
) -> (Check, Option<String>) {
    let listed = models.map(ServerModels::ids).unwrap_or_default();
    let id = match (wanted, models) {
        (Some(wanted), None) => wanted.to_owned(),
        (Some(wanted), Some(models)) => match models.find(wanted) {
            Some(id) => id.to_owned(),
            None if models.takes_any_name(wanted) || listed.is_empty() => wanted.to_owned(),
            None => {
                let check = Check::new(
                    "model",
                    Verdict::Fail,
                    format!(
                        "the server has no model {wanted:?}; it lists: {}",
                        listed.join(", ")
                    ),
                )
                .fixed_by(
                    listed
                        .iter()
                        .take(5)
                        .map(|id| format!("--model {}", spec_for(base, id))),
                );
                return (check, None);
            }
        },
        (None, _) => match listed.first() {
            Some(first) => first.clone(),
            None => {
                let check = Check::new("model", Verdict::Fail, "the server lists no model")
                    .fixed_by([
                        "load a model (LM Studio: the model picker; Ollama: ollama pull MODEL) \
                         or name one with --model URL/NAME"
                            .to_owned(),
                    ]);
                return (check, None);
            }
        },
    };
    let through = match entry {
        Some(name) => format!(" (config entry {name:?})"),
        None => String::new(),
    };
    if looks_like_a_file(&id) {
        let check = Check::new(
            "model",
            Verdict::Warn,
            format!(
                "{id:?}{through}: llama-server lists the model's file path (started without \
                 --alias); it serves its one model whatever name is sent — use --model {base}"
            ),
        )
        .fixed_by(["give the model a short name: restart llama-server with --alias NAME (then --model URL/NAME)".to_owned()]);
        return (check, Some(id));
    }
    let others = listed.len().saturating_sub(1);
    let also = if others > 0 {
        format!(
            "; {others} other model{} listed",
            if others == 1 { "" } else { "s" }
        )
    } else {
        String::new()
    };
    let check = Check::new(
        "model",
        Verdict::Ok,
        format!(
            "{id:?}{through} — use --model {}, or in config.toml [models.NAME] base_url = {base:?}, model = {id:?}{also}",
            spec_for(base, &id)
        ),
    );
    (check, Some(id))
}

fn spec_for(base: &str, id: &str) -> String {
    format!("{base}/{id}")
}

/// A model id that is a file path, as llama-server lists a model started without `--alias`.
fn looks_like_a_file(id: &str) -> bool {
    id.starts_with('/') || id.to_ascii_lowercase().ends_with(".gguf") || id.contains('\\')
}

/// The tool of the tool-call check.
fn get_time() -> ToolSpec {
    ToolSpec {
        name: "get_time".to_owned(),
        description: "Returns the current time.".to_owned(),
        parameters: json!({
            "type": "object",
            "properties": {"timezone": {"type": "string", "description": "An IANA time zone, e.g. Europe/Paris"}},
        }),
    }
}

/// The one-tool request, answered: how the model calls a tool, and how it thinks.
pub async fn tool_calls(
    probe: &ServerProbe,
    model: &str,
    kind: ServerKind,
    within: Duration,
) -> (Check, Option<Check>, bool) {
    let tools = vec![get_time()];
    let request = ChatRequest {
        messages: vec![
            Message::System {
                content: "You are a helpful assistant. Use the tools you are given.".to_owned(),
            },
            Message::User {
                content: "Call the tool get_time to find out what time it is.".to_owned(),
            },
        ],
        tools: tools.clone(),
        temperature: Some(0.0),
        max_tokens: Some(512),
    };
    match probe.answer(model, &request, within).await {
        Ok(answer) => {
            let (calls, reasoning) = classify(&answer, &tools, kind);
            (calls, Some(reasoning), true)
        }
        Err(error) if error.is_tools_unsupported() => {
            let check = Check::new(
                "tool calls",
                Verdict::Warn,
                format!(
                    "the server refused the tools parameter ({}); Punie then describes tools in \
                     the prompt and reads calls from the text, which small models get wrong more often",
                    short(&error.to_string())
                ),
            )
            .fixed_by([fixes::native_tool_calls(kind, true)]);
            (check, None, true)
        }
        Err(error) => {
            let check = Check::new(
                "tool calls",
                Verdict::Fail,
                format!("a chat request failed: {error}"),
            );
            (check, None, false)
        }
    }
}

/// Reads the answer to the one-tool request: the tool-call check and the reasoning check.
fn classify(answer: &RawAnswer, tools: &[ToolSpec], kind: ServerKind) -> (Check, Check) {
    let mut filter = MarkupFilter::new(tools);
    let mut events = filter.push(Ok(ModelEvent::Text(answer.text.clone())));
    events.extend(filter.push(Ok(ModelEvent::Finished(FinishReason::Stop))));
    let mut text_calls = Vec::new();
    let mut tagged_thought = false;
    for event in events.into_iter().flatten() {
        match event {
            ModelEvent::ToolCall(call) => text_calls.push(call.name),
            ModelEvent::Thought(_) => tagged_thought = true,
            _ => {}
        }
    }
    let calls = if !answer.tool_calls.is_empty() {
        let names: Vec<&str> = answer.tool_calls.iter().map(|c| c.name.as_str()).collect();
        Check::new(
            "tool calls",
            Verdict::Ok,
            format!("native: structured tool_calls ({})", names.join(", ")),
        )
    } else if !text_calls.is_empty() {
        Check::new(
            "tool calls",
            Verdict::Warn,
            format!(
                "written as text ({}), not as structured tool_calls: Punie recognises this \
                 shape, but the server is not parsing calls",
                text_shape(&answer.text)
            ),
        )
        .fixed_by([fixes::native_tool_calls(kind, false)])
    } else {
        Check::new(
            "tool calls",
            Verdict::Warn,
            format!(
                "none: asked to call get_time, the model answered {} — it may not use tools at all",
                quote(&answer.text)
            ),
        )
        .fixed_by([fixes::native_tool_calls(kind, false)])
    };
    let reasoning = if !answer.reasoning.is_empty() {
        Check::new(
            "reasoning",
            Verdict::Ok,
            "thoughts arrive apart, as reasoning_content",
        )
    } else if tagged_thought {
        Check::new(
            "reasoning",
            Verdict::Ok,
            "thoughts arrive as <think> tags in the text (Punie reads them as thoughts)",
        )
        .fixed_by(fixes::reasoning_apart(kind))
    } else {
        Check::new(
            "reasoning",
            Verdict::Ok,
            "none seen (the model did not reason in its answer)",
        )
    };
    (calls, reasoning)
}

/// The shape a call written as text came in, named as `specs/tool-calls.md` names them.
fn text_shape(text: &str) -> &'static str {
    let shapes = [
        ("<tool_call>", "Hermes <tool_call> tags"),
        ("<function=", "Qwen3-Coder <function=…> tags"),
        ("[TOOL_REQUEST]", "LM Studio [TOOL_REQUEST]"),
        ("[TOOL_CALLS]", "Mistral [TOOL_CALLS]"),
        ("<tool_response>", "a call inside <tool_response>"),
        ("<function_call>", "<function_call> tags"),
        ("<|python_tag|>", "Llama <|python_tag|>"),
        ("```", "JSON in a ``` fence"),
    ];
    shapes
        .iter()
        .find(|(marker, _)| text.contains(marker))
        .map_or("bare JSON", |(_, shape)| shape)
}

fn quote(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return "nothing".to_owned();
    }
    format!("{:?}", short(text))
}

fn short(text: &str) -> String {
    match text.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_shapes() {
        assert_eq!(
            text_shape(r#"{"name": "get_time", "arguments": {}}"#),
            "bare JSON"
        );
        assert_eq!(
            text_shape("```json\n{\"name\": \"get_time\"}\n```"),
            "JSON in a ``` fence"
        );
        assert_eq!(
            text_shape("<tool_call>{}</tool_call>"),
            "Hermes <tool_call> tags"
        );
    }

    #[test]
    fn answers_are_classified() {
        let tools = vec![get_time()];
        let bare = RawAnswer {
            text: r#"{"name": "get_time", "arguments": {}}"#.to_owned(),
            ..RawAnswer::default()
        };
        let (calls, reasoning) = classify(&bare, &tools, ServerKind::LlamaCpp);
        assert_eq!(calls.verdict, Verdict::Warn);
        assert!(calls.detail.contains("bare JSON"), "{}", calls.detail);
        assert!(calls.fixes[0].contains("--chat-template-file"));
        assert!(reasoning.detail.starts_with("none"));
        let thinking = RawAnswer {
            text: "<think>The user wants the time.</think>It is noon.".to_owned(),
            ..RawAnswer::default()
        };
        let (calls, reasoning) = classify(&thinking, &tools, ServerKind::LlamaCpp);
        assert!(calls.detail.starts_with("none"), "{}", calls.detail);
        assert!(reasoning.detail.contains("<think>"), "{}", reasoning.detail);
        let prose = RawAnswer {
            text: r#"{"name": "Ada", "age": 3}"#.to_owned(),
            ..RawAnswer::default()
        };
        assert!(
            classify(&prose, &tools, ServerKind::Vllm)
                .0
                .detail
                .starts_with("none")
        );
    }
}
