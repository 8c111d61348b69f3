//! Permission prompts and refusals: writes and commands run only when allowed, "allow always"
//! is remembered, and paths that lead out of the workspace are refused before anyone is asked.

use agent_client_protocol::v1::schema::*;
use serde_json::json;

use super::messages;
use crate::support::editor::{Answer, EditorOptions, new_session, prompt, with_editor, workspace};
use crate::support::fake_model::{FakeModelServer, Reply};

#[tokio::test]
async fn allowed_write_reaches_the_editor_with_a_diff() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "src/new.txt", "content": "fresh\n"}),
    ));
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "old.txt", "content": "after\n"}),
    ));
    server.push(Reply::text("Wrote both."));
    let (_dir, ws) = workspace();
    std::fs::write(ws.join("old.txt"), "before\n").unwrap();
    let options = EditorOptions {
        answers: vec![Answer::AllowOnce, Answer::AllowOnce],
        ..Default::default()
    };
    let (stop, record) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        prompt(&cx, &session, "write files")
            .await
            .unwrap()
            .stop_reason
    })
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    assert_eq!(
        std::fs::read_to_string(ws.join("src/new.txt")).unwrap(),
        "fresh\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("old.txt")).unwrap(),
        "after\n"
    );
    let record = record.lock().unwrap();
    assert_eq!(record.permission_requests.len(), 2);
    let diffs: Vec<Diff> = record
        .permission_requests
        .iter()
        .map(|r| match &r.tool_call.fields.content.as_ref().unwrap()[0] {
            ToolCallContent::Diff(d) => d.clone(),
            other => panic!("expected a diff, got {other:?}"),
        })
        .collect();
    assert_eq!(diffs[0].path, ws.join("src/new.txt"));
    assert_eq!(diffs[0].old_text, None, "a new file has oldText null");
    assert_eq!(diffs[0].new_text, "fresh\n");
    assert_eq!(diffs[1].old_text.as_deref(), Some("before\n"));
    for call in record.tool_calls() {
        assert_eq!(call.kind, ToolKind::Edit);
        assert_eq!(
            record.final_status(&call.tool_call_id.0),
            Some(ToolCallStatus::Completed)
        );
    }
    // The diff is on the tool call itself too, for editors that show it there.
    assert!(matches!(
        record.tool_calls()[0].content.as_slice(),
        [ToolCallContent::Diff(_)]
    ));
}

#[tokio::test]
async fn rejected_write_changes_nothing_and_tells_the_model() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "keep.txt", "content": "clobbered"}),
    ));
    server.push(Reply::text("Understood, I left it alone."));
    let (_dir, ws) = workspace();
    std::fs::write(ws.join("keep.txt"), "precious").unwrap();
    let options = EditorOptions {
        answers: vec![Answer::RejectOnce],
        ..Default::default()
    };
    let (stop, record) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        prompt(&cx, &session, "overwrite keep.txt")
            .await
            .unwrap()
            .stop_reason
    })
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    assert_eq!(
        std::fs::read_to_string(ws.join("keep.txt")).unwrap(),
        "precious"
    );
    let record = record.lock().unwrap();
    assert!(
        record.writes.is_empty(),
        "nothing was written: {:?}",
        record.writes
    );
    let call = record.tool_calls()[0].clone();
    assert_eq!(
        record.final_status(&call.tool_call_id.0),
        Some(ToolCallStatus::Failed)
    );
    let tool_message = messages(&server, 1).last().unwrap().clone();
    assert!(
        tool_message["content"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{tool_message}"
    );
}

#[tokio::test]
async fn allow_always_is_remembered_for_the_session() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "a.txt", "content": "a"}),
    ));
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "b.txt", "content": "b"}),
    ));
    server.push(Reply::text("done"));
    let (_dir, ws) = workspace();
    let options = EditorOptions {
        answers: vec![Answer::AllowAlways],
        ..Default::default()
    };
    let (_, record) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        prompt(&cx, &session, "write two files").await.unwrap()
    })
    .await;
    assert_eq!(
        record.lock().unwrap().permission_requests.len(),
        1,
        "asked once, then remembered"
    );
    assert_eq!(std::fs::read_to_string(ws.join("b.txt")).unwrap(), "b");
}

#[tokio::test]
async fn rejected_command_runs_nothing() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "run_command",
        json!({"command": "touch ran.txt"}),
    ));
    server.push(Reply::text("ok"));
    let (_dir, ws) = workspace();
    let options = EditorOptions {
        answers: vec![Answer::RejectOnce],
        ..Default::default()
    };
    let (_, record) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        prompt(&cx, &session, "touch").await.unwrap()
    })
    .await;
    assert!(record.lock().unwrap().terminals_created.is_empty());
    assert!(!ws.join("ran.txt").exists());
}

#[tokio::test]
async fn paths_outside_the_workspace_are_refused_before_asking_the_editor() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "read_file",
        json!({"path": "../secret.txt"}),
    ));
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "/etc/punie-test", "content": "x"}),
    ));
    server.push(Reply::text("ok"));
    let (dir, ws) = workspace();
    std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
    let options = EditorOptions {
        answers: vec![Answer::AllowOnce, Answer::AllowOnce],
        ..Default::default()
    };
    let (_, record) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        prompt(&cx, &session, "escape").await.unwrap()
    })
    .await;
    let record = record.lock().unwrap();
    assert!(record.reads.is_empty(), "{:?}", record.reads);
    assert!(record.writes.is_empty());
    assert!(
        record.permission_requests.is_empty(),
        "refused before asking"
    );
    let first_result = messages(&server, 1).last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        first_result.contains("outside the workspace"),
        "{first_result}"
    );
}

#[tokio::test]
async fn symlink_out_of_the_workspace_is_refused() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "read_file",
        json!({"path": "escape/secret.txt"}),
    ));
    server.push(Reply::text("ok"));
    let (dir, ws) = workspace();
    std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(dir.path(), ws.join("escape")).unwrap();
    let (_, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "escape").await.unwrap()
        },
    )
    .await;
    assert!(record.lock().unwrap().reads.is_empty());
    let result = messages(&server, 1).last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        result.contains("outside the workspace") && !result.contains("secret\n"),
        "{result}"
    );
}
