//! Tool calls small models write outside any tags (issue 16), through the real binary: the
//! exact answers Qwen2.5-Coder 0.5B/1.5B gave on `llama-server --jinja`, replayed by the fake
//! server. The editor sees an ordinary tool call, the tool runs, and the JSON is never shown as
//! the answer; a botched call is answered with a tool error and the turn goes on.

use agent_client_protocol::v1::schema::*;
use serde_json::Value;

use crate::support::editor::{EditorOptions, Shared, new_session, prompt, with_editor, workspace};
use crate::support::fake_model::{FakeModelServer, Reply};
use crate::support::fixture;

/// The messages of the `n`th request the model server received.
fn messages(server: &FakeModelServer, n: usize) -> Vec<Value> {
    server.requests()[n]["messages"].as_array().unwrap().clone()
}

/// What the model was told the tool did, in the request after the call.
fn tool_result(server: &FakeModelServer) -> String {
    let messages = messages(server, 1);
    let tool = messages
        .iter()
        .rev()
        .find(|message| message["role"] == "tool")
        .unwrap_or_else(|| panic!("no tool result sent back: {messages:?}"));
    tool["content"].as_str().unwrap().to_owned()
}

/// Runs one prompt whose first answer is `first`, then "Done."; returns the stop reason, the
/// record and the workspace's temporary directory (kept alive).
async fn turn(server: &FakeModelServer, first: Reply) -> (StopReason, Shared, tempfile::TempDir) {
    turn_for(server, first, "where is total_value computed?").await
}

/// [`turn`] for the prompt `request`.
async fn turn_for(
    server: &FakeModelServer,
    first: Reply,
    request: &str,
) -> (StopReason, Shared, tempfile::TempDir) {
    server.push(first);
    server.push(Reply::text("Done."));
    let (dir, ws) = workspace();
    std::fs::create_dir(ws.join("src")).unwrap();
    std::fs::write(
        ws.join("src/cart.rs"),
        "fn total_value(items: &[u32]) -> u32 { apply_discount(items.iter().sum()) }\n",
    )
    .unwrap();
    let (stop, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, request).await.unwrap().stop_reason
        },
    )
    .await;
    (stop, record, dir)
}

fn assert_no_json_shown(text: &str) {
    assert!(
        !text.contains("\"name\"") && !text.contains("arguments") && !text.contains("```"),
        "the call was shown as the answer: {text:?}"
    );
}

#[tokio::test]
async fn a_bare_json_answer_runs_the_tool() {
    let server = FakeModelServer::start().await;
    let (stop, record, _dir) = turn(
        &server,
        Reply::sse_body(fixture!("text_tools/bare_json_llama_cpp.sse")),
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let record = record.lock().unwrap();
    let calls = record.tool_calls();
    assert_eq!(calls.len(), 1, "{:?}", record.updates);
    assert_eq!(
        calls[0].raw_input,
        Some(serde_json::json!({"pattern": "total_value", "path": "."}))
    );
    assert_eq!(
        record.final_status(&calls[0].tool_call_id.0),
        Some(ToolCallStatus::Completed)
    );
    let result = tool_result(&server);
    assert!(result.contains("src/cart.rs"), "{result}");
    assert_eq!(record.message_text(), "Done.");
    assert_no_json_shown(&record.message_text());
}

#[tokio::test]
async fn a_fenced_json_answer_runs_the_tool() {
    let server = FakeModelServer::start().await;
    let (stop, record, _dir) = turn(
        &server,
        Reply::sse_body(fixture!("text_tools/fenced_json_llama_cpp.sse")),
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let record = record.lock().unwrap();
    let calls = record.tool_calls();
    assert_eq!(calls.len(), 1, "{:?}", record.updates);
    assert_eq!(
        calls[0].raw_input.as_ref().unwrap()["pattern"],
        "apply_discount"
    );
    assert_eq!(record.message_text(), "Done.");
    assert_no_json_shown(&record.message_text());
    // Whatever grep made of the glob-like path, the model heard back from the tool.
    assert!(!tool_result(&server).is_empty());
}

#[tokio::test]
async fn a_bare_tool_name_in_tool_response_runs_the_tool() {
    let server = FakeModelServer::start().await;
    let (stop, record, _dir) = turn(
        &server,
        Reply::sse_body(fixture!("text_tools/tool_response_name_llama_cpp.sse")),
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let record = record.lock().unwrap();
    let calls = record.tool_calls();
    assert_eq!(calls.len(), 1, "{:?}", record.updates);
    assert_eq!(
        record.final_status(&calls[0].tool_call_id.0),
        Some(ToolCallStatus::Completed)
    );
    let result = tool_result(&server);
    assert!(result.contains("src"), "{result}");
    assert!(!record.message_text().contains("tool_response"));
}

#[tokio::test]
async fn a_botched_call_is_corrected_and_the_turn_goes_on() {
    let server = FakeModelServer::start().await;
    let (stop, record, _dir) = turn(
        &server,
        Reply::text(r#"{"name": "read_inventory/report.py", "arguments": {}}"#),
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let record = record.lock().unwrap();
    assert_eq!(record.message_text(), "Done.");
    let result = tool_result(&server);
    assert!(
        result.contains("no tool named `read_inventory/report.py`")
            && result
                .contains(r#"{"name": "read_file", "arguments": {"path":"inventory/report.py"}}"#),
        "the model is told the tool it meant, with a call to copy: {result}"
    );
}

#[tokio::test]
async fn an_invented_test_runner_is_pointed_at_run_command() {
    let server = FakeModelServer::start().await;
    let (stop, _record, _dir) = turn(
        &server,
        Reply::text(r#"{"name": "run_tests", "arguments": {"path": "tests"}}"#),
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let result = tool_result(&server);
    assert!(
        result.contains("no tool named `run_tests`")
            && result.contains(r#"{"name": "run_command", "arguments": {"command":"pytest"}}"#),
        "the model is shown the call that runs tests: {result}"
    );
}

/// Qwen2.5-Coder 1.5B called `run_tests` for "Run the tests with `python3 -m unittest`", was
/// offered `pytest` to copy, and answered with that advice instead of running anything: the
/// call to copy is the command the request named.
#[tokio::test]
async fn the_command_the_request_names_is_the_call_to_copy() {
    let server = FakeModelServer::start().await;
    let (stop, _record, _dir) = turn_for(
        &server,
        Reply::text(r#"{"name": "run_tests", "arguments": {}}"#),
        "Run the tests with `python3 -m unittest` and tell me which one fails.",
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let result = tool_result(&server);
    assert!(
        result
            .contains(r#"{"name": "run_command", "arguments": {"command":"python3 -m unittest"}}"#),
        "the model is shown the command the person asked for: {result}"
    );
}

#[tokio::test]
async fn a_function_called_as_a_tool_is_looked_up_with_grep() {
    let server = FakeModelServer::start().await;
    let (stop, _record, _dir) = turn(
        &server,
        Reply::text(r#"{"name": "calculate_total", "arguments": {"items": []}}"#),
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let result = tool_result(&server);
    assert!(
        result.contains(r#"{"name": "grep", "arguments": {"pattern":"calculate_total"}}"#),
        "the model is told to find the function, not call it: {result}"
    );
}

#[tokio::test]
async fn json_that_is_no_call_is_the_answer() {
    let server = FakeModelServer::start().await;
    let answer = "```json\n{\n  \"name\": \"my-app\",\n  \"version\": \"1.0.0\"\n}\n```";
    server.push(Reply::text(answer));
    let (_dir, ws) = workspace();
    let (stop, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "show me a package.json")
                .await
                .unwrap()
                .stop_reason
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let record = record.lock().unwrap();
    assert!(record.tool_calls().is_empty());
    assert_eq!(record.message_text(), answer);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn a_bare_name_of_a_tool_that_needs_arguments_is_told_which() {
    let server = FakeModelServer::start().await;
    let (stop, record, _dir) =
        turn(&server, Reply::text("<tool_response>grep</tool_response>")).await;
    assert_eq!(stop, StopReason::EndTurn);
    let record = record.lock().unwrap();
    assert_eq!(record.message_text(), "Done.");
    let result = tool_result(&server);
    assert!(
        result.starts_with("Error:") && result.contains("pattern"),
        "the model is told the missing field: {result}"
    );
}
