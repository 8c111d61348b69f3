//! Session modes (specs/modes-and-commands.md), through the real binary and the official ACP
//! client: what each mode offers the model and lets through, both ways of switching (modes
//! and the config option) and how each announces the other, the mode kept across
//! `session/load` and `session/resume`, and the default from `--mode` / `PUNIE_MODE` and the
//! config file.

use std::path::Path;
use std::process::Stdio;

use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::*;
use agent_client_protocol::{Agent, ErrorCode};
use serde_json::{Value, json};

use crate::support::editor::{
    Answer, EditorOptions, Record, prompt, wait_until, with_editor, workspace,
};
use crate::support::fake_model::{FAKE_MODEL, FakeModelServer, Reply};
use crate::support::served::{PATIENCE, punie_command};

/// The tools the model was offered in request `n`.
fn offered(server: &FakeModelServer, n: usize) -> Vec<String> {
    server.requests()[n]["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The system prompt of request `n`.
fn system_prompt(server: &FakeModelServer, n: usize) -> String {
    server.requests()[n]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

const WRITE_TOOLS: [&str; 3] = ["write_file", "edit_file", "run_command"];

fn assert_read_only(tools: &[String]) {
    assert!(tools.iter().any(|t| t == "read_file"), "{tools:?}");
    assert!(tools.iter().any(|t| t == "grep"), "{tools:?}");
    for tool in WRITE_TOOLS.iter().chain(&["kill_terminal"]) {
        assert!(
            !tools.iter().any(|t| t == tool),
            "{tool} offered: {tools:?}"
        );
    }
}

/// The mode ids a `modes` state lists, and its current one.
fn mode_ids(state: &SessionModeState) -> (String, Vec<String>) {
    (
        state.current_mode_id.0.to_string(),
        state
            .available_modes
            .iter()
            .map(|m| m.id.0.to_string())
            .collect(),
    )
}

/// The current value of the config option of category `mode`.
fn mode_option(options: &[SessionConfigOption]) -> String {
    let option = options
        .iter()
        .find(|o| o.category == Some(SessionConfigOptionCategory::Mode))
        .expect("a mode option");
    assert_eq!(&*option.id.0, "mode");
    let SessionConfigKind::Select(select) = &option.kind else {
        panic!("a select");
    };
    let SessionConfigSelectOptions::Ungrouped(choices) = &select.options else {
        panic!("ungrouped choices");
    };
    let values: Vec<&str> = choices.iter().map(|c| &*c.value.0).collect();
    assert_eq!(values, ["ask", "plan", "code", "edit"]);
    select.current_value.0.to_string()
}

fn mode_updates(record: &Record) -> Vec<String> {
    record
        .updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::CurrentModeUpdate(m) => Some(m.current_mode_id.0.to_string()),
            _ => None,
        })
        .collect()
}

fn option_updates(record: &Record) -> Vec<String> {
    record
        .updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::ConfigOptionUpdate(o) => Some(mode_option(&o.config_options)),
            _ => None,
        })
        .collect()
}

async fn set_mode(
    cx: &ConnectionTo<Agent>,
    session: &SessionId,
    mode: &str,
) -> Result<SetSessionModeResponse, agent_client_protocol::Error> {
    cx.send_request(SetSessionModeRequest::new(session.clone(), mode.to_owned()))
        .block_task()
        .await
}

async fn set_mode_option(
    cx: &ConnectionTo<Agent>,
    session: &SessionId,
    mode: &str,
) -> Result<SetSessionConfigOptionResponse, agent_client_protocol::Error> {
    cx.send_request(SetSessionConfigOptionRequest::new(
        session.clone(),
        "mode",
        SessionConfigValueId::new(mode),
    ))
    .block_task()
    .await
}

fn with_env(name: &str, value: &str) -> EditorOptions {
    EditorOptions {
        env: vec![(name.to_owned(), value.to_owned())],
        ..EditorOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ask_mode_offers_no_write_tool_and_a_write_reaches_neither_editor_nor_disk() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "new.txt", "content": "written anyway\n"}),
    ));
    server.push(Reply::text("I cannot write in ask mode."));
    let (_dir, ws) = workspace();
    // PUNIE_MODE is --mode's environment form: the default of every new session.
    let ((created, stop), record) = with_editor(
        &server.spec_for(FAKE_MODEL),
        &ws,
        with_env("PUNIE_MODE", "ask"),
        async |cx, _| {
            let created = cx
                .send_request(NewSessionRequest::new(&ws))
                .block_task()
                .await
                .unwrap();
            let stop = prompt(&cx, &created.session_id, "create new.txt")
                .await
                .unwrap();
            (created, stop)
        },
    )
    .await;
    assert_eq!(stop.stop_reason, StopReason::EndTurn);
    let (current, available) = mode_ids(created.modes.as_ref().expect("modes in session/new"));
    assert_eq!(current, "ask");
    assert_eq!(available, ["ask", "plan", "code", "edit"]);
    assert!(
        created.modes.as_ref().unwrap().available_modes[0]
            .description
            .is_some()
    );
    assert_eq!(mode_option(&created.config_options.unwrap()), "ask");

    assert_read_only(&offered(&server, 0));
    assert!(system_prompt(&server, 0).contains("ask mode"));
    let record = record.lock().unwrap();
    assert!(record.permission_requests.is_empty(), "nobody was asked");
    assert!(record.writes.is_empty(), "the editor wrote nothing");
    assert!(record.reads.is_empty(), "not even a preview read the file");
    assert!(!ws.join("new.txt").exists(), "nothing on disk");
    let call = &record.tool_calls()[0];
    assert_eq!(
        record.final_status(&call.tool_call_id.0),
        Some(ToolCallStatus::Failed)
    );
    let result = server.requests()[1]["messages"].to_string();
    assert!(
        result.contains("ask mode") && result.contains("switch"),
        "the model is told why and how to switch: {result}"
    );
}

/// A small model in ask mode may call `write_file` again and again: each refusal counts as a
/// call Punie could not run, so the turn stops after `bad_tool_call_retries` (3) + 1 of them,
/// not at the 50-request cap.
#[tokio::test(flavor = "multi_thread")]
async fn a_model_that_keeps_calling_a_refused_tool_is_stopped_early() {
    let server = FakeModelServer::start().await;
    for n in 0..10 {
        server.push(Reply::tool_call(
            "write_file",
            json!({"path": format!("new{n}.txt"), "content": "again\n"}),
        ));
    }
    let (_dir, ws) = workspace();
    let (stop, record) = with_editor(
        &server.spec_for(FAKE_MODEL),
        &ws,
        with_env("PUNIE_MODE", "ask"),
        async |cx, _| {
            let created = cx
                .send_request(NewSessionRequest::new(&ws))
                .block_task()
                .await
                .unwrap();
            prompt(&cx, &created.session_id, "create the files")
                .await
                .unwrap()
        },
    )
    .await;
    assert_eq!(stop.stop_reason, StopReason::EndTurn);
    assert_eq!(server.requests().len(), 4, "stopped after four refusals");
    let record = record.lock().unwrap();
    assert!(record.writes.is_empty());
    let text = record.message_text();
    assert!(
        text.contains("Punie stopped this turn") && text.contains("this mode does not allow"),
        "the person is told why: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_mode_tells_the_model_to_plan_and_offers_no_write_tool() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("1. Read main.rs\n2. Fix the bug"));
    server.push(Reply::text("Done as planned."));
    let (_dir, ws) = workspace();
    with_editor(
        &server.spec_for(FAKE_MODEL),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = crate::support::editor::new_session(&cx, &ws).await;
            set_mode(&cx, &session, "plan").await.unwrap();
            prompt(&cx, &session, "fix the bug").await.unwrap();
            set_mode(&cx, &session, "code").await.unwrap();
            prompt(&cx, &session, "go ahead").await.unwrap();
        },
    )
    .await;
    let planning = system_prompt(&server, 0);
    assert!(
        planning.contains("plan mode") && planning.contains("step-by-step plan"),
        "{planning}"
    );
    assert_read_only(&offered(&server, 0));
    // Switching to code carries it out: every tool, and no plan instruction.
    let coding = offered(&server, 1);
    for tool in WRITE_TOOLS {
        assert!(coding.iter().any(|t| t == tool), "{tool}: {coding:?}");
    }
    assert!(!system_prompt(&server, 1).contains("plan mode"));
}

#[tokio::test(flavor = "multi_thread")]
async fn edit_mode_writes_without_asking_and_commands_still_ask() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "notes.md", "content": "new notes\n"}),
    ));
    server.push(Reply::tool_call(
        "run_command",
        json!({"command": "echo", "args": ["hi"]}),
    ));
    server.push(Reply::text("Wrote the notes."));
    let (_dir, ws) = workspace();
    let options = EditorOptions {
        answers: vec![Answer::RejectOnce],
        ..EditorOptions::default()
    };
    let (_, record) = with_editor(&server.spec_for(FAKE_MODEL), &ws, options, async |cx, _| {
        let session = crate::support::editor::new_session(&cx, &ws).await;
        let changed = set_mode_option(&cx, &session, "edit").await.unwrap();
        assert_eq!(mode_option(&changed.config_options), "edit");
        prompt(&cx, &session, "write notes").await.unwrap();
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(ws.join("notes.md")).unwrap(),
        "new notes\n"
    );
    let record = record.lock().unwrap();
    assert_eq!(record.writes.len(), 1, "written through the editor");
    assert_eq!(
        record.permission_requests.len(),
        1,
        "only the command asked"
    );
    let asked = &record.permission_requests[0].tool_call;
    assert_eq!(asked.fields.kind, Some(ToolKind::Execute));
    assert!(
        record.terminals_created.is_empty(),
        "the refused command never ran"
    );
    let write = &record.tool_calls()[0];
    assert!(
        write
            .content
            .iter()
            .any(|c| matches!(c, ToolCallContent::Diff(_))),
        "the change is still shown as a diff: {write:?}"
    );
    assert_eq!(
        record.final_status(&write.tool_call_id.0),
        Some(ToolCallStatus::Completed)
    );
    assert!(system_prompt(&server, 0).contains("edit mode"));
}

#[tokio::test(flavor = "multi_thread")]
async fn set_mode_and_the_config_option_each_announce_the_other_and_unknown_modes_are_refused() {
    let server = FakeModelServer::start().await;
    let (_dir, ws) = workspace();
    let (errors, record) = with_editor(
        &server.spec_for(FAKE_MODEL),
        &ws,
        EditorOptions::default(),
        async |cx, shared| {
            let created = cx
                .send_request(NewSessionRequest::new(&ws))
                .block_task()
                .await
                .unwrap();
            assert_eq!(mode_ids(created.modes.as_ref().unwrap()).0, "code");
            let session = created.session_id;

            set_mode(&cx, &session, "ask").await.unwrap();
            wait_until(&shared, "the config option follows set_mode", |r| {
                option_updates(r) == ["ask"]
            })
            .await;
            let changed = set_mode_option(&cx, &session, "plan").await.unwrap();
            assert_eq!(mode_option(&changed.config_options), "plan");
            wait_until(&shared, "current_mode_update follows the option", |r| {
                mode_updates(r) == ["ask", "plan"]
            })
            .await;
            // The same mode again changes nothing and announces nothing.
            set_mode(&cx, &session, "plan").await.unwrap();

            let by_mode = set_mode(&cx, &session, "yolo").await.unwrap_err();
            let by_option = set_mode_option(&cx, &session, "yolo").await.unwrap_err();
            let unknown_session = set_mode(&cx, &SessionId::new("sess_nope"), "ask")
                .await
                .unwrap_err();
            // Something after the repeated switch, so its (absent) update would have arrived.
            set_mode(&cx, &session, "edit").await.unwrap();
            wait_until(&shared, "the last switch is announced", |r| {
                option_updates(r).last().map(String::as_str) == Some("edit")
            })
            .await;
            (by_mode, by_option, unknown_session)
        },
    )
    .await;
    for error in [&errors.0, &errors.1] {
        assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
        assert!(
            error.message.contains("yolo") && error.message.contains("ask, plan, code, edit"),
            "{}",
            error.message
        );
    }
    assert!(
        errors.2.message.contains("sess_nope"),
        "{}",
        errors.2.message
    );
    let record = record.lock().unwrap();
    assert_eq!(mode_updates(&record), ["ask", "plan", "edit"]);
    assert_eq!(option_updates(&record), ["ask", "plan", "edit"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mode_survives_load_and_resume() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("first answer"));
    server.push(Reply::text("after the load"));
    server.push(Reply::text("after the resume"));
    let (_dir, ws) = workspace();
    let spec = server.spec_for(FAKE_MODEL);
    let (session, _) = with_editor(&spec, &ws, EditorOptions::default(), async |cx, _| {
        let session = crate::support::editor::new_session(&cx, &ws).await;
        // Before the first prompt, when nothing is saved yet: the journal starts with it.
        set_mode(&cx, &session, "ask").await.unwrap();
        prompt(&cx, &session, "hello").await.unwrap();
        // And a switch after it is recorded too.
        set_mode(&cx, &session, "plan").await.unwrap();
        session
    })
    .await;
    let journal = ws
        .parent()
        .unwrap()
        .join("state")
        .join(format!("{}.jsonl", session.0));
    let records: Vec<Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let modes: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "mode")
        .map(|r| r["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["ask", "plan"]);

    with_editor(&spec, &ws, EditorOptions::default(), async |cx, _| {
        let loaded = cx
            .send_request(LoadSessionRequest::new(session.clone(), &ws))
            .block_task()
            .await
            .unwrap();
        assert_eq!(mode_ids(loaded.modes.as_ref().unwrap()).0, "plan");
        assert_eq!(mode_option(&loaded.config_options.unwrap()), "plan");
        prompt(&cx, &session, "and now?").await.unwrap();
        cx.send_request(CloseSessionRequest::new(session.clone()))
            .block_task()
            .await
            .unwrap();
        let resumed = cx
            .send_request(ResumeSessionRequest::new(session.clone(), &ws))
            .block_task()
            .await
            .unwrap();
        assert_eq!(mode_ids(resumed.modes.as_ref().unwrap()).0, "plan");
        assert_eq!(mode_option(&resumed.config_options.unwrap()), "plan");
        prompt(&cx, &session, "still planning?").await.unwrap();
    })
    .await;
    for n in [1, 2] {
        assert!(
            system_prompt(&server, n).contains("plan mode"),
            "request {n}"
        );
        assert_read_only(&offered(&server, n));
    }
}

/// `punie ask` in `dir` with `args`; its exit code and stderr.
async fn ask(dir: &Path, model: &str, args: &[&str]) -> (Option<i32>, String) {
    let logs = tempfile::tempdir().unwrap();
    let mut command = punie_command(logs.path());
    command
        .env("PUNIE_MODEL", model)
        .env("PUNIE_STATE_DIR", dir.join("state"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = tokio::time::timeout(PATIENCE, command.output())
        .await
        .expect("punie ends in time")
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mode_flag_and_the_config_file_choose_the_default() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("read-only answer"));
    server.push(Reply::text("answer in the config file's mode"));
    server.push(Reply::text("the flag wins"));
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let ws_arg = ws.to_str().unwrap();
    let model = server.spec_for(FAKE_MODEL);
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "default_mode = \"plan\"\n").unwrap();
    let config_arg = config.to_str().unwrap();

    let (code, stderr) = ask(
        dir.path(),
        &model,
        &[
            "ask",
            "--mode",
            "ask",
            "--workspace",
            ws_arg,
            "what is here?",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_read_only(&offered(&server, 0));
    assert!(system_prompt(&server, 0).contains("ask mode"));

    let (code, stderr) = ask(
        dir.path(),
        &model,
        &[
            "ask",
            "--config",
            config_arg,
            "--workspace",
            ws_arg,
            "plan it",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(system_prompt(&server, 1).contains("plan mode"));

    let (code, stderr) = ask(
        dir.path(),
        &model,
        &[
            "ask",
            "--config",
            config_arg,
            "--mode",
            "edit",
            "--workspace",
            ws_arg,
            "do it",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(system_prompt(&server, 2).contains("edit mode"));
    assert!(offered(&server, 2).iter().any(|t| t == "write_file"));

    let (code, stderr) = ask(dir.path(), &model, &["ask", "--mode", "yolo", "x"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("yolo") && stderr.contains("ask, plan, code, edit"),
        "{stderr}"
    );
    std::fs::write(&config, "default_mode = \"careful\"\n").unwrap();
    let (code, stderr) = ask(
        dir.path(),
        &model,
        &["ask", "--config", config_arg, "--workspace", ws_arg, "x"],
    )
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("default_mode") && stderr.contains("careful") && stderr.contains("edit"),
        "{stderr}"
    );
    assert_eq!(server.requests().len(), 3, "bad modes start nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_journal_without_a_mode_loads_in_the_default_mode() {
    let server = FakeModelServer::start().await;
    let (_dir, ws) = workspace();
    let state = ws.parent().unwrap().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let header = json!({"format": 1, "punie": "0.1.0", "session": "sess_old", "cwd": ws, "created_at": "2026-01-01T00:00:00Z", "model": "m"});
    let records = [
        header,
        json!({"type": "prompt", "at": "2026-01-01T00:00:01Z", "text": "hi"}),
        json!({"type": "message", "message": {"role": "assistant", "content": "hello"}}),
        json!({"type": "turn_end", "at": "2026-01-01T00:00:02Z", "stop": "end_turn"}),
    ];
    let lines: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(state.join("sess_old.jsonl"), &lines).unwrap();
    // A mode this Punie does not know (a newer one wrote it) also falls back to the default.
    let newer = format!(
        "{}{}\n",
        lines.replace("sess_old", "sess_newer"),
        json!({"type": "mode", "mode": "autopilot"})
    );
    std::fs::write(state.join("sess_newer.jsonl"), newer).unwrap();
    let (modes, _) = with_editor(
        &server.spec_for(FAKE_MODEL),
        &ws,
        with_env("PUNIE_MODE", "edit"),
        async |cx, _| {
            let mut modes = Vec::new();
            for id in ["sess_old", "sess_newer"] {
                let loaded = cx
                    .send_request(LoadSessionRequest::new(SessionId::new(id), &ws))
                    .block_task()
                    .await
                    .unwrap();
                modes.push(mode_ids(loaded.modes.as_ref().unwrap()).0);
            }
            modes
        },
    )
    .await;
    assert_eq!(modes, ["edit", "edit"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mode_command_switches_like_the_pickers_and_names_the_modes() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("only reading now"));
    let (_dir, ws) = workspace();
    let (answers, record) = with_editor(
        &server.spec_for(FAKE_MODEL),
        &ws,
        EditorOptions::default(),
        async |cx, record| {
            let created = cx
                .send_request(NewSessionRequest::new(&ws))
                .block_task()
                .await
                .unwrap();
            let mut answers = Vec::new();
            for text in ["/mode", "/mode yolo", "/mode ask", "what is here?"] {
                let before = record.lock().unwrap().message_text().len();
                let stop = prompt(&cx, &created.session_id, text).await.unwrap();
                assert_eq!(stop.stop_reason, StopReason::EndTurn, "{text}");
                answers.push(record.lock().unwrap().message_text()[before..].to_owned());
            }
            wait_until(&record, "the mode update", |r| !mode_updates(r).is_empty()).await;
            answers
        },
    )
    .await;
    let [list, unknown, switched, _] = &answers[..] else {
        panic!("{answers:?}")
    };
    assert!(
        list.contains("`code` (in use)") && list.contains("`ask`") && list.contains("`edit`"),
        "{list}"
    );
    assert!(
        unknown.contains("yolo") && unknown.contains("ask, plan, code, edit"),
        "names the modes: {unknown}"
    );
    assert!(switched.contains("now in ask mode"), "{switched}");
    assert_eq!(
        server.requests().len(),
        1,
        "only the real prompt asked the model"
    );
    assert_read_only(&offered(&server, 0));
    let record = record.lock().unwrap();
    assert_eq!(
        mode_updates(&record),
        ["ask"],
        "current_mode_update follows /mode"
    );
}
