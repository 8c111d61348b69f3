//! Confinement of local commands with Landlock (Linux): writes are allowed only beneath the
//! workspace root, the temp directory and a few harmless devices; reads and execution stay
//! allowed everywhere, and the command may not signal processes outside its sandbox.
//!
//! The ruleset is built once, before any fork; each child only duplicates its file descriptor
//! and calls `landlock_restrict_self` in `pre_exec`, which allocates nothing.

use std::path::{Path, PathBuf};

use crate::workspace::{Result, WorkspaceError};

/// How local commands are confined.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Restrict commands' filesystem writes with Landlock where the kernel offers it (default:
    /// on). Off runs commands with Punie's own rights.
    pub landlock: bool,
    /// More directories (or files) commands may write beneath, besides the workspace root, the
    /// temp directory and the devices (e.g. a build cache such as `~/.cargo`).
    pub writable_paths: Vec<PathBuf>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            landlock: true,
            writable_paths: Vec::new(),
        }
    }
}

/// Whether Landlock confines local commands.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LandlockStatus {
    /// Commands may only write beneath the allowed paths.
    Enforced,
    /// Turned off by [`SandboxOptions::landlock`].
    Disabled,
    /// The system cannot do it; commands run unconfined.
    Unsupported {
        /// Why, for logs.
        reason: String,
    },
}

impl LandlockStatus {
    /// True when commands are confined.
    pub fn is_enforced(&self) -> bool {
        matches!(self, Self::Enforced)
    }
}

impl std::fmt::Display for LandlockStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Enforced => f.write_str("enforced"),
            Self::Disabled => f.write_str("disabled"),
            Self::Unsupported { reason } => write!(f, "unsupported ({reason})"),
        }
    }
}

/// Device files commands may write to (or open read-write) under Landlock.
#[cfg(target_os = "linux")]
const WRITABLE_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
    "/dev/shm",
];

/// A prepared sandbox: what each child applies to itself before `exec`.
#[derive(Debug)]
pub(crate) struct Sandbox {
    status: LandlockStatus,
    #[cfg(target_os = "linux")]
    ruleset: Option<landlock::RulesetCreated>,
}

impl Sandbox {
    /// Prepares the Landlock ruleset for commands run in `root`.
    pub(crate) fn new(root: &Path, options: &SandboxOptions) -> Result<Self> {
        if !options.landlock {
            return Ok(Self {
                status: LandlockStatus::Disabled,
                #[cfg(target_os = "linux")]
                ruleset: None,
            });
        }
        Self::landlock(root, options)
    }

    #[cfg(not(target_os = "linux"))]
    fn landlock(_root: &Path, _options: &SandboxOptions) -> Result<Self> {
        let reason = "Landlock exists on Linux only".to_owned();
        warn_once(&reason);
        Ok(Self {
            status: LandlockStatus::Unsupported { reason },
        })
    }

    #[cfg(target_os = "linux")]
    fn landlock(root: &Path, options: &SandboxOptions) -> Result<Self> {
        use landlock::{
            ABI, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope, path_beneath_rules,
        };
        // A fixed ABI (as the crate recommends): newer kernels keep these semantics, older ones
        // get the best subset they support.
        let abi = ABI::V6;
        let write = AccessFs::from_write(abi);
        let failed = |err: landlock::RulesetError| WorkspaceError::Io {
            operation: "preparing the Landlock sandbox for",
            path: root.display().to_string(),
            reason: err.to_string(),
        };
        let mut writable = vec![root.to_path_buf(), std::env::temp_dir()];
        writable.extend(options.writable_paths.iter().cloned());
        let ruleset = Ruleset::default()
            .handle_access(write)
            .and_then(|ruleset| ruleset.scope(Scope::Signal))
            .and_then(Ruleset::create)
            .and_then(|ruleset| ruleset.add_rules(path_beneath_rules(&writable, write)))
            .and_then(|ruleset| ruleset.add_rules(path_beneath_rules(WRITABLE_DEVICES, write)))
            .map_err(failed)?;
        // Without kernel support the crate yields a ruleset without a file descriptor.
        let probe = ruleset.try_clone().map_err(|err| WorkspaceError::Io {
            operation: "preparing the Landlock sandbox for",
            path: root.display().to_string(),
            reason: err.to_string(),
        })?;
        let supported = Option::<std::os::fd::OwnedFd>::from(probe).is_some();
        if !supported {
            let reason =
                "the kernel does not offer Landlock (not built in, or not enabled at boot: \
                          see /sys/kernel/security/lsm)"
                    .to_owned();
            warn_once(&reason);
            return Ok(Self {
                status: LandlockStatus::Unsupported { reason },
                ruleset: None,
            });
        }
        tracing::debug!(root = %root.display(), "Landlock confines local commands");
        Ok(Self {
            status: LandlockStatus::Enforced,
            ruleset: Some(ruleset),
        })
    }

    /// Whether commands are confined.
    pub(crate) fn status(&self) -> &LandlockStatus {
        &self.status
    }

    /// What one child applies to itself; `None` when unconfined.
    #[cfg(target_os = "linux")]
    pub(crate) fn child_ruleset(&self) -> std::io::Result<Option<landlock::RulesetCreated>> {
        self.ruleset
            .as_ref()
            .map(landlock::RulesetCreated::try_clone)
            .transpose()
    }
}

/// Restricts the calling (child) process with `ruleset`. Runs between `fork` and `exec`: no
/// allocation, no locks, only `prctl(PR_SET_NO_NEW_PRIVS)` and `landlock_restrict_self`.
#[cfg(target_os = "linux")]
pub(crate) fn restrict_child(ruleset: landlock::RulesetCreated) -> std::io::Result<()> {
    match ruleset.restrict_self() {
        Ok(status) if status.ruleset != landlock::RulesetStatus::NotEnforced => Ok(()),
        // Fail closed: a command meant to be confined must not run unconfined.
        Ok(_) => Err(std::io::Error::from_raw_os_error(
            rustix::io::Errno::PERM.raw_os_error(),
        )),
        Err(_) => Err(std::io::Error::from_raw_os_error(
            rustix::io::Errno::PERM.raw_os_error(),
        )),
    }
}

/// Logs the lack of Landlock once per process (every session would otherwise repeat it).
fn warn_once(reason: &str) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!("local commands run without a Landlock sandbox: {reason}");
    });
}
