//! Text tool calling, for servers that take no `tools` parameter: vLLM without
//! `--enable-auto-tool-choice`, llama-server without `--jinja`, Ollama models without a tool
//! template. The tools are described in the system message with the exact Hermes format to call
//! them in, the markup filter reads the calls back from the answer's text, and the history is
//! rewritten in the same terms, since such servers also refuse the `tool` role and
//! `tool_calls` in assistant messages:
//!
//! - an assistant message's calls become `<tool_call>{"name": …, "arguments": {…}}</tool_call>`
//!   text after its content;
//! - tool results become user messages wrapped in `<tool_response>…</tool_response>`;
//! - consecutive user messages are joined (strict templates want roles to alternate).

use serde_json::{Value, json};

use super::{ChatRequest, LlmError, Message, ToolCall, ToolSpec};

/// `request` rewritten for text tool calling: no `tools`, the tools described in the system
/// message, and a history without tool roles.
pub(crate) fn prompted_request(request: &ChatRequest) -> ChatRequest {
    let mut messages: Vec<Message> = Vec::with_capacity(request.messages.len() + 1);
    let mut described = false;
    for message in &request.messages {
        let message = match message {
            Message::System { content } if !described => {
                described = true;
                Message::System {
                    content: format!("{content}\n\n{}", tools_prompt(&request.tools)),
                }
            }
            Message::Assistant {
                content,
                tool_calls,
            } if !tool_calls.is_empty() => {
                let mut text: Vec<String> = content
                    .iter()
                    .filter(|content| !content.trim().is_empty())
                    .cloned()
                    .collect();
                text.extend(tool_calls.iter().map(render_call));
                Message::Assistant {
                    content: Some(text.join("\n")),
                    tool_calls: Vec::new(),
                }
            }
            Message::Tool { content, .. } => Message::User {
                content: format!("<tool_response>\n{content}\n</tool_response>"),
            },
            other => other.clone(),
        };
        match (messages.last_mut(), message) {
            (Some(Message::User { content: last }), Message::User { content }) => {
                last.push('\n');
                last.push_str(&content);
            }
            (_, message) => messages.push(message),
        }
    }
    if !described {
        messages.insert(
            0,
            Message::System {
                content: tools_prompt(&request.tools),
            },
        );
    }
    ChatRequest {
        messages,
        tools: Vec::new(),
        temperature: request.temperature,
        max_tokens: request.max_tokens,
    }
}

/// The system-message section that offers `tools` and says how to call them.
pub(crate) fn tools_prompt(tools: &[ToolSpec]) -> String {
    let listed: Vec<String> = tools
        .iter()
        .map(|tool| {
            format!(
                "{{\"name\": {}, \"description\": {}, \"parameters\": {}}}",
                Value::String(tool.name.clone()),
                Value::String(tool.description.clone()),
                tool.parameters
            )
        })
        .collect();
    format!(
        "# Tools\n\n\
         You can call the following tools. Each is given as its name, what it does, and the JSON \
         Schema of its arguments:\n\
         <tools>\n{}\n</tools>\n\n\
         To call a tool, write exactly this, with the tool's name and its arguments as a JSON \
         object that follows its schema:\n\
         <tool_call>\n{{\"name\": \"tool_name\", \"arguments\": {{\"argument\": \"value\"}}}}\n</tool_call>\n\n\
         Write one <tool_call> block per call; you may make several calls in one answer. Then stop: \
         the results come back in the next message, each inside <tool_response></tool_response>. \
         Never write a <tool_response> yourself. When no tool is needed, answer without any \
         <tool_call>.",
        listed.join("\n")
    )
}

/// A past call as the text the model would have written.
fn render_call(call: &ToolCall) -> String {
    let arguments = match serde_json::from_str::<Value>(call.arguments.trim()) {
        Ok(value @ Value::Object(_)) => value,
        _ if call.arguments.trim().is_empty() => json!({}),
        _ => json!({ "invalid_arguments": call.arguments }),
    };
    format!(
        "<tool_call>\n{{\"name\": {}, \"arguments\": {arguments}}}\n</tool_call>",
        Value::String(call.name.clone())
    )
}

/// When `error` is a server refusing the `tools` parameter itself: how to make it take tools
/// natively, for the log.
pub(crate) fn native_tools_advice(error: &LlmError) -> Option<&'static str> {
    let LlmError::Status { message, .. } = error else {
        return None;
    };
    let message = message.to_ascii_lowercase();
    if message.contains("--enable-auto-tool-choice") || message.contains("--tool-call-parser") {
        Some(
            "vLLM takes tools natively when started with --enable-auto-tool-choice and \
             --tool-call-parser (e.g. hermes for Qwen, llama3_json for Llama 3.x)",
        )
    } else if message.contains("--jinja") {
        Some("llama-server takes tools natively when started with --jinja")
    } else if message.contains("cannot use tools with stream") {
        Some("a newer llama.cpp streams tool calls natively")
    } else if message.contains("does not support tools") {
        Some(
            "Ollama takes tools natively with models whose template supports them \
             (`ollama show MODEL` lists `tools` under Capabilities)",
        )
    } else if message.contains("support tool use") {
        Some("choose a model or provider that supports tool use to call tools natively")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_file() -> ToolSpec {
        ToolSpec {
            name: "read_file".into(),
            description: "Read a file".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }
    }

    fn call(id: &str, arguments: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: "read_file".into(),
            arguments: arguments.into(),
        }
    }

    #[test]
    fn history_is_rewritten_without_tool_roles() {
        let request = ChatRequest {
            messages: vec![
                Message::System {
                    content: "You are Punie.".into(),
                },
                Message::User {
                    content: "Read a and b".into(),
                },
                Message::Assistant {
                    content: Some("Reading.".into()),
                    tool_calls: vec![call("1", r#"{"path": "a"}"#), call("2", "{\"pa")],
                },
                Message::Tool {
                    tool_call_id: "1".into(),
                    content: "A".into(),
                },
                Message::Tool {
                    tool_call_id: "2".into(),
                    content: "error: invalid arguments".into(),
                },
                Message::User {
                    content: "And?".into(),
                },
            ],
            tools: vec![read_file()],
            temperature: Some(0.2),
            max_tokens: Some(9),
        };
        let prompted = prompted_request(&request);
        assert!(prompted.tools.is_empty());
        assert_eq!(prompted.temperature, Some(0.2));
        assert_eq!(prompted.max_tokens, Some(9));
        let Message::System { content } = &prompted.messages[0] else {
            panic!("{prompted:?}");
        };
        assert!(
            content.starts_with("You are Punie.\n\n# Tools"),
            "{content}"
        );
        assert!(
            content
                .contains(r#"{"name": "read_file", "description": "Read a file", "parameters": {"#)
        );
        assert!(content.contains("<tool_call>\n{\"name\": \"tool_name\", \"arguments\": {\"argument\": \"value\"}}\n</tool_call>"));
        assert_eq!(
            prompted.messages[1..],
            [
                Message::User {
                    content: "Read a and b".into()
                },
                Message::Assistant {
                    content: Some(
                        "Reading.\n<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\":\"a\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"invalid_arguments\":\"{\\\"pa\"}}\n</tool_call>".into()
                    ),
                    tool_calls: vec![]
                },
                Message::User {
                    content: "<tool_response>\nA\n</tool_response>\n<tool_response>\nerror: invalid arguments\n</tool_response>\nAnd?".into()
                },
            ]
        );
    }

    #[test]
    fn a_system_message_is_added_when_there_is_none() {
        let request = ChatRequest {
            messages: vec![Message::User {
                content: "hi".into(),
            }],
            tools: vec![read_file()],
            ..ChatRequest::default()
        };
        let prompted = prompted_request(&request);
        assert_eq!(prompted.messages.len(), 2);
        assert!(
            matches!(&prompted.messages[0], Message::System { content } if content.starts_with("# Tools"))
        );
    }

    #[test]
    fn advice_for_each_server() {
        let status = |message: &str| LlmError::Status {
            url: "http://x/v1".into(),
            status: 400,
            message: message.into(),
            hint: String::new(),
            attempts: 1,
        };
        for (message, advice) in [
            (
                "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set",
                "vLLM",
            ),
            ("tools param requires --jinja flag", "--jinja"),
            (
                "registry.ollama.ai/library/gemma3:1b does not support tools",
                "Ollama",
            ),
        ] {
            assert!(
                native_tools_advice(&status(message))
                    .unwrap()
                    .contains(advice)
            );
        }
        assert_eq!(native_tools_advice(&status("bad request")), None);
    }
}
