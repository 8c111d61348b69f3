//! A model that emits a flood of tool calls in one answer (a looping small model emitted 5,000)
//! gets only the first few run; it is told the rest were not, and the editor sees only the calls
//! that ran, plus a notice.

use std::sync::Arc;

use punie::agent::{Agent, StopReason};
use punie::llm::{Message, ModelEvent, ToolCall};
use punie::testing::{FakeEditor, ScriptedModel};
use serde_json::json;

/// What Punie runs from one answer.
const CAP: usize = 32;

#[tokio::test]
async fn only_the_first_tool_calls_of_an_answer_run_and_the_model_is_told() {
    let model = Arc::new(ScriptedModel::new());
    let calls: Vec<ModelEvent> = (0..100)
        .map(|i| {
            ModelEvent::ToolCall(ToolCall {
                id: format!("flood_{i}"),
                name: "read_file".to_owned(),
                // Distinct calls: the same call twice in one answer is a loop, stopped sooner.
                arguments: json!({"path": "notes.txt", "limit": i + 1}).to_string(),
            })
        })
        .collect();
    model.reply(calls).text("Done reading.");
    let agent = Agent::builder().model(model.clone()).build().unwrap();
    let editor = FakeEditor::new().with_file("/project/notes.txt", "a note\n");
    let connection = editor.connect(agent).await.unwrap();
    let session = connection.new_session("/project").await.unwrap();

    let stop = connection.prompt(&session, "read the notes").await.unwrap();
    assert_eq!(stop, StopReason::EndTurn);
    assert_eq!(
        editor.tool_calls().len(),
        CAP,
        "the editor sees only calls that ran"
    );
    let shown = editor.message_text();
    assert!(
        shown.contains("100 tool calls") && shown.contains("skipped the other 68"),
        "the person is told: {shown}"
    );

    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    let history = &requests[1].messages;
    let called: usize = history
        .iter()
        .map(|m| match m {
            Message::Assistant { tool_calls, .. } => tool_calls.len(),
            _ => 0,
        })
        .sum();
    let results: Vec<&str> = history
        .iter()
        .filter_map(|m| match m {
            Message::Tool { content, .. } => Some(content.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(called, CAP, "every call in the history has its result");
    assert_eq!(results.len(), CAP);
    assert!(results[0].contains("a note"), "{}", results[0]);
    let last = results[CAP - 1];
    assert!(
        last.contains("a note")
            && last.contains("100 tool calls")
            && last.contains("68 were NOT run"),
        "the model is told why: {last}"
    );
}
