//! A small model that repeats itself (issue 16: Qwen2.5-Coder 0.5B writes the same line, or the
//! same bare JSON grep call, until `max_tokens`), through the real binary and a fake server that
//! streams the loop slowly: Punie stops the request long before the stream ends, tells the
//! person, keeps the first copy, and the turn goes on or ends cleanly.

use std::time::Duration;

use agent_client_protocol::v1::schema::*;
use serde_json::{Value, json};

use crate::support::editor::{EditorOptions, Shared, new_session, prompt, with_editor, workspace};
use crate::support::fake_model::{FAKE_MODEL, FakeModelServer, Part, Reply};

/// How many copies the fake model streams: far more than Punie should read.
const COPIES: usize = 300;

/// A llama.cpp-shaped stream of `piece` written `COPIES` times, one delta each, slowly.
fn looping(piece: &str) -> Reply {
    let chunk = |delta: Value, finish: Option<&str>| {
        json!({
            "choices": [{"finish_reason": finish, "index": 0, "delta": delta}],
            "id": "chatcmpl-loop", "model": FAKE_MODEL, "object": "chat.completion.chunk",
        })
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": null}), None)];
    events.extend((0..COPIES).map(|_| chunk(json!({"content": piece}), None)));
    events.push(chunk(json!({}), Some("length")));
    Reply::sse_events(events).chunk_delay(Duration::from_millis(10))
}

/// The messages of the `n`th request the model server received.
fn messages(server: &FakeModelServer, n: usize) -> Vec<Value> {
    server.requests()[n]["messages"].as_array().unwrap().clone()
}

/// The tool results of the `n`th request.
fn tool_results(server: &FakeModelServer, n: usize) -> Vec<String> {
    messages(server, n)
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

/// Runs the prompts in order in one session on a small project; the stop reasons.
async fn run(server: &FakeModelServer, prompts: &[&str]) -> (Vec<StopReason>, Shared) {
    let (_dir, ws) = workspace();
    std::fs::create_dir(ws.join("src")).unwrap();
    std::fs::write(
        ws.join("src/cart.rs"),
        "fn total_value(items: &[u32]) -> u32 { items.iter().sum() }\n",
    )
    .unwrap();
    with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            let mut stops = Vec::new();
            for text in prompts {
                stops.push(prompt(&cx, &session, text).await.unwrap().stop_reason);
            }
            stops
        },
    )
    .await
}

async fn assert_stopped_early(server: &FakeModelServer) {
    assert!(
        server
            .wait_for_disconnects(1, Duration::from_secs(10))
            .await,
        "Punie read the looping stream to its end"
    );
}

#[tokio::test]
async fn a_repeated_line_is_stopped_the_person_told_and_one_copy_kept() {
    let server = FakeModelServer::start().await;
    let line = "I will search the code for the function total_value.\n";
    server.push(looping(line));
    server.push(Reply::text("It is in src/cart.rs."));
    let (stops, record) = run(&server, &["where is total_value?", "so where?"]).await;
    assert_eq!(stops, [StopReason::EndTurn, StopReason::EndTurn]);
    assert_stopped_early(&server).await;

    let shown = record.lock().unwrap().message_text();
    assert!(
        shown.contains("Punie stopped the model")
            && shown.contains("repeated \"I will search the code for the function total_value.\""),
        "the person is told: {shown}"
    );
    assert!(
        shown.matches(line).count() < COPIES / 4,
        "the loop was cut short: {} copies shown",
        shown.matches(line).count()
    );

    // The next prompt works, and the history holds one copy and the note, not the loop.
    let history = messages(&server, 1);
    let answer = history
        .iter()
        .rev()
        .find(|m| m["role"] == "assistant")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    // The first copy (the detector may keep up to the line end of a second one) and the quote
    // in the note, not the loop.
    assert!(
        answer.matches(line.trim()).count() <= 3 && answer.len() < 3 * line.len() + 300,
        "{answer}"
    );
    assert!(
        answer.starts_with(line) && answer.contains("Punie stopped it"),
        "{answer}"
    );
    assert_eq!(history.last().unwrap()["content"], "so where?");
}

#[tokio::test]
async fn a_bare_call_written_again_and_again_runs_once_and_the_turn_goes_on() {
    let server = FakeModelServer::start().await;
    server.push(looping(
        "{\"name\": \"grep\", \"arguments\": {\"pattern\": \"total_value\", \"path\": \".\"}}\n",
    ));
    server.push(Reply::text("It is in src/cart.rs."));
    let (stops, record) = run(&server, &["where is total_value?"]).await;
    assert_eq!(stops, [StopReason::EndTurn]);
    assert_stopped_early(&server).await;

    let record = record.lock().unwrap();
    let calls = record.tool_calls();
    assert_eq!(calls.len(), 1, "the call ran once: {:?}", record.updates);
    assert_eq!(
        record.final_status(&calls[0].tool_call_id.0),
        Some(ToolCallStatus::Completed)
    );
    let shown = record.message_text();
    assert!(
        shown.contains("Punie stopped the model") && shown.contains("same tool call twice"),
        "{shown}"
    );
    assert!(shown.ends_with("It is in src/cart.rs."), "{shown}");
    assert!(!shown.contains("\"arguments\""), "no JSON shown: {shown}");

    let results = tool_results(&server, 1);
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(
        results[0].contains("src/cart.rs") && results[0].contains("Do not repeat"),
        "the model gets the result and is told it looped: {}",
        results[0]
    );
}

#[tokio::test]
async fn the_same_structured_call_twice_in_one_answer_runs_once() {
    let server = FakeModelServer::start().await;
    let args = json!({"path": "src/cart.rs"});
    server.push(Reply::parts(vec![
        Part::tool_call("read_file", &args),
        Part::tool_call("read_file", &args),
    ]));
    server.push(Reply::text("Read it."));
    let (stops, record) = run(&server, &["read the cart"]).await;
    assert_eq!(stops, [StopReason::EndTurn]);
    assert_eq!(record.lock().unwrap().tool_calls().len(), 1);
    let history = messages(&server, 1);
    let assistant = history.iter().find(|m| m["role"] == "assistant").unwrap();
    assert_eq!(assistant["tool_calls"].as_array().unwrap().len(), 1);
    assert_eq!(
        tool_results(&server, 1).len(),
        1,
        "every call in the history has its result"
    );
}

#[tokio::test]
async fn a_call_repeated_across_requests_gets_its_result_again_then_the_turn_ends() {
    let server = FakeModelServer::start().await;
    let args = json!({"pattern": "total_value", "path": "."});
    for _ in 0..6 {
        server.push(Reply::tool_call("grep", &args));
    }
    let (stops, record) = run(&server, &["where is total_value?"]).await;
    assert_eq!(stops, [StopReason::EndTurn]);
    // One real call, three repeats; the third ends the turn.
    assert_eq!(server.requests().len(), 4, "no more requests were spent");
    let record = record.lock().unwrap();
    assert_eq!(record.tool_calls().len(), 4, "every repeat is shown");
    let shown = record.message_text();
    assert!(
        shown.contains("kept repeating tool calls") && shown.contains("stopped this turn"),
        "the person is told: {shown}"
    );
    let results = tool_results(&server, 3);
    assert_eq!(results.len(), 3);
    assert!(!results[0].contains("already made"), "{}", results[0]);
    for result in &results[1..] {
        assert!(
            result.contains("already made this exact call") && result.contains("src/cart.rs"),
            "the earlier result again, with a note: {result}"
        );
    }
}
