//! Sessions and connections cannot run `punie serve` out of descriptors: sessions per
//! connection are capped with a clear error, idle sessions hold no descriptor, another
//! connection still gets a session while one is at its cap, and a client that never finishes
//! its headers is dropped and counted against the connection limit meanwhile.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::support::served::{PATIENCE, ServeConfig, Served, WsClient};
use punie::agent::{Agent, DEFAULT_MAX_SESSIONS_PER_CONNECTION};
use punie::server::{self, ServerOptions};

/// The process's descriptors that are not sockets (files, directories, pipes, Landlock
/// rulesets): what a leak of the local workspace would show.
pub fn open_non_sockets(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|target| !target.starts_with("socket:"))
        .collect()
}

/// Descriptors the process has open now.
pub fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn thousands_of_sessions_on_one_connection_hit_the_cap_and_descriptors_stay_bounded() {
    let served = Served::start(ServeConfig::default()).await;
    let pid = served.child.id().unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let mut client = served.connect().await;
    client.open_session(workspace.path()).await;
    let baseline = open_descriptors(pid);

    // Pipelined: every request is sent before any answer is read.
    let attempts = 2000;
    let mut ids = Vec::new();
    for _ in 1..attempts {
        let params = json!({"cwd": workspace.path(), "mcpServers": []});
        ids.push(client.send_request("session/new", params).await);
    }
    // Answers come in any order (refusals at once, sessions after their model check).
    let mut pending: std::collections::HashSet<u64> = ids.into_iter().collect();
    let (mut opened, mut refusals) = (1, Vec::new());
    while !pending.is_empty() {
        let message = client.recv().await;
        let Some(id) = message["id"].as_u64() else {
            continue;
        };
        assert!(
            message.get("method").is_none(),
            "no request expected: {message}"
        );
        assert!(pending.remove(&id), "one answer per request: {message}");
        match message.get("error") {
            None => opened += 1,
            Some(error) => refusals.push(error.clone()),
        }
    }
    assert_eq!(
        opened, DEFAULT_MAX_SESSIONS_PER_CONNECTION,
        "sessions opened"
    );
    assert_eq!(refusals.len(), attempts - opened);
    for error in &refusals {
        assert_eq!(error["code"], -32600, "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("256 sessions open") && message.contains("new connection"),
            "the refusal names the cap and the way out: {message}"
        );
    }
    let after = open_descriptors(pid);
    assert!(
        after <= baseline + 32,
        "{opened} sessions in one directory hold descriptors: {baseline} before, {after} after"
    );

    // The first connection at its cap takes nothing from a second one.
    let mut other = served.connect().await;
    let session = other.open_session(workspace.path()).await;
    assert!(session.starts_with("sess_"), "{session}");
    assert_eq!(
        served.health().await["sessions"],
        json!(DEFAULT_MAX_SESSIONS_PER_CONNECTION + 1)
    );
}

/// A server of `agent` on a free loopback port with `options`: the WebSocket URL, the port and
/// the token that stops it.
async fn start_library_server(options: ServerOptions) -> (String, u16, CancellationToken) {
    let agent = Agent::builder()
        .openai("http://127.0.0.1:9/v1/none", None)
        .unwrap()
        .build()
        .unwrap();
    let (listener, _) = server::bind("127.0.0.1", 0, false, None).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    tokio::spawn(server::serve(listener, agent, options, shutdown.clone()));
    (format!("ws://127.0.0.1:{port}/acp"), port, shutdown)
}

/// True once the server has closed `stream` (end of file or reset), false if it is still open
/// after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_never_finishes_its_headers_counts_and_is_dropped() {
    let mut options = ServerOptions::default();
    options.max_connections = 2;
    let (url, port, shutdown) = start_library_server(options).await;
    let mut half_open = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        half_open.push(stream);
    }
    // Give the server a moment to have accepted both.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = WsClient::try_connect(&url, &[]).await.err();
    assert_eq!(
        refused.as_deref(),
        Some("503"),
        "two half-open connections fill a limit of two"
    );

    for stream in &mut half_open {
        assert!(
            closed_within(stream, PATIENCE).await,
            "a connection that never finished its headers is dropped (default timeout: 10 s)"
        );
    }
    let mut accepted = false;
    for _ in 0..100 {
        if let Ok(client) = WsClient::try_connect(&url, &[]).await {
            client.close().await;
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "dropped half-open connections free their slots");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_but_complete_request_is_still_served() {
    let (_url, port, shutdown) = start_library_server(ServerOptions::default()).await;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stream
        .write_all(b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(PATIENCE, stream.read_to_string(&mut answer))
        .await
        .expect("answered in time")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["connections"], 0, "no WebSocket is open: {body}");
    shutdown.cancel();
}
