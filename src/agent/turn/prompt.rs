//! The system prompt.
//!
//! Model servers reuse the work done on a prompt's longest unchanged prefix (llama.cpp's KV
//! cache, vLLM's prefix cache): a prompt that starts the same way every time is read once per
//! session instead of once per request. So the prompt opens with what never changes (who Punie
//! is, the guidelines, the tool names in their fixed order), then the configured instructions,
//! and ends with what differs from one session to the next: the project's path, then the
//! project's instructions (`AGENTS.md`, see `agent/instructions.rs`), which change only when
//! their files do. Nothing in it depends on the time, the turn or the history.

use super::Turn;
use crate::agent::events::TurnEvent;

impl Turn<'_> {
    /// The system prompt for a `window`-token context window (the project instructions take
    /// at most a share of it; the person is told once when they were cut).
    pub(super) fn system_prompt(&self, window: u32) -> String {
        let root = self.session.workspace.root().display();
        // Tool descriptions travel with the tool schemas; naming the tools is enough here, and
        // small context windows cannot afford saying everything twice.
        let tools: Vec<&str> = self.toolset.iter().map(|t| t.name()).collect();
        let mut prompt = format!(
            "You are Punie, a coding agent working in the user's project.\n\
             You help the user by reading, editing and running code in this project with your tools ({}).\n\
             Guidelines:\n\
             - Use paths relative to the project root. You cannot access files outside it.\n\
             - Read a file before changing it (large files come back in pages). Change files with small exact edits (edit_file); write whole files only to create them.\n\
             - Search with grep, glob and list_dir instead of reading whole trees.\n\
             - The user approves every change and command; if they refuse, do not insist — ask what they want instead.\n\
             - Call tools with valid JSON arguments. When you are done, answer the user concisely.",
            tools.join(", ")
        );
        if let Some(extra) = &self.config.instructions {
            prompt.push_str("\n\n");
            prompt.push_str(extra);
        }
        // The mode changes rarely: after the instructions, so a switch keeps what precedes it.
        let plan_tool = self
            .toolset
            .iter()
            .find(|t| t.kind() == crate::tools::ToolKind::Think && t.name().contains("plan"))
            .map(|t| t.name().to_owned());
        if let Some(note) = self.mode.prompt_note(plan_tool.as_deref()) {
            prompt.push_str("\n\n");
            prompt.push_str(&note);
        }
        // Last, so that sessions in other projects share everything above it.
        prompt.push_str(&format!("\n\nThe project root is {root}."));
        let instructions = self.session.instructions_section(self.config, window);
        if !instructions.text.is_empty() {
            prompt.push_str("\n\n");
            prompt.push_str(&instructions.text);
        }
        if let Some(description) = instructions.cut
            && self.session.instructions.tell_cut()
        {
            self.emit(TurnEvent::Notice {
                title: "Project instructions were cut".to_owned(),
                description,
            });
        }
        prompt
    }

    /// The project's instructions (`AGENTS.md` and the like) as they join the system prompt of
    /// a `window`-token context window, for `/context` to count exactly what the model gets.
    pub(crate) fn project_instructions(&self, window: u32) -> Option<String> {
        let section = self.session.instructions_section(self.config, window);
        (!section.text.is_empty()).then_some(section.text)
    }
}
