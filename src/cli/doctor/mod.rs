//! `punie doctor [--model SPEC]`: checks a model server the way Punie will use it, prints one
//! verdict per check and the flags that fix what is wrong (see `specs/doctor.md`).
//!
//! The checks, in order: reachable; the model id to use; native tool calls (a one-tool
//! request); the reasoning format (from the same answer); the context window against Punie's
//! fixed prompt, and the prompt speed and first-token wait for it (one cold one-token request of
//! that prompt). Nothing is retried and every request is bounded: look-ups by 10 s, each chat
//! request by `--wait`.
//!
//! Exit codes: 0 when Punie can work with the server (warnings allowed), 1 when it cannot (a
//! check failed: nothing answers, no such model, the fixed prompt does not fit the window, chat
//! requests fail), 2 for bad options or configuration.

mod checks;
mod fixes;
mod measure;
mod prompt;
mod report;

use std::time::Duration;

use clap::Args;
use punie::llm::Timeouts;
use punie::llm::probe::ServerProbe;

use punie::workspace::local::SandboxOptions;

use super::options::{LogArgs, ModelServerArgs};
use super::{EXIT_FAILURE, runtime};
use report::{Check, ServerKind};

/// How long each look-up (model list, `/props`, `/health`…) may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of `punie doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Seconds each chat request may take (a cold prompt on a CPU takes minutes).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600), value_name = "SECS")]
    pub wait: u64,

    /// The server and model to check.
    #[command(flatten)]
    pub server: ModelServerArgs,

    /// Logs.
    #[command(flatten)]
    pub log: LogArgs,
}

/// Checks the server `--model` names and prints the report; the exit code says whether Punie
/// can work with it.
pub fn run(args: &DoctorArgs) -> anyhow::Result<u8> {
    let entry = args.server.model.model_entry()?;
    let spec = args.server.model.spec_of(entry.as_ref())?;
    let api_key = args
        .server
        .api_key_for(entry.as_ref().map(|(_, entry)| entry));
    let entry_name = entry.map(|(name, _)| name);
    let wait = Duration::from_secs(args.wait);
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        first_byte: wait,
        idle: Duration::from_secs(60).min(wait),
    };
    let wanted = spec.model.clone();
    let probe = ServerProbe::new(spec, api_key, timeouts, LOOKUP_TIMEOUT);
    let runtime = runtime()?;
    let (kind, checks) = runtime.block_on(async {
        check_all(&probe, wanted.as_deref(), entry_name.as_deref(), wait).await
    });
    print!("{}", report::render(probe.base_url(), kind, &checks));
    tracing::info!(usable = report::usable(&checks), "doctor done");
    Ok(if report::usable(&checks) {
        0
    } else {
        EXIT_FAILURE
    })
}

async fn check_all(
    probe: &ServerProbe,
    wanted: Option<&str>,
    entry: Option<&str>,
    wait: Duration,
) -> (Option<ServerKind>, Vec<Check>) {
    let mut checks = Vec::new();
    let (reachable, models) = checks::reachable(probe).await;
    let unreachable = reachable.verdict == report::Verdict::Fail;
    checks.push(reachable);
    if unreachable {
        return (None, skip_rest(checks, "the server is not reachable"));
    }
    let (model, id) = checks::model(probe.base_url(), wanted, entry, models.as_ref());
    checks.push(model);
    let Some(id) = id else {
        return (None, skip_rest(checks, "no model to use"));
    };
    let kind = checks::server_kind(probe, models.as_ref(), &id).await;
    let (calls, reasoning, chats) = checks::tool_calls(probe, &id, kind, wait).await;
    checks.push(calls);
    checks.push(
        reasoning
            .unwrap_or_else(|| Check::skipped("reasoning", "the tool-call request got no answer")),
    );
    if !chats {
        checks.push(Check::skipped("context window", "chat requests fail"));
        checks.push(Check::skipped("prompt speed", "chat requests fail"));
        return (Some(kind), checks);
    }
    let root = std::env::current_dir().unwrap_or_else(|_| std::env::temp_dir());
    let fixed = match prompt::fixed_prompt(root, SandboxOptions::default()).await {
        Ok(fixed) => fixed,
        Err(error) => {
            tracing::warn!(%error, "cannot build the fixed prompt");
            let because = format!("cannot build Punie's fixed prompt ({error:#})");
            checks.push(Check::skipped("context window", &because));
            checks.push(Check::skipped("prompt speed", &because));
            return (Some(kind), checks);
        }
    };
    let window = probe.context_size(models.as_ref(), &id).await;
    let slots = match kind {
        ServerKind::LlamaCpp => measure::llama_slots(probe).await,
        _ => None,
    };
    let measured = measure::measure(probe, &id, &fixed, wait).await;
    checks.push(measure::window(window, &measured, &fixed, kind, slots));
    checks.push(measure::speed(&measured, kind, wait));
    (Some(kind), checks)
}

/// The checks after a failure, marked as not made.
fn skip_rest(mut checks: Vec<Check>, because: &str) -> Vec<Check> {
    let done: Vec<&str> = checks.iter().map(|check| check.name).collect();
    let rest: Vec<&'static str> = [
        "model",
        "tool calls",
        "reasoning",
        "context window",
        "prompt speed",
    ]
    .into_iter()
    .filter(|name| !done.contains(name))
    .collect();
    checks.extend(rest.into_iter().map(|name| Check::skipped(name, because)));
    checks
}
