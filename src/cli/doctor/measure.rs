//! The fixed prompt measured: its tokens as the server counts them, the window compared with
//! it, and the prompt speed and first-token wait.

use std::time::Duration;

use punie::llm::probe::{PromptTiming, ServerProbe};
use punie::llm::{ChatRequest, Message};
use serde_json::Value;

use super::fixes;
use super::prompt::FixedPrompt;
use super::report::{Check, ServerKind, Verdict};

/// The fewest tokens the turn leaves for an answer (the agent refuses a request with less).
const MIN_ANSWER_TOKENS: u32 = 256;
/// Below this much room beside the fixed prompt, a conversation is one question and a read.
const COMFORTABLE_ROOM: u32 = 2048;
/// A cold first-token wait longer than this is worth a warning.
const SLOW_FIRST_TOKEN: Duration = Duration::from_secs(60);

/// The fixed prompt sent for one token: its size as the server counts it, and the wait.
pub struct Measured {
    /// The fixed prompt's tokens, and whether the server counted them (else an estimate).
    pub tokens: u32,
    pub counted: bool,
    /// The timing, when the request was answered.
    pub timing: Option<PromptTiming>,
    /// The server refused the request as too large for its window.
    pub overflow: bool,
    /// Why the request failed otherwise.
    pub error: Option<String>,
}

/// Sends the fixed prompt (made cold with a unique first line, so no earlier cache hides the
/// wait) for one token.
pub async fn measure(
    probe: &ServerProbe,
    model: &str,
    prompt: &FixedPrompt,
    within: Duration,
) -> Measured {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let request = ChatRequest {
        messages: vec![
            Message::System {
                content: format!("[punie doctor {}]\n{}", &nonce[..8], prompt.system),
            },
            Message::User {
                content: "Say OK.".to_owned(),
            },
        ],
        tools: prompt.tools.clone(),
        temperature: Some(0.0),
        max_tokens: Some(1),
    };
    // The same three bytes per token the agent assumes when the server does not count.
    let estimate = u32::try_from(prompt.bytes().div_ceil(3)).unwrap_or(u32::MAX);
    match probe.timed_prompt(model, &request, within).await {
        Ok(timing) => {
            let counted = timing
                .prompt_tokens
                .or_else(|| Some(timing.processed? + timing.cached.unwrap_or(0)))
                .filter(|&tokens| tokens > 0);
            Measured {
                tokens: counted
                    .map_or(estimate, |tokens| u32::try_from(tokens).unwrap_or(u32::MAX)),
                counted: counted.is_some(),
                timing: Some(timing),
                overflow: false,
                error: None,
            }
        }
        Err(error) => {
            let overflow = error.is_context_overflow();
            let told = overflow
                .then(|| tokens_in_overflow(&error.to_string()))
                .flatten();
            Measured {
                tokens: told.unwrap_or(estimate),
                counted: told.is_some(),
                timing: None,
                overflow,
                error: (!overflow).then(|| error.to_string()),
            }
        }
    }
}

/// The prompt's size in a server's overflow message: llama.cpp "request (5030 tokens) exceeds
/// the available context size (4096 tokens)", vLLM "you requested 5000 tokens (4000 in the
/// messages, …)".
fn tokens_in_overflow(message: &str) -> Option<u32> {
    let number_before = |marker: &str| {
        let end = message.find(marker)?;
        let digits: String = message[..end]
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.chars().rev().collect::<String>().parse().ok()
    };
    number_before(" in the messages").or_else(|| {
        let start = message.find("request (")? + "request (".len();
        let rest = &message[start..];
        rest[..rest.find(' ')?].parse().ok()
    })
}

/// The window compared with the fixed prompt.
pub fn window(
    window: Option<u32>,
    measured: &Measured,
    prompt: &FixedPrompt,
    kind: ServerKind,
    slots: Option<u64>,
) -> Check {
    let tokens = measured.tokens;
    let counted = if measured.counted {
        "as the server counts it"
    } else {
        "estimated"
    };
    let needs = format!(
        "Punie's fixed prompt (system prompt and {} tool schemas, {} bytes) is {tokens} tokens {counted}",
        prompt.tools.len(),
        prompt.bytes()
    );
    let recommended = fixes::recommended_window(tokens);
    let fix = fixes::window(kind, recommended, slots);
    match window {
        Some(size) if size < tokens.saturating_add(MIN_ANSWER_TOKENS) || measured.overflow => {
            Check::new(
                "context window",
                Verdict::Fail,
                format!("{size} tokens; {needs}: with {MIN_ANSWER_TOKENS} for an answer it does not fit, so every prompt is refused"),
            )
            .fixed_by([fix])
        }
        Some(size) if size - tokens < COMFORTABLE_ROOM => Check::new(
            "context window",
            Verdict::Warn,
            format!("{size} tokens; {needs}, leaving {} for the conversation: a question and a read, not much more", size - tokens),
        )
        .fixed_by([fix]),
        Some(size) => Check::new(
            "context window",
            Verdict::Ok,
            format!("{size} tokens; {needs}, leaving {} for the conversation", size - tokens),
        ),
        None if measured.overflow => Check::new(
            "context window",
            Verdict::Fail,
            format!("the server refused the fixed prompt as too large for its window; {needs}"),
        )
        .fixed_by([fix]),
        None => Check::new(
            "context window",
            Verdict::Warn,
            format!("the server does not tell its window (Punie then assumes 8192); {needs}"),
        )
        .fixed_by([format!("tell Punie the window: --context-size N (or context_size = N in the config entry); at least {recommended} is best")]),
    }
}

/// The prompt speed, and the first-token wait to expect.
pub fn speed(measured: &Measured, kind: ServerKind, within: Duration) -> Check {
    let Some(timing) = &measured.timing else {
        return match &measured.error {
            Some(error) => Check::new(
                "prompt speed",
                Verdict::Warn,
                format!("not measured: the fixed prompt got no answer ({error})"),
            )
            .fixed_by([
                fixes::speed(kind),
                format!(
                    "or wait longer: punie doctor --wait {}",
                    within.as_secs() * 2
                ),
            ]),
            None => Check::skipped("prompt speed", "the fixed prompt does not fit the window"),
        };
    };
    let seconds = timing.elapsed.as_secs_f64();
    let detail = match (timing.per_second, timing.prompt_ms) {
        (Some(speed), Some(ms)) if speed > 0.0 && ms > 0.0 => format!(
            "{speed:.0} prompt tokens/s (llama.cpp timings: {} tokens in {:.1} s); a session's \
             first request waits about {:.1} s for its first token (the fixed prompt, cold)",
            timing.processed.unwrap_or(u64::from(measured.tokens)),
            ms / 1000.0,
            ms / 1000.0,
        ),
        _ => format!(
            "the fixed prompt, cold, was answered in {seconds:.1} s (about {:.0} prompt \
             tokens/s); a session's first request waits about that long for its first token",
            f64::from(measured.tokens) / seconds.max(0.001)
        ),
    };
    if timing.elapsed > SLOW_FIRST_TOKEN {
        Check::new("prompt speed", Verdict::Warn, detail).fixed_by([fixes::speed(kind)])
    } else {
        Check::new("prompt speed", Verdict::Ok, detail)
    }
}

/// llama-server's parallel slots, which share its `-c`, from `/props`.
pub async fn llama_slots(probe: &ServerProbe) -> Option<u64> {
    probe
        .get("/props")
        .await
        .ok()
        .and_then(|props| props.get("total_slots").and_then(Value::as_u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_messages_tell_the_prompt_size() {
        assert_eq!(
            tokens_in_overflow(
                "request (5030 tokens) exceeds the available context size (4096 tokens), try increasing it"
            ),
            Some(5030)
        );
        assert_eq!(
            tokens_in_overflow(
                "This model's maximum context length is 2048 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion)."
            ),
            Some(4000)
        );
        assert_eq!(tokens_in_overflow("context too long"), None);
    }
}
