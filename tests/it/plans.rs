//! Plans (specs/modes-and-commands.md), through the real binary and the official ACP
//! client: the model's `update_plan` calls reach the editor as `plan` updates with the whole
//! list, lenient input is read, bad input gets a tool error that says what to send, and a
//! loaded session shows its last plan again.

use std::path::Path;

use agent_client_protocol::v1::schema::*;
use serde_json::{Value, json};

use crate::support::editor::{EditorOptions, Record, new_session, prompt, with_editor, workspace};
use crate::support::fake_model::{FakeModelServer, Reply};

/// Each plan the editor was sent, as (content, status, priority) triples.
fn plans(record: &Record) -> Vec<Vec<(String, PlanEntryStatus, PlanEntryPriority)>> {
    record
        .updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::Plan(plan) => Some(
                plan.entries
                    .iter()
                    .map(|e| (e.content.clone(), e.status.clone(), e.priority.clone()))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

fn entry(
    content: &str,
    status: PlanEntryStatus,
    priority: PlanEntryPriority,
) -> (String, PlanEntryStatus, PlanEntryPriority) {
    (content.to_owned(), status, priority)
}

/// The tool results the model was sent in request `n`.
fn tool_results(server: &FakeModelServer, n: usize) -> Vec<String> {
    server.requests()[n]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn update_plan_calls_reach_the_editor_as_whole_plans() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "update_plan",
        json!({"entries": [
            {"content": "Read the code", "status": "completed", "priority": "high"},
            {"content": "Fix the bug", "status": "in_progress", "priority": "medium"},
            {"content": "Run the tests", "status": "pending", "priority": "low"},
        ]}),
    ));
    // What a small model writes: other words for statuses, no priority, a step as a string.
    server.push(Reply::tool_call(
        "update_plan",
        json!({"steps": [
            {"content": "Read the code", "status": "done"},
            {"task": "Fix the bug", "status": "Done"},
            {"content": "Run the tests", "status": "in progress"},
            "Tell the user",
        ]}),
    ));
    server.push(Reply::text("Fixed."));
    let (_dir, ws) = workspace();
    let (stop, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "fix the bug").await.unwrap()
        },
    )
    .await;
    assert_eq!(stop.stop_reason, StopReason::EndTurn);
    let record = record.lock().unwrap();
    use PlanEntryPriority::*;
    use PlanEntryStatus::*;
    assert_eq!(
        plans(&record),
        [
            vec![
                entry("Read the code", Completed, High),
                entry("Fix the bug", InProgress, Medium),
                entry("Run the tests", Pending, Low),
            ],
            vec![
                entry("Read the code", Completed, Medium),
                entry("Fix the bug", Completed, Medium),
                entry("Run the tests", InProgress, Medium),
                entry("Tell the user", Pending, Medium),
            ],
        ]
    );
    // A thought, not a change: no permission asked, shown as thinking, both calls completed.
    assert!(record.permission_requests.is_empty());
    let calls = record.tool_calls();
    assert_eq!(calls.len(), 2);
    for call in &calls {
        assert_eq!(call.kind, ToolKind::Think);
        assert_eq!(
            record.final_status(&call.tool_call_id.0),
            Some(ToolCallStatus::Completed)
        );
    }
    assert_eq!(calls[1].title, "Plan: 2 of 4 done");
    // The model is offered the tool and told what it did.
    let offered: Vec<Value> = server.requests()[0]["tools"].as_array().unwrap().clone();
    assert!(
        offered
            .iter()
            .any(|t| t["function"]["name"] == "update_plan"),
        "{offered:?}"
    );
    assert_eq!(
        tool_results(&server, 2),
        [
            "Plan updated: 3 steps (1 completed, 1 in progress, 1 pending).",
            "Plan updated: 4 steps (2 completed, 1 in progress, 1 pending)."
        ]
    );
}

#[tokio::test]
async fn a_plan_that_cannot_be_read_gets_a_tool_error_saying_what_to_send() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "update_plan",
        json!({"entries": [{"content": "Fix it", "status": "maybe"}]}),
    ));
    server.push(Reply::tool_call(
        "update_plan",
        json!({"entries": vec!["step"; 51]}),
    ));
    server.push(Reply::text("Sorry."));
    let (_dir, ws) = workspace();
    let (_, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "plan it").await.unwrap()
        },
    )
    .await;
    let record = record.lock().unwrap();
    assert!(plans(&record).is_empty(), "no plan from bad input");
    for call in record.tool_calls() {
        assert_eq!(
            record.final_status(&call.tool_call_id.0),
            Some(ToolCallStatus::Failed)
        );
    }
    let results = tool_results(&server, 2);
    assert_eq!(results.len(), 2);
    assert!(
        results[0]
            .contains("entry 1 has the status \"maybe\"; use pending, in_progress or completed"),
        "{}",
        results[0]
    );
    assert!(
        results[1].contains("the plan has 51 entries; at most 50"),
        "{}",
        results[1]
    );
}

fn load(id: &SessionId, cwd: &Path) -> LoadSessionRequest {
    LoadSessionRequest::new(id.clone(), cwd)
}

#[tokio::test]
async fn a_loaded_session_shows_its_last_plan_again() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "update_plan",
        json!({"entries": [{"content": "Write the notes", "status": "in_progress"}]}),
    ));
    server.push(Reply::tool_call(
        "update_plan",
        json!({"entries": [{"content": "Write the notes", "status": "completed"}]}),
    ));
    // A later bad call does not replace the plan the editor showed.
    server.push(Reply::tool_call("update_plan", json!({"entries": 7})));
    server.push(Reply::text("Done."));
    let (_dir, ws) = workspace();
    let (session, _) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "write notes").await.unwrap();
            session
        },
    )
    .await;

    let (replayed, _) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, shared| {
            cx.send_request(load(&session, &ws))
                .block_task()
                .await
                .unwrap();
            // Replayed before the answer.
            plans(&shared.lock().unwrap())
        },
    )
    .await;
    assert_eq!(
        replayed,
        [vec![entry(
            "Write the notes",
            PlanEntryStatus::Completed,
            PlanEntryPriority::Medium
        )]],
        "the last plan, once"
    );
}

#[tokio::test]
async fn a_small_window_folds_the_tool_but_a_call_by_name_still_sets_the_plan() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "update_plan",
        json!({"entries": [{"content": "Look around", "status": "in_progress"}]}),
    ));
    server.push(Reply::text("Looking."));
    let (_dir, ws) = workspace();
    let options = EditorOptions {
        env: vec![("PUNIE_CONTEXT_SIZE".to_owned(), "4096".to_owned())],
        ..Default::default()
    };
    let (_, record) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        prompt(&cx, &session, "look around").await.unwrap()
    })
    .await;
    let request = &server.requests()[0];
    let offered: Vec<&str> = request["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(!offered.contains(&"update_plan"), "{offered:?}");
    assert!(
        request["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("update_plan"),
        "the system prompt still names it"
    );
    assert_eq!(
        plans(&record.lock().unwrap()),
        [vec![entry(
            "Look around",
            PlanEntryStatus::InProgress,
            PlanEntryPriority::Medium
        )]]
    );
}
