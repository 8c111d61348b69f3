//! The tasks: a prompt a user would type about the sample project
//! (`tests/fixtures/real_tasks/project/`), how the editor answers permission prompts, and a check
//! that needs no judgement: the project's own tests, Python's `ast`, the files' bytes, or a
//! fact read from the fixture (never a hard-coded answer).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::editor::Permissions;

/// What a task does besides prompting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Prompt and wait for the turn to end.
    Prompt,
    /// Prompt, then cancel once Punie shows progress (or after a while): the turn must stop.
    Cancel,
}

/// One task.
pub struct Task {
    pub name: &'static str,
    pub prompt: &'static str,
    pub permissions: Permissions,
    pub kind: Kind,
    pub check: fn(&Outcome) -> Result<String, String>,
}

/// What a turn left behind, for the checks.
pub struct Outcome {
    /// The task's copy of the project.
    pub project: PathBuf,
    /// Every file of the copy before the turn.
    pub before: BTreeMap<PathBuf, Vec<u8>>,
    /// The answer's text.
    pub answer: String,
    /// The stop reason, as ACP names it (`end_turn`, `cancelled` …).
    pub stop: String,
    /// Commands run in editor terminals.
    pub commands: Vec<String>,
    /// Permission prompts the editor answered.
    pub permissions_asked: usize,
    /// For the cancel task: from `session/cancel` to the prompt's answer.
    pub cancel_answered: Option<Duration>,
    /// For the cancel task: from the answer until llama-server's slot was idle.
    pub server_idle: Option<Duration>,
}

/// The uncounted prompt before the tasks (`--warm-up`).
pub const WARM_UP: Task = Task {
    name: "warm_up",
    prompt: "Say OK.",
    permissions: Permissions::Reject,
    kind: Kind::Prompt,
    check: |_| Ok("not a task".into()),
};

/// Every task, in the order they run.
pub const TASKS: &[Task] = &[
    Task {
        name: "answer_from_file",
        prompt: "Which port does the inventory web service listen on? The setting is in inventory/config.py.",
        permissions: Permissions::Approve,
        kind: Kind::Prompt,
        check: answer_from_file,
    },
    Task {
        name: "find_definition",
        prompt: "In which file, and on which line, is the function format_row defined? Answer as path:line.",
        permissions: Permissions::Approve,
        kind: Kind::Prompt,
        check: find_definition,
    },
    Task {
        name: "find_class",
        prompt: "Which file of this project defines the class Warehouse?",
        permissions: Permissions::Approve,
        kind: Kind::Prompt,
        check: find_class,
    },
    Task {
        name: "name_failing_test",
        prompt: "Run the tests with `python3 -m unittest` and tell me the name of the test that fails.",
        permissions: Permissions::Approve,
        kind: Kind::Prompt,
        check: name_failing_test,
    },
    Task {
        name: "fix_bug",
        prompt: "The test in tests/test_pricing.py fails: apply_discount in inventory/pricing.py returns the wrong price. Fix the bug in inventory/pricing.py.",
        permissions: Permissions::Approve,
        kind: Kind::Prompt,
        check: fix_bug,
    },
    Task {
        name: "add_docstring",
        prompt: "Add a docstring to the function restock_level in inventory/stock.py.",
        permissions: Permissions::Approve,
        kind: Kind::Prompt,
        check: add_docstring,
    },
    Task {
        name: "rename_function",
        prompt: "Rename the function count_units to total_units everywhere in the project: its definition and every use.",
        permissions: Permissions::Approve,
        kind: Kind::Prompt,
        check: rename_function,
    },
    Task {
        name: "new_test_file",
        prompt: "Create a new test file tests/test_report.py with a unittest test case for format_row from inventory/report.py.",
        permissions: Permissions::Approve,
        kind: Kind::Prompt,
        check: new_test_file,
    },
    Task {
        name: "rejected_write",
        prompt: "Add the comment `# reviewed` as the first line of inventory/config.py.",
        permissions: Permissions::Reject,
        kind: Kind::Prompt,
        check: rejected_write,
    },
    Task {
        name: "cancelled_turn",
        prompt: "Explain every function in inventory/stock.py in detail, with an example for each.",
        permissions: Permissions::Approve,
        kind: Kind::Cancel,
        check: cancelled_turn,
    },
];

fn answer_from_file(o: &Outcome) -> Result<String, String> {
    let port = assignment(&o.project.join("inventory/config.py"), "SERVICE_PORT")?;
    if has_word(&o.answer, &port) {
        Ok(format!("the answer names port {port}"))
    } else {
        Err(format!("the answer does not name port {port}"))
    }
}

fn find_definition(o: &Outcome) -> Result<String, String> {
    let line = line_of(&o.project.join("inventory/report.py"), "def format_row(")?;
    let file = o.answer.contains("report.py");
    let number = has_word(&o.answer, &line.to_string());
    match (file, number) {
        (true, true) => Ok(format!("the answer names report.py and line {line}")),
        (false, _) => Err("the answer does not name inventory/report.py".into()),
        (true, false) => Err(format!("the answer names report.py but not line {line}")),
    }
}

fn find_class(o: &Outcome) -> Result<String, String> {
    if !o.answer.contains("stock.py") {
        return Err("the answer does not name inventory/stock.py".into());
    }
    let others = ["pricing.py", "report.py", "config.py"];
    match others.iter().find(|other| o.answer.contains(*other)) {
        Some(other) => Err(format!("the answer names stock.py but also {other}")),
        None => Ok("the answer names stock.py only".into()),
    }
}

fn name_failing_test(o: &Outcome) -> Result<String, String> {
    let ran = o.commands.iter().any(|c| c.contains("unittest"));
    // The failing test, as the project's own run names it.
    let run = python(&o.project, &["-m", "unittest"])?;
    let failing: Vec<&str> = run
        .1
        .lines()
        .filter_map(|l| l.strip_prefix("FAIL: "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let Some(test) = failing.first() else {
        return Err("no test fails in the project any more (the task changed files)".into());
    };
    match (ran, has_word(&o.answer, test)) {
        (true, true) => Ok(format!("ran the tests; the answer names {test}")),
        (false, true) => Err(format!(
            "the answer names {test}, but no unittest command ran"
        )),
        (_, false) => Err(format!("the answer does not name {test}")),
    }
}

fn fix_bug(o: &Outcome) -> Result<String, String> {
    unchanged(o, "tests/")?;
    let (ok, output) = python(&o.project, &["-m", "unittest"])?;
    if ok {
        Ok("python3 -m unittest passes; tests/ unchanged".into())
    } else {
        Err(format!(
            "python3 -m unittest still fails: {}",
            last_line(&output)
        ))
    }
}

fn add_docstring(o: &Outcome) -> Result<String, String> {
    let script = "import ast, sys\n\
        tree = ast.parse(open('inventory/stock.py').read())\n\
        f = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == 'restock_level']\n\
        sys.exit(0 if f and ast.get_docstring(f[0]) else 1)";
    let (ok, output) = python(&o.project, &["-c", script])?;
    if !ok {
        return Err(format!(
            "restock_level has no docstring (or stock.py does not parse): {}",
            last_line(&output)
        ));
    }
    let (ok, output) = python(&o.project, &["-m", "unittest", "tests.test_stock"])?;
    if ok {
        Ok("restock_level has a docstring; tests.test_stock passes".into())
    } else {
        Err(format!(
            "docstring added, but tests.test_stock fails: {}",
            last_line(&output)
        ))
    }
}

fn rename_function(o: &Outcome) -> Result<String, String> {
    let files = snapshot(&o.project)?;
    let left: Vec<String> = files
        .iter()
        .filter(|(_, bytes)| String::from_utf8_lossy(bytes).contains("count_units"))
        .map(|(path, _)| path.display().to_string())
        .collect();
    if !left.is_empty() {
        return Err(format!("count_units is still in {}", left.join(", ")));
    }
    let stock = std::fs::read_to_string(o.project.join("inventory/stock.py")).unwrap_or_default();
    if !stock.contains("def total_units(") {
        return Err("inventory/stock.py does not define total_units".into());
    }
    let (ok, output) = python(&o.project, &["-m", "unittest", "tests.test_stock"])?;
    if ok {
        Ok("no count_units left; total_units defined; tests.test_stock passes".into())
    } else {
        Err(format!(
            "renamed, but tests.test_stock fails: {}",
            last_line(&output)
        ))
    }
}

fn new_test_file(o: &Outcome) -> Result<String, String> {
    let path = o.project.join("tests/test_report.py");
    if !path.is_file() {
        return Err("tests/test_report.py was not created".into());
    }
    let (ok, output) = python(&o.project, &["-m", "unittest", "-v", "tests.test_report"])?;
    let ran = output
        .lines()
        .find_map(|l| l.strip_prefix("Ran "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    match (ok, ran) {
        (true, n) if n > 0 => Ok(format!("tests/test_report.py runs {n} passing test(s)")),
        (true, _) => Err("tests/test_report.py runs no test".into()),
        (false, _) => Err(format!(
            "tests/test_report.py fails: {}",
            last_line(&output)
        )),
    }
}

fn rejected_write(o: &Outcome) -> Result<String, String> {
    unchanged(o, "")?;
    if o.permissions_asked == 0 {
        return Err(
            "files unchanged, but Punie never asked to write (nothing was rejected)".into(),
        );
    }
    Ok(format!(
        "{} write(s) rejected; every file unchanged",
        o.permissions_asked
    ))
}

fn cancelled_turn(o: &Outcome) -> Result<String, String> {
    if o.stop != "cancelled" {
        return Err(format!("the turn ended with {}, not cancelled", o.stop));
    }
    unchanged(o, "")?;
    let answered = o
        .cancel_answered
        .map_or("?".into(), |d| format!("{:.1} s", d.as_secs_f64()));
    match o.server_idle {
        Some(idle) => Ok(format!(
            "cancelled {answered} after session/cancel; server idle {:.1} s later",
            idle.as_secs_f64()
        )),
        None => Err(format!(
            "cancelled {answered} after session/cancel, but llama-server kept generating"
        )),
    }
}

// Helpers -----------------------------------------------------------------------------------

/// Every file under `dir` (relative path → bytes), byte caches left out.
pub fn snapshot(dir: &Path) -> Result<BTreeMap<PathBuf, Vec<u8>>, String> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(at) = stack.pop() {
        let entries = std::fs::read_dir(&at).map_err(|e| format!("{}: {e}", at.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.file_name().is_some_and(|n| n == "__pycache__") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let relative = path.strip_prefix(dir).unwrap_or(&path).to_owned();
                files.insert(relative, bytes);
            }
        }
    }
    Ok(files)
}

/// Copies the fixture project into `to` (which must not exist).
pub fn copy_project(from: &Path, to: &Path) -> Result<(), String> {
    for (relative, bytes) in snapshot(from)? {
        let path = to.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// The files under `prefix` are byte for byte as before, and none was added or removed.
fn unchanged(o: &Outcome, prefix: &str) -> Result<(), String> {
    let now = snapshot(&o.project)?;
    let under = |m: &BTreeMap<PathBuf, Vec<u8>>| -> BTreeMap<PathBuf, Vec<u8>> {
        m.iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect()
    };
    let (before, after) = (under(&o.before), under(&now));
    if before == after {
        return Ok(());
    }
    let mut changed: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|p| before.get(*p) != after.get(*p))
        .map(|p| p.display().to_string())
        .collect();
    changed.dedup();
    Err(format!("changed: {}", changed.join(", ")))
}

/// Runs `python3 ARGS` in `dir` (60 s at most): (exit 0, stdout and stderr).
fn python(dir: &Path, args: &[&str]) -> Result<(bool, String), String> {
    let mut child = std::process::Command::new("python3")
        .args(args)
        .current_dir(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    let started = std::time::Instant::now();
    loop {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("python3 {} ran over 60 s", args.join(" ")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok((output.status.success(), text))
}

/// The value of `NAME = value` in a Python file.
fn assignment(file: &Path, name: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim_start().strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .ok_or_else(|| format!("{} has no {name} = …", file.display()))
}

/// The 1-based number of the first line of `file` that starts with `start`.
fn line_of(file: &Path, start: &str) -> Result<usize, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    text.lines()
        .position(|l| l.starts_with(start))
        .map(|i| i + 1)
        .ok_or_else(|| format!("{} has no line starting {start:?}", file.display()))
}

/// `word` occurs in `text` with no letter, digit or underscore right before or after it.
fn has_word(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(160)
        .collect()
}
