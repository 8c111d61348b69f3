//! Slash commands (specs/modes-and-commands.md), through the real binary and the official ACP
//! client: the command menu after `session/new` and `session/load` (and again when a prompt
//! file appears), prompt files with arguments reaching the model, an unknown `/word` sent as
//! written, the commands that answer without the model, `/compact` with and without the
//! client's compaction capability, `/model` switching, and `/init` writing through the write
//! tool's permission prompt.

use std::path::Path;

use agent_client_protocol::v1::schema::*;
use serde_json::{Value, json};

use crate::support::editor::{
    Answer, EditorOptions, Record, Shared, new_session, prompt, wait_until, with_editor, workspace,
};
use crate::support::fake_model::{FakeModelServer, Reply};

/// Every command list the editor was sent, in order.
fn command_lists(record: &Record) -> Vec<Vec<AvailableCommand>> {
    record
        .updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::AvailableCommandsUpdate(c) => Some(c.available_commands.clone()),
            _ => None,
        })
        .collect()
}

fn names(commands: &[AvailableCommand]) -> Vec<&str> {
    commands.iter().map(|c| c.name.as_str()).collect()
}

fn hint(commands: &[AvailableCommand], name: &str) -> Option<String> {
    let command = commands.iter().find(|c| c.name == name)?;
    match &command.input {
        Some(AvailableCommandInput::Unstructured(input)) => Some(input.hint.clone()),
        _ => None,
    }
}

/// The text of the last user message of a model request.
fn last_user_text(request: &Value) -> String {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

/// The user and assistant texts a request sends, joined (the system prompt left out).
fn conversation(request: &Value) -> String {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] != "system")
        .map(|m| m["content"].as_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

fn write_command(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{name}.md")), text).unwrap();
}

/// Options whose user config directory is `config` (`$XDG_CONFIG_HOME/punie/commands`).
fn with_config(config: &Path) -> EditorOptions {
    EditorOptions {
        env: vec![("XDG_CONFIG_HOME".into(), config.display().to_string())],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_command_menu_arrives_after_new_and_after_load() {
    let server = FakeModelServer::start().await;
    let (dir, ws) = workspace();
    write_command(
        &ws.join(".punie/commands"),
        "review",
        "---\ndescription: Review a file for bugs\nargument-hint: the file\n---\nReview $ARGUMENTS for bugs.\n",
    );
    let config = dir.path().join("config");
    let (session, first) = with_editor(
        &server.base_url(),
        &ws,
        with_config(&config),
        async |cx, record| {
            let session = new_session(&cx, &ws).await;
            wait_until(&record, "the command menu arrives", |r| {
                !command_lists(r).is_empty()
            })
            .await;
            // Saves the session: a command is journaled as what it is.
            let stop = prompt(&cx, &session, "/context").await.unwrap().stop_reason;
            assert_eq!(stop, StopReason::EndTurn);
            session
        },
    )
    .await;
    {
        let first = first.lock().unwrap();
        let lists = command_lists(&first);
        assert_eq!(
            lists.len(),
            1,
            "once after session/new, unchanged at the prompt"
        );
        let menu = &lists[0];
        assert_eq!(
            names(menu),
            [
                "compact", "init", "model", "mode", "context", "tools", "clear", "review"
            ]
        );
        let review = menu.iter().find(|c| c.name == "review").unwrap();
        assert_eq!(review.description, "Review a file for bugs");
        assert_eq!(hint(menu, "review").as_deref(), Some("the file"));
        assert!(hint(menu, "model").is_some() && hint(menu, "init").is_some());
        assert_eq!(hint(menu, "context"), None);
        assert!(server.requests().is_empty(), "/context asks no model");
    }

    let (_, second) = with_editor(
        &server.base_url(),
        &ws,
        with_config(&config),
        async |cx, record| {
            cx.send_request(LoadSessionRequest::new(session.clone(), &ws))
                .block_task()
                .await
                .expect("session/load");
            wait_until(&record, "the command menu arrives after load", |r| {
                !command_lists(r).is_empty()
            })
            .await;
        },
    )
    .await;
    let second = second.lock().unwrap();
    assert_eq!(
        names(&command_lists(&second)[0]).len(),
        8,
        "the seven built in and the user's"
    );
    let user: String = second
        .updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::UserMessageChunk(ContentChunk {
                content: ContentBlock::Text(t),
                ..
            }) => Some(t.text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(user, "/context", "the command is replayed as typed");
    assert!(
        second.message_text().contains("project instructions"),
        "and its answer: {}",
        second.message_text()
    );
    let menu_at = second
        .updates
        .iter()
        .position(|u| matches!(u, SessionUpdate::AvailableCommandsUpdate(_)))
        .unwrap();
    let replay_at = second
        .updates
        .iter()
        .position(|u| matches!(u, SessionUpdate::UserMessageChunk(_)))
        .unwrap();
    assert!(
        replay_at < menu_at,
        "the menu follows the replay and the answer"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prompt_files_reach_the_model_with_their_arguments_and_unknown_words_go_as_written() {
    let server = FakeModelServer::start().await;
    for answer in ["reviewed", "greeted", "as written", "later"] {
        server.push(Reply::text(answer));
    }
    let (dir, ws) = workspace();
    let project = ws.join(".punie/commands");
    write_command(&project, "review", "Review $ARGUMENTS for bugs.");
    let config = dir.path().join("config");
    let user = config.join("punie/commands");
    write_command(
        &user,
        "review",
        "the user's review, shadowed by the project's",
    );
    write_command(&user, "greet", "Say hello to $ARGUMENTS, politely.");
    write_command(&project, "huge", &"x".repeat(65 * 1024 + 1));
    let (_, record) = with_editor(
        &server.base_url(),
        &ws,
        with_config(&config),
        async |cx, record| {
            let session = new_session(&cx, &ws).await;
            for text in ["/review src/lib.rs", "/greet Ann", "/frobnicate the widget"] {
                let stop = prompt(&cx, &session, text).await.unwrap().stop_reason;
                assert_eq!(stop, StopReason::EndTurn);
            }
            write_command(&project, "later", "Added while the session runs.");
            prompt(&cx, &session, "/later").await.unwrap();
            wait_until(&record, "the menu is sent again", |r| {
                command_lists(r).len() == 2
            })
            .await;
        },
    )
    .await;
    let sent: Vec<String> = server.requests().iter().map(last_user_text).collect();
    assert_eq!(
        sent,
        [
            "Review src/lib.rs for bugs.",
            "Say hello to Ann, politely.",
            "/frobnicate the widget",
            "Added while the session runs.",
        ]
    );
    let record = record.lock().unwrap();
    let lists = command_lists(&record);
    assert!(names(&lists[0]).contains(&"greet") && !names(&lists[0]).contains(&"huge"));
    assert!(names(&lists[1]).contains(&"later"));
    let text = record.message_text();
    assert!(
        text.contains("huge.md") && text.contains("64 KiB"),
        "the skipped file is named: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn context_tools_clear_and_model_answer_without_the_model() {
    let server = FakeModelServer::start().await;
    server.set_models(vec!["fake-model".into(), "bigger-model".into()]);
    server.push(Reply::text("hello back"));
    server.push(Reply::text("from the bigger model"));
    let (_dir, ws) = workspace();
    std::fs::write(
        ws.join("AGENTS.md"),
        "Run the tests with `make check` before saying a change is done.\n",
    )
    .unwrap();
    let options = EditorOptions {
        catalog: Some(json!({"tools": [
            {"name": "rename_symbol", "kind": "edit", "description": "Rename a symbol.",
             "parameters": {"type": "object", "properties": {"to": {"type": "string"}}},
             "requiresPermission": true}
        ]})),
        ..Default::default()
    };
    let (answers, record) = with_editor(
        &server.spec_for("fake-model"),
        &ws,
        options,
        async |cx, record| {
            let session = new_session(&cx, &ws).await;
            let mut answers = Vec::new();
            for text in [
                "/context",
                "/tools",
                "hello",
                "/clear",
                "/model",
                "/model no-such-model",
                "/model bigger-model",
                "and now?",
            ] {
                let before = record.lock().unwrap().message_text().len();
                let stop = prompt(&cx, &session, text).await.unwrap().stop_reason;
                assert_eq!(stop, StopReason::EndTurn, "{text}");
                answers.push(record.lock().unwrap().message_text()[before..].to_owned());
            }
            answers
        },
    )
    .await;
    let [context, tools, _, clear, list, unknown, switched, _] = &answers[..] else {
        panic!("{answers:?}")
    };
    for row in [
        "system prompt",
        "| project instructions | ",
        "tools (",
        "conversation (0 messages)",
        "**total**",
    ] {
        assert!(context.contains(row), "{row} in {context}");
    }
    assert!(
        !context.contains("| project instructions | 0 |"),
        "the AGENTS.md is counted: {context}"
    );
    assert!(
        tools.contains("**Built in**") && tools.contains("`grep`"),
        "{tools}"
    );
    assert!(
        tools.contains("**From the editor's catalog** (1): `rename_symbol` (asks first)"),
        "{tools}"
    );
    assert!(clear.contains("2 messages forgotten"), "{clear}");
    assert!(
        list.contains("`fake-model` (in use)") && list.contains("`bigger-model`"),
        "{list}"
    );
    assert!(
        unknown.contains("no-such-model") && unknown.contains("bigger-model"),
        "names the models there are: {unknown}"
    );
    assert!(switched.contains("bigger-model"), "{switched}");

    let requests = server.requests();
    assert_eq!(
        requests.len(),
        2,
        "only the two real prompts asked the model"
    );
    assert_eq!(requests[1]["model"], "bigger-model");
    assert_eq!(
        conversation(&requests[1]),
        "and now?",
        "/clear forgot the first exchange"
    );
    let record = record.lock().unwrap();
    let picker = record
        .updates
        .iter()
        .find_map(|u| match u {
            SessionUpdate::ConfigOptionUpdate(update) => Some(update.config_options.clone()),
            _ => None,
        })
        .expect("the model picker follows /model");
    let SessionConfigKind::Select(select) = &picker[0].kind else {
        panic!("a select")
    };
    assert_eq!(&*select.current_value.0, "bigger-model");
}

/// `/compact` with nothing to compact, two exchanges, `/compact`, then a third prompt;
/// returns what the editor saw.
async fn compact_session(server: &FakeModelServer, compaction: bool) -> Shared {
    server.push(Reply::text("first answer"));
    server.push(Reply::text("second answer"));
    server.push(Reply::text("SUMMARY: the user said one, then two."));
    server.push(Reply::text("third answer"));
    let (_dir, ws) = workspace();
    let options = EditorOptions {
        compaction,
        ..Default::default()
    };
    let (_, record) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        for text in ["/compact", "one", "two", "/compact", "three"] {
            let stop = prompt(&cx, &session, text).await.unwrap().stop_reason;
            assert_eq!(stop, StopReason::EndTurn, "{text}");
        }
    })
    .await;
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    assert!(
        requests[2]["tools"].as_array().is_none_or(Vec::is_empty),
        "the summary request offers no tools"
    );
    assert!(conversation(&requests[2]).contains("one"));
    let after = conversation(&requests[3]);
    assert!(
        after.contains("SUMMARY: the user said one, then two."),
        "{after}"
    );
    assert!(
        after.contains("two\nsecond answer\nthree"),
        "the latest exchange is kept: {after}"
    );
    assert!(!after.contains("first answer"), "{after}");
    record
}

#[tokio::test(flavor = "multi_thread")]
async fn compact_sends_compaction_updates_to_clients_that_advertise_them() {
    let server = FakeModelServer::start().await;
    let record = compact_session(&server, true).await;
    let record = record.lock().unwrap();
    let mut statuses = Vec::new();
    let mut ids = Vec::new();
    let mut summary = String::new();
    for update in &record.updates {
        match update {
            SessionUpdate::CompactionUpdate(u) => {
                statuses.push(u.status.clone());
                ids.push(u.compaction_id.clone());
            }
            SessionUpdate::CompactionSummaryChunk(c) => {
                ids.push(c.compaction_id.clone());
                if let ContentBlock::Text(t) = &c.content {
                    summary.push_str(&t.text);
                }
            }
            _ => {}
        }
    }
    assert_eq!(
        statuses,
        [CompactionStatus::InProgress, CompactionStatus::Completed]
    );
    assert!(ids.iter().all(|id| *id == ids[0]), "one id: {ids:?}");
    assert!(
        summary.contains("SUMMARY: the user said one, then two."),
        "{summary}"
    );
    assert!(
        summary.contains("summarised the 1 earlier turn"),
        "{summary}"
    );
    let text = record.message_text();
    assert!(text.contains("Nothing to compact yet"), "{text}");
    assert!(
        !text.contains("summarised the 1 earlier turn"),
        "said once, as updates: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn compact_tells_other_clients_in_words() {
    let server = FakeModelServer::start().await;
    let record = compact_session(&server, false).await;
    let record = record.lock().unwrap();
    assert!(
        !record.updates.iter().any(|u| matches!(
            u,
            SessionUpdate::CompactionUpdate(_) | SessionUpdate::CompactionSummaryChunk(_)
        )),
        "no updates the client did not ask for"
    );
    let text = record.message_text();
    assert!(
        text.contains("summarised the 1 earlier turn") && text.contains("tokens"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn init_writes_agents_md_through_the_write_tool_and_asks_first() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "AGENTS.md", "content": "# Agents\n\nRun `make test`.\n"}),
    ));
    server.push(Reply::text("Wrote AGENTS.md."));
    let (_dir, ws) = workspace();
    std::fs::write(ws.join("Makefile"), "test:\n\ttrue\n").unwrap();
    let options = EditorOptions {
        answers: vec![Answer::AllowOnce],
        ..Default::default()
    };
    let (stop, record) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        prompt(&cx, &session, "/init mention the Makefile")
            .await
            .unwrap()
            .stop_reason
    })
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    let asked = last_user_text(&server.requests()[0]);
    assert!(
        asked.contains("AGENTS.md") && asked.ends_with("mention the Makefile"),
        "{asked}"
    );
    let record = record.lock().unwrap();
    assert_eq!(record.permission_requests.len(), 1, "the write asked first");
    assert_eq!(
        std::fs::read_to_string(ws.join("AGENTS.md")).unwrap(),
        "# Agents\n\nRun `make test`.\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn automatic_compaction_reports_like_compact() {
    let server = FakeModelServer::start().await;
    // Each answer alone takes most of a 4,096-token window (no repeated words: a repeating
    // model is stopped early).
    let long = |tag: &str| {
        let words: Vec<String> = (0..1400).map(|i| format!("{tag}{i}")).collect();
        words.join(" ")
    };
    server.push(Reply::text(&long("first")));
    server.push(Reply::text(&long("second")));
    // Whatever else is asked (a summary of older turns, the last answer).
    for _ in 0..4 {
        server.push(Reply::text("short answer"));
    }
    let (_dir, ws) = workspace();
    let options = EditorOptions {
        compaction: true,
        env: vec![("PUNIE_CONTEXT_SIZE".into(), "4096".into())],
        ..Default::default()
    };
    let (_, record) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        for text in ["one", "two", "three"] {
            let stop = prompt(&cx, &session, text).await.unwrap().stop_reason;
            assert_eq!(stop, StopReason::EndTurn, "{text}");
        }
    })
    .await;
    let record = record.lock().unwrap();
    let statuses: Vec<CompactionStatus> = record
        .updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::CompactionUpdate(u) => Some(u.status.clone()),
            _ => None,
        })
        .collect();
    assert!(!statuses.is_empty(), "the history was compacted");
    for pair in statuses.chunks(2) {
        assert_eq!(
            pair,
            [CompactionStatus::InProgress, CompactionStatus::Completed],
            "{statuses:?}"
        );
    }
    let summary: String = record
        .updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::CompactionSummaryChunk(CompactionSummaryChunk {
                content: ContentBlock::Text(t),
                ..
            }) => Some(t.text.clone()),
            _ => None,
        })
        .collect();
    assert!(
        summary.contains("to fit the model's 4,096-token context window"),
        "{summary}"
    );
    assert!(!record.message_text().contains("to fit the model's"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cleared_session_loads_cleared() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("remembered"));
    server.push(Reply::text("fresh"));
    let (_dir, ws) = workspace();
    let (session, _) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "remember the secret 42")
                .await
                .unwrap();
            prompt(&cx, &session, "/clear").await.unwrap();
            session
        },
    )
    .await;
    let (_, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            cx.send_request(LoadSessionRequest::new(session.clone(), &ws))
                .block_task()
                .await
                .expect("session/load");
            prompt(&cx, &session, "what was the secret?").await.unwrap();
        },
    )
    .await;
    assert_eq!(
        conversation(&server.requests()[1]),
        "what was the secret?",
        "the loaded session starts from the clear"
    );
    let text = record.lock().unwrap().message_text();
    assert!(
        text.contains("remembered") && text.contains("Cleared: this session starts over"),
        "the replay shows the conversation and the clear: {text}"
    );
}
