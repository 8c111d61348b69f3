//! `punie serve` end to end: the real binary, a fake model server, WebSocket ACP clients.

use std::time::Duration;

use crate::support::fake_model::{FAKE_MODEL, FakeModelServer, Reply};
use crate::support::served::{
    Permission, ServeConfig, Served, WsClient, eventually, punie_command,
};
use serde_json::json;

fn served_by(server: &FakeModelServer) -> ServeConfig {
    ServeConfig {
        model: Some(server.spec_for(FAKE_MODEL)),
        ..Default::default()
    }
}

fn prompt_params(session: &str, text: &str) -> serde_json::Value {
    json!({"sessionId": session, "prompt": [{"type": "text", "text": text}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_the_model_and_its_server() {
    let server = FakeModelServer::start().await;
    let served = Served::start(served_by(&server)).await;
    let health = served.health().await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        health["model"]["base_url"],
        server.base_url(),
        "PUNIE_MODEL is used: {health}"
    );
    assert_eq!(health["model"]["name"], FAKE_MODEL);
    assert_eq!(health["model"]["server"], "up");
    assert_eq!(health["sessions"], 0);
    assert_eq!(health["connections"], 0);
    assert!(health["uptime_seconds"].is_u64(), "{health}");
    assert!(
        server.model_list_requests() >= 1,
        "the model server was asked"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_says_when_the_model_server_is_down() {
    let served = Served::start(ServeConfig::default()).await;
    let health = served.health().await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["model"]["server"], "down");
    assert!(
        health["model"]["error"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:9"),
        "{health}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_session_over_websocket_writes_a_file_after_permission() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "hello.txt", "content": "hi from punie\n"}),
    ));
    server.push(Reply::text("I wrote hello.txt."));
    let served = Served::start(served_by(&server)).await;
    let workspace = tempfile::tempdir().unwrap();

    let mut client = served.connect().await;
    let session = client.open_session(workspace.path()).await;
    let health = served.health().await;
    assert_eq!(
        (health["sessions"].clone(), health["connections"].clone()),
        (json!(1), json!(1))
    );

    let response = client
        .request(
            "session/prompt",
            prompt_params(&session, "write hello"),
            Permission::Allow,
        )
        .await;
    assert_eq!(response["result"]["stopReason"], "end_turn", "{response}");
    let permissions: Vec<_> = client
        .agent_requests
        .iter()
        .filter(|r| r["method"] == "session/request_permission")
        .collect();
    assert_eq!(
        permissions.len(),
        1,
        "asked over the socket: {:?}",
        client.agent_requests
    );
    assert_eq!(
        std::fs::read_to_string(workspace.path().join("hello.txt")).unwrap(),
        "hi from punie\n",
        "written by the local workspace (the client has no fs)"
    );
    assert_eq!(client.message_text(), "I wrote hello.txt.");
    assert!(
        client
            .notifications
            .iter()
            .any(|n| n["params"]["update"]["sessionUpdate"] == "tool_call"),
        "tool calls are reported: {:?}",
        client.notifications
    );

    client.close().await;
    let mut closed = false;
    for _ in 0..600 {
        if served.health().await["sessions"] == 0 {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed, "the session is closed when its connection ends");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_write_over_websocket_changes_nothing() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "no.txt", "content": "x"}),
    ));
    server.push(Reply::text("Understood."));
    let served = Served::start(served_by(&server)).await;
    let workspace = tempfile::tempdir().unwrap();
    let mut client = served.connect().await;
    let session = client.open_session(workspace.path()).await;
    let response = client
        .request(
            "session/prompt",
            prompt_params(&session, "write"),
            Permission::Reject,
        )
        .await;
    assert_eq!(response["result"]["stopReason"], "end_turn", "{response}");
    assert!(!workspace.path().join("no.txt").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clients_are_served_at_once_and_isolated() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("Answer for A."));
    let served = Served::start(served_by(&server)).await;
    let workspace = tempfile::tempdir().unwrap();
    let mut a = served.connect().await;
    let mut b = served.connect().await;
    let session_a = a.open_session(workspace.path()).await;
    let session_b = b.open_session(workspace.path()).await;
    assert_ne!(session_a, session_b);

    let stolen = b
        .request(
            "session/prompt",
            prompt_params(&session_a, "hijack"),
            Permission::Reject,
        )
        .await;
    assert!(
        stolen.get("error").is_some(),
        "B cannot use A's session (acp::serve must refuse sessions opened on another connection): {stolen}"
    );
    assert!(
        stolen["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&session_a),
        "{stolen}"
    );
    assert_eq!(server.requests().len(), 0, "nothing reached the model");

    let answer = a
        .request(
            "session/prompt",
            prompt_params(&session_a, "hello"),
            Permission::Reject,
        )
        .await;
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    assert_eq!(a.message_text(), "Answer for A.");
    assert!(
        !b.notifications
            .iter()
            .any(|n| n["params"]["sessionId"] == session_a.as_str()),
        "B saw nothing of A's turn: {:?}",
        b.notifications
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_origin_is_refused_and_a_local_one_accepted() {
    let served = Served::start(ServeConfig::default()).await;
    let refused = WsClient::try_connect(&served.ws_url(), &[("origin", "https://evil.example")])
        .await
        .err();
    assert_eq!(refused.as_deref(), Some("403"));
    let local =
        WsClient::try_connect(&served.ws_url(), &[("origin", "http://localhost:3000")]).await;
    assert!(local.is_ok(), "{:?}", local.err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_loopback_bind_needs_the_flag_and_a_token() {
    let logs = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (vec!["--host", "0.0.0.0"], "--allow-remote"),
        (
            vec!["--host", "0.0.0.0", "--allow-remote"],
            "PUNIE_SERVE_TOKEN",
        ),
    ] {
        let output = punie_command(logs.path())
            .arg("serve")
            .args(["--port", "0"])
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty());
    }

    let served = Served::start(ServeConfig {
        args: vec!["--host".into(), "0.0.0.0".into(), "--allow-remote".into()],
        env: vec![("PUNIE_SERVE_TOKEN".into(), "s3cret".into())],
        ..Default::default()
    })
    .await;
    let status = reqwest::get(served.url("/health")).await.unwrap().status();
    assert_eq!(status, 401);
    let refused = WsClient::try_connect(&served.ws_url(), &[]).await.err();
    assert_eq!(refused.as_deref(), Some("401"));
    let wrong = WsClient::try_connect(&served.ws_url(), &[("authorization", "Bearer nope")])
        .await
        .err();
    assert_eq!(wrong.as_deref(), Some("401"));
    WsClient::connect(&served.ws_url(), &[("authorization", "Bearer s3cret")]).await;
    WsClient::connect(&format!("{}?token=s3cret", served.ws_url()), &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_cancels_turns_kills_commands_and_exits_0() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "run_command",
        json!({"command": "echo $$ > sleep.pid; exec sleep 300"}),
    ));
    let mut served = Served::start(served_by(&server)).await;
    let workspace = tempfile::tempdir().unwrap();
    let mut client = served.connect().await;
    let session = client.open_session(workspace.path()).await;
    client
        .send_request("session/prompt", prompt_params(&session, "sleep"))
        .await;
    let request = client.next_agent_request().await;
    assert_eq!(request["method"], "session/request_permission", "{request}");
    client.answer(&request, Permission::Allow).await;

    let pid_file = workspace.path().join("sleep.pid");
    eventually("the command starts", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|text| text.trim().parse::<u32>().is_ok())
    })
    .await;
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(crate::support::editor::process_alive(pid));

    served.terminate();
    assert_eq!(
        served.wait().await,
        Some(0),
        "stderr: {:?}",
        served.stderr.lock().unwrap()
    );
    eventually("the command is killed", || {
        !crate::support::editor::process_alive(pid)
    })
    .await;
    let log = served.log_text();
    assert!(log.contains("SIGTERM"), "{log}");
    assert!(log.contains("punie exiting"), "the log is flushed: {log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stdin_eof_ends_only_the_stdio_connection() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("Still here."));
    let mut served = Served::start(ServeConfig {
        stdin: true,
        ..served_by(&server)
    })
    .await;
    served
        .send_stdin(
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":1}}"#,
        )
        .await;
    let line = served.stdout_line(0).await;
    let answer: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        answer["result"]["protocolVersion"], 1,
        "ACP on stdio: {line}"
    );

    drop(served.stdin.take());
    eventually("the stdio connection ends", || {
        served.log_text().contains("stdin closed")
    })
    .await;
    assert!(served.child.try_wait().unwrap().is_none(), "still running");
    assert_eq!(served.health().await["model"]["server"], "up");

    let workspace = tempfile::tempdir().unwrap();
    let mut client = served.connect().await;
    let session = client.open_session(workspace.path()).await;
    let response = client
        .request(
            "session/prompt",
            prompt_params(&session, "hi"),
            Permission::Reject,
        )
        .await;
    assert_eq!(response["result"]["stopReason"], "end_turn", "{response}");
    assert_eq!(client.message_text(), "Still here.");

    served.terminate();
    assert_eq!(served.wait().await, Some(0));
    let stdout = served.stdout.lock().unwrap().clone();
    assert!(!stdout.is_empty());
    for line in &stdout {
        let message: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout carries only JSON-RPC ({e}): {line}"));
        assert_eq!(message["jsonrpc"], "2.0", "{line}");
    }
    let log = served.log_text();
    assert!(log.contains("HTTP server listening"), "{log}");
    assert!(log.contains("WebSocket ACP connection opened"), "{log}");
}
