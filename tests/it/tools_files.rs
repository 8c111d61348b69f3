//! `edit_file` (exact replacement, with errors that help the model) and `read_file` paging,
//! through the local workspace.

use std::path::PathBuf;

use punie::testing::tool_context;
use punie::tools::builtin::{EditFile, ReadFile};
use punie::tools::{Tool, ToolContext, ToolError, ToolOutput};
use punie::workspace::local::{LocalOptions, local_workspace};
use punie::workspace::{ToolContent, WorkspaceError};
use serde_json::{Value, json};

struct Workspace {
    _temp: tempfile::TempDir,
    root: PathBuf,
    ctx: ToolContext,
}

impl Workspace {
    fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().canonicalize().unwrap();
        let workspace = local_workspace(root.clone(), LocalOptions::default()).unwrap();
        let ctx = tool_context(workspace);
        Self {
            _temp: temp,
            root,
            ctx,
        }
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.root.join(name), text).unwrap();
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.root.join(name)).unwrap()
    }

    async fn call(&self, tool: &dyn Tool, args: Value) -> Result<ToolOutput, ToolError> {
        tool.call(args, &self.ctx).await
    }
}

fn failure(result: Result<impl std::fmt::Debug, ToolError>) -> String {
    match result {
        Err(ToolError::Failed(message)) => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

const CODE: &str = "fn main() {\n    let x = 1;\n    let y = 1;\n    println!(\"{}\", x + y);\n}\n";

#[tokio::test]
async fn an_edit_shows_its_diff_first_then_writes() {
    let ws = Workspace::new();
    ws.write("main.rs", CODE);
    let args = json!({"path": "main.rs", "old_text": "let y = 1;", "new_text": "let y = 2;"});
    let expected = CODE.replace("let y = 1;", "let y = 2;");

    let preview = EditFile.preview(&args, &ws.ctx).await.unwrap();
    assert_eq!(
        preview,
        vec![ToolContent::Diff {
            path: ws.root.join("main.rs"),
            old_text: Some(CODE.to_owned()),
            new_text: expected.clone(),
        }]
    );
    assert_eq!(ws.read("main.rs"), CODE, "the preview must not write");
    assert!(EditFile.needs_permission());

    let output = ws.call(&EditFile, args).await.unwrap();
    assert_eq!(
        output.text,
        "Edited main.rs: replaced 1 occurrence at line 3."
    );
    assert_eq!(ws.read("main.rs"), expected);
}

#[tokio::test]
async fn ambiguous_edits_ask_for_context_or_replace_all() {
    let ws = Workspace::new();
    ws.write("main.rs", CODE);
    let args = json!({"path": "main.rs", "old_text": " = 1;", "new_text": " = 3;"});
    let message = failure(EditFile.preview(&args, &ws.ctx).await);
    assert_eq!(
        message,
        "old_text occurs 2 times in main.rs (at lines 2, 3); include more of the surrounding \
         lines in old_text so that it matches exactly once, or set replace_all to true to \
         replace every occurrence"
    );
    let message = failure(ws.call(&EditFile, args).await);
    assert!(message.contains("occurs 2 times"), "{message}");
    assert_eq!(ws.read("main.rs"), CODE);

    let args =
        json!({"path": "main.rs", "old_text": " = 1;", "new_text": " = 3;", "replace_all": true});
    let output = ws.call(&EditFile, args).await.unwrap();
    assert_eq!(
        output.text,
        "Edited main.rs: replaced 2 occurrences at lines 2, 3."
    );
    assert_eq!(ws.read("main.rs"), CODE.replace(" = 1;", " = 3;"));
}

#[tokio::test]
async fn missing_text_is_explained() {
    let ws = Workspace::new();
    ws.write("main.rs", CODE);
    // Indentation lost: the model is told where the text is and what it looks like.
    let args = json!({"path": "main.rs", "old_text": "let x = 1;\nlet y = 1;", "new_text": ""});
    let message = failure(EditFile.preview(&args, &ws.ctx).await);
    assert!(
        message.starts_with("old_text was not found in main.rs. It matches lines 2\u{2013}3 if whitespace is ignored"),
        "{message}"
    );
    assert!(
        message.contains("```\n    let x = 1;\n    let y = 1;\n```"),
        "{message}"
    );
    // Nothing like it.
    let args = json!({"path": "main.rs", "old_text": "fn other() {}", "new_text": ""});
    let message = failure(EditFile.preview(&args, &ws.ctx).await);
    assert_eq!(
        message,
        "old_text was not found in main.rs. Read the file (read_file) and copy old_text exactly \
         as it appears, whitespace included."
    );
    // A file that is not there.
    let args = json!({"path": "nope.rs", "old_text": "a", "new_text": "b"});
    let result = EditFile.preview(&args, &ws.ctx).await;
    assert!(
        matches!(
            result,
            Err(ToolError::Workspace(WorkspaceError::NotFound { .. }))
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_file_changed_after_the_preview_is_not_clobbered() {
    let ws = Workspace::new();
    ws.write("main.rs", CODE);
    let args = json!({"path": "main.rs", "old_text": "let y = 1;", "new_text": "let y = 2;"});
    EditFile.preview(&args, &ws.ctx).await.unwrap();
    // The person (or the editor) changes the line before allowing the edit.
    let changed = CODE.replace("let y = 1;", "let y = 10;");
    ws.write("main.rs", &changed);
    let message = failure(ws.call(&EditFile, args).await);
    assert!(
        message.contains("the file may have changed since the edit was shown"),
        "{message}"
    );
    assert_eq!(ws.read("main.rs"), changed);
}

fn numbered(lines: usize) -> String {
    (1..=lines).map(|n| format!("line {n}\n")).collect()
}

#[tokio::test]
async fn read_file_pages_large_files() {
    let ws = Workspace::new();
    ws.write("big.txt", &numbered(1234));

    let output = ws
        .call(&ReadFile, json!({"path": "big.txt"}))
        .await
        .unwrap();
    assert!(output.text.starts_with("line 1\nline 2\n"));
    assert!(output.text.contains("line 400\n"));
    assert!(!output.text.contains("line 401\n"));
    assert!(
        output.text.ends_with(
            "line 400\n[lines 1\u{2013}400 of 1234; 834 more lines; call read_file with line=401 to continue]"
        ),
        "{}",
        &output.text[output.text.len() - 200..]
    );
    assert_eq!(output.raw_output["totalLines"], 1234);

    let output = ws
        .call(
            &ReadFile,
            json!({"path": "big.txt", "line": 401, "limit": 10}),
        )
        .await
        .unwrap();
    assert_eq!(
        output.text,
        format!(
            "{}[lines 401\u{2013}410 of 1234; 824 more lines; call read_file with line=411 to continue]",
            (401..=410)
                .map(|n| format!("line {n}\n"))
                .collect::<String>()
        )
    );

    let output = ws
        .call(&ReadFile, json!({"path": "big.txt", "line": 1201}))
        .await
        .unwrap();
    assert!(
        output
            .text
            .ends_with("line 1234\n[lines 1201\u{2013}1234 of 1234; end of file]"),
        "{}",
        output.text
    );
}

#[tokio::test]
async fn read_file_returns_small_files_whole() {
    let ws = Workspace::new();
    ws.write("small.txt", "one\ntwo\n");
    let output = ws
        .call(&ReadFile, json!({"path": "small.txt"}))
        .await
        .unwrap();
    assert_eq!(output.text, "one\ntwo\n");
}
