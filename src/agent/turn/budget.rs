//! Fitting a request into the model's context window: the window's size, compaction, and the
//! summary of older turns.

use futures::StreamExt;

use super::{Turn, unless_cancelled};
use crate::agent::context::{self, DEFAULT_CONTEXT_TOKENS, KEPT_TURNS, MIN_ANSWER_TOKENS};
use crate::agent::error::AgentError;
use crate::agent::events::TurnEvent;
use crate::llm::{ChatRequest, LlmError, Message, ModelEvent};

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

    /// Makes the request fit the window: shortens old tool outputs, then summarises older turns.
    /// Returns the `max_tokens` to ask for, or `None` if the turn was cancelled meanwhile.
    pub(super) async fn fit(
        &self,
        system: &Message,
        tools: u32,
        history: &mut Vec<Message>,
        window: u32,
    ) -> Result<Option<u32>, AgentError> {
        let fits = |history: &[Message]| {
            context::prompt_tokens(system, tools, history) + self.config.max_tokens.min(window / 2)
                <= window
        };
        let before = context::prompt_tokens(system, tools, history);
        let mut done = Vec::new();
        if !fits(history) {
            let keep_from = context::recent_turns_start(history, KEPT_TURNS);
            if context::shorten_old_tool_outputs(history, keep_from) {
                done.push("shortened old tool outputs");
            }
            // An answer over a quarter of the window is most likely a loop; cutting it is
            // cheaper than a summary, and a summary could not remove it from the kept turns.
            if !fits(history)
                && context::shorten_long_answers(history, context::long_answer_limit(window))
            {
                done.push("shortened long answers");
            }
            if !fits(history) && keep_from > 0 {
                let Some(summary) = self.summarise(&history[..keep_from], window).await else {
                    return Ok(None);
                };
                context::replace_with_summary(history, keep_from, &summary);
                done.push("summarised older turns");
            }
            let all = history.len();
            if !fits(history) && context::shorten_old_tool_outputs(history, all) {
                done.push("shortened this turn's tool outputs");
            }
            if context::shorten_answers_until(history, window, fits) {
                done.push("cut long answers further");
            }
        }
        let used = context::prompt_tokens(system, tools, history);
        if !done.is_empty() {
            let description = format!(
                "Punie {} to fit the model's {window}-token context window (about {before} → {used} tokens).",
                done.join(" and ")
            );
            tracing::info!(session = %self.session.id, before, used, window, "history compacted");
            self.emit(TurnEvent::Notice {
                title: "History compacted".to_owned(),
                description,
            });
        }
        self.emit(TurnEvent::Usage {
            used: used.into(),
            size: window.into(),
        });
        let room = window.saturating_sub(used);
        if room < MIN_ANSWER_TOKENS {
            return Err(AgentError::ContextTooSmall {
                needed: used + MIN_ANSWER_TOKENS,
                window,
            });
        }
        Ok(Some(self.config.max_tokens.min(room)))
    }

    /// Asks the model to summarise `older` messages. On failure the older turns are replaced by
    /// a note instead, so the conversation still fits. `None` if the turn was cancelled.
    pub(super) async fn summarise(&self, older: &[Message], window: u32) -> Option<String> {
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
        match unless_cancelled(&self.cancel, summary).await? {
            Ok(text) if !text.trim().is_empty() => Some(text),
            Ok(_) | Err(_) => {
                tracing::warn!(session = %self.session.id, "could not summarise the older turns; they are dropped");
                Some(
                    "(The earlier part of the conversation was dropped to fit the context window.)"
                        .to_owned(),
                )
            }
        }
    }
}
