//! Fitting a request into the model's context window: the window's size, the toolset that
//! fits it, how many tokens the prompt takes (counted by the server where it can, else
//! estimated and calibrated), compaction in rare big steps, and the summary of older turns.

use futures::StreamExt;

use super::{Turn, unless_cancelled};
use crate::agent::context::{
    self, DEFAULT_CONTEXT_TOKENS, KEPT_TURNS, MAX_ANSWER_TOKENS, MIN_ANSWER_TOKENS,
};
use crate::agent::error::{AgentError, thousands};
use crate::agent::events::{CompactionStatus, TurnEvent};
use crate::llm::{ChatRequest, LlmError, Message, ModelEvent, ToolSpec, Usage};
use crate::tools::profile::ToolProfile;

/// The most of the window the fixed prompt (system prompt and tool schemas) may take before a
/// more compact tool profile is chosen: the rest is for the conversation and the answer.
const FIXED_SHARE_DIVISOR: u32 = 3;

/// The calibration of the estimate is kept within these bounds, so one odd count cannot make
/// it wildly optimistic or pessimistic.
const RATIO_BOUNDS: (f64, f64) = (0.5, 1.5);

/// What fills the context window, in estimated tokens (see [`Turn::context_use`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ContextUse {
    /// The context window.
    pub(crate) window: u32,
    /// The system prompt without the project's instructions.
    pub(crate) system_prompt: u32,
    /// The project's instructions.
    pub(crate) instructions: u32,
    /// The name of the tool profile the window affords.
    pub(crate) tools_profile: &'static str,
    /// Tools described to the model.
    pub(crate) tool_count: usize,
    /// Their schemas.
    pub(crate) tools: u32,
    /// The conversation.
    pub(crate) history: u32,
    /// Messages in it.
    pub(crate) messages: usize,
}

impl ContextUse {
    /// Everything together.
    pub(crate) fn total(&self) -> u32 {
        self.system_prompt + self.instructions + self.tools + self.history
    }
}

/// How `/compact` went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CompactOutcome {
    /// The history was compacted; what was done.
    Compacted(String),
    /// There was nothing to compact; why.
    Nothing(String),
    /// The summary failed; why (the history is unchanged).
    Failed(String),
    /// The turn was cancelled.
    Cancelled,
}

/// What the turn knows of its prompt's size.
#[derive(Clone, Debug)]
pub(super) struct Budget {
    /// The context window, in tokens.
    pub(super) window: u32,
    /// Tokens of the system prompt and the tool schemas: the server's count, else the estimate.
    fixed: u32,
    /// Whether the server counted `fixed`.
    counted: bool,
    /// Tokens per estimated token for the conversation: from the server's counts, 1.0 until
    /// it gives any.
    ratio: f64,
    /// The conversation's estimate (uncalibrated) in the last request sent.
    last_history_estimate: u32,
    /// The `max_tokens` the user set, if any.
    explicit_max_tokens: Option<u32>,
}

impl Budget {
    /// Tokens of a request's prompt with `history`.
    pub(super) fn prompt_tokens(&self, history: &[Message]) -> u32 {
        self.fixed + self.calibrated(context::history_tokens(history))
    }

    fn calibrated(&self, estimate: u32) -> u32 {
        (f64::from(estimate) * self.ratio).ceil() as u32
    }

    /// Tokens kept free for the answer when deciding whether to compact: the user's
    /// `max_tokens` (at most half the window), else a quarter of the window within
    /// [`MIN_ANSWER_TOKENS`]..=1024.
    pub(super) fn reserve(&self) -> u32 {
        match self.explicit_max_tokens {
            Some(tokens) => tokens.min(self.window / 2).max(MIN_ANSWER_TOKENS),
            None => (self.window / 4).clamp(MIN_ANSWER_TOKENS, 1024),
        }
    }

    /// The most the prompt may take and still go as it is.
    fn limit(&self) -> u32 {
        self.window.saturating_sub(self.reserve())
    }

    /// What compaction aims at once it is needed: 60 % of the window (never above the limit),
    /// so the requests after it have room to grow with the prefix unchanged.
    fn target(&self) -> u32 {
        (self.window / 10 * 6).min(self.limit())
    }

    /// The `max_tokens` to ask for when the prompt takes `used` tokens: what the window leaves,
    /// at most the user's `max_tokens` or [`MAX_ANSWER_TOKENS`]. `None` when that is under
    /// [`MIN_ANSWER_TOKENS`].
    pub(super) fn max_tokens(&self, used: u32) -> Option<u32> {
        let room = self.window.saturating_sub(used);
        (room >= MIN_ANSWER_TOKENS)
            .then(|| room.min(self.explicit_max_tokens.unwrap_or(MAX_ANSWER_TOKENS)))
    }

    /// After the server said the prompt overflowed: no calibration below the pessimistic
    /// estimate any more.
    pub(super) fn distrust(&mut self) {
        self.ratio = self.ratio.max(1.0);
    }

    /// Learns from the server's count of the last request's prompt.
    pub(super) fn observe(&mut self, usage: Option<Usage>) {
        let Some(usage) = usage else { return };
        let observed = u32::try_from(usage.prompt_tokens).unwrap_or(u32::MAX);
        if self.last_history_estimate < 100 || observed <= self.fixed {
            return;
        }
        let ratio = f64::from(observed - self.fixed) / f64::from(self.last_history_estimate);
        self.ratio = ratio.clamp(RATIO_BOUNDS.0, RATIO_BOUNDS.1);
    }
}

impl Turn<'_> {
    /// The model's context window: from the server where it says so, else the configured size,
    /// else a conservative default.
    pub(super) async fn context_window(&self) -> u32 {
        let from_server = unless_cancelled(&self.cancel, self.model().context_size())
            .await
            .flatten();
        let (window, source) = match (from_server, self.config.context_size) {
            (Some(size), _) => (size, "the model server"),
            (None, Some(size)) => (size, "--context-size"),
            (None, None) => (
                DEFAULT_CONTEXT_TOKENS,
                "the default (the server did not say; pass --context-size)",
            ),
        };
        tracing::debug!(session = %self.session.id, window, source, "context window");
        window
    }

    /// The session's tools as `profile` describes them to the model.
    fn tool_specs(&self, profile: ToolProfile) -> Vec<ToolSpec> {
        profile
            .describe(&self.toolset)
            .into_iter()
            .map(|tool| ToolSpec {
                name: tool.name,
                description: tool.description,
                parameters: tool.parameters,
            })
            .collect()
    }

    /// What would fill the context window if the conversation were `history`, estimated as
    /// the turn estimates it, for `/context`.
    pub(crate) async fn context_use(&self, history: &[Message]) -> ContextUse {
        let window = self.context_window().await;
        let instructions = self
            .project_instructions(window)
            .map_or(0, |text| context::estimate_tokens(&text));
        let system = Message::System {
            content: self.system_prompt(window),
        };
        let system_prompt = context::prompt_tokens(&system, 0, &[]).saturating_sub(instructions);
        let share = window / FIXED_SHARE_DIVISOR;
        let mut tools = (ToolProfile::Full, 0, 0);
        for profile in ToolProfile::ALL {
            let specs = self.tool_specs(profile);
            let tokens = context::tool_tokens(&specs);
            tools = (profile, specs.len(), tokens);
            if system_prompt + instructions + tokens <= share {
                break;
            }
        }
        ContextUse {
            window,
            system_prompt,
            instructions,
            tools_profile: tools.0.name(),
            tool_count: tools.1,
            tools: tools.2,
            history: context::history_tokens(history),
            messages: history.len(),
        }
    }

    /// Announces a compaction; returns its id.
    fn compaction_started(&self) -> String {
        let id = format!("cmp_{}", uuid::Uuid::new_v4().simple());
        self.emit(TurnEvent::Compaction {
            id: id.clone(),
            status: CompactionStatus::InProgress,
            description: None,
        });
        id
    }

    /// Ends the compaction `id`: what it kept (`description`, then the model's `summary` if
    /// it wrote one) when it completed, then its status.
    fn compaction_ended(
        &self,
        id: String,
        status: CompactionStatus,
        description: String,
        summary: Option<&str>,
    ) {
        if status == CompactionStatus::Completed {
            self.emit(TurnEvent::CompactionSummary {
                id: id.clone(),
                text: description.clone(),
            });
            if let Some(summary) = summary {
                self.emit(TurnEvent::CompactionSummary {
                    id: id.clone(),
                    text: format!("\n\n{summary}"),
                });
            }
        }
        self.emit(TurnEvent::Compaction {
            id,
            status,
            description: Some(description),
        });
    }

    /// `/compact`: summarises everything before the latest exchange now, reported as the
    /// automatic compaction is. `history` changes only when the compaction completed.
    pub(crate) async fn compact_now(&self, history: &mut Vec<Message>) -> CompactOutcome {
        let keep_from = context::recent_turns_start(history, 1);
        if keep_from == 0 {
            return CompactOutcome::Nothing(
                "Nothing to compact yet: the conversation has no exchange before the latest one."
                    .to_owned(),
            );
        }
        let Some(window) = unless_cancelled(&self.cancel, self.context_window()).await else {
            return CompactOutcome::Cancelled;
        };
        let before = context::history_tokens(history);
        let turns = history[..keep_from]
            .iter()
            .filter(|m| matches!(m, Message::User { .. }))
            .count();
        let id = self.compaction_started();
        match self.summary_of(&history[..keep_from], window).await {
            None => {
                self.compaction_ended(
                    id,
                    CompactionStatus::Cancelled,
                    "Compaction cancelled: the history is as it was.".to_owned(),
                    None,
                );
                CompactOutcome::Cancelled
            }
            Some(Err(reason)) => {
                let description = format!(
                    "The history was not compacted: the model could not summarise it ({reason}). \
                     The conversation is as it was; try /compact again, or /clear to start over."
                );
                self.compaction_ended(id, CompactionStatus::Failed, description.clone(), None);
                CompactOutcome::Failed(description)
            }
            Some(Ok(summary)) => {
                context::replace_with_summary(history, keep_from, &summary);
                let after = context::history_tokens(history);
                let description = format!(
                    "Punie summarised the {turns} earlier turn{} of this conversation and kept \
                     the latest exchange as it was (about {} → {} tokens).",
                    if turns == 1 { "" } else { "s" },
                    thousands(before),
                    thousands(after)
                );
                tracing::info!(session = %self.session.id, before, after, turns, "history compacted on request");
                self.compaction_ended(
                    id,
                    CompactionStatus::Completed,
                    description.clone(),
                    Some(&summary),
                );
                CompactOutcome::Compacted(description)
            }
        }
    }

    /// The tools to offer and the prompt's budget: the most detailed tool profile whose fixed
    /// prompt takes at most a third of the window, else the least detailed. The person is told
    /// (on the session's first turn) when the toolset is not the full one. `None` if the turn
    /// was cancelled meanwhile.
    pub(super) async fn fit_tools(
        &self,
        system: &Message,
        window: u32,
        history: &[Message],
    ) -> Option<(Vec<ToolSpec>, Budget)> {
        let share = window / FIXED_SHARE_DIVISOR;
        let mut chosen = None;
        let mut full_size = None;
        for profile in ToolProfile::ALL {
            let tools = self.tool_specs(profile);
            let estimate = context::prompt_tokens(system, context::tool_tokens(&tools), &[]);
            let probe = ChatRequest {
                messages: vec![system.clone()],
                tools: tools.clone(),
                ..ChatRequest::default()
            };
            let model = self.model();
            let counted = unless_cancelled(&self.cancel, model.count_prompt_tokens(&probe)).await?;
            let fixed = counted.unwrap_or(estimate);
            full_size.get_or_insert(fixed);
            tracing::debug!(session = %self.session.id, profile = profile.name(), tools = tools.len(), counted, estimate, "fixed prompt of a tool profile");
            let fits = fixed <= share;
            chosen = Some((profile, tools, fixed, counted, estimate));
            if fits {
                break;
            }
        }
        let (profile, tools, fixed, counted, estimate) = chosen?;
        // The server's count of the fixed prompt calibrates the estimate of the rest, never
        // below 0.8 (conversations hold code, which takes more tokens per byte than prose).
        let ratio = counted.map_or(1.0, |counted| {
            (f64::from(counted) / f64::from(estimate.max(1))).clamp(0.8, RATIO_BOUNDS.1)
        });
        tracing::info!(
            session = %self.session.id,
            profile = profile.name(),
            tools = tools.len(),
            fixed_tokens = fixed,
            counted_by_server = counted.is_some(),
            estimated = estimate,
            window,
            "toolset for the window"
        );
        let first_turn = history
            .iter()
            .filter(|m| matches!(m, Message::User { .. }))
            .count()
            <= 1;
        if profile != ToolProfile::Full && first_turn {
            let folded = self.toolset.iter().count() - tools.len();
            self.emit(TurnEvent::Notice {
                title: "Compact toolset".to_owned(),
                description: format!(
                    "The model's context window is {} tokens, and Punie's full tool descriptions \
                     with its instructions would take {} of them, so Punie offers the {} toolset \
                     ({} tools with short descriptions{}; about {} tokens). A larger window (e.g. \
                     llama-server -c {}) gets the full one.",
                    thousands(window),
                    thousands(full_size.unwrap_or(fixed)),
                    profile.name(),
                    tools.len(),
                    if folded > 0 {
                        format!(", {folded} rarely used ones folded")
                    } else {
                        String::new()
                    },
                    thousands(fixed),
                    AgentError::suggested_context(full_size.unwrap_or(fixed) * 2),
                ),
            });
        }
        let budget = Budget {
            window,
            fixed,
            counted: counted.is_some(),
            ratio,
            last_history_estimate: 0,
            explicit_max_tokens: self.config.max_tokens,
        };
        Some((tools, budget))
    }

    /// Makes the request fit the window. Nothing changes while the prompt leaves room for the
    /// answer, so the prompt's prefix stays byte-identical from request to request (what lets
    /// the server reuse its cache). Once it does not, compaction works in big steps down to
    /// [`Budget::target`] — old tool outputs shortened, long answers cut, older turns
    /// summarised — and only if that is not enough cuts this turn's tool outputs and the
    /// answers further. Returns the `max_tokens` to ask for, or `None` if the turn was
    /// cancelled meanwhile.
    pub(super) async fn fit(
        &self,
        budget: &mut Budget,
        history: &mut Vec<Message>,
    ) -> Result<Option<u32>, AgentError> {
        let window = budget.window;
        let before = budget.prompt_tokens(history);
        let mut done = Vec::new();
        let mut compaction = None;
        let mut summary = None;
        if before > budget.limit() {
            let target = |history: &[Message]| budget.prompt_tokens(history) <= budget.target();
            let limit = |history: &[Message]| budget.prompt_tokens(history) <= budget.limit();
            let keep_from = context::recent_turns_start(history, KEPT_TURNS);
            if context::shorten_old_tool_outputs(history, keep_from) {
                done.push("shortened old tool outputs");
            }
            // An answer over a quarter of the window is most likely a loop; cutting it is
            // cheaper than a summary, and a summary could not remove it from the kept turns.
            if !target(history)
                && context::shorten_long_answers(history, context::long_answer_limit(window))
            {
                done.push("shortened long answers");
            }
            if !target(history) && keep_from > 0 {
                // The summary takes a model request: the person sees the compaction start.
                let id = compaction.insert(self.compaction_started()).clone();
                let Some(written) = self.summarise(&history[..keep_from], window).await else {
                    self.compaction_ended(
                        id,
                        CompactionStatus::Cancelled,
                        "Compaction cancelled with the turn.".to_owned(),
                        None,
                    );
                    return Ok(None);
                };
                context::replace_with_summary(history, keep_from, &written);
                summary = Some(written);
                done.push("summarised older turns");
            }
            let all = history.len();
            if !limit(history) && context::shorten_old_tool_outputs(history, all) {
                done.push("shortened this turn's tool outputs");
            }
            if !limit(history) && context::shorten_answers_until(history, window, limit) {
                done.push("cut long answers further");
            }
        }
        let used = budget.prompt_tokens(history);
        if !done.is_empty() {
            let description = format!(
                "Punie {} to fit the model's {}-token context window (about {} → {} tokens).",
                done.join(" and "),
                thousands(window),
                thousands(before),
                thousands(used)
            );
            tracing::info!(session = %self.session.id, before, used, window, steps = ?done, "history compacted");
            let id = compaction.unwrap_or_else(|| self.compaction_started());
            self.compaction_ended(
                id,
                CompactionStatus::Completed,
                description,
                summary.as_deref(),
            );
        }
        self.emit(TurnEvent::Usage {
            used: used.into(),
            size: window.into(),
        });
        let Some(max_tokens) = budget.max_tokens(used) else {
            tracing::warn!(session = %self.session.id, used, window, fixed = budget.fixed, counted = budget.counted, "the request does not fit the window");
            return Err(AgentError::ContextTooSmall {
                needed: used + MIN_ANSWER_TOKENS,
                window,
            });
        };
        budget.last_history_estimate = context::history_tokens(history);
        Ok(Some(max_tokens))
    }

    /// Asks the model to summarise `older` messages. On failure the older turns are replaced by
    /// a note instead, so the conversation still fits. `None` if the turn was cancelled.
    pub(super) async fn summarise(&self, older: &[Message], window: u32) -> Option<String> {
        match self.summary_of(older, window).await? {
            Ok(text) => Some(text),
            Err(reason) => {
                tracing::warn!(session = %self.session.id, %reason, "could not summarise the older turns; they are dropped");
                Some(
                    "(The earlier part of the conversation was dropped to fit the context window.)"
                        .to_owned(),
                )
            }
        }
    }

    /// The model's summary of `older` messages, or why there is none. `None` if the turn was
    /// cancelled.
    async fn summary_of(&self, older: &[Message], window: u32) -> Option<Result<String, String>> {
        let room = (window as usize).saturating_sub(1024) * 3;
        let transcript = context::head_and_tail(&context::transcript(older), room.max(2000), "");
        let request = ChatRequest {
            messages: vec![
                Message::System {
                    content: "Summarise this conversation between a user and a coding agent for the agent's own later use: \
                              what the user wants, files read or changed, commands run and their outcome, decisions, \
                              and what is still to do. Be concise and factual."
                        .to_owned(),
                },
                Message::User { content: transcript },
            ],
            tools: Vec::new(),
            temperature: Some(0.0),
            max_tokens: Some(512.min(window / 4)),
        };
        let summary = async {
            let mut stream = self.model().stream(request).await?;
            let mut text = String::new();
            while let Some(event) = stream.next().await {
                if let ModelEvent::Text(piece) = event? {
                    text.push_str(&piece);
                }
            }
            Ok::<_, LlmError>(text)
        };
        Some(match unless_cancelled(&self.cancel, summary).await? {
            Ok(text) if !text.trim().is_empty() => Ok(text),
            Ok(_) => Err("its answer was empty".to_owned()),
            Err(error) => Err(error.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(window: u32, fixed: u32, explicit: Option<u32>) -> Budget {
        Budget {
            window,
            fixed,
            counted: true,
            ratio: 1.0,
            last_history_estimate: 0,
            explicit_max_tokens: explicit,
        }
    }

    #[test]
    fn max_tokens_is_what_the_window_leaves_within_bounds() {
        let b = budget(8192, 1000, None);
        assert_eq!(b.max_tokens(2000), Some(MAX_ANSWER_TOKENS));
        assert_eq!(b.max_tokens(6000), Some(2192));
        assert_eq!(b.max_tokens(8000), None, "under MIN_ANSWER_TOKENS");
        let user = budget(8192, 1000, Some(300));
        assert_eq!(user.max_tokens(2000), Some(300), "the user's value wins");
        let big = budget(8192, 1000, Some(1000));
        assert_eq!(
            big.max_tokens(7800),
            Some(392),
            "else what the window leaves"
        );
        assert_eq!(budget(2048, 900, None).reserve(), 512);
        assert_eq!(budget(65536, 900, None).reserve(), 1024);
        assert_eq!(budget(2048, 900, Some(24)).reserve(), MIN_ANSWER_TOKENS);
    }

    #[test]
    fn the_servers_count_calibrates_the_estimate_within_bounds() {
        let mut b = budget(8192, 1000, None);
        b.last_history_estimate = 1000;
        b.observe(Some(Usage {
            prompt_tokens: 1800,
            completion_tokens: 5,
            ..Usage::default()
        }));
        assert!((b.ratio - 0.8).abs() < 1e-9, "{}", b.ratio);
        b.observe(Some(Usage {
            prompt_tokens: 1001,
            completion_tokens: 5,
            ..Usage::default()
        }));
        assert_eq!(b.ratio, RATIO_BOUNDS.0);
        b.observe(None);
        assert_eq!(b.ratio, RATIO_BOUNDS.0);
        assert!(b.target() < b.limit() && b.limit() < b.window);
    }
}
