//! A turn as an editor sees it: the handshake, streamed text and thoughts, tools through the
//! editor's files and terminals (or locally without them), and streams of every server.

use agent_client_protocol::v1::schema::*;
use serde_json::{Value, json};

use super::{assert_stdout_is_json_rpc, messages};
use crate::support::editor::{Answer, EditorOptions, new_session, prompt, with_editor, workspace};
use crate::support::fake_model::{FakeModelServer, Reply};
use crate::support::fixture;

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
