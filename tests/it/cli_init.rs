//! `punie init`: writes or merges the editor's agent configuration, keeping everything else,
//! with a backup, atomically, idempotently; refuses files it cannot safely edit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

struct Init {
    home: tempfile::TempDir,
    logs: tempfile::TempDir,
}

impl Init {
    fn new() -> Self {
        Self {
            home: tempfile::tempdir().unwrap(),
            logs: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    /// `punie init ARGS` with HOME and XDG_CONFIG_HOME in a temporary directory.
    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_punie"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PUNIE_") {
                command.env_remove(name);
            }
        }
        command
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env("PUNIE_LOG_DIR", self.logs.path())
            .env("PUNIE_STATE_DIR", self.logs.path().join("state"))
            .arg("init")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run punie init")
    }

    fn run_ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "punie init {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

fn punie_path() -> String {
    std::fs::canonicalize(env!("CARGO_BIN_EXE_punie"))
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn creates_the_file_with_the_absolute_path_of_this_executable() {
    let init = Init::new();
    let file = init.path("acp.json");
    let out = init.run_ok(&["--output", arg(&file), "--model", "qwen3:8b"]);
    assert!(out.contains("Created"), "{out}");
    assert_eq!(
        read_json(&file),
        json!({"agent_servers": {"Punie": {
            "command": punie_path(),
            "args": [],
            "env": {"PUNIE_MODEL": "qwen3:8b"},
        }}})
    );
    assert!(!init.path("acp.json.bak").exists(), "nothing to back up");
}

#[test]
fn env_is_written_only_when_a_model_is_given() {
    let init = Init::new();
    let file = init.path("acp.json");
    init.run_ok(&["--output", arg(&file), "--name", "Local Qwen"]);
    assert_eq!(
        read_json(&file),
        json!({"agent_servers": {"Local Qwen": {"command": punie_path(), "args": []}}})
    );
}

#[test]
fn defaults_to_the_jetbrains_file_in_the_home_directory() {
    let init = Init::new();
    init.run_ok(&[]);
    let file = init.path(".jetbrains/acp.json");
    assert_eq!(
        read_json(&file)["agent_servers"]["Punie"]["command"],
        punie_path()
    );
}

#[test]
fn keeps_other_agents_and_unknown_keys_in_order_and_backs_up() {
    let init = Init::new();
    let file = init.path("acp.json");
    let original = r#"{
    "zz_first": {"keep": [1, 2, 3]},
    "agent_servers": {
        "Other agent": {"command": "/opt/other", "args": ["--acp"], "extra": true},
        "Punie": {"command": "/old/punie", "args": [], "env": {"PUNIE_LOG": "debug"}}
    },
    "aa_last": null
}
"#;
    std::fs::write(&file, original).unwrap();
    let out = init.run_ok(&[
        "--output",
        arg(&file),
        "--model",
        "http://localhost:8080/v1/m",
    ]);
    assert!(out.contains("Updated"), "{out}");
    assert_eq!(
        std::fs::read_to_string(init.path("acp.json.bak")).unwrap(),
        original,
        "the backup is the previous file"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["zz_first"], json!({"keep": [1, 2, 3]}));
    assert_eq!(value["aa_last"], Value::Null);
    assert_eq!(
        value["agent_servers"]["Other agent"],
        json!({"command": "/opt/other", "args": ["--acp"], "extra": true})
    );
    assert_eq!(
        value["agent_servers"]["Punie"],
        json!({"command": punie_path(), "args": [], "env": {
            "PUNIE_LOG": "debug", "PUNIE_MODEL": "http://localhost:8080/v1/m"
        }})
    );
    let order: Vec<usize> = ["zz_first", "agent_servers", "Other agent", "aa_last"]
        .iter()
        .map(|key| text.find(key).unwrap())
        .collect();
    assert!(order.is_sorted(), "key order kept:\n{text}");
    assert!(
        text.contains("\n    \"zz_first\""),
        "indentation kept:\n{text}"
    );
}

#[test]
fn running_twice_changes_nothing_the_second_time() {
    let init = Init::new();
    let file = init.path("acp.json");
    std::fs::write(&file, "{\"other\": 1}\n").unwrap();
    init.run_ok(&["--output", arg(&file), "--model", "m"]);
    let first = std::fs::read(&file).unwrap();
    let backup = std::fs::read(init.path("acp.json.bak")).unwrap();
    let out = init.run_ok(&["--output", arg(&file), "--model", "m"]);
    assert!(out.contains("already up to date"), "{out}");
    assert_eq!(std::fs::read(&file).unwrap(), first);
    assert_eq!(
        std::fs::read(init.path("acp.json.bak")).unwrap(),
        backup,
        "the backup of the real previous file is kept"
    );
}

#[test]
fn refuses_files_it_cannot_edit_safely_and_leaves_them_untouched() {
    let init = Init::new();
    for (name, content, reason) in [
        (
            "broken.json",
            "{\"agent_servers\": {\"A\": {",
            "not valid JSON",
        ),
        ("comments.json", "// mine\n{}\n", "not valid JSON"),
        ("array.json", "[1, 2]\n", "not a JSON object"),
        (
            "servers.json",
            "{\"agent_servers\": [\"x\"]}\n",
            "agent_servers",
        ),
    ] {
        let file = init.path(name);
        std::fs::write(&file, content).unwrap();
        let output = init.run(&["--output", arg(&file)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(reason), "{name}: {stderr}");
        assert!(stderr.contains("left as it was"), "{name}: {stderr}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), content, "{name}");
        assert!(!init.path(&format!("{name}.bak")).exists(), "{name}");
    }
}

#[test]
fn dry_run_prints_the_result_and_writes_nothing() {
    let init = Init::new();
    let file = init.path("acp.json");
    let out = init.run_ok(&["--output", arg(&file), "--model", "m", "--dry-run"]);
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["agent_servers"]["Punie"]["env"]["PUNIE_MODEL"], "m");
    assert!(!file.exists());

    std::fs::write(&file, "{\"other\": true}").unwrap();
    let out = init.run_ok(&["--output", arg(&file), "--dry-run"]);
    let printed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["other"], true);
    assert_eq!(printed["agent_servers"]["Punie"]["command"], punie_path());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "{\"other\": true}");
    assert!(!init.path("acp.json.bak").exists());
}

#[test]
fn zed_settings_keep_comments_and_trailing_commas() {
    let init = Init::new();
    let file = init.path("settings.json");
    let original = "// Zed settings\n//\n// For information on how to configure Zed, see the Zed docs.\n{\n  \"ui_font_size\": 16, // big\n  \"agent_servers\": {\n    \"Other\": { \"command\": \"other\", },\n  },\n}\n";
    std::fs::write(&file, original).unwrap();
    init.run_ok(&["--zed", "--output", arg(&file), "--model", "qwen3:8b"]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("// Zed settings\n//\n// For information"),
        "{text}"
    );
    assert!(text.contains("\"ui_font_size\": 16, // big"), "{text}");
    assert!(
        text.contains("\"Other\": { \"command\": \"other\", },"),
        "{text}"
    );
    let root = jsonc_parser::cst::CstRootNode::parse(&text, &Default::default()).unwrap();
    let value = root.to_serde_value().unwrap();
    assert_eq!(
        value["agent_servers"]["Punie"],
        json!({"type": "custom", "command": punie_path(), "args": [], "env": {"PUNIE_MODEL": "qwen3:8b"}})
    );
    assert_eq!(
        std::fs::read_to_string(init.path("settings.json.bak")).unwrap(),
        original
    );
    let out = init.run_ok(&["--zed", "--output", arg(&file), "--model", "qwen3:8b"]);
    assert!(out.contains("already up to date"), "{out}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}

#[test]
fn zed_refuses_a_broken_settings_file() {
    let init = Init::new();
    let file = init.path("settings.json");
    let content = "{\n  \"theme\": \"One\" \"oops\n";
    std::fs::write(&file, content).unwrap();
    let output = init.run(&["--zed", "--output", arg(&file)]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("comments"), "says JSONC is fine: {stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), content);
}

#[cfg(target_os = "linux")]
#[test]
fn zed_defaults_to_the_xdg_config_directory() {
    let init = Init::new();
    init.run_ok(&["--zed"]);
    let file = init.path("config/zed/settings.json");
    assert_eq!(read_json(&file)["agent_servers"]["Punie"]["type"], "custom");
}

#[cfg(unix)]
#[test]
fn a_symlinked_settings_file_stays_a_symlink() {
    let init = Init::new();
    let real = init.path("dotfiles-settings.json");
    std::fs::write(&real, "{}\n").unwrap();
    let link = init.path("settings.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    init.run_ok(&["--zed", "--output", arg(&link)]);
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(read_json(&real)["agent_servers"]["Punie"]["type"], "custom");
}

/// The same keys at every level (values may differ).
fn same_shape(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let mut a_keys: Vec<_> = a.keys().collect();
            let mut b_keys: Vec<_> = b.keys().collect();
            a_keys.sort();
            b_keys.sort();
            assert_eq!(a_keys, b_keys, "keys at {at}");
            for (key, value) in a {
                same_shape(value, &b[key], &format!("{at}.{key}"));
            }
        }
        (Value::Array(_), Value::Array(_)) => {}
        (a, b) => assert_eq!(
            std::mem::discriminant(a),
            std::mem::discriminant(b),
            "type at {at}"
        ),
    }
}

#[test]
fn the_example_in_the_repository_matches_what_init_writes() {
    let init = Init::new();
    let file = init.path("acp.json");
    init.run_ok(&["--output", arg(&file), "--model", "qwen/qwen3-coder-30b"]);
    let example = read_json(&Path::new(env!("CARGO_MANIFEST_DIR")).join("acp.json.example"));
    same_shape(&example, &read_json(&file), "$");
}

#[test]
fn init_says_what_it_stored_and_how_the_api_key_reaches_punie_on_every_path() {
    let init = Init::new();
    let file = init.path("acp.json");
    let config = init.path("punie.toml");
    std::fs::write(
        &config,
        "[models.coder]\nbase_url = \"http://127.0.0.1:9/v1\"\n",
    )
    .unwrap();
    let args = [
        "--output",
        arg(&file),
        "--model",
        "coder",
        "--config",
        arg(&config),
    ];
    let written = init.run_ok(&args);
    let again = init.run_ok(&args);
    let output = init.run(&[&args[..], &["--dry-run"]].concat());
    assert!(output.status.success(), "{output:?}");
    let dry_run = String::from_utf8(output.stderr).unwrap();
    assert!(written.starts_with("Created"), "{written}");
    assert!(again.contains("already up to date"), "{again}");
    assert!(dry_run.contains("dry run"), "{dry_run}");
    for report in [&written, &again, &dry_run] {
        for line in [
            format!("agent_servers.\"Punie\" in {}", file.display()),
            format!("command  {} (this punie)", punie_path()),
            "args     []".to_owned(),
            "env      PUNIE_MODEL=coder (from --model)".to_owned(),
            format!("env      PUNIE_CONFIG={} (from --config)", config.display()),
            "API key: none is written to the file".to_owned(),
            "export PUNIE_API_KEY where the editor is started".to_owned(),
        ] {
            assert!(report.contains(&line), "{line:?} in:\n{report}");
        }
        assert!(!report.contains("No --model given"), "{report}");
    }
    assert_eq!(
        read_json(&file)["agent_servers"]["Punie"]["env"],
        json!({"PUNIE_MODEL": "coder", "PUNIE_CONFIG": arg(&config)})
    );
}

#[test]
fn a_key_already_in_the_entry_is_kept_hidden_and_reported_as_plain_text() {
    let init = Init::new();
    let file = init.path("acp.json");
    std::fs::write(
        &file,
        r#"{"agent_servers": {"Punie": {"command": "/old/punie", "args": ["--log-level", "debug"], "env": {"PUNIE_API_KEY": "sk-very-secret", "PUNIE_LOG": "debug"}}}}"#,
    )
    .unwrap();
    let out = init.run_ok(&["--output", arg(&file)]);
    assert!(!out.contains("sk-very-secret"), "{out}");
    assert!(
        out.contains("PUNIE_API_KEY=(a secret, not shown) (already there, kept)"),
        "{out}"
    );
    assert!(
        out.contains("PUNIE_LOG=debug (already there, kept)"),
        "{out}"
    );
    assert!(out.contains("in plain text"), "{out}");
    assert!(out.contains(r#"args     ["--log-level","debug"]"#), "{out}");
    assert!(!out.contains("warning"), "these args parse: {out}");
    assert_eq!(
        read_json(&file)["agent_servers"]["Punie"]["env"]["PUNIE_API_KEY"],
        "sk-very-secret"
    );

    // Args that plain `punie` refuses are pointed out (and kept: they are the person's).
    std::fs::write(
        &file,
        r#"{"agent_servers": {"Punie": {"command": "/old/punie", "args": ["--workspace", "x"]}}}"#,
    )
    .unwrap();
    let out = init.run_ok(&["--output", arg(&file)]);
    assert!(
        out.contains("warning: plain `punie` refuses these args"),
        "{out}"
    );
    assert!(out.contains("--workspace"), "{out}");
}

#[test]
fn the_entry_init_writes_starts_punie() {
    let init = Init::new();
    let file = init.path("acp.json");
    let config = init.path("punie.toml");
    std::fs::write(
        &config,
        "[models.coder]\nbase_url = \"http://127.0.0.1:9/v1\"\n",
    )
    .unwrap();
    init.run_ok(&[
        "--output",
        arg(&file),
        "--model",
        "coder",
        "--config",
        arg(&config),
    ]);
    let entry = &read_json(&file)["agent_servers"]["Punie"];
    // As the editor does: the command, its args, its env; stdin closes at once here.
    let mut command = Command::new(entry["command"].as_str().unwrap());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PUNIE_") {
            command.env_remove(name);
        }
    }
    for arg in entry["args"].as_array().unwrap() {
        command.arg(arg.as_str().unwrap());
    }
    for (name, value) in entry["env"].as_object().unwrap() {
        command.env(name, value.as_str().unwrap());
    }
    let output = command
        .current_dir(init.home.path())
        .env("HOME", init.home.path())
        .env("PUNIE_LOG_DIR", init.logs.path())
        .env("PUNIE_STATE_DIR", init.logs.path().join("state"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(output.stdout.is_empty(), "{output:?}");
    let log = crate::support::served::log_text(init.logs.path());
    assert!(
        log.contains("entry=coder"),
        "the config entry was used: {log}"
    );
}
