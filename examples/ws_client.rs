//! A small ACP client over WebSocket, for `punie serve`: opens a session in the current
//! directory, sends one prompt, prints the answer as it streams, and asks you (on the terminal)
//! before Punie writes a file or runs a command.
//!
//! ```sh
//! punie serve --model http://localhost:11434/v1/qwen3:8b &
//! cargo run --example ws_client -- ws://127.0.0.1:7777/acp "What does src/main.rs do?"
//! ```
//!
//! Set `PUNIE_SERVE_TOKEN` when the server wants a token. The client advertises no file system
//! and no terminal, so Punie reads, writes and runs commands itself, confined to the directory.

use std::io::{BufRead, IsTerminal, Write};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(prompt)) = (args.next(), args.next()) else {
        eprintln!("usage: ws_client ws://127.0.0.1:7777/acp \"PROMPT\"");
        std::process::exit(2);
    };
    let mut request = url.as_str().into_client_request()?;
    if let Ok(token) = std::env::var("PUNIE_SERVE_TOKEN") {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;

    call(
        &mut socket,
        1,
        "initialize",
        json!({"protocolVersion": 1, "clientCapabilities": {},
               "clientInfo": {"name": "ws_client", "version": "0.1.0"}}),
    )
    .await?;
    let cwd = std::env::current_dir()?;
    let session = call(
        &mut socket,
        2,
        "session/new",
        json!({"cwd": cwd, "mcpServers": []}),
    )
    .await?;
    let session_id = session["sessionId"].clone();
    let result = call(
        &mut socket,
        3,
        "session/prompt",
        json!({"sessionId": session_id, "prompt": [{"type": "text", "text": prompt}]}),
    )
    .await?;
    println!();
    eprintln!("[stop reason: {}]", result["stopReason"]);
    socket.close(None).await?;
    Ok(())
}

/// Sends a request and handles everything that arrives until its response.
async fn call(
    socket: &mut Socket,
    id: u64,
    method: &str,
    params: Value,
) -> Result<Value, Box<dyn std::error::Error>> {
    let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    socket
        .send(Message::Text(request.to_string().into()))
        .await?;
    while let Some(frame) = socket.next().await {
        let Message::Text(text) = frame? else {
            continue;
        };
        let message: Value = serde_json::from_str(text.as_str())?;
        match message.get("method").and_then(Value::as_str) {
            Some("session/update") => show_update(&message["params"]["update"]),
            Some("session/request_permission") => {
                let answer = ask_permission(&message["params"]);
                let reply =
                    json!({"jsonrpc": "2.0", "id": message["id"], "result": {"outcome": answer}});
                socket.send(Message::Text(reply.to_string().into())).await?;
            }
            Some(other) => {
                let reply = json!({"jsonrpc": "2.0", "id": message["id"],
                    "error": {"code": -32601, "message": format!("{other} is not supported")}});
                socket.send(Message::Text(reply.to_string().into())).await?;
            }
            None if message["id"] == json!(id) => {
                if let Some(error) = message.get("error") {
                    return Err(format!("{method} failed: {error}").into());
                }
                return Ok(message["result"].clone());
            }
            None => {}
        }
    }
    Err("the server closed the connection".into())
}

fn show_update(update: &Value) {
    match update["sessionUpdate"].as_str() {
        Some("agent_message_chunk") => {
            print!("{}", update["content"]["text"].as_str().unwrap_or(""));
            let _ = std::io::stdout().flush();
        }
        Some("tool_call") => eprintln!("\n→ {}", update["title"].as_str().unwrap_or("tool")),
        Some("tool_call_update") => match update["status"].as_str() {
            Some("completed") => eprintln!("✓ {}", update["toolCallId"]),
            Some("failed") => eprintln!("✗ {}", update["toolCallId"]),
            _ => {}
        },
        _ => {}
    }
}

/// Asks on the terminal; refuses when there is none.
fn ask_permission(params: &Value) -> Value {
    let options = params["options"].as_array().cloned().unwrap_or_default();
    let pick = |kind: &str| {
        options
            .iter()
            .find(|option| option["kind"] == kind)
            .map(|option| json!({"outcome": "selected", "optionId": option["optionId"]}))
    };
    let allowed = if std::io::stdin().is_terminal() {
        eprint!(
            "\nAllow {}? [y/N] ",
            params["toolCall"]["title"].as_str().unwrap_or("this")
        );
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        line.trim().eq_ignore_ascii_case("y")
    } else {
        false
    };
    let kind = if allowed { "allow_once" } else { "reject_once" };
    pick(kind).unwrap_or_else(|| json!({"outcome": "cancelled"}))
}
