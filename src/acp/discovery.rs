//! Punie's ACP extension for dynamic tool discovery: an editor that advertises
//! `clientCapabilities._meta["punie.dev/discoverTools"] = true` is asked for its tool catalog
//! (`_punie/discover_tools`) right after each `session/new`, and catalog tools that are not
//! built-in are called through `_punie/call_tool`. The wire format is specified in
//! `specs/tool-discovery.md`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use agent_client_protocol::UntypedMessage;
use agent_client_protocol::v1::schema as wire;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::editor::Editor;
use crate::agent::{Session, ToolsLoading};
use crate::tools::bridge::{BridgedTool, RemoteResult, RemoteToolSpec, ToolCaller};
use crate::tools::{Tool, ToolError, Toolset};
use crate::workspace::{ToolContent, ToolKind};

/// The capability key an editor sets in `clientCapabilities._meta`.
pub(crate) const CAPABILITY: &str = "punie.dev/discoverTools";
/// Agent → editor: the catalog.
pub(crate) const DISCOVER_METHOD: &str = "_punie/discover_tools";
/// Agent → editor: call a catalog tool.
pub(crate) const CALL_METHOD: &str = "_punie/call_tool";
/// How long the editor has to answer with its catalog.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one bridged call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(300);
/// Built-in tools that search the local workspace: editors have no search method, so these
/// are offered in every tier.
const ALWAYS_OFFERED: [&str; 3] = ["list_dir", "glob", "grep"];

/// True when the editor advertised the extension.
pub(crate) fn advertised(caps: &wire::ClientCapabilities) -> bool {
    caps.meta
        .as_ref()
        .and_then(|meta| meta.get(CAPABILITY))
        .and_then(Value::as_bool)
        == Some(true)
}

fn parse_kind(kind: Option<&Value>) -> Result<ToolKind, String> {
    Ok(
        match kind.map(|k| k.as_str().ok_or("kind is not a string")) {
            None => ToolKind::Other,
            Some(Err(reason)) => return Err(reason.to_owned()),
            Some(Ok(kind)) => match kind {
                "read" => ToolKind::Read,
                "edit" => ToolKind::Edit,
                "delete" => ToolKind::Delete,
                "move" => ToolKind::Move,
                "search" => ToolKind::Search,
                "execute" => ToolKind::Execute,
                "think" => ToolKind::Think,
                "fetch" => ToolKind::Fetch,
                "other" => ToolKind::Other,
                unknown => return Err(format!("unknown kind {unknown:?}")),
            },
        },
    )
}

/// Kinds that only look at things; tools of other kinds need permission unless the catalog
/// says otherwise.
fn read_only(kind: ToolKind) -> bool {
    matches!(
        kind,
        ToolKind::Read | ToolKind::Search | ToolKind::Think | ToolKind::Fetch
    )
}

fn parse_entry(entry: &Value) -> Result<RemoteToolSpec, String> {
    let object = entry.as_object().ok_or("the entry is not an object")?;
    let name = object
        .get("name")
        .and_then(Value::as_str)
        .ok_or("no name")?;
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid_name {
        return Err(format!(
            "name {name:?} must be 1-64 characters of A-Z, a-z, 0-9, _ and -"
        ));
    }
    let description = object
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let parameters = object
        .get("parameters")
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    let schema_ok = parameters.get("type").and_then(Value::as_str) == Some("object")
        && parameters.get("properties").is_none_or(Value::is_object);
    if !schema_ok {
        return Err(format!(
            "{name}: parameters must be a JSON Schema of type \"object\""
        ));
    }
    let kind = parse_kind(object.get("kind")).map_err(|reason| format!("{name}: {reason}"))?;
    let requires_permission = match object.get("requiresPermission") {
        None => !read_only(kind),
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(format!("{name}: requiresPermission is not a boolean")),
    };
    let categories = object
        .get("categories")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(RemoteToolSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        parameters,
        kind,
        requires_permission,
        categories,
    })
}

/// Parses a catalog, skipping (and logging) each malformed or duplicate entry.
pub(crate) fn parse_catalog(session: &str, catalog: &Value) -> Result<Vec<RemoteToolSpec>, String> {
    let entries = catalog
        .get("tools")
        .and_then(Value::as_array)
        .ok_or("the answer has no `tools` array")?;
    let mut seen = HashSet::new();
    let mut specs = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        match parse_entry(entry) {
            Ok(spec) if !seen.insert(spec.name.clone()) => {
                tracing::warn!(session, index, name = %spec.name, "tool catalog: duplicate name, entry skipped");
            }
            Ok(spec) => specs.push(spec),
            Err(reason) => tracing::warn!(session, index, %reason, "tool catalog: entry skipped"),
        }
    }
    Ok(specs)
}

/// Builds the session's toolset from a catalog: built-in tools where the names match, bridged
/// tools for the rest, plus the local search tools and the embedder's own tools.
pub(crate) fn catalog_toolset(
    specs: Vec<RemoteToolSpec>,
    available: &Toolset,
    extra: &[Arc<dyn Tool>],
    caller: Arc<dyn ToolCaller>,
) -> Toolset {
    let mut toolset = Toolset::new();
    for spec in specs {
        match available.get(&spec.name) {
            Some(builtin) => toolset.add(builtin.clone()),
            None => toolset.add(Arc::new(BridgedTool::new(spec, caller.clone()))),
        }
    }
    for name in ALWAYS_OFFERED {
        if let Some(tool) = available.get(name) {
            toolset.add(tool.clone());
        }
    }
    for tool in extra {
        toolset.add(tool.clone());
    }
    toolset
}

/// Asks the editor for its catalog and, if it answers with one, makes it the session's tools.
/// Runs in the background; the session's first prompt waits for it.
pub(crate) async fn discover(
    editor: Editor,
    session: Arc<Session>,
    loading: ToolsLoading,
    available: Toolset,
    extra: Vec<Arc<dyn Tool>>,
) {
    let _loading = loading;
    let request =
        match UntypedMessage::new(DISCOVER_METHOD, json!({"sessionId": editor.session_id})) {
            Ok(request) => request,
            Err(error) => return tracing::warn!(%error, "cannot build the discovery request"),
        };
    let answer = tokio::time::timeout(
        DISCOVERY_TIMEOUT,
        editor.cx.send_request(request).block_task(),
    )
    .await;
    let catalog = match answer {
        Ok(Ok(catalog)) => catalog,
        Ok(Err(error)) => {
            return tracing::warn!(session = session.id(), %error, "the editor did not give a tool catalog; using its capabilities");
        }
        Err(_) => {
            return tracing::warn!(
                session = session.id(),
                "no tool catalog within {DISCOVERY_TIMEOUT:?}; using the editor's capabilities"
            );
        }
    };
    match parse_catalog(session.id(), &catalog) {
        Ok(specs) => {
            tracing::info!(
                session = session.id(),
                entries = specs.len(),
                "tools: the editor's catalog"
            );
            let caller = Arc::new(EditorToolCaller { editor });
            session.set_toolset(catalog_toolset(specs, &available, &extra, caller));
        }
        Err(reason) => {
            tracing::warn!(session = session.id(), %reason, "unusable tool catalog; using the editor's capabilities")
        }
    }
}

/// Calls catalog tools through `_punie/call_tool`.
struct EditorToolCaller {
    editor: Editor,
}

impl ToolCaller for EditorToolCaller {
    fn call<'a>(
        &'a self,
        name: &'a str,
        arguments: Value,
    ) -> BoxFuture<'a, Result<RemoteResult, ToolError>> {
        Box::pin(async move {
            let params =
                json!({"sessionId": self.editor.session_id, "name": name, "arguments": arguments});
            let request = UntypedMessage::new(CALL_METHOD, params)
                .map_err(|e| ToolError::Failed(e.to_string()))?;
            let answer = tokio::time::timeout(
                CALL_TIMEOUT,
                self.editor.cx.send_request(request).block_task(),
            )
            .await
            .map_err(|_| {
                ToolError::Failed(format!(
                    "the editor did not answer {name} within {CALL_TIMEOUT:?}"
                ))
            })?
            .map_err(|e| {
                ToolError::Failed(format!("the editor failed to run {name}: {}", e.message))
            })?;
            Ok(remote_result(answer))
        })
    }
}

/// Reads an MCP-style tool result: `{content: [ContentBlock…], isError?: bool}`.
fn remote_result(answer: Value) -> RemoteResult {
    let mut texts = Vec::new();
    for block in answer
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = match block.get("type").and_then(Value::as_str) {
            Some("text") => block
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            Some("resource") => block
                .pointer("/resource/text")
                .and_then(Value::as_str)
                .map_or_else(|| "[a binary resource]".to_owned(), str::to_owned),
            Some("resource_link") => {
                format!(
                    "[resource: {}]",
                    block.get("uri").and_then(Value::as_str).unwrap_or("?")
                )
            }
            Some(other) => format!("[{other} content]"),
            None => continue,
        };
        texts.push(text);
    }
    let text = texts.join("\n");
    RemoteResult {
        content: if text.is_empty() {
            Vec::new()
        } else {
            vec![ToolContent::Text(text.clone())]
        },
        is_error: answer
            .get("isError")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        text,
        raw: answer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_entries_are_skipped_one_by_one() {
        let catalog = json!({"tools": [
            {"name": "rename_symbol", "kind": "edit", "description": "Rename", "parameters": {"type": "object", "properties": {"to": {"type": "string"}}}},
            {"name": "rename_symbol", "kind": "edit", "description": "again"},
            {"name": "bad kind", "kind": "edit"},
            {"name": "weird", "kind": "teleport"},
            {"name": "schema", "parameters": {"type": "string"}},
            "not an object",
            {"name": "inspect", "kind": "read"},
            {"name": "run_config", "kind": "execute", "requiresPermission": false, "categories": ["run"]}
        ]});
        let specs = parse_catalog("s", &catalog).unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["rename_symbol", "inspect", "run_config"]);
        assert!(
            specs[0].requires_permission,
            "edits need permission by default"
        );
        assert!(!specs[1].requires_permission, "reads do not");
        assert!(!specs[2].requires_permission, "the catalog's answer wins");
        assert_eq!(specs[2].categories, ["run"]);
        assert!(parse_catalog("s", &json!({"nope": 1})).is_err());
    }

    #[test]
    fn results_in_mcp_shape_are_read() {
        let result = remote_result(json!({"content": [
            {"type": "text", "text": "renamed 3 places"},
            {"type": "resource", "resource": {"uri": "file:///a", "text": "fn a() {}"}},
            {"type": "image", "data": "…", "mimeType": "image/png"}
        ], "isError": false}));
        assert_eq!(result.text, "renamed 3 places\nfn a() {}\n[image content]");
        assert!(!result.is_error);
        assert!(
            remote_result(json!({"content": [{"type": "text", "text": "no"}], "isError": true}))
                .is_error
        );
    }
}
