//! `punie ask` against the fake model server: the answer on stdout, tool activity on stderr,
//! and the exit codes.

use std::process::{Output, Stdio};
use std::time::Duration;

use crate::support::fake_model::{FAKE_MODEL, FakeModelServer, Part, Reply};
use crate::support::served::{PATIENCE, punie_command};
use serde_json::json;

struct Ask {
    workspace: tempfile::TempDir,
    logs: tempfile::TempDir,
}

impl Ask {
    fn new() -> Self {
        Self {
            workspace: tempfile::tempdir().unwrap(),
            logs: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self, model: &str, args: &[&str]) -> tokio::process::Command {
        let mut command = punie_command(self.logs.path());
        command
            .env("PUNIE_MODEL", model)
            .arg("ask")
            .arg("--workspace")
            .arg(self.workspace.path())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    async fn run(&self, model: &str, args: &[&str]) -> (Option<i32>, String, String) {
        let output: Output = tokio::time::timeout(PATIENCE, self.command(model, args).output())
            .await
            .expect("punie ask ends in time")
            .unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_answer_goes_to_stdout_and_tool_activity_to_stderr() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call("read_file", json!({"path": "notes.txt"})));
    server.push(Reply::parts(vec![
        Part::thought("The file says hello."),
        Part::text("The notes say hello."),
    ]));
    let ask = Ask::new();
    std::fs::write(ask.workspace.path().join("notes.txt"), "hello\n").unwrap();
    let (code, stdout, stderr) = ask
        .run(&server.spec_for(FAKE_MODEL), &["What do the notes say?"])
        .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "The notes say hello.\n");
    assert!(stderr.contains("→ "), "{stderr}");
    assert!(stderr.contains("notes.txt"), "{stderr}");
    assert!(stderr.contains("✓ "), "{stderr}");
    assert!(
        !stderr.contains("The file says hello"),
        "thoughts hidden: {stderr}"
    );
    let tool_result = &server.requests()[1]["messages"];
    assert!(
        tool_result.to_string().contains("hello"),
        "the file was read: {tool_result}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn thoughts_show_on_stderr_when_asked() {
    let server = FakeModelServer::start().await;
    server.push(Reply::parts(vec![
        Part::thought("Thinking hard."),
        Part::text("42"),
    ]));
    let ask = Ask::new();
    let (code, stdout, stderr) = ask
        .run(
            &server.spec_for(FAKE_MODEL),
            &["--show-thinking", "answer?"],
        )
        .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "42\n");
    assert!(stderr.contains("Thinking hard."), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_server_that_is_down_fails_with_one_clear_line() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/some-model", listener.local_addr().unwrap());
    drop(listener);
    let ask = Ask::new();
    let output = tokio::time::timeout(
        PATIENCE,
        // Without the wait for a server that is starting (tests/it/server_wait.rs has that).
        ask.command(&url, &["hello"])
            .env("PUNIE_SERVER_WAIT", "0")
            .output(),
    )
    .await
    .expect("punie ask ends in time")
    .unwrap();
    let (code, stdout, stderr) = (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot reach the model server"), "{stderr}");
    // The URL that failed is named, and the advice is not to pass the URL that was passed.
    let base = url.trim_end_matches("/some-model");
    assert!(stderr.contains(&format!("at {base}")), "{stderr}");
    assert!(!stderr.contains("pass --model"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn approve_none_refuses_a_write_and_leaves_the_file_untouched() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "keep.txt", "content": "overwritten"}),
    ));
    server.push(Reply::text("I could not write it."));
    let ask = Ask::new();
    let file = ask.workspace.path().join("keep.txt");
    std::fs::write(&file, "original").unwrap();
    let (code, stdout, stderr) = ask
        .run(
            &server.spec_for(FAKE_MODEL),
            &["--approve", "none", "overwrite keep.txt"],
        )
        .await;
    assert_eq!(code, Some(0), "the model is told and finishes: {stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "original");
    assert_eq!(stdout, "I could not write it.\n");
    assert!(stderr.contains("✗ "), "{stderr}");
    assert!(stderr.contains("--approve"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_terminal_or_approve_the_refusal_says_to_pass_approve() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "new.txt", "content": "x"}),
    ));
    server.push(Reply::text("Refused."));
    let ask = Ask::new();
    let (code, _, stderr) = ask.run(&server.spec_for(FAKE_MODEL), &["write"]).await;
    assert_eq!(code, Some(4), "refused for want of a terminal: {stderr}");
    assert!(!ask.workspace.path().join("new.txt").exists());
    assert!(stderr.contains("nobody can be asked"), "{stderr}");
    assert!(
        stderr.lines().last().unwrap().contains("pass --approve"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_refused_for_want_of_a_terminal_runs_nothing_and_exits_4() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "run_command",
        json!({"command": "touch ran.txt"}),
    ));
    server.push(Reply::text("I could not run it."));
    let ask = Ask::new();
    let (code, stdout, stderr) = ask.run(&server.spec_for(FAKE_MODEL), &["run it"]).await;
    assert_eq!(code, Some(4), "{stderr}");
    assert_eq!(
        stdout, "I could not run it.\n",
        "the answer is still printed"
    );
    assert!(!ask.workspace.path().join("ran.txt").exists());
    assert!(stderr.contains("✗ Run `touch ran.txt`"), "{stderr}");
    assert!(stderr.contains("--approve all"), "{stderr}");

    // With the policy given, a refusal is what was asked for: the answer counts as done.
    server.push(Reply::tool_call(
        "run_command",
        json!({"command": "touch ran.txt"}),
    ));
    server.push(Reply::text("Not allowed."));
    let (code, _, stderr) = ask
        .run(
            &server.spec_for(FAKE_MODEL),
            &["--approve", "edits", "run it"],
        )
        .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!ask.workspace.path().join("ran.txt").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_shows_its_exit_status_and_the_tail_of_its_output() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "run_command",
        json!({"command": "for i in $(seq 1 30); do echo output line $i; done; exit 3"}),
    ));
    server.push(Reply::text("It failed."));
    let ask = Ask::new();
    let (code, stdout, stderr) = ask
        .run(
            &server.spec_for(FAKE_MODEL),
            &["--approve", "all", "run it"],
        )
        .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "It failed.\n");
    assert!(stderr.contains("exit code 3"), "{stderr}");
    let shown: Vec<&str> = stderr
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("│ "))
        .collect();
    let tail: Vec<String> = (11..=30).map(|i| format!("output line {i}")).collect();
    assert_eq!(shown, tail, "the last 20 lines, in order:\n{stderr}");
    assert!(stderr.contains("10 earlier lines not shown"), "{stderr}");
    // The model got the whole output.
    let result = server.requests()[1]["messages"].to_string();
    assert!(result.contains("output line 1\\n"), "{result}");

    server.push(Reply::tool_call(
        "run_command",
        json!({"command": "echo fine"}),
    ));
    server.push(Reply::text("Done."));
    let (code, _, stderr) = ask
        .run(
            &server.spec_for(FAKE_MODEL),
            &["--approve", "all", "run it"],
        )
        .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("✓ Run `echo fine` (exit code 0)"),
        "{stderr}"
    );
    assert!(stderr.contains("│ fine"), "{stderr}");
    assert!(!stderr.contains("earlier lines"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn approve_edits_from_the_environment_allows_a_write() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "out.txt", "content": "written\n"}),
    ));
    server.push(Reply::text("Done."));
    let ask = Ask::new();
    let mut command = ask.command(&server.spec_for(FAKE_MODEL), &["write it"]);
    command.env("PUNIE_APPROVE", "edits");
    let output = tokio::time::timeout(PATIENCE, command.output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(ask.workspace.path().join("out.txt")).unwrap(),
        "written\n"
    );
    assert!(stderr.contains("✓ "), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_exit_with_3() {
    let server = FakeModelServer::start().await;
    server.push(Reply::parts_with_finish(
        vec![Part::text("cut sh")],
        "length",
    ));
    let ask = Ask::new();
    let (code, stdout, stderr) = ask.run(&server.spec_for(FAKE_MODEL), &["long"]).await;
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(stdout, "cut sh\n");
    assert!(stderr.contains("max_tokens"), "{stderr}");

    server.push(Reply::tool_call(
        "read_file",
        json!({"path": "missing.txt"}),
    ));
    let (code, _, stderr) = ask
        .run(
            &server.spec_for(FAKE_MODEL),
            &["--max-turn-requests", "1", "loop"],
        )
        .await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("--max-turn-requests"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_cancels_the_turn_and_exits_130() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("Starting a long answer that never ends").hang_after(2));
    let ask = Ask::new();
    let child = ask
        .command(&server.spec_for(FAKE_MODEL), &["tell me everything"])
        .spawn()
        .unwrap();
    assert!(
        server.wait_for_requests(1, PATIENCE).await,
        "the model was asked"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = rustix::process::Pid::from_raw(child.id().unwrap() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    let output = tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .expect("exits after Ctrl-C")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("cancelled"), "{stderr}");
    assert!(
        server.wait_for_disconnects(1, PATIENCE).await,
        "the model request was abandoned"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_workspace_is_a_start_up_error() {
    let ask = Ask::new();
    let missing = ask.workspace.path().join("nope");
    let output = punie_command(ask.logs.path())
        .env("PUNIE_MODEL", "http://127.0.0.1:9/v1/m")
        .args(["ask", "--workspace", missing.to_str().unwrap(), "hi"])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(stderr.contains("not a directory"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_file_entry_picked_by_name_sets_server_and_sampling() {
    let server = FakeModelServer::start().await;
    server.set_models(vec!["qwen3:8b".into()]);
    server.push(Reply::text("configured"));
    let ask = Ask::new();
    let config = ask.logs.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[models.coder]\nbase_url = \"{}\"\nmodel = \"qwen3:8b\"\ntemperature = 0.3\nmax_tokens = 1234\ncontext_size = 16384\n",
            server.base_url()
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = ask
        .run("coder", &["--config", config.to_str().unwrap(), "hi"])
        .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "configured\n");
    let request = &server.requests()[0];
    assert_eq!(request["model"], "qwen3:8b");
    assert_eq!(request["max_tokens"], 1234);
    assert!((request["temperature"].as_f64().unwrap() - 0.3).abs() < 1e-6);

    std::fs::write(&config, "[models.coder]\ntemprature = 1\n").unwrap();
    let (code, _, stderr) = ask
        .run("coder", &["--config", config.to_str().unwrap(), "hi"])
        .await;
    assert_eq!(code, Some(2), "a broken config file is a start-up error");
    assert!(
        stderr.contains("config.toml") && stderr.contains("temprature"),
        "{stderr}"
    );
}

/// llama.cpp's chunk while it reads a prompt asked with `return_progress` (server-task.cpp).
fn prompt_progress(total: u64, cache: u64, processed: u64) -> serde_json::Value {
    json!({
        "choices": [{"finish_reason": null, "index": 0, "delta": {"role": "assistant", "content": null}}],
        "object": "chat.completion.chunk",
        "prompt_progress": {"total": total, "cache": cache, "processed": processed, "time_ms": 12.5},
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_prompt_shows_llama_cpps_progress_on_stderr() {
    let server = FakeModelServer::start().await;
    // The model list llama-server sent: it says who the server is.
    server.set_models_reply(Reply::fixture(crate::support::fixture!(
        "llama.cpp/01_models.http"
    )));
    server.push(Reply::sse_events(vec![
        prompt_progress(2013, 13, 13),
        prompt_progress(2013, 13, 1037),
        prompt_progress(2013, 13, 2013),
        json!({"choices": [{"index": 0, "delta": {"content": "Hello."}, "finish_reason": "stop"}]}),
    ]));
    let ask = Ask::new();
    let (code, stdout, stderr) = ask.run(&server.spec_for("models/tiny.gguf"), &["hi"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "Hello.");
    for line in [
        "reading the prompt: 0 of 2000 new tokens (0%; 13 of 2013 from its cache)",
        "reading the prompt: 1024 of 2000 new tokens (51%; 13 of 2013 from its cache)",
        "reading the prompt: 2000 of 2000 new tokens (100%; 13 of 2013 from its cache)",
    ] {
        assert!(stderr.contains(line), "no {line:?} in {stderr}");
    }
    assert_eq!(server.requests()[0]["return_progress"], true);

    // A server that is not llama.cpp is not sent the field.
    let other = FakeModelServer::start().await;
    other.push(Reply::text("Hello."));
    let (code, _, stderr) = ask.run(&other.spec_for(FAKE_MODEL), &["hi"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(other.requests()[0].get("return_progress").is_none());
}
