//! Images through the real binary and the official ACP client: `promptCapabilities.image`
//! as the model server tells, image blocks reaching the model as `image_url` parts, refused
//! for a model that cannot see (before anything reaches it), and MCP tool results' images.

use agent_client_protocol::v1::schema::{
    ContentBlock, EnvVariable, ImageContent, McpServer, McpServerStdio, NewSessionRequest,
    PromptRequest, SessionUpdate, StopReason, ToolCallContent,
};
use punie::tools::mcp::McpServerConfig;
use serde_json::{Value, json};

use crate::support::editor::{Answer, EditorOptions, new_session, prompt, with_editor, workspace};
use crate::support::fake_model::{FAKE_MODEL, FakeModelServer, Reply};

/// A 1×1 PNG, base64.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==";

/// Whether `initialize` offered image prompts, against `server`.
async fn offers_images(server: &FakeModelServer) -> bool {
    let (_dir, ws) = workspace();
    let ((), record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |_, _| (),
    )
    .await;
    let record = record.lock().unwrap();
    let answer = record.initialize.as_ref().expect("initialize was answered");
    answer.agent_capabilities.prompt_capabilities.image
}

#[tokio::test(flavor = "multi_thread")]
async fn initialize_offers_images_only_when_the_server_says_the_model_sees() {
    let llama_vision = FakeModelServer::start().await;
    llama_vision.sees(true);
    assert!(
        offers_images(&llama_vision).await,
        "llama.cpp /props modalities.vision"
    );

    let llama_blind = FakeModelServer::start().await;
    llama_blind.sees(false);
    assert!(
        !offers_images(&llama_blind).await,
        "llama.cpp without a projector"
    );

    let ollama = FakeModelServer::start().await;
    ollama.route(
        "POST",
        "/api/show",
        Reply::json(
            json!({"capabilities": ["completion", "vision"], "parameters": "num_ctx 8192"}),
        ),
    );
    assert!(offers_images(&ollama).await, "Ollama capabilities");

    let lm_studio = FakeModelServer::start().await;
    lm_studio.route(
        "GET",
        &format!("/api/v0/models/{FAKE_MODEL}"),
        Reply::json(json!({"id": FAKE_MODEL, "type": "vlm"})),
    );
    assert!(offers_images(&lm_studio).await, "LM Studio type vlm");

    let silent = FakeModelServer::start().await;
    assert!(!offers_images(&silent).await, "a server that does not tell");
}

fn image_prompt(session: &agent_client_protocol::v1::schema::SessionId) -> PromptRequest {
    PromptRequest::new(
        session.clone(),
        vec![
            ContentBlock::from("what is in this picture?"),
            ContentBlock::Image(ImageContent::new(PNG, "image/png")),
        ],
    )
}

/// Every `image_url` of a request's messages.
fn image_urls(request: &Value) -> Vec<String> {
    let mut urls = Vec::new();
    for message in request["messages"].as_array().unwrap() {
        if let Some(parts) = message["content"].as_array() {
            for part in parts {
                if part["type"] == "image_url" {
                    urls.push(part["image_url"]["url"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    urls
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_block_reaches_the_model_as_an_image_url_part_and_stays_in_the_history() {
    let server = FakeModelServer::start().await;
    server.sees(true);
    server.push(Reply::text("A single pixel."));
    server.push(Reply::text("Still one pixel."));
    let (_dir, ws) = workspace();
    let (stops, _) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            let first = cx
                .send_request(image_prompt(&session))
                .block_task()
                .await
                .unwrap()
                .stop_reason;
            let second = prompt(&cx, &session, "and now?").await.unwrap().stop_reason;
            (first, second)
        },
    )
    .await;
    assert_eq!(stops, (StopReason::EndTurn, StopReason::EndTurn));
    let requests = server.requests();
    let user = requests[0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|m| m["role"] == "user")
        .unwrap()
        .clone();
    assert_eq!(
        user["content"],
        json!([
            {"type": "text", "text": "what is in this picture?"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}},
        ])
    );
    // The next request carries the whole conversation, the image included.
    assert_eq!(
        image_urls(&requests[1]),
        vec![format!("data:image/png;base64,{PNG}")]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_for_a_model_that_cannot_see_is_refused_before_the_model_is_asked() {
    let server = FakeModelServer::start().await;
    server.sees(false);
    server.push(Reply::text("Hello."));
    let (_dir, ws) = workspace();
    let ((refused, after), _) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            let refused = cx.send_request(image_prompt(&session)).block_task().await;
            let requests_then = server.requests().len();
            let after = prompt(&cx, &session, "hello").await.unwrap().stop_reason;
            ((refused, requests_then), after)
        },
    )
    .await;
    let (refused, requests_then) = refused;
    let error = refused.expect_err("the image prompt is refused");
    assert_eq!(
        error.code,
        agent_client_protocol::ErrorCode::INVALID_PARAMS,
        "{error:?}"
    );
    assert!(error.message.contains(FAKE_MODEL), "{}", error.message);
    assert!(
        error.message.contains("cannot see images"),
        "{}",
        error.message
    );
    assert!(error.message.contains("vision = true"), "{}", error.message);
    assert_eq!(requests_then, 0, "nothing reached the model");
    // The session is intact and the refused prompt left nothing in it.
    assert_eq!(after, StopReason::EndTurn);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert!(image_urls(&requests[0]).is_empty());
    let text = requests[0].to_string();
    assert!(!text.contains("what is in this picture"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_past_the_limit_is_refused_with_the_numbers() {
    let server = FakeModelServer::start().await;
    server.sees(true);
    let (_dir, ws) = workspace();
    let big = "A".repeat((punie::image::MAX_IMAGE_BYTES / 3 + 1) * 4);
    let (refused, _) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            cx.send_request(PromptRequest::new(
                session,
                vec![ContentBlock::Image(ImageContent::new(big, "image/png"))],
            ))
            .block_task()
            .await
        },
    )
    .await;
    let error = refused.expect_err("too large");
    assert_eq!(
        error.code,
        agent_client_protocol::ErrorCode::INVALID_PARAMS,
        "{error:?}"
    );
    assert!(
        error.message.contains("at most 5242880 bytes (5 MiB)"),
        "{}",
        error.message
    );
    assert!(server.requests().is_empty());
}

/// The MCP test server of `crate::mcp` as `session/new` names it.
fn picture_server() -> McpServer {
    let McpServerConfig::Stdio { command, args, .. } = crate::mcp::stdio_server("pics") else {
        unreachable!()
    };
    McpServer::Stdio(
        McpServerStdio::new("pics", command)
            .args(args)
            .env(vec![EnvVariable::new(crate::mcp::SERVER_ENV, "1")]),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_tool_result_image_reaches_a_model_that_sees_and_a_note_reaches_one_that_cannot() {
    for sees in [true, false] {
        let server = FakeModelServer::start().await;
        server.sees(sees);
        server.push(Reply::tool_call("pics__picture", json!({})));
        server.push(Reply::text("It is a tiny picture."));
        let (_dir, ws) = workspace();
        let options = EditorOptions {
            answers: vec![Answer::AllowOnce],
            ..EditorOptions::default()
        };
        let (stop, record) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
            let session = cx
                .send_request(NewSessionRequest::new(&ws).mcp_servers(vec![picture_server()]))
                .block_task()
                .await
                .unwrap()
                .session_id;
            prompt(&cx, &session, "show me the picture")
                .await
                .unwrap()
                .stop_reason
        })
        .await;
        assert_eq!(stop, StopReason::EndTurn);
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "sees: {sees}");
        let messages = requests[1]["messages"].as_array().unwrap();
        let tool = messages.iter().position(|m| m["role"] == "tool").unwrap();
        assert_eq!(
            messages[tool]["content"],
            "a tiny picture\n[image: image/png, 3 bytes]"
        );
        let next = &messages[tool + 1];
        assert_eq!(next["role"], "user");
        if sees {
            assert_eq!(
                image_urls(&requests[1]),
                vec!["data:image/png;base64,YWJj".to_owned()]
            );
            assert_eq!(
                next["content"][1]["image_url"]["url"],
                "data:image/png;base64,YWJj"
            );
        } else {
            assert!(image_urls(&requests[1]).is_empty());
            let note = next["content"].as_str().unwrap();
            assert!(note.contains("cannot see"), "{note}");
            assert!(note.contains("[image: image/png, 3 bytes]"), "{note}");
        }
        // The editor is shown the image with the call's result.
        let record = record.lock().unwrap();
        let shown = record.updates.iter().any(|update| match update {
            SessionUpdate::ToolCallUpdate(update) => update
                .fields
                .content
                .iter()
                .flatten()
                .any(|c| matches!(c, ToolCallContent::Content(c) if matches!(&c.content, ContentBlock::Image(i) if i.data == "YWJj"))),
            _ => false,
        });
        assert!(shown, "sees: {sees}");
    }
}
