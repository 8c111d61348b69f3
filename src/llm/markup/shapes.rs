//! Which JSON values are tool calls: the shapes small models write a call in, and the tool
//! names they mean.
//!
//! A value is *call-shaped* when it pairs a name with arguments: `{"name", "arguments"}`,
//! `{"name", "parameters"}`, OpenAI's `{"function": {…}}`, `{"tool", "args"}`. Such a value is a
//! call even when its name is no tool (the model botched it, and the turn loop tells it the
//! right names). An object with only a `name` (and perhaps `type` or `id`) is a call only when
//! the name is an offered tool: `{"name": "my-app", "version": …}` is a package.json, not a call.

use serde_json::Value;

use super::lenient;
use super::parse::TextCall;
use crate::llm::ToolSpec;

/// The offered tool `written` means: the same name, or one differing in case or written
/// `functions.NAME` (OpenAI's namespace, which small models copy from their training).
pub(crate) fn resolve_name<'a>(written: &str, tools: &'a [ToolSpec]) -> Option<&'a str> {
    let written = written.trim();
    let bare = ["functions.", "function.", "tools.", "tool."]
        .iter()
        .find_map(|prefix| {
            written
                .get(..prefix.len())
                .filter(|head| head.eq_ignore_ascii_case(prefix))
                .map(|_| &written[prefix.len()..])
        })
        .unwrap_or(written);
    tools
        .iter()
        .find(|tool| tool.name == bare)
        .or_else(|| {
            tools
                .iter()
                .find(|tool| tool.name.eq_ignore_ascii_case(bare))
        })
        .map(|tool| tool.name.as_str())
}

/// `name` as the offered tool it means, or as written when it means none.
pub(crate) fn canonical_name(name: &str, tools: &[ToolSpec]) -> String {
    resolve_name(name, tools)
        .unwrap_or_else(|| name.trim())
        .to_owned()
}

/// The calls in `values` when every one of them is a call or an array of calls; empty when any
/// is not (then the text they came from is an answer, to be shown as it was written).
pub(crate) fn calls_in(values: &[Value], tools: &[ToolSpec]) -> Vec<TextCall> {
    let mut calls = Vec::new();
    for value in values {
        match value {
            Value::Array(items) if !items.is_empty() => {
                for item in items {
                    match call_in(item, tools) {
                        Some(call) => calls.push(call),
                        None => return Vec::new(),
                    }
                }
            }
            other => match call_in(other, tools) {
                Some(call) => calls.push(call),
                None => return Vec::new(),
            },
        }
    }
    calls
}

/// The call `value` is, if it is one (see the module's rules).
pub(crate) fn call_in(value: &Value, tools: &[ToolSpec]) -> Option<TextCall> {
    let object = value.as_object()?;
    let id = object
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    match object.get("function") {
        Some(function @ Value::Object(_)) => {
            let mut call = call_in(function, tools)?;
            call.id = call.id.or(id);
            return Some(call);
        }
        Some(Value::String(name)) => {
            return named(name, arguments_of(object), &[], object, tools, id);
        }
        _ => {}
    }
    for (key, others) in [
        ("name", &["type", "id"][..]),
        ("tool", &["type", "id"][..]),
        ("tool_name", &["type", "id"][..]),
    ] {
        if let Some(Value::String(name)) = object.get(key) {
            return named(name, arguments_of(object), others, object, tools, id);
        }
    }
    None
}

/// A call to `name`: with `arguments` when the object had some, else only when the object has
/// nothing but the name and `others` and the name is an offered tool.
fn named(
    name: &str,
    arguments: Option<&Value>,
    others: &[&str],
    object: &serde_json::Map<String, Value>,
    tools: &[ToolSpec],
    id: Option<String>,
) -> Option<TextCall> {
    let name = name.trim();
    // `{"name", "description", "parameters"}` describes a tool (a model echoing its tool list,
    // or showing how tools are declared): no call.
    if name.is_empty() || name.len() > 128 || object.contains_key("description") {
        return None;
    }
    let arguments = match arguments {
        Some(arguments) => arguments_text(arguments),
        None => {
            let bare =
                object.len() == 1 + others.iter().filter(|k| object.contains_key(**k)).count();
            if !bare || resolve_name(name, tools).is_none() {
                return None;
            }
            "{}".to_owned()
        }
    };
    Some(TextCall {
        name: canonical_name(name, tools),
        arguments,
        id,
    })
}

fn arguments_of(object: &serde_json::Map<String, Value>) -> Option<&Value> {
    ["arguments", "parameters", "args", "input", "tool_input"]
        .iter()
        .find_map(|key| object.get(*key))
}

/// The arguments as JSON text: an object as it is, a string holding JSON (even loose JSON) as
/// the object it holds, anything else as it was written, for the tool to reject.
fn arguments_text(arguments: &Value) -> String {
    match arguments {
        Value::Null => "{}".to_owned(),
        Value::String(text) => match lenient::leading_values(text).as_slice() {
            [object @ Value::Object(_)] => object.to_string(),
            _ => text.clone(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tools() -> Vec<ToolSpec> {
        ["grep", "list_dir", "read_file"]
            .iter()
            .map(|name| ToolSpec {
                name: (*name).into(),
                description: String::new(),
                parameters: json!({"type": "object"}),
            })
            .collect()
    }

    fn call(name: &str, arguments: &str) -> TextCall {
        TextCall {
            name: name.into(),
            arguments: arguments.into(),
            id: None,
        }
    }

    #[test]
    fn names_as_models_write_them() {
        let tools = tools();
        assert_eq!(resolve_name("grep", &tools), Some("grep"));
        assert_eq!(resolve_name("functions.grep", &tools), Some("grep"));
        assert_eq!(resolve_name("Functions.List_Dir", &tools), Some("list_dir"));
        assert_eq!(resolve_name(" READ_FILE ", &tools), Some("read_file"));
        assert_eq!(resolve_name("read_inventory/report.py", &tools), None);
        assert_eq!(resolve_name("functions.", &tools), None);
    }

    #[test]
    fn every_call_shape() {
        let tools = tools();
        for (value, expected) in [
            (
                json!({"name": "grep", "arguments": {"pattern": "x"}}),
                call("grep", r#"{"pattern":"x"}"#),
            ),
            (
                json!({"name": "grep", "parameters": {"pattern": "x"}}),
                call("grep", r#"{"pattern":"x"}"#),
            ),
            (
                json!({"name": "GREP", "arguments": "{'pattern': 'x'}"}),
                call("grep", r#"{"pattern":"x"}"#),
            ),
            (
                json!({"type": "function", "function": {"name": "functions.grep", "arguments": "{\"pattern\": \"x\"}"}}),
                call("grep", r#"{"pattern":"x"}"#),
            ),
            (
                json!({"function": "grep", "arguments": {"pattern": "x"}}),
                call("grep", r#"{"pattern":"x"}"#),
            ),
            (
                json!({"tool": "grep", "args": {"pattern": "x"}}),
                call("grep", r#"{"pattern":"x"}"#),
            ),
            (json!({"name": "list_dir"}), call("list_dir", "{}")),
            (
                json!({"name": "list_dir", "arguments": null}),
                call("list_dir", "{}"),
            ),
            // Botched: call-shaped, but no such tool, or arguments that are no object.
            (
                json!({"name": "read_inventory/report.py", "arguments": {}}),
                call("read_inventory/report.py", "{}"),
            ),
            (
                json!({"name": "grep", "arguments": "total_value"}),
                call("grep", "total_value"),
            ),
        ] {
            assert_eq!(call_in(&value, &tools), Some(expected), "{value}");
        }
        assert_eq!(
            call_in(
                &json!({"id": "c1", "function": {"name": "grep", "arguments": {}}}),
                &tools
            )
            .and_then(|call| call.id),
            Some("c1".into())
        );
    }

    #[test]
    fn json_that_is_no_call() {
        let tools = tools();
        for value in [
            json!({"name": "my-app", "version": "1.0.0", "scripts": {"test": "jest"}}),
            json!({"name": "grep", "description": "Search files"}),
            json!({"name": "grep", "description": "Search", "parameters": {"type": "object"}}),
            json!({"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {}}}}),
            json!({"name": "unknown_tool"}),
            json!({"name": "", "arguments": {}}),
            json!({"pattern": "x"}),
            json!({"function": 3}),
            json!([1, 2]),
            json!("grep"),
        ] {
            assert_eq!(call_in(&value, &tools), None, "{value}");
            assert_eq!(
                calls_in(std::slice::from_ref(&value), &tools),
                vec![],
                "{value}"
            );
        }
        // One value that is no call makes the lot an answer.
        assert_eq!(
            calls_in(
                &[json!([{"name": "grep", "arguments": {}}, {"version": 1}])],
                &tools
            ),
            vec![]
        );
        assert_eq!(calls_in(&[json!([])], &tools), vec![]);
    }
}
