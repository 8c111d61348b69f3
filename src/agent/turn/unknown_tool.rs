//! What to answer a model that called a tool the session does not offer.
//!
//! Small models invent tool names: `run_tests`, `read`, `cat`, `search_code`, or the name of a
//! function they saw in the project (`calculate_total`). A bare "no such tool" makes a 0.5B model
//! repeat the call or give up, so the answer names the offered tool that does what the invented
//! name says, with a call to copy, and lists the rest.

use serde_json::json;

/// One offered tool and the words in an invented name that mean it, most telling first.
struct Meaning {
    tool: &'static str,
    words: &'static [&'static str],
    /// A call to copy; `{}` is replaced by a value taken from the invented name where one fits.
    example: fn(&str) -> serde_json::Value,
}

/// Checked in this order: "run_tests" means running tests, not reading them, so commands come
/// first; "find_file" means globbing, not grepping, so glob comes before grep.
const MEANINGS: &[Meaning] = &[
    Meaning {
        tool: "run_command",
        words: &[
            "test", "tests", "pytest", "unittest", "run", "exec", "execute", "shell", "bash", "sh",
            "terminal", "cmd", "command", "python", "cargo", "npm", "make", "build", "compile",
        ],
        example: |name| {
            if name.to_lowercase().contains("test") {
                json!({"command": "pytest"})
            } else {
                json!({"command": "ls"})
            }
        },
    },
    Meaning {
        tool: "write_file",
        words: &["write", "create", "save", "touch"],
        example: |_| json!({"path": "notes.txt", "content": "the whole new text"}),
    },
    Meaning {
        tool: "edit_file",
        words: &[
            "edit",
            "replace",
            "modify",
            "patch",
            "update",
            "change",
            "fix",
            "insert",
            "sed",
            "str_replace",
            "apply",
        ],
        example: |_| json!({"path": "src/app.py", "old_text": "the exact text", "new_text": "its replacement"}),
    },
    Meaning {
        tool: "glob",
        words: &[
            "glob",
            "locate",
            "find_file",
            "find_files",
            "file_search",
            "files",
        ],
        example: |_| json!({"pattern": "**/*.py"}),
    },
    Meaning {
        tool: "grep",
        words: &[
            "grep",
            "search",
            "find",
            "rg",
            "ack",
            "lookup",
            "query",
            "usages",
            "references",
        ],
        example: |_| json!({"pattern": "def main"}),
    },
    Meaning {
        tool: "list_dir",
        words: &["ls", "list", "dir", "directory", "folder", "tree", "browse"],
        example: |_| json!({"path": "."}),
    },
    Meaning {
        tool: "read_file",
        words: &[
            "read", "cat", "open", "view", "show", "file", "content", "contents", "load", "head",
        ],
        example: |name| json!({"path": path_in(name).unwrap_or("README.md")}),
    },
];

/// The tool error for a call to `name`, which is not among `offered`.
/// `named_command` is a command the person wrote in the request (see [`command_named`]): the
/// call to copy runs it rather than a guess.
pub(super) fn no_such_tool(name: &str, offered: &[&str], named_command: Option<&str>) -> String {
    let list = offered.join(", ");
    let mut text = format!("There is no tool named `{name}`.");
    if let Some(advice) = advice(name, offered, named_command) {
        text.push(' ');
        text.push_str(&advice);
    }
    text.push_str(&format!(" The tools are: {list}."));
    text
}

/// The one suggestion that fits best, if any.
fn advice(name: &str, offered: &[&str], named_command: Option<&str>) -> Option<String> {
    let normal = normalise(name);
    // The right tool in another spelling: `Read_File`, `functions.read_file`, `read-file`.
    if let Some(tool) = offered.iter().find(|tool| normalise(tool) == normal) {
        return Some(format!("Call it exactly `{tool}`."));
    }
    let words: Vec<&str> = normal.split('_').filter(|w| !w.is_empty()).collect();
    for meaning in MEANINGS {
        if !offered.contains(&meaning.tool) {
            continue;
        }
        let means = meaning
            .words
            .iter()
            .any(|word| words.contains(word) || (word.contains('_') && normal.contains(word)));
        if means {
            let example = match named_command {
                // "Run the tests with `python3 -m unittest`": that, not `pytest`.
                Some(command) if meaning.tool == "run_command" => json!({ "command": command }),
                _ => (meaning.example)(name),
            };
            let call = call_text(meaning.tool, &example);
            return Some(format!(
                "To do that, call {}, for example: {call}",
                meaning.tool
            ));
        }
    }
    // A near miss of an offered name: `read_fil`, `gerp`.
    if let Some(tool) = offered
        .iter()
        .filter(|tool| distance(&normalise(tool), &normal) <= 2)
        .min_by_key(|tool| distance(&normalise(tool), &normal))
    {
        return Some(format!("Did you mean `{tool}`?"));
    }
    // Something named like code: most likely a function or class in the project.
    if looks_like_code(name) && offered.contains(&"grep") && offered.contains(&"read_file") {
        let call = call_text("grep", &json!({"pattern": name}));
        return Some(format!(
            "`{name}` is not a tool; if it is something in the project, find it with {call}, \
             then read the file with read_file."
        ));
    }
    None
}

/// A call as a model writes it, the name first.
fn call_text(tool: &str, arguments: &serde_json::Value) -> String {
    format!(r#"{{"name": "{tool}", "arguments": {arguments}}}"#)
}

/// The first command the person wrote in backquotes in `request` ("Run the tests with
/// `python3 -m unittest`"): one line, at most 200 bytes, starting like a program's name (not
/// like `# a comment` or a `{json}` value).
pub(super) fn command_named(request: &str) -> Option<&str> {
    request
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::trim)
        .find(|span| {
            !span.is_empty()
                && span.len() <= 200
                && !span.contains('\n')
                && span
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/'))
        })
}

/// A path written into the name, as in `read_src/app.py`.
fn path_in(name: &str) -> Option<&str> {
    let (_, rest) = name.split_once(['_', ' ', ':', '('])?;
    let rest = rest.trim_matches(|c: char| "()'\"` ".contains(c));
    (rest.contains('/') || rest.contains('.')).then_some(rest)
}

/// Lower case, without a `functions.`-style namespace, words joined by `_`.
fn normalise(name: &str) -> String {
    let name = ["functions.", "function.", "tools.", "tool.", "default_api."]
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))
        .unwrap_or(name);
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_uppercase() && previous_lower {
            out.push('_');
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        match c {
            '-' | ' ' => out.push('_'),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// An identifier (`calculate_total`, `OrderBook`), as opposed to prose or punctuation.
fn looks_like_code(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Levenshtein distance, for short names only (both are tool names, bounded by the caller).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFERED: &[&str] = &[
        "read_file",
        "write_file",
        "edit_file",
        "list_dir",
        "glob",
        "grep",
        "run_command",
    ];

    #[test]
    fn the_command_the_person_named_is_the_call_to_copy() {
        let request =
            "Run the tests with `python3 -m unittest` and tell me the name of the test that fails.";
        let named = command_named(request);
        assert_eq!(named, Some("python3 -m unittest"));
        let text = no_such_tool("run_tests", OFFERED, named);
        assert!(
            text.contains(
                r#"{"name": "run_command", "arguments": {"command":"python3 -m unittest"}}"#
            ),
            "{text}"
        );
        // Only for commands: a read keeps its own example.
        assert!(no_such_tool("cat", OFFERED, named).contains("README.md"));
        assert_eq!(command_named("Add the comment `# reviewed` first"), None);
        assert_eq!(
            command_named("Use `{\"a\": 1}` or `` then `make check`"),
            Some("make check")
        );
        assert_eq!(command_named("no command here"), None);
    }

    #[test]
    fn a_test_runner_name_points_at_run_command_with_a_call_to_copy() {
        let text = no_such_tool("run_tests", OFFERED, None);
        assert!(
            text.starts_with("There is no tool named `run_tests`."),
            "{text}"
        );
        assert!(
            text.contains(r#"{"name": "run_command", "arguments": {"command":"pytest"}}"#),
            "{text}"
        );
        assert!(text.ends_with(
            "The tools are: read_file, write_file, edit_file, list_dir, glob, grep, run_command."
        ));
    }

    #[test]
    fn reading_words_point_at_read_file_and_searching_words_at_grep() {
        assert!(no_such_tool("cat", OFFERED, None).contains("call read_file"));
        assert!(no_such_tool("openFile", OFFERED, None).contains("call read_file"));
        assert!(no_such_tool("search_code", OFFERED, None).contains("call grep"));
        assert!(no_such_tool("find_files", OFFERED, None).contains("call glob"));
        assert!(no_such_tool("ls", OFFERED, None).contains("call list_dir"));
        assert!(no_such_tool("str_replace", OFFERED, None).contains("call edit_file"));
    }

    #[test]
    fn another_spelling_of_an_offered_name_is_corrected() {
        assert!(
            no_such_tool("functions.Read_File", OFFERED, None)
                .contains("Call it exactly `read_file`.")
        );
        assert!(no_such_tool("list-dir", OFFERED, None).contains("Call it exactly `list_dir`."));
        assert!(no_such_tool("gerp", OFFERED, None).contains("Did you mean `grep`?"));
    }

    #[test]
    fn a_name_from_the_code_is_found_with_grep_then_read() {
        let text = no_such_tool("calculate_total", OFFERED, None);
        assert!(
            text.contains(r#"{"name": "grep", "arguments": {"pattern":"calculate_total"}}"#),
            "{text}"
        );
        assert!(text.contains("read_file"), "{text}");
    }

    #[test]
    fn a_path_in_the_name_goes_into_the_example() {
        let text = no_such_tool("read_inventory/report.py", OFFERED, None);
        assert!(
            text.contains(r#"{"name": "read_file", "arguments": {"path":"inventory/report.py"}}"#),
            "{text}"
        );
    }

    #[test]
    fn only_offered_tools_are_suggested() {
        let read_only = &["read_file", "grep"];
        let text = no_such_tool("run_tests", read_only, None);
        assert!(!text.contains("run_command"), "{text}");
        assert!(text.ends_with("The tools are: read_file, grep."), "{text}");
        // Nothing fits: the plain answer with the list.
        assert_eq!(
            no_such_tool("???", read_only, None),
            "There is no tool named `???`. The tools are: read_file, grep."
        );
    }
}
