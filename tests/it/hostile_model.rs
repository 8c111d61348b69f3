//! A model server that misbehaves on purpose (an endless line, a flood of keep-alives, a
//! trickle, a giant delta, a redirect elsewhere) cannot exhaust Punie's memory, hold a turn for
//! ever, or receive the conversation at another host.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agent_client_protocol::v1::schema::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::editor::{EditorOptions, new_session, prompt, with_editor, workspace};
use crate::support::fake_model::{FAKE_MODEL, FakeModelServer, Reply};

/// What the misbehaving server does with a chat completion request.
#[derive(Clone)]
enum Behaviour {
    /// Streams these bytes, then writes `repeat` for ever (until the client goes away), with
    /// `pause` between writes.
    Forever {
        start: Vec<u8>,
        repeat: Vec<u8>,
        pause: Duration,
    },
    /// Answers with this whole HTTP response (status line, headers and body).
    Raw(String),
}

/// A misbehaving model server: GET requests get a 404 (no model list, no context size), POSTs
/// to a path ending in `/chat/completions` get `behaviour(path)`.
struct HostileServer {
    port: u16,
    chat_requests: Arc<AtomicUsize>,
}

impl HostileServer {
    async fn start(behaviour: impl Fn(&str) -> Behaviour + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let chat_requests = Arc::new(AtomicUsize::new(0));
        let counter = chat_requests.clone();
        let behaviour = Arc::new(behaviour);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let behaviour = behaviour.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, &*behaviour, &counter).await;
                });
            }
        });
        Self {
            port,
            chat_requests,
        }
    }

    /// The model spec naming a model on this server.
    fn spec(&self) -> String {
        format!("http://127.0.0.1:{}/v1/fake", self.port)
    }

    fn chat_requests(&self) -> usize {
        self.chat_requests.load(Ordering::SeqCst)
    }
}

async fn serve(
    mut socket: TcpStream,
    behaviour: &(dyn Fn(&str) -> Behaviour + Send + Sync),
    chat_requests: &AtomicUsize,
) -> std::io::Result<()> {
    loop {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if socket.read(&mut byte).await? == 0 {
                return Ok(());
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0; length];
        socket.read_exact(&mut body).await?;
        let mut words = head.split_whitespace();
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        if method != "POST" || !path.ends_with("/chat/completions") {
            socket
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await?;
            continue;
        }
        chat_requests.fetch_add(1, Ordering::SeqCst);
        match behaviour(path) {
            Behaviour::Raw(response) => socket.write_all(response.as_bytes()).await?,
            Behaviour::Forever {
                start,
                repeat,
                pause,
            } => {
                socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
                    )
                    .await?;
                socket.write_all(&start).await?;
                loop {
                    // Ends with an error once Punie closes the connection.
                    socket.write_all(&repeat).await?;
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
    }
}

/// The error message of a prompt that must fail within `within`.
async fn failure_within(spec: &str, env: &[(&str, &str)], within: Duration) -> String {
    let (_dir, ws) = workspace();
    let options = EditorOptions {
        env: env
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        ..Default::default()
    };
    let (result, _) = with_editor(spec, &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        tokio::time::timeout(within, prompt(&cx, &session, "hi"))
            .await
            .expect("the turn ended in time")
    })
    .await;
    result.expect_err("the turn fails").message
}

#[tokio::test]
async fn an_endless_line_fails_the_turn_at_the_event_limit() {
    let server = HostileServer::start(|_| Behaviour::Forever {
        start: b"data: {\"choices\":[{\"delta\":{\"content\":\"".to_vec(),
        repeat: vec![b'A'; 64 * 1024],
        pause: Duration::ZERO,
    })
    .await;
    // Before the limit, Punie read this for as long as the server sent it.
    let message = failure_within(&server.spec(), &[], Duration::from_secs(20)).await;
    assert!(message.contains("over Punie's limit of 1 MiB"), "{message}");
    assert!(message.contains("a server-sent event"), "{message}");
    assert!(
        message.contains(r#"data: {\"choices\":[{\"delta\":{\"content\":\"AAAA"#),
        "an excerpt of what came: {message}"
    );
}

#[tokio::test]
async fn cancel_is_prompt_while_the_server_floods_keepalives() {
    // A flood of bytes that never make an event (gentle enough not to starve the tests
    // running beside it on a small machine).
    let server = HostileServer::start(|_| Behaviour::Forever {
        start: Vec::new(),
        repeat: b": ping\n".repeat(8 * 1024),
        pause: Duration::from_millis(1),
    })
    .await;
    let (_dir, ws) = workspace();
    let (stop, _) = with_editor(
        &server.spec(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            let pending = cx.send_request(PromptRequest::new(
                session.clone(),
                vec![ContentBlock::from("hi")],
            ));
            for _ in 0..200 {
                if server.chat_requests() > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            cx.send_notification(CancelNotification::new(session.clone()))
                .unwrap();
            tokio::time::timeout(Duration::from_secs(10), pending.block_task())
                .await
                .expect("cancel answered promptly")
                .unwrap()
                .stop_reason
        },
    )
    .await;
    assert_eq!(stop, StopReason::Cancelled);
}

#[tokio::test]
async fn keepalives_after_the_first_token_end_the_turn_at_the_idle_limit() {
    let server = HostileServer::start(|_| Behaviour::Forever {
        start: b"data: {\"choices\":[{\"delta\":{\"content\":\"Thinking\"}}]}\n\n".to_vec(),
        repeat: b": ping\n\ndata: {\"choices\":[]}\n\n".to_vec(),
        pause: Duration::from_millis(200),
    })
    .await;
    // Before, every keep-alive restarted the idle timeout: the turn never ended.
    let message = failure_within(
        &server.spec(),
        &[("PUNIE_IDLE_TIMEOUT", "2")],
        Duration::from_secs(20),
    )
    .await;
    assert!(message.contains("did not answer within 2 s"), "{message}");
    assert!(message.contains("keep-alive comments"), "{message}");
    assert!(
        message.contains("--idle-timeout SECONDS (PUNIE_IDLE_TIMEOUT)"),
        "{message}"
    );
}

#[tokio::test]
async fn a_trickling_server_ends_the_turn_at_the_turn_limit() {
    let server = HostileServer::start(|_| Behaviour::Forever {
        start: Vec::new(),
        repeat: b"data: {\"choices\":[{\"delta\":{\"content\":\"la \"}}]}\n\n".to_vec(),
        pause: Duration::from_millis(300),
    })
    .await;
    let message = failure_within(
        &server.spec(),
        &[("PUNIE_TURN_TIMEOUT", "3")],
        Duration::from_secs(20),
    )
    .await;
    assert!(message.contains("stopped after 3 s"), "{message}");
    assert!(
        message.contains("--turn-timeout SECONDS (PUNIE_TURN_TIMEOUT)"),
        "{message}"
    );
}

#[tokio::test]
async fn a_large_delta_reaches_the_editor_in_pieces() {
    let server = FakeModelServer::start().await;
    // 900 KiB in one delta (under the 1 MiB event limit), with two-byte characters so a cut at
    // a fixed byte count would split one; numbered, since one character repeated for ever is a
    // loop Punie stops (specs/turn-loop.md, "Loops").
    let text: String = (0..110_000).map(|i| format!("é{i}é")).collect();
    let event =
        serde_json::json!({"choices": [{"delta": {"content": text}, "finish_reason": "stop"}]});
    server.push(Reply::sse_body(&format!(
        "data: {event}\n\ndata: [DONE]\n\n"
    )));
    let (_dir, ws) = workspace();
    let (stop, record) = with_editor(
        &server.spec_for(FAKE_MODEL),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "hi").await.unwrap().stop_reason
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let record = record.lock().unwrap();
    assert_eq!(record.message_text(), text);
    let sizes: Vec<usize> = record
        .updates
        .iter()
        .filter_map(|update| match update {
            SessionUpdate::AgentMessageChunk(chunk) => match &chunk.content {
                ContentBlock::Text(text) => Some(text.text.len()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert!(sizes.len() >= 900 / 16, "{} chunks", sizes.len());
    assert!(
        sizes.iter().all(|&size| size <= 16 * 1024),
        "chunks of at most 16 KiB: {:?}",
        sizes.iter().max()
    );
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_refused() {
    let elsewhere = HostileServer::start(|_| {
        Behaviour::Raw("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n".to_owned())
    })
    .await;
    let target = format!("http://127.0.0.1:{}/v1/chat/completions", elsewhere.port);
    let location = target.clone();
    let server = HostileServer::start(move |_| {
        Behaviour::Raw(format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\ncontent-length: 0\r\n\r\n"
        ))
    })
    .await;
    let message = failure_within(&server.spec(), &[], Duration::from_secs(20)).await;
    assert!(
        message.contains(&format!("redirected the request to {target}")),
        "{message}"
    );
    assert!(
        message.contains("does not follow redirects to another host"),
        "{message}"
    );
    assert!(
        message.contains("point --model at the final URL"),
        "{message}"
    );
    assert_eq!(elsewhere.chat_requests(), 0, "the conversation stayed home");
}

#[tokio::test]
async fn a_redirect_within_the_server_is_followed() {
    let server = HostileServer::start(|path| {
        if path.starts_with("/v1/") {
            Behaviour::Raw(
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: /v2/chat/completions\r\ncontent-length: 0\r\n\r\n"
                    .to_owned(),
            )
        } else {
            let body = "data: {\"choices\":[{\"delta\":{\"content\":\"moved\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
            Behaviour::Raw(format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            ))
        }
    })
    .await;
    let (_dir, ws) = workspace();
    let (stop, record) = with_editor(
        &server.spec(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "hi").await.unwrap().stop_reason
        },
    )
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    assert_eq!(record.lock().unwrap().message_text(), "moved");
    assert_eq!(server.chat_requests(), 2);
}
