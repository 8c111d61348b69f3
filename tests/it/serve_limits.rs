//! The server's limits, through the library (`punie::server`): connections beyond the cap get
//! 503, and a message beyond the size limit ends its connection.

use std::time::Duration;

use crate::support::served::{PATIENCE, WsClient};
use futures::{SinkExt, StreamExt};
use punie::agent::Agent;
use punie::server::{self, ServerOptions};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

async fn start(options: ServerOptions) -> (String, CancellationToken) {
    let agent = Agent::builder()
        .openai("http://127.0.0.1:9/v1/none", None)
        .unwrap()
        .build()
        .unwrap();
    let (listener, remote) = server::bind("127.0.0.1", 0, false, None).await.unwrap();
    assert!(!remote);
    let address = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(server::serve(listener, agent, options, shutdown.clone()));
    (format!("ws://{address}/acp"), shutdown)
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_cap_get_503() {
    let mut options = ServerOptions::default();
    options.max_connections = 1;
    let (url, shutdown) = start(options).await;
    let first = WsClient::connect(&url, &[]).await;
    let second = WsClient::try_connect(&url, &[]).await.err();
    assert_eq!(second.as_deref(), Some("503"));
    first.close().await;
    let mut accepted = false;
    for _ in 0..600 {
        if WsClient::try_connect(&url, &[]).await.is_ok() {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "a closed connection frees its slot");
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_beyond_the_limit_ends_the_connection() {
    let mut options = ServerOptions::default();
    options.max_message_bytes = 1024;
    let (url, shutdown) = start(options).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":1,"pad":"{}"}}}}"#,
        "x".repeat(4096)
    );
    socket.send(Message::Text(huge.into())).await.unwrap();
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(Message::Text(text))) => panic!("answered an oversized message: {text}"),
                Some(Ok(_)) => continue,
            }
        }
    })
    .await
    .expect("the server ends the connection");
    assert!(ended);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_drops_open_connections() {
    let (url, shutdown) = start(ServerOptions::default()).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    shutdown.cancel();
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the socket ends on shutdown");
}
