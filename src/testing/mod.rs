//! A test kit for embedders and for Punie's own tests (behind the `testing` feature): a
//! [`ScriptedModel`] that plays model turns without HTTP, and a [`FakeEditor`] — an ACP client
//! with an in-memory file system, scripted permission answers and fake terminals — joined to an
//! agent by an in-memory connection; and [`tool_context`], to call a tool directly.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::sync::Arc;
//! use punie::agent::Agent;
//! use punie::testing::{FakeEditor, PermissionAnswer, ScriptedModel};
//!
//! let model = Arc::new(ScriptedModel::new());
//! model.tool_call("write_file", serde_json::json!({"path": "hello.txt", "content": "hi"}));
//! model.text("Done.");
//! let agent = Agent::builder().model(model.clone()).build().unwrap();
//!
//! let editor = FakeEditor::new().answer(PermissionAnswer::AllowOnce);
//! let connection = editor.connect(agent).await.unwrap();
//! let session = connection.new_session("/project").await.unwrap();
//! connection.prompt(&session, "greet").await.unwrap();
//!
//! assert_eq!(editor.file("/project/hello.txt").as_deref(), Some("hi"));
//! assert_eq!(editor.message_text(), "Done.");
//! assert_eq!(model.requests().len(), 2);
//! # }
//! ```

mod scripted;
mod tool_context;

pub use crate::acp::testing::{EditorConnection, EditorError, FakeEditor, PermissionAnswer};
pub use scripted::ScriptedModel;
pub use tool_context::tool_context;

/// The ACP v1 message types the fake editor records (session updates, permission requests).
pub use agent_client_protocol::v1::schema;
