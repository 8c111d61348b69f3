//! `session/cancel` mid-stream, while a permission prompt waits, and while a command runs: the
//! turn ends as cancelled and what it started stops.

use std::time::Duration;

use agent_client_protocol::v1::schema::*;
use serde_json::json;

use crate::support::editor::{
    Answer, EditorOptions, new_session, process_alive, prompt, wait_until, with_editor, workspace,
};
use crate::support::fake_model::{FakeModelServer, Reply};

#[tokio::test]
async fn cancel_mid_stream_aborts_the_model_request() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("one two three four five six seven eight").hang_after(3));
    let (_dir, ws) = workspace();
    let (_, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, shared| {
            let session = new_session(&cx, &ws).await;
            let pending = cx.send_request(PromptRequest::new(
                session.clone(),
                vec![ContentBlock::from("count")],
            ));
            wait_until(&shared, "the first chunk arrives", |r| {
                !r.message_text().is_empty()
            })
            .await;
            cx.send_notification(CancelNotification::new(session.clone()))
                .unwrap();
            let response = tokio::time::timeout(Duration::from_secs(10), pending.block_task())
                .await
                .expect("prompt answered promptly")
                .unwrap();
            assert_eq!(response.stop_reason, StopReason::Cancelled);
            let updates_at_response = shared.lock().unwrap().updates.len();
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(
                shared.lock().unwrap().updates.len(),
                updates_at_response,
                "no session/update after the prompt's response"
            );

            // The session keeps working after a cancel.
            server.push(Reply::text("still here"));
            let again = prompt(&cx, &session, "are you there?").await.unwrap();
            assert_eq!(again.stop_reason, StopReason::EndTurn);
        },
    )
    .await;
    wait_for(
        || server.disconnects() >= 1,
        "the model server sees the request aborted",
    )
    .await;
    assert!(
        record
            .lock()
            .unwrap()
            .message_text()
            .ends_with("still here")
    );
}

#[tokio::test]
async fn cancel_while_waiting_for_permission() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "x.txt", "content": "x"}),
    ));
    let (_dir, ws) = workspace();
    let options = EditorOptions {
        answers: vec![Answer::Never],
        ..Default::default()
    };
    let (_, record) = with_editor(&server.base_url(), &ws, options, async |cx, shared| {
        let session = new_session(&cx, &ws).await;
        let pending = cx.send_request(PromptRequest::new(
            session.clone(),
            vec![ContentBlock::from("write")],
        ));
        wait_until(&shared, "permission is asked", |r| {
            !r.permission_requests.is_empty()
        })
        .await;
        cx.send_notification(CancelNotification::new(session.clone()))
            .unwrap();
        let response = tokio::time::timeout(Duration::from_secs(10), pending.block_task())
            .await
            .expect("prompt answered promptly")
            .unwrap();
        assert_eq!(response.stop_reason, StopReason::Cancelled);
    })
    .await;
    assert!(!ws.join("x.txt").exists());
    assert!(record.lock().unwrap().writes.is_empty());
}

#[tokio::test]
async fn cancelled_permission_outcome_ends_the_turn_as_cancelled() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "x.txt", "content": "x"}),
    ));
    let (_dir, ws) = workspace();
    let options = EditorOptions {
        answers: vec![Answer::Cancelled],
        ..Default::default()
    };
    let (stop, _) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        prompt(&cx, &session, "write").await.unwrap().stop_reason
    })
    .await;
    assert_eq!(stop, StopReason::Cancelled);
    assert!(!ws.join("x.txt").exists());
}

#[tokio::test]
async fn cancel_kills_a_running_command() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "run_command",
        json!({"command": "sleep 300"}),
    ));
    let (_dir, ws) = workspace();
    let options = EditorOptions {
        answers: vec![Answer::AllowOnce],
        ..Default::default()
    };
    let (_, record) = with_editor(&server.base_url(), &ws, options, async |cx, shared| {
        let session = new_session(&cx, &ws).await;
        let pending = cx.send_request(PromptRequest::new(
            session.clone(),
            vec![ContentBlock::from("sleep")],
        ));
        wait_until(&shared, "the command starts", |r| {
            !r.terminal_pids.is_empty()
        })
        .await;
        cx.send_notification(CancelNotification::new(session.clone()))
            .unwrap();
        let response = tokio::time::timeout(Duration::from_secs(10), pending.block_task())
            .await
            .expect("prompt answered promptly")
            .unwrap();
        assert_eq!(response.stop_reason, StopReason::Cancelled);
        wait_until(&shared, "the terminal is released", |r| {
            !r.terminals_released.is_empty()
        })
        .await;
    })
    .await;
    let pid = record.lock().unwrap().terminal_pids[0];
    wait_for(|| !process_alive(pid), "the command is killed").await;
}

async fn wait_for(condition: impl Fn() -> bool, what: &str) {
    for _ in 0..200 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}
