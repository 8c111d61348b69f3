//! Slash commands: Punie's own (`/compact`, `/init`, `/model`, `/context`, `/tools`, `/clear`),
//! the person's prompt files (`.punie/commands/NAME.md` in the project and in the user's config
//! directory), what a prompt that starts with `/` turns into, and the commands that answer
//! without the model. See `specs/modes-and-commands.md`.
//!
//! A prompt that names no command goes to the model as written. Commands that need the model
//! (`/init`, prompt files) become an ordinary prompt with the text they stand for; the others
//! answer here and end the turn, journaled as the commands they are.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::thousands;
use super::events::{CommandInfo, EventSink, StopReason, TurnEvent};
use super::session::{Session, TurnClaim};
use super::turn::{CompactOutcome, Turn};
use super::{Agent, AgentError, TOOLS_LOADING_LIMIT};
use crate::llm::Message;
use crate::tools::{ToolSource, Toolset};
use crate::workspace::Workspace;
use crate::workspace::local::Walker;

/// The largest prompt file read; a larger one is skipped (and the person told).
pub(crate) const MAX_COMMAND_FILE_BYTES: u64 = 64 * 1024;

/// The most prompt files read from one directory; the rest are skipped (and the person told).
pub(crate) const MAX_COMMAND_FILES: usize = 100;

/// Where a project keeps its prompt files, relative to the workspace root.
pub(crate) const PROJECT_COMMANDS_DIR: &str = ".punie/commands";

/// What replaces this in a prompt file: the text typed after the command's name.
const ARGUMENTS: &str = "$ARGUMENTS";

/// Punie's own commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Builtin {
    Compact,
    Init,
    Model,
    Mode,
    Context,
    Tools,
    Clear,
}

/// Punie's own commands: name, description, input hint.
const BUILTINS: [(Builtin, &str, &str, Option<&str>); 7] = [
    (
        Builtin::Compact,
        "compact",
        "Summarise the conversation before the latest exchange, to free the context window",
        None,
    ),
    (
        Builtin::Init,
        "init",
        "Look at the project and write an AGENTS.md for it (asks before writing)",
        Some("what the instructions should stress (optional)"),
    ),
    (
        Builtin::Model,
        "model",
        "Switch this session's model, or list the models",
        Some("model name (empty: list the models)"),
    ),
    (
        Builtin::Mode,
        "mode",
        "Switch this session's mode (ask, plan, code, edit), or show them",
        Some("mode (empty: show the modes)"),
    ),
    (
        Builtin::Context,
        "context",
        "Show what fills the context window now, in tokens",
        None,
    ),
    (
        Builtin::Tools,
        "tools",
        "List this session's tools and where each comes from",
        None,
    ),
    (
        Builtin::Clear,
        "clear",
        "Start over in this session: the conversation so far is forgotten",
        None,
    ),
];

/// The instruction `/init` gives the model.
const INIT_PROMPT: &str = "Look at this project and write an AGENTS.md file at the project root: \
instructions for coding agents who will work here. First explore: list the files, read the README, \
the build and package files and a few central source files. Then write AGENTS.md (with write_file; \
if it exists already, read it and improve it with edit_file) in short Markdown sections: what the \
project is, how it is laid out, how to build, run and test it (the exact commands), the code style \
and conventions it follows, and anything an agent must not do. Keep it under about 60 lines, state \
only what you saw in the files, and answer with a one-line summary when it is written.";

/// A command read from a prompt file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct UserCommand {
    name: String,
    description: String,
    hint: Option<String>,
    /// The prompt, `$ARGUMENTS` still in it.
    template: String,
}

/// The commands a session offers at one moment, and what was wrong with its prompt files.
#[derive(Clone, Debug, Default)]
pub(crate) struct CommandTable {
    user: Vec<UserCommand>,
    problems: Vec<String>,
}

/// What a prompt stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Invocation {
    /// Send this text to the model.
    Model(String),
    /// Answer with one of Punie's own commands.
    Local {
        command: Builtin,
        /// What followed the name, trimmed.
        arguments: String,
        /// The prompt as typed.
        typed: String,
    },
}

/// Splits `/name rest` into the name and the rest; `None` when the prompt is no command.
fn split_command(prompt: &str) -> Option<(&str, &str)> {
    let rest = prompt.trim_start().strip_prefix('/')?;
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let (name, arguments) = rest.split_at(end);
    valid_name(name).then_some((name, arguments.trim()))
}

/// Command names are short words: letters, digits, `-` and `_`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn builtin(name: &str) -> Option<Builtin> {
    BUILTINS
        .iter()
        .find(|(_, n, _, _)| *n == name)
        .map(|(b, _, _, _)| *b)
}

/// A prompt file's description and input hint from its front matter (`description:`,
/// `argument-hint:` between `---` lines), else its first line; and the prompt without the
/// front matter.
fn parse_prompt_file(name: &str, text: &str) -> UserCommand {
    let mut description = None;
    let mut hint = None;
    let mut body = text;
    if let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
        && let Some(end) = rest.find("\n---")
    {
        for line in rest[..end].lines() {
            if let Some((key, value)) = line.split_once(':') {
                let value = value.trim().trim_matches('"').to_owned();
                match key.trim() {
                    "description" if !value.is_empty() => description = Some(value),
                    "argument-hint" if !value.is_empty() => hint = Some(value),
                    _ => {}
                }
            }
        }
        let after = &rest[end + 4..];
        body = after.strip_prefix('\n').unwrap_or(after);
    }
    let description = description.unwrap_or_else(|| {
        let first = body
            .lines()
            .map(|l| l.trim().trim_start_matches('#').trim())
            .find(|l| !l.is_empty())
            .unwrap_or("(an empty prompt file)");
        let mut line: String = first.chars().take(100).collect();
        if first.chars().count() > 100 {
            line.push('…');
        }
        line
    });
    let hint = hint.or_else(|| body.contains(ARGUMENTS).then(|| "arguments".to_owned()));
    UserCommand {
        name: name.to_owned(),
        description,
        hint,
        template: body.to_owned(),
    }
}

/// Reads the prompt files `files` (name, open file) of the directory `shown`, of `total` in
/// all, into `commands` (a name already there wins), saying in `problems` what was skipped.
fn read_prompt_files(
    files: Vec<(String, std::fs::File)>,
    total: usize,
    shown: &str,
    commands: &mut Vec<UserCommand>,
    problems: &mut Vec<String>,
) {
    if total > MAX_COMMAND_FILES {
        problems.push(format!(
            "{shown} has {total} prompt files; Punie reads the first {MAX_COMMAND_FILES} (by \
             name) and skipped the other {}: move some elsewhere.",
            total - MAX_COMMAND_FILES
        ));
    }
    for (file_name, file) in files {
        let Some(name) = file_name.strip_suffix(".md") else {
            continue;
        };
        let path = format!("{shown}/{file_name}");
        if !valid_name(name) {
            problems.push(format!(
                "{path} is skipped: a command name may have only letters, digits, `-` and `_` \
                 (at most 64); rename the file."
            ));
            continue;
        }
        if builtin(name).is_some() {
            problems.push(format!(
                "{path} is skipped: /{name} is one of Punie's own commands; rename the file."
            ));
            continue;
        }
        if commands.iter().any(|c| c.name == name) {
            // The project's file came first and wins.
            continue;
        }
        let mut text = String::new();
        let read = file
            .take(MAX_COMMAND_FILE_BYTES + 1)
            .read_to_string(&mut text);
        match read {
            Ok(bytes) if bytes as u64 > MAX_COMMAND_FILE_BYTES => problems.push(format!(
                "{path} is skipped: it is larger than {} KiB, the most a prompt file may be.",
                MAX_COMMAND_FILE_BYTES / 1024
            )),
            Ok(_) => commands.push(parse_prompt_file(name, &text)),
            Err(error) => problems.push(format!(
                "{path} is skipped: it cannot be read as UTF-8 text ({error})."
            )),
        }
    }
}

impl CommandTable {
    /// Reads the project's prompt files (through the workspace's confined walker) and then
    /// the user's, in `user_dir`. Blocking.
    pub(crate) fn load(workspace: &Workspace, user_dir: Option<&Path>) -> Self {
        let mut table = Self::default();
        let project = workspace.root().join(PROJECT_COMMANDS_DIR);
        if project.symlink_metadata().is_ok() {
            let listed = workspace
                .resolve(PROJECT_COMMANDS_DIR)
                .map_err(|e| e.to_string())
                .and_then(|path| Walker::open(workspace.root(), &path).map_err(|e| e.to_string()))
                .and_then(|walker| {
                    walker
                        .files_in(".md", MAX_COMMAND_FILES)
                        .map_err(|e| e.to_string())
                });
            match listed {
                Ok((files, total)) => read_prompt_files(
                    files,
                    total,
                    PROJECT_COMMANDS_DIR,
                    &mut table.user,
                    &mut table.problems,
                ),
                Err(error) => table.problems.push(format!(
                    "The project's prompt files in {PROJECT_COMMANDS_DIR} cannot be read: {error}."
                )),
            }
        }
        if let Some(dir) = user_dir
            && dir.is_dir()
        {
            match user_files(dir) {
                Ok((files, total)) => read_prompt_files(
                    files,
                    total,
                    &dir.display().to_string(),
                    &mut table.user,
                    &mut table.problems,
                ),
                Err(error) => table.problems.push(format!(
                    "Your prompt files in {} cannot be read: {error}.",
                    dir.display()
                )),
            }
        }
        table.user.sort_by(|a, b| a.name.cmp(&b.name));
        table
    }

    /// The commands for the editor's menu: Punie's own, then the prompt files', by name.
    pub(crate) fn infos(&self) -> Vec<CommandInfo> {
        let own = BUILTINS
            .iter()
            .map(|(_, name, description, hint)| CommandInfo {
                name: (*name).to_owned(),
                description: (*description).to_owned(),
                hint: hint.map(str::to_owned),
            });
        let user = self.user.iter().map(|c| CommandInfo {
            name: c.name.clone(),
            description: c.description.clone(),
            hint: c.hint.clone(),
        });
        own.chain(user).collect()
    }

    /// What `prompt` stands for.
    pub(crate) fn resolve(&self, prompt: &str) -> Invocation {
        let Some((name, arguments)) = split_command(prompt) else {
            return Invocation::Model(prompt.to_owned());
        };
        match builtin(name) {
            Some(Builtin::Init) => {
                let mut text = INIT_PROMPT.to_owned();
                if !arguments.is_empty() {
                    text.push_str("\n\nThe user adds: ");
                    text.push_str(arguments);
                }
                return Invocation::Model(text);
            }
            Some(command) => {
                return Invocation::Local {
                    command,
                    arguments: arguments.to_owned(),
                    typed: prompt.trim().to_owned(),
                };
            }
            None => {}
        }
        match self.user.iter().find(|c| c.name == name) {
            Some(command) if command.template.contains(ARGUMENTS) => {
                Invocation::Model(command.template.replace(ARGUMENTS, arguments))
            }
            Some(command) if !arguments.is_empty() => {
                Invocation::Model(format!("{}\n\n{arguments}", command.template.trim_end()))
            }
            Some(command) => Invocation::Model(command.template.clone()),
            None => Invocation::Model(prompt.to_owned()),
        }
    }
}

/// The prompt files of the user's directory `dir`, as [`Walker::files_in`] gives a project's.
fn user_files(dir: &Path) -> std::io::Result<(Vec<(String, std::fs::File)>, usize)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".md"))
        .collect();
    names.sort();
    let total = names.len();
    let mut files = Vec::new();
    for name in names.into_iter().take(MAX_COMMAND_FILES) {
        let path: PathBuf = dir.join(&name);
        files.push((name, std::fs::File::open(path)?));
    }
    Ok((files, total))
}

/// `/tools`: the session's tools by where they come from.
fn tools_text(toolset: &Toolset) -> String {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for tool in toolset.iter() {
        let group = match tool.source() {
            ToolSource::BuiltIn => "Built in".to_owned(),
            ToolSource::Editor => "From the editor's catalog".to_owned(),
            ToolSource::Mcp(server) => format!("From the MCP server `{server}`"),
        };
        let mut line = format!("`{}`", tool.name());
        if tool.needs_permission() {
            line.push_str(" (asks first)");
        }
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, tools)) => tools.push(line),
            None => groups.push((group, vec![line])),
        }
    }
    let count = toolset.iter().count();
    let mut text = format!(
        "This session has {count} tool{}:\n",
        if count == 1 { "" } else { "s" }
    );
    for (group, tools) in groups {
        text.push_str(&format!(
            "\n**{group}** ({}): {}\n",
            tools.len(),
            tools.join(", ")
        ));
    }
    text
}

/// `/context`'s table.
fn context_text(usage: &super::turn::ContextUse) -> String {
    let total = usage.total();
    let percent = u64::from(total) * 100 / u64::from(usage.window.max(1));
    format!(
        "The context window holds about {} of {} tokens ({percent} %), as Punie estimates them \
         (about 3 bytes a token):\n\n\
         | part | tokens |\n|---|---:|\n\
         | system prompt | {} |\n\
         | project instructions | {} |\n\
         | tools ({}, {} descriptions) | {} |\n\
         | conversation ({} messages) | {} |\n\
         | **total** | **{}** of {} |\n\n\
         The model's answer needs room too; when the conversation outgrows the window, Punie \
         compacts it (or run /compact).",
        thousands(total),
        thousands(usage.window),
        thousands(usage.system_prompt),
        thousands(usage.instructions),
        usage.tool_count,
        usage.tools_profile,
        thousands(usage.tools),
        usage.messages,
        thousands(usage.history),
        thousands(total),
        thousands(usage.window),
    )
}

impl Agent {
    /// Reads the session's commands (off the async threads) and tells `events` about them:
    /// always when `force` (the session just opened), else only when they changed since they
    /// were last told. Problems with prompt files are told once, as a notice.
    pub(crate) async fn announce_commands(
        &self,
        session: &Session,
        events: &dyn EventSink,
        force: bool,
    ) -> CommandTable {
        let workspace = session.workspace.clone();
        let user_dir = self.config.user_commands_dir.clone();
        let table = tokio::task::spawn_blocking(move || {
            CommandTable::load(&workspace, user_dir.as_deref())
        })
        .await
        .unwrap_or_default();
        let infos = table.infos();
        let (changed, problems_changed) = session.commands_sent(&infos, &table.problems);
        if changed || force {
            tracing::debug!(session = %session.id, commands = infos.len(), "available commands");
            events.emit(&session.id, TurnEvent::AvailableCommands(infos));
        }
        if problems_changed && !table.problems.is_empty() {
            for problem in &table.problems {
                tracing::warn!(session = %session.id, %problem, "prompt file skipped");
            }
            events.emit(
                &session.id,
                TurnEvent::Notice {
                    title: "Some slash commands are not available".to_owned(),
                    description: table.problems.join(" "),
                },
            );
        }
        table
    }

    /// Runs one of Punie's own commands in the turn `claim` holds, and ends the turn.
    pub(crate) async fn run_command(
        &self,
        claim: TurnClaim,
        command: Builtin,
        arguments: &str,
        typed: &str,
        events: Arc<dyn EventSink>,
    ) -> Result<StopReason, AgentError> {
        let session = claim.session().clone();
        let mut history = claim.history();
        let journal = session.journal().or_else(|| self.start_journal(&session));
        let emit = |text: &str| {
            events.emit(&session.id, TurnEvent::MessageChunk(text.to_owned()));
        };
        let (mode, toolset, withheld) = super::mode_tools(&session);
        let turn = Turn {
            session: &session,
            model: &self.model,
            config: &self.config,
            events: events.clone(),
            cancel: claim.cancel_token().clone(),
            call_counter: &self.call_counter,
            toolset,
            withheld,
            mode,
            observer: self.observer.as_deref(),
        };
        let mut stop = StopReason::EndTurn;
        let mut changed = None;
        let output = match command {
            Builtin::Context => {
                let text = context_text(&turn.context_use(&history).await);
                emit(&text);
                text
            }
            Builtin::Tools => {
                tokio::select! {
                    _ = session.wait_for_tools(TOOLS_LOADING_LIMIT) => {}
                    _ = claim.cancel_token().cancelled() => {}
                }
                let text = tools_text(&session.toolset());
                emit(&text);
                text
            }
            Builtin::Clear => {
                let forgotten = history.len();
                changed = Some(Vec::<Message>::new());
                let text = format!(
                    "Cleared: this session starts over ({forgotten} message{} forgotten). The \
                     model, the tools and your permission answers stay as they were.",
                    if forgotten == 1 { "" } else { "s" }
                );
                emit(&text);
                text
            }
            Builtin::Model => {
                let text = self
                    .model_command(&session, arguments, events.as_ref())
                    .await;
                emit(&text);
                text
            }
            Builtin::Mode => {
                let text = self.mode_command(&session, arguments);
                emit(&text);
                text
            }
            Builtin::Compact => match turn.compact_now(&mut history).await {
                CompactOutcome::Compacted(text) => {
                    changed = Some(history);
                    text
                }
                CompactOutcome::Nothing(text) => {
                    emit(&text);
                    text
                }
                CompactOutcome::Failed(text) => text,
                CompactOutcome::Cancelled => {
                    stop = StopReason::Cancelled;
                    "Cancelled.".to_owned()
                }
            },
            Builtin::Init => unreachable!("/init is a model turn"),
        };
        tracing::info!(session = %session.id, command = typed, "slash command answered");
        if let Some(journal) = &journal {
            journal.command(typed, &output, changed.as_deref());
            super::saved::tell_failure(journal, &session.id, events.as_ref());
            events.emit(
                &session.id,
                TurnEvent::SessionInfo {
                    title: journal.title(),
                    updated_at: journal.updated_at(),
                },
            );
        }
        claim.end(changed);
        Ok(stop)
    }

    /// `/mode [NAME]`: switches to NAME (the pickers follow the session), or shows the modes.
    fn mode_command(&self, session: &Session, name: &str) -> String {
        let current = session.mode();
        if name.is_empty() {
            let listed: Vec<String> = super::Mode::ALL
                .iter()
                .map(|mode| {
                    let using = if *mode == current { " (in use)" } else { "" };
                    format!("- `{}`{using}: {}", mode.id(), mode.description())
                })
                .collect();
            return format!(
                "This session is in {} mode. The modes:\n\n{}\n\nSwitch with /mode NAME.",
                current.id(),
                listed.join("\n")
            );
        }
        match name.parse::<super::Mode>() {
            Ok(mode) if self.set_session_mode(session, mode) => format!(
                "This session is now in {} mode: {}",
                mode.id(),
                mode.description()
            ),
            Ok(mode) => format!("This session is already in {} mode.", mode.id()),
            Err(error) => format!("The mode was not switched: {error}."),
        }
    }

    /// `/model [NAME]`: switches to NAME (the pickers follow), or lists the models.
    async fn model_command(&self, session: &Session, name: &str, events: &dyn EventSink) -> String {
        if name.is_empty() {
            let (current, available) = self.session_models(session).await;
            let current = current.unwrap_or_else(|| "(the server's default)".to_owned());
            if available.is_empty() {
                return format!(
                    "This session uses the model {current}. The server lists no models to \
                     switch to (or Punie cannot switch with this back end)."
                );
            }
            let listed: Vec<String> = available
                .iter()
                .map(|m| {
                    if *m == current {
                        format!("- `{m}` (in use)")
                    } else {
                        format!("- `{m}`")
                    }
                })
                .collect();
            return format!(
                "This session uses the model {current}. The server has:\n\n{}\n\nSwitch with \
                 /model NAME.",
                listed.join("\n")
            );
        }
        match self.set_session_model(session, name).await {
            Ok(()) => {
                let (current, available) = self.session_models(session).await;
                events.emit(
                    &session.id,
                    TurnEvent::ModelSwitched {
                        current: current.unwrap_or_else(|| name.to_owned()),
                        available,
                    },
                );
                format!("This session now uses the model {name}, from the next request on.")
            }
            Err(error) => format!("The model was not switched: {error}."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(files: &[(&str, &str)]) -> CommandTable {
        CommandTable {
            user: files
                .iter()
                .map(|(name, text)| parse_prompt_file(name, text))
                .collect(),
            problems: Vec::new(),
        }
    }

    #[test]
    fn a_prompt_names_a_command_only_with_a_leading_slash_and_a_known_name() {
        let t = table(&[("review", "Review $ARGUMENTS carefully.")]);
        assert_eq!(
            t.resolve("/review src/main.rs and tests"),
            Invocation::Model("Review src/main.rs and tests carefully.".into())
        );
        assert_eq!(
            t.resolve("/clear"),
            Invocation::Local {
                command: Builtin::Clear,
                arguments: String::new(),
                typed: "/clear".into()
            }
        );
        assert_eq!(
            t.resolve("/model  big-one "),
            Invocation::Local {
                command: Builtin::Model,
                arguments: "big-one".into(),
                typed: "/model  big-one".into()
            }
        );
        for as_written in ["/unknown thing", "/usr/bin/env is odd", "no /clear", "/"] {
            assert_eq!(t.resolve(as_written), Invocation::Model(as_written.into()));
        }
        let Invocation::Model(init) = t.resolve("/init stress the tests") else {
            panic!()
        };
        assert!(init.contains("AGENTS.md") && init.ends_with("stress the tests"));
    }

    #[test]
    fn a_prompt_file_gives_its_description_hint_and_arguments() {
        let with_front = parse_prompt_file(
            "fix",
            "---\ndescription: Fix an issue\nargument-hint: issue number\n---\nFix issue $ARGUMENTS.\n",
        );
        assert_eq!(with_front.description, "Fix an issue");
        assert_eq!(with_front.hint.as_deref(), Some("issue number"));
        assert_eq!(with_front.template, "Fix issue $ARGUMENTS.\n");
        let plain = parse_prompt_file("tidy", "# Tidy the imports\n\nSort them.");
        assert_eq!(plain.description, "Tidy the imports");
        assert_eq!(plain.hint, None);
        let t = CommandTable {
            user: vec![plain],
            problems: Vec::new(),
        };
        assert_eq!(
            t.resolve("/tidy only src"),
            Invocation::Model("# Tidy the imports\n\nSort them.\n\nonly src".into())
        );
    }

    #[test]
    fn prompt_files_are_bounded_and_the_project_wins() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("project");
        let commands = root.join(PROJECT_COMMANDS_DIR);
        std::fs::create_dir_all(&commands).unwrap();
        std::fs::write(commands.join("both.md"), "from the project").unwrap();
        std::fs::write(commands.join("clear.md"), "shadowed").unwrap();
        std::fs::write(commands.join("big.md"), "x".repeat(70 * 1024)).unwrap();
        std::fs::write(commands.join("notes.txt"), "not a command").unwrap();
        let user = dir.path().join("user");
        std::fs::create_dir_all(&user).unwrap();
        std::fs::write(user.join("both.md"), "from the user").unwrap();
        std::fs::write(user.join("mine.md"), "mine $ARGUMENTS").unwrap();
        let workspace = crate::workspace::local::local_workspace(
            root,
            crate::workspace::local::LocalOptions::default(),
        )
        .unwrap();
        let t = CommandTable::load(&workspace, Some(&user));
        let names: Vec<&str> = t.user.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["both", "mine"]);
        assert_eq!(
            t.resolve("/both"),
            Invocation::Model("from the project".into())
        );
        assert_eq!(t.problems.len(), 2, "{:?}", t.problems);
        assert!(
            t.problems
                .iter()
                .any(|p| p.contains("big.md") && p.contains("64 KiB"))
        );
        assert!(t.problems.iter().any(|p| p.contains("clear.md")));

        for n in 0..(MAX_COMMAND_FILES + 5) {
            std::fs::write(user.join(format!("c{n:03}.md")), "x").unwrap();
        }
        let t = CommandTable::load(&workspace, Some(&user));
        assert!(
            t.problems
                .iter()
                .any(|p| p.contains(&format!("first {MAX_COMMAND_FILES}"))),
            "{:?}",
            t.problems
        );
    }
}
