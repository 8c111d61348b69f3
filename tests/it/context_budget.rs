//! Small context windows: a long session keeps running inside the window (old tool outputs
//! shortened, older turns summarised, the person told), and a server's context-overflow error
//! leads to compaction and one retry. The toolset is fitted to the window (counted by a
//! llama.cpp server where it can), compaction comes in rare big steps so the prompt's prefix
//! stays byte-identical, `max_tokens` is what the window leaves, and a window too small for
//! anything gets its own error code naming the fix.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use punie::agent::{Agent, StopReason};
use punie::llm::{
    ChatModel, ChatRequest, FinishReason, LlmError, Message, ModelEvent, ModelStream, ToolCall,
};
use punie::testing::{FakeEditor, schema::SessionUpdate};
use serde_json::json;

/// Ollama's default context window.
const WINDOW: u32 = 4096;

/// Reads a big file on every prompt, then answers; summarises when asked without tools.
#[derive(Default)]
struct Reader {
    requests: Mutex<Vec<ChatRequest>>,
}

impl ChatModel for Reader {
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        let events = if request.tools.is_empty() {
            vec![ModelEvent::Text(
                "Summary: the user asked to read big.txt several times.".into(),
            )]
        } else if matches!(request.messages.last(), Some(Message::User { .. })) {
            vec![ModelEvent::ToolCall(ToolCall {
                id: format!("call_{}", self.requests.lock().unwrap().len()),
                name: "read_file".into(),
                arguments: json!({"path": "big.txt"}).to_string(),
            })]
        } else {
            vec![ModelEvent::Text("I read it.".into())]
        };
        self.requests.lock().unwrap().push(request);
        let mut events: Vec<_> = events.into_iter().map(Ok).collect();
        events.push(Ok(ModelEvent::Finished(FinishReason::Stop)));
        Box::pin(async move { Ok(Box::pin(futures::stream::iter(events)) as ModelStream) })
    }

    fn describe(&self) -> String {
        "reader".into()
    }

    fn context_size(&self) -> BoxFuture<'_, Option<u32>> {
        Box::pin(async { Some(WINDOW) })
    }
}

/// Bytes of everything a request sends; Punie's estimate is at most 3 bytes per token.
fn request_bytes(request: &ChatRequest) -> usize {
    let messages: usize = request
        .messages
        .iter()
        .map(|m| match m {
            Message::System { content } | Message::User { content } => content.len(),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                content.as_ref().map_or(0, String::len)
                    + tool_calls
                        .iter()
                        .map(|c| c.arguments.len() + c.name.len())
                        .sum::<usize>()
            }
            Message::Tool { content, .. } => content.len(),
            _ => 0,
        })
        .sum();
    let tools: usize = request
        .tools
        .iter()
        .map(|t| t.description.len() + t.parameters.to_string().len())
        .sum();
    messages + tools
}

#[tokio::test]
async fn a_long_session_stays_inside_a_small_window() {
    let model = Arc::new(Reader::default());
    let agent = Agent::builder().model(model.clone()).build().unwrap();
    let big: String = (0..400)
        .map(|i| format!("line {i} of a big file with some text\n"))
        .collect();
    let editor = FakeEditor::new().with_file("/project/big.txt", big.clone());
    let connection = editor.connect(agent).await.unwrap();
    let session = connection.new_session("/project").await.unwrap();
    for turn in 0..8 {
        let stop = connection
            .prompt(&session, &format!("read big.txt again ({turn})"))
            .await
            .unwrap();
        assert_eq!(stop, StopReason::EndTurn, "turn {turn}");
    }
    let requests = model.requests.lock().unwrap();
    for (i, request) in requests.iter().enumerate() {
        let bytes = request_bytes(request);
        let max_tokens = request.max_tokens.unwrap();
        assert!(
            bytes / 3 + max_tokens as usize <= WINDOW as usize + 200,
            "request {i}: {bytes} bytes + {max_tokens} tokens"
        );
    }
    assert!(
        requests.iter().any(|r| r.tools.is_empty()),
        "older turns were summarised by the model"
    );
    let last = requests.last().unwrap();
    assert!(
        last.messages.iter().any(|m| matches!(m, Message::User { content } if content.contains("Summary: the user asked"))),
        "the summary replaced the older turns"
    );
    // The big tool output was capped before it entered the history.
    let first_tool = requests[1].messages.iter().find_map(|m| match m {
        Message::Tool { content, .. } => Some(content.clone()),
        _ => None,
    });
    let first_tool = first_tool.unwrap();
    assert!(
        first_tool.len() < big.len() && first_tool.contains("cut"),
        "{} bytes",
        first_tool.len()
    );
    // The person was told, and saw how full the window is.
    assert!(
        editor.message_text().contains("context window"),
        "{}",
        editor.message_text()
    );
    assert!(
        editor
            .notifications()
            .iter()
            .all(|n| !matches!(n.update, SessionUpdate::UsageUpdate(_))),
        "the fake editor advertises no session capabilities"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_context_overflow_error_compacts_and_retries_once() {
    use crate::support::fake_model::{FakeModelServer, Reply};
    use crate::support::fixture;
    let server = FakeModelServer::start().await;
    server.push(Reply::fixture(fixture!(
        "llama.cpp/62_err_context_overflow_nonstream.http"
    )));
    server.push(Reply::text("fits now"));
    let spec = format!("{}/fake-model", server.base_url());
    let agent = Agent::builder()
        .openai(&spec, None)
        .unwrap()
        .build()
        .unwrap();
    let editor = FakeEditor::new();
    let connection = editor.connect(agent).await.unwrap();
    let session = connection.new_session("/project").await.unwrap();
    let stop = connection.prompt(&session, "hello").await.unwrap();
    assert_eq!(stop, StopReason::EndTurn);
    assert_eq!(editor.message_text(), "fits now");
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "one retry");
    assert!(requests[1]["max_tokens"].as_u64() <= requests[0]["max_tokens"].as_u64());
}

mod fitted {
    use super::*;
    use crate::support::fake_model::{FakeModelServer, Reply};

    /// A fake server that reports a `window`-token context (llama.cpp's `/props`).
    async fn server_with_window(window: u32) -> FakeModelServer {
        let server = FakeModelServer::start().await;
        server.route(
            "GET",
            "/props",
            Reply::json(json!({"default_generation_settings": {"n_ctx": window}})),
        );
        server
    }

    fn agent_for(server: &FakeModelServer) -> Arc<Agent> {
        Agent::builder()
            .openai(&format!("{}/fake-model", server.base_url()), None)
            .unwrap()
            .build()
            .unwrap()
    }

    fn messages(request: &serde_json::Value) -> Vec<serde_json::Value> {
        request["messages"].as_array().unwrap().clone()
    }

    fn tool_names(request: &serde_json::Value) -> Vec<String> {
        request["tools"]
            .as_array()
            .map(|tools| {
                tools
                    .iter()
                    .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many requests did not start with the whole of the one before: each is a prompt
    /// the server could not take from its cache.
    fn prefix_breaks(requests: &[serde_json::Value]) -> usize {
        requests
            .windows(2)
            .filter(|pair| {
                let (before, after) = (messages(&pair[0]), messages(&pair[1]));
                after.len() < before.len()
                    || after[..before.len()] != before[..]
                    || pair[0]["tools"] != pair[1]["tools"]
            })
            .count()
    }

    fn files(editor: FakeEditor, count: usize, bytes: usize) -> FakeEditor {
        (0..count).fold(editor, |editor, i| {
            let text: String = (0..)
                .map(|line| format!("file {i} line {line}: some text of the file\n"))
                .take_while({
                    let mut total = 0;
                    move |l| {
                        total += l.len();
                        total <= bytes
                    }
                })
                .collect();
            editor.with_file(format!("/project/f{i}.txt"), text)
        })
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn requests_under_no_pressure_send_byte_identical_prefixes() {
        let server = server_with_window(8192).await;
        for i in 0..3 {
            server.push(Reply::tool_call(
                "read_file",
                json!({"path": format!("f{i}.txt")}),
            ));
        }
        server.push(Reply::text("Read them."));
        server.push(Reply::tool_call("read_file", json!({"path": "f0.txt"})));
        server.push(Reply::text("Again."));
        let editor = files(FakeEditor::new(), 3, 600);
        let connection = editor.connect(agent_for(&server)).await.unwrap();
        let session = connection.new_session("/project").await.unwrap();
        for prompt in ["read three files", "and the first again"] {
            let stop = connection.prompt(&session, prompt).await.unwrap();
            assert_eq!(stop, StopReason::EndTurn);
        }
        let requests = server.requests();
        assert_eq!(requests.len(), 6);
        assert_eq!(
            prefix_breaks(&requests),
            0,
            "every request extends the one before"
        );
        assert_eq!(
            tool_names(&requests[0]).len(),
            12,
            "a big window gets every tool"
        );
        // No max_tokens was configured: the window decides, within the 4096 cap.
        assert_eq!(requests[0]["max_tokens"], 4096);
        assert!(
            !editor.message_text().contains("compacted"),
            "{}",
            editor.message_text()
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn under_pressure_compaction_is_rare_and_every_request_fits() {
        const SMALL: u32 = 4096;
        let server = server_with_window(SMALL).await;
        let mut expected = 0;
        for turn in 0..3 {
            for i in 0..5 {
                let file = (turn * 5 + i) % 8;
                server.push(Reply::tool_call(
                    "read_file",
                    json!({"path": format!("f{file}.txt")}),
                ));
            }
            server.push(Reply::text("Done reading."));
            expected += 6;
        }
        server.push(Reply::text("Summary: files were read."));
        let editor = files(FakeEditor::new(), 8, 2400);
        let connection = editor.connect(agent_for(&server)).await.unwrap();
        let session = connection.new_session("/project").await.unwrap();
        for turn in 0..3 {
            let stop = connection
                .prompt(&session, &format!("read five files ({turn})"))
                .await
                .unwrap();
            assert_eq!(stop, StopReason::EndTurn, "turn {turn}");
        }
        let requests: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r["tools"].is_array())
            .collect();
        // A summary request (no tools) takes whichever reply is next, so a turn may have a
        // request fewer than scripted.
        assert!(
            requests.len() + 3 >= expected,
            "{} requests",
            requests.len()
        );
        for (i, request) in requests.iter().enumerate() {
            let bytes = request.to_string().len();
            let max_tokens = request["max_tokens"].as_u64().unwrap() as usize;
            assert!(
                max_tokens >= 256 && bytes / 4 + max_tokens <= SMALL as usize,
                "request {i}: {bytes} bytes + {max_tokens} tokens"
            );
        }
        let breaks = prefix_breaks(&requests);
        assert!(
            (1..=requests.len() / 3).contains(&breaks),
            "{breaks} of {} requests changed the prefix",
            requests.len()
        );
        assert_eq!(
            tool_names(&requests[0]).len(),
            7,
            "a compact toolset for 4,096 tokens (the terminal helpers and update_plan folded)"
        );
        let text = editor.message_text();
        assert!(
            text.contains("compact toolset") && text.contains("4,096"),
            "{text}"
        );
        assert!(
            text.contains("History compacted") || text.contains("to fit the model's"),
            "{text}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_llama_cpp_servers_count_of_the_fixed_prompt_decides_the_toolset() {
        let server = server_with_window(4096).await;
        server.set_models_reply(Reply::json(json!({"object": "list", "data": [
            {"id": "fake-model", "object": "model", "owned_by": "llamacpp"}
        ]})));
        server.route(
            "POST",
            "/apply-template",
            Reply::json(json!({"prompt": "<rendered>"})),
        );
        // The estimate would take the full toolset for more than a third of 4,096 tokens;
        // the server says it is 1,200.
        server.route(
            "POST",
            "/tokenize",
            Reply::json(json!({"tokens": vec![1; 1200]})),
        );
        server.push(Reply::text("hello"));
        server.push(Reply::text("again"));
        let editor = FakeEditor::new();
        let connection = editor.connect(agent_for(&server)).await.unwrap();
        let session = connection.new_session("/project").await.unwrap();
        for prompt in ["hi", "hi again"] {
            let stop = connection.prompt(&session, prompt).await.unwrap();
            assert_eq!(stop, StopReason::EndTurn);
        }
        let requests = server.requests();
        assert_eq!(
            tool_names(&requests[0]).len(),
            12,
            "{:?}",
            tool_names(&requests[0])
        );
        let routes = server.route_requests();
        let template = routes
            .iter()
            .find(|(method, path, _)| method == "POST" && path == "/apply-template")
            .expect("the chat template was applied");
        assert_eq!(template.2["tools"].as_array().map(Vec::len), Some(12));
        let counted: Vec<_> = routes
            .iter()
            .filter(|(_, path, _)| path == "/tokenize")
            .collect();
        assert_eq!(
            counted.len(),
            1,
            "the same fixed prompt is counted once: {routes:?}"
        );
        assert_eq!(counted[0].2["content"], "<rendered>");
        assert_eq!(
            editor.message_text(),
            "helloagain",
            "no notice for the full toolset"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_2048_token_window_answers_a_question_that_needs_one_read() {
        let server = server_with_window(2048).await;
        server.push(Reply::tool_call("read_file", json!({"path": "f0.txt"})));
        server.push(Reply::text("It says file 0."));
        let editor = files(FakeEditor::new(), 1, 1200);
        let connection = editor.connect(agent_for(&server)).await.unwrap();
        let session = connection.new_session("/project").await.unwrap();
        let stop = connection
            .prompt(&session, "what does f0.txt say?")
            .await
            .unwrap();
        assert_eq!(stop, StopReason::EndTurn);
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        assert!(tool_names(&requests[0]).len() < 12);
        for request in &requests {
            let max_tokens = request["max_tokens"].as_u64().unwrap();
            assert!(
                (256..2048).contains(&max_tokens),
                "max_tokens is what the window leaves: {max_tokens}"
            );
        }
        assert!(requests[1]["max_tokens"].as_u64() < requests[0]["max_tokens"].as_u64());
        assert!(editor.message_text().ends_with("It says file 0."));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_window_too_small_for_anything_names_the_fix_with_its_own_code() {
        let server = server_with_window(1024).await;
        server.push(Reply::text("never sent"));
        let editor = FakeEditor::new();
        let connection = editor.connect(agent_for(&server)).await.unwrap();
        let session = connection.new_session("/project").await.unwrap();
        let error = connection.prompt(&session, "hello").await.unwrap_err();
        assert_eq!(error.code, -32010, "{error}");
        assert!(
            error
                .message
                .starts_with("the model's window is 1,024 tokens and Punie needs ")
                && error.message.contains("start llama-server with -c 4096")
                && error.message.contains("OLLAMA_CONTEXT_LENGTH"),
            "{}",
            error.message
        );
        assert!(
            server.requests().is_empty(),
            "no request that cannot fit is sent"
        );
    }
}
