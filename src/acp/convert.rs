//! Conversion between ACP wire types and Punie's own types: the only place that knows both,
//! but for errors, which `error.rs` builds.

use agent_client_protocol::v1::schema as wire;

use crate::agent::{
    CommandInfo, CompactionStatus, Prompt, PromptBlock, StopReason, ToolCallChange, ToolCallStart,
    ToolCallStatus, TurnEvent,
};
use crate::image::Image;
use crate::tools::builtin::{PlanEntry, PlanPriority, PlanStatus};
use crate::tools::mcp::McpServerConfig;
use crate::workspace::{ExitStatus, PermissionOutcome, TerminalId, ToolContent, ToolKind};

pub(crate) fn tool_kind(kind: ToolKind) -> wire::ToolKind {
    match kind {
        ToolKind::Read => wire::ToolKind::Read,
        ToolKind::Edit => wire::ToolKind::Edit,
        ToolKind::Delete => wire::ToolKind::Delete,
        ToolKind::Move => wire::ToolKind::Move,
        ToolKind::Search => wire::ToolKind::Search,
        ToolKind::Execute => wire::ToolKind::Execute,
        ToolKind::Think => wire::ToolKind::Think,
        ToolKind::Fetch => wire::ToolKind::Fetch,
        ToolKind::Other => wire::ToolKind::Other,
    }
}

fn status(status: ToolCallStatus) -> wire::ToolCallStatus {
    match status {
        ToolCallStatus::Pending => wire::ToolCallStatus::Pending,
        ToolCallStatus::InProgress => wire::ToolCallStatus::InProgress,
        ToolCallStatus::Completed => wire::ToolCallStatus::Completed,
        ToolCallStatus::Failed => wire::ToolCallStatus::Failed,
    }
}

pub(crate) fn content(items: Vec<ToolContent>) -> Vec<wire::ToolCallContent> {
    items
        .into_iter()
        .map(|item| match item {
            ToolContent::Text(text) => wire::ToolCallContent::Content(wire::Content::new(text)),
            ToolContent::Diff {
                path,
                old_text,
                new_text,
            } => wire::ToolCallContent::Diff(wire::Diff::new(path, new_text).old_text(old_text)),
            ToolContent::Terminal(TerminalId(id)) => {
                wire::ToolCallContent::Terminal(wire::Terminal::new(id))
            }
            ToolContent::Image(image) => wire::ToolCallContent::Content(wire::Content::new(
                wire::ContentBlock::Image(wire::ImageContent::new(image.data, image.mime_type)),
            )),
        })
        .collect()
}

fn locations(items: Vec<(std::path::PathBuf, Option<u32>)>) -> Vec<wire::ToolCallLocation> {
    items
        .into_iter()
        .map(|(path, line)| wire::ToolCallLocation::new(path).line(line))
        .collect()
}

pub(crate) fn tool_call(start: ToolCallStart) -> wire::ToolCall {
    wire::ToolCall::new(start.id, start.title)
        .kind(tool_kind(start.kind))
        .status(status(start.status))
        .locations(locations(start.locations))
        .raw_input(start.raw_input)
        .content(content(start.content))
}

pub(crate) fn tool_call_update(change: ToolCallChange) -> wire::ToolCallUpdate {
    let fields = wire::ToolCallUpdateFields::new()
        .status(change.status.map(status))
        .content(change.content.map(content))
        .raw_output(change.raw_output);
    wire::ToolCallUpdate::new(change.id, fields)
}

pub(crate) fn plan(entries: Vec<PlanEntry>) -> wire::Plan {
    wire::Plan::new(
        entries
            .into_iter()
            .map(|entry| {
                let priority = match entry.priority {
                    PlanPriority::High => wire::PlanEntryPriority::High,
                    PlanPriority::Medium => wire::PlanEntryPriority::Medium,
                    PlanPriority::Low => wire::PlanEntryPriority::Low,
                };
                let status = match entry.status {
                    PlanStatus::Pending => wire::PlanEntryStatus::Pending,
                    PlanStatus::InProgress => wire::PlanEntryStatus::InProgress,
                    PlanStatus::Completed => wire::PlanEntryStatus::Completed,
                };
                wire::PlanEntry::new(entry.content, priority, status)
            })
            .collect(),
    )
}

/// Which optional session updates the editor understands.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct UpdateSupport {
    /// `usage_update`: sent to clients that advertise session capabilities (the newer
    /// capability set that came with it); older clients may reject unknown updates.
    pub(crate) usage: bool,
    /// `notice`: advertised as `clientCapabilities.session.notices`.
    pub(crate) notices: bool,
    /// `compaction_update` and `compaction_summary_chunk`: advertised as
    /// `clientCapabilities.session.compaction`.
    pub(crate) compaction: bool,
}

impl UpdateSupport {
    pub(crate) fn of(caps: &wire::ClientCapabilities) -> Self {
        Self {
            usage: caps.session.is_some(),
            notices: caps.session.as_ref().is_some_and(|s| s.notices.is_some()),
            compaction: caps
                .session
                .as_ref()
                .is_some_and(|s| s.compaction.is_some()),
        }
    }
}

/// The `session/update` for an event, or `None` when this editor would not understand it.
pub(crate) fn session_update(
    event: TurnEvent,
    support: UpdateSupport,
) -> Option<wire::SessionUpdate> {
    Some(match event {
        TurnEvent::MessageChunk(text) => {
            wire::SessionUpdate::AgentMessageChunk(wire::ContentChunk::new(text.into()))
        }
        TurnEvent::ThoughtChunk(text) => {
            wire::SessionUpdate::AgentThoughtChunk(wire::ContentChunk::new(text.into()))
        }
        TurnEvent::ToolCall(start) => wire::SessionUpdate::ToolCall(tool_call(start)),
        TurnEvent::ToolCallUpdate(change) => {
            wire::SessionUpdate::ToolCallUpdate(tool_call_update(change))
        }
        TurnEvent::UserMessage { block, image } => {
            wire::SessionUpdate::UserMessageChunk(wire::ContentChunk::new(sent_block(block, image)))
        }
        TurnEvent::SessionInfo { title, updated_at } => wire::SessionUpdate::SessionInfoUpdate(
            wire::SessionInfoUpdate::new()
                .title(title)
                .updated_at(updated_at),
        ),
        TurnEvent::Usage { used, size } if support.usage => {
            wire::SessionUpdate::UsageUpdate(wire::UsageUpdate::new(used, size))
        }
        TurnEvent::Usage { .. } => return None,
        TurnEvent::Plan(entries) => wire::SessionUpdate::Plan(plan(entries)),
        // ACP has no update for a prompt being read; `punie ask` shows it.
        TurnEvent::PromptProgress { .. } => return None,
        TurnEvent::Notice { title, description } => notice(title, description, support),
        TurnEvent::Compaction {
            id,
            status,
            description,
        } if support.compaction => {
            let mut update = wire::CompactionUpdate::new(id, compaction_status(status));
            if status != CompactionStatus::Completed
                && let Some(description) = description
            {
                update = update.error(description);
            }
            wire::SessionUpdate::CompactionUpdate(update)
        }
        TurnEvent::CompactionSummary { id, text } if support.compaction => {
            wire::SessionUpdate::CompactionSummaryChunk(wire::CompactionSummaryChunk::new(
                id,
                text.into(),
            ))
        }
        // Clients without compaction updates learn how a compaction ended, in words.
        TurnEvent::Compaction {
            status,
            description: Some(description),
            ..
        } if status != CompactionStatus::InProgress => {
            let title = match status {
                CompactionStatus::Completed => "History compacted",
                _ => "History not compacted",
            };
            notice(title.to_owned(), description, support)
        }
        TurnEvent::Compaction { .. } | TurnEvent::CompactionSummary { .. } => return None,
        TurnEvent::AvailableCommands(commands) => wire::SessionUpdate::AvailableCommandsUpdate(
            wire::AvailableCommandsUpdate::new(commands.into_iter().map(command).collect()),
        ),
        TurnEvent::ModelSwitched { current, available } => wire::SessionUpdate::ConfigOptionUpdate(
            wire::ConfigOptionUpdate::new(model_options(Some(current), available)),
        ),
    })
}

/// A notice, or for editors without notices the same words in the answer.
fn notice(title: String, description: String, support: UpdateSupport) -> wire::SessionUpdate {
    if support.notices {
        wire::SessionUpdate::Notice(
            wire::Notice::new(wire::NoticeSeverity::Info, title).description(description),
        )
    } else {
        wire::SessionUpdate::AgentMessageChunk(wire::ContentChunk::new(
            format!("_({description})_\n\n").into(),
        ))
    }
}

fn compaction_status(status: CompactionStatus) -> wire::CompactionStatus {
    match status {
        CompactionStatus::InProgress => wire::CompactionStatus::InProgress,
        CompactionStatus::Completed => wire::CompactionStatus::Completed,
        CompactionStatus::Failed => wire::CompactionStatus::Failed,
        CompactionStatus::Cancelled => wire::CompactionStatus::Cancelled,
    }
}

/// A slash command for the editor's menu.
fn command(info: CommandInfo) -> wire::AvailableCommand {
    let input = info.hint.map(|hint| {
        wire::AvailableCommandInput::Unstructured(wire::UnstructuredCommandInput::new(hint))
    });
    wire::AvailableCommand::new(info.name, info.description).input(input)
}

/// The id of the session config option that picks the model.
pub(crate) const MODEL_OPTION: &str = "model";

/// The session's config options for a model picker showing `current` among `available`:
/// none when the back end cannot switch models (it lists none).
pub(crate) fn model_options(
    current: Option<String>,
    available: Vec<String>,
) -> Vec<wire::SessionConfigOption> {
    let Some(current) = current.or_else(|| available.first().cloned()) else {
        return Vec::new();
    };
    if available.is_empty() {
        return Vec::new();
    }
    let mut models = available;
    if !models.contains(&current) {
        models.insert(0, current.clone());
    }
    let options: Vec<wire::SessionConfigSelectOption> = models
        .iter()
        .map(|m| wire::SessionConfigSelectOption::new(m.clone(), m.clone()))
        .collect();
    vec![
        wire::SessionConfigOption::select(MODEL_OPTION, "Model", current, options)
            .description("The model Punie uses from the next request on".to_owned())
            .category(wire::SessionConfigOptionCategory::Model),
    ]
}

pub(crate) fn stop_reason(stop: StopReason) -> wire::StopReason {
    match stop {
        StopReason::EndTurn => wire::StopReason::EndTurn,
        StopReason::MaxTokens => wire::StopReason::MaxTokens,
        StopReason::MaxTurnRequests => wire::StopReason::MaxTurnRequests,
        StopReason::Cancelled => wire::StopReason::Cancelled,
    }
}

/// The user's prompt for the model: text blocks verbatim, embedded files inline, links to files
/// as references the model can read with its tools, image blocks as images (checked by the
/// agent: bounds, and whether the model sees). An image given only by a URI cannot be sent (a
/// local server fetches nothing), so the text says it was left out. The blocks themselves are
/// kept as the person sent them, for a loaded session to show again.
pub(crate) fn prompt(blocks: &[wire::ContentBlock]) -> Prompt {
    let mut parts = Vec::new();
    let mut images = Vec::new();
    let mut sent = Vec::new();
    for block in blocks {
        match block {
            wire::ContentBlock::Text(text) => {
                parts.push(text.text.clone());
                sent.push(PromptBlock::Text {
                    text: text.text.clone(),
                });
            }
            wire::ContentBlock::Image(image) if !image.data.trim().is_empty() => {
                sent.push(PromptBlock::Image {
                    image: Some(images.len()),
                    mime_type: image.mime_type.clone(),
                    uri: image.uri.clone(),
                });
                images.push(Image::new(image.mime_type.clone(), image.data.clone()));
            }
            wire::ContentBlock::Image(image) => {
                parts.push(format!(
                    "[an image given only by its URI was omitted: {}]",
                    image.uri.as_deref().unwrap_or("no URI")
                ));
                sent.push(PromptBlock::Image {
                    image: None,
                    mime_type: image.mime_type.clone(),
                    uri: image.uri.clone(),
                });
            }
            wire::ContentBlock::ResourceLink(link) => {
                let path = link.uri.strip_prefix("file://").unwrap_or(&link.uri);
                parts.push(format!("[referenced file: {path}]"));
                sent.push(PromptBlock::ResourceLink {
                    uri: link.uri.clone(),
                    name: link.name.clone(),
                    title: link.title.clone(),
                    description: link.description.clone(),
                    mime_type: link.mime_type.clone(),
                    size: link.size,
                });
            }
            wire::ContentBlock::Resource(resource) => match &resource.resource {
                wire::EmbeddedResourceResource::TextResourceContents(file) => {
                    let path = file.uri.strip_prefix("file://").unwrap_or(&file.uri);
                    parts.push(format!("<file path=\"{path}\">\n{}\n</file>", file.text));
                    sent.push(PromptBlock::Resource {
                        uri: file.uri.clone(),
                        mime_type: file.mime_type.clone(),
                        text: Some(file.text.clone()),
                    });
                }
                wire::EmbeddedResourceResource::BlobResourceContents(blob) => {
                    parts.push("[an attached binary resource was omitted]".to_owned());
                    sent.push(PromptBlock::Resource {
                        uri: blob.uri.clone(),
                        mime_type: blob.mime_type.clone(),
                        text: None,
                    });
                }
                _ => {
                    let note = "[an attached binary resource was omitted]";
                    parts.push(note.to_owned());
                    sent.push(PromptBlock::Text {
                        text: note.to_owned(),
                    });
                }
            },
            _ => {
                let note = "[an attachment of a kind Punie cannot read was omitted]";
                parts.push(note.to_owned());
                sent.push(PromptBlock::Text {
                    text: note.to_owned(),
                });
            }
        }
    }
    Prompt::new(parts.join("\n"), images).with_blocks(sent)
}

/// A block of a prompt as the person sent it, for the editor to show again (`image`: the
/// data of an image block). A binary resource, whose bytes are not kept, comes back as a link.
fn sent_block(block: PromptBlock, image: Option<Image>) -> wire::ContentBlock {
    match block {
        PromptBlock::Text { text } => text.into(),
        PromptBlock::Image { mime_type, uri, .. } => {
            let data = image.map(|i| i.data).unwrap_or_default();
            wire::ContentBlock::Image(wire::ImageContent::new(data, mime_type).uri(uri))
        }
        PromptBlock::ResourceLink {
            uri,
            name,
            title,
            description,
            mime_type,
            size,
        } => wire::ContentBlock::ResourceLink(
            wire::ResourceLink::new(name, uri)
                .title(title)
                .description(description)
                .mime_type(mime_type)
                .size(size),
        ),
        PromptBlock::Resource {
            uri,
            mime_type,
            text: Some(text),
        } => wire::ContentBlock::Resource(wire::EmbeddedResource::new(
            wire::EmbeddedResourceResource::TextResourceContents(
                wire::TextResourceContents::new(text, uri).mime_type(mime_type),
            ),
        )),
        PromptBlock::Resource { uri, mime_type, .. } => {
            let name = uri.rsplit('/').next().unwrap_or(&uri).to_owned();
            wire::ContentBlock::ResourceLink(
                wire::ResourceLink::new(name, uri).mime_type(mime_type),
            )
        }
    }
}

pub(crate) fn permission_outcome(
    outcome: &wire::RequestPermissionOutcome,
    options: &[wire::PermissionOption],
) -> PermissionOutcome {
    match outcome {
        wire::RequestPermissionOutcome::Selected(selected) => {
            let kind = options
                .iter()
                .find(|o| o.option_id == selected.option_id)
                .map(|o| o.kind);
            match kind {
                Some(wire::PermissionOptionKind::AllowOnce) => PermissionOutcome::AllowOnce,
                Some(wire::PermissionOptionKind::AllowAlways) => PermissionOutcome::AllowAlways,
                Some(wire::PermissionOptionKind::RejectAlways) => PermissionOutcome::RejectAlways,
                // An unknown option id is treated as a refusal: never write on a guess.
                _ => PermissionOutcome::RejectOnce,
            }
        }
        _ => PermissionOutcome::Cancelled,
    }
}

pub(crate) fn exit_status(status: &wire::TerminalExitStatus) -> ExitStatus {
    ExitStatus {
        exit_code: status.exit_code,
        signal: status.signal.clone(),
    }
}

/// The MCP servers of a `session/new`, in Punie's terms.
pub(crate) fn mcp_servers(servers: Vec<wire::McpServer>) -> Vec<McpServerConfig> {
    servers
        .into_iter()
        .filter_map(|server| match server {
            wire::McpServer::Stdio(s) => Some(McpServerConfig::Stdio {
                name: s.name,
                command: s.command,
                args: s.args,
                env: s.env.into_iter().map(|v| (v.name, v.value)).collect(),
            }),
            wire::McpServer::Http(s) => Some(McpServerConfig::Http {
                name: s.name,
                url: s.url,
                headers: s.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            }),
            wire::McpServer::Sse(s) => Some(McpServerConfig::Sse {
                name: s.name,
                url: s.url,
                headers: s.headers.into_iter().map(|h| (h.name, h.value)).collect(),
            }),
            _ => None,
        })
        .collect()
}
