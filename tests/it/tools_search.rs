//! `list_dir`, `glob` and `grep` on a real tree: ignore files honoured, hidden files and `.git`
//! skipped, symlinks never followed out of the workspace, results capped with a notice.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use punie::testing::tool_context;
use punie::tools::builtin::{Glob, Grep, ListDir, default_toolset};
use punie::tools::{Tool, ToolContext, ToolError, ToolOutput};
use punie::workspace::local::{LocalOptions, local_workspace};
use punie::workspace::{ToolKind, WorkspaceError};
use serde_json::{Value, json};

/// A temp dir holding `root/` (the workspace) and `outside/` (never to be listed or read).
struct Tree {
    _temp: tempfile::TempDir,
    root: PathBuf,
    ctx: ToolContext,
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

impl Tree {
    fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let base = temp.path().canonicalize().unwrap();
        let root = base.join("root");
        let outside = base.join("outside");
        write(&outside.join("secret.txt"), "hello from outside\n");
        write(&root.join(".gitignore"), "target/\n*.log\n");
        write(&root.join(".ignore"), "private/\n");
        write(
            &root.join("src/main.rs"),
            "fn main() {\n    println!(\"{}\", hello());\n}\n",
        );
        write(
            &root.join("src/lib.rs"),
            "/// Says hello.\npub fn hello() -> &'static str {\n    \"Hello\"\n}\n",
        );
        write(&root.join("target/debug/build.rs"), "hello\n");
        write(&root.join("app.log"), "hello\n");
        write(&root.join("private/notes.txt"), "hello\n");
        write(&root.join(".hidden/notes.txt"), "hello\n");
        write(&root.join(".git/config"), "hello\n");
        symlink(&outside, root.join("link_out")).unwrap();
        symlink(outside.join("secret.txt"), root.join("secret_link.txt")).unwrap();
        let workspace = local_workspace(root.clone(), LocalOptions::default()).unwrap();
        let ctx = tool_context(workspace);
        Self {
            _temp: temp,
            root,
            ctx,
        }
    }

    async fn run(&self, tool: &dyn Tool, args: Value) -> Result<ToolOutput, ToolError> {
        tool.call(args, &self.ctx).await
    }

    async fn text(&self, tool: &dyn Tool, args: Value) -> String {
        match self.run(tool, args.clone()).await {
            Ok(output) => output.text,
            Err(error) => panic!("{} {args} failed: {error}", tool.name()),
        }
    }
}

#[tokio::test]
async fn list_dir_skips_ignored_hidden_and_git_and_does_not_follow_symlinks() {
    let tree = Tree::new();
    let text = tree.text(&ListDir, json!({})).await;
    let outside = tree.root.parent().unwrap().join("outside");
    assert_eq!(
        text,
        format!(
            "link_out -> {}\nsecret_link.txt -> {}\nsrc/\nsrc/lib.rs\nsrc/main.rs\n",
            outside.display(),
            outside.join("secret.txt").display()
        )
    );

    let text = tree
        .text(&ListDir, json!({"hidden": true, "depth": 1}))
        .await;
    assert!(text.contains(".gitignore\n"), "{text}");
    assert!(text.contains(".hidden/\n"), "{text}");
    assert!(!text.contains(".git/"), "{text}");
    assert!(!text.contains("src/main.rs"), "depth 1: {text}");

    let text = tree.text(&ListDir, json!({"path": "src"})).await;
    assert_eq!(text, "src/lib.rs\nsrc/main.rs\n");
    // Whoever serves files, the search tools read the local disk.
    assert_eq!(ListDir.provider(&tree.ctx.workspace), "local");
}

#[tokio::test]
async fn glob_matches_names_or_paths_and_respects_ignores() {
    let tree = Tree::new();
    assert_eq!(
        tree.text(&Glob, json!({"pattern": "**/*.rs"})).await,
        "src/lib.rs\nsrc/main.rs\n"
    );
    assert_eq!(
        tree.text(&Glob, json!({"pattern": "main.rs"})).await,
        "src/main.rs\n"
    );
    assert_eq!(
        tree.text(&Glob, json!({"pattern": "*.rs", "path": "src"}))
            .await,
        "src/lib.rs\nsrc/main.rs\n"
    );
    // Ignored, hidden, or only reachable through a symlink that leads out.
    let text = tree.text(&Glob, json!({"pattern": "**/notes.txt"})).await;
    assert!(text.starts_with("No files match"), "{text}");
    let text = tree.text(&Glob, json!({"pattern": "**/secret.txt"})).await;
    assert!(text.starts_with("No files match"), "{text}");
    // Naming a hidden directory asks for it.
    assert_eq!(
        tree.text(&Glob, json!({"pattern": ".hidden/*.txt"})).await,
        ".hidden/notes.txt\n"
    );
}

#[tokio::test]
async fn grep_finds_lines_in_searchable_files_only() {
    let tree = Tree::new();
    let text = tree
        .text(&Grep, json!({"pattern": "hello", "case_insensitive": true}))
        .await;
    assert_eq!(
        text,
        "src/lib.rs:1:/// Says hello.\n\
         src/lib.rs:2:pub fn hello() -> &'static str {\n\
         src/lib.rs:3:    \"Hello\"\n\
         src/main.rs:2:    println!(\"{}\", hello());\n"
    );
    // Case-sensitive by default; `glob` limits the files.
    let text = tree
        .text(&Grep, json!({"pattern": "Hello", "glob": "*.rs"}))
        .await;
    assert_eq!(text, "src/lib.rs:3:    \"Hello\"\n");
    // Context lines use `-`, and groups are separated.
    let text = tree
        .text(
            &Grep,
            json!({"pattern": "println", "path": "src/main.rs", "context": 1}),
        )
        .await;
    assert_eq!(
        text,
        "src/main.rs-1-fn main() {\nsrc/main.rs:2:    println!(\"{}\", hello());\nsrc/main.rs-3-}\n"
    );
    let text = tree.text(&Grep, json!({"pattern": "outside"})).await;
    assert!(text.starts_with("No matches for `outside`"), "{text}");
}

#[tokio::test]
async fn grep_searches_invalid_regexes_as_text() {
    let tree = Tree::new();
    let text = tree.text(&Grep, json!({"pattern": "hello())"})).await;
    assert_eq!(
        text,
        "[`hello())` is not a valid regular expression, so it was searched as plain text]\n\
         src/main.rs:2:    println!(\"{}\", hello());\n"
    );
}

#[tokio::test]
async fn start_paths_that_lead_out_are_refused() {
    let tree = Tree::new();
    for (tool, args) in [
        (&ListDir as &dyn Tool, json!({"path": "link_out"})),
        (&Glob, json!({"pattern": "*", "path": "link_out"})),
        (&Grep, json!({"pattern": "hello", "path": "link_out"})),
        (
            &Grep,
            json!({"pattern": "hello", "path": "secret_link.txt"}),
        ),
        (&Grep, json!({"pattern": "hello", "path": "../outside"})),
        (&ListDir, json!({"path": "/etc"})),
    ] {
        let result = tree.run(tool, args.clone()).await;
        assert!(
            matches!(
                result,
                Err(ToolError::Workspace(WorkspaceError::OutsideRoot { .. }))
            ),
            "{} {args}: {result:?}",
            tool.name()
        );
    }
    let result = tree.run(&ListDir, json!({"path": "nowhere"})).await;
    assert!(
        matches!(
            result,
            Err(ToolError::Workspace(WorkspaceError::NotFound { .. }))
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn results_are_capped_with_a_notice() {
    let tree = Tree::new();
    for n in 0..250 {
        write(&tree.root.join(format!("many/f{n:03}.txt")), "x\n");
    }
    write(&tree.root.join("big.txt"), &"needle\n".repeat(150));

    let text = tree.text(&ListDir, json!({"path": "many"})).await;
    assert_eq!(text.lines().count(), 201);
    assert!(text.starts_with("many/f000.txt\n"));
    assert!(
        text.ends_with("[200 of 250 entries shown; list a subdirectory with `path`, or use a smaller `depth`, or find files with glob]"),
        "{text}"
    );

    let text = tree.text(&Glob, json!({"pattern": "many/*.txt"})).await;
    assert!(
        text.ends_with("[200 of 250 files shown; use a more specific pattern or `path`]"),
        "{text}"
    );

    let output = tree.run(&Grep, json!({"pattern": "needle"})).await.unwrap();
    assert_eq!(output.text.lines().count(), 101);
    assert!(
        output.text.ends_with(
            "[100 of 150 matching lines shown, in 1 file; narrow the search with `path`, `glob` or a more specific pattern]"
        ),
        "{}",
        output.text
    );
    assert_eq!(output.raw_output["matches"], 150);
}

#[tokio::test]
async fn the_search_tools_are_in_the_default_toolset() {
    let tools = default_toolset();
    for (name, kind) in [
        ("list_dir", ToolKind::Read),
        ("glob", ToolKind::Search),
        ("grep", ToolKind::Search),
        ("edit_file", ToolKind::Edit),
    ] {
        let tool = tools.get(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(tool.kind(), kind);
        assert_eq!(tool.needs_permission(), name == "edit_file");
        assert_eq!(tool.parameters()["type"], "object");
    }
}
