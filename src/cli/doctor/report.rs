//! What the doctor found, and how it is printed: one line per check with its verdict, then the
//! fixes, then the overall verdict.

use std::fmt::Write as _;

/// How one check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Fine for Punie.
    Ok,
    /// Punie works, but worse than it could (each warning comes with its fix).
    Warn,
    /// Punie cannot work with the server until this is fixed.
    Fail,
    /// Not checked, because an earlier check failed.
    Skip,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        }
    }
}

/// One check's outcome.
#[derive(Clone, Debug)]
pub struct Check {
    /// What was checked ("reachable", "model", …).
    pub name: &'static str,
    /// How it came out.
    pub verdict: Verdict,
    /// What was seen, with numbers.
    pub detail: String,
    /// Flags or settings that fix it (empty when nothing needs fixing).
    pub fixes: Vec<String>,
}

impl Check {
    /// A check with `verdict` and no fixes.
    pub fn new(name: &'static str, verdict: Verdict, detail: impl Into<String>) -> Self {
        Self {
            name,
            verdict,
            detail: detail.into(),
            fixes: Vec::new(),
        }
    }

    /// The same check with `fixes`.
    pub fn fixed_by(mut self, fixes: impl IntoIterator<Item = String>) -> Self {
        self.fixes.extend(fixes);
        self
    }

    /// A check not made, because of what failed before.
    pub fn skipped(name: &'static str, because: &str) -> Self {
        Self::new(name, Verdict::Skip, format!("not checked: {because}"))
    }
}

/// Which server this is, as far as its answers tell: the fixes differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// llama.cpp's `llama-server`.
    LlamaCpp,
    /// Ollama.
    Ollama,
    /// LM Studio.
    LmStudio,
    /// vLLM.
    Vllm,
    /// Anything else OpenAI-compatible.
    Unknown,
}

impl ServerKind {
    /// The name people know it by.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::LlamaCpp => "llama.cpp",
            ServerKind::Ollama => "Ollama",
            ServerKind::LmStudio => "LM Studio",
            ServerKind::Vllm => "vLLM",
            ServerKind::Unknown => "an OpenAI-compatible server",
        }
    }
}

/// Whether Punie can work with the server: no check failed.
pub fn usable(checks: &[Check]) -> bool {
    checks.iter().all(|check| check.verdict != Verdict::Fail)
}

/// The whole report as printed.
pub fn render(base_url: &str, kind: Option<ServerKind>, checks: &[Check]) -> String {
    let mut out = String::new();
    let server = kind.map_or(String::new(), |kind| format!(" ({})", kind.name()));
    let _ = writeln!(out, "punie doctor: {base_url}{server}\n");
    for check in checks {
        let _ = writeln!(
            out,
            "  {:<5} {:<15} {}",
            check.verdict.label(),
            check.name,
            check.detail
        );
    }
    let mut fixes: Vec<&String> = Vec::new();
    for fix in checks.iter().flat_map(|check| &check.fixes) {
        if !fixes.contains(&fix) {
            fixes.push(fix);
        }
    }
    if !fixes.is_empty() {
        let _ = writeln!(out, "\nTo fix:");
        for fix in fixes {
            let _ = writeln!(out, "  - {fix}");
        }
    }
    let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    let warned = checks.iter().filter(|c| c.verdict == Verdict::Warn).count();
    let verdict = match (failed, warned) {
        (0, 0) => "Punie can work with this server.".to_owned(),
        (0, warnings) => format!(
            "Punie can work with this server ({warnings} warning{}).",
            plural(warnings)
        ),
        (failed, _) => format!(
            "Punie cannot work with this server until {} fixed ({failed} failed check{}).",
            if failed == 1 { "that is" } else { "these are" },
            plural(failed)
        ),
    };
    let _ = writeln!(out, "\n{verdict}");
    out
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixes_are_listed_once_and_failures_decide() {
        let checks = vec![
            Check::new("reachable", Verdict::Ok, "answers"),
            Check::new("tool calls", Verdict::Warn, "as text")
                .fixed_by(["restart llama-server with --jinja".to_owned()]),
            Check::new("context window", Verdict::Fail, "2048 tokens")
                .fixed_by(["restart llama-server with --jinja".to_owned()]),
        ];
        let text = render("http://h/v1", Some(ServerKind::LlamaCpp), &checks);
        assert_eq!(text.matches("--jinja").count(), 1, "{text}");
        assert!(
            text.starts_with("punie doctor: http://h/v1 (llama.cpp)\n"),
            "{text}"
        );
        assert!(
            text.contains("  FAIL  context window  2048 tokens\n"),
            "{text}"
        );
        assert!(
            text.contains("until that is fixed (1 failed check)"),
            "{text}"
        );
        assert!(!usable(&checks));
        assert!(usable(&checks[..2]));
    }
}
