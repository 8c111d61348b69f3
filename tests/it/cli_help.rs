//! The command line as a person sees it: `--help` and `--version` (snapshots in
//! `tests/snapshots/`; run with `UPDATE_SNAPSHOTS=1` to rewrite them after a deliberate
//! change), invalid options refused before any protocol starts, environment fallbacks.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::support::snapshot::assert_snapshot;

/// `punie ARGS` with no inherited `PUNIE_*` settings, stdin closed, a fixed help width, HOME in
/// a scratch directory (nothing may touch the real editor configuration) and the logs in
/// `logs`. Help exits before logging starts: pass `None` there, so that help shows no
/// environment value.
fn punie(args: &[&str], env: &[(&str, &str)], logs: Option<&Path>) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_punie"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PUNIE_") {
            command.env_remove(name);
        }
    }
    if let Some(logs) = logs {
        command.env("PUNIE_LOG_DIR", logs);
    }
    command
        .env_remove("COLUMNS")
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_STATE_HOME", home.path().join("state"))
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run punie")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_matches_the_snapshots() {
    for (name, args) in [
        ("help", vec!["--help"]),
        ("help_short", vec!["-h"]),
        ("help_serve", vec!["serve", "--help"]),
        ("help_init", vec!["init", "--help"]),
        ("help_ask", vec!["ask", "--help"]),
        ("help_doctor", vec!["doctor", "--help"]),
        ("help_sessions", vec!["sessions", "--help"]),
        ("help_sessions_list", vec!["sessions", "list", "--help"]),
        ("help_stdio", vec!["stdio", "--help"]),
    ] {
        let output = punie(&args, &[], None);
        assert!(output.status.success(), "{name}: {output:?}");
        assert_eq!(text(&output.stderr), "", "{name}");
        assert_snapshot(name, &text(&output.stdout));
    }
}

#[test]
fn version_names_the_package_version() {
    let output = punie(&["--version"], &[], None);
    assert!(output.status.success());
    assert_eq!(
        text(&output.stdout),
        format!("punie {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_shows_every_environment_fallback_and_hides_secrets() {
    let output = punie(
        &["serve", "--help"],
        &[
            ("PUNIE_API_KEY", "sk-very-secret"),
            ("PUNIE_SERVE_TOKEN", "token-very-secret"),
        ],
        None,
    );
    // Wrapping may cut `[env: NAME]` in two.
    let help = text(&output.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for env in [
        "PUNIE_MODEL",
        "PUNIE_API_KEY",
        "PUNIE_LOG_DIR",
        "PUNIE_LOG",
        "PUNIE_PERF",
        "PUNIE_NO_LANDLOCK",
        "PUNIE_SERVE_TOKEN",
    ] {
        assert!(help.contains(&format!("[env: {env}")), "{env} in\n{help}");
    }
    assert!(!help.contains("very-secret"), "{help}");
    assert!(help.contains("HTML/JSON reports"), "{help}");
    let ask = text(&punie(&["ask", "--help"], &[], None).stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(ask.contains("[env: PUNIE_APPROVE"), "{ask}");
}

#[test]
fn invalid_options_fail_before_any_protocol_output() {
    let logs = tempfile::tempdir().unwrap();
    for (args, env, needle) in [
        (vec!["--bogus"], vec![], "--bogus"),
        (
            vec!["--max-turn-requests", "0"],
            vec![],
            "max-turn-requests",
        ),
        (vec!["--log-level", "notafilter"], vec![], "notafilter"),
        (vec![], vec![("PUNIE_LOG", "notafilter")], "notafilter"),
        (vec![], vec![("PUNIE_PERF", "perhaps")], "perf"),
        (
            vec![],
            vec![("PUNIE_NO_LANDLOCK", "perhaps")],
            "no-landlock",
        ),
        (
            vec!["ask", "--approve", "maybe", "hi"],
            vec![],
            "none, edits or all",
        ),
        (
            vec!["ask", "hi"],
            vec![("PUNIE_APPROVE", "maybe")],
            "none, edits or all",
        ),
        (vec!["serve", "--port", "99999"], vec![], "99999"),
        (vec!["nonsense"], vec![], "nonsense"),
    ] {
        let output = punie(&args, &env, Some(logs.path()));
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert_eq!(
            text(&output.stdout),
            "",
            "{args:?} {env:?}: nothing on stdout"
        );
        assert!(stderr.contains(needle), "{args:?} {env:?}: {stderr}");
    }
}

#[test]
fn a_bad_model_spec_is_a_start_up_error() {
    let logs = tempfile::tempdir().unwrap();
    let output = punie(
        &[],
        &[("PUNIE_MODEL", "ftp://example/v1/x")],
        Some(logs.path()),
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert_eq!(text(&output.stdout), "");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("PUNIE_MODEL"), "{stderr}");
    assert!(stderr.contains("ftp"), "{stderr}");
}

#[test]
fn an_unusable_log_directory_is_a_start_up_error() {
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let output = punie(&[], &[], Some(&file.join("logs")));
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert_eq!(text(&output.stdout), "");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("log directory"), "{stderr}");
}

#[test]
fn plain_punie_logs_to_the_log_dir_and_exits_cleanly_on_stdin_eof() {
    let logs = tempfile::tempdir().unwrap();
    let output = punie(&["--log-level", "debug"], &[], Some(logs.path()));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(text(&output.stdout), "", "stdout carries only the protocol");
    let mut log = String::new();
    for entry in std::fs::read_dir(logs.path()).unwrap() {
        log.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    assert!(log.contains("punie starting"), "{log}");
    assert!(log.contains("punie exiting"), "flushed on exit: {log}");
}

#[test]
fn an_option_is_refused_by_the_subcommands_it_does_nothing_for() {
    let logs = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (vec!["ask", "--name", "Mine", "hi"], "'--name'"),
        (vec!["init", "--api-key", "K"], "'--api-key'"),
        (vec!["init", "--log-level", "debug"], "'--log-level'"),
        (vec!["init", "--no-landlock"], "'--no-landlock'"),
        (vec!["init", "--perf-dir", "/tmp"], "'--perf-dir'"),
        (
            vec!["init", "--max-turn-requests", "3"],
            "'--max-turn-requests'",
        ),
        (vec!["doctor", "--no-landlock"], "'--no-landlock'"),
        (vec!["doctor", "--perf"], "'--perf'"),
        (vec!["ask", "--max-sessions", "3", "hi"], "'--max-sessions'"),
        (vec!["sessions", "list", "--model", "m"], "'--model'"),
        // Before the subcommand, an option would be read for plain `punie` and lost.
        (vec!["--model", "m", "ask", "hi"], "cannot be used with"),
        (vec!["--log-level", "debug", "init"], "cannot be used with"),
    ] {
        let output = punie(&args, &[], Some(logs.path()));
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(text(&output.stdout), "", "{args:?}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(stderr.contains("Usage: punie"), "{args:?}: {stderr}");
    }
}

#[test]
fn the_invocations_people_and_editors_use_still_work() {
    let logs = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let state = scratch.path().join("state");
    let state = state.to_str().unwrap();
    let perf = scratch.path().to_str().unwrap();
    for args in [
        // What an editor entry's args may say: every option plain `punie` ever took.
        vec![
            "--model",
            "http://127.0.0.1:9/v1/m",
            "--api-key",
            "K",
            "--name",
            "Mine",
            "--log-level",
            "debug",
            "--no-landlock",
            "--max-turn-requests",
            "5",
            "--max-sessions",
            "4",
            "--context-size",
            "4096",
            "--server-wait",
            "0",
            "--perf",
            "--perf-dir",
            perf,
            "--state-dir",
            state,
            "--keep-sessions",
            "3",
        ],
        vec![
            "stdio",
            "--model",
            "http://127.0.0.1:9/v1/m",
            "--log-level",
            "debug",
        ],
        vec!["sessions", "list", "--state-dir", state],
    ] {
        let output = punie(&args, &[], Some(logs.path()));
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        assert_eq!(text(&output.stdout), "", "{args:?}");
    }
}
