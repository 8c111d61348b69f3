//! End-to-end: the real `punie` binary, driven by the official ACP client, against a fake
//! OpenAI-compatible model server.

use std::time::Duration;

use crate::support::editor::{
    Answer, EditorOptions, new_session, process_alive, prompt, wait_until, with_editor, workspace,
};
use crate::support::fake_model::{FakeModelServer, Reply};
use crate::support::fixture;
use agent_client_protocol::v1::schema::*;
use serde_json::{Value, json};

/// Every line Punie wrote to stdout is one JSON-RPC 2.0 message.
fn assert_stdout_is_json_rpc(lines: &[String]) {
    assert!(!lines.is_empty(), "no stdout at all");
    for line in lines {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        assert_eq!(value["jsonrpc"], "2.0", "not JSON-RPC 2.0: {line}");
        assert!(
            value.get("method").is_some()
                || value.get("result").is_some()
                || value.get("error").is_some(),
            "{line}"
        );
    }
}

/// The messages of the `n`th request the model server received.
fn messages(server: &FakeModelServer, n: usize) -> Vec<Value> {
    server.requests()[n]["messages"].as_array().unwrap().clone()
}

#[tokio::test]
async fn handshake_and_streamed_answer() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("Hello from the model, streamed in pieces."));
    let (_dir, ws) = workspace();
    let (stop, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            let other = new_session(&cx, &ws).await;
            assert_ne!(session, other, "session ids are unique");
            prompt(&cx, &session, "Say hello")
                .await
                .unwrap()
                .stop_reason
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let record = record.lock().unwrap();
    assert_eq!(
        record.message_text(),
        "Hello from the model, streamed in pieces."
    );
    let chunks = record
        .updates
        .iter()
        .filter(|u| matches!(u, SessionUpdate::AgentMessageChunk(_)))
        .count();
    assert!(
        chunks > 1,
        "the answer is relayed as it streams, got {chunks} chunk(s)"
    );
    assert_stdout_is_json_rpc(&record.stdout_lines);

    let initialize: Value = serde_json::from_str(&record.stdout_lines[0]).unwrap();
    assert_eq!(initialize["result"]["protocolVersion"], 1);
    assert_eq!(initialize["result"]["agentInfo"]["name"], "punie");
    assert_eq!(
        initialize["result"]["agentInfo"]["version"],
        env!("CARGO_PKG_VERSION")
    );

    let request = &server.requests()[0];
    assert_eq!(request["stream"], true);
    assert_eq!(request["temperature"], 0.0);
    assert_eq!(request["max_tokens"], 4096);
    let tools: Vec<&str> = request["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    for expected in ["read_file", "write_file", "run_command"] {
        assert!(
            tools.contains(&expected),
            "{expected} offered to the model: {tools:?}"
        );
    }
    let msgs = messages(&server, 0);
    assert_eq!(msgs[0]["role"], "system");
    assert!(
        msgs[0]["content"]
            .as_str()
            .unwrap()
            .contains(&ws.display().to_string()),
        "system prompt names the workspace"
    );
    assert_eq!(msgs.last().unwrap()["content"], "Say hello");
}

#[tokio::test]
async fn reasoning_becomes_thought_chunks() {
    let server = FakeModelServer::start().await;
    server.push(Reply::fixture(fixture!(
        "llama.cpp/81_think_chat_stream.http"
    )));
    let (_dir, ws) = workspace();
    let (stop, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "think").await.unwrap().stop_reason
        },
    )
    .await;
    let record = record.lock().unwrap();
    assert!(
        !record.thought_text().is_empty(),
        "reasoning_content is relayed as agent_thought_chunk"
    );
    assert!(matches!(stop, StopReason::EndTurn | StopReason::MaxTokens));
}

#[tokio::test]
async fn read_goes_through_the_editor() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call("read_file", json!({"path": "notes.txt"})));
    server.push(Reply::text("The notes say hi."));
    let (_dir, ws) = workspace();
    std::fs::write(ws.join("notes.txt"), "hi from the notes\n").unwrap();
    let (stop, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "read my notes")
                .await
                .unwrap()
                .stop_reason
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let record = record.lock().unwrap();
    assert_eq!(record.reads, vec![ws.join("notes.txt")]);
    let call = record.tool_calls()[0].clone();
    assert_eq!(call.kind, ToolKind::Read);
    assert_eq!(call.status, ToolCallStatus::Pending);
    assert_eq!(call.locations[0].path, ws.join("notes.txt"));
    assert_eq!(call.raw_input, Some(json!({"path": "notes.txt"})));
    assert_eq!(
        record.final_status(&call.tool_call_id.0),
        Some(ToolCallStatus::Completed)
    );
    assert!(
        record.permission_requests.is_empty(),
        "reading needs no permission"
    );

    // The result went back to the model as a tool message answering the call.
    let msgs = messages(&server, 1);
    let assistant = &msgs[msgs.len() - 2];
    let call_id = assistant["tool_calls"][0]["id"].as_str().unwrap();
    let tool = msgs.last().unwrap();
    assert_eq!(tool["role"], "tool");
    assert_eq!(tool["tool_call_id"], call_id);
    assert!(
        tool["content"]
            .as_str()
            .unwrap()
            .contains("hi from the notes")
    );
}

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
async fn command_runs_in_an_editor_terminal() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "run_command",
        json!({"command": "echo", "args": ["hello", "terminal"]}),
    ));
    server.push(Reply::text("It printed hello."));
    let (_dir, ws) = workspace();
    let options = EditorOptions {
        answers: vec![Answer::AllowOnce],
        ..Default::default()
    };
    let (stop, record) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        prompt(&cx, &session, "run echo").await.unwrap().stop_reason
    })
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let record = record.lock().unwrap();
    let created = &record.terminals_created[0];
    assert_eq!(created.command, "echo");
    assert_eq!(created.args, vec!["hello", "terminal"]);
    assert_eq!(created.cwd.as_deref(), Some(ws.as_path()));
    assert_eq!(
        record.terminals_released.len(),
        1,
        "the terminal is released after use"
    );
    let call = record.tool_calls()[0].clone();
    assert_eq!(call.kind, ToolKind::Execute);
    assert!(
        record.tool_call_updates().iter().any(|u| matches!(
            u.fields.content.as_deref(),
            Some([ToolCallContent::Terminal(_)])
        )),
        "the tool call carries terminal content"
    );
    let tool_message = messages(&server, 1).last().unwrap().clone();
    let text = tool_message["content"].as_str().unwrap();
    assert!(
        text.contains("exit code 0") && text.contains("hello terminal"),
        "{text}"
    );
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

#[tokio::test]
async fn model_server_down_gives_an_actionable_error_and_the_session_survives() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/some-model", listener.local_addr().unwrap());
    drop(listener);
    let (_dir, ws) = workspace();
    let (errors, record) = with_editor(&url, &ws, EditorOptions::default(), async |cx, _| {
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
    assert_eq!(server.requests().len(), 2);
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

#[tokio::test]
async fn replays_recorded_and_dialect_streams() {
    let cases: [(&str, &str); 3] = [
        (
            "llama.cpp content",
            fixture!("llama.cpp/20_chat_stream_usage_stop.http"),
        ),
        (
            "llama.cpp without usage",
            fixture!("llama.cpp/22_chat_stream_without_stream_options.http"),
        ),
        (
            "llama.cpp raw wire",
            fixture!("llama.cpp/24_chat_stream_usage_stop_RAWWIRE.http"),
        ),
    ];
    for (name, fixture) in cases {
        let server = FakeModelServer::start().await;
        server.push(Reply::fixture(fixture));
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
        assert!(matches!(stop, StopReason::EndTurn), "{name}: {stop:?}");
        assert!(
            !record.lock().unwrap().message_text().is_empty(),
            "{name}: text relayed"
        );
    }
}

#[tokio::test]
async fn ollama_and_lm_studio_tool_calls_run() {
    for (name, fixture) in [
        (
            "ollama whole calls",
            fixture!("ollama/tool_calls_whole.sse"),
        ),
        (
            "lmstudio fragments",
            fixture!("lmstudio/tool_calls_fragmented.sse"),
        ),
    ] {
        let server = FakeModelServer::start().await;
        server.push(Reply::sse_body(fixture));
        server.push(Reply::text("done"));
        let (_dir, ws) = workspace();
        let (stop, record) = with_editor(
            &server.base_url(),
            &ws,
            EditorOptions::default(),
            async |cx, _| {
                let session = new_session(&cx, &ws).await;
                prompt(&cx, &session, "go").await.unwrap().stop_reason
            },
        )
        .await;
        assert_eq!(stop, StopReason::EndTurn, "{name}");
        let record = record.lock().unwrap();
        assert!(
            !record.tool_calls().is_empty(),
            "{name}: tool calls announced"
        );
        // Every call the model made was answered with a tool message of the same id.
        let msgs = messages(&server, 1);
        let assistant = msgs.iter().find(|m| m["role"] == "assistant").unwrap();
        for call in assistant["tool_calls"].as_array().unwrap() {
            assert!(
                msgs.iter()
                    .any(|m| m["role"] == "tool" && m["tool_call_id"] == call["id"]),
                "{name}: {call}"
            );
        }
    }
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

#[tokio::test]
async fn an_editor_without_fs_or_terminal_gets_the_local_workspace() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call("read_file", json!({"path": "in.txt"})));
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "out/new.txt", "content": "local write\n"}),
    ));
    server.push(Reply::tool_call(
        "run_command",
        json!({"command": "cat out/new.txt && echo ran > ran.txt"}),
    ));
    server.push(Reply::text("all local"));
    let (_dir, ws) = workspace();
    std::fs::write(ws.join("in.txt"), "local content\n").unwrap();
    let options = EditorOptions {
        fs: false,
        terminal: false,
        answers: vec![Answer::AllowOnce, Answer::AllowOnce],
        ..Default::default()
    };
    let (stop, record) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        prompt(&cx, &session, "work locally")
            .await
            .unwrap()
            .stop_reason
    })
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let record = record.lock().unwrap();
    assert!(
        record.reads.is_empty() && record.writes.is_empty() && record.terminals_created.is_empty(),
        "nothing went through the editor"
    );
    assert_eq!(
        record.permission_requests.len(),
        2,
        "permission is still asked through the editor"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("out/new.txt")).unwrap(),
        "local write\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("ran.txt")).unwrap(),
        "ran\n"
    );
    let read_result = messages(&server, 1).last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(read_result.contains("local content"), "{read_result}");
    let command_result = messages(&server, 3).last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        command_result.contains("exit code 0") && command_result.contains("local write"),
        "{command_result}"
    );
}

#[tokio::test]
async fn tool_calls_written_as_text_run_and_never_reach_the_chat() {
    let server = FakeModelServer::start().await;
    server.push(Reply::sse_body(fixture!("text_tools/hermes_llama_cpp.sse")));
    server.push(Reply::text("It is a hello-world program."));
    let (_dir, ws) = workspace();
    std::fs::create_dir(ws.join("src")).unwrap();
    std::fs::write(
        ws.join("src/main.rs"),
        "fn main() { println!(\"hello\"); }\n",
    )
    .unwrap();
    let (stop, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "what does main.rs do?")
                .await
                .unwrap()
                .stop_reason
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let record = record.lock().unwrap();
    assert_eq!(
        record.reads,
        vec![ws.join("src/main.rs")],
        "the text tool call ran"
    );
    let text = record.message_text();
    assert!(text.starts_with("I'll read the file first"), "{text}");
    assert!(
        !text.contains("tool_call") && !text.contains("arguments"),
        "markup leaked: {text}"
    );
    let tool = messages(&server, 1).last().unwrap().clone();
    assert!(
        tool["content"].as_str().unwrap().contains("println"),
        "{tool}"
    );
}
