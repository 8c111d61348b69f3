//! `punie ask "PROMPT"`: one prompt, in a terminal, without an editor.
//!
//! The workspace is local (files and commands confined to `--workspace`). The answer streams to
//! stdout; tool activity goes to stderr (`→ Read src/main.rs`, `✓ …`, `✗ …: why`), thoughts
//! only with `--show-thinking`. While the model server reads a long prompt (llama.cpp tells how
//! far it got), stderr shows how far. Permission questions go to the terminal when there is one,
//! unless `--approve` decides. The first Ctrl-C cancels the turn, a second one quits at once.
//!
//! A command's exit status is shown with the last [`OUTPUT_TAIL_LINES`] lines of its output.
//!
//! Exit codes: 0 when the model finished its answer, 1 on failure (the model server is down…),
//! 3 when the turn stopped at a limit, 4 when the answer is complete but an edit or a command
//! was refused because nobody could be asked (no terminal, no `--approve`), 130 when cancelled.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use clap::Args;
use serde_json::Value;

use punie::agent::{EventSink, StopReason, ToolCallStatus, TurnEvent};
use punie::tools::builtin::PlanStatus;
use punie::workspace::ToolContent;
use punie::workspace::local::{ApprovePolicy, LocalOptions, local_workspace};

use super::options::RunArgs;
use super::signals::{Signal, Signals};
use super::{EXIT_CANCELLED, EXIT_FAILURE, EXIT_LIMIT, EXIT_REFUSED, limits, runtime, startup};

/// Lines of a command's output shown after it ran (the model gets all of it).
pub const OUTPUT_TAIL_LINES: usize = 20;

/// Characters of one output line shown; a longer line is cut with "…".
const OUTPUT_LINE_CHARS: usize = 300;

/// What `punie ask --help` ends with.
const ASK_EXIT_CODES: &str = "Exit codes: 0 the answer is complete; 1 failure (the model server \
is down…); 2 bad options; 3 stopped at a limit (max_tokens, --max-turn-requests); 4 the answer is \
complete but an edit or command was refused because there was no terminal to ask in (pass \
--approve edits or --approve all); 130 cancelled (Ctrl-C).";

/// Options of `punie ask`.
#[derive(Debug, Args)]
#[command(after_help = ASK_EXIT_CODES)]
pub struct AskArgs {
    /// What to ask ("-" reads it from stdin).
    #[arg(value_name = "PROMPT")]
    pub prompt: String,

    /// The directory Punie may read, write and run commands in.
    #[arg(long, short, default_value = ".", value_name = "DIR")]
    pub workspace: PathBuf,

    /// What is allowed without asking: none, edits (file changes) or all (commands too).
    /// Without it Punie asks at the terminal, or refuses when there is no terminal.
    #[arg(long, env = "PUNIE_APPROVE", value_name = "POLICY", value_parser = parse_policy)]
    pub approve: Option<ApprovePolicy>,

    /// Show the model's reasoning (dimmed, on stderr).
    #[arg(long)]
    pub show_thinking: bool,

    /// Continue the workspace's most recent saved session.
    #[arg(long = "continue", conflicts_with = "resume")]
    pub continue_latest: bool,

    /// Continue the saved session ID (see `punie sessions list`).
    #[arg(long, value_name = "ID")]
    pub resume: Option<String>,

    /// The model, limits, sandbox, saved sessions and logs.
    #[command(flatten)]
    pub run: RunArgs,
}

fn parse_policy(text: &str) -> Result<ApprovePolicy, String> {
    text.parse()
}

/// Asks once and streams the answer.
pub fn run(args: &AskArgs) -> anyhow::Result<u8> {
    let prompt = if args.prompt == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read the prompt from stdin")?
    } else {
        args.prompt.clone()
    };
    if prompt.trim().is_empty() {
        return Err(startup(anyhow::anyhow!("the prompt is empty")));
    }
    if !args.workspace.is_dir() {
        return Err(startup(anyhow::anyhow!(
            "the workspace {} is not a directory",
            args.workspace.display()
        )));
    }
    // One session.
    limits::raise_open_file_limit(1);
    let (agent, perf) = args.run.agent(false, |_| {})?;
    let options = LocalOptions {
        sandbox: args.run.sandbox(),
        approve: args.approve,
        interactive: std::io::stdin().is_terminal() && std::io::stderr().is_terminal(),
    };
    let workspace = local_workspace(args.workspace.clone(), options)
        .with_context(|| format!("cannot use {} as the workspace", args.workspace.display()))
        .map_err(startup)?;
    let runtime = runtime()?;
    let events = Arc::new(TerminalEvents::new(args.show_thinking));
    let code = runtime.block_on(async {
        let mut signals = Signals::new()?;
        let session = super::sessions::ask_session(
            &agent,
            args.resume.as_deref(),
            args.continue_latest,
            workspace,
        )?;
        let turn = agent.prompt(session.clone(), prompt.into(), events.clone());
        tokio::pin!(turn);
        let outcome = loop {
            tokio::select! {
                result = &mut turn => break Some(result),
                signal = signals.next() => {
                    tracing::info!(signal = signal.name(), "signal during ask");
                    if signal == Signal::Interrupt && !events.already_cancelling() {
                        events.note("cancelling… (press Ctrl-C again to quit)");
                        session.cancel();
                    } else {
                        break None;
                    }
                }
            }
        };
        events.end_answer();
        agent.close_all().await;
        if let Some(path) = perf.as_ref().and_then(|perf| perf.write_all()) {
            eprintln!("punie: perf report: {}", path.display());
        }
        let code = match outcome {
            Some(Ok(StopReason::EndTurn)) => 0,
            Some(Ok(StopReason::MaxTokens)) => {
                eprintln!("punie: the answer was cut at the model's token limit (max_tokens)");
                EXIT_LIMIT
            }
            Some(Ok(StopReason::MaxTurnRequests)) => {
                eprintln!(
                    "punie: stopped after {} model requests: pass a higher --max-turn-requests to let it go on",
                    args.run.max_turn_requests
                );
                EXIT_LIMIT
            }
            Some(Ok(StopReason::Cancelled)) | None => {
                eprintln!("punie: cancelled");
                EXIT_CANCELLED
            }
            Some(Ok(other)) => {
                eprintln!("punie: the turn stopped ({other:?})");
                EXIT_FAILURE
            }
            Some(Err(error)) => {
                eprintln!("punie: {error}");
                EXIT_FAILURE
            }
        };
        // Without --approve, only the lack of a terminal refuses with "--approve" in the reason.
        let refused = events.refused_for_want_of_approval() && args.approve.is_none();
        if refused {
            eprintln!(
                "punie: some actions were refused because nobody could be asked: pass --approve edits (file changes) or --approve all (commands too)"
            );
        }
        anyhow::Ok(if refused && code == 0 {
            EXIT_REFUSED
        } else {
            code
        })
    })?;
    // A permission question may still be waiting for a line from the terminal.
    runtime.shutdown_background();
    Ok(code)
}

/// Shows a turn in the terminal: the answer on stdout, the rest on stderr.
struct TerminalEvents {
    show_thinking: bool,
    /// Stderr is a terminal: the prompt's progress is rewritten in place.
    live_progress: bool,
    style: Style,
    state: Mutex<TerminalState>,
}

#[derive(Default)]
struct TerminalState {
    /// Titles of the announced tool calls, by id.
    titles: HashMap<String, String>,
    /// True when the last answer text did not end a line.
    answer_line_open: bool,
    /// True when the last thought text did not end a line.
    thought_line_open: bool,
    /// True while a progress line that ends with no newline is on stderr.
    progress_line_open: bool,
    cancelling: bool,
    refused_for_want_of_approval: bool,
}

/// Colours for stderr, when it is a terminal and `NO_COLOR` is not set.
#[derive(Clone, Copy)]
struct Style {
    color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

impl TerminalEvents {
    fn new(show_thinking: bool) -> Self {
        let color = std::io::stderr().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self {
            show_thinking,
            live_progress: std::io::stderr().is_terminal(),
            style: Style { color },
            state: Mutex::default(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TerminalState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the turn as being cancelled; returns whether it already was.
    fn already_cancelling(&self) -> bool {
        std::mem::replace(&mut self.state().cancelling, true)
    }

    fn refused_for_want_of_approval(&self) -> bool {
        self.state().refused_for_want_of_approval
    }

    /// Ends the answer's last line, so the shell prompt starts on its own line.
    fn end_answer(&self) {
        let mut state = self.state();
        close_lines(&mut state);
    }

    /// A line on stderr, on its own line.
    fn note(&self, text: &str) {
        let mut state = self.state();
        close_lines(&mut state);
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{}", self.style.paint("2", text));
    }
}

/// Ends the open answer or thought line. Writes to a closed pipe are ignored: the person
/// stopped reading, the turn goes on.
fn close_lines(state: &mut TerminalState) {
    if state.progress_line_open {
        // Erased: the prompt is read, what follows takes its place.
        let _ = std::io::stderr().lock().write_all(b"\r\x1b[K");
        state.progress_line_open = false;
    }
    if state.answer_line_open {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(b"\n");
        let _ = stdout.flush();
        state.answer_line_open = false;
    }
    if state.thought_line_open {
        let _ = std::io::stderr().lock().write_all(b"\n");
        state.thought_line_open = false;
    }
}

impl EventSink for TerminalEvents {
    fn emit(&self, _session_id: &str, event: TurnEvent) {
        let mut state = self.state();
        match event {
            TurnEvent::MessageChunk(text) => {
                if text.is_empty() {
                    return;
                }
                if state.thought_line_open {
                    let _ = std::io::stderr().lock().write_all(b"\n");
                    state.thought_line_open = false;
                }
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
                state.answer_line_open = !text.ends_with('\n');
            }
            TurnEvent::ThoughtChunk(text) => {
                if !self.show_thinking || text.is_empty() {
                    return;
                }
                if state.answer_line_open {
                    close_lines(&mut state);
                }
                let mut stderr = std::io::stderr().lock();
                let _ = stderr.write_all(self.style.paint("2", &text).as_bytes());
                state.thought_line_open = !text.ends_with('\n');
            }
            TurnEvent::ToolCall(call) => {
                close_lines(&mut state);
                let line = format!("{} {}", self.style.paint("36", "→"), call.title);
                state.titles.insert(call.id, call.title);
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            TurnEvent::ToolCallUpdate(change) => {
                let title = state.titles.get(&change.id).cloned().unwrap_or(change.id);
                let line = match change.status {
                    Some(ToolCallStatus::Completed) => {
                        match CommandRun::of(change.raw_output.as_ref()) {
                            Some(run) => run.render(&title, self.style),
                            None => format!("{} {title}", self.style.paint("32", "✓")),
                        }
                    }
                    Some(ToolCallStatus::Failed) => {
                        let reason =
                            failure_reason(change.raw_output.as_ref(), change.content.as_deref());
                        if reason.contains("--approve") {
                            state.refused_for_want_of_approval = true;
                        }
                        format!("{} {title}: {reason}", self.style.paint("31", "✗"))
                    }
                    _ => return,
                };
                close_lines(&mut state);
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            TurnEvent::Plan(entries) => {
                close_lines(&mut state);
                let mut stderr = std::io::stderr().lock();
                let _ = writeln!(stderr, "{}", self.style.paint("36", "Plan:"));
                for entry in entries {
                    let mark = match entry.status {
                        PlanStatus::Completed => "[x]",
                        PlanStatus::InProgress => "[>]",
                        PlanStatus::Pending => "[ ]",
                    };
                    let _ = writeln!(stderr, "  {mark} {}", entry.content);
                }
            }
            TurnEvent::Notice { description, .. }
            | TurnEvent::Compaction {
                description: Some(description),
                ..
            } => {
                close_lines(&mut state);
                let line = self.style.paint("33", &format!("! {description}"));
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            TurnEvent::PromptProgress {
                total,
                cached,
                processed,
            } => {
                if total.saturating_sub(cached) < MIN_PROGRESS_TOKENS {
                    return;
                }
                let line = self
                    .style
                    .paint("2", &progress_line(total, cached, processed));
                let mut stderr = std::io::stderr().lock();
                if self.live_progress {
                    let _ = write!(stderr, "\r\x1b[K{line}");
                    state.progress_line_open = true;
                } else {
                    let _ = writeln!(stderr, "{line}");
                }
            }
            _ => {}
        }
    }
}

/// What a command that ran left: its status and the tail of its output.
#[derive(Debug, PartialEq)]
struct CommandRun {
    /// "exit code 2", "killed by SIGKILL", "still running as terminal t1".
    status: String,
    /// Whether it ended with exit code 0.
    succeeded: bool,
    /// The last lines of its output, made safe for a terminal.
    tail: Vec<String>,
    /// Output lines before the tail, not shown.
    hidden: usize,
    /// The output was cut before it reached Punie (only its end was kept).
    truncated: bool,
}

impl CommandRun {
    /// Reads a `run_command` result (`exitCode`, `signal`, `output`, `truncated`, or
    /// `running` with `terminalId`); `None` for any other tool's.
    fn of(raw_output: Option<&Value>) -> Option<Self> {
        let raw = raw_output?;
        let output = raw.get("output")?.as_str()?;
        let running = raw.get("running").and_then(Value::as_bool) == Some(true);
        let (status, succeeded) = if running {
            let id = raw.get("terminalId").and_then(Value::as_str).unwrap_or("?");
            (format!("still running as terminal {id}"), false)
        } else {
            let code = raw.get("exitCode")?;
            match (code.as_i64(), raw.get("signal").and_then(Value::as_str)) {
                (Some(code), _) => (format!("exit code {code}"), code == 0),
                (None, Some(signal)) => (format!("killed by {signal}"), false),
                (None, None) => ("exited".to_owned(), false),
            }
        };
        let lines: Vec<&str> = output.lines().collect();
        let hidden = lines.len().saturating_sub(OUTPUT_TAIL_LINES);
        Some(Self {
            status,
            succeeded,
            tail: lines[hidden..].iter().map(|line| safe_line(line)).collect(),
            hidden,
            truncated: raw.get("truncated").and_then(Value::as_bool) == Some(true),
        })
    }

    /// `✓ Run `make` (exit code 0)` or `✗ Run `make`: exit code 2`, then the output's tail.
    fn render(&self, title: &str, style: Style) -> String {
        let mut text = if self.succeeded {
            format!("{} {title} ({})", style.paint("32", "✓"), self.status)
        } else {
            format!("{} {title}: {}", style.paint("31", "✗"), self.status)
        };
        let earlier = match (self.hidden, self.truncated) {
            (0, false) => None,
            (0, true) => Some("earlier output was cut".to_owned()),
            (hidden, truncated) => Some(format!(
                "{hidden}{} earlier lines not shown",
                if truncated { "+" } else { "" }
            )),
        };
        if let Some(earlier) = earlier {
            text.push_str(&format!(
                "\n  {}",
                style.paint("2", &format!("… {earlier}"))
            ));
        }
        for line in &self.tail {
            text.push_str(&format!("\n  {}", style.paint("2", &format!("│ {line}"))));
        }
        text
    }
}

/// One output line as a terminal would leave it (what follows the last carriage return), with
/// control characters (escape sequences included) replaced, and at most [`OUTPUT_LINE_CHARS`]
/// characters long.
fn safe_line(line: &str) -> String {
    let shown = line.trim_end_matches('\r');
    let shown = shown.rsplit('\r').next().unwrap_or_default();
    let mut safe: String = shown
        .chars()
        .take(OUTPUT_LINE_CHARS)
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    if shown.chars().nth(OUTPUT_LINE_CHARS).is_some() {
        safe.push('…');
    }
    safe
}

/// Prompts with fewer tokens to read than this are read too fast to be worth a progress line.
const MIN_PROGRESS_TOKENS: u64 = 256;

/// `punie: reading the prompt: 512 of 2013 tokens (13 from the cache)`.
fn progress_line(total: u64, cached: u64, processed: u64) -> String {
    let to_read = total.saturating_sub(cached);
    let read = processed.saturating_sub(cached).min(to_read);
    let percent = (read * 100).checked_div(to_read).unwrap_or(100);
    format!(
        "punie: the model server is reading the prompt: {read} of {to_read} new tokens ({percent}%; {cached} of {total} from its cache)"
    )
}

/// Why a tool call failed, in one line.
fn failure_reason(raw_output: Option<&Value>, content: Option<&[ToolContent]>) -> String {
    let from_output = raw_output
        .and_then(|output| output.get("error"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let from_content = || {
        content.and_then(|content| {
            content.iter().find_map(|item| match item {
                ToolContent::Text(text) => Some(text.clone()),
                _ => None,
            })
        })
    };
    let reason = from_output
        .or_else(from_content)
        .unwrap_or_else(|| "failed".to_owned());
    let first_line = reason.lines().next().unwrap_or_default().trim();
    first_line.trim_end_matches('.').to_owned()
}
