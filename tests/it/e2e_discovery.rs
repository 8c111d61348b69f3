//! Punie's tool discovery extension, end to end: an editor that serves a catalog gets its tools
//! offered to the model (with their real schemas) and called through `_punie/call_tool`.

use crate::support::editor::{Answer, EditorOptions, new_session, prompt, with_editor, workspace};
use crate::support::fake_model::{FakeModelServer, Reply};
use agent_client_protocol::v1::schema::*;
use serde_json::{Value, json};

fn offered_tools(request: &Value) -> Vec<Value> {
    request["tools"].as_array().cloned().unwrap_or_default()
}

fn catalog() -> Value {
    json!({"tools": [
        {"name": "rename_symbol", "kind": "edit", "description": "Rename a symbol everywhere (IDE refactoring).",
         "parameters": {"type": "object", "properties": {"symbol": {"type": "string"}, "to": {"type": "string"}}, "required": ["symbol", "to"]},
         "requiresPermission": true, "categories": ["refactoring"]},
        {"name": "run_inspections", "kind": "read", "description": "Run the IDE's inspections on a file.",
         "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}},
        {"name": "read_file", "kind": "read", "description": "the editor's own read"},
        {"name": "rename_symbol", "kind": "edit", "description": "a duplicate"},
        {"name": "broken", "kind": "warp", "description": "unknown kind"},
        {"name": "bad_schema", "parameters": {"type": "array"}}
    ]})
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_tools_are_offered_with_their_schema_and_bridged() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "run_inspections",
        json!({"path": "src/lib.rs"}),
    ));
    server.push(Reply::tool_call(
        "rename_symbol",
        json!({"symbol": "foo", "to": "bar"}),
    ));
    server.push(Reply::text("Renamed."));
    let (_dir, ws) = workspace();
    let options = EditorOptions {
        catalog: Some(catalog()),
        answers: vec![Answer::AllowOnce],
        ..Default::default()
    };
    let (stop, record) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        prompt(&cx, &session, "rename foo to bar")
            .await
            .unwrap()
            .stop_reason
    })
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let record = record.lock().unwrap();
    assert_eq!(record.discover_requests.len(), 1, "asked once per session");
    assert!(
        record.discover_requests[0]["sessionId"]
            .as_str()
            .unwrap()
            .starts_with("sess_")
    );

    let tools = offered_tools(&server.requests()[0]);
    let names: Vec<&str> = tools
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"rename_symbol") && names.contains(&"run_inspections"),
        "{names:?}"
    );
    assert!(
        names.contains(&"read_file"),
        "a catalog name matching a built-in maps to it"
    );
    for absent in ["broken", "bad_schema", "write_file", "run_command"] {
        assert!(
            !names.contains(&absent),
            "{absent} should not be offered: {names:?}"
        );
    }
    assert_eq!(
        names.iter().filter(|n| **n == "rename_symbol").count(),
        1,
        "duplicates dropped"
    );
    let rename = tools
        .iter()
        .find(|t| t["function"]["name"] == "rename_symbol")
        .unwrap();
    assert_eq!(
        rename["function"]["description"],
        "Rename a symbol everywhere (IDE refactoring)."
    );
    assert_eq!(
        rename["function"]["parameters"]["required"],
        json!(["symbol", "to"])
    );
    let read = tools
        .iter()
        .find(|t| t["function"]["name"] == "read_file")
        .unwrap();
    assert_ne!(
        read["function"]["description"], "the editor's own read",
        "the built-in keeps its own description"
    );

    // Both calls went to the editor; only the edit asked for permission.
    assert_eq!(record.bridged_calls.len(), 2);
    assert_eq!(record.bridged_calls[1]["name"], "rename_symbol");
    assert_eq!(
        record.bridged_calls[1]["arguments"],
        json!({"symbol": "foo", "to": "bar"})
    );
    assert_eq!(record.permission_requests.len(), 1);
    let kinds: Vec<ToolKind> = record.tool_calls().iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [ToolKind::Read, ToolKind::Edit]);
    let result = server.requests()[2]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["content"]
        .clone();
    assert_eq!(result, "rename_symbol ran in the editor");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_the_extension_capabilities_decide() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("hi"));
    let (_dir, ws) = workspace();
    let (_, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "hi").await.unwrap()
        },
    )
    .await;
    assert!(
        record.lock().unwrap().discover_requests.is_empty(),
        "no catalog asked without the capability"
    );
    let names: Vec<String> = offered_tools(&server.requests()[0])
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
        .collect();
    for expected in ["read_file", "write_file", "run_command"] {
        assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unusable_catalog_falls_back_to_capabilities() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("hi"));
    let (_dir, ws) = workspace();
    let options = EditorOptions {
        catalog: Some(json!({"not_tools": true})),
        ..Default::default()
    };
    let (stop, _) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        prompt(&cx, &session, "hi").await.unwrap().stop_reason
    })
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let names: Vec<String> = offered_tools(&server.requests()[0])
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.iter().any(|n| n == "write_file"), "{names:?}");
}
