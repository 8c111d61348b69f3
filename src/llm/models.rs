//! What a server tells about its models: the list (`GET /v1/models`), whether a model name is
//! one of them, and the context window, asked the way each server answers it:
//!
//! | server | where |
//! |---|---|
//! | llama.cpp | `GET /props` → `default_generation_settings.n_ctx`; `/v1/models` → `data[].meta.n_ctx` |
//! | vLLM | `/v1/models` → `data[].max_model_len` |
//! | LM Studio | `GET /api/v0/models/{id}` → `loaded_context_length`, else `max_context_length` |
//! | Ollama | `POST /api/show` → `num_ctx` in `parameters`, else Ollama's default (4096) |
//!
//! Ollama runs a model with `num_ctx` tokens whatever the model could take, and silently drops
//! the start of longer prompts; the size reported is therefore `num_ctx`, not the model's.

use std::time::Duration;

use serde_json::{Value, json};
use tracing::{debug, warn};

use super::endpoint::Endpoint;
use super::retry::RetryPolicy;
use super::{LlmError, ServerWaitSink, wire};

/// How long a model list is reused.
pub(crate) const LIST_TTL: Duration = Duration::from_secs(10);

/// How long each question about the context window may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The context Ollama gives a model whose `num_ctx` is not set.
pub(crate) const OLLAMA_DEFAULT_CONTEXT: u32 = 4096;

/// A server's answer to `GET /v1/models`.
#[derive(Clone, Debug)]
pub(crate) struct ModelList {
    /// The model ids, in the server's order.
    pub ids: Vec<String>,
    /// The whole answer, for what some servers add to each model.
    pub value: Value,
}

impl ModelList {
    /// Asks `endpoint` for its models, retrying passing failures as `policy` says (the server
    /// may still be starting), and telling `waits` while it waits for the server.
    pub(crate) async fn fetch(
        endpoint: &Endpoint,
        policy: &RetryPolicy,
        waits: Option<&ServerWaitSink>,
    ) -> Result<Self, LlmError> {
        let url = format!("{}/models", endpoint.url());
        let value = policy
            .run(endpoint.url(), waits, || {
                endpoint.get_json(&url, endpoint.timeouts.first_byte)
            })
            .await?;
        let ids = wire::model_ids(&value).ok_or_else(|| LlmError::Malformed {
            url: endpoint.url().to_owned(),
            detail: format!("a model list without `data`: {}", excerpt_of(&value)),
        })?;
        Ok(Self { ids, value })
    }

    /// The listed id that `wanted` names: the same, the same but for case, or the same but for
    /// Ollama's implicit `:latest` tag; for llama-server, also one of an entry's `aliases`, or
    /// the file name of a model it lists by path (`qwen.gguf` or `qwen` for
    /// `/models/qwen.gguf`, what it lists when started without `--alias`).
    pub(crate) fn find(&self, wanted: &str) -> Option<&str> {
        let bare = |name: &str| name.strip_suffix(":latest").unwrap_or(name).to_lowercase();
        let file_name = |name: &str| {
            let name = name.rsplit('/').next().unwrap_or(name).to_lowercase();
            name.strip_suffix(".gguf")
                .map(str::to_owned)
                .unwrap_or(name)
        };
        let wanted_lower = wanted.to_lowercase();
        self.ids
            .iter()
            .find(|id| *id == wanted)
            .or_else(|| self.ids.iter().find(|id| bare(id) == bare(wanted)))
            .map(String::as_str)
            .or_else(|| {
                self.entries().into_iter().find_map(|entry| {
                    let id = entry.get("id").and_then(Value::as_str)?;
                    let aliases = entry.get("aliases").and_then(Value::as_array);
                    let alias = aliases.is_some_and(|aliases| {
                        aliases.iter().filter_map(Value::as_str).any(|alias| {
                            alias.to_lowercase() == wanted_lower
                                || (alias.ends_with(".gguf")
                                    && file_name(alias) == file_name(wanted))
                        })
                    });
                    let by_file = id.ends_with(".gguf") && file_name(id) == file_name(wanted);
                    (alias || by_file).then_some(id)
                })
            })
    }

    /// Whether the server fetches any model it is named (mlx_lm.server loads Hugging Face
    /// repositories on demand), so that a name it does not list is no error.
    ///
    /// llama-server answers with its one model whatever name it is sent, but a name it does
    /// not list is still refused: it is a mistake (a model that is not the one loaded), and
    /// the error shows the name to use.
    pub(crate) fn takes_any_name(&self, wanted: &str) -> bool {
        let entries = self.entries();
        !entries.is_empty()
            && entries.iter().all(|entry| entry.get("owned_by").is_none())
            && wanted.contains('/')
    }

    fn entries(&self) -> Vec<&Value> {
        self.value
            .get("data")
            .and_then(Value::as_array)
            .map(|data| data.iter().collect())
            .unwrap_or_default()
    }

    /// The entry of `model` (or the only entry).
    fn entry(&self, model: &str) -> Option<&Value> {
        let entries = self.entries();
        let id = self.find(model);
        entries
            .iter()
            .find(|entry| id.is_some() && entry.get("id").and_then(Value::as_str) == id)
            .or_else(|| (entries.len() == 1).then(|| &entries[0]))
            .copied()
    }

    fn owner(&self, model: &str) -> String {
        self.entry(model)
            .and_then(|entry| entry.get("owned_by"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase()
    }
}

fn excerpt_of(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// A positive context size from a JSON number.
fn context_value(value: Option<&Value>) -> Option<u32> {
    value
        .and_then(Value::as_u64)
        .filter(|&size| size > 0)
        .map(|size| u32::try_from(size).unwrap_or(u32::MAX))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    LlamaCppProps,
    LmStudio,
    Ollama,
}

/// The context window of `model`, asked of the server. `Err` when the server could not be
/// reached at all (then it is worth asking again later); `Ok(None)` when it answered but does
/// not tell.
pub(crate) async fn context_size(
    endpoint: &Endpoint,
    list: Option<&ModelList>,
    model: &str,
) -> Result<Option<u32>, ()> {
    let entry = list.and_then(|list| list.entry(model));
    let owner = list.map(|list| list.owner(model)).unwrap_or_default();
    let mut reached = list.is_some();
    let llama_cpp = owner == "llamacpp" || entry.is_some_and(|entry| entry.get("meta").is_some());
    let mut probes = vec![Probe::LlamaCppProps, Probe::LmStudio, Probe::Ollama];
    if llama_cpp {
        // `/props` knows the slot's context, which `meta.n_ctx` does not when slots share it.
        probes = vec![Probe::LlamaCppProps];
    } else if let Some(entry) = entry {
        // vLLM, and any server that says it in the list.
        for key in [
            "max_model_len",
            "loaded_context_length",
            "context_length",
            "max_context_length",
        ] {
            if let Some(size) = context_value(entry.get(key)) {
                debug!(model, size, key, "context size from the model list");
                return Ok(Some(size));
            }
        }
        if owner == "organization_owner" {
            probes = vec![Probe::LmStudio];
        } else if owner == "library" || owner == "ollama" {
            probes = vec![Probe::Ollama];
        } else if owner == "vllm" {
            probes = Vec::new();
        }
    }
    for probe in probes {
        match ask(endpoint, probe, model).await {
            Answer::Size(size) => {
                debug!(model, size, ?probe, "context size from the server");
                return Ok(Some(size));
            }
            Answer::Nothing => reached = true,
            Answer::Unreached => {}
        }
    }
    if let Some(size) = entry.and_then(|entry| context_value(entry.pointer("/meta/n_ctx"))) {
        debug!(model, size, "context size from the model list (meta.n_ctx)");
        return Ok(Some(size));
    }
    if reached { Ok(None) } else { Err(()) }
}

enum Answer {
    Size(u32),
    /// The server answered, without a size.
    Nothing,
    /// No answer at all.
    Unreached,
}

async fn ask(endpoint: &Endpoint, probe: Probe, model: &str) -> Answer {
    let value = match fetch(endpoint, probe, model).await {
        Some(Ok(value)) => value,
        None => return Answer::Unreached,
        Some(Err(())) => return Answer::Nothing,
    };
    let size = match probe {
        Probe::LlamaCppProps => context_value(value.pointer("/default_generation_settings/n_ctx"))
            .or_else(|| context_value(value.get("n_ctx"))),
        Probe::LmStudio => context_value(value.get("loaded_context_length"))
            .or_else(|| context_value(value.get("max_context_length"))),
        Probe::Ollama => ollama_context(&value, model),
    };
    size.map_or(Answer::Nothing, Answer::Size)
}

/// Whether `model` can see images, asked of the server the way each tells it: llama.cpp's
/// `/props` (`modalities.vision`, true when it runs with a multimodal projector), LM Studio's
/// `/api/v0/models/{id}` (`type: "vlm"`), Ollama's `/api/show` (`capabilities` holding
/// `"vision"`). `Err` when the server could not be reached at all (worth asking again later);
/// `Ok(None)` when it answered but does not tell (vLLM, most remote services).
pub(crate) async fn vision(
    endpoint: &Endpoint,
    list: Option<&ModelList>,
    model: &str,
) -> Result<Option<bool>, ()> {
    let entry = list.and_then(|list| list.entry(model));
    let owner = list.map(|list| list.owner(model)).unwrap_or_default();
    let llama_cpp = owner == "llamacpp" || entry.is_some_and(|entry| entry.get("meta").is_some());
    let probes = if llama_cpp {
        vec![Probe::LlamaCppProps]
    } else if owner == "organization_owner" {
        vec![Probe::LmStudio]
    } else if owner == "library" || owner == "ollama" {
        vec![Probe::Ollama]
    } else if owner == "vllm" {
        Vec::new()
    } else {
        vec![Probe::LlamaCppProps, Probe::LmStudio, Probe::Ollama]
    };
    let mut reached = list.is_some();
    for probe in probes {
        let Some(value) = fetch(endpoint, probe, model).await else {
            continue;
        };
        reached = true;
        let Ok(value) = value else { continue };
        let sees = match probe {
            Probe::LlamaCppProps => value.pointer("/modalities/vision").and_then(Value::as_bool),
            Probe::LmStudio => value
                .get("type")
                .and_then(Value::as_str)
                .map(|kind| kind == "vlm"),
            Probe::Ollama => value
                .get("capabilities")
                .and_then(Value::as_array)
                .map(|caps| caps.iter().any(|cap| cap.as_str() == Some("vision"))),
        };
        if let Some(sees) = sees {
            debug!(model, sees, ?probe, "vision from the server");
            return Ok(Some(sees));
        }
    }
    if reached { Ok(None) } else { Err(()) }
}

/// One probe's answer: `None` when the server was not reached, `Some(Err)` when it answered
/// without JSON for this question.
async fn fetch(endpoint: &Endpoint, probe: Probe, model: &str) -> Option<Result<Value, ()>> {
    let root = endpoint.root();
    let result = match probe {
        Probe::LlamaCppProps => {
            endpoint
                .get_json(&format!("{root}/props"), PROBE_TIMEOUT)
                .await
        }
        Probe::LmStudio => {
            endpoint
                .get_json(&format!("{root}/api/v0/models/{model}"), PROBE_TIMEOUT)
                .await
        }
        Probe::Ollama => {
            endpoint
                .post_json(
                    &format!("{root}/api/show"),
                    &json!({ "model": model }),
                    PROBE_TIMEOUT,
                )
                .await
        }
    };
    match result.map_err(|failure| failure.error) {
        Ok(value) => Some(Ok(value)),
        Err(LlmError::Unreachable { .. } | LlmError::Timeout { .. }) => None,
        Err(_) => Some(Err(())),
    }
}

/// The context Ollama runs `model` with, from its `/api/show` answer.
fn ollama_context(show: &Value, model: &str) -> Option<u32> {
    let trained = show.get("model_info").and_then(|info| {
        let architecture = info.get("general.architecture")?.as_str()?;
        context_value(info.get(format!("{architecture}.context_length")))
    });
    if show.get("model_info").is_none() && show.get("parameters").is_none() {
        return None;
    }
    let num_ctx = show
        .get("parameters")
        .and_then(Value::as_str)
        .and_then(|parameters| {
            parameters.lines().find_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some("num_ctx"))
                    .then(|| words.next()?.parse::<u32>().ok())
                    .flatten()
            })
        });
    match num_ctx {
        Some(size) => Some(trained.map_or(size, |trained| size.min(trained))),
        None => {
            warn!(
                model,
                trained = trained.unwrap_or_default(),
                "Ollama runs this model with its default context of {OLLAMA_DEFAULT_CONTEXT} \
                 tokens and silently drops the start of longer prompts; set a larger num_ctx \
                 (OLLAMA_CONTEXT_LENGTH=32768 ollama serve, or PARAMETER num_ctx in a Modelfile)"
            );
            Some(trained.map_or(OLLAMA_DEFAULT_CONTEXT, |trained| {
                trained.min(OLLAMA_DEFAULT_CONTEXT)
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(value: Value) -> ModelList {
        ModelList {
            ids: wire::model_ids(&value).unwrap(),
            value,
        }
    }

    #[test]
    fn names_match_leniently() {
        let models = list(json!({"data": [{"id": "qwen3:latest"}, {"id": "Qwen/Qwen3-8B"}]}));
        assert_eq!(models.find("qwen3"), Some("qwen3:latest"));
        assert_eq!(models.find("qwen3:latest"), Some("qwen3:latest"));
        assert_eq!(models.find("qwen/qwen3-8b"), Some("Qwen/Qwen3-8B"));
        assert_eq!(models.find("qwen3:8b"), None);
    }

    #[test]
    fn servers_that_take_any_name() {
        let llama: Value = serde_json::from_str(
            include_str!("../../tests/fixtures/llama.cpp/01_models.http")
                .split_once("\r\n\r\n")
                .unwrap()
                .1,
        )
        .unwrap();
        let llama = list(llama);
        assert!(
            !llama.takes_any_name("anything"),
            "a name it does not list is refused"
        );
        assert_eq!(llama.find("models/tiny.gguf"), Some("models/tiny.gguf"));
        assert_eq!(llama.find("tiny.gguf"), Some("models/tiny.gguf"));
        assert_eq!(llama.find("TINY"), Some("models/tiny.gguf"));
        assert_eq!(llama.find("small"), None);
        let by_path = list(
            json!({"data": [{"id": "/home/me/models/Qwen2.5-0.5B-Q4_K_M.gguf",
            "owned_by": "llamacpp"}]}),
        );
        assert_eq!(
            by_path.find("/home/me/models/Qwen2.5-0.5B-Q4_K_M.gguf"),
            Some("/home/me/models/Qwen2.5-0.5B-Q4_K_M.gguf")
        );
        assert_eq!(
            by_path.find("qwen2.5-0.5b-q4_k_m"),
            Some("/home/me/models/Qwen2.5-0.5B-Q4_K_M.gguf")
        );
        assert_eq!(by_path.find("qwen3-coder"), None);
        let aliased = list(
            json!({"data": [{"id": "coder", "aliases": ["coder", "qwen-coder"],
            "owned_by": "llamacpp"}]}),
        );
        assert_eq!(aliased.find("qwen-coder"), Some("coder"));
        let mlx = list(
            json!({"object": "list", "data": [{"id": "mlx-community/a", "object": "model", "created": 1}]}),
        );
        assert!(mlx.takes_any_name("mlx-community/b"));
        assert!(!mlx.takes_any_name("b"));
        let ollama = list(json!({"data": [{"id": "qwen3:8b", "owned_by": "library"}]}));
        assert!(!ollama.takes_any_name("llama3"));
    }

    #[test]
    fn ollama_contexts() {
        let show = json!({
            "parameters": "stop \"<|im_end|>\"\nnum_ctx                        16384\ntemperature 0.6",
            "model_info": {"general.architecture": "qwen3", "qwen3.context_length": 40960},
        });
        assert_eq!(ollama_context(&show, "qwen3"), Some(16384));
        let show = json!({
            "parameters": "stop \"<|im_end|>\"",
            "model_info": {"general.architecture": "qwen3", "qwen3.context_length": 40960},
        });
        assert_eq!(ollama_context(&show, "qwen3"), Some(OLLAMA_DEFAULT_CONTEXT));
        let show =
            json!({"model_info": {"general.architecture": "tiny", "tiny.context_length": 2048}});
        assert_eq!(ollama_context(&show, "tiny"), Some(2048));
        assert_eq!(ollama_context(&json!({"license": "x"}), "x"), None);
    }
}
