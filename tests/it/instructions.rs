//! Project instructions (specs/modes-and-commands.md), through the real binary and
//! the official ACP client: `AGENTS.md` files from the project root down to the session's cwd
//! (nearest last) and the user-wide one join the system prompt, `CLAUDE.md` stands in for a
//! missing `AGENTS.md`, an edit between two prompts reaches the second request, and
//! instructions over their share of the window are cut, with one notice.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::editor::{EditorOptions, new_session, prompt, with_editor, workspace};
use crate::support::fake_model::{FakeModelServer, Reply};

/// The system prompt of request `n`.
fn system_prompt(server: &FakeModelServer, n: usize) -> String {
    let request: Value = server.requests()[n].clone();
    assert_eq!(request["messages"][0]["role"], "system", "{request}");
    request["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Where `text` starts in `prompt`, or a panic naming it.
fn at(prompt: &str, text: &str) -> usize {
    prompt
        .find(text)
        .unwrap_or_else(|| panic!("{text:?} is not in the prompt:\n{prompt}"))
}

/// Options whose user config directory is `config` (the user-wide file is
/// `config/punie/AGENTS.md`) and whose assumed context window is `window` tokens.
fn options(config: &Path, window: u32) -> EditorOptions {
    EditorOptions {
        env: vec![
            ("XDG_CONFIG_HOME".to_owned(), config.display().to_string()),
            ("PUNIE_CONTEXT_SIZE".to_owned(), window.to_string()),
        ],
        ..Default::default()
    }
}

fn write(path: PathBuf, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn files_from_the_user_and_the_project_root_down_to_the_cwd_join_the_prompt_nearest_last() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("Understood."));
    let (dir, ws) = workspace();
    let config = dir.path().join("config");
    write(config.join("punie/AGENTS.md"), "USER: answer in English.");
    std::fs::create_dir(ws.join(".git")).unwrap();
    write(
        ws.join("AGENTS.md"),
        "ROOT: run `make check` before you finish.",
    );
    // No AGENTS.md here: its CLAUDE.md counts (and GEMINI.md, after it, does not).
    write(ws.join("app/CLAUDE.md"), "APP: the app is written in Rust.");
    write(ws.join("app/GEMINI.md"), "NOT READ: gemini");
    // AGENTS.md wins over CLAUDE.md in the same directory.
    write(
        ws.join("app/core/AGENTS.md"),
        "CORE: never use unwrap here.",
    );
    write(ws.join("app/core/CLAUDE.md"), "NOT READ: claude");
    // Beside the path from the root to the cwd: not read.
    write(ws.join("docs/AGENTS.md"), "NOT READ: docs");
    let cwd = ws.join("app/core");
    let (_, record) = with_editor(
        &server.base_url(),
        &ws,
        options(&config, 32_768),
        async |cx, _| {
            let session = new_session(&cx, &cwd).await;
            prompt(&cx, &session, "hello").await.unwrap()
        },
    )
    .await;
    let prompt = system_prompt(&server, 0);
    let order = [
        at(&prompt, "USER: answer in English."),
        at(&prompt, "ROOT: run `make check`"),
        at(&prompt, "APP: the app is written in Rust."),
        at(&prompt, "CORE: never use unwrap here."),
    ];
    assert!(
        order.is_sorted(),
        "user first, nearest last: {order:?}\n{prompt}"
    );
    assert!(!prompt.contains("NOT READ"), "{prompt}");
    // Each part says which file it came from.
    for file in [
        config.join("punie/AGENTS.md"),
        ws.join("AGENTS.md"),
        ws.join("app/CLAUDE.md"),
        cwd.join("AGENTS.md"),
    ] {
        assert!(
            at(&prompt, &file.display().to_string()) < at(&prompt, "CORE"),
            "{}",
            file.display()
        );
    }
    assert!(
        !record.lock().unwrap().message_text().contains("cut"),
        "nothing was cut, nothing to tell"
    );
}

#[tokio::test]
async fn an_edit_between_two_prompts_reaches_the_second_request() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("One."));
    server.push(Reply::text("Two."));
    server.push(Reply::text("Three."));
    let (dir, ws) = workspace();
    let config = dir.path().join("config");
    write(ws.join("AGENTS.md"), "Version one of the rules.");
    with_editor(
        &server.base_url(),
        &ws,
        options(&config, 32_768),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "first").await.unwrap();
            write(ws.join("AGENTS.md"), "Version two of the rules, longer.");
            prompt(&cx, &session, "second").await.unwrap();
            std::fs::remove_file(ws.join("AGENTS.md")).unwrap();
            write(ws.join("CLAUDE.md"), "Claude's rules now.");
            prompt(&cx, &session, "third").await.unwrap();
        },
    )
    .await;
    let first = system_prompt(&server, 0);
    let second = system_prompt(&server, 1);
    let third = system_prompt(&server, 2);
    assert!(first.contains("Version one of the rules."), "{first}");
    assert!(
        second.contains("Version two of the rules, longer.") && !second.contains("Version one"),
        "{second}"
    );
    assert!(
        third.contains("Claude's rules now.") && !third.contains("Version two"),
        "{third}"
    );
}

#[tokio::test]
async fn instructions_over_an_eighth_of_the_window_are_cut_and_the_person_is_told_once() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("One."));
    server.push(Reply::text("Two."));
    let (dir, ws) = workspace();
    let config = dir.path().join("config");
    let long: String = (0..1000)
        .map(|i| format!("Rule {i}: keep it tidy.\n"))
        .collect();
    write(ws.join("AGENTS.md"), &long);
    let (_, record) = with_editor(
        &server.base_url(),
        &ws,
        options(&config, 8192),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "first").await.unwrap();
            prompt(&cx, &session, "second").await.unwrap();
        },
    )
    .await;
    let prompt = system_prompt(&server, 0);
    // An eighth of 8,192 tokens is 1,024 tokens, about 3,072 bytes.
    let instructions = &prompt[at(&prompt, "Project instructions")..];
    assert!(
        instructions.len() <= 3 * 1024,
        "{} bytes of instructions",
        instructions.len()
    );
    assert!(
        instructions.contains("Rule 0: keep it tidy."),
        "the head is kept"
    );
    assert!(
        instructions.contains("Rule 999: keep it tidy."),
        "the tail is kept"
    );
    assert!(
        instructions.contains("were cut to about 1,024 tokens"),
        "{instructions}"
    );
    assert_eq!(system_prompt(&server, 1), prompt, "the same cut each time");
    let told = record.lock().unwrap().message_text();
    assert_eq!(
        told.matches("The project instructions take about").count(),
        1,
        "{told}"
    );
    assert!(
        told.contains(
            "more than the 1,024 Punie keeps for them (an eighth of the model's 8,192-token window)"
        ),
        "{told}"
    );
}
