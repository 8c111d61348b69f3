//! The bodies of tool calls written as text, read into calls: Hermes JSON (arguments as an
//! object or as a JSON string), Qwen3-Coder's `<function=…><parameter=…>` with values typed by
//! the tool's JSON Schema, LM Studio's `[TOOL_REQUEST]` JSON, both Mistral forms, and calls in
//! wrappers not made for them (`<tool_response>`, `<function_call>`, `<|python_tag|>`).
//!
//! Small local models get the JSON slightly wrong often enough to matter: a brace too many or
//! too few is repaired; anything else that still names a tool becomes a call whose arguments are
//! the raw text, so the agent can tell the model what was wrong. A body that names no tool is
//! not a call (the caller shows it as text).

use serde_json::{Map, Number, Value};

use super::body::CallKind;
use super::{lenient, shapes};
use crate::llm::ToolSpec;

/// One call read from text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TextCall {
    /// The tool's name.
    pub name: String,
    /// The arguments' JSON text (or the raw text when it could not be read).
    pub arguments: String,
    /// The id the model wrote, if any (Mistral).
    pub id: Option<String>,
}

/// The calls in the body of a call of `kind` (the text between its tags); empty when the body
/// names no tool.
pub(crate) fn parse_body(kind: CallKind, body: &str, tools: &[ToolSpec]) -> Vec<TextCall> {
    let trimmed = body.trim();
    match kind {
        CallKind::ToolCall if trimmed.starts_with("<function=") => {
            parse_function(trimmed, tools).into_iter().collect()
        }
        CallKind::Function => parse_function(&format!("<function={trimmed}"), tools)
            .into_iter()
            .collect(),
        CallKind::ToolCalls if !trimmed.starts_with(['[', '{']) => {
            parse_mistral_name_form(trimmed, tools)
                .into_iter()
                .collect()
        }
        // Wrappers that are not made for calls hold one only when it is call-shaped, or names
        // an offered tool.
        CallKind::ToolResponse | CallKind::FunctionCall | CallKind::PythonTag => {
            if trimmed.starts_with(['[', '{']) {
                shapes::calls_in(&lenient::leading_values(trimmed), tools)
            } else {
                bare_name_call(trimmed, tools).into_iter().collect()
            }
        }
        _ => parse_json_calls(trimmed, tools),
    }
}

/// `<tool_response>NAME</tool_response>`: a call with no arguments to an offered tool (if the
/// tool needs some, it says which when the call is checked).
fn bare_name_call(text: &str, tools: &[ToolSpec]) -> Option<TextCall> {
    let name = shapes::resolve_name(text, tools)?;
    Some(TextCall {
        name: name.to_owned(),
        arguments: "{}".to_owned(),
        id: None,
    })
}

/// Calls written as JSON: one object, several objects in a row, or an array of objects, read
/// leniently (single quotes, trailing commas, Python literals, braces forgotten at the end).
fn parse_json_calls(text: &str, tools: &[ToolSpec]) -> Vec<TextCall> {
    let values = lenient::leading_values(text);
    let calls: Vec<TextCall> = values
        .iter()
        .flat_map(|value| match value {
            Value::Array(items) => items
                .iter()
                .filter_map(|item| call_from_value(item, tools))
                .collect::<Vec<_>>(),
            other => call_from_value(other, tools).into_iter().collect(),
        })
        .collect();
    if !calls.is_empty() {
        return calls;
    }
    // Broken beyond repair: a call with the raw text, if a name can be found.
    match json_name(text) {
        Some(name) => vec![TextCall {
            name: shapes::canonical_name(&name, tools),
            arguments: text.to_owned(),
            id: None,
        }],
        None => Vec::new(),
    }
}

/// A call from any object with a name inside call tags: the tags already say it is a call.
fn call_from_value(value: &Value, tools: &[ToolSpec]) -> Option<TextCall> {
    if let Some(call) = shapes::call_in(value, tools) {
        return Some(call);
    }
    let object = value.as_object()?;
    let name = object.get("name")?.as_str()?.trim();
    (!name.is_empty()).then(|| TextCall {
        name: shapes::canonical_name(name, tools),
        arguments: "{}".to_owned(),
        id: object
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned),
    })
}

/// The value of the first `"name": "…"` in broken JSON.
fn json_name(text: &str) -> Option<String> {
    let mut rest = text;
    while let Some(at) = rest.find("\"name\"") {
        rest = &rest[at + 6..];
        let Some(after_colon) = rest.trim_start().strip_prefix(':') else {
            continue;
        };
        let Some(value) = after_colon.trim_start().strip_prefix('"') else {
            continue;
        };
        let end = value.find('"')?;
        let name = value[..end].trim();
        return (!name.is_empty()).then(|| name.to_owned());
    }
    None
}

/// Mistral's newer form: `name[ARGS]{…}`, possibly `name[CALL_ID]id[ARGS]{…}` (without
/// `[ARGS]`, a word after `[TOOL_CALLS]` is no call).
fn parse_mistral_name_form(text: &str, tools: &[ToolSpec]) -> Option<TextCall> {
    let (head, arguments) = text.split_once("[ARGS]")?;
    let (name, id) = match head.split_once("[CALL_ID]") {
        Some((name, id)) => (name.trim(), Some(id.trim())),
        None => (head.trim(), None),
    };
    if name.is_empty() {
        return None;
    }
    let arguments = arguments.trim();
    Some(TextCall {
        name: shapes::canonical_name(name, tools),
        arguments: if arguments.is_empty() {
            "{}".to_owned()
        } else {
            arguments.to_owned()
        },
        id: id.filter(|id| !id.is_empty()).map(str::to_owned),
    })
}

/// Qwen3-Coder: `<function=NAME><parameter=P>value</parameter>…</function>`, the values typed
/// by the tool's schema.
fn parse_function(text: &str, tools: &[ToolSpec]) -> Option<TextCall> {
    let rest = text.strip_prefix("<function=")?;
    let name_end = rest.find('>').unwrap_or(rest.len());
    let name = rest[..name_end].trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let name = shapes::canonical_name(name, tools);
    let schema = tools
        .iter()
        .find(|tool| tool.name == name)
        .map(|tool| &tool.parameters);
    let mut arguments = Map::new();
    let mut rest = rest.get(name_end + 1..).unwrap_or_default();
    while let Some(start) = rest.find("<parameter=") {
        let after = &rest[start + "<parameter=".len()..];
        let Some(name_end) = after.find('>') else {
            break;
        };
        let parameter = after[..name_end].trim();
        let value_and_more = &after[name_end + 1..];
        let value_end = ["</parameter>", "<parameter=", "</function>"]
            .iter()
            .filter_map(|tag| value_and_more.find(tag))
            .min()
            .unwrap_or(value_and_more.len());
        let value = &value_and_more[..value_end];
        let value = value.strip_prefix('\n').unwrap_or(value);
        let value = value.strip_suffix('\n').unwrap_or(value);
        arguments.insert(
            parameter.to_owned(),
            typed_value(value, parameter_types(schema, parameter)),
        );
        rest = value_and_more[value_end..]
            .strip_prefix("</parameter>")
            .unwrap_or(&value_and_more[value_end..]);
    }
    Some(TextCall {
        name,
        arguments: Value::Object(arguments).to_string(),
        id: None,
    })
}

/// The JSON types a parameter's schema allows (`type`, a list of types, or `anyOf`/`oneOf`).
fn parameter_types(schema: Option<&Value>, parameter: &str) -> Vec<String> {
    let Some(property) = schema
        .and_then(|schema| schema.get("properties"))
        .and_then(|properties| properties.get(parameter))
    else {
        return Vec::new();
    };
    let mut types = Vec::new();
    collect_types(property, &mut types);
    types
}

fn collect_types(schema: &Value, types: &mut Vec<String>) {
    match schema.get("type") {
        Some(Value::String(name)) => types.push(name.clone()),
        Some(Value::Array(names)) => {
            types.extend(names.iter().filter_map(Value::as_str).map(str::to_owned))
        }
        _ => {}
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(options)) = schema.get(key) {
            for option in options {
                collect_types(option, types);
            }
        }
    }
}

/// A parameter value converted to what its schema says: strings verbatim (and anything the
/// schema does not describe), numbers, booleans, objects and arrays parsed. A value that does
/// not read as its type stays a string, for the tool's validation to report.
fn typed_value(value: &str, types: Vec<String>) -> Value {
    if types.is_empty() || types.iter().any(|kind| kind == "string") {
        return Value::String(value.to_owned());
    }
    let trimmed = value.trim();
    for kind in &types {
        let converted = match kind.as_str() {
            "integer" => trimmed.parse::<i64>().ok().map(Value::from),
            "number" => trimmed.parse::<i64>().ok().map(Value::from).or_else(|| {
                trimmed
                    .parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
            }),
            "boolean" => match trimmed.to_ascii_lowercase().as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            "object" => serde_json::from_str::<Value>(trimmed)
                .ok()
                .filter(Value::is_object),
            "array" => serde_json::from_str::<Value>(trimmed)
                .ok()
                .filter(Value::is_array),
            "null" => matches!(trimmed, "null" | "None" | "").then_some(Value::Null),
            _ => None,
        };
        if let Some(converted) = converted {
            return converted;
        }
    }
    Value::String(value.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(name: &str, arguments: &str) -> TextCall {
        TextCall {
            name: name.into(),
            arguments: arguments.into(),
            id: None,
        }
    }

    fn tools() -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "edit".into(),
            description: "Edit".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "line": {"type": "integer"},
                    "scale": {"type": "number"},
                    "dry_run": {"type": "boolean"},
                    "options": {"type": "object"},
                    "paths": {"type": "array", "items": {"type": "string"}},
                    "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                    "maybe": {"type": ["integer", "string"]},
                },
            }),
        }]
    }

    #[test]
    fn hermes_json_with_object_or_string_arguments() {
        assert_eq!(
            parse_body(
                CallKind::ToolCall,
                "\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a\"}}\n",
                &[]
            ),
            vec![call("read_file", r#"{"path":"a"}"#)]
        );
        assert_eq!(
            parse_body(
                CallKind::ToolCall,
                r#"{"name": "read_file", "arguments": "{\"path\": \"a\"}"}"#,
                &[]
            ),
            vec![call("read_file", r#"{"path":"a"}"#)]
        );
        assert_eq!(
            parse_body(
                CallKind::ToolCall,
                r#"{"name": "list_dir", "parameters": {}} {"name": "pwd"}"#,
                &[]
            ),
            vec![call("list_dir", "{}"), call("pwd", "{}")]
        );
        assert_eq!(
            parse_body(
                CallKind::ToolCall,
                r#"{"type": "function", "id": "x1", "function": {"name": "pwd", "arguments": "{}"}}"#,
                &[]
            ),
            vec![TextCall {
                id: Some("x1".into()),
                ..call("pwd", "{}")
            }]
        );
    }

    #[test]
    fn broken_json_is_repaired_or_kept_raw() {
        assert_eq!(
            parse_body(
                CallKind::ToolCall,
                r#"{"name": "read_file", "arguments": {"path": "a"}"#,
                &[]
            ),
            vec![call("read_file", r#"{"path":"a"}"#)]
        );
        assert_eq!(
            parse_body(
                CallKind::ToolCall,
                r#"{"name": "read_file", "arguments": {"path": "a"}}}"#,
                &[]
            ),
            vec![call("read_file", r#"{"path":"a"}"#)]
        );
        let broken = r#"{"name": "read_file", "arguments": {"path": a.rs}}"#;
        assert_eq!(
            parse_body(CallKind::ToolCall, broken, &[]),
            vec![call("read_file", broken)]
        );
        assert_eq!(
            parse_body(
                CallKind::ToolCall,
                "{'name': 'grep', 'arguments': {'pattern': 'x', 'regex': True}}",
                &[]
            ),
            vec![call("grep", r#"{"pattern":"x","regex":true}"#)]
        );
        assert_eq!(
            parse_body(CallKind::ToolCall, "{\"path\": \"a\"}", &[]),
            vec![]
        );
        assert_eq!(parse_body(CallKind::ToolCall, "", &[]), vec![]);
    }

    #[test]
    fn qwen3_coder_values_follow_the_schema() {
        let body = "\n<function=edit>\n<parameter=path>\n 42 \n</parameter>\n<parameter=line>\n42\n</parameter>\n<parameter=scale>\n1.5\n</parameter>\n<parameter=dry_run>\nTrue\n</parameter>\n<parameter=options>\n{\"a\": [1]}\n</parameter>\n<parameter=paths>\n[\"x\", \"y\"]\n</parameter>\n<parameter=limit>\nnull\n</parameter>\n<parameter=maybe>\n7\n</parameter>\n<parameter=other>\n{\"kept\": \"as text\"}\n</parameter>\n</function>\n";
        let calls = parse_body(CallKind::ToolCall, body, &tools());
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "edit");
        let arguments: Value = serde_json::from_str(&calls[0].arguments).unwrap();
        assert_eq!(
            arguments,
            json!({
                "path": " 42 ",
                "line": 42,
                "scale": 1.5,
                "dry_run": true,
                "options": {"a": [1]},
                "paths": ["x", "y"],
                "limit": null,
                "maybe": "7",
                "other": "{\"kept\": \"as text\"}",
            })
        );
    }

    #[test]
    fn qwen3_coder_keeps_inner_newlines_and_tolerates_missing_closers() {
        let body = "<function=write_file>\n<parameter=content>\n\nfn main() {}\n\n</parameter>\n<parameter=line>\nnot a number\n</function>";
        let tools = vec![ToolSpec {
            name: "write_file".into(),
            description: String::new(),
            parameters: json!({"properties": {"line": {"type": "integer"}}}),
        }];
        let calls = parse_body(CallKind::ToolCall, body, &tools);
        let arguments: Value = serde_json::from_str(&calls[0].arguments).unwrap();
        assert_eq!(
            arguments,
            json!({"content": "\nfn main() {}\n", "line": "not a number"})
        );
        assert_eq!(
            parse_body(CallKind::Function, "pwd>\n</function>", &[]),
            vec![call("pwd", "{}")]
        );
        assert_eq!(parse_body(CallKind::ToolCall, "<function=>", &[]), vec![]);
    }

    #[test]
    fn lm_studio_and_mistral() {
        assert_eq!(
            parse_body(
                CallKind::ToolRequest,
                r#"{"name": "read_file", "arguments": {"path": "README.md"}}"#,
                &[]
            ),
            vec![call("read_file", r#"{"path":"README.md"}"#)]
        );
        assert_eq!(
            parse_body(
                CallKind::ToolCalls,
                r#"[{"name": "read_file", "arguments": {"path": "a"}, "id": "abcdefghi"}, {"name": "pwd", "arguments": {}}]"#,
                &[]
            ),
            vec![
                TextCall {
                    id: Some("abcdefghi".into()),
                    ..call("read_file", r#"{"path":"a"}"#)
                },
                call("pwd", "{}"),
            ]
        );
        assert_eq!(
            parse_body(CallKind::ToolCalls, "read_file[ARGS]{\"path\": \"a\"}", &[]),
            vec![call("read_file", "{\"path\": \"a\"}")]
        );
        assert_eq!(
            parse_body(CallKind::ToolCalls, "pwd[CALL_ID]x9[ARGS]", &[]),
            vec![TextCall {
                id: Some("x9".into()),
                ..call("pwd", "{}")
            }]
        );
        assert_eq!(parse_body(CallKind::ToolCalls, "marker.", &[]), vec![]);
    }
}
