//! Session modes: how much Punie may do without asking, enforced by the turn loop itself.
//!
//! A mode decides three things, from what each tool says it may change
//! ([`Tool::effect`](crate::tools::Tool::effect)) rather than from a list of names: which tools
//! the model is offered, which calls are refused before they reach the editor or the disk,
//! and which ones run without asking. See `specs/modes-and-commands.md`.

use std::fmt;
use std::str::FromStr;

use crate::tools::{Tool, ToolEffect};

/// How much Punie may do in a session without asking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// Read and search only: no tool that changes files or runs commands is offered, and a
    /// call to one anyway is refused.
    Ask,
    /// Read-only like [`Ask`](Self::Ask), and the model is told to study the task and produce
    /// a plan before anything is changed; switching to [`Code`](Self::Code) or
    /// [`Edit`](Self::Edit) then carries it out.
    Plan,
    /// Every tool; each write and each command asks first (the default).
    #[default]
    Code,
    /// Every tool; changes to files inside the workspace are applied without asking (still
    /// shown as diffs), commands still ask.
    Edit,
}

/// A mode name that is not one of Punie's modes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode {0:?}: Punie's modes are {modes}", modes = Mode::ids().join(", "))]
pub struct UnknownMode(pub String);

impl Mode {
    /// Every mode, in the order editors show them: from the most to the least cautious.
    pub const ALL: [Mode; 4] = [Self::Ask, Self::Plan, Self::Code, Self::Edit];

    /// The mode's id on the wire, in the config file and on the command line: `ask`, `plan`,
    /// `code` or `edit`.
    pub fn id(self) -> &'static str {
        match self {
            Self::Ask => "ask",
            Self::Plan => "plan",
            Self::Code => "code",
            Self::Edit => "edit",
        }
    }

    /// The ids of every mode, in [`ALL`](Self::ALL)'s order.
    pub fn ids() -> Vec<&'static str> {
        Self::ALL.iter().map(|m| m.id()).collect()
    }

    /// The name editors show.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ask => "Ask",
            Self::Plan => "Plan",
            Self::Code => "Code",
            Self::Edit => "Edit",
        }
    }

    /// One sentence for the editor's mode picker.
    pub fn description(self) -> &'static str {
        match self {
            Self::Ask => "Read and search only: Punie answers questions and changes nothing",
            Self::Plan => {
                "Read-only: Punie studies the task and writes a plan; switch to Code or Edit to carry it out"
            }
            Self::Code => "Punie asks before every file change and every command",
            Self::Edit => "File changes in the project are applied without asking; commands ask",
        }
    }

    /// True for the modes that change nothing ([`Ask`](Self::Ask), [`Plan`](Self::Plan)).
    pub fn is_read_only(self) -> bool {
        matches!(self, Self::Ask | Self::Plan)
    }

    /// Whether the model is offered `tool`, and may call it, in this mode: in a read-only mode
    /// only tools known to change nothing ([`ToolEffect::ReadOnly`]).
    pub fn allows(self, tool: &dyn Tool) -> bool {
        !self.is_read_only() || tool.effect() == ToolEffect::ReadOnly
    }

    /// Whether a call of `tool` asks the person first in this mode: every tool that
    /// [needs permission](Tool::needs_permission), except, in [`Edit`](Self::Edit), the ones
    /// that only change files inside the workspace ([`ToolEffect::WorkspaceEdit`]).
    pub fn asks_before(self, tool: &dyn Tool) -> bool {
        tool.needs_permission()
            && !(self == Self::Edit && tool.effect() == ToolEffect::WorkspaceEdit)
    }

    /// What the system prompt says about this mode, if anything (`code`, the default, adds
    /// nothing). `plan_tool` is the name of a planning tool the model is offered, if any.
    pub(crate) fn prompt_note(self, plan_tool: Option<&str>) -> Option<String> {
        let how_to_switch = "the user can switch the session to code or edit mode (the editor's mode picker, or /mode code)";
        match self {
            Self::Code => None,
            Self::Ask => Some(format!(
                "This session is in ask mode: you can read and search the project, but you cannot change files or run commands (those tools are not available). Answer the user's questions; if something should change, describe the change, and say that {how_to_switch} to have you make it."
            )),
            Self::Plan => Some(format!(
                "This session is in plan mode: do not change anything yet (tools that change files or run commands are not available). Study what the task needs by reading and searching, then write a short step-by-step plan{} and ask the user to approve it. Once {how_to_switch}, carry the plan out.",
                plan_tool.map_or_else(String::new, |tool| format!(" with the {tool} tool"))
            )),
            Self::Edit => Some(
                "This session is in edit mode: your changes to files in the project are applied without asking the user (they still see each diff); commands still need their approval."
                    .to_owned(),
            ),
        }
    }

    /// What the model reads when it calls `tool`, which this mode does not allow.
    pub(crate) fn refusal(self, tool: &str) -> String {
        format!(
            "`{tool}` is not available: this session is in {} mode (read and search only), so nothing was changed or run. Do not call tools that change files or run commands; describe the change instead. The user can switch the session to code or edit mode (the editor's mode picker, or /mode code) to let you make it.",
            self.id()
        )
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for Mode {
    type Err = UnknownMode;

    /// A mode by its id, ignoring case and surrounding spaces.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|m| m.id().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownMode(s.chars().take(100).collect()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::tools::Toolset;
    use crate::tools::builtin::default_toolset;

    fn names(mode: Mode, toolset: &Toolset) -> Vec<String> {
        toolset
            .iter()
            .filter(|t| mode.allows(t.as_ref()))
            .map(|t| t.name().to_owned())
            .collect()
    }

    #[test]
    fn read_only_modes_offer_only_tools_that_change_nothing() {
        let tools = default_toolset();
        let read = ["read_file", "list_dir", "glob", "grep", "update_plan"];
        assert_eq!(names(Mode::Ask, &tools), read);
        assert_eq!(names(Mode::Plan, &tools), read);
        assert_eq!(names(Mode::Code, &tools).len(), tools.iter().count());
        assert_eq!(names(Mode::Edit, &tools).len(), tools.iter().count());
    }

    #[test]
    fn edit_mode_skips_the_question_for_workspace_edits_only() {
        let tools = default_toolset();
        let asks = |mode: Mode, name: &str| mode.asks_before(tools.get(name).unwrap().as_ref());
        for name in ["write_file", "edit_file", "run_command"] {
            assert!(asks(Mode::Code, name), "{name}");
        }
        assert!(!asks(Mode::Edit, "write_file"));
        assert!(!asks(Mode::Edit, "edit_file"));
        assert!(asks(Mode::Edit, "run_command"));
        assert!(!asks(Mode::Edit, "read_file"));
    }

    #[test]
    fn tools_of_unknown_effect_count_as_changing_things() {
        use crate::tools::bridge::{BridgedTool, RemoteResult, RemoteToolSpec, ToolCaller};
        use crate::tools::{ToolError, ToolKind};
        struct Nobody;
        impl ToolCaller for Nobody {
            fn call<'a>(
                &'a self,
                _: &'a str,
                _: serde_json::Value,
            ) -> futures::future::BoxFuture<'a, Result<RemoteResult, ToolError>> {
                Box::pin(async { Ok(RemoteResult::default()) })
            }
        }
        let bridged = |name: &str, kind, requires_permission| {
            BridgedTool::new(
                RemoteToolSpec {
                    name: name.to_owned(),
                    description: String::new(),
                    parameters: serde_json::json!({"type": "object"}),
                    kind,
                    requires_permission,
                    categories: Vec::new(),
                },
                Arc::new(Nobody),
            )
        };
        assert!(Mode::Ask.allows(&bridged("inspect", ToolKind::Read, false)));
        assert!(Mode::Plan.allows(&bridged("think", ToolKind::Think, false)));
        // An editor's run configuration that does not ask still runs something.
        assert!(!Mode::Ask.allows(&bridged("run", ToolKind::Execute, false)));
        assert!(!Mode::Ask.allows(&bridged("other", ToolKind::Other, false)));
        assert!(!Mode::Ask.allows(&bridged("asks", ToolKind::Read, true)));
        // Only Punie's own file tools are known to stay inside the workspace.
        assert!(Mode::Edit.asks_before(&bridged("rename", ToolKind::Edit, true)));
    }

    #[test]
    fn modes_parse_by_id_and_unknown_ones_name_the_modes() {
        assert_eq!("ask".parse::<Mode>(), Ok(Mode::Ask));
        assert_eq!(" Edit ".parse::<Mode>(), Ok(Mode::Edit));
        assert_eq!(Mode::default(), Mode::Code);
        let error = "yolo".parse::<Mode>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown mode \"yolo\": Punie's modes are ask, plan, code, edit"
        );
        for mode in Mode::ALL {
            assert_eq!(mode.id().parse::<Mode>(), Ok(mode));
            assert_eq!(mode.to_string(), mode.id());
        }
    }

    #[test]
    fn the_plan_note_names_the_plan_tool_when_there_is_one() {
        assert!(Mode::Code.prompt_note(None).is_none());
        let with = Mode::Plan.prompt_note(Some("update_plan")).unwrap();
        assert!(
            with.contains("plan mode") && with.contains("update_plan tool"),
            "{with}"
        );
        let without = Mode::Plan.prompt_note(None).unwrap();
        assert!(!without.contains("update_plan"), "{without}");
        assert!(Mode::Ask.prompt_note(None).unwrap().contains("ask mode"));
    }
}
