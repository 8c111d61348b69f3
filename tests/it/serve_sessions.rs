//! `punie serve` with two WebSocket clients at once and one state directory
//! (specs/sessions.md, "The protocol"): the second lists the first's saved session, is refused
//! loading it while the first has it open, loads it (with its replay) once the first closes
//! it, and neither ever receives the other's live session updates.

use serde_json::{Value, json};

use crate::support::fake_model::{FAKE_MODEL, FakeModelServer, Reply};
use crate::support::served::{Permission, ServeConfig, Served, WsClient};

fn prompt_params(session: &str, text: &str) -> Value {
    json!({"sessionId": session, "prompt": [{"type": "text", "text": text}]})
}

/// The session updates `client` received for `session`, from the `from`-th notification on.
fn updates_for<'a>(client: &'a WsClient, session: &str, from: usize) -> Vec<&'a Value> {
    client.notifications[from..]
        .iter()
        .filter(|n| n["method"] == "session/update" && n["params"]["sessionId"] == session)
        .map(|n| &n["params"]["update"])
        .collect()
}

fn kinds(updates: &[&Value]) -> Vec<String> {
    updates
        .iter()
        .map(|u| u["sessionUpdate"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clients_share_the_saved_sessions_of_a_workspace_but_never_a_live_one() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call("read_file", json!({"path": "notes.txt"})));
    server.push(Reply::text("The notes say milk."));
    server.push(Reply::text("Still milk."));
    let served = Served::start(ServeConfig {
        model: Some(server.spec_for(FAKE_MODEL)),
        ..Default::default()
    })
    .await;
    let workspace = tempfile::tempdir().unwrap();
    let ws = workspace.path().canonicalize().unwrap();
    std::fs::write(ws.join("notes.txt"), "milk\n").unwrap();

    let mut a = served.connect().await;
    let mut b = served.connect().await;
    let session = a.open_session(&ws).await;
    let own = b.open_session(&ws).await;
    let answer = a
        .request(
            "session/prompt",
            prompt_params(&session, "What do the notes say?"),
            Permission::Allow,
        )
        .await;
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    assert!(
        kinds(&updates_for(&a, &session, 0)).contains(&"tool_call".to_owned()),
        "A saw its own turn: {:?}",
        a.notifications
    );

    // B lists the workspace's sessions: A's saved one is there.
    let listed = b
        .request("session/list", json!({"cwd": ws}), Permission::Reject)
        .await;
    let ids: Vec<&str> = listed["result"]["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .filter_map(|s| s["sessionId"].as_str())
        .collect();
    assert_eq!(ids, [session.as_str()], "{listed}");
    assert_eq!(
        listed["result"]["sessions"][0]["title"], "What do the notes say?",
        "{listed}"
    );

    // Open on A: B may not load it, nor prompt it.
    let load = json!({"sessionId": session, "cwd": ws, "mcpServers": []});
    let refused = b
        .request("session/load", load.clone(), Permission::Reject)
        .await;
    assert_eq!(refused["error"]["code"], -32600, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("already open on another connection") && message.contains("session/close"),
        "{refused}"
    );
    let hijack = b
        .request(
            "session/prompt",
            prompt_params(&session, "Whose session is this?"),
            Permission::Reject,
        )
        .await;
    assert_eq!(hijack["error"]["code"], -32002, "{hijack}");

    // A closes it; now B loads it and is shown the conversation before the answer.
    let closed = a
        .request(
            "session/close",
            json!({"sessionId": session}),
            Permission::Reject,
        )
        .await;
    assert!(closed.get("result").is_some(), "{closed}");
    let a_seen = a.notifications.len();
    let b_before = b.notifications.len();
    let loaded = b.request("session/load", load, Permission::Reject).await;
    assert!(loaded.get("result").is_some(), "{loaded}");
    let replay = updates_for(&b, &session, b_before);
    let replayed: Vec<String> = kinds(&replay)
        .into_iter()
        .filter(|k| {
            [
                "user_message_chunk",
                "agent_message_chunk",
                "tool_call",
                "tool_call_update",
            ]
            .contains(&k.as_str())
        })
        .collect();
    assert_eq!(
        replayed,
        [
            "user_message_chunk",
            "tool_call",
            "tool_call_update",
            "agent_message_chunk"
        ],
        "{replay:?}"
    );
    assert_eq!(replay[0]["content"]["text"], "What do the notes say?");
    let update = replay
        .iter()
        .find(|u| u["sessionUpdate"] == "tool_call_update")
        .unwrap();
    assert_eq!(update["status"], "completed", "{update}");
    let text: String = replay
        .iter()
        .filter(|u| u["sessionUpdate"] == "agent_message_chunk")
        .filter_map(|u| u["content"]["text"].as_str())
        .collect();
    assert_eq!(text, "The notes say milk.");

    // B goes on with it, with the history A left.
    let answer = b
        .request(
            "session/prompt",
            prompt_params(&session, "And now?"),
            Permission::Reject,
        )
        .await;
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    let history = server.requests()[2]["messages"].to_string();
    assert!(history.contains("What do the notes say?"), "{history}");
    assert!(history.contains("milk"), "{history}");

    // A's socket gets what is queued for it answered by a request of its own: nothing of the
    // session B now has, nor of B's own session; B never got anything of A's live session.
    let listed = a
        .request("session/list", json!({"cwd": ws}), Permission::Reject)
        .await;
    assert!(listed.get("result").is_some(), "{listed}");
    assert!(
        updates_for(&a, &session, a_seen).is_empty(),
        "A sees nothing of the session once B has it: {:?}",
        &a.notifications[a_seen..]
    );
    assert!(
        updates_for(&a, &own, 0).is_empty(),
        "A never sees B's session"
    );
    assert!(
        b.notifications[..b_before]
            .iter()
            .all(|n| n["params"]["sessionId"] != session),
        "B saw nothing of A's session before loading it: {:?}",
        &b.notifications[..b_before]
    );
    let mine: Vec<_> = a
        .notifications
        .iter()
        .filter(|n| n["params"]["sessionId"] != session)
        .collect();
    assert!(
        mine.is_empty(),
        "A only ever heard of its own session: {mine:?}"
    );
    a.close().await;
    b.close().await;
}
