//! Project instructions: the `AGENTS.md` files that tell an agent how a project works, joined
//! into the system prompt.
//!
//! Which files: a user-wide one ([`AgentConfig::user_instructions`]), then one per directory
//! from the project root down to the session's `cwd` (nearest last, so the most specific word
//! comes last). The project root is the nearest directory at or above `cwd` that holds `.git`;
//! without one, only `cwd` counts. In each directory `AGENTS.md` counts, else `CLAUDE.md`, else
//! `GEMINI.md`. Files are read through a handle on their root (the project root, or the user
//! file's own directory), so a symlink that leads out is refused.
//!
//! They are checked at every prompt with one `stat` per candidate and re-read only when one
//! changed. What joins the prompt is capped at an eighth of the context window: the nearest
//! files keep their text first; what is cut is said in the prompt, and the person is told once
//! per session with a notice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::Agent;
use super::config::AgentConfig;
use super::context::{DEFAULT_CONTEXT_TOKENS, estimate_tokens, head_and_tail};
use super::error::thousands;
use super::session::Session;
use crate::workspace::local::{FileStamp, read_beneath, stat_beneath};

/// The file names that count, in order: a directory's first one that exists is its file.
pub const INSTRUCTION_FILES: [&str; 3] = ["AGENTS.md", "CLAUDE.md", "GEMINI.md"];

/// The instructions take at most the context window divided by this.
pub const INSTRUCTIONS_SHARE_DIVISOR: u32 = 8;

/// The most bytes read of one file: far above any share of a real window, so the cap decides.
const MAX_FILE_BYTES: u64 = 256 * 1024;

/// The most directories between the project root and `cwd` that are looked at.
const MAX_LEVELS: usize = 32;

/// The byte budget for `tokens` tokens, as [`estimate_tokens`] counts them.
fn bytes_for(tokens: u32) -> usize {
    tokens as usize * 3
}

/// One file's text as last read.
#[derive(Clone, Debug)]
struct Cached {
    stamp: FileStamp,
    text: String,
}

/// A session's instruction files as last read, and whether the person was told of a cut.
#[derive(Debug, Default)]
pub(crate) struct InstructionFiles {
    state: Mutex<FilesState>,
}

#[derive(Debug, Default)]
struct FilesState {
    files: HashMap<PathBuf, Cached>,
    cut_told: bool,
}

/// One instruction file that joins the prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct InstructionSource {
    /// The file.
    pub(crate) path: PathBuf,
    /// Its text.
    pub(crate) text: String,
}

/// The instructions as they join the system prompt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct InstructionsSection {
    /// The section's text (empty when there are no instructions).
    pub(crate) text: String,
    /// When cut: what the person is told.
    pub(crate) cut: Option<String>,
}

impl InstructionFiles {
    fn state(&self) -> MutexGuard<'_, FilesState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The instruction files for a session in `cwd`, least specific first: checked with a `stat`
    /// each, read again only when changed. Unreadable files are logged and left out.
    pub(crate) fn load(&self, cwd: &Path, user_file: Option<&Path>) -> Vec<InstructionSource> {
        // (root of the handle, path beneath it, stamp), least specific first.
        let mut wanted: Vec<(PathBuf, PathBuf, FileStamp)> = Vec::new();
        let mut check = |root: &Path, relative: PathBuf| match stat_beneath(root, &relative) {
            Ok(Some(stamp)) => {
                wanted.push((root.to_owned(), relative, stamp));
                true
            }
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(file = %root.join(&relative).display(), %error, "instruction file skipped");
                false
            }
        };
        if let Some(user) = user_file
            && let (Some(dir), Some(name)) = (user.parent(), user.file_name())
        {
            check(dir, PathBuf::from(name));
        }
        let root = project_root(cwd);
        for dir in levels(&root, cwd) {
            let relative = dir.strip_prefix(&root).unwrap_or(Path::new(""));
            for name in INSTRUCTION_FILES {
                if check(&root, relative.join(name)) {
                    break;
                }
            }
        }
        let mut state = self.state();
        let mut sources = Vec::new();
        let mut kept = HashMap::new();
        for (root, relative, stamp) in wanted {
            let path = root.join(&relative);
            let cached = match state.files.remove(&path) {
                Some(cached) if cached.stamp == stamp => cached,
                _ => match read_beneath(&root, &relative, MAX_FILE_BYTES) {
                    Ok(read) => {
                        tracing::info!(file = %path.display(), bytes = read.text.len(), "instruction file read");
                        Cached {
                            stamp: read.stamp,
                            text: read.text,
                        }
                    }
                    Err(error) => {
                        tracing::warn!(file = %path.display(), %error, "instruction file skipped");
                        continue;
                    }
                },
            };
            if !cached.text.trim().is_empty() {
                sources.push(InstructionSource {
                    path: path.clone(),
                    text: cached.text.trim().to_owned(),
                });
            }
            kept.insert(path, cached);
        }
        state.files = kept;
        sources
    }

    /// Whether the person still has to be told of a cut (true once per session).
    pub(crate) fn tell_cut(&self) -> bool {
        !std::mem::replace(&mut self.state().cut_told, true)
    }
}

/// The nearest directory at or above `cwd` that holds `.git`, else `cwd`.
fn project_root(cwd: &Path) -> PathBuf {
    cwd.ancestors()
        .take(MAX_LEVELS)
        .find(|dir| std::fs::symlink_metadata(dir.join(".git")).is_ok())
        .unwrap_or(cwd)
        .to_owned()
}

/// The directories from `root` down to `cwd`, both included.
fn levels(root: &Path, cwd: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = cwd
        .ancestors()
        .take_while(|dir| dir.starts_with(root))
        .map(Path::to_owned)
        .collect();
    dirs.reverse();
    dirs
}

/// The section of the system prompt that holds `sources` within an eighth of `window` tokens.
/// The nearest files keep their text first; a file that does not fit whole keeps its head and
/// tail, and the section says what was cut.
pub(crate) fn section(sources: &[InstructionSource], window: u32) -> InstructionsSection {
    if sources.is_empty() {
        return InstructionsSection::default();
    }
    let limit = window / INSTRUCTIONS_SHARE_DIVISOR;
    const HEADING: &str = "Project instructions (from these files; later, more specific ones win):";
    let header = |source: &InstructionSource| format!("\n\n## {}\n", source.path.display());
    let mut budget = bytes_for(limit).saturating_sub(HEADING.len() + 200);
    // From the nearest file up: what is left of the budget.
    let mut parts: Vec<String> = vec![String::new(); sources.len()];
    let mut cut_files = Vec::new();
    for (index, source) in sources.iter().enumerate().rev() {
        let framing = header(source).len();
        let room = budget.saturating_sub(framing);
        let text = if source.text.len() <= room {
            source.text.clone()
        } else {
            cut_files.push(source.path.display().to_string());
            if room < 200 {
                String::new()
            } else {
                head_and_tail(
                    &source.text,
                    room - 100,
                    " to fit the instructions' share of the context window",
                )
            }
        };
        budget = budget.saturating_sub(framing + text.len());
        parts[index] = text;
    }
    let mut text = HEADING.to_owned();
    for (source, part) in sources.iter().zip(&parts) {
        text.push_str(&header(source));
        if part.is_empty() {
            text.push_str("[left out: no room in the context window]");
        } else {
            text.push_str(part);
        }
    }
    let cut = (!cut_files.is_empty()).then(|| {
        cut_files.reverse();
        let total: u32 = sources.iter().map(|s| estimate_tokens(&s.text)).sum();
        text.push_str(&format!(
            "\n\n[Punie: these instructions were cut to about {} tokens, an eighth of the context window; cut: {}.]",
            thousands(limit),
            cut_files.join(", ")
        ));
        format!(
            "The project instructions take about {} tokens, more than the {} Punie keeps for them (an eighth of the model's {}-token window), so part of {} was left out. Shorten them, or use a larger context window.",
            thousands(total),
            thousands(limit),
            thousands(window),
            cut_files.join(", ")
        )
    });
    InstructionsSection { text, cut }
}

impl Session {
    /// The project instructions for this session's next prompt, in a `window`-token window.
    pub(crate) fn instructions_section(
        &self,
        config: &AgentConfig,
        window: u32,
    ) -> InstructionsSection {
        let sources = self
            .instructions
            .load(self.workspace.root(), config.user_instructions.as_deref());
        section(&sources, window)
    }
}

impl Agent {
    /// The tokens (estimated as the context budget counts them) that the project instructions
    /// of `session` take in its next prompt, for a `window`-token context window (`None`: the
    /// configured or default size). Checks the files as a prompt would.
    pub fn instruction_tokens(&self, session: &Session, window: Option<u32>) -> u32 {
        let window = window
            .or(self.config.context_size)
            .unwrap_or(DEFAULT_CONTEXT_TOKENS);
        let section = session.instructions_section(&self.config, window);
        if section.text.is_empty() {
            0
        } else {
            estimate_tokens(&section.text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(path: &str, text: &str) -> InstructionSource {
        InstructionSource {
            path: PathBuf::from(path),
            text: text.to_owned(),
        }
    }

    #[test]
    fn levels_run_from_the_root_to_the_cwd() {
        assert_eq!(
            levels(Path::new("/p"), Path::new("/p/a/b")),
            [
                PathBuf::from("/p"),
                PathBuf::from("/p/a"),
                PathBuf::from("/p/a/b")
            ]
        );
        assert_eq!(
            levels(Path::new("/p"), Path::new("/p")),
            [PathBuf::from("/p")]
        );
    }

    #[test]
    fn the_nearest_file_keeps_its_text_when_the_share_is_small() {
        let far = source("/p/AGENTS.md", &"far ".repeat(2000));
        let near = source("/p/sub/AGENTS.md", "near rules");
        let roomy = section(&[far.clone(), near.clone()], 100_000);
        assert!(roomy.cut.is_none());
        assert!(roomy.text.contains("near rules") && roomy.text.contains(&far.text));
        let tight = section(&[far, near], 4096);
        let notice = tight.cut.expect("cut");
        assert!(
            notice.contains("512") && notice.contains("4,096"),
            "{notice}"
        );
        assert!(
            notice.contains("/p/AGENTS.md") && !notice.contains("sub/"),
            "{notice}"
        );
        assert!(tight.text.contains("near rules"));
        assert!(tight.text.contains("were cut"), "{}", tight.text);
        assert!(
            estimate_tokens(&tight.text) <= 4096 / 8,
            "{}",
            tight.text.len()
        );
    }
}
