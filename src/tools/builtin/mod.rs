//! The tools every session has: reading and writing files, running commands, and managing the
//! commands left running.

mod commands;
mod files;

use std::sync::Arc;

pub use commands::{
    GetTerminalOutput, KillTerminal, ReleaseTerminal, RunCommand, WaitForTerminalExit,
};
pub use files::{ReadFile, WriteFile};

use super::Toolset;

/// The default toolset: file and command tools.
pub fn default_toolset() -> Toolset {
    let mut tools = Toolset::new();
    tools.add(Arc::new(ReadFile));
    tools.add(Arc::new(WriteFile));
    tools.add(Arc::new(RunCommand));
    tools.add(Arc::new(GetTerminalOutput));
    tools.add(Arc::new(WaitForTerminalExit));
    tools.add(Arc::new(KillTerminal));
    tools.add(Arc::new(ReleaseTerminal));
    tools
}
