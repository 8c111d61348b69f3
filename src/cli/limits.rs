//! Start-up: raising the soft limit on open files to the hard limit, so that the session and
//! connection caps (not the kernel's default of 1,024) are what bounds Punie.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// The soft limit asked for when the hard limit is "unlimited" (the kernel refuses infinity for
/// open files; 2^20 is Linux's default `fs.nr_open`).
const UNLIMITED_TARGET: u64 = 1 << 20;

/// Descriptors a full agent may need besides its sessions' own: connections, the model
/// client's sockets, logs, pipes of running commands.
const BASE_DESCRIPTORS: u64 = 256;

/// Descriptors one open session may hold for as long as it is open: the root handle and the
/// Landlock ruleset of its directory (shared with the other sessions there, so this counts the
/// worst case of distinct directories), and its journal, which stays open and locked while the
/// session is (from its first prompt, or from `session/load`/`resume`).
pub const SESSION_DESCRIPTORS: u64 = 3;

/// The open-file limit `max_sessions` sessions in distinct directories may need.
pub fn descriptors_needed(max_sessions: usize) -> u64 {
    BASE_DESCRIPTORS + SESSION_DESCRIPTORS * max_sessions as u64
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and logs the result; warns when the limit
/// stays too small for `max_sessions` sessions in distinct directories
/// ([`descriptors_needed`]). Never fails: the caps still refuse sessions cleanly, the warning
/// says what to change.
pub fn raise_open_file_limit(max_sessions: usize) {
    let before = getrlimit(Resource::Nofile);
    let target = before.maximum.unwrap_or(UNLIMITED_TARGET);
    let mut now = before.current;
    if before.current.is_some_and(|current| current < target) {
        let wanted = Rlimit {
            current: Some(target),
            maximum: before.maximum,
        };
        match setrlimit(Resource::Nofile, wanted) {
            Ok(()) => now = Some(target),
            Err(error) => {
                tracing::warn!(%error, soft = ?before.current, hard = ?before.maximum, "cannot raise the open-file limit")
            }
        }
    }
    tracing::info!(soft_before = ?before.current, soft = ?now, hard = ?before.maximum, "open-file limit");
    let needed = descriptors_needed(max_sessions);
    if let Some(limit) = now
        && limit < needed
    {
        tracing::warn!(
            limit,
            needed,
            max_sessions,
            "the open-file limit is below what {max_sessions} sessions in distinct directories may need: raise it (ulimit -n, LimitNOFILE=) or lower --max-sessions"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_each_open_sessions_journal() {
        // Per session in its own directory: root handle, ruleset, journal.
        assert_eq!(descriptors_needed(1), 256 + 3);
        assert_eq!(descriptors_needed(1024), 3328);
    }
}
