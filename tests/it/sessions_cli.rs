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

/// A HOME whose default sessions directory (`~/.local/state/punie/sessions`) already holds a
/// saved session, standing for the person's real one.
fn home_with_a_session() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let sessions = home.path().join(".local/state/punie/sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    let header = serde_json::json!({"format": 3, "punie": "0.1.0", "session": "sess_home",
        "cwd": home.path(), "created_at": "2026-01-01T00:00:00Z", "model": "m"});
    std::fs::write(sessions.join("sess_home.jsonl"), format!("{header}\n")).unwrap();
    home
}

#[tokio::test(flavor = "multi_thread")]
async fn every_punie_the_tests_start_gets_a_state_directory_of_its_own() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("saved elsewhere"));
    let home = home_with_a_session();
    let env = [
        ("HOME".to_owned(), home.path().display().to_string()),
        (
            "XDG_STATE_HOME".to_owned(),
            home.path().join(".local/state").display().to_string(),
        ),
    ];
    // `punie_command` (the terminal and `punie serve` tests).
    let logs = tempfile::tempdir().unwrap();
    let mut command = punie_command(logs.path());
    let output = command
        .envs(env.iter().cloned())
        .args(["sessions", "list", "--json"])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        output.stdout.is_empty(),
        "the default sessions directory is not used: {output:?}"
    );
    // `with_editor` (the ACP tests): saving and listing stay in the test's directory.
    let (_dir, ws) = crate::support::editor::workspace();
    let options = crate::support::editor::EditorOptions {
        env: env.to_vec(),
        ..Default::default()
    };
    let (listed, _) =
        crate::support::editor::with_editor(&server.base_url(), &ws, options, async |cx, _| {
            let session = crate::support::editor::new_session(&cx, &ws).await;
            crate::support::editor::prompt(&cx, &session, "where am I saved?")
                .await
                .unwrap();
            cx.send_request(agent_client_protocol::v1::schema::ListSessionsRequest::new())
                .block_task()
                .await
                .unwrap()
        })
        .await;
    let ids: Vec<String> = listed
        .sessions
        .iter()
        .map(|s| s.session_id.0.to_string())
        .collect();
    assert_eq!(ids.len(), 1, "only the test's own session: {ids:?}");
    assert_ne!(ids[0], "sess_home");
    let untouched: Vec<_> = std::fs::read_dir(home.path().join(".local/state/punie/sessions"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(untouched, ["sess_home.jsonl"], "nothing written in HOME");
}
