//! Answering permission requests without an editor: a fixed `--approve` policy, a question to
//! the person at the terminal, or a refusal that says how to allow.
//!
//! Reading and searching never need asking: every implementation here allows them at once.
//! Refusals that no person made come back as [`WorkspaceError::PermissionRefused`] with a reason
//! naming the flag that would allow the call; a person's "no" is [`PermissionOutcome::RejectOnce`].

use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;

use crate::workspace::{
    PermissionOutcome, PermissionRequest, Permissions, Result, ToolKind, WorkspaceError,
};

/// What `--approve` allows without asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApprovePolicy {
    /// Refuse every edit and every command (reads and searches stay allowed).
    None,
    /// Allow file edits (edit, delete, move); refuse commands.
    Edits,
    /// Allow everything.
    All,
}

impl ApprovePolicy {
    /// Whether the policy allows a call of this kind.
    pub fn allows(self, kind: ToolKind) -> bool {
        match Need::of(kind) {
            Need::Nothing => true,
            Need::Edit => matches!(self, Self::Edits | Self::All),
            Need::Command => matches!(self, Self::All),
        }
    }
}

impl FromStr for ApprovePolicy {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "edits" => Ok(Self::Edits),
            "all" => Ok(Self::All),
            other => Err(format!(
                "unknown approval policy {other:?}: expected none, edits or all"
            )),
        }
    }
}

impl std::fmt::Display for ApprovePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "none",
            Self::Edits => "edits",
            Self::All => "all",
        })
    }
}

/// What a kind of tool call needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    /// Reading and searching: never asked.
    Nothing,
    /// Changing files.
    Edit,
    /// Running commands and everything else.
    Command,
}

impl Need {
    fn of(kind: ToolKind) -> Self {
        match kind {
            ToolKind::Read | ToolKind::Search => Self::Nothing,
            ToolKind::Edit | ToolKind::Delete | ToolKind::Move => Self::Edit,
            _ => Self::Command,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Nothing => "reading",
            Self::Edit => "file edits",
            Self::Command => "commands",
        }
    }
}

/// Answers from a fixed [`ApprovePolicy`], never asking anyone.
#[derive(Clone, Copy, Debug)]
pub struct PolicyPermissions {
    policy: ApprovePolicy,
}

impl PolicyPermissions {
    /// Answers as `policy` says.
    pub fn new(policy: ApprovePolicy) -> Self {
        Self { policy }
    }

    /// The policy.
    pub fn policy(&self) -> ApprovePolicy {
        self.policy
    }
}

impl Permissions for PolicyPermissions {
    fn request<'a>(
        &'a self,
        request: PermissionRequest,
    ) -> BoxFuture<'a, Result<PermissionOutcome>> {
        Box::pin(async move {
            if self.policy.allows(request.kind) {
                return Ok(PermissionOutcome::AllowOnce);
            }
            let need = Need::of(request.kind);
            let how = match need {
                Need::Edit => "pass --approve edits or --approve all",
                _ => "pass --approve all",
            };
            Err(WorkspaceError::PermissionRefused {
                reason: format!(
                    "{} are not allowed by --approve {} ({}): {how}",
                    need.describe(),
                    self.policy,
                    request.title
                ),
            })
        })
    }
}

/// Refuses everything that needs asking, because nobody can be asked.
#[derive(Clone, Copy, Debug, Default)]
struct NobodyToAsk;

impl Permissions for NobodyToAsk {
    fn request<'a>(
        &'a self,
        request: PermissionRequest,
    ) -> BoxFuture<'a, Result<PermissionOutcome>> {
        Box::pin(async move {
            if Need::of(request.kind) == Need::Nothing {
                return Ok(PermissionOutcome::AllowOnce);
            }
            Err(WorkspaceError::PermissionRefused {
                reason: format!(
                    "{}: nobody can be asked: pass --approve edits or --approve all",
                    request.title
                ),
            })
        })
    }
}

type Input = Box<dyn BufRead + Send>;
type Output = Box<dyn Write + Send>;

/// Asks the person at the terminal: `y` allows once, `a` always (for this kind of call, this
/// session), `n` refuses; end of input refuses.
///
/// The question goes to stderr and the answer is read from `/dev/tty` (or from stdin only when
/// stdin is itself a terminal; stdin may be the ACP wire and is never read otherwise). Prompts
/// are asked one at a time. A prompt whose caller gives up keeps waiting for its answer on a
/// blocking thread; the answer is then ignored.
pub struct TtyPermissions {
    io: Arc<Mutex<(Input, Output)>>,
    always: Arc<Mutex<HashSet<ToolKind>>>,
}

impl std::fmt::Debug for TtyPermissions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtyPermissions").finish_non_exhaustive()
    }
}

impl TtyPermissions {
    /// Asks on the controlling terminal, or `None` when there is none.
    pub fn from_terminal() -> Option<Self> {
        let input: Input = match std::fs::File::open("/dev/tty") {
            Ok(tty) => Box::new(std::io::BufReader::new(tty)),
            Err(_) if std::io::stdin().is_terminal() => {
                Box::new(std::io::BufReader::new(std::io::stdin()))
            }
            Err(_) => return None,
        };
        Some(Self::from_streams(input, Box::new(std::io::stderr())))
    }

    /// Asks on `output` and reads answers from `input` (for tests and embedders).
    pub fn from_streams(input: Box<dyn BufRead + Send>, output: Box<dyn Write + Send>) -> Self {
        Self {
            io: Arc::new(Mutex::new((input, output))),
            always: Arc::new(Mutex::new(HashSet::new())),
        }
    }
}

impl Permissions for TtyPermissions {
    fn request<'a>(
        &'a self,
        request: PermissionRequest,
    ) -> BoxFuture<'a, Result<PermissionOutcome>> {
        Box::pin(async move {
            if Need::of(request.kind) == Need::Nothing {
                return Ok(PermissionOutcome::AllowOnce);
            }
            if self
                .always
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&request.kind)
            {
                return Ok(PermissionOutcome::AllowAlways);
            }
            let io = Arc::clone(&self.io);
            let always = Arc::clone(&self.always);
            tokio::task::spawn_blocking(move || {
                let mut io = io.lock().unwrap_or_else(PoisonError::into_inner);
                let (input, output) = &mut *io;
                // Someone may have answered "always" while this prompt waited for the terminal.
                if always
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .contains(&request.kind)
                {
                    return Ok(PermissionOutcome::AllowAlways);
                }
                let outcome = ask(input, output, &request).map_err(|err| WorkspaceError::Io {
                    operation: "asking permission for",
                    path: request.title.clone(),
                    reason: err.to_string(),
                })?;
                if outcome == PermissionOutcome::AllowAlways {
                    always
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(request.kind);
                }
                Ok(outcome)
            })
            .await
            .map_err(|err| WorkspaceError::Io {
                operation: "asking permission for",
                path: "a tool call".to_owned(),
                reason: err.to_string(),
            })?
        })
    }
}

/// Asks once, re-asking (a few times) on an answer it does not understand.
fn ask(
    input: &mut Input,
    output: &mut Output,
    request: &PermissionRequest,
) -> std::io::Result<PermissionOutcome> {
    let need = Need::of(request.kind);
    for _ in 0..3 {
        write!(
            output,
            "\nPunie wants to {}: {}\nAllow? [y] yes once, [a] always for {}, [n] no: ",
            match need {
                Need::Edit => "change files",
                _ => "run a command",
            },
            request.title,
            need.describe()
        )?;
        output.flush()?;
        let mut answer = String::new();
        if input.read_line(&mut answer)? == 0 {
            writeln!(output, "\n(no answer: refused)")?;
            return Ok(PermissionOutcome::RejectOnce);
        }
        match answer.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => return Ok(PermissionOutcome::AllowOnce),
            "a" | "always" => return Ok(PermissionOutcome::AllowAlways),
            "n" | "no" => return Ok(PermissionOutcome::RejectOnce),
            _ => writeln!(output, "Please answer y, a or n.")?,
        }
    }
    Ok(PermissionOutcome::RejectOnce)
}

/// Chooses how a session without an editor answers permission requests: an explicit `policy`
/// wins; otherwise, when `interactive` and a terminal is at hand, the person is asked; otherwise
/// everything that needs asking is refused with a reason saying how to allow it ("nobody can be
/// asked: pass --approve edits or --approve all").
pub fn local_permissions(policy: Option<ApprovePolicy>, interactive: bool) -> Arc<dyn Permissions> {
    if let Some(policy) = policy {
        return Arc::new(PolicyPermissions::new(policy));
    }
    if interactive && let Some(tty) = TtyPermissions::from_terminal() {
        return Arc::new(tty);
    }
    Arc::new(NobodyToAsk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_print() {
        for policy in [
            ApprovePolicy::None,
            ApprovePolicy::Edits,
            ApprovePolicy::All,
        ] {
            assert_eq!(policy.to_string().parse::<ApprovePolicy>(), Ok(policy));
        }
        assert_eq!(" ALL ".parse::<ApprovePolicy>(), Ok(ApprovePolicy::All));
        assert!(
            "some"
                .parse::<ApprovePolicy>()
                .unwrap_err()
                .contains("none, edits or all")
        );
    }

    #[test]
    fn kinds_map_to_needs() {
        assert!(ApprovePolicy::None.allows(ToolKind::Read));
        assert!(ApprovePolicy::None.allows(ToolKind::Search));
        assert!(!ApprovePolicy::None.allows(ToolKind::Edit));
        assert!(ApprovePolicy::Edits.allows(ToolKind::Delete));
        assert!(ApprovePolicy::Edits.allows(ToolKind::Move));
        assert!(!ApprovePolicy::Edits.allows(ToolKind::Execute));
        assert!(!ApprovePolicy::Edits.allows(ToolKind::Fetch));
        assert!(ApprovePolicy::All.allows(ToolKind::Other));
    }
}
