//! The real-task benchmark: the real `punie` binary, driven over ACP as an editor would, doing
//! about ten small tasks on a sample Python project (`tests/fixtures/real_tasks/project/`: a
//! real bug and a failing test) against a real llama-server and model. Each task runs on a
//! fresh copy of the project and is checked without judgement (the tests pass, the file is
//! unchanged, the answer names the right line …). Per task and model it reports success, tool
//! calls (made / recovered from unusual shapes / failed), model requests, time to first token,
//! wall time, Punie's own time, prompt tokens and cache hits; prints a table and writes JSON.
//!
//! Not a test: a real model's results are figures to compare, not assertions. See
//! `specs/performance.md` ("Real tasks") for the latest figures and `specs/live.md`.
//!
//! ```text
//! eval "$(tests/live/setup.sh)"          # llama-server and the 0.5B model (PUNIE_LIVE_MODELS=all: 1.5B too)
//! cargo build --release && cargo run --release --example real_tasks -- --out /tmp/real_tasks.json
//! ```

mod editor;
mod report;
mod server;
mod tasks;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use agent_client_protocol::v1::schema::{CancelNotification, ContentBlock, PromptRequest};
use clap::Parser;
use serde_json::{Value, json};

use crate::editor::{describe, lock, new_session, with_editor};
use crate::report::TaskResult;
use crate::server::LlamaServer;
use crate::tasks::{Kind, Outcome, TASKS, Task};

/// Runs Punie on real tasks against a real llama-server and prints what it took.
#[derive(Parser, Debug)]
#[command(name = "real_tasks")]
struct Args {
    /// A GGUF model file; repeat for several models (each gets its own server, one at a time).
    #[arg(long = "model", env = "PUNIE_LIVE_MODEL", value_delimiter = ',')]
    models: Vec<PathBuf>,
    /// The llama-server binary.
    #[arg(long, env = "LLAMA_SERVER")]
    server: Option<PathBuf>,
    /// The punie binary (default: the one beside this example, target/<profile>/punie).
    #[arg(long, env = "PUNIE_BIN")]
    punie: Option<PathBuf>,
    /// Only the tasks whose name contains one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    tasks: Vec<String>,
    /// Seconds a task may take before it is cancelled and counted as failed.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Most tokens per model answer (the config's `max_tokens`).
    #[arg(long, default_value_t = 768)]
    max_tokens: u32,
    /// Most model requests per prompt (`PUNIE_MAX_TURN_REQUESTS`).
    #[arg(long, default_value_t = 6)]
    max_requests: u32,
    /// Write the results as JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the scratch directory (projects, Punie's logs, server logs) and print where it is.
    #[arg(long)]
    keep: bool,
    /// Before the tasks, one uncounted prompt that fills the server's cache with the fixed
    /// prefix (system prompt and tool schemas); `--warm-up=false` to measure a cold first task.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    warm_up: bool,
    /// List the tasks and exit.
    #[arg(long)]
    list: bool,
}

/// The cancel task cancels at Punie's first update, or after this long without one.
const CANCEL_AFTER: Duration = Duration::from_secs(60);
/// How long a cancelled prompt may take to be answered.
const CANCEL_WITHIN: Duration = Duration::from_secs(30);
/// How long the warm-up may take (a cold prompt of ~2,000 tokens on a loaded 2-core machine).
const WARM_UP_WITHIN: Duration = Duration::from_secs(600);
/// How long llama-server may take to notice a dropped request.
const IDLE_WITHIN: Duration = Duration::from_secs(90);

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for task in TASKS {
            println!("{:<18} {}", task.name, task.prompt);
        }
        return ExitCode::SUCCESS;
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("real_tasks: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let server = args.server.clone().ok_or(
        "no llama-server: set LLAMA_SERVER or pass --server (eval \"$(tests/live/setup.sh)\" provides it)",
    )?;
    if args.models.is_empty() {
        return Err("no model: set PUNIE_LIVE_MODEL or pass --model FILE.gguf (eval \"$(tests/live/setup.sh)\" provides the 0.5B one)".into());
    }
    for path in std::iter::once(&server).chain(&args.models) {
        if !path.is_file() {
            return Err(format!("{} is not a file", path.display()));
        }
    }
    let punie = punie_binary(args.punie.as_deref())?;
    let selected: Vec<&Task> = TASKS
        .iter()
        .filter(|t| args.tasks.is_empty() || args.tasks.iter().any(|f| t.name.contains(f.as_str())))
        .collect();
    if selected.is_empty() {
        let names: Vec<&str> = TASKS.iter().map(|t| t.name).collect();
        return Err(format!(
            "no task matches {:?}; the tasks are {}",
            args.tasks,
            names.join(", ")
        ));
    }
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real_tasks/project");
    let mut scratch = tempfile::Builder::new()
        .prefix("punie-real-tasks.")
        .tempdir()
        .map_err(|e| format!("a scratch directory: {e}"))?;
    if args.keep {
        scratch.disable_cleanup(true);
        eprintln!(
            "real_tasks: keeping everything in {}",
            scratch.path().display()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("a tokio runtime: {e}"))?;
    let started_at = report::utc_now();
    let load_start = report::load_average();
    let mut models = Vec::new();
    for model in &args.models {
        let alias = alias(model);
        let dir = scratch.path().join(&alias);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let results = runtime.block_on(run_model(
            args, &punie, &server, model, &alias, &dir, &fixture, &selected,
        ))?;
        models.push((alias, model.clone(), results));
    }
    let load_end = report::load_average();
    let caption = report::caption(&started_at, load_start, load_end, &models);
    println!("{}", report::table(&caption, &models));
    if let Some(out) = &args.out {
        let json = report::json(&started_at, &caption, args, &models);
        let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
        std::fs::write(out, text + "\n").map_err(|e| format!("{}: {e}", out.display()))?;
        eprintln!("real_tasks: wrote {}", out.display());
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run_model(
    args: &Args,
    punie: &Path,
    binary: &Path,
    model: &Path,
    alias: &str,
    dir: &Path,
    fixture: &Path,
    selected: &[&Task],
) -> Result<Vec<TaskResult>, String> {
    let server = LlamaServer::start(binary, model, alias, dir.join("llama-server.log")).await?;
    let config = dir.join("config.toml");
    let text = format!(
        "[models.bench]\nbase_url = {:?}\nmodel = {alias:?}\nmax_tokens = {}\n",
        server.base_url(),
        args.max_tokens
    );
    std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
    let mut results = Vec::new();
    if args.warm_up {
        // Not counted: fills the server's cache with the fixed prefix (system prompt and tool
        // schemas), so the first task's figures are a warm task's like the others'.
        let project = dir.join("project");
        tasks::copy_project(fixture, &project)?;
        let project = project
            .canonicalize()
            .map_err(|e| format!("{}: {e}", project.display()))?;
        eprintln!("real_tasks: [{alias}] warm-up (not counted) ...");
        let warm = run_task(
            args,
            punie,
            &server,
            &config,
            dir,
            &project,
            &tasks::WARM_UP,
            WARM_UP_WITHIN,
        )
        .await?;
        eprintln!(
            "real_tasks: [{alias}] warm-up took {:.1} s ({} prompt tokens, {} evaluated by the server)",
            warm.wall_ms / 1000.0,
            warm.prompt_tokens.unwrap_or(0),
            warm.server.prompt_evaluated
        );
        wait_idle(&server).await;
    }
    for task in selected {
        // The same path for every task: the system prompt names the project, so one path keeps
        // the prompt's prefix byte-identical and the server's cache warm from task to task.
        let project = dir.join("project");
        if project.exists() {
            std::fs::remove_dir_all(&project).map_err(|e| format!("{}: {e}", project.display()))?;
        }
        tasks::copy_project(fixture, &project)?;
        let project = project
            .canonicalize()
            .map_err(|e| format!("{}: {e}", project.display()))?;
        eprintln!("real_tasks: [{alias}] {} ...", task.name);
        let timeout = Duration::from_secs(args.timeout);
        let result = run_task(args, punie, &server, &config, dir, &project, task, timeout).await?;
        eprintln!(
            "real_tasks: [{alias}] {} {} in {:.1} s: {}",
            task.name,
            if result.success { "ok" } else { "FAILED" },
            result.wall_ms / 1000.0,
            result.detail
        );
        results.push(result);
        // A timed-out or cancelled task may leave the server finishing a token: wait, so the
        // next task's figures are its own.
        wait_idle(&server).await;
    }
    Ok(results)
}

/// The request an editor sends for Punie's perf report (an ACP extension).
#[derive(
    Debug, Clone, serde::Serialize, serde::Deserialize, agent_client_protocol::JsonRpcRequest,
)]
#[request(method = "_punie/perf_report", response = Value)]
struct PerfReportRequest(Value);

/// What the editor's side of a task returns.
struct Turn {
    stop: String,
    wall: Duration,
    perf: Option<Value>,
    error: Option<String>,
    cancel_answered: Option<Duration>,
    server_idle: Option<Duration>,
}

#[allow(clippy::too_many_arguments)]
async fn run_task(
    args: &Args,
    punie: &Path,
    server: &LlamaServer,
    config: &Path,
    dir: &Path,
    project: &Path,
    task: &Task,
    timeout: Duration,
) -> Result<TaskResult, String> {
    let before = tasks::snapshot(project)?;
    let logs = dir.join("logs").join(task.name);
    let env: Vec<(String, String)> = [
        ("PUNIE_CONFIG", config.display().to_string()),
        ("PUNIE_MODEL", "bench".to_owned()),
        ("PUNIE_MAX_TURN_REQUESTS", args.max_requests.to_string()),
        ("PUNIE_LOG_DIR", logs.display().to_string()),
        ("PUNIE_LOG", "debug".to_owned()),
        ("PUNIE_PERF", "1".to_owned()),
        ("PUNIE_PERF_DIR", dir.join("perf").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let load = report::load_average();
    let log_from = server.log_len();
    let (turn, record) = with_editor(punie, &env, task.permissions, async |cx, shared| {
        let session = match new_session(&cx, project).await {
            Ok(session) => session,
            Err(e) => return Turn::failed(e),
        };
        lock(&shared).start_prompt();
        let started = Instant::now();
        let pending = cx.send_request(PromptRequest::new(
            session.clone(),
            vec![ContentBlock::from(task.prompt)],
        ));
        let cancel = |reason| {
            cx.send_notification(CancelNotification::new(session.clone()))
                .map_err(|e| format!("{reason}, and session/cancel failed: {}", describe(&e)))
        };
        let mut turn = match task.kind {
            Kind::Prompt => match tokio::time::timeout(timeout, pending.block_task()).await {
                Ok(Ok(response)) => Turn::ended(stop_name(&response.stop_reason), started),
                Ok(Err(e)) => {
                    let mut turn = Turn::failed(format!("session/prompt failed: {}", describe(&e)));
                    turn.wall = started.elapsed();
                    turn
                }
                Err(_) => {
                    let reason = format!("no answer within {} s (--timeout)", timeout.as_secs());
                    // The prompt request is gone with the timeout; cancel so Punie stops.
                    let mut turn = Turn::failed(reason.clone());
                    if let Err(e) = cancel(reason) {
                        turn.error = Some(e);
                    }
                    turn.stop = "timeout".into();
                    turn.wall = started.elapsed();
                    turn
                }
            },
            Kind::Cancel => {
                while lock(&shared).updates.is_empty() && started.elapsed() < CANCEL_AFTER {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                if let Err(e) = cancel("cancelling".into()) {
                    return Turn::failed(e);
                }
                let cancelled = Instant::now();
                match tokio::time::timeout(CANCEL_WITHIN, pending.block_task()).await {
                    Ok(Ok(response)) => {
                        let mut turn = Turn::ended(stop_name(&response.stop_reason), started);
                        turn.cancel_answered = Some(cancelled.elapsed());
                        let answered = Instant::now();
                        while answered.elapsed() < IDLE_WITHIN {
                            if !server.busy().await.unwrap_or(true) {
                                turn.server_idle = Some(answered.elapsed());
                                break;
                            }
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        turn
                    }
                    Ok(Err(e)) => {
                        Turn::failed(format!("the cancelled prompt failed: {}", describe(&e)))
                    }
                    Err(_) => Turn::failed(format!(
                        "the cancelled prompt was not answered within {} s",
                        CANCEL_WITHIN.as_secs()
                    )),
                }
            }
        };
        let report = cx
            .send_request(PerfReportRequest(json!({"format": "json"})))
            .block_task();
        match tokio::time::timeout(Duration::from_secs(30), report).await {
            Ok(Ok(report)) => turn.perf = Some(report["json"].clone()),
            Ok(Err(e)) => eprintln!("real_tasks:   _punie/perf_report failed: {}", describe(&e)),
            Err(_) => eprintln!("real_tasks:   _punie/perf_report not answered within 30 s"),
        }
        turn
    })
    .await;
    let turn = turn.unwrap_or_else(Turn::failed);
    let record = lock(&record);
    let outcome = Outcome {
        project: project.to_owned(),
        before,
        answer: record.message_text(),
        stop: turn.stop.clone(),
        commands: record.commands.clone(),
        permissions_asked: record.permissions_asked,
        cancel_answered: turn.cancel_answered,
        server_idle: turn.server_idle,
    };
    let checked = match &turn.error {
        Some(e) => Err(e.clone()),
        None => (task.check)(&outcome),
    };
    let checked = checked.and_then(
        |detail| match report::stdout_problem(&record.stdout_lines) {
            Some(problem) => Err(problem),
            None => Ok(detail),
        },
    );
    Ok(report::task_result(
        task.name,
        &turn.stop,
        checked,
        turn.wall,
        load,
        &record,
        turn.perf.as_ref(),
        &logs,
        server.timings_since(log_from),
        outcome.answer,
    ))
}

impl Turn {
    fn ended(stop: String, started: Instant) -> Self {
        Self {
            stop,
            wall: started.elapsed(),
            perf: None,
            error: None,
            cancel_answered: None,
            server_idle: None,
        }
    }

    fn failed(error: String) -> Self {
        Self {
            stop: "error".into(),
            wall: Duration::ZERO,
            perf: None,
            error: Some(error),
            cancel_answered: None,
            server_idle: None,
        }
    }
}

fn stop_name(stop: &agent_client_protocol::v1::schema::StopReason) -> String {
    serde_json::to_value(stop)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{stop:?}"))
}

async fn wait_idle(server: &LlamaServer) {
    let started = Instant::now();
    while started.elapsed() < IDLE_WITHIN {
        if !server.busy().await.unwrap_or(false) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "real_tasks: llama-server still busy {} s after the task; going on",
        IDLE_WITHIN.as_secs()
    );
}

/// The model's name for llama-server's `--alias` and the tables: the file's stem.
fn alias(model: &Path) -> String {
    model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into())
}

/// `--punie`, else the `punie` beside this example (`target/<profile>/examples/real_tasks`).
fn punie_binary(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = given {
        return if path.is_file() {
            Ok(path.to_owned())
        } else {
            Err(format!("--punie {} is not a file", path.display()))
        };
    }
    let exe = std::env::current_exe().map_err(|e| format!("this example's path: {e}"))?;
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("this example is not in target/<profile>/examples")?;
    let bin = profile.join("punie");
    if !bin.is_file() {
        let flag = if profile.ends_with("release") {
            " --release"
        } else {
            ""
        };
        return Err(format!(
            "{} is missing: run `cargo build{flag}` first (or pass --punie / set PUNIE_BIN)",
            bin.display()
        ));
    }
    Ok(bin)
}
