//! Confinement of local commands with Landlock (Linux): writes are allowed only beneath the
//! workspace root, the temp directory and a few harmless devices; reads and execution stay
//! allowed everywhere; the command may not create device nodes, signal processes outside its
//! sandbox, or connect to abstract UNIX sockets made outside it.
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

/// What a confined command may not reach outside its sandbox (Landlock ABI 6, Linux 6.12):
/// abstract UNIX sockets (an outside listener, e.g. a D-Bus or X11 abstract socket, would act
/// for it) and signals (it could kill or stop Punie, the editor or anything else of the user's).
#[cfg(target_os = "linux")]
fn scopes() -> landlock::BitFlags<landlock::Scope> {
    landlock::Scope::AbstractUnixSocket | landlock::Scope::Signal
}

/// Whether the running kernel's Landlock can also keep confined commands from signalling
/// processes and connecting to abstract UNIX sockets outside their sandbox (ABI 6, Linux 6.12).
/// Where it cannot, commands are still confined to writing in the workspace.
pub fn landlock_scopes_supported() -> bool {
    #[cfg(target_os = "linux")]
    {
        kernel_has_scopes()
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Asked of the crate with a hard requirement, which fails instead of silently dropping what
/// the kernel lacks.
#[cfg(target_os = "linux")]
fn kernel_has_scopes() -> bool {
    use landlock::{CompatLevel, Compatible, Ruleset, RulesetAttr};
    Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .scope(scopes())
        .is_ok()
}

/// Logs once per process that this kernel confines writes only.
#[cfg(target_os = "linux")]
fn warn_scopes_once() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            "this kernel's Landlock predates ABI 6 (Linux 6.12): local commands are confined \
             to writing in the workspace, but may still signal processes and connect to \
             abstract UNIX sockets outside it"
        );
    });
}

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
            ABI, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, path_beneath_rules,
        };
        // A fixed ABI (as the crate recommends): newer kernels keep these semantics, older ones
        // get the best subset they support.
        let abi = ABI::V6;
        // Every write right is handled (so anything not granted is refused), but device nodes
        // are never granted: as root, `mknod` of a block device inside the project would give
        // raw access to a disk or a loop device. FIFOs and sockets stay allowed (build tools
        // make them).
        let handled = AccessFs::from_write(abi);
        let granted = handled & !(AccessFs::MakeChar | AccessFs::MakeBlock);
        let failed = |err: landlock::RulesetError| WorkspaceError::Io {
            operation: "preparing the Landlock sandbox for",
            path: root.display().to_string(),
            reason: err.to_string(),
        };
        let mut writable = vec![root.to_path_buf(), std::env::temp_dir()];
        writable.extend(options.writable_paths.iter().cloned());
        let ruleset = Ruleset::default()
            .handle_access(handled)
            .and_then(|ruleset| ruleset.scope(scopes()))
            .and_then(Ruleset::create)
            .and_then(|ruleset| ruleset.add_rules(path_beneath_rules(&writable, granted)))
            .and_then(|ruleset| ruleset.add_rules(path_beneath_rules(WRITABLE_DEVICES, granted)))
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
        if !kernel_has_scopes() {
            warn_scopes_once();
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
