//! An MCP server's tool as a Punie [`Tool`]: calls forwarded as `tools/call`, results turned
//! into text for the model, failures into errors the model can act on.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorCode,
    ResourceContents,
};
use rmcp::service::ServiceError;
use serde_json::Value;

use super::MAX_RESULT_BYTES;
use super::connection::{Link, RemoteTool};
use crate::image::{Image, check_images};
use crate::tools::{Tool, ToolContext, ToolError, ToolOutput, ToolSource};
use crate::workspace::{ToolContent, ToolKind, Workspace};

/// A tool of an MCP server, as the model sees it.
pub(super) struct McpTool {
    pub(super) remote: Arc<RemoteTool>,
    pub(super) link: Arc<Link>,
    pub(super) call_timeout: Duration,
}

/// Cuts text to the model's budget, saying how much was left out.
fn cap_text(mut text: String) -> String {
    if text.len() > MAX_RESULT_BYTES {
        let total = text.len();
        let mut cut = MAX_RESULT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(&format!("\n[output cut: {} of {total} bytes shown]", cut));
    }
    text
}

/// Decoded size of base64 data, without decoding it.
fn base64_len(data: &str) -> usize {
    crate::image::decoded_len(data)
}

/// Content of a kind newer than Punie: its JSON, cut short.
fn unknown_content(content: &impl serde::Serialize) -> String {
    let json = serde_json::to_string(content).unwrap_or_default();
    let shown: String = json.chars().take(2000).collect();
    format!("[content Punie cannot show: {shown}]")
}

/// Turns a tool result into what the model reads and what the editor shows. Images within
/// Punie's bounds ([`crate::image`]) are also kept as images, for the editor and for a model
/// that sees; the text has a placeholder for every image either way.
fn convert_result(result: &CallToolResult) -> (String, Vec<ToolContent>) {
    let mut parts = Vec::new();
    let mut images: Vec<Image> = Vec::new();
    for block in &result.content {
        let part = match block {
            ContentBlock::Text(text) => text.text.clone(),
            ContentBlock::Image(image) => {
                let image = Image::new(image.mime_type.clone(), image.data.clone());
                let placeholder = image.placeholder();
                let mut with = images.clone();
                with.push(image);
                if check_images(&with).is_ok() {
                    images = with;
                    placeholder
                } else {
                    format!("{placeholder} (not shown: past Punie's image limits)")
                }
            }
            ContentBlock::Audio(audio) => format!(
                "[audio: {}, {} bytes]",
                audio.mime_type,
                base64_len(&audio.data)
            ),
            ContentBlock::Resource(embedded) => match &embedded.resource {
                ResourceContents::TextResourceContents { text, .. } => text.clone(),
                ResourceContents::BlobResourceContents {
                    uri,
                    mime_type,
                    blob,
                    ..
                } => format!(
                    "[resource {uri}: {}, {} bytes]",
                    mime_type.as_deref().unwrap_or("binary"),
                    base64_len(blob)
                ),
                other => unknown_content(other),
            },
            ContentBlock::ResourceLink(link) => match &link.description {
                Some(description) => {
                    format!("[resource {} ({}): {description}]", link.uri, link.name)
                }
                None => format!("[resource {} ({})]", link.uri, link.name),
            },
            other => unknown_content(other),
        };
        parts.push(part);
    }
    if parts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        parts.push(structured.to_string());
    }
    let text = cap_text(parts.join("\n"));
    let mut content = vec![ToolContent::Text(text.clone())];
    content.extend(images.into_iter().map(ToolContent::Image));
    (text, content)
}

impl McpTool {
    fn service_error(&self, error: ServiceError) -> BoxFuture<'_, ToolError> {
        Box::pin(async move {
            match error {
                ServiceError::TransportClosed | ServiceError::TransportSend(_) => {
                    self.link.not_running().await
                }
                ServiceError::Timeout { timeout } => ToolError::Failed(format!(
                    "the MCP server {} did not answer within {} s; the call was cancelled",
                    self.link.server,
                    timeout.as_secs()
                )),
                ServiceError::McpError(error) if error.code == ErrorCode::INVALID_PARAMS => {
                    ToolError::InvalidArguments {
                        tool: self.remote.name.clone(),
                        reason: error.message.into_owned(),
                    }
                }
                ServiceError::McpError(error) => ToolError::Failed(format!(
                    "the MCP server {} refused the call: {}",
                    self.link.server, error.message
                )),
                other => ToolError::Failed(format!(
                    "calling {} on the MCP server {} failed: {other}",
                    self.remote.remote_name, self.link.server
                )),
            }
        })
    }
}

impl Tool for McpTool {
    fn name(&self) -> &str {
        &self.remote.name
    }

    fn description(&self) -> &str {
        &self.remote.description
    }

    fn parameters(&self) -> Value {
        self.remote.schema.clone()
    }

    fn kind(&self) -> ToolKind {
        self.remote.kind
    }

    fn provider(&self, _workspace: &Workspace) -> &'static str {
        "mcp"
    }

    fn source(&self) -> ToolSource {
        ToolSource::Mcp(self.link.server.to_string())
    }

    /// Read-only tools (by the server's `readOnlyHint`) run without asking; every other tool may
    /// change something outside the workspace, so each call is asked for.
    fn needs_permission(&self) -> bool {
        !self.remote.read_only
    }

    fn title(&self, _args: &Value) -> String {
        format!("{} ({})", self.remote.title, self.link.server)
    }

    fn call<'a>(
        &'a self,
        args: Value,
        _ctx: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            if let Some(reason) = self.link.dead_reason() {
                return Err(ToolError::Failed(format!(
                    "MCP server {} is not running: {reason}. Its tools cannot be used in this \
                     session.",
                    self.link.server
                )));
            }
            let mut params = CallToolRequestParams::new(self.remote.remote_name.clone());
            match args {
                Value::Object(arguments) => params = params.with_arguments(arguments),
                Value::Null => {}
                other => {
                    return Err(ToolError::InvalidArguments {
                        tool: self.remote.name.clone(),
                        reason: format!("arguments must be a JSON object, got {other}"),
                    });
                }
            }
            // Dropping the request (timeout, or the turn cancelled) sends `notifications/cancelled`.
            let response =
                tokio::time::timeout(self.call_timeout, self.link.peer.call_tool_once(params))
                    .await;
            let result = match response {
                Err(_elapsed) => {
                    return Err(ToolError::Failed(format!(
                        "the MCP server {} did not answer within {} s; the call was cancelled",
                        self.link.server,
                        self.call_timeout.as_secs()
                    )));
                }
                Ok(Err(error)) => return Err(self.service_error(error).await),
                Ok(Ok(CallToolResponse::Complete(result))) => result,
                Ok(Ok(_)) => {
                    return Err(ToolError::Failed(format!(
                        "the MCP server {} answered with a request for more input or a \
                         background task, which Punie does not support",
                        self.link.server
                    )));
                }
            };
            let (text, content) = convert_result(&result);
            if result.is_error == Some(true) {
                return Err(ToolError::Failed(if text.is_empty() {
                    format!("{} failed without saying why", self.remote.remote_name)
                } else {
                    text
                }));
            }
            Ok(ToolOutput {
                text,
                content,
                raw_output: serde_json::to_value(&result).unwrap_or(Value::Null),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_sizes_are_computed_without_decoding() {
        assert_eq!(base64_len(""), 0);
        assert_eq!(base64_len("YQ=="), 1);
        assert_eq!(base64_len("YWI="), 2);
        assert_eq!(base64_len("YWJj"), 3);
        assert_eq!(base64_len("YWJjZA"), 4);
    }

    #[test]
    fn results_become_text_for_the_model() {
        let result = CallToolResult::success(vec![
            ContentBlock::text("hello"),
            ContentBlock::image("YWJj", "image/png"),
        ]);
        let (text, content) = convert_result(&result);
        assert_eq!(text, "hello\n[image: image/png, 3 bytes]");
        assert_eq!(
            content,
            vec![
                ToolContent::Text(text.clone()),
                ToolContent::Image(Image::new("image/png", "YWJj"))
            ]
        );
        let big = "A".repeat((crate::image::MAX_IMAGE_BYTES / 3 + 1) * 4);
        let (text, content) = convert_result(&CallToolResult::success(vec![ContentBlock::image(
            big,
            "image/png",
        )]));
        assert!(
            text.ends_with("(not shown: past Punie's image limits)"),
            "{text}"
        );
        assert_eq!(content.len(), 1);
        let (text, _) = convert_result(&CallToolResult::success(vec![ContentBlock::text(
            "x".repeat(MAX_RESULT_BYTES + 10),
        )]));
        assert!(text.ends_with(&format!(
            "[output cut: {MAX_RESULT_BYTES} of {} bytes shown]",
            MAX_RESULT_BYTES + 10
        )));
    }
}
