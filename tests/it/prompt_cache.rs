//! The prompt cache (issue 16, item 5): model servers reuse their work on the longest unchanged
//! prefix of a prompt, so every request of a session must start with the bytes of the one
//! before it. Checked on the bodies the fake server received, byte for byte, over a turn of
//! three requests, a second turn, and a second session in another project.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::support::editor::{EditorOptions, new_session, prompt, with_editor, workspace};
use crate::support::fake_model::{FakeModelServer, Reply};

/// The parts of a request body that make the prompt, exactly as they were sent.
#[derive(Deserialize)]
struct Prompt<'a> {
    #[serde(borrow)]
    messages: Vec<&'a RawValue>,
    #[serde(borrow)]
    tools: &'a RawValue,
}

fn prompt_of(raw: &[u8]) -> Prompt<'_> {
    serde_json::from_slice(raw).expect("a request body with messages and tools")
}

/// Arguments written the way a model writes them, not the way serde_json would print them.
const READ_ARGS: &str = r#"{ "path" : "notes.txt" }"#;
const LIST_ARGS: &str = r#"{"path": "."}"#;

#[tokio::test]
async fn every_request_starts_with_the_bytes_of_the_one_before() {
    let server = FakeModelServer::start().await;
    // Session one, turn one: two tool calls, then an answer (three requests); turn two: one.
    server.push(Reply::tool_call("read_file", READ_ARGS));
    server.push(Reply::tool_call("list_dir", LIST_ARGS));
    server.push(Reply::text("The notes say hello."));
    server.push(Reply::text("You are welcome."));
    // Session two, in another project: one tool call, then an answer.
    server.push(Reply::tool_call("read_file", READ_ARGS));
    server.push(Reply::text("Hello again."));

    let (_one_dir, one) = workspace();
    let (_two_dir, two) = workspace();
    for project in [&one, &two] {
        std::fs::write(project.join("notes.txt"), "hello\n").unwrap();
    }
    let ((), _record) = with_editor(
        &server.base_url(),
        &one,
        EditorOptions::default(),
        async |cx, _| {
            let first = new_session(&cx, &one).await;
            prompt(&cx, &first, "what do the notes say?").await.unwrap();
            prompt(&cx, &first, "thanks").await.unwrap();
            let second = new_session(&cx, &two).await;
            prompt(&cx, &second, "what do the notes say?")
                .await
                .unwrap();
        },
    )
    .await;

    let raw = server.raw_requests();
    assert_eq!(raw.len(), 6, "requests: {:?}", server.requests());
    let prompts: Vec<Prompt> = raw.iter().map(|body| prompt_of(body)).collect();
    let (session_one, session_two) = prompts.split_at(4);

    // Within a session: the tools never change, and each request's messages begin with every
    // message of the request before, byte for byte (the model's own arguments included).
    for session in [session_one, session_two] {
        for pair in session.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            assert_eq!(before.tools.get(), after.tools.get(), "the tools changed");
            assert!(after.messages.len() > before.messages.len());
            for (index, (a, b)) in before.messages.iter().zip(&after.messages).enumerate() {
                assert_eq!(a.get(), b.get(), "message {index} was sent differently");
            }
        }
    }
    let replayed: serde_json::Value =
        serde_json::from_str(session_one[1].messages[2].get()).unwrap();
    assert_eq!(
        replayed["tool_calls"][0]["function"]["arguments"], READ_ARGS,
        "the call's arguments were not replayed as the model wrote them"
    );

    // Across sessions: the same tools, and a system prompt that differs only at its end,
    // where it names the project.
    assert_eq!(session_one[0].tools.get(), session_two[0].tools.get());
    let system = |p: &Prompt| -> String {
        let message: serde_json::Value = serde_json::from_str(p.messages[0].get()).unwrap();
        assert_eq!(message["role"], "system");
        message["content"].as_str().unwrap().to_owned()
    };
    let (system_one, system_two) = (system(&session_one[0]), system(&session_two[0]));
    let root_line = |root: &std::path::Path| format!("The project root is {}.", root.display());
    let shared_one = system_one
        .strip_suffix(&root_line(&one))
        .unwrap_or_else(|| panic!("the system prompt does not end with the project: {system_one}"));
    let shared_two = system_two
        .strip_suffix(&root_line(&two))
        .unwrap_or_else(|| panic!("the system prompt does not end with the project: {system_two}"));
    assert_eq!(shared_one, shared_two);
    assert!(shared_one.len() > 300, "{shared_one}");
    assert!(!shared_one.contains(&one.display().to_string()));
}

/// The request an editor sends for the perf report (Punie's ACP extension).
#[derive(
    Debug, Clone, serde::Serialize, serde::Deserialize, agent_client_protocol::JsonRpcRequest,
)]
#[request(method = "_punie/perf_report", response = serde_json::Value)]
struct PerfReportRequest(serde_json::Value);

#[tokio::test]
async fn the_perf_report_has_the_servers_cache_and_the_calls_read_from_text() {
    let server = FakeModelServer::start().await;
    // Qwen2.5-Coder 0.5B's bare JSON call, then llama.cpp's recorded answer with `timings`
    // (30 of 31 prompt tokens from its cache, 13 tokens in 198.573 ms).
    server.push(Reply::sse_body(crate::support::fixture!(
        "text_tools/bare_json_llama_cpp.sse"
    )));
    server.push(Reply::fixture(crate::support::fixture!(
        "llama.cpp/20_chat_stream_usage_stop.http"
    )));
    let (dir, ws) = workspace();
    std::fs::write(ws.join("cart.rs"), "fn total_value() {}\n").unwrap();
    let options = EditorOptions {
        env: vec![
            ("PUNIE_PERF".to_owned(), "1".to_owned()),
            (
                "PUNIE_PERF_DIR".to_owned(),
                dir.path().join("perf").display().to_string(),
            ),
        ],
        ..EditorOptions::default()
    };
    let (report, _record) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        prompt(&cx, &session, "where is total_value?")
            .await
            .unwrap();
        cx.send_request(PerfReportRequest(serde_json::json!({"format": "json"})))
            .block_task()
            .await
            .expect("_punie/perf_report")
    })
    .await;
    let totals = &report["json"]["totals"];
    assert_eq!(totals["model_requests"], 2, "{totals}");
    assert_eq!(
        totals["recovered_calls"],
        serde_json::json!({"bare_json": 1})
    );
    assert_eq!(totals["cached_tokens"], 30, "{totals}");
    let rate = totals["server_tokens_per_second"].as_f64().unwrap();
    assert!((rate - 65.5).abs() < 0.1, "{rate}");
    let spans = report["json"]["sessions"][0]["turns"][0]["spans"]
        .as_array()
        .unwrap();
    let last_model = spans.iter().rev().find(|s| s["kind"] == "model").unwrap();
    assert_eq!(last_model["cached_tokens"], 30);
    assert_eq!(last_model["prompt_tokens"], 31);
}
