//! How long `session/list` takes over many saved sessions: writes N journals (default 1,000)
//! of T turns each (default 20) in a temporary directory, in the documented format, and times
//! `SessionStore::list` (the first page, what `session/list` answers) with the summary files,
//! then without them (the fallback that reads each journal's header), and one full load.
//!
//! `cargo run --release --example sessions_bench [N] [TURNS]`

use std::io::Write;
use std::time::Instant;

use punie::agent::journal::{SessionStore, Summary};
use serde_json::json;

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let turns: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let store = SessionStore::open(dir.path().join("sessions")).unwrap();
    let answer = "A plausible answer of a few sentences about the code. ".repeat(8);
    let mut bytes = 0;
    for i in 0..count {
        let id = format!("sess_bench{i:05}");
        let cwd = format!("/work/project{}", i % 10);
        let mut text = format!(
            "{}\n",
            json!({"format": 1, "punie": "bench", "session": id, "cwd": cwd,
                   "created_at": "2026-01-01T00:00:00Z", "model": "bench"})
        );
        for t in 0..turns {
            for record in [
                json!({"type": "prompt", "at": "2026-01-01T00:00:01Z", "text": format!("question {t}")}),
                json!({"type": "message", "message": {"role": "assistant", "content": answer}}),
                json!({"type": "turn_end", "at": format!("2026-01-01T00:{:02}:{:02}Z", i / 60 % 60, i % 60), "stop": "end_turn"}),
            ] {
                text.push_str(&record.to_string());
                text.push('\n');
            }
        }
        bytes += text.len();
        let mut file = std::fs::File::create(store.journal_path(&id)).unwrap();
        file.write_all(text.as_bytes()).unwrap();
        let summary = Summary {
            session: id.clone(),
            cwd: cwd.into(),
            title: Some("question 0".into()),
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: format!("2026-01-01T00:{:02}:{:02}Z", i / 60 % 60, i % 60),
        };
        std::fs::write(
            store.dir().join(format!("{id}.json")),
            serde_json::to_vec(&summary).unwrap(),
        )
        .unwrap();
    }
    println!(
        "{count} journals of {turns} turns, {:.1} MB in all",
        bytes as f64 / 1e6
    );
    let time = |label: &str, f: &dyn Fn() -> usize| {
        let _ = f(); // warm the page cache, as a running machine has it
        let runs = 5;
        let start = Instant::now();
        let mut n = 0;
        for _ in 0..runs {
            n = f();
        }
        let each = start.elapsed() / runs;
        println!(
            "{label}: {:.2} ms ({n} sessions or messages)",
            each.as_secs_f64() * 1e3
        );
    };
    time("session/list, first page, with summaries", &|| {
        store.list(None, None).unwrap().sessions.len()
    });
    time("session/list, one workspace, with summaries", &|| {
        store
            .list(Some(std::path::Path::new("/work/project3")), None)
            .unwrap()
            .sessions
            .len()
    });
    for i in 0..count {
        std::fs::remove_file(store.dir().join(format!("sess_bench{i:05}.json"))).unwrap();
    }
    time(
        "session/list, first page, headers only (no summaries)",
        &|| store.list(None, None).unwrap().sessions.len(),
    );
    time("one full load (read and rebuild one journal)", &|| {
        store.read("sess_bench00000").unwrap().history.len()
    });
}
