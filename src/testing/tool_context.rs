//! A [`ToolContext`] for calling a tool directly, outside any session.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::tools::{SessionTerminals, ToolContext};
use crate::workspace::Workspace;

/// A context for calling a [`Tool`](crate::tools::Tool) directly on `workspace`, as a test of
/// the tool would: call id `call-1`, a cancellation token nobody cancels, terminals of its own,
/// a 5-second command timeout, and progress reports dropped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use punie::tools::Tool;
/// use punie::tools::builtin::ReadFile;
/// use punie::workspace::local::{LocalOptions, local_workspace};
///
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("notes.txt"), "hello\n").unwrap();
/// let workspace = local_workspace(dir.path().to_owned(), LocalOptions::default()).unwrap();
/// let ctx = punie::testing::tool_context(workspace);
/// let output = ReadFile
///     .call(serde_json::json!({"path": "notes.txt"}), &ctx)
///     .await
///     .unwrap();
/// assert!(output.text.contains("hello"));
/// # }
/// ```
pub fn tool_context(workspace: Workspace) -> ToolContext {
    ToolContext::new(
        workspace,
        "call-1".to_owned(),
        CancellationToken::new(),
        Arc::new(SessionTerminals::default()),
        Duration::from_secs(5),
        Arc::new(|_| {}),
    )
}
