use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;
use crate::llm::{Message, ToolCall};

fn store() -> (tempfile::TempDir, SessionStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(dir.path().join("sessions")).unwrap();
    (dir, store)
}

fn answer(text: &str) -> Message {
    Message::Assistant {
        content: Some(text.into()),
        tool_calls: Vec::new(),
    }
}

fn one_turn(store: &SessionStore, id: &str, cwd: &Path, prompt: &str) {
    let journal = store.create(id, cwd, "test model").unwrap();
    journal.begin_turn(&[], &prompt.into());
    let after = [
        Message::User {
            content: prompt.into(),
        },
        answer("hello"),
    ];
    journal.end_turn(Some(&after), "end_turn");
}

#[test]
fn a_completed_turn_reads_back_with_its_title_and_private_files() {
    let (_dir, store) = store();
    one_turn(
        &store,
        "s1",
        Path::new("/work/a"),
        "Fix the parser\nin detail",
    );
    let (journal, loaded) = store.open_session("s1").unwrap();
    assert_eq!(loaded.header.cwd, Path::new("/work/a"));
    assert_eq!(loaded.title.as_deref(), Some("Fix the parser"));
    assert_eq!(journal.title().as_deref(), Some("Fix the parser"));
    assert!(!loaded.interrupted);
    assert_eq!(
        loaded.history,
        [
            Message::User {
                content: "Fix the parser\nin detail".into()
            },
            answer("hello")
        ]
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(store.dir()), 0o700);
    assert_eq!(mode(&store.journal_path("s1")), 0o600);
    assert_eq!(mode(&store.dir().join("s1.json")), 0o600);
}

#[test]
fn a_second_writer_is_refused_until_the_first_is_gone() {
    let (_dir, store) = store();
    let first = store.create("s1", Path::new("/w"), "m").unwrap();
    let error = store.open_session("s1").unwrap_err();
    assert!(matches!(error, JournalError::Locked(_)), "{error}");
    assert!(
        error.to_string().contains("another Punie process"),
        "{error}"
    );
    assert!(matches!(store.delete("s1"), Err(JournalError::Locked(_))));
    drop(first);
    assert!(store.open_session("s1").is_ok());
}

#[test]
fn an_unfinished_turn_is_closed_and_marked_interrupted() {
    let (_dir, store) = store();
    let journal = store.create("s1", Path::new("/w"), "m").unwrap();
    journal.begin_turn(&[], &"run it".into());
    journal.sync(&[
        Message::User {
            content: "run it".into(),
        },
        Message::Assistant {
            content: None,
            tool_calls: vec![ToolCall {
                id: "c1".into(),
                name: "run_command".into(),
                arguments: "{}".into(),
            }],
        },
    ]);
    drop(journal);
    let (_journal, loaded) = store.open_session("s1").unwrap();
    assert!(loaded.interrupted);
    assert!(
        matches!(&loaded.history[2], Message::Tool { tool_call_id, content } if tool_call_id == "c1" && content == UNFINISHED_CALL)
    );
    assert_eq!(loaded.history[3], answer(INTERRUPTED_TURN));
    // The session goes on; read again later, the cut turn is still closed the same way.
    let journal = _journal;
    journal.begin_turn(&loaded.history, &"next".into());
    let mut after = loaded.history.clone();
    after.push(Message::User {
        content: "next".into(),
    });
    after.push(answer("done"));
    journal.end_turn(Some(&after), "end_turn");
    drop(journal);
    let (_journal, again) = store.open_session("s1").unwrap();
    assert!(!again.interrupted);
    assert_eq!(again.history[..4], loaded.history[..]);
    assert_eq!(again.history.len(), 6);
}

#[test]
fn a_failed_turn_leaves_the_history_as_before() {
    let (_dir, store) = store();
    let journal = store.create("s1", Path::new("/w"), "m").unwrap();
    journal.begin_turn(&[], &"one".into());
    journal.sync(&[
        Message::User {
            content: "one".into(),
        },
        answer("partial"),
    ]);
    journal.end_turn(None, "failed");
    drop(journal);
    let (_journal, loaded) = store.open_session("s1").unwrap();
    assert!(loaded.history.is_empty());
    assert!(!loaded.interrupted);
}

#[test]
fn a_compaction_is_journaled_and_a_failed_turn_undoes_it() {
    let (_dir, store) = store();
    one_turn(&store, "s1", Path::new("/w"), "first");
    let (journal, loaded) = store.open_session("s1").unwrap();
    journal.begin_turn(&loaded.history, &"second".into());
    let summary = Message::User {
        content: "summary of the first turn".into(),
    };
    let compacted = [
        summary.clone(),
        Message::User {
            content: "second".into(),
        },
        answer("two"),
    ];
    journal.end_turn(Some(&compacted), "end_turn");
    journal.begin_turn(&compacted, &"third".into());
    let mut shorter = vec![summary];
    shorter.push(Message::User {
        content: "third".into(),
    });
    journal.sync(&shorter);
    journal.end_turn(None, "failed");
    drop(journal);
    let (_journal, again) = store.open_session("s1").unwrap();
    assert_eq!(
        again.history, compacted,
        "the compacted history, without the failed turn"
    );
}

#[test]
fn a_torn_last_line_is_dropped_and_the_journal_goes_on_after_it() {
    let (_dir, store) = store();
    one_turn(&store, "s1", Path::new("/w"), "hi");
    let path = store.journal_path("s1");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(br#"{"type":"prompt","at":"x","te"#).unwrap();
    drop(file);
    let (journal, loaded) = store.open_session("s1").unwrap();
    assert_eq!(loaded.history.len(), 2);
    assert!(loaded.problems.is_empty());
    journal.begin_turn(&loaded.history, &"again".into());
    journal.end_turn(None, "cancelled");
    drop(journal);
    let (_journal, loaded) = store.open_session("s1").unwrap();
    assert_eq!(
        loaded.skipped, 0,
        "the torn bytes were cut before appending"
    );
    assert_eq!(loaded.records.len(), 6);
}

#[test]
fn a_damaged_record_in_the_middle_loads_what_is_before_and_says_so() {
    let (_dir, store) = store();
    one_turn(&store, "s1", Path::new("/w"), "first");
    let path = store.journal_path("s1");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(b"{not json}\n").unwrap();
    file.write_all(br#"{"type":"prompt","at":"x","text":"later"}"#)
        .unwrap();
    file.write_all(b"\n").unwrap();
    drop(file);
    let (_journal, loaded) = store.open_session("s1").unwrap();
    assert_eq!(loaded.history.len(), 2);
    assert_eq!(loaded.skipped, 2);
    assert!(
        loaded.problems[0].contains("Line 6"),
        "{:?}",
        loaded.problems
    );
    let copies = std::fs::read_dir(store.dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".damaged-")
        })
        .count();
    assert_eq!(copies, 1, "the damaged original is kept");
}

#[test]
fn a_journal_from_a_newer_format_is_refused_naming_its_punie() {
    let (_dir, store) = store();
    std::fs::write(
        store.journal_path("s9"),
        r#"{"format":7,"punie":"9.1.0","session":"s9","cwd":"/w","created_at":"x","model":"m"}
"#,
    )
    .unwrap();
    let error = store.open_session("s9").unwrap_err();
    assert!(
        matches!(error, JournalError::NewerFormat { format: 7, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("Punie 9.1.0"), "{error}");
}

#[test]
fn ids_that_are_not_file_names_are_refused() {
    let (_dir, store) = store();
    for id in ["../x", "", "a/b", "a.b"] {
        assert!(
            matches!(store.open_session(id), Err(JournalError::BadId(_))),
            "{id}"
        );
    }
    assert!(matches!(
        store.open_session("missing"),
        Err(JournalError::NotFound(_))
    ));
}

#[test]
fn lists_page_by_page_newest_first_and_filter_by_cwd() {
    let (_dir, store) = store();
    for i in 0..(LIST_PAGE + 5) {
        let cwd = if i % 2 == 0 { "/even" } else { "/odd" };
        one_turn(&store, &format!("s{i:03}"), Path::new(cwd), "hi");
    }
    let first = store.list(None, None).unwrap();
    assert_eq!(first.sessions.len(), LIST_PAGE);
    let second = store.list(None, first.next_cursor.as_deref()).unwrap();
    assert_eq!(second.sessions.len(), 5);
    assert!(second.next_cursor.is_none());
    let all: Vec<_> = first.sessions.iter().chain(&second.sessions).collect();
    assert!(all.windows(2).all(|w| w[0].updated_at >= w[1].updated_at));
    let odd = store.list(Some(Path::new("/odd")), None).unwrap();
    assert_eq!(odd.sessions.len(), (LIST_PAGE + 5) / 2);
    assert!(odd.sessions.iter().all(|s| s.cwd == Path::new("/odd")));
}

#[test]
fn pruning_keeps_the_newest_and_skips_sessions_open_elsewhere() {
    let (_dir, store) = store();
    for i in 0..4 {
        one_turn(&store, &format!("s{i}"), Path::new("/w"), "hi");
    }
    let newest = store.all().unwrap()[0].session.clone();
    let held = store
        .open_session(&store.all().unwrap()[3].session)
        .unwrap();
    let deleted = store.prune(Retention {
        max_age: None,
        max_count: Some(1),
    });
    assert_eq!(deleted, 2, "the one open elsewhere is kept");
    let left: Vec<_> = store
        .all()
        .unwrap()
        .into_iter()
        .map(|s| s.session)
        .collect();
    assert!(left.contains(&newest));
    assert_eq!(left.len(), 2);
    drop(held);
}

#[test]
fn images_of_a_prompt_and_of_tool_results_are_kept() {
    let (_dir, store) = store();
    let journal = store
        .create("s-img", Path::new("/work/a"), "test model")
        .unwrap();
    let shown = crate::image::Image::new("image/png", "YWJj");
    let from_tool = crate::image::Image::new("image/jpeg", "/9j/");
    journal.begin_turn(
        &[],
        &crate::agent::Prompt::new("what is this?", vec![shown.clone()]),
    );
    let after = [
        Message::User {
            content: "what is this?".into(),
        },
        Message::Images {
            images: vec![shown.clone()],
        },
        Message::Assistant {
            content: None,
            tool_calls: vec![ToolCall {
                id: "c1".into(),
                name: "shot".into(),
                arguments: "{}".into(),
            }],
        },
        Message::Tool {
            tool_call_id: "c1".into(),
            content: "[image: image/jpeg, 3 bytes]".into(),
        },
        Message::Images {
            images: vec![from_tool.clone()],
        },
        answer("a red square"),
    ];
    journal.end_turn(Some(&after), "end_turn");
    drop(journal);
    let (_journal, loaded) = store.open_session("s-img").unwrap();
    assert_eq!(loaded.history, after);
}

#[test]
fn a_prompt_keeps_its_blocks_once_and_its_images_once() {
    use crate::agent::{Prompt, PromptBlock};
    let (_dir, store) = store();
    let journal = store
        .create("s-blocks", Path::new("/work/a"), "test model")
        .unwrap();
    let image = crate::image::Image::new("image/png", "YWJj");
    let big = "x".repeat(super::format::MAX_SHOWN_TEXT + 1);
    let sent = vec![
        PromptBlock::Text {
            text: "/review a.rs".into(),
        },
        PromptBlock::Image {
            image: Some(0),
            mime_type: "image/png".into(),
            uri: None,
        },
        PromptBlock::Resource {
            uri: "file:///work/a/big.txt".into(),
            mime_type: None,
            text: Some(big.clone()),
        },
    ];
    let prompt =
        Prompt::new(format!("Review a.rs.\n{big}"), vec![image.clone()]).with_blocks(sent.clone());
    journal.begin_turn(&[], &prompt);
    journal.end_turn(None, "failed");
    // A prompt that was its text alone writes no blocks.
    journal.begin_turn(
        &[],
        &Prompt::from("plain").with_blocks(prompt_text("plain")),
    );
    journal.end_turn(None, "failed");
    drop(journal);
    let text = std::fs::read_to_string(store.journal_path("s-blocks")).unwrap();
    assert_eq!(text.matches("YWJj").count(), 1, "{text}");
    assert_eq!(text.matches(&big).count(), 1, "the model's copy only");
    let (_journal, loaded) = store.open_session("s-blocks").unwrap();
    let blocks: Vec<_> = loaded
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Prompt { blocks, .. } => Some(blocks.clone()),
            _ => None,
        })
        .collect();
    let mut kept = sent;
    kept[2] = PromptBlock::Resource {
        uri: "file:///work/a/big.txt".into(),
        mime_type: None,
        text: None,
    };
    assert_eq!(blocks, [kept, Vec::new()]);
    assert_eq!(
        loaded.title.as_deref(),
        Some("/review a.rs"),
        "the title is what was typed"
    );
}

fn prompt_text(text: &str) -> Vec<crate::agent::PromptBlock> {
    vec![crate::agent::PromptBlock::Text { text: text.into() }]
}
