//! The live suite: the real `punie` binary, driven by the official ACP client (the fake editor
//! of `tests/it/support/editor.rs`), against a real llama-server running a real small model
//! (Qwen2.5-Coder-0.5B-Instruct Q4_K_M). What it proves is in `specs/live.md`.
//!
//! Its own test crate without libtest's harness (`harness = false` in Cargo.toml): the cases run
//! one after another against ONE llama-server (so its prompt cache is reused), print their
//! progress and timings to stderr uncaptured, and a case that starts a server of its own stops
//! it before the next begins — two cores cannot run two models at once.
//!
//! Needs `LLAMA_SERVER` (the binary) and `PUNIE_LIVE_MODEL` (the GGUF file), which
//! `tests/live/setup.sh` prints. Without them the suite says it was skipped and passes, unless
//! `PUNIE_REQUIRE_LIVE=1` (as `.ci/run` sets) makes that a failure.

#[path = "../it/support/editor.rs"]
#[allow(dead_code)] // the other suites use more of the fake editor than this one does
mod editor;

mod cases;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use futures::FutureExt;

use crate::cases::{CASES, Needs};
use crate::server::LlamaServer;

/// Where the suite finds its server and model, and the directory its cases share.
pub struct Live {
    /// The llama-server binary.
    pub binary: PathBuf,
    /// The GGUF model file.
    pub model: PathBuf,
    /// The one project directory every session works in: the system prompt names it, so one
    /// directory keeps the prompt's prefix byte-identical and llama-server's cache warm.
    pub workspace: PathBuf,
    /// Beside the workspace: logs, configs, perf reports, server logs.
    pub scratch: PathBuf,
    _dir: tempfile::TempDir,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for case in CASES {
            println!("{}: test", case.name);
        }
        return ExitCode::SUCCESS;
    }
    // `cargo test FILTER` passes FILTER to every test binary: honour it, so filtering for
    // another suite does not start a model server.
    let filters: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let selected: Vec<_> = CASES
        .iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.name.contains(f)))
        .collect();
    if selected.is_empty() {
        return ExitCode::SUCCESS;
    }

    let required = std::env::var("PUNIE_REQUIRE_LIVE").is_ok_and(|v| v == "1");
    let (Some(binary), Some(model)) = (
        std::env::var_os("LLAMA_SERVER"),
        std::env::var_os("PUNIE_LIVE_MODEL"),
    ) else {
        eprintln!(
            "live suite SKIPPED: LLAMA_SERVER and PUNIE_LIVE_MODEL are not set.\n  \
             To run it: eval \"$(tests/live/setup.sh)\" && cargo test --test live\n  \
             (setup builds llama-server once, ~15 min on 2 cores, and fetches a 491 MB model; see specs/live.md)"
        );
        if required {
            eprintln!("live suite FAILED: PUNIE_REQUIRE_LIVE=1 requires it to run");
            return ExitCode::FAILURE;
        }
        return ExitCode::SUCCESS;
    };
    let (binary, model) = (PathBuf::from(binary), PathBuf::from(model));
    for (name, path) in [("LLAMA_SERVER", &binary), ("PUNIE_LIVE_MODEL", &model)] {
        if !path.is_file() {
            eprintln!(
                "live suite FAILED: {name}={} is not a file; run tests/live/setup.sh and use the paths it prints",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    }

    let mut dir = tempfile::tempdir().expect("a temporary directory");
    if std::env::var_os("PUNIE_LIVE_KEEP").is_some() {
        dir.disable_cleanup(true);
        eprintln!(
            "live: keeping logs, configs and the project in {}",
            dir.path().display()
        );
    }
    let workspace = dir.path().join("project");
    std::fs::create_dir(&workspace).expect("the project directory");
    let live = Live {
        binary,
        model,
        workspace: workspace.canonicalize().expect("a canonical project path"),
        scratch: dir.path().to_owned(),
        _dir: dir,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let started = Instant::now();
    let failures = runtime.block_on(run(&live, &selected));
    eprintln!(
        "live: {} case(s) in {:.0} s, {} failed",
        selected.len(),
        started.elapsed().as_secs_f64(),
        failures
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs the cases that share the main server (started once), then those that bring their own.
async fn run(live: &Live, selected: &[&cases::Case]) -> usize {
    let mut failures = 0;
    let shared: Vec<_> = selected.iter().filter(|c| c.needs == Needs::Main).collect();
    if !shared.is_empty() {
        match LlamaServer::start(
            &live.binary,
            &live.model,
            "main",
            &["--jinja", "-c", "8192", "--metrics"],
            &live.scratch,
        )
        .await
        {
            Ok(main) => {
                for case in shared {
                    failures += usize::from(!report(case, live, Some(&main)).await);
                }
            }
            Err(e) => {
                eprintln!("live: FAILED to start the main llama-server: {e}");
                failures += shared.len();
            }
        }
    }
    for case in selected.iter().filter(|c| c.needs == Needs::Own) {
        failures += usize::from(!report(case, live, None).await);
    }
    failures
}

/// Runs one case, a panic included, and prints its outcome and wall time.
async fn report(case: &cases::Case, live: &Live, main: Option<&LlamaServer>) -> bool {
    eprintln!("live: {} ...", case.name);
    let started = Instant::now();
    let outcome = std::panic::AssertUnwindSafe(cases::run(case.name, live, main))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic".to_owned());
            Err(format!("panicked: {text}"))
        });
    let secs = started.elapsed().as_secs_f64();
    if let Some(main) = main {
        main.print_new_timings();
    }
    match outcome {
        Ok(()) => {
            eprintln!("live: {} ok ({secs:.1} s)", case.name);
            true
        }
        Err(e) => {
            eprintln!("live: {} FAILED ({secs:.1} s): {e}", case.name);
            false
        }
    }
}
