//! `punie sessions` and `punie ask --continue/--resume` in a terminal, against the fake model
//! server: what one `ask` saved, the next lists, shows, continues and deletes.

use std::path::Path;
use std::process::Stdio;

use crate::support::fake_model::{FakeModelServer, Reply};
use crate::support::served::{PATIENCE, punie_command};
use serde_json::Value;

/// Runs `punie ARGS` with the logs (and so the state directory) in `logs`.
async fn punie(logs: &Path, model: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = punie_command(logs);
    command
        .env("PUNIE_MODEL", model)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = tokio::time::timeout(PATIENCE, command.output())
        .await
        .expect("punie ends in time")
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn ask_saves_and_sessions_lists_shows_continues_and_deletes() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("The answer is 42."));
    server.push(Reply::text("Still 42."));
    let logs = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let ws = work.path().canonicalize().unwrap();
    let ws_arg = ws.to_str().unwrap();
    let model = server.base_url();

    let (code, _, err) = punie(
        logs.path(),
        &model,
        &["ask", "-w", ws_arg, "What is the answer?"],
    )
    .await;
    assert_eq!(code, Some(0), "{err}");

    let (code, out, err) = punie(
        logs.path(),
        &model,
        &["sessions", "list", "--json", "--workspace", ws_arg],
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    let listed: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1, "{out}");
    assert_eq!(listed[0]["title"], "What is the answer?");
    assert_eq!(listed[0]["cwd"], ws_arg);
    let id = listed[0]["sessionId"].as_str().unwrap().to_owned();

    let (code, out, _) = punie(logs.path(), &model, &["sessions", "list"]).await;
    assert_eq!(code, Some(0));
    assert!(
        out.contains(&id) && out.contains("What is the answer?"),
        "{out}"
    );

    let (code, out, _) = punie(
        logs.path(),
        &model,
        &["sessions", "show", &id, "--markdown"],
    )
    .await;
    assert_eq!(code, Some(0));
    assert!(out.starts_with("# What is the answer?"), "{out}");
    assert!(out.contains("The answer is 42."), "{out}");

    let (code, out, err) = punie(
        logs.path(),
        &model,
        &["ask", "-w", ws_arg, "--continue", "And again?"],
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "Still 42.");
    assert!(err.contains(&format!("continuing session {id}")), "{err}");
    let history = server.requests()[1]["messages"].to_string();
    assert!(
        history.contains("What is the answer?") && history.contains("The answer is 42."),
        "{history}"
    );

    let (code, _, err) = punie(
        logs.path(),
        &model,
        &["ask", "-w", ws_arg, "--resume", "sess_missing", "hi"],
    )
    .await;
    assert_ne!(code, Some(0));
    assert!(err.contains("unknown session sess_missing"), "{err}");

    let (code, _, err) = punie(logs.path(), &model, &["sessions", "delete", &id]).await;
    assert_eq!(code, Some(0), "{err}");
    let (_, out, _) = punie(logs.path(), &model, &["sessions", "list", "--json"]).await;
    assert_eq!(out, "", "deleted");
    let (code, _, err) = punie(
        logs.path(),
        &model,
        &["ask", "-w", ws_arg, "--continue", "hi"],
    )
    .await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no saved session"), "{err}");
}
