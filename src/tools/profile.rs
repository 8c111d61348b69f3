//! How much of each tool the model is told: the whole description and schema, or a compact
//! form for small context windows.
//!
//! Twelve built-in tools described in full take about 1,700 tokens, which a 2,048-token window
//! cannot spare. The compact profiles keep what a model needs to call a tool right — its name,
//! one sentence, the argument names and types, what is required — and drop the rest
//! (examples, defaults, bounds, the descriptions of optional arguments). Rarely used tools
//! ([`Tool::rarely_used`]) are folded: their schemas are not sent, but they stay in the
//! session and still run when called by name (the system prompt names every tool).

use serde_json::{Map, Value};

use super::{Tool, Toolset};

/// How much of each tool the model is told, from the most to the least.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ToolProfile {
    /// Every tool, with its whole description and schema.
    Full,
    /// Every tool but the rarely used ones, one sentence each, argument names and types, and
    /// the descriptions of required arguments only.
    Compact,
    /// As compact, without any argument descriptions and with descriptions cut to one short
    /// sentence.
    Minimal,
}

/// What the model is told of one tool.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolDescription {
    /// The name it is called by.
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of its arguments.
    pub parameters: Value,
}

/// The longest description a compact profile keeps (bytes), cut on a word.
const COMPACT_DESCRIPTION: usize = 160;
/// The longest description the minimal profile keeps (bytes), cut on a word.
const MINIMAL_DESCRIPTION: usize = 90;

impl ToolProfile {
    /// Every profile, from the most to the least detailed.
    pub const ALL: [ToolProfile; 3] = [Self::Full, Self::Compact, Self::Minimal];

    /// The profile's name, for logs and notices.
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Compact => "compact",
            Self::Minimal => "minimal",
        }
    }

    /// What the model is told of `toolset` under this profile, in the toolset's order.
    pub fn describe(self, toolset: &Toolset) -> Vec<ToolDescription> {
        toolset
            .iter()
            .filter(|tool| self == Self::Full || !tool.rarely_used())
            .map(|tool| self.describe_one(tool.as_ref()))
            .collect()
    }

    fn describe_one(self, tool: &dyn Tool) -> ToolDescription {
        let (description, parameters) = match self {
            Self::Full => (tool.description().to_owned(), tool.parameters()),
            Self::Compact => (
                brief(tool.description(), COMPACT_DESCRIPTION),
                compact_schema(&tool.parameters(), true),
            ),
            Self::Minimal => (
                brief(tool.description(), MINIMAL_DESCRIPTION),
                compact_schema(&tool.parameters(), false),
            ),
        };
        ToolDescription {
            name: tool.name().to_owned(),
            description,
            parameters,
        }
    }
}

/// The first sentence of `text`, within about `limit` bytes (cut on a word, with "…").
pub fn brief(text: &str, limit: usize) -> String {
    let text = text.trim();
    // A sentence ends at ". ", but not after an abbreviation ("e.g. `**/*.rs`").
    let sentence = text
        .match_indices(". ")
        .map(|(at, _)| at + 1)
        .find(|&end| {
            !["e.g.", "i.e.", "etc."]
                .iter()
                .any(|a| text[..end].ends_with(a))
        })
        .map_or(text, |end| &text[..end]);
    if sentence.len() <= limit {
        return sentence.to_owned();
    }
    let mut end = limit;
    while !sentence.is_char_boundary(end) {
        end -= 1;
    }
    let cut = sentence[..end]
        .rfind(' ')
        .map_or(&sentence[..end], |space| &sentence[..space]);
    format!("{}…", cut.trim_end_matches([',', ';', ':']))
}

/// `schema` without what a model can call the tool without: bounds, defaults, examples,
/// titles, `null` alternatives, and the descriptions of optional arguments (of every argument
/// unless `required_descriptions`). Nested objects and array items are compacted alike.
pub fn compact_schema(schema: &Value, required_descriptions: bool) -> Value {
    let Some(object) = schema.as_object() else {
        return schema.clone();
    };
    let required: Vec<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    for (key, value) in object {
        match key.as_str() {
            "type" => {
                out.insert(key.clone(), without_null(value));
            }
            "properties" => {
                let Some(properties) = value.as_object() else {
                    continue;
                };
                let compacted = properties
                    .iter()
                    .map(|(name, property)| {
                        let mut property = compact_schema(property, required_descriptions);
                        let keep = required_descriptions && required.contains(&name.as_str());
                        if let Some(fields) = property.as_object_mut() {
                            match fields.get("description").and_then(Value::as_str) {
                                Some(text) if keep => {
                                    let short = brief(text, COMPACT_DESCRIPTION);
                                    fields.insert("description".to_owned(), short.into());
                                }
                                _ => {
                                    fields.remove("description");
                                }
                            }
                        }
                        (name.clone(), property)
                    })
                    .collect();
                out.insert(key.clone(), Value::Object(compacted));
            }
            "items" => {
                out.insert(key.clone(), compact_schema(value, required_descriptions));
            }
            "required" | "enum" | "description" => {
                out.insert(key.clone(), value.clone());
            }
            "anyOf" | "oneOf" => {
                // `Option<T>` as schemars writes it: `T` or null.
                let kinds: Vec<&Value> = value
                    .as_array()
                    .map(|kinds| {
                        kinds
                            .iter()
                            .filter(|kind| kind.get("type") != Some(&Value::from("null")))
                            .collect()
                    })
                    .unwrap_or_default();
                if let [only] = kinds.as_slice()
                    && let Value::Object(fields) = compact_schema(only, required_descriptions)
                {
                    out.extend(fields);
                } else {
                    out.insert(key.clone(), value.clone());
                }
            }
            // Bounds, defaults, formats, examples, titles, `$schema`: noise for a small window.
            _ => {}
        }
    }
    Value::Object(out)
}

/// A `type` without its `"null"` alternative: `["integer", "null"]` becomes `"integer"`.
fn without_null(kind: &Value) -> Value {
    match kind.as_array() {
        Some(kinds) => {
            let kept: Vec<&Value> = kinds.iter().filter(|k| *k != "null").collect();
            match kept.as_slice() {
                [only] => (*only).clone(),
                _ => Value::Array(kept.into_iter().cloned().collect()),
            }
        }
        None => kind.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tools::builtin::default_toolset;

    fn bytes(tools: &[ToolDescription]) -> usize {
        tools
            .iter()
            .map(|t| t.name.len() + t.description.len() + t.parameters.to_string().len())
            .sum()
    }

    #[test]
    fn compact_profiles_are_much_smaller_and_keep_what_a_call_needs() {
        let toolset = default_toolset();
        let full = ToolProfile::Full.describe(&toolset);
        let compact = ToolProfile::Compact.describe(&toolset);
        let minimal = ToolProfile::Minimal.describe(&toolset);
        assert_eq!(full.len(), 12);
        let names: Vec<&str> = compact.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "read_file",
                "edit_file",
                "write_file",
                "list_dir",
                "glob",
                "grep",
                "run_command"
            ],
            "the terminal helpers and the plan are folded"
        );
        assert!(
            bytes(&compact) * 2 < bytes(&full),
            "{} vs {}",
            bytes(&compact),
            bytes(&full)
        );
        assert!(bytes(&minimal) < bytes(&compact));
        let edit = &compact[1];
        assert_eq!(
            edit.parameters["required"],
            json!(["path", "old_text", "new_text"])
        );
        for name in ["path", "old_text", "new_text", "replace_all"] {
            assert!(
                edit.parameters["properties"].get(name).is_some(),
                "{name}: {}",
                edit.parameters
            );
        }
    }

    /// Tokens as the context budget estimates them (`agent::context::tool_tokens`: 3 bytes a
    /// token, rounded up per part).
    fn tokens(tools: &[ToolDescription]) -> usize {
        tools
            .iter()
            .map(|t| {
                t.name.len().div_ceil(3)
                    + t.description.len().div_ceil(3)
                    + t.parameters.to_string().len().div_ceil(3)
            })
            .sum()
    }

    /// `update_plan` costs 165 tokens in full, and would cost 137 compact and 124 minimal (18 %
    /// and 22 % more tools for a small window): the compact profiles fold it.
    #[test]
    fn the_plan_tool_is_described_in_full_only() {
        let toolset = default_toolset();
        let mut without = Toolset::new();
        for tool in toolset.iter().filter(|t| t.name() != "update_plan") {
            without.add(tool.clone());
        }
        let costs: Vec<(usize, usize)> = ToolProfile::ALL
            .iter()
            .map(|p| (tokens(&p.describe(&without)), tokens(&p.describe(&toolset))))
            .collect();
        assert_eq!(costs, [(1913, 2078), (750, 750), (552, 552)]);
        let folded: Vec<usize> = ToolProfile::ALL
            .iter()
            .map(|p| {
                let mut plan = Toolset::new();
                plan.add(std::sync::Arc::new(crate::tools::builtin::UpdatePlan));
                tokens(&[p.describe_one(plan.get("update_plan").unwrap().as_ref())])
            })
            .collect();
        assert_eq!(folded, [165, 137, 124], "what it would cost unfolded");
    }

    #[test]
    fn briefs_keep_the_first_sentence_within_the_limit() {
        assert_eq!(
            brief("Read a file. `path` is relative.", 100),
            "Read a file."
        );
        assert_eq!(brief("one two three four", 9), "one two…");
        assert_eq!(brief("short", 100), "short");
        assert_eq!(
            brief("Find (e.g. `*.rs`) files. More.", 100),
            "Find (e.g. `*.rs`) files."
        );
    }

    #[test]
    fn schemas_lose_noise_but_not_shape() {
        let schema = json!({
            "type": "object",
            "$schema": "x",
            "title": "Args",
            "properties": {
                "path": {"type": "string", "description": "The path. Relative to the root."},
                "line": {"type": ["integer", "null"], "minimum": 1, "default": 1, "description": "First line"},
                "mode": {"anyOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "null"}]},
                "list": {"type": "array", "items": {"type": "string", "format": "x", "description": "d"}}
            },
            "required": ["path"]
        });
        assert_eq!(
            compact_schema(&schema, true),
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "The path."},
                    "line": {"type": "integer"},
                    "mode": {"type": "string", "enum": ["a", "b"]},
                    "list": {"type": "array", "items": {"type": "string", "description": "d"}}
                },
                "required": ["path"]
            })
        );
        let bare = compact_schema(&schema, false);
        assert!(bare["properties"]["path"].get("description").is_none());
    }
}
