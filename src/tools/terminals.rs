//! The terminals a session started, so the model can only touch its own and cancel can kill them.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::workspace::{TerminalId, Terminals};

/// The ids of the terminals a session started and has not released.
#[derive(Debug, Default)]
pub struct SessionTerminals {
    live: Mutex<HashSet<TerminalId>>,
}

impl SessionTerminals {
    /// Remembers a terminal the session started.
    pub fn track(&self, id: &TerminalId) {
        self.lock().insert(id.clone());
    }

    /// Forgets a released terminal.
    pub fn forget(&self, id: &TerminalId) {
        self.lock().remove(id);
    }

    /// True if the session started this terminal and has not released it.
    pub fn owns(&self, id: &TerminalId) -> bool {
        self.lock().contains(id)
    }

    /// Kills and releases every terminal the session still holds (on cancel and session end).
    pub async fn release_all(&self, terminals: &dyn Terminals) {
        let ids: Vec<TerminalId> = self.lock().drain().collect();
        for id in ids {
            if let Err(error) = terminals.release(&id).await {
                tracing::warn!(terminal = %id.0, %error, "could not release terminal");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<TerminalId>> {
        self.live
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
