//! Counting a prompt's tokens the way the server does, where it can tell: llama.cpp renders a
//! chat request through the model's template (`POST /apply-template`, tools included) and
//! counts the text (`POST /tokenize`). Punie's own estimate (bytes / 3) is about 20 % high for
//! llama.cpp's tokenisers, which a 2,048-token window cannot afford; the count lets the turn
//! loop calibrate it.
//!
//! Other servers have no such API (Ollama reports `prompt_eval_count` only after a request,
//! which reaches Punie as the answer's usage): there the answer is `None`.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use tracing::debug;

use super::endpoint::Endpoint;
use super::models::ModelList;

/// How long each of the two requests may take: both are quick on any server that has them.
const COUNT_TIMEOUT: Duration = Duration::from_secs(5);

/// The most prompt text sent to be counted (bytes): the fixed prefix is a few KiB.
const MAX_COUNTED_BYTES: usize = 1024 * 1024;

/// Prompts counted lately, by a hash of the request body, so a fixed prompt (the same system
/// prompt and tools, turn after turn) is counted once per model.
#[derive(Debug, Default)]
pub(crate) struct CountCache(Mutex<VecDeque<(u64, u32)>>);

/// Counts remembered (a few profiles of a few sessions' prompts).
const CACHED_COUNTS: usize = 16;

impl CountCache {
    fn key(body: &Value) -> u64 {
        let mut hasher = DefaultHasher::new();
        body.to_string().hash(&mut hasher);
        hasher.finish()
    }

    /// The count of `body`: remembered, else asked of the server (and remembered when it
    /// answered).
    pub(crate) async fn count(&self, endpoint: &Endpoint, body: &Value) -> Option<u32> {
        let key = Self::key(body);
        let lock = || {
            self.0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        if let Some(&(_, count)) = lock().iter().find(|(k, _)| *k == key) {
            return Some(count);
        }
        let count = count_prompt(endpoint, body).await?;
        let mut counts = lock();
        if counts.len() >= CACHED_COUNTS {
            counts.pop_front();
        }
        counts.push_back((key, count));
        Some(count)
    }
}

/// Whether `list` comes from llama.cpp, whose `/apply-template` and `/tokenize` can count.
pub(crate) fn counts_tokens(list: &ModelList) -> bool {
    list.value
        .get("data")
        .and_then(Value::as_array)
        .is_some_and(|data| {
            data.iter()
                .any(|entry| entry.get("owned_by").and_then(Value::as_str) == Some("llamacpp"))
        })
}

/// The tokens of the prompt `body` (a chat-completion request body) as llama.cpp renders and
/// counts it, or `None` when the server cannot say.
pub(crate) async fn count_prompt(endpoint: &Endpoint, body: &Value) -> Option<u32> {
    let root = endpoint.root();
    let rendered = endpoint
        .post_json(&format!("{root}/apply-template"), body, COUNT_TIMEOUT)
        .await
        .map_err(
            |failure| debug!(error = %failure.error, "the server cannot apply its chat template"),
        )
        .ok()?;
    let prompt = rendered.get("prompt").and_then(Value::as_str)?;
    if prompt.len() > MAX_COUNTED_BYTES {
        return None;
    }
    let tokens = endpoint
        .post_json(
            &format!("{root}/tokenize"),
            &json!({ "content": prompt, "add_special": true }),
            COUNT_TIMEOUT,
        )
        .await
        .map_err(|failure| debug!(error = %failure.error, "the server cannot tokenize"))
        .ok()?;
    let count = tokens.get("tokens").and_then(Value::as_array)?.len();
    u32::try_from(count).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_llama_cpp_counts() {
        let list = |value: Value| ModelList {
            ids: Vec::new(),
            value,
        };
        assert!(counts_tokens(&list(
            json!({"data": [{"id": "m", "owned_by": "llamacpp"}]})
        )));
        assert!(!counts_tokens(&list(
            json!({"data": [{"id": "m", "owned_by": "library"}]})
        )));
        assert!(!counts_tokens(&list(json!({}))));
    }
}
