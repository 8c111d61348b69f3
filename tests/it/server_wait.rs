//! A model server that is not answering yet (starting, restarting, loading the model) is waited
//! for, through the real binary: the editor (or `punie ask`'s stderr) is told after a few
//! seconds, cancel ends the wait, and a wait that runs out says how long it waited and what to
//! change. Also the model names llama-server lists by file path, and the config file's log line.

use std::net::SocketAddr;
use std::process::Stdio;

use agent_client_protocol::v1::schema::*;
use serde_json::json;

use crate::support::editor::{EditorOptions, Shared, new_session, prompt, wait_until, with_editor};
use crate::support::fake_model::{FakeModelServer, Reply};
use crate::support::served::{PATIENCE, punie_command};

/// A loopback address nobody listens on right now.
fn closed_address() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

fn options(env: &[(&str, &str)]) -> EditorOptions {
    EditorOptions {
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    }
}

/// Everything the editor was sent as session updates, as JSON text (a notice arrives as a
/// `notice` update or, to an editor that does not take those, as a message chunk).
fn updates_text(shared: &Shared) -> String {
    let record = shared.lock().unwrap_or_else(|p| p.into_inner());
    serde_json::to_string(&record.updates).unwrap()
}

/// llama.cpp's answer while it loads the model.
fn loading_model() -> Reply {
    Reply::error(
        503,
        json!({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_that_refuses_for_seconds_then_answers_is_waited_for_and_the_editor_told() {
    let address = closed_address();
    let url = format!("http://{address}/v1/fake-model");
    let dir = tempfile::tempdir().unwrap();
    let env = [("PUNIE_SERVER_WAIT", "60")];
    let (outcome, record) = with_editor(&url, dir.path(), options(&env), async |cx, shared| {
        let session = new_session(&cx, dir.path()).await;
        let pending = cx.send_request(PromptRequest::new(
            session,
            vec![ContentBlock::from("hello")],
        ));
        // The server comes up only once the editor was told it is being waited for.
        wait_until(&shared, "the editor is told of the wait", |record| {
            serde_json::to_string(&record.updates)
                .unwrap()
                .contains("is not answering")
        })
        .await;
        let server = FakeModelServer::start_at_with(address, vec![Reply::text("Up at last")]).await;
        let response = tokio::time::timeout(PATIENCE, pending.block_task())
            .await
            .expect("the turn ends once the server is up");
        (response, server)
    })
    .await;
    let (response, server) = outcome;
    let response = response.expect("the turn waits for the server and completes");
    assert_eq!(response.stop_reason, StopReason::EndTurn);
    assert_eq!(server.requests().len(), 1, "one request reached it");
    let text = record.lock().unwrap().message_text();
    assert!(text.contains("Up at last"), "{text}");
    let updates = updates_text(&record);
    assert!(
        updates.contains(&format!(
            "the model server at http://{address}/v1 is not answering (connection refused) — \
             waiting up to 60 s; it may be starting or loading the model"
        )),
        "{updates}"
    );
    assert!(
        updates.contains(&format!(
            "the model server at http://{address}/v1 answered after"
        )),
        "{updates}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_503_loading_model_that_turns_200_is_waited_for() {
    let server = FakeModelServer::start().await;
    // Five refusals take at least 3.75 s of backoff: past the point where the editor is told.
    for _ in 0..5 {
        server.push(loading_model());
    }
    server.push(Reply::text("Loaded"));
    let dir = tempfile::tempdir().unwrap();
    let (response, record) = with_editor(
        &server.spec_for("fake-model"),
        dir.path(),
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, dir.path()).await;
            prompt(&cx, &session, "hello").await
        },
    )
    .await;
    assert_eq!(response.unwrap().stop_reason, StopReason::EndTurn);
    assert_eq!(server.requests().len(), 6, "five 503s and the answer");
    assert!(record.lock().unwrap().message_text().contains("Loaded"));
    let updates = updates_text(&record);
    assert!(
        updates.contains("is not answering (HTTP 503: Loading model) — waiting up to 120 s"),
        "the default wait, named: {updates}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_during_the_wait_ends_the_turn() {
    let address = closed_address();
    let url = format!("http://{address}/v1/fake-model");
    let dir = tempfile::tempdir().unwrap();
    let env = [("PUNIE_SERVER_WAIT", "600")];
    let (response, record) = with_editor(&url, dir.path(), options(&env), async |cx, shared| {
        let session = new_session(&cx, dir.path()).await;
        let pending = cx.send_request(PromptRequest::new(
            session.clone(),
            vec![ContentBlock::from("hello")],
        ));
        wait_until(&shared, "the editor is told of the wait", |record| {
            serde_json::to_string(&record.updates)
                .unwrap()
                .contains("is not answering")
        })
        .await;
        cx.send_notification(CancelNotification::new(session))
            .unwrap();
        // Far less than the 600 s wait: the cancel, not the wait running out, ends it.
        tokio::time::timeout(PATIENCE, pending.block_task())
            .await
            .expect("the cancelled turn is answered")
    })
    .await;
    assert_eq!(response.unwrap().stop_reason, StopReason::Cancelled);
    assert!(!updates_text(&record).contains("answered after"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ask_prints_the_wait_and_then_an_error_naming_server_wait() {
    let address = closed_address();
    let logs = tempfile::tempdir().unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let output = tokio::time::timeout(
        PATIENCE,
        punie_command(logs.path())
            .env("PUNIE_MODEL", format!("http://{address}/v1/m"))
            .env("PUNIE_SERVER_WAIT", "4")
            .args(["ask", "--workspace"])
            .arg(workspace.path())
            .arg("hello")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("punie ask ends")
    .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "");
    assert!(
        stderr.contains("is not answering (connection refused) — waiting up to 4 s"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "the model server at http://{address}/v1 did not answer within 4 s ("
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--server-wait SECONDS"), "{stderr}");
}

/// `punie ask "hello"` with `env`, against a server that answers "ok"; its requests.
async fn ask_once(server: &FakeModelServer, env: &[(&str, String)]) -> Vec<serde_json::Value> {
    server.push(Reply::text("ok"));
    let logs = tempfile::tempdir().unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let mut command = punie_command(logs.path());
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(
        PATIENCE,
        command
            .args(["ask", "--workspace"])
            .arg(workspace.path())
            .arg("hello")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("punie ask ends")
    .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    server.requests()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_named_by_its_path_keeps_its_slash_from_model_and_from_the_config_file() {
    let server = FakeModelServer::start().await;
    let path = "/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";
    server.set_models(vec![path.to_owned()]);
    // --model: the model after `/v1/`, as written.
    let requests = ask_once(
        &server,
        &[("PUNIE_MODEL", format!("{}/{path}", server.base_url()))],
    )
    .await;
    assert_eq!(requests[0]["model"], path);
    // The config file's `model`.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[models.local]\nbase_url = {:?}\nmodel = {path:?}\n",
            server.base_url()
        ),
    )
    .unwrap();
    let requests = ask_once(
        &server,
        &[
            ("PUNIE_MODEL", "local".to_owned()),
            ("PUNIE_CONFIG", config.display().to_string()),
        ],
    )
    .await;
    assert_eq!(requests[1]["model"], path);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_config_file_is_read_and_logged_once() {
    let server = FakeModelServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[models.local]\nbase_url = {:?}\nmodel = \"fake-model\"\n",
            server.base_url()
        ),
    )
    .unwrap();
    let logs = tempfile::tempdir().unwrap();
    server.push(Reply::text("ok"));
    let workspace = tempfile::tempdir().unwrap();
    let output = tokio::time::timeout(
        PATIENCE,
        punie_command(logs.path())
            .env("PUNIE_MODEL", "local")
            .env("PUNIE_CONFIG", &config)
            .args(["ask", "--workspace"])
            .arg(workspace.path())
            .arg("hello")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("punie ask ends")
    .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let mut log = String::new();
    // Only the log files: saved sessions live in a folder beside them.
    for entry in std::fs::read_dir(logs.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            log.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    assert_eq!(
        log.matches("model settings from the config file").count(),
        1,
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_llama_server_does_not_list_is_refused_at_session_start() {
    let server = FakeModelServer::start().await;
    // What llama-server b11434 lists when started without --alias: one model, by file path.
    let path = "/home/me/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";
    server.set_models_reply(Reply::json(json!({
        "object": "list",
        "data": [{"id": path, "aliases": [path], "object": "model", "owned_by": "llamacpp",
                  "meta": {"n_ctx": 4096}}],
    })));
    let dir = tempfile::tempdir().unwrap();
    let (error, _) = with_editor(
        &server.spec_for("qwen3-coder"),
        dir.path(),
        EditorOptions::default(),
        async |cx, _| {
            cx.send_request(NewSessionRequest::new(dir.path()))
                .block_task()
                .await
                .unwrap_err()
        },
    )
    .await;
    let message = format!("{} {:?}", error.message, error.data);
    assert!(message.contains("qwen3-coder"), "{message}");
    assert!(message.contains(path), "names the model it has: {message}");
    assert!(server.requests().is_empty(), "no chat request was sent");
    // Its file name, as a person would type it, is the same model.
    let (session, _) = with_editor(
        &server.spec_for("qwen2.5-coder-0.5b-instruct-q4_k_m"),
        dir.path(),
        EditorOptions::default(),
        async |cx, _| {
            cx.send_request(NewSessionRequest::new(dir.path()))
                .block_task()
                .await
        },
    )
    .await;
    assert!(session.is_ok(), "{session:?}");
}
