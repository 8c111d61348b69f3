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

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstObject, CstRootNode};
use serde_json::Value;

use super::{Cli, startup};

/// Options of `punie init`.
#[derive(Debug, Args)]
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
    model: Option<&'a str>,
}

/// Writes (or shows) the editor configuration.
pub fn run(cli: &Cli, args: &InitArgs) -> anyhow::Result<u8> {
    let editor = if args.zed {
        Editor::Zed
    } else {
        Editor::JetBrains
    };
    let model = Some(cli.model.trim()).filter(|model| !model.is_empty());
    if model.is_some() {
        cli.model_spec()?;
    }
    if cli.name.trim().is_empty() {
        return Err(startup(anyhow::anyhow!("--name cannot be empty")));
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
        name: &cli.name,
        command: &exe,
        model,
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
        eprintln!("(dry run: {} was not changed)", path.display());
        return Ok(0);
    }
    let Merged::Changed(text) = updated else {
        println!(
            "{} is already up to date: {:?} runs {exe}",
            path.display(),
            cli.name
        );
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
    write_atomically(&path, &text, original.as_ref().map(|_| path.as_path()))?;
    match backup {
        Some(backup) => println!(
            "Updated {}: {:?} runs {exe} (the previous file is saved as {})",
            path.display(),
            cli.name,
            backup.display()
        ),
        None => println!("Created {}: {:?} runs {exe}", path.display(), cli.name),
    }
    match editor {
        Editor::JetBrains => println!(
            "Next: in your JetBrains IDE, open the AI chat and pick {:?} in the agent list.",
            cli.name
        ),
        Editor::Zed => println!(
            "Next: in Zed, open the agent panel and start a new {:?} thread.",
            cli.name
        ),
    }
    if model.is_none() {
        println!(
            "No --model given: Punie will use LM Studio's first loaded model (see `punie --help`)."
        );
    }
    Ok(0)
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
    if let Some(model) = entry.model {
        let env = match agent.object_value_or_create("env") {
            Some(env) => env,
            None => {
                let prop = agent.get("env").context("the env vanished")?;
                prop.set_value(CstInputValue::Object(Vec::new()));
                agent.object_value("env").context("the env vanished")?
            }
        };
        set(&env, "PUNIE_MODEL", model);
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

    const ENTRY: Entry<'static> = Entry {
        name: "Punie",
        command: "/usr/bin/punie",
        model: Some("qwen3:8b"),
    };

    fn changed(merged: Merged) -> String {
        match merged {
            Merged::Changed(text) => text,
            Merged::UpToDate(text) => panic!("expected a change, got the same text:\n{text}"),
        }
    }

    #[test]
    fn a_new_file_gets_the_entry() {
        let text = changed(merge(Editor::JetBrains, "", &ENTRY).unwrap());
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"agent_servers": {"Punie": {
                "command": "/usr/bin/punie", "args": [], "env": {"PUNIE_MODEL": "qwen3:8b"}
            }}})
        );
        assert_eq!(
            merge(Editor::JetBrains, &text, &ENTRY).unwrap(),
            Merged::UpToDate(text)
        );
    }

    #[test]
    fn zed_comments_and_other_settings_survive() {
        let text = "// Zed settings\n{\n  \"theme\": \"One Dark\", // mine\n  \"agent_servers\": {\n    \"Other\": {\"command\": \"x\"},\n  },\n}\n";
        let updated = changed(merge(Editor::Zed, text, &ENTRY).unwrap());
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
            merge(Editor::Zed, &updated, &ENTRY).unwrap(),
            Merged::UpToDate(updated)
        );
    }

    #[test]
    fn an_existing_entry_keeps_its_other_settings() {
        let text = r#"{"agent_servers": {"Punie": {"command": "/old/punie", "args": ["-v"], "env": {"PUNIE_LOG": "debug"}}}}"#;
        let updated = changed(merge(Editor::JetBrains, text, &ENTRY).unwrap());
        let value: Value = serde_json::from_str(&updated).unwrap();
        assert_eq!(
            value["agent_servers"]["Punie"],
            serde_json::json!({"command": "/usr/bin/punie", "args": ["-v"], "env": {"PUNIE_LOG": "debug", "PUNIE_MODEL": "qwen3:8b"}})
        );
    }

    #[test]
    fn broken_or_odd_files_are_refused() {
        for text in ["{", "[1, 2]", "{\"agent_servers\": [] }", "// c\n{}"] {
            assert!(merge(Editor::JetBrains, text, &ENTRY).is_err(), "{text}");
        }
        for text in ["{", "[1, 2]", "{\"agent_servers\": 3 }"] {
            assert!(merge(Editor::Zed, text, &ENTRY).is_err(), "{text}");
        }
    }
}
