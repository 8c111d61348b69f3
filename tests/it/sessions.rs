//! Sessions that survive the process (specs/sessions.md), through the real binary and the
//! official ACP client: two processes share one state directory; the second lists, loads,
//! resumes, closes and deletes what the first saved, also after a SIGKILL mid-stream and
//! mid-tool, and with torn, damaged and future-version journals.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_client_protocol::v1::schema::*;
use serde_json::{Value, json};

use crate::support::editor::{
    Answer, EditorOptions, Record, new_session, prompt, wait_until, with_editor, workspace,
};
use crate::support::fake_model::{FakeModelServer, Part, Reply};

/// The state directory `with_editor` gives the binary for the workspace `ws`.
fn state_dir(ws: &Path) -> PathBuf {
    ws.parent().unwrap().join("state")
}

/// The pid of the `punie` child whose environment names `state`.
fn punie_pid(state: &Path) -> u32 {
    let wanted = format!("PUNIE_STATE_DIR={}", state.display());
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "punie"
            && environ
                .split(|b| *b == 0)
                .any(|var| var == wanted.as_bytes())
        {
            return pid;
        }
    }
    panic!("no punie process for {}", state.display());
}

fn load(id: &SessionId, cwd: &Path) -> LoadSessionRequest {
    LoadSessionRequest::new(id.clone(), cwd)
}

/// The updates a replay must repeat: what the person and the model said, and each tool call
/// with its final state (live streaming splits text into chunks; compared joined).
/// A tool call as the editor last saw it: id, title, raw input, final status.
type Call = (String, String, Value, ToolCallStatus);

fn conversation(record: &Record) -> (String, String, Vec<Call>) {
    let user: String = record
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
    let calls = record
        .tool_calls()
        .iter()
        .map(|c| {
            let id = c.tool_call_id.0.to_string();
            let status = record.final_status(&id).unwrap();
            (
                id,
                c.title.clone(),
                c.raw_input.clone().unwrap_or_default(),
                status,
            )
        })
        .collect();
    (user, record.message_text(), calls)
}

fn session_infos(record: &Record) -> Vec<SessionInfoUpdate> {
    record
        .updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::SessionInfoUpdate(i) => Some(i.clone()),
            _ => None,
        })
        .collect()
}

fn request_text(server: &FakeModelServer, n: usize) -> String {
    server.requests()[n]["messages"].to_string()
}

#[tokio::test]
async fn a_session_survives_a_restart_and_its_replay_matches_what_the_editor_saw() {
    let server = FakeModelServer::start().await;
    server.push(Reply::tool_call("read_file", json!({"path": "notes.txt"})));
    server.push(Reply::tool_call(
        "write_file",
        json!({"path": "summary.txt", "content": "short\n"}),
    ));
    server.push(Reply::tool_call(
        "run_command",
        json!({"command": "echo", "args": ["checked"]}),
    ));
    server.push(Reply::parts(vec![
        Part::thought("The notes are short."),
        Part::text("Summarised the notes into summary.txt."),
    ]));
    let (_dir, ws) = workspace();
    std::fs::write(ws.join("notes.txt"), "remember the milk\n").unwrap();
    let options = EditorOptions {
        answers: vec![Answer::AllowOnce, Answer::AllowOnce],
        ..Default::default()
    };
    let (session, first) = with_editor(&server.base_url(), &ws, options, async |cx, _| {
        let session = new_session(&cx, &ws).await;
        let stop = prompt(&cx, &session, "Summarise notes.txt\nplease")
            .await
            .unwrap();
        assert_eq!(stop.stop_reason, StopReason::EndTurn);
        session
    })
    .await;
    let live = {
        let first = first.lock().unwrap();
        let live = conversation(&first);
        assert_eq!(live.2.len(), 3, "read, write and command ran: {:?}", live.2);
        let info = serde_json::to_value(session_infos(&first).last().unwrap()).unwrap();
        assert_eq!(info["title"], "Summarise notes.txt", "{info}");
        assert!(
            info["updatedAt"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{info}"
        );
        live
    };

    // The files are the person's alone.
    let state = state_dir(&ws).canonicalize().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join(format!("{}.jsonl", session.0))), 0o600);
    let journal = std::fs::read_to_string(state.join(format!("{}.jsonl", session.0))).unwrap();
    assert!(!journal.contains("Bearer"), "no credentials in the journal");

    server.push(Reply::text("Still here."));
    let ((listed, other_cwd, caps), second) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, shared| {
            let listed = cx
                .send_request(ListSessionsRequest::new().cwd(ws.clone()))
                .block_task()
                .await
                .unwrap();
            let other_cwd = cx
                .send_request(ListSessionsRequest::new().cwd(PathBuf::from("/nowhere")))
                .block_task()
                .await
                .unwrap();
            cx.send_request(load(&session, &ws)).block_task().await.unwrap();
            // Everything replayed arrived before the answer.
            let caps = {
                let record = shared.lock().unwrap();
                let replayed = conversation(&record);
                assert_eq!(replayed.0, "Summarise notes.txt\nplease", "the prompt is replayed");
                assert_eq!((replayed.1, replayed.2), (live.1.clone(), live.2.clone()), "the replay repeats the conversation");
                assert_eq!(record.thought_text(), "The notes are short.");
                let diff = record.tool_call_updates().iter().any(|u| {
                    matches!(u.fields.content.as_deref(), Some([ToolCallContent::Diff(d)]) if d.new_text == "short\n")
                });
                assert!(diff, "the write's diff is shown again");
                record.updates.len()
            };
            let stop = prompt(&cx, &session, "Anything else?").await.unwrap();
            assert_eq!(stop.stop_reason, StopReason::EndTurn);
            (listed, other_cwd, caps)
        },
    )
    .await;
    assert!(caps > 0);
    assert_eq!(listed.sessions.len(), 1);
    assert_eq!(listed.sessions[0].session_id, session);
    assert_eq!(
        listed.sessions[0].title.as_deref(),
        Some("Summarise notes.txt")
    );
    assert!(
        listed.sessions[0]
            .updated_at
            .as_deref()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(other_cwd.sessions.is_empty(), "the cwd filter applies");
    // The model's next request carries the old conversation.
    let history = request_text(&server, 4);
    assert!(history.contains("Summarise notes.txt"), "{history}");
    assert!(
        history.contains("remember the milk"),
        "the read's result: {history}"
    );
    assert!(history.contains("Anything else?"));
    assert_eq!(
        second.lock().unwrap().message_text(),
        "Summarised the notes into summary.txt.Still here."
    );
}

#[tokio::test]
async fn initialize_advertises_saved_sessions() {
    let server = FakeModelServer::start().await;
    let (_dir, ws) = workspace();
    let (_, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |_, _| {},
    )
    .await;
    let record = record.lock().unwrap();
    let init: Value = serde_json::from_str(&record.stdout_lines[0]).unwrap();
    let caps = &init["result"]["agentCapabilities"];
    assert_eq!(caps["loadSession"], true);
    for cap in ["list", "resume", "close", "delete"] {
        assert!(
            caps["sessionCapabilities"][cap].is_object(),
            "{cap}: {caps}"
        );
    }
}

#[tokio::test]
async fn a_sigkill_mid_stream_keeps_the_completed_turn_and_marks_the_cut_one() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("First answer, complete."));
    server
        .push(Reply::text("A long answer that never ends because the process dies").hang_after(3));
    let (_dir, ws) = workspace();
    let state = state_dir(&ws);
    let killed = EditorOptions {
        killed: true,
        ..Default::default()
    };
    let (session, _) = with_editor(&server.base_url(), &ws, killed, async |cx, shared| {
        let session = new_session(&cx, &ws).await;
        prompt(&cx, &session, "first").await.unwrap();
        let cx2 = cx.clone();
        let s = session.clone();
        tokio::spawn(async move { prompt(&cx2, &s, "second").await });
        wait_until(&shared, "the second answer streams", |r| {
            r.message_text().len() > "First answer, complete.".len()
        })
        .await;
        let pid = punie_pid(&state);
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).unwrap(),
            rustix::process::Signal::KILL,
        )
        .unwrap();
        session
    })
    .await;

    server.push(Reply::text("Continuing."));
    let (_, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            cx.send_request(load(&session, &ws))
                .block_task()
                .await
                .unwrap();
            prompt(&cx, &session, "third").await.unwrap();
        },
    )
    .await;
    let record = record.lock().unwrap();
    let (user, text, _) = conversation(&record);
    assert!(
        user.starts_with("firstsecond"),
        "both prompts replayed: {user}"
    );
    assert!(text.starts_with("First answer, complete."), "{text}");
    let noticed = record.updates.iter().any(|u| matches!(u, SessionUpdate::Notice(n) if n.title.contains("interrupted")) || matches!(u, SessionUpdate::AgentMessageChunk(c) if format!("{c:?}").contains("finished")));
    assert!(noticed, "the person is told the last turn was cut off");
    let history = request_text(&server, 2);
    assert!(history.contains("First answer, complete."), "{history}");
    assert!(history.contains("second"), "{history}");
    assert!(
        history.contains("Interrupted"),
        "the model sees the cut: {history}"
    );
}

#[tokio::test]
async fn a_sigkill_mid_tool_call_loads_with_the_call_marked_unfinished() {
    let server = FakeModelServer::start().await;
    server.push(Reply::parts(vec![Part::tool_call_with_id(
        "model-call-1",
        "run_command",
        json!({"command": "sleep", "args": ["30"]}),
    )]));
    let (_dir, ws) = workspace();
    let state = state_dir(&ws);
    let local = EditorOptions {
        fs: false,
        terminal: false,
        answers: vec![Answer::AllowOnce],
        env: vec![("PUNIE_NO_LANDLOCK".into(), "1".into())],
        ..Default::default()
    };
    let killed = EditorOptions {
        killed: true,
        ..local.clone()
    };
    let (session, _) = with_editor(&server.base_url(), &ws, killed, async |cx, shared| {
        let session = new_session(&cx, &ws).await;
        let cx2 = cx.clone();
        let s = session.clone();
        tokio::spawn(async move { prompt(&cx2, &s, "wait a while").await });
        wait_until(&shared, "the command runs", |r| {
            r.tool_call_updates()
                .iter()
                .any(|u| u.fields.status == Some(ToolCallStatus::InProgress))
        })
        .await;
        let pid = punie_pid(&state);
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).unwrap(),
            rustix::process::Signal::KILL,
        )
        .unwrap();
        session
    })
    .await;

    server.push(Reply::text("I will check first."));
    let (_, record) = with_editor(&server.base_url(), &ws, local, async |cx, _| {
        cx.send_request(load(&session, &ws))
            .block_task()
            .await
            .unwrap();
        prompt(&cx, &session, "go on").await.unwrap();
    })
    .await;
    let history = request_text(&server, 1);
    assert!(history.contains("model-call-1"), "{history}");
    assert!(
        history.contains("Not finished"),
        "the unfinished call has a result: {history}"
    );
    assert!(
        record
            .lock()
            .unwrap()
            .message_text()
            .contains("I will check first.")
    );
}

#[tokio::test]
async fn a_second_process_cannot_load_a_session_open_in_the_first() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("saved"));
    let (_dir, ws) = workspace();
    let url = server.base_url();
    let (error, _) = with_editor(&url, &ws, EditorOptions::default(), async |cx, _| {
        let session = new_session(&cx, &ws).await;
        prompt(&cx, &session, "save me").await.unwrap();
        let (error, _) = with_editor(&url, &ws, EditorOptions::default(), async |cx2, _| {
            cx2.send_request(load(&session, &ws))
                .block_task()
                .await
                .unwrap_err()
        })
        .await;
        error
    })
    .await;
    assert!(
        error.message.contains("open in another Punie process"),
        "{error:?}"
    );
}

#[tokio::test]
async fn resume_continues_without_replay_close_keeps_and_delete_removes() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("one"));
    server.push(Reply::text("two"));
    let (_dir, ws) = workspace();
    let (session, _) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "first").await.unwrap();
            cx.send_request(CloseSessionRequest::new(session.clone()))
                .block_task()
                .await
                .unwrap();
            let closed = prompt(&cx, &session, "after close").await.unwrap_err();
            assert!(closed.message.contains("unknown session"), "{closed:?}");
            session
        },
    )
    .await;
    let (_, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, shared| {
            cx.send_request(ResumeSessionRequest::new(session.clone(), ws.clone()))
                .block_task()
                .await
                .unwrap();
            // What may come: the command menu and the like, never the conversation.
            let replayed: Vec<_> = shared
                .lock()
                .unwrap()
                .updates
                .iter()
                .filter(|u| {
                    matches!(
                        u,
                        SessionUpdate::UserMessageChunk(_)
                            | SessionUpdate::AgentMessageChunk(_)
                            | SessionUpdate::AgentThoughtChunk(_)
                            | SessionUpdate::ToolCall(_)
                            | SessionUpdate::ToolCallUpdate(_)
                            | SessionUpdate::Plan(_)
                    )
                })
                .cloned()
                .collect();
            assert!(replayed.is_empty(), "resume replays nothing: {replayed:?}");
            prompt(&cx, &session, "second").await.unwrap();
            cx.send_request(DeleteSessionRequest::new(session.clone()))
                .block_task()
                .await
                .unwrap();
            let listed = cx
                .send_request(ListSessionsRequest::new())
                .block_task()
                .await
                .unwrap();
            assert!(listed.sessions.is_empty(), "{listed:?}");
            let gone = cx
                .send_request(load(&session, &ws))
                .block_task()
                .await
                .unwrap_err();
            assert!(gone.message.contains("unknown session"), "{gone:?}");
            let unknown = cx
                .send_request(DeleteSessionRequest::new("sess_nope"))
                .block_task()
                .await
                .unwrap_err();
            assert!(unknown.message.contains("unknown session"), "{unknown:?}");
        },
    )
    .await;
    assert!(
        request_text(&server, 1).contains("first"),
        "resume kept the history"
    );
    assert_eq!(record.lock().unwrap().message_text(), "two");
}

/// Writes a journal by hand, as a crash or another version would leave it.
fn write_journal(ws: &Path, id: &str, lines: &[String]) {
    let state = state_dir(ws);
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join(format!("{id}.jsonl")), lines.concat()).unwrap();
}

fn header(ws: &Path, id: &str, format: u32) -> String {
    format!(
        "{}\n",
        json!({"format": format, "punie": "9.9.9", "session": id, "cwd": ws, "created_at": "2026-01-01T00:00:00Z", "model": "m"})
    )
}

fn turn(prompt: &str, answer: &str) -> String {
    [
        json!({"type": "prompt", "at": "2026-01-01T00:00:01Z", "text": prompt}),
        json!({"type": "message", "message": {"role": "assistant", "content": answer}}),
        json!({"type": "turn_end", "at": "2026-01-01T00:00:02Z", "stop": "end_turn"}),
    ]
    .iter()
    .map(|r| format!("{r}\n"))
    .collect()
}

#[tokio::test]
async fn torn_damaged_and_future_journals_get_clear_answers() {
    let server = FakeModelServer::start().await;
    let (_dir, ws) = workspace();
    write_journal(
        &ws,
        "sess_torn",
        &[
            header(&ws, "sess_torn", 1),
            turn("kept", "yes"),
            "{\"type\":\"prom".into(),
        ],
    );
    write_journal(
        &ws,
        "sess_damaged",
        &[
            header(&ws, "sess_damaged", 1),
            turn("before", "fine"),
            "garbage\n".into(),
            turn("after", "lost"),
        ],
    );
    write_journal(&ws, "sess_future", &[header(&ws, "sess_future", 99)]);
    let (_, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, shared| {
            cx.send_request(load(&"sess_torn".into(), &ws))
                .block_task()
                .await
                .unwrap();
            assert_eq!(conversation(&shared.lock().unwrap()).0, "kept");
            shared.lock().unwrap().updates.clear();
            cx.send_request(load(&"sess_damaged".into(), &ws))
                .block_task()
                .await
                .unwrap();
            let future = cx
                .send_request(load(&"sess_future".into(), &ws))
                .block_task()
                .await
                .unwrap_err();
            assert!(future.message.contains("Punie 9.9.9"), "{future:?}");
            assert!(future.message.contains("upgrade Punie"), "{future:?}");
            let listed = cx
                .send_request(ListSessionsRequest::new())
                .block_task()
                .await
                .unwrap();
            assert_eq!(listed.sessions.len(), 3, "{listed:?}");
        },
    )
    .await;
    let record = record.lock().unwrap();
    assert_eq!(conversation(&record).0, "before");
    assert_eq!(record.message_text().matches("fine").count(), 1);
    let told = record.updates.iter().any(|u| match u {
        SessionUpdate::Notice(n) => format!("{n:?}").contains("Line 5"),
        SessionUpdate::AgentMessageChunk(c) => format!("{c:?}").contains("Line 5"),
        _ => false,
    });
    assert!(told, "the person is told what was skipped");
}

#[tokio::test]
async fn list_pages_through_many_sessions() {
    let server = FakeModelServer::start().await;
    let (_dir, ws) = workspace();
    for i in 0..60 {
        let id = format!("sess_many{i:02}");
        write_journal(&ws, &id, &[header(&ws, &id, 1)]);
    }
    let (pages, _) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let mut ids = Vec::new();
            let mut cursor: Option<String> = None;
            let mut pages = 0;
            loop {
                let page = cx
                    .send_request(
                        ListSessionsRequest::new()
                            .cwd(ws.clone())
                            .cursor(cursor.clone()),
                    )
                    .block_task()
                    .await
                    .unwrap();
                pages += 1;
                ids.extend(
                    page.sessions
                        .into_iter()
                        .map(|s| s.session_id.0.to_string()),
                );
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), 60, "every session once");
            pages
        },
    )
    .await;
    assert_eq!(pages, 2);
    let _ = Duration::ZERO;
}

/// A 1×1 PNG, base64.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==";

/// The blocks of every `user_message_chunk` received, in order, as JSON.
fn user_blocks(record: &Record) -> Vec<Value> {
    record
        .updates
        .iter()
        .filter_map(|u| match u {
            SessionUpdate::UserMessageChunk(chunk) => {
                Some(serde_json::to_value(&chunk.content).unwrap())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn load_replays_each_prompt_as_the_person_sent_it() {
    let server = FakeModelServer::start().await;
    server.sees(true);
    server.push(Reply::text("A pixel, and the notes say milk."));
    server.push(Reply::text("No bugs."));
    let (_dir, ws) = workspace();
    std::fs::create_dir_all(ws.join(".punie/commands")).unwrap();
    std::fs::write(
        ws.join(".punie/commands/review.md"),
        "Review $ARGUMENTS for bugs.",
    )
    .unwrap();
    std::fs::write(ws.join("notes.txt"), "milk\n").unwrap();
    let uri = format!("file://{}", ws.join("notes.txt").display());
    let sent = vec![
        ContentBlock::from("What is in this picture, and in my notes?"),
        ContentBlock::Image(ImageContent::new(PNG, "image/png")),
        ContentBlock::ResourceLink(ResourceLink::new("notes.txt", uri.clone())),
        ContentBlock::Resource(EmbeddedResource::new(
            EmbeddedResourceResource::TextResourceContents(
                TextResourceContents::new("milk\n", uri.clone()).mime_type("text/plain".to_owned()),
            ),
        )),
    ];
    let (session, _) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            let stop = cx
                .send_request(PromptRequest::new(session.clone(), sent.clone()))
                .block_task()
                .await
                .unwrap();
            assert_eq!(stop.stop_reason, StopReason::EndTurn);
            for typed in ["/review notes.txt", "/mode ask"] {
                let stop = prompt(&cx, &session, typed).await.unwrap();
                assert_eq!(stop.stop_reason, StopReason::EndTurn, "{typed}");
            }
            session
        },
    )
    .await;
    // The model read the expansion, the image and the file.
    let first = request_text(&server, 0);
    assert!(
        first.contains("image_url") && first.contains("<file path="),
        "{first}"
    );
    assert!(
        request_text(&server, 1).contains("Review notes.txt for bugs."),
        "the prompt file was expanded for the model"
    );
    let journal =
        std::fs::read_to_string(state_dir(&ws).join(format!("{}.jsonl", session.0))).unwrap();
    assert!(journal.starts_with("{\"format\":3,"), "{journal}");
    assert_eq!(journal.matches(PNG).count(), 1, "the image is kept once");

    let (_, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            cx.send_request(load(&session, &ws))
                .block_task()
                .await
                .unwrap();
        },
    )
    .await;
    let mut expected: Vec<Value> = sent
        .iter()
        .map(|b| serde_json::to_value(b).unwrap())
        .collect();
    expected.push(json!({"type": "text", "text": "/review notes.txt"}));
    expected.push(json!({"type": "text", "text": "/mode ask"}));
    assert_eq!(user_blocks(&record.lock().unwrap()), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn journals_of_formats_1_and_2_still_load_and_replay_their_prompts() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("ok"));
    let (_dir, ws) = workspace();
    write_journal(
        &ws,
        "sess_v1",
        &[header(&ws, "sess_v1", 1), turn("from version one", "one")],
    );
    let v2_prompt = json!({"type": "prompt", "at": "2026-01-01T00:00:01Z", "text": "look at this",
        "images": [{"mime_type": "image/png", "data": PNG}]});
    write_journal(
        &ws,
        "sess_v2",
        &[
            header(&ws, "sess_v2", 2),
            format!("{v2_prompt}\n"),
            format!("{}\n", json!({"type": "mode", "mode": "ask"})),
            format!(
                "{}\n",
                json!({"type": "message", "message": {"role": "assistant", "content": "a pixel"}})
            ),
            format!(
                "{}\n",
                json!({"type": "turn_end", "at": "2026-01-01T00:00:02Z", "stop": "end_turn"})
            ),
        ],
    );
    let (blocks, _) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, shared| {
            cx.send_request(load(&"sess_v1".into(), &ws))
                .block_task()
                .await
                .unwrap();
            let v1 = user_blocks(&shared.lock().unwrap());
            shared.lock().unwrap().updates.clear();
            let answer = cx
                .send_request(load(&"sess_v2".into(), &ws))
                .block_task()
                .await
                .unwrap();
            let mode = serde_json::to_value(answer.modes).unwrap();
            assert_eq!(mode["currentModeId"], "ask", "{mode}");
            let v2 = user_blocks(&shared.lock().unwrap());
            (v1, v2)
        },
    )
    .await;
    assert_eq!(
        blocks.0,
        [json!({"type": "text", "text": "from version one"})]
    );
    assert_eq!(
        blocks.1,
        [
            json!({"type": "text", "text": "look at this"}),
            json!({"type": "image", "mimeType": "image/png", "data": PNG}),
        ],
        "an older journal's image is shown again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn loading_a_session_this_connection_has_open_says_so() {
    let server = FakeModelServer::start().await;
    server.push(Reply::text("saved"));
    let (_dir, ws) = workspace();
    with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, _| {
            let session = new_session(&cx, &ws).await;
            prompt(&cx, &session, "save me").await.unwrap();
            let again = cx
                .send_request(load(&session, &ws))
                .block_task()
                .await
                .unwrap_err();
            assert_eq!(
                again.code,
                agent_client_protocol::ErrorCode::INVALID_REQUEST,
                "{again:?}"
            );
            assert!(
                again.message.contains("already open on this connection")
                    && again.message.contains("session/close"),
                "{again:?}"
            );
            let resumed = cx
                .send_request(ResumeSessionRequest::new(session.clone(), ws.clone()))
                .block_task()
                .await
                .unwrap_err();
            assert!(
                resumed.message.contains("already open on this connection"),
                "{resumed:?}"
            );
            // Closed, it loads again.
            cx.send_request(CloseSessionRequest::new(session.clone()))
                .block_task()
                .await
                .unwrap();
            cx.send_request(load(&session, &ws))
                .block_task()
                .await
                .unwrap();
        },
    )
    .await;
}

/// How many times the person was told `words` (as a notice, or in the answer for editors
/// without notices).
fn told(record: &Record, words: &str) -> usize {
    record
        .updates
        .iter()
        .filter(|u| match u {
            SessionUpdate::Notice(n) => format!("{n:?}").contains(words),
            SessionUpdate::AgentMessageChunk(c) => format!("{c:?}").contains(words),
            _ => false,
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_journal_that_cannot_be_written_is_told_once_and_the_turns_go_on() {
    let server = FakeModelServer::start().await;
    for answer in ["one", "two", "three", "four", "five"] {
        server.push(Reply::text(answer));
    }
    let (_dir, ws) = workspace();
    let state = state_dir(&ws);
    let (_, record) = with_editor(
        &server.base_url(),
        &ws,
        EditorOptions::default(),
        async |cx, shared| {
            let saved = new_session(&cx, &ws).await;
            let unsaved = new_session(&cx, &ws).await;
            prompt(&cx, &saved, "first").await.unwrap();
            // The sessions directory goes away under the open journal, a file in its place.
            std::fs::remove_dir_all(&state).unwrap();
            std::fs::write(&state, "not a directory").unwrap();
            for text in ["second", "third"] {
                let stop = prompt(&cx, &saved, text).await.unwrap();
                assert_eq!(stop.stop_reason, StopReason::EndTurn, "the turn goes on");
            }
            let lost = told(&shared.lock().unwrap(), "Saving this session failed");
            assert_eq!(lost, 1, "told once, not per record or per turn");
            // A session whose journal cannot even start: told once too.
            for text in ["fourth", "fifth"] {
                let stop = prompt(&cx, &unsaved, text).await.unwrap();
                assert_eq!(stop.stop_reason, StopReason::EndTurn);
            }
        },
    )
    .await;
    let record = record.lock().unwrap();
    assert_eq!(record.message_text().matches("two").count(), 1);
    assert!(record.message_text().contains("five"));
    assert_eq!(told(&record, "Saving this session failed"), 1);
    assert_eq!(
        told(&record, "lives only as long as this Punie process"),
        1,
        "{:?}",
        record.updates
    );
    let description = record
        .updates
        .iter()
        .find_map(|u| match u {
            SessionUpdate::AgentMessageChunk(c) if format!("{c:?}").contains("Saving this") => {
                Some(format!("{c:?}"))
            }
            SessionUpdate::Notice(n) if format!("{n:?}").contains("Saving this") => {
                Some(format!("{n:?}"))
            }
            _ => None,
        })
        .unwrap();
    assert!(
        description.contains(&state.display().to_string()) && description.contains("--state-dir"),
        "names what failed and the fix: {description}"
    );
}
