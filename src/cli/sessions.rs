//! `punie sessions`: the saved conversations in this terminal — list them (all, or one
//! workspace's), show one as text or Markdown, delete one. Also where they are kept.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use std::sync::Arc;

use punie::agent::journal::{Loaded, Record, Retention, SessionStore, ShownContent, StoredMessage};
use punie::agent::{Agent, Session, TurnEvent};
use punie::workspace::Workspace;

use super::options::{LogArgs, StoreArgs};
use super::{EXIT_FAILURE, startup};

/// `punie sessions`.
#[derive(Debug, Args)]
pub struct SessionsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SessionsCommand,
}

/// The `punie sessions` subcommands.
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List saved sessions, newest activity first.
    List {
        /// Only the sessions of this workspace directory.
        #[arg(long, short, value_name = "DIR")]
        workspace: Option<PathBuf>,
        /// One JSON object per session (id, cwd, title, createdAt, updatedAt).
        #[arg(long)]
        json: bool,
        /// Where the sessions are, and logs.
        #[command(flatten)]
        options: SessionsOptions,
    },
    /// Print a saved conversation as readable text.
    Show {
        /// The session id (from `punie sessions list`).
        id: String,
        /// Print it as Markdown, to keep or share.
        #[arg(long)]
        markdown: bool,
        /// Where the sessions are, and logs.
        #[command(flatten)]
        options: SessionsOptions,
    },
    /// Delete a saved session (refused while a Punie has it open).
    Delete {
        /// The session id (from `punie sessions list`).
        id: String,
        /// Where the sessions are, and logs.
        #[command(flatten)]
        options: SessionsOptions,
    },
}

/// What every `punie sessions` subcommand takes: where the sessions are (and how long they are
/// kept: pruned as the directory is opened), and where logs go.
#[derive(Debug, Args)]
pub struct SessionsOptions {
    /// Where the sessions are.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Logs.
    #[command(flatten)]
    pub log: LogArgs,
}

impl SessionsOptions {
    /// Where logs go.
    pub fn log(&self) -> &LogArgs {
        &self.log
    }
}

impl SessionsArgs {
    /// The options of whichever subcommand was given.
    pub fn options(&self) -> &SessionsOptions {
        match &self.command {
            SessionsCommand::List { options, .. }
            | SessionsCommand::Show { options, .. }
            | SessionsCommand::Delete { options, .. } => options,
        }
    }
}

/// The sessions directory: `--state-dir`, else the platform's state directory (or local data
/// directory where the platform has none), under `punie/sessions`.
pub fn default_dir() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("dev", "punie", "punie")?;
    let base = dirs.state_dir().unwrap_or_else(|| dirs.data_local_dir());
    Some(base.join("sessions"))
}

/// Opens the sessions directory and prunes what the retention options no longer keep; `None`
/// (sessions are not saved, with a warning in the log) when there is no state directory.
pub fn open_store(args: &StoreArgs) -> anyhow::Result<Option<SessionStore>> {
    let Some(dir) = args.state_dir.clone().or_else(default_dir) else {
        tracing::warn!(
            "no state directory on this platform: sessions are not saved (pass --state-dir)"
        );
        return Ok(None);
    };
    let store = SessionStore::open(&dir)
        .with_context(|| {
            format!(
                "cannot use {} for saved sessions (pass --state-dir DIR)",
                dir.display()
            )
        })
        .map_err(startup)?;
    store.prune(Retention {
        max_age: args
            .keep_sessions_days
            .map(|days| Duration::from_secs(days.saturating_mul(86_400))),
        max_count: args.keep_sessions,
    });
    Ok(Some(store))
}

fn store(args: &StoreArgs) -> anyhow::Result<SessionStore> {
    open_store(args)?
        .context("no state directory on this platform: pass --state-dir DIR")
        .map_err(startup)
}

/// The session `punie ask` prompts: a new one, the saved `resume`, or with `continue_latest`
/// the workspace's most recent.
pub fn ask_session(
    agent: &Agent,
    resume: Option<&str>,
    continue_latest: bool,
    workspace: Workspace,
) -> anyhow::Result<Arc<Session>> {
    let root = workspace.root().to_owned();
    let id = match (resume, continue_latest) {
        (Some(id), _) => id.to_owned(),
        (None, true) => {
            let page = agent.saved_sessions(Some(&root), None)?;
            let latest = page.sessions.into_iter().next().with_context(|| {
                format!(
                    "no saved session for {}: run `punie ask` without --continue to start one",
                    root.display()
                )
            });
            latest.map_err(startup)?.session
        }
        (None, false) => return Ok(agent.new_session(move |_| workspace, agent.toolset())),
    };
    let loaded = agent
        .load_session(&id, &root, move |_| workspace)
        .map_err(startup)?;
    for event in &loaded.replay {
        match event {
            TurnEvent::SessionInfo { title, .. } => eprintln!(
                "punie: continuing session {id}: {}",
                title.as_deref().unwrap_or("(untitled)")
            ),
            TurnEvent::Notice { title, description } => eprintln!("punie: {title}: {description}"),
            _ => {}
        }
    }
    Ok(loaded.session)
}

/// Runs `punie sessions …`.
pub fn run(args: &SessionsArgs) -> anyhow::Result<u8> {
    let store = store(&args.options().store)?;
    let mut out = std::io::stdout().lock();
    match &args.command {
        SessionsCommand::List {
            workspace, json, ..
        } => {
            let workspace = match workspace {
                Some(dir) => Some(
                    dir.canonicalize()
                        .with_context(|| {
                            format!("the workspace {} is not a directory", dir.display())
                        })
                        .map_err(startup)?,
                ),
                None => None,
            };
            let sessions: Vec<_> = store
                .all()?
                .into_iter()
                .filter(|s| workspace.as_ref().is_none_or(|w| &s.cwd == w))
                .collect();
            if *json {
                for s in &sessions {
                    let line = serde_json::json!({
                        "sessionId": s.session,
                        "cwd": s.cwd,
                        "title": s.title,
                        "createdAt": s.created_at,
                        "updatedAt": s.updated_at,
                    });
                    writeln!(out, "{line}")?;
                }
            } else if sessions.is_empty() {
                eprintln!("No saved sessions in {}.", store.dir().display());
            } else {
                for s in &sessions {
                    writeln!(
                        out,
                        "{}  {}  {}  {}",
                        s.session,
                        s.updated_at,
                        s.cwd.display(),
                        s.title.as_deref().unwrap_or("(untitled)")
                    )?;
                }
            }
            Ok(0)
        }
        SessionsCommand::Show { id, markdown, .. } => {
            let loaded = store.read(id)?;
            out.write_all(render(&loaded, *markdown).as_bytes())?;
            Ok(0)
        }
        SessionsCommand::Delete { id, .. } => match store.delete(id) {
            Ok(()) => {
                eprintln!("Deleted session {id}.");
                Ok(0)
            }
            Err(error) => {
                eprintln!("punie: {error}");
                Ok(EXIT_FAILURE)
            }
        },
    }
}

/// A saved conversation as text (or Markdown).
fn render(loaded: &Loaded, markdown: bool) -> String {
    let mut text = String::new();
    let header = &loaded.header;
    let title = loaded.title.as_deref().unwrap_or("(untitled)");
    if markdown {
        text.push_str(&format!("# {title}\n\n"));
        text.push_str(&format!(
            "Session `{}` in `{}`, started {} with {}.\n\n",
            header.session,
            header.cwd.display(),
            header.created_at,
            header.model
        ));
    } else {
        text.push_str(&format!("{title}\n"));
        text.push_str(&format!(
            "session {} · {} · started {} · {}\n\n",
            header.session,
            header.cwd.display(),
            header.created_at,
            header.model
        ));
    }
    for record in &loaded.records {
        match record {
            Record::Prompt {
                text: prompt, at, ..
            } => {
                if markdown {
                    text.push_str(&format!("## You ({at})\n\n{prompt}\n\n"));
                } else {
                    text.push_str(&format!("> you ({at})\n{prompt}\n\n"));
                }
            }
            Record::Message {
                message: StoredMessage::Assistant { content, .. },
                ..
            } => {
                if let Some(content) = content.as_ref().filter(|c| !c.trim().is_empty()) {
                    if markdown {
                        text.push_str(&format!("**Punie:**\n\n{content}\n\n"));
                    } else {
                        text.push_str(&format!("< punie\n{content}\n\n"));
                    }
                }
            }
            Record::ToolCall { call } => {
                let mark = if call.status == "completed" {
                    "✓"
                } else {
                    "✗"
                };
                if markdown {
                    text.push_str(&format!("- {mark} `{}`: {}\n", call.name, call.title));
                } else {
                    text.push_str(&format!("  {mark} {}\n", call.title));
                }
                for content in &call.content {
                    if let ShownContent::Diff { path, .. } = content {
                        text.push_str(&format!("    changed {}\n", path.display()));
                    }
                }
            }
            Record::Command {
                text: command,
                output,
                at,
            } => {
                if markdown {
                    text.push_str(&format!(
                        "## You ({at})\n\n`{command}`\n\n**Punie:**\n\n{output}\n\n"
                    ));
                } else {
                    text.push_str(&format!("> you ({at})\n{command}\n< punie\n{output}\n\n"));
                }
            }
            Record::Compacted { .. } => text.push_str("  (older turns were summarised here)\n"),
            Record::Model { name } => text.push_str(&format!("  (switched to model {name})\n")),
            Record::TurnEnd { stop, .. } if stop != "end_turn" => {
                text.push_str(&format!("  (the turn ended: {stop})\n\n"));
            }
            _ => {}
        }
    }
    if loaded.interrupted {
        text.push_str("  (the last turn was interrupted: Punie stopped before it finished)\n");
    }
    for problem in &loaded.problems {
        text.push_str(&format!("  ({problem})\n"));
    }
    text
}
