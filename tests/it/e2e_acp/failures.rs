//! Failures a session survives: the model server down or failing, unusable tool arguments, empty
//! answers, and the limits that end a turn.

use agent_client_protocol::v1::schema::*;
use serde_json::json;

use super::{assert_stdout_is_json_rpc, messages};
use crate::support::editor::{EditorOptions, new_session, prompt, with_editor, workspace};
use crate::support::fake_model::{FakeModelServer, Reply};
use crate::support::fixture;

#[tokio::test]
async fn model_server_down_gives_an_actionable_error_and_the_session_survives() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/some-model", listener.local_addr().unwrap());
    drop(listener);
    let (_dir, ws) = workspace();
    // Without the wait for a server that is starting (tests/it/server_wait.rs has that).
    let options = EditorOptions {
        env: vec![("PUNIE_SERVER_WAIT".to_owned(), "0".to_owned())],
        ..Default::default()
    };
    let (errors, record) = with_editor(&url, &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        let first = prompt(&cx, &session, "hello").await.unwrap_err();
        let second = prompt(&cx, &session, "hello again").await.unwrap_err();
        (first, second)
    })
    .await;
    let message = errors.0.message.clone();
    assert!(
        message.contains("cannot reach the model server"),
        "{message}"
    );
    assert!(message.contains("127.0.0.1"), "names the URL: {message}");
    assert!(message.contains("--model"), "says what to do: {message}");
    assert_eq!(errors.1.message, message, "still serving after the failure");
    assert_stdout_is_json_rpc(&record.lock().unwrap().stdout_lines);
}

#[tokio::test]
async fn server_error_then_success_in_the_same_session() {
    let server = FakeModelServer::start().await;
    server.push(Reply::error(
        500,
        json!({"error": {"code": 500, "message": "model crashed", "type": "server_error"}}),
    ));
    server.push(Reply::text("recovered"));
    let (_dir, ws) = workspace();
    let (results, _) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            let first = prompt(&cx, &session, "hello").await;
            let second = prompt(&cx, &session, "hello again").await;
            (first, second)
        },
    )
    .await;
    let error = results.0.unwrap_err();
    assert!(
        error.message.contains("model crashed") && error.message.contains(&server.base_url()),
        "{}",
        error.message
    );
    assert_eq!(results.1.unwrap().stop_reason, StopReason::EndTurn);
    // The failed prompt left no half turn behind: the retry's history is system + user only.
    let msgs = messages(&server, 1);
    assert_eq!(msgs.len(), 2, "{msgs:?}");
}

#[tokio::test]
async fn unparseable_tool_arguments_are_answered_as_a_tool_error() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call("read_file", "{\"path\": \"a.txt\""));
    server.push(Reply::text("sorry"));
    let (_dir, ws) = workspace();
    let (stop, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "read").await.unwrap().stop_reason
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    assert!(record.lock().unwrap().reads.is_empty());
    let tool_message = messages(&server, 1).last().unwrap().clone();
    assert_eq!(tool_message["role"], "tool");
    assert!(
        tool_message["content"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{tool_message}"
    );
}

#[tokio::test]
async fn repeated_bad_tool_calls_stop_the_turn() {
    let server = FakeModelServer::start().await;
    for _ in 0..4 {
        server.push(Reply::tool_call("read_file", "not json"));
    }
    let (_dir, ws) = workspace();
    let (stop, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "read").await.unwrap().stop_reason
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    assert_eq!(
        server.requests().len(),
        4,
        "three corrections, then the turn stops"
    );
    assert!(
        record
            .lock()
            .unwrap()
            .message_text()
            .contains("unusable arguments")
    );
}

#[tokio::test]
async fn empty_answer_is_asked_again() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text(""));
    server.push(Reply::text("second try"));
    let (_dir, ws) = workspace();
    let (stop, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "hi").await.unwrap().stop_reason
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    assert_eq!(record.lock().unwrap().message_text(), "second try");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    // Asked again as it was, a model at temperature 0 would answer the same nothing: the
    // second request ends with a note, which only that request carries.
    let last = |n: usize| {
        requests[n]["messages"]
            .as_array()
            .unwrap()
            .last()
            .cloned()
            .unwrap()
    };
    assert_eq!(last(0)["content"], "hi");
    assert_eq!(last(1)["role"], "user");
    assert!(
        last(1)["content"]
            .as_str()
            .unwrap()
            .contains("your last answer was empty"),
        "{}",
        last(1)
    );
}

/// The note after an empty answer is not kept: the next prompt's request holds the
/// conversation (the prompt, the answer) and no note.
#[tokio::test]
async fn the_note_after_an_empty_answer_is_not_kept() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text(""));
    server.push(Reply::text("second try"));
    server.push(Reply::text("done"));
    let (_dir, ws) = workspace();
    with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "hi").await.unwrap();
            prompt(&cx, &session, "again").await.unwrap();
        },
    )
    .await;
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    let messages = requests[2]["messages"].to_string();
    assert!(
        !messages.contains("your last answer was empty"),
        "{messages}"
    );
    assert!(messages.contains("second try"), "{messages}");
}

#[tokio::test]
async fn length_finish_is_max_tokens() {
    let server = FakeModelServer::start().await;
    server.push(Reply::fixture(fixture!(
        "llama.cpp/21_chat_stream_usage_length.http"
    )));
    let (_dir, ws) = workspace();
    let (stop, _) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "go on").await.unwrap().stop_reason
        },
    )
    .await;
    assert_eq!(stop, StopReason::MaxTokens);
}

#[tokio::test]
async fn request_cap_ends_with_max_turn_requests() {
    let server = FakeModelServer::start().await;
    for _ in 0..3 {
        server.push(Reply::tool_call("read_file", json!({"path": "loop.txt"})));
    }
    let (_dir, ws) = workspace();
    std::fs::write(ws.join("loop.txt"), "again").unwrap();
    let options = EditorOptions {
        env: vec![("PUNIE_MAX_TURN_REQUESTS".into(), "3".into())],
        ..Default::default()
    };
    let (stop, _) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        prompt(&cx, &session, "loop").await.unwrap().stop_reason
    })
    .await;
    assert_eq!(stop, StopReason::MaxTurnRequests);
    assert_eq!(server.requests().len(), 3);
}
