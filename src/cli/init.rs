//! `punie init`: adds Punie to the editor's agent configuration.
//!
//! JetBrains IDEs read `~/.jetbrains/acp.json` (plain JSON); Zed reads its `settings.json`
//! (JSON with comments and trailing commas). Either way the file is edited in place through a
//! concrete syntax tree: only `agent_servers.<name>` changes, and every other agent, key,
//! comment and the layout stay as they were. The previous file is kept as `<file>.bak`, the new
//! one is written atomically (temporary file in the same directory, then rename), and running
//! `init` twice changes nothing the second time.
//!
//! A file that cannot be parsed, or whose root or `agent_servers` is not an object, is refused
//! and left untouched.
//!
//! Whatever the outcome (written, already up to date, `--dry-run`), `init` then says what the
//! entry holds and where each value came from, and how the API key reaches Punie: never through
//! the file (`init` takes no key), but through the environment the editor starts Punie with.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Parser};
use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstObject, CstRootNode};
use serde_json::Value;

use super::options::ModelArgs;
use super::{Cli, startup};

/// What `punie init --help` ends with: what the entry stores, and what it never does.
const STORED: &str = "The entry agent_servers.NAME gets `command` (this punie's absolute path) \
and `args` ([] when new), and in its `env`: PUNIE_MODEL from --model, PUNIE_CONFIG from --config; \
the rest of an existing entry is kept. No API key is written: the editor starts Punie with its \
own environment, so export PUNIE_API_KEY where the editor is started (or name a variable with \
api_key_env in a config.toml entry).";

/// Options of `punie init`.
#[derive(Debug, Args)]
#[command(after_help = STORED)]
pub struct InitArgs {
    /// Configure Zed (its settings.json) instead of JetBrains IDEs (~/.jetbrains/acp.json).
    #[arg(long)]
    pub zed: bool,

    /// The file to write (default: ~/.jetbrains/acp.json, or Zed's settings.json with --zed).
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Print the resulting file to stdout instead of writing it.
    #[arg(long)]
    pub dry_run: bool,

    /// The entry's key in the editor's configuration: the name the editor lists the agent
    /// under.
    #[arg(long, default_value = "Punie", value_name = "NAME")]
    pub name: String,

    /// The model the editor's Punie uses (stored as PUNIE_MODEL), and the config file that may
    /// name it (stored as PUNIE_CONFIG).
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Which editor's file is edited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Editor {
    JetBrains,
    Zed,
}

impl Editor {
    fn file_kind(self) -> &'static str {
        match self {
            Self::JetBrains => "valid JSON",
            Self::Zed => "valid JSON (comments and trailing commas allowed)",
        }
    }
}

/// What the entry should say.
struct Entry<'a> {
    name: &'a str,
    command: &'a str,
    /// Variables set in the entry's `env`: name, value, and the option it came from.
    env: Vec<(&'static str, String, &'static str)>,
}

/// Writes (or shows) the editor configuration.
pub fn run(args: &InitArgs) -> anyhow::Result<u8> {
    let editor = if args.zed {
        Editor::Zed
    } else {
        Editor::JetBrains
    };
    let name = args.name.as_str();
    if name.trim().is_empty() {
        return Err(startup(anyhow::anyhow!("--name cannot be empty")));
    }
    let mut env = Vec::new();
    let model = args.model.model.trim();
    if !model.is_empty() {
        // Checked now, with the config file the editor's Punie will read.
        args.model.model_spec()?;
        env.push(("PUNIE_MODEL", model.to_owned(), "--model"));
    }
    if let Some(config) = &args.model.config {
        // The editor starts Punie in a directory of its choosing: the path must be absolute.
        let config = std::path::absolute(config)
            .with_context(|| format!("cannot make {} absolute", config.display()))?;
        let config = config
            .to_str()
            .context("the --config path is not valid UTF-8")?
            .to_owned();
        env.push(("PUNIE_CONFIG", config, "--config"));
    }
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .context("cannot find the path of this punie executable")?;
    let exe = exe
        .to_str()
        .context("the path of this punie executable is not valid UTF-8")?
        .to_owned();
    let path = match &args.output {
        Some(path) => path.clone(),
        None => default_path(editor).map_err(startup)?,
    };
    // Edit what a symlink points to (dotfile managers link settings files), not the link.
    let path = match std::fs::canonicalize(&path) {
        Ok(real) => real,
        Err(_) => path,
    };
    let original = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => {
            return Err(
                anyhow::Error::new(error).context(format!("cannot read {}", path.display()))
            );
        }
    };
    let entry = Entry {
        name,
        command: &exe,
        env,
    };
    let updated = merge(editor, original.as_deref().unwrap_or(""), &entry).map_err(|error| {
        startup(anyhow::anyhow!(
            "refusing to change {}: {error:#}; the file was left as it was",
            path.display()
        ))
    })?;

    if args.dry_run {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(updated.text().as_bytes())?;
        stdout.flush()?;
        let mut stderr = std::io::stderr().lock();
        writeln!(stderr, "(dry run: {} was not changed)", path.display())?;
        report(&mut stderr, &path, updated.text(), &entry)?;
        return Ok(0);
    }
    let mut out = std::io::stdout().lock();
    let Merged::Changed(text) = &updated else {
        writeln!(
            out,
            "{} is already up to date: {name:?} runs {exe}",
            path.display()
        )?;
        report(&mut out, &path, updated.text(), &entry)?;
        return Ok(0);
    };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    let backup = match &original {
        Some(previous) => {
            let backup = backup_path(&path);
            write_atomically(&backup, previous, Some(&path))?;
            Some(backup)
        }
        None => None,
    };
    write_atomically(&path, text, original.as_ref().map(|_| path.as_path()))?;
    match backup {
        Some(backup) => writeln!(
            out,
            "Updated {}: {name:?} runs {exe} (the previous file is saved as {})",
            path.display(),
            backup.display()
        )?,
        None => writeln!(out, "Created {}: {name:?} runs {exe}", path.display())?,
    }
    report(&mut out, &path, text, &entry)?;
    match editor {
        Editor::JetBrains => writeln!(
            out,
            "Next: in your JetBrains IDE, open the AI chat and pick {name:?} in the agent list."
        )?,
        Editor::Zed => writeln!(
            out,
            "Next: in Zed, open the agent panel and start a new {name:?} thread."
        )?,
    }
    Ok(0)
}

/// Says what the entry in `text` (the file as written, or as it would be) holds and where each
/// value came from, and how the API key reaches Punie.
fn report(out: &mut dyn Write, path: &Path, text: &str, entry: &Entry<'_>) -> anyhow::Result<()> {
    let root = CstRootNode::parse(text, &ParseOptions::default())
        .map_err(|error| anyhow::anyhow!("cannot read the entry back: {error}"))?
        .to_serde_value()
        .unwrap_or_default();
    let stored = &root["agent_servers"][entry.name];
    writeln!(
        out,
        "The entry agent_servers.{:?} in {} holds:",
        entry.name,
        path.display()
    )?;
    writeln!(out, "  command  {} (this punie)", entry.command)?;
    let args = stored
        .get("args")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    writeln!(out, "  args     {args}")?;
    let args: Vec<String> = args
        .as_array()
        .map(|args| {
            args.iter()
                .map(|arg| arg.as_str().map_or_else(|| arg.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    // What the editor will run must parse: an entry's own args are kept as they were.
    if let Err(error) = Cli::try_parse_from(std::iter::once("punie".to_owned()).chain(args)) {
        let first = error.to_string();
        let first = first.lines().next().unwrap_or_default();
        writeln!(
            out,
            "  warning: plain `punie` refuses these args ({first}): fix them in {}",
            path.display()
        )?;
    }
    let env = stored.get("env").and_then(Value::as_object);
    let mut has_key = false;
    for (name, value) in env.into_iter().flatten() {
        let set_by = entry
            .env
            .iter()
            .find(|(set, _, _)| set == name)
            .map(|(_, _, option)| *option);
        let secret = ["KEY", "TOKEN", "SECRET", "PASSWORD"]
            .iter()
            .any(|word| name.to_ascii_uppercase().contains(word));
        has_key |= name == "PUNIE_API_KEY";
        let shown = match (secret, value.as_str()) {
            (true, _) => "(a secret, not shown)".to_owned(),
            (false, Some(text)) => text.to_owned(),
            (false, None) => value.to_string(),
        };
        let from = match set_by {
            Some(option) => format!("from {option}"),
            None => "already there, kept".to_owned(),
        };
        writeln!(out, "  env      {name}={shown} ({from})")?;
    }
    if !env.is_some_and(|env| env.contains_key("PUNIE_MODEL")) {
        writeln!(
            out,
            "No --model given: Punie will use LM Studio's first loaded model (see `punie --help`)."
        )?;
    }
    if has_key {
        writeln!(
            out,
            "API key: PUNIE_API_KEY is written in {} in plain text (it was there already; init \
             kept it):\n  anyone who can read the file can read the key. To keep it out, remove \
             it there and export\n  PUNIE_API_KEY where the editor is started.",
            path.display()
        )?;
    } else {
        writeln!(
            out,
            "API key: none is written to the file. The editor starts Punie with its own \
             environment:\n  export PUNIE_API_KEY where the editor is started, or name a \
             variable with api_key_env in a\n  config.toml entry.{}",
            if std::env::var_os("PUNIE_API_KEY").is_some() {
                " PUNIE_API_KEY is set in this shell: an editor started from it passes it on."
            } else {
                ""
            }
        )?;
    }
    Ok(())
}

/// The file the editor reads.
fn default_path(editor: Editor) -> anyhow::Result<PathBuf> {
    let dirs = directories::BaseDirs::new()
        .context("cannot find your home directory: pass --output PATH")?;
    Ok(match editor {
        Editor::JetBrains => dirs.home_dir().join(".jetbrains").join("acp.json"),
        // Zed keeps its settings in ~/.config/zed on macOS too, and follows XDG on Linux.
        Editor::Zed if cfg!(target_os = "macos") => {
            dirs.home_dir().join(".config/zed/settings.json")
        }
        Editor::Zed if cfg!(windows) => dirs.config_dir().join("Zed").join("settings.json"),
        Editor::Zed => dirs.config_dir().join("zed").join("settings.json"),
    })
}

fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".bak");
    path.with_file_name(name)
}

/// The outcome of merging the entry into a file.
#[derive(Debug, PartialEq)]
enum Merged {
    /// The file already says it; its text, unchanged.
    UpToDate(String),
    /// The new text.
    Changed(String),
}

impl Merged {
    fn text(&self) -> &str {
        match self {
            Self::UpToDate(text) | Self::Changed(text) => text,
        }
    }
}

/// Sets `agent_servers.<name>` in `text` (empty for a new file), keeping everything else.
fn merge(editor: Editor, text: &str, entry: &Entry<'_>) -> anyhow::Result<Merged> {
    if editor == Editor::JetBrains && !text.trim().is_empty() {
        serde_json::from_str::<Value>(text)
            .map_err(|e| anyhow::anyhow!("it is not {} ({e})", editor.file_kind()))?;
    }
    let root = CstRootNode::parse(text, &ParseOptions::default())
        .map_err(|e| anyhow::anyhow!("it is not {} ({e})", editor.file_kind()))?;
    let before = root.to_serde_value();
    let Some(object) = root.object_value_or_create() else {
        bail!("its top level is not a JSON object");
    };
    let Some(servers) = object.object_value_or_create("agent_servers") else {
        bail!("its \"agent_servers\" is not a JSON object");
    };
    let agent = match servers.object_value_or_create(entry.name) {
        Some(agent) => agent,
        None => {
            // Not an object (e.g. null): replace it whole.
            let prop = servers.get(entry.name).context("the entry vanished")?;
            prop.set_value(CstInputValue::Object(Vec::new()));
            servers
                .object_value(entry.name)
                .context("the entry vanished")?
        }
    };
    if editor == Editor::Zed {
        match agent.get("type") {
            Some(_) => set(&agent, "type", "custom"),
            // First, as Zed's documentation writes it.
            None => {
                agent.insert(0, "type", "custom".into());
            }
        }
    }
    set(&agent, "command", entry.command);
    if agent.get("args").is_none() {
        agent.append("args", CstInputValue::Array(Vec::new()));
    }
    if !entry.env.is_empty() {
        let env = match agent.object_value_or_create("env") {
            Some(env) => env,
            None => {
                let prop = agent.get("env").context("the env vanished")?;
                prop.set_value(CstInputValue::Object(Vec::new()));
                agent.object_value("env").context("the env vanished")?
            }
        };
        for (name, value, _) in &entry.env {
            set(&env, name, value);
        }
    }
    let after = root.to_serde_value();
    if before.is_some() && before == after {
        return Ok(Merged::UpToDate(text.to_owned()));
    }
    let mut updated = root.to_string();
    if !updated.ends_with('\n') {
        updated.push('\n');
    }
    Ok(Merged::Changed(updated))
}

/// Sets a string property, appending it when missing.
fn set(object: &CstObject, name: &str, value: &str) {
    match object.get(name) {
        Some(prop) => {
            if prop.value().and_then(|v| v.to_serde_value()) != Some(Value::from(value)) {
                prop.set_value(value.into());
            }
        }
        None => {
            object.append(name, value.into());
        }
    }
}

/// Writes `text` to `path` through a temporary file in the same directory renamed into place,
/// with the permissions of `like` when given (so a private settings file stays private).
fn write_atomically(path: &Path, text: &str, like: Option<&Path>) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let context = || format!("cannot write {}", path.display());
    let mut file = tempfile::NamedTempFile::new_in(dir).with_context(context)?;
    file.write_all(text.as_bytes()).with_context(context)?;
    file.as_file().sync_all().with_context(context)?;
    let permissions = match like.map(std::fs::metadata) {
        Some(Ok(metadata)) => Some(metadata.permissions()),
        _ => default_permissions(),
    };
    if let Some(permissions) = permissions {
        file.as_file()
            .set_permissions(permissions)
            .with_context(context)?;
    }
    file.persist(path)
        .map_err(|e| e.error)
        .with_context(context)?;
    Ok(())
}

/// New files are readable by everyone, like any file a text editor would create (the temporary
/// file starts private).
fn default_permissions() -> Option<std::fs::Permissions> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Some(std::fs::Permissions::from_mode(0o644))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry<'static> {
        Entry {
            name: "Punie",
            command: "/usr/bin/punie",
            env: vec![("PUNIE_MODEL", "qwen3:8b".to_owned(), "--model")],
        }
    }

    fn changed(merged: Merged) -> String {
        match merged {
            Merged::Changed(text) => text,
            Merged::UpToDate(text) => panic!("expected a change, got the same text:\n{text}"),
        }
    }

    #[test]
    fn a_new_file_gets_the_entry() {
        let text = changed(merge(Editor::JetBrains, "", &entry()).unwrap());
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"agent_servers": {"Punie": {
                "command": "/usr/bin/punie", "args": [], "env": {"PUNIE_MODEL": "qwen3:8b"}
            }}})
        );
        assert_eq!(
            merge(Editor::JetBrains, &text, &entry()).unwrap(),
            Merged::UpToDate(text)
        );
    }

    #[test]
    fn zed_comments_and_other_settings_survive() {
        let text = "// Zed settings\n{\n  \"theme\": \"One Dark\", // mine\n  \"agent_servers\": {\n    \"Other\": {\"command\": \"x\"},\n  },\n}\n";
        let updated = changed(merge(Editor::Zed, text, &entry()).unwrap());
        assert!(updated.starts_with("// Zed settings\n"), "{updated}");
        assert!(
            updated.contains("\"theme\": \"One Dark\", // mine"),
            "{updated}"
        );
        assert!(
            updated.contains("\"Other\": {\"command\": \"x\"},"),
            "{updated}"
        );
        assert!(updated.contains("\"type\": \"custom\""), "{updated}");
        assert_eq!(
            merge(Editor::Zed, &updated, &entry()).unwrap(),
            Merged::UpToDate(updated)
        );
    }

    #[test]
    fn an_existing_entry_keeps_its_other_settings() {
        let text = r#"{"agent_servers": {"Punie": {"command": "/old/punie", "args": ["-v"], "env": {"PUNIE_LOG": "debug"}}}}"#;
        let updated = changed(merge(Editor::JetBrains, text, &entry()).unwrap());
        let value: Value = serde_json::from_str(&updated).unwrap();
        assert_eq!(
            value["agent_servers"]["Punie"],
            serde_json::json!({"command": "/usr/bin/punie", "args": ["-v"], "env": {"PUNIE_LOG": "debug", "PUNIE_MODEL": "qwen3:8b"}})
        );
    }

    #[test]
    fn broken_or_odd_files_are_refused() {
        for text in ["{", "[1, 2]", "{\"agent_servers\": [] }", "// c\n{}"] {
            assert!(merge(Editor::JetBrains, text, &entry()).is_err(), "{text}");
        }
        for text in ["{", "[1, 2]", "{\"agent_servers\": 3 }"] {
            assert!(merge(Editor::Zed, text, &entry()).is_err(), "{text}");
        }
    }
}
