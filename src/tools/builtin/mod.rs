//! The tools every session has: reading, editing and writing files, finding files and text,
//! running commands, managing the commands left running, and keeping a plan.

mod commands;
mod edit;
mod files;
mod glob;
mod grep;
mod list_dir;
mod plan;
mod search;

use std::sync::Arc;

pub use commands::{
    GetTerminalOutput, KillTerminal, ReleaseTerminal, RunCommand, WaitForTerminalExit,
};
pub use edit::EditFile;
pub use files::{ReadFile, WriteFile};
pub use glob::Glob;
pub use grep::Grep;
pub use list_dir::ListDir;
pub use plan::{
    MAX_ENTRY_CHARS, MAX_PLAN_ENTRIES, PLAN_TOOL, PlanEntry, PlanOutput, PlanPriority, PlanStatus,
    UpdatePlan, parse_plan,
};

use super::Toolset;

/// The default toolset: file, search and command tools, and the plan.
pub fn default_toolset() -> Toolset {
    let mut tools = Toolset::new();
    tools.add(Arc::new(ReadFile));
    tools.add(Arc::new(EditFile));
    tools.add(Arc::new(WriteFile));
    tools.add(Arc::new(ListDir));
    tools.add(Arc::new(Glob));
    tools.add(Arc::new(Grep));
    tools.add(Arc::new(RunCommand));
    tools.add(Arc::new(GetTerminalOutput));
    tools.add(Arc::new(WaitForTerminalExit));
    tools.add(Arc::new(KillTerminal));
    tools.add(Arc::new(ReleaseTerminal));
    tools.add(Arc::new(UpdatePlan));
    tools
}
