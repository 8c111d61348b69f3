//! Tool-call assembly: the pieces of tool calls that servers stream, put back together into
//! whole [`ToolCall`]s, whichever way the server cut them.
//!
//! - llama.cpp, LM Studio, vLLM: the first delta of a call carries `index`, `id`, the name and the
//!   start of the arguments; later deltas carry only `index` and argument fragments; parallel
//!   calls come at successive indexes.
//! - Ollama, mlx_lm.server: each call arrives whole in one delta. Older Ollama versions send no
//!   `index`, or index 0 for every call, so a delta bringing a *different* `id` for an index that
//!   already holds a named call starts a new call.
//! - Arguments sent as a JSON object instead of a string are taken as their JSON text (see the
//!   wire module); a call without an id gets a generated one; empty arguments become `{}`.

use super::ToolCall;

/// One tool-call delta as the server sent it (all parts optional).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolCallDelta {
    /// The call's position among the answer's calls, when the server says.
    pub index: Option<u64>,
    /// The call id, when the server sends one in this delta.
    pub id: Option<String>,
    /// The tool name (usually only in the first delta of a call).
    pub name: Option<String>,
    /// A fragment of the arguments' JSON text (or all of it).
    pub arguments: Option<String>,
}

#[derive(Debug)]
struct PartialCall {
    index: Option<u64>,
    id: Option<String>,
    name: String,
    arguments: String,
}

impl PartialCall {
    fn new(delta: ToolCallDelta) -> Self {
        Self {
            index: delta.index,
            id: delta.id,
            name: delta.name.unwrap_or_default(),
            arguments: delta.arguments.unwrap_or_default(),
        }
    }

    fn absorb(&mut self, delta: ToolCallDelta) {
        if self.id.is_none() {
            self.id = delta.id;
        }
        if let Some(name) = delta.name
            && self.name.is_empty()
        {
            self.name = name;
        }
        if let Some(arguments) = delta.arguments {
            self.arguments.push_str(&arguments);
        }
    }

    /// Whether `delta` cannot be a continuation of this call and so starts another one.
    fn is_superseded_by(&self, delta: &ToolCallDelta) -> bool {
        if self.name.is_empty() {
            return false;
        }
        match (&self.id, &delta.id) {
            (Some(mine), Some(theirs)) => mine != theirs,
            // A second whole call at a reused index, from a server that sends no ids: a new
            // name arriving after this call's arguments already form a complete JSON value.
            (_, None) => {
                delta.name.is_some()
                    && delta
                        .arguments
                        .as_deref()
                        .is_some_and(|text| !text.is_empty())
                    && serde_json::from_str::<serde_json::Value>(&self.arguments).is_ok()
            }
            (None, Some(_)) => false,
        }
    }

    fn finish(self, generated_ids: &mut impl FnMut() -> String) -> ToolCall {
        let arguments = if self.arguments.trim().is_empty() {
            "{}".to_owned()
        } else {
            self.arguments
        };
        ToolCall {
            id: self.id.unwrap_or_else(&mut *generated_ids),
            name: self.name,
            arguments,
        }
    }
}

/// Collects the tool-call deltas of one answer and hands out the complete calls at the end.
#[derive(Debug, Default)]
pub struct ToolCallAssembler {
    calls: Vec<PartialCall>,
}

impl ToolCallAssembler {
    /// An assembler with no calls yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one delta.
    pub fn push(&mut self, delta: ToolCallDelta) {
        let nothing = delta.id.is_none()
            && delta.name.is_none()
            && delta.arguments.as_deref().is_none_or(str::is_empty);
        let target = match (delta.index, &delta.id) {
            (Some(index), _) => self
                .calls
                .iter()
                .rposition(|call| call.index == Some(index))
                .filter(|&found| !self.calls[found].is_superseded_by(&delta)),
            (None, Some(id)) => self
                .calls
                .iter()
                .rposition(|call| call.id.as_ref() == Some(id)),
            // No index, no id: a fragment continues the last call; a named delta is a new call.
            (None, None) if delta.name.is_some() => None,
            (None, None) => self.calls.len().checked_sub(1),
        };
        match target {
            Some(found) => self.calls[found].absorb(delta),
            None if nothing => {}
            None => self.calls.push(PartialCall::new(delta)),
        }
    }

    /// Whether no call has started.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The complete calls, in the order they started. Calls without an id get a fresh
    /// `call_…` id, unique across assemblers.
    pub fn finish(self) -> Vec<ToolCall> {
        self.finish_with_ids(|| format!("call_{}", uuid::Uuid::new_v4().simple()))
    }

    fn finish_with_ids(self, mut generated_ids: impl FnMut() -> String) -> Vec<ToolCall> {
        self.calls
            .into_iter()
            .filter(|call| !(call.name.is_empty() && call.arguments.trim().is_empty()))
            .map(|call| call.finish(&mut generated_ids))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(
        index: Option<u64>,
        id: Option<&str>,
        name: Option<&str>,
        args: Option<&str>,
    ) -> ToolCallDelta {
        ToolCallDelta {
            index,
            id: id.map(str::to_owned),
            name: name.map(str::to_owned),
            arguments: args.map(str::to_owned),
        }
    }

    fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }

    fn assemble(deltas: Vec<ToolCallDelta>) -> Vec<ToolCall> {
        let mut assembler = ToolCallAssembler::new();
        for delta in deltas {
            assembler.push(delta);
        }
        let mut n = 0;
        assembler.finish_with_ids(|| {
            n += 1;
            format!("gen_{n}")
        })
    }

    #[test]
    fn llama_cpp_fragments_and_parallel_indexes() {
        let mut deltas = Vec::new();
        for (index, id, path) in [(0, "A", "src/lib.rs"), (1, "B", "src/main.rs")] {
            deltas.push(delta(Some(index), Some(id), Some("read_file"), Some("{")));
            for fragment in ["\"", "path", "\":", " \"", path, "\"}"] {
                deltas.push(delta(Some(index), None, None, Some(fragment)));
            }
        }
        assert_eq!(
            assemble(deltas),
            vec![
                call("A", "read_file", r#"{"path": "src/lib.rs"}"#),
                call("B", "read_file", r#"{"path": "src/main.rs"}"#),
            ]
        );
    }

    #[test]
    fn lm_studio_and_vllm_name_first_with_empty_arguments() {
        let deltas = vec![
            delta(Some(0), Some("123456789"), Some("list_dir"), Some("")),
            delta(Some(0), None, None, Some("{\"path\":")),
            delta(Some(0), None, None, Some("\".\"}")),
            // interleaved parallel calls, as vLLM may send them
            delta(Some(1), Some("987654321"), Some("read_file"), None),
            delta(Some(0), None, None, Some("")),
            delta(Some(1), None, None, Some("{}")),
        ];
        assert_eq!(
            assemble(deltas),
            vec![
                call("123456789", "list_dir", r#"{"path":"."}"#),
                call("987654321", "read_file", "{}"),
            ]
        );
    }

    #[test]
    fn ollama_whole_calls_with_indexes() {
        let deltas = vec![
            delta(
                Some(0),
                Some("call_x1"),
                Some("read_file"),
                Some(r#"{"path":"a"}"#),
            ),
            delta(
                Some(1),
                Some("call_x2"),
                Some("read_file"),
                Some(r#"{"path":"b"}"#),
            ),
        ];
        assert_eq!(
            assemble(deltas),
            vec![
                call("call_x1", "read_file", r#"{"path":"a"}"#),
                call("call_x2", "read_file", r#"{"path":"b"}"#),
            ]
        );
    }

    #[test]
    fn old_ollama_reusing_index_zero() {
        let deltas = vec![
            delta(
                Some(0),
                Some("call_a"),
                Some("read_file"),
                Some(r#"{"path":"a"}"#),
            ),
            delta(
                Some(0),
                Some("call_b"),
                Some("read_file"),
                Some(r#"{"path":"b"}"#),
            ),
        ];
        assert_eq!(
            assemble(deltas),
            vec![
                call("call_a", "read_file", r#"{"path":"a"}"#),
                call("call_b", "read_file", r#"{"path":"b"}"#),
            ]
        );
    }

    #[test]
    fn old_ollama_without_index() {
        let deltas = vec![
            delta(
                None,
                Some("call_a"),
                Some("read_file"),
                Some(r#"{"path":"a"}"#),
            ),
            delta(None, Some("call_b"), Some("list_dir"), Some(r#"{}"#)),
        ];
        assert_eq!(
            assemble(deltas),
            vec![
                call("call_a", "read_file", r#"{"path":"a"}"#),
                call("call_b", "list_dir", "{}"),
            ]
        );
    }

    #[test]
    fn no_index_no_id_whole_calls_and_fragments() {
        let deltas = vec![
            delta(None, None, Some("read_file"), Some(r#"{"path":"#)),
            delta(None, None, None, Some(r#""a"}"#)),
            delta(None, None, Some("list_dir"), None),
        ];
        assert_eq!(
            assemble(deltas),
            vec![
                call("gen_1", "read_file", r#"{"path":"a"}"#),
                call("gen_2", "list_dir", "{}"),
            ]
        );
    }

    #[test]
    fn reused_index_without_ids_after_a_complete_call() {
        let deltas = vec![
            delta(Some(0), None, Some("read_file"), Some(r#"{"path":"a"}"#)),
            delta(Some(0), None, Some("read_file"), Some(r#"{"path":"b"}"#)),
        ];
        assert_eq!(
            assemble(deltas),
            vec![
                call("gen_1", "read_file", r#"{"path":"a"}"#),
                call("gen_2", "read_file", r#"{"path":"b"}"#),
            ]
        );
    }

    #[test]
    fn servers_repeating_id_and_name_in_every_delta() {
        let deltas = vec![
            delta(Some(0), Some("c1"), Some("read_file"), Some("{\"pa")),
            delta(Some(0), Some("c1"), Some("read_file"), Some("th\":\"a\"}")),
        ];
        assert_eq!(
            assemble(deltas),
            vec![call("c1", "read_file", r#"{"path":"a"}"#)]
        );
    }

    #[test]
    fn id_arriving_after_the_name() {
        let deltas = vec![
            delta(Some(0), None, Some("read_file"), None),
            delta(Some(0), Some("late"), None, Some("{}")),
        ];
        assert_eq!(assemble(deltas), vec![call("late", "read_file", "{}")]);
    }

    #[test]
    fn truncated_arguments_are_kept_as_written() {
        let deltas = vec![
            delta(Some(0), Some("Q"), Some("read_file"), Some("{")),
            delta(Some(0), None, None, Some("\"")),
            delta(Some(0), None, None, Some("path")),
        ];
        assert_eq!(assemble(deltas), vec![call("Q", "read_file", "{\"path")]);
    }

    #[test]
    fn empty_deltas_make_no_calls() {
        let mut assembler = ToolCallAssembler::new();
        assembler.push(delta(Some(0), None, None, Some("")));
        assembler.push(ToolCallDelta::default());
        assert!(assembler.is_empty());
        assert!(assembler.finish().is_empty());
    }

    #[test]
    fn generated_ids_are_unique() {
        let mut first = ToolCallAssembler::new();
        first.push(delta(None, None, Some("a"), None));
        let mut second = ToolCallAssembler::new();
        second.push(delta(None, None, Some("a"), None));
        let (a, b) = (first.finish(), second.finish());
        assert!(a[0].id.starts_with("call_"));
        assert_ne!(a[0].id, b[0].id);
    }
}
