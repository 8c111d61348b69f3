//! A bounded soak of `punie serve`: 50 WebSocket connections, a thousand prompts with commands,
//! cancels and abrupt disconnects, against the fake model server. It asserts counts, not
//! times: no unexpected error frame, and afterwards no leaked descriptor, no leaked child
//! process, and memory back near where it started.

use std::time::Duration;

use serde_json::{Value, json};

use crate::serve_descriptors::{open_descriptors, open_non_sockets};
use crate::support::fake_model::{FAKE_MODEL, FakeModelServer, Reply};
use crate::support::served::{Permission, ServeConfig, Served, WsClient};

const CONNECTIONS: usize = 50;
const PROMPTS: usize = 20;

fn prompt(session: &str, text: &str) -> Value {
    json!({"sessionId": session, "prompt": [{"type": "text", "text": text}]})
}

/// Resident memory of the process, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// The process's children (of every thread).
fn children(pid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let path = task.unwrap().path().join("children");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        found.extend(text.split_whitespace().map(str::to_owned));
    }
    found
}

/// One client's run: a session, `PROMPTS` prompts (every fifth cancelled at once), then either
/// a clean close or, for every fourth client, a prompt left running as the socket is dropped.
async fn client_run(url: String, index: usize, workspace: std::path::PathBuf) -> usize {
    let mut client = WsClient::connect(&url, &[]).await;
    let session = client.open_session(&workspace).await;
    let mut cancelled = 0;
    for turn in 0..PROMPTS {
        let id = client
            .send_request("session/prompt", prompt(&session, &format!("turn {turn}")))
            .await;
        let cancel = turn % 5 == 4;
        if cancel {
            client
                .send(json!({"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session}}))
                .await;
        }
        let answer = client.response_to(id, Permission::Allow).await;
        assert!(answer.get("error").is_none(), "client {index}: {answer}");
        let stop = answer["result"]["stopReason"].as_str().unwrap_or_default();
        if stop == "cancelled" {
            cancelled += 1;
        }
        let expected = if cancel {
            &["end_turn", "cancelled"][..]
        } else {
            &["end_turn"][..]
        };
        assert!(
            expected.contains(&stop),
            "client {index} turn {turn}: {answer}"
        );
    }
    if index.is_multiple_of(4) {
        client
            .send_request("session/prompt", prompt(&session, "left running"))
            .await;
        drop(client);
    } else {
        client.close().await;
    }
    cancelled
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_connections_and_a_thousand_prompts_leak_nothing() {
    let model = FakeModelServer::start().await;
    // Every turn takes one text reply; some take a command first. Slow chunks give cancels
    // something to interrupt. Spare replies cover the prompts left running.
    for n in 0..(CONNECTIONS * (PROMPTS + 2) + 100) {
        if n % 10 == 3 {
            model.push(Reply::tool_call(
                "run_command",
                json!({"command": "sleep 0.05; echo hi"}),
            ));
        }
        let reply = Reply::parts(vec![
            crate::support::fake_model::Part::text("working "),
            crate::support::fake_model::Part::text("on it"),
        ]);
        model.push(if n % 5 == 4 {
            reply.chunk_delay(Duration::from_millis(20))
        } else {
            reply
        });
    }
    let config = ServeConfig {
        model: Some(model.spec_for(FAKE_MODEL)),
        ..ServeConfig::default()
    };
    let served = Served::start(config).await;
    let pid = served.child.id().unwrap();
    let workspace = tempfile::tempdir().unwrap();

    // A warm-up connection, so the baseline includes what the first session sets up for good.
    let warm = tokio::spawn(client_run(served.ws_url(), 1, workspace.path().to_owned()));
    warm.await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fds, others, rss) = (
        open_descriptors(pid),
        open_non_sockets(pid),
        resident_kib(pid),
    );

    let runs: Vec<_> = (0..CONNECTIONS)
        .map(|index| {
            tokio::spawn(client_run(
                served.ws_url(),
                index,
                workspace.path().to_owned(),
            ))
        })
        .collect();
    let mut cancelled = 0;
    for run in runs {
        cancelled += run.await.expect("a client run");
    }

    // Every session closes with its connection, abrupt or not.
    let mut closed = false;
    for _ in 0..600 {
        if served.health().await["sessions"] == 0 && children(pid).is_empty() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        closed,
        "sessions or commands left: {}",
        served.health().await
    );
    let (fds_after, others_after, rss_after) = (
        open_descriptors(pid),
        open_non_sockets(pid),
        resident_kib(pid),
    );
    // Files, directories, pipes and rulesets must all be back; sockets may stay in the model
    // client's keep-alive pool, which holds at most one per turn that ran at once.
    assert!(
        others_after.len() <= others.len(),
        "descriptors other than sockets: {others:?} before the soak, {others_after:?} after"
    );
    assert!(
        fds_after <= fds + CONNECTIONS + 8,
        "descriptors: {fds} before the soak, {fds_after} after"
    );
    assert!(
        children(pid).is_empty(),
        "child processes left: {:?}",
        children(pid)
    );
    assert!(
        rss_after <= rss * 3 + 64 * 1024,
        "resident memory: {rss} KiB before, {rss_after} KiB after"
    );
    let answered = model.completed();
    assert!(
        answered >= CONNECTIONS * PROMPTS / 2,
        "model answers: {answered}"
    );
    eprintln!(
        "soak: {cancelled} turns cancelled, {answered} model answers, fds {fds}->{fds_after}, rss {rss}->{rss_after} KiB"
    );
}
