//! The perf report of a real recorded session (an agent driven through the test kit: several
//! prompts, tool calls on the editor and locally, permission prompts), rendered by headless
//! Chromium, and the page's structure guarded by a snapshot (`tests/snapshots/perf_html.txt`;
//! run with `UPDATE_SNAPSHOTS=1` to rewrite it after a deliberate change).
//!
//! Chromium comes from Debian's `chromium` package. Without it the browser test says why and
//! passes, unless `PUNIE_REQUIRE_CHROMIUM` is set (as in CI). Set `PUNIE_PERF_SHOT=<path>.png`
//! to keep a copy of the screenshot (and of the page, as `<path>.html`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use punie::agent::{Agent, StopReason};
use punie::llm::{ChatModel, ChatRequest, LlmError, ModelEvent, ModelStream, Usage};
use punie::perf::{PerfRecorder, PerfReport};
use punie::testing::{FakeEditor, PermissionAnswer, ScriptedModel};
use serde_json::json;

use crate::support::snapshot::assert_snapshot;

/// A scripted model that takes a little time, like a real one: a pause before the first event
/// and between events.
struct Paced(Arc<ScriptedModel>);

impl ChatModel for Paced {
    fn stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<ModelStream, LlmError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(15)).await;
            let stream = self.0.stream(request).await?;
            let paced = stream.then(|event| async move {
                tokio::time::sleep(Duration::from_millis(4)).await;
                event
            });
            Ok(Box::pin(paced) as ModelStream)
        })
    }

    fn describe(&self) -> String {
        "qwen3-coder-30b at http://127.0.0.1:1234/v1".to_owned()
    }
}

fn usage(prompt: u64, completion: u64) -> ModelEvent {
    ModelEvent::Usage(Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        ..Default::default()
    })
}

fn tool_call(model: &ScriptedModel, name: &str, args: serde_json::Value, n: u64) {
    model.reply(vec![
        ModelEvent::ToolCall(punie::llm::ToolCall {
            id: format!("call_{name}_{n}"),
            name: name.to_owned(),
            arguments: args.to_string(),
        }),
        usage(1200 + 100 * n, 30 + n),
    ]);
}

fn text(model: &ScriptedModel, words: &[&str], n: u64) {
    let mut events: Vec<ModelEvent> = words
        .iter()
        .map(|w| ModelEvent::Text(format!("{w} ")))
        .collect();
    events.push(usage(1500 + 100 * n, 20 * words.len() as u64));
    model.reply(events);
}

/// Drives an agent through two sessions and five prompts, and returns its perf report.
async fn recorded_report() -> PerfReport {
    let project = tempfile::tempdir().unwrap();
    let root = project.path().canonicalize().unwrap();
    std::fs::write(root.join("notes.md"), "# Notes\nbuy milk\n").unwrap();

    let model = Arc::new(ScriptedModel::new());
    // Session A, on the editor: read, then write (asked) and run (asked), then just talk.
    tool_call(&model, "read_file", json!({"path": "src/main.rs"}), 1);
    text(&model, &["It", "prints", "hello."], 1);
    tool_call(
        &model,
        "write_file",
        json!({"path": "src/main.rs", "content": "fn main() { println!(\"hi\"); }\n"}),
        2,
    );
    tool_call(&model, "run_command", json!({"command": "cargo test"}), 3);
    text(&model, &["Changed", "and", "tested."], 2);
    model.reply(vec![
        ModelEvent::Thought("Nothing to do.".to_owned()),
        ModelEvent::Text("You're welcome!".to_owned()),
        usage(1900, 12),
    ]);
    // Session B, local: read a real file, look for a word (the tool fails on bad arguments).
    tool_call(&model, "read_file", json!({"path": "notes.md"}), 4);
    tool_call(&model, "grep", json!({"pattern": "milk"}), 5);
    tool_call(&model, "read_file", json!({"nope": true}), 6);
    text(&model, &["Milk", "is", "on", "the", "list."], 3);

    let perf = Arc::new(PerfRecorder::new());
    let agent = Agent::builder()
        .shared_model(Arc::new(Paced(model.clone())))
        .observer(perf.clone())
        .build()
        .unwrap();

    let editor = FakeEditor::new()
        .with_file(root.join("src/main.rs"), "fn main() {}\n")
        .answer(PermissionAnswer::AllowOnce)
        .answer(PermissionAnswer::AllowOnce);
    let connection = editor.connect(agent.clone()).await.unwrap();
    let a = connection.new_session(&root).await.unwrap();
    for prompt in ["what does main do?", "print hi and test", "thanks"] {
        assert_eq!(
            connection.prompt(&a, prompt).await.unwrap(),
            StopReason::EndTurn
        );
    }
    connection.close().await;

    let local = FakeEditor::new().without_fs().without_terminal();
    let connection = local.connect(agent).await.unwrap();
    let b = connection.new_session(&root).await.unwrap();
    assert_eq!(
        connection.prompt(&b, "is milk on my list?").await.unwrap(),
        StopReason::EndTurn
    );
    connection.close().await;
    assert_eq!(model.remaining(), 0, "the whole script was played");
    let commands = editor.commands_run();
    assert!(
        commands.len() == 1 && commands[0].contains("cargo test"),
        "{commands:?}"
    );

    let report = perf.snapshot();
    assert_eq!(report.totals.turns, 4);
    assert_eq!(report.totals.sessions, 2);
    assert_eq!(report.totals.permission_prompts, 2);
    report
}

/// The page's skeleton: sections, headings, charts, table headers and which rows the tables
/// have, without any timing.
fn structure(html: &str) -> String {
    let mut out = Vec::new();
    let mut rest = html;
    let mut turns = 0;
    let mut waterfalls = 0;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        let end = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..end];
        let name = tag.split_whitespace().next().unwrap_or("");
        let attr = |key: &str| {
            let needle = format!("{key}=\"");
            tag.find(&needle).map(|i| {
                let value = &tag[i + needle.len()..];
                value[..value.find('"').unwrap_or(value.len())].to_owned()
            })
        };
        let inner = || {
            let body = &rest[end + 1..];
            body[..body.find("</").unwrap_or(0)].to_owned()
        };
        match name {
            "section" | "footer" => out.push(format!("{name} #{}", attr("id").unwrap_or_default())),
            "h1" | "h2" => out.push(format!("  {name} {}", inner())),
            "div" if attr("class").as_deref() == Some("turn") => turns += 1,
            "svg" => match attr("class").as_deref() {
                Some("waterfall-chart") => waterfalls += 1,
                Some(class) => out.push(format!("  svg .{class}")),
                None => {}
            },
            "table" => out.push(format!("  table .{}", attr("class").unwrap_or_default())),
            "th" => out.push(format!("    th {}", inner())),
            "ul" if attr("class").as_deref() == Some("legend") => out.push("  legend".to_owned()),
            "/section" if turns > 0 => {
                out.push(format!("  {turns} turns, {waterfalls} waterfall charts"));
                turns = 0;
            }
            _ => {}
        }
    }
    out.join("\n") + "\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_page_keeps_its_structure() {
    let report = recorded_report().await;
    let html = report.to_html();
    let mut skeleton = structure(&html);
    let mut tools: Vec<String> = report
        .tools
        .iter()
        .map(|t| {
            format!(
                "{} on {}: {} calls, {} errors",
                t.name, t.provider, t.calls.count, t.calls.errors
            )
        })
        .collect();
    tools.sort();
    let mut methods: Vec<String> = report
        .editor_methods
        .iter()
        .map(|m| format!("{}: {}", m.key, m.calls.count))
        .collect();
    methods.sort();
    let providers: Vec<String> = report.providers.iter().map(|p| p.key.clone()).collect();
    skeleton.push_str(&format!(
        "tools:\n  {}\nproviders: {}\neditor methods:\n  {}\n",
        tools.join("\n  "),
        providers.join(", "),
        methods.join("\n  ")
    ));
    assert_snapshot("perf_html", &skeleton);
}

/// Runs `command` to completion within two minutes, its output going to files.
fn run(mut command: Command, stdout: &Path, stderr: &Path) -> std::process::ExitStatus {
    command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(stdout).unwrap())
        .stderr(std::fs::File::create(stderr).unwrap());
    let mut child = command.spawn().expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish in 2 minutes; stderr:\n{}",
                std::fs::read_to_string(stderr).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PUNIE_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn browser(chromium: &Path, profile: &Path, extra: &[String], page: &Path) -> Command {
    let mut command = Command::new(chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()));
    command
}

/// Console messages the page caused: Chromium logs them as `…:CONSOLE…] "message", source: …`.
/// The page has no scripts, so any message (a CSP violation, an error) is a defect.
fn console_messages(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.contains(":CONSOLE") || line.contains("Uncaught"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_renders_in_a_real_browser() {
    let Some(chromium) = chromium() else {
        let reason = "chromium is not installed (apt-get install chromium)";
        if std::env::var_os("PUNIE_REQUIRE_CHROMIUM").is_some() {
            panic!("{reason}, and PUNIE_REQUIRE_CHROMIUM is set");
        }
        eprintln!("skipping the browser test: {reason}");
        return;
    };
    let report = recorded_report().await;
    let dir = tempfile::tempdir().unwrap();
    let (html, json) = report.write_to(dir.path().join("reports")).unwrap();
    assert_eq!(
        PerfReport::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap(),
        report
    );
    let profile = dir.path().join("profile");
    let shot = dir.path().join("shot.png");

    let out = dir.path().join("screenshot.out");
    let err = dir.path().join("screenshot.err");
    let status = run(
        browser(
            &chromium,
            &profile,
            &[
                format!("--screenshot={}", shot.display()),
                "--window-size=1280,2000".to_owned(),
            ],
            &html,
        ),
        &out,
        &err,
    );
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(status.success(), "chromium failed: {status}\n{stderr}");
    let png = std::fs::read(&shot).expect("a screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 2000));
    // A blank or error page compresses to a few kilobytes; charts and tables do not.
    assert!(
        png.len() > 30_000,
        "a nearly empty screenshot: {} bytes",
        png.len()
    );
    assert_eq!(
        console_messages(&stderr),
        Vec::<&str>::new(),
        "console messages"
    );
    if let Some(keep) = std::env::var_os("PUNIE_PERF_SHOT") {
        std::fs::copy(&shot, &keep).unwrap();
        std::fs::copy(&html, PathBuf::from(keep).with_extension("html")).unwrap();
    }

    let dom_out = dir.path().join("dom.html");
    let dom_err = dir.path().join("dom.err");
    let status = run(
        browser(&chromium, &profile, &["--dump-dom".to_owned()], &html),
        &dom_out,
        &dom_err,
    );
    let stderr = std::fs::read_to_string(&dom_err).unwrap();
    assert!(status.success(), "chromium failed: {status}\n{stderr}");
    assert_eq!(
        console_messages(&stderr),
        Vec::<&str>::new(),
        "console messages"
    );
    let dom = std::fs::read_to_string(&dom_out).unwrap();
    for id in [
        "summary",
        "time-split",
        "waterfall",
        "tools",
        "providers",
        "editor",
        "models",
        "trends",
    ] {
        assert!(
            dom.contains(&format!("<section id=\"{id}\">")),
            "section {id} in the DOM"
        );
    }
    for chart in ["split-chart", "provider-chart", "trend-chart", "rate-chart"] {
        assert!(
            dom.contains(&format!("<svg class=\"{chart}\"")),
            "{chart} in the DOM"
        );
    }
    assert_eq!(dom.matches("<svg class=\"waterfall-chart\"").count(), 4);
    assert!(
        dom.contains("<rect class=\"waiting\""),
        "a permission wait is drawn"
    );
    assert!(
        dom.contains("<polyline class=\"rate\""),
        "tokens per second are drawn"
    );
}
