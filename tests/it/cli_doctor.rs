//! `punie doctor` through the real binary against the fake model server: the verdict of each
//! check, the fix lines, and the exit code, for a llama.cpp-like server with structured tool
//! calls, one whose model writes its calls as bare JSON text, one whose window is too small for
//! Punie's fixed prompt, and no server at all.

use std::process::Stdio;

use crate::support::fake_model::{FakeModelServer, Reply};
use crate::support::fixture;
use crate::support::served::{PATIENCE, punie_command};
use serde_json::{Value, json};

/// Runs `punie doctor ARGS` with `PUNIE_MODEL=model` and no config file; exit code and stdout.
async fn doctor(model: &str, args: &[&str], config: Option<&str>) -> (Option<i32>, String) {
    let scratch = tempfile::tempdir().unwrap();
    let config_path = scratch.path().join("config.toml");
    if let Some(config) = config {
        std::fs::write(&config_path, config).unwrap();
    }
    let mut command = punie_command(scratch.path());
    command
        .env("PUNIE_MODEL", model)
        .env("PUNIE_CONFIG", &config_path)
        .current_dir(scratch.path())
        .arg("doctor")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = tokio::time::timeout(PATIENCE, command.output())
        .await
        .expect("punie doctor ends in time")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr, "", "nothing on stderr");
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
    )
}

/// The line of the check `name`.
fn line<'a>(report: &'a str, name: &str) -> &'a str {
    report
        .lines()
        .find(|line| line.get(8..).is_some_and(|rest| rest.starts_with(name)))
        .unwrap_or_else(|| panic!("no {name:?} line in:\n{report}"))
}

fn verdict<'a>(report: &'a str, name: &str) -> &'a str {
    line(report, name).split_whitespace().next().unwrap()
}

/// A llama-server serving `id` with a window of `n_ctx` tokens in one slot.
async fn llama_cpp(id: &str, n_ctx: u32) -> FakeModelServer {
    let server = FakeModelServer::start().await;
    server.set_models_reply(Reply::json(json!({
        "object": "list",
        "data": [{"id": id, "object": "model", "owned_by": "llamacpp", "meta": {"n_ctx": n_ctx}}],
    })));
    server.route(
        "GET",
        "/props",
        Reply::json(json!({"default_generation_settings": {"n_ctx": n_ctx}, "total_slots": 1})),
    );
    server.route("GET", "/health", Reply::json(json!({"status": "ok"})));
    server
}

/// llama.cpp's non-streaming answer of one token, with its timings.
fn one_token(prompt_tokens: u64, prompt_ms: f64) -> Reply {
    Reply::json(json!({
        "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "OK"}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1, "total_tokens": prompt_tokens + 1},
        "timings": {
            "cache_n": 0,
            "prompt_n": prompt_tokens,
            "prompt_ms": prompt_ms,
            "prompt_per_second": prompt_tokens as f64 * 1000.0 / prompt_ms,
        },
    }))
}

/// The fixed-prompt request is Punie's own: its system prompt and every built-in tool, for one
/// token, made cold by a unique first line.
fn assert_fixed_prompt(request: &Value) {
    assert_eq!(request["stream"], false, "{request}");
    assert_eq!(request["max_tokens"], 1, "{request}");
    let tools = request["tools"].as_array().unwrap();
    assert!(tools.len() >= 10, "all the built-in tools: {}", tools.len());
    assert!(
        tools
            .iter()
            .any(|tool| tool["function"]["name"] == "edit_file"),
        "{request}"
    );
    let system = request["messages"][0]["content"].as_str().unwrap();
    assert!(system.starts_with("[punie doctor "), "{system}");
    assert!(system.contains("You are Punie"), "{system}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_llama_cpp_server_with_native_tool_calls_passes() {
    let server = llama_cpp("qwen2.5-coder-0.5b", 8192).await;
    server.push(Reply::tool_call("get_time", json!({})));
    server.push(one_token(2010, 4000.0));
    let (code, report) = doctor(&server.base_url(), &[], None).await;
    assert_eq!(code, Some(0), "{report}");
    assert!(
        report.starts_with(&format!("punie doctor: {} (llama.cpp)", server.base_url())),
        "{report}"
    );
    assert_eq!(verdict(&report, "reachable"), "ok", "{report}");
    assert!(
        line(&report, "reachable").contains("/health: ok"),
        "{report}"
    );
    assert_eq!(verdict(&report, "model"), "ok", "{report}");
    assert!(
        line(&report, "model").contains(&format!(
            "--model {}",
            server.spec_for("qwen2.5-coder-0.5b")
        )),
        "{report}"
    );
    assert_eq!(verdict(&report, "tool calls"), "ok", "{report}");
    assert!(line(&report, "tool calls").contains("structured tool_calls (get_time)"));
    assert_eq!(verdict(&report, "reasoning"), "ok", "{report}");
    assert_eq!(verdict(&report, "context window"), "ok", "{report}");
    let window = line(&report, "context window");
    assert!(window.contains("8192 tokens"), "{window}");
    assert!(
        window.contains("is 2010 tokens as the server counts it"),
        "{window}"
    );
    assert!(
        window.contains("leaving 6182 for the conversation"),
        "{window}"
    );
    let speed = line(&report, "prompt speed");
    assert!(
        speed.contains("502 prompt tokens/s (llama.cpp timings: 2010 tokens in 4.0 s)"),
        "{speed}"
    );
    assert!(
        speed.contains("waits about 4.0 s for its first token"),
        "{speed}"
    );
    assert!(!report.contains("To fix:"), "{report}");
    assert!(
        report.ends_with("Punie can work with this server.\n"),
        "{report}"
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let tool_request = &requests[0];
    assert_eq!(tool_request["stream"], true, "sent as the turn sends it");
    assert_eq!(tool_request["tools"][0]["function"]["name"], "get_time");
    assert_fixed_prompt(&requests[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_written_as_bare_json_warn_and_name_the_template() {
    let server = llama_cpp("qwen2.5-coder-0.5b", 8192).await;
    server.push(Reply::text(r#"{"name": "get_time", "arguments": {}}"#));
    server.push(one_token(2010, 4000.0));
    let (code, report) = doctor(&server.base_url(), &[], None).await;
    assert_eq!(code, Some(0), "warnings only: {report}");
    assert_eq!(verdict(&report, "tool calls"), "warn", "{report}");
    assert!(
        line(&report, "tool calls").contains("written as text (bare JSON)"),
        "{report}"
    );
    assert!(
        report.contains("  - llama-server took the tools (so its templates are on) but did not parse this model's calls"),
        "{report}"
    );
    assert!(
        report.ends_with("Punie can work with this server (1 warning).\n"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_too_small_for_the_fixed_prompt_fails_with_the_c_to_use() {
    // llama-server started without --alias lists the model file's path.
    let server = llama_cpp("/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", 2048).await;
    server.push(Reply::tool_call("get_time", json!({"timezone": "UTC"})));
    server.push(Reply::error(
        400,
        json!({"error": {"code": 400, "message": "request (2474 tokens) exceeds the available context size (2048 tokens), try increasing it", "type": "exceed_context_size_error", "n_prompt_tokens": 2474, "n_ctx": 2048}}),
    ));
    let (code, report) = doctor(&server.base_url(), &[], None).await;
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(verdict(&report, "model"), "warn", "{report}");
    assert!(
        line(&report, "model").contains(&format!("use --model {}", server.base_url())),
        "{report}"
    );
    assert!(report.contains("--alias NAME"), "{report}");
    assert_eq!(verdict(&report, "context window"), "FAIL", "{report}");
    let window = line(&report, "context window");
    assert!(window.contains("2048 tokens"), "{window}");
    assert!(
        window.contains("is 2474 tokens as the server counts it"),
        "{window}"
    );
    assert!(
        report.contains("  - restart llama-server with -c 8192\n"),
        "{report}"
    );
    assert_eq!(verdict(&report, "prompt speed"), "skip", "{report}");
    assert!(
        report.ends_with(
            "Punie cannot work with this server until that is fixed (1 failed check).\n"
        ),
        "{report}"
    );
    assert_fixed_prompt(&server.requests()[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ollama_window_is_fixed_with_num_ctx() {
    let server = FakeModelServer::start().await;
    server.set_models_reply(Reply::json(json!({
        "object": "list",
        "data": [{"id": "qwen2.5-coder:0.5b", "object": "model", "owned_by": "library"}],
    })));
    server.route(
        "POST",
        "/api/show",
        Reply::json(json!({
            "parameters": "num_ctx 2048",
            "model_info": {"general.architecture": "qwen2", "qwen2.context_length": 32768},
        })),
    );
    server.push(Reply::tool_call("get_time", json!({})));
    server.push(Reply::json(json!({
        "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "OK"}}],
        "usage": {"prompt_tokens": 2010, "completion_tokens": 1, "total_tokens": 2011},
    })));
    let config = format!(
        "[models.local]\nbase_url = \"{}\"\nmodel = \"qwen2.5-coder:0.5b\"\n",
        server.base_url()
    );
    let (code, report) = doctor("local", &[], Some(&config)).await;
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.starts_with(&format!("punie doctor: {} (Ollama)", server.base_url())),
        "{report}"
    );
    assert!(
        line(&report, "model").contains("(config entry \"local\")"),
        "{report}"
    );
    assert_eq!(verdict(&report, "context window"), "FAIL", "{report}");
    assert!(
        report.contains("OLLAMA_CONTEXT_LENGTH=8192 ollama serve"),
        "{report}"
    );
    assert!(report.contains("PARAMETER num_ctx 8192"), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_server_at_all_says_connection_refused_and_how_to_start_one() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let (code, report) = doctor(&base, &[], None).await;
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(verdict(&report, "reachable"), "FAIL", "{report}");
    assert!(
        line(&report, "reachable").contains("Connection refused"),
        "{report}"
    );
    for name in ["model", "tool calls", "context window", "prompt speed"] {
        assert_eq!(verdict(&report, name), "skip", "{report}");
    }
    assert!(
        report.contains("llama-server -m MODEL.gguf --jinja -c 8192"),
        "{report}"
    );
    assert!(report.contains("ollama serve"), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_model_fails_and_lists_what_to_pass() {
    let server = FakeModelServer::start().await;
    server.set_models(vec!["qwen3:8b".to_owned(), "llama3.1:8b".to_owned()]);
    let (code, report) = doctor(&server.spec_for("qwen3-coder"), &[], None).await;
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(verdict(&report, "model"), "FAIL", "{report}");
    assert!(
        report.contains(&format!("  - --model {}\n", server.spec_for("qwen3:8b"))),
        "{report}"
    );
    assert!(
        server.requests().is_empty(),
        "no chat request for a model that is not there"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_still_loading_its_model_says_to_wait() {
    let server = FakeModelServer::start().await;
    server.set_models_reply(Reply::fixture(fixture!("failures/loading_model_503.http")));
    let (code, report) = doctor(&server.base_url(), &[], None).await;
    assert_eq!(code, Some(1), "no model to use yet: {report}");
    assert_eq!(verdict(&report, "reachable"), "warn", "{report}");
    assert!(line(&report, "reachable").contains("HTTP 503"), "{report}");
    assert!(
        report.contains(
            "  - wait until the server has loaded the model, then run punie doctor again\n"
        ),
        "{report}"
    );
    assert_eq!(verdict(&report, "model"), "FAIL", "{report}");
}
