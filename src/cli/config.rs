//! The config file (`~/.config/punie/config.toml` or the platform equivalent): per-model
//! settings, picked with `--model NAME`.
//!
//! ```toml
//! default_model = "qwen"            # used when --model is not given
//! default_mode = "ask"              # ask, plan, code (the default) or edit; --mode overrides
//!
//! [models.qwen]
//! base_url = "http://localhost:11434/v1"
//! model = "qwen3:8b"                # the server's model id (default: the entry's name)
//! api_key_env = "MY_GATEWAY_KEY"    # read the API key from this variable
//! temperature = 0.2
//! max_tokens = 2048
//! context_size = 8192               # when the server does not report it
//! text_tool_calls = false           # describe tools in the prompt instead of native calls
//! vision = true                     # the model sees images (when its server does not say)
//! server_wait = 300                 # seconds to wait for a server still loading the model
//! ```
//!
//! `model` is sent as written: a llama-server started without `--alias` lists its model by
//! file path (`/models/qwen.gguf`), and that leading slash is kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use punie::llm::ModelSpec;
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The entry used when `--model` is not given.
    pub default_model: Option<String>,
    /// The mode sessions start in when `--mode` is not given: `ask`, `plan`, `code` or `edit`.
    pub default_mode: Option<String>,
    /// Per-model settings, by name.
    #[serde(default)]
    pub models: BTreeMap<String, ModelEntry>,
}

/// The settings of one model.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// The server's base URL, e.g. `http://localhost:8080/v1` (default: LM Studio's).
    pub base_url: Option<String>,
    /// The model id on the server (default: the entry's name).
    pub model: Option<String>,
    /// The environment variable holding the API key.
    pub api_key_env: Option<String>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Most tokens per answer.
    pub max_tokens: Option<u32>,
    /// The context window to assume when the server does not report one.
    pub context_size: Option<u32>,
    /// Describe tools in the prompt and parse calls from the text.
    pub text_tool_calls: Option<bool>,
    /// Whether the model sees images, over what its server says (or does not say).
    pub vision: Option<bool>,
    /// Seconds to wait for a server that is not answering yet (`--server-wait`).
    pub server_wait: Option<u64>,
}

/// Where the config file is by default.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "punie", "punie")
        .map(|d| d.config_dir().join("config.toml"))
}

/// Reads the config file at `path`; a missing file is an empty configuration.
pub fn load(path: &Path) -> anyhow::Result<ConfigFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the config file {}", path.display()));
        }
    };
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

impl ConfigFile {
    /// The entry `--model` names (or the default entry when `--model` is empty), with its
    /// name; `None` when `--model` is a model spec rather than an entry name.
    pub fn entry(&self, model: &str) -> anyhow::Result<Option<(String, ModelEntry)>> {
        let name = if model.is_empty() {
            match &self.default_model {
                Some(name) => name.clone(),
                None => return Ok(None),
            }
        } else {
            model.to_owned()
        };
        match self.models.get(&name) {
            Some(entry) => Ok(Some((name, entry.clone()))),
            None if model.is_empty() => {
                anyhow::bail!(
                    "default_model {name:?} has no [models.{name}] entry in the config file"
                )
            }
            None => Ok(None),
        }
    }
}

impl ModelEntry {
    /// The model spec this entry stands for: its server, and its model named exactly as
    /// written (a path such as `/models/qwen.gguf` keeps its leading slash).
    pub fn spec(&self, name: &str) -> anyhow::Result<ModelSpec> {
        let base = self
            .base_url
            .as_deref()
            .unwrap_or(punie::llm::DEFAULT_BASE_URL);
        let server = ModelSpec::parse(base)
            .with_context(|| format!("invalid base_url of [models.{name}]"))?;
        let model = self.model.as_deref().unwrap_or(name).trim();
        if model.is_empty() {
            anyhow::bail!(
                "[models.{name}] has an empty model: name the server's model id, or leave \
                 `model` out to use {name:?}"
            );
        }
        Ok(server.with_model(model))
    }

    /// The API key from the named environment variable, if both are set.
    pub fn api_key(&self) -> Option<String> {
        self.api_key_env
            .as_ref()
            .and_then(|var| std::env::var(var).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
default_model = "qwen"

[models.qwen]
base_url = "http://localhost:11434/v1/"
model = "qwen3:8b"
temperature = 0.2
context_size = 8192

[models."qwen/qwen3-coder-30b"]
max_tokens = 2048
text_tool_calls = true
vision = true
"#;

    #[test]
    fn entries_are_picked_by_name_or_by_default() {
        let config: ConfigFile = toml::from_str(EXAMPLE).unwrap();
        let (name, entry) = config.entry("").unwrap().unwrap();
        assert_eq!(name, "qwen");
        assert_eq!(
            entry.spec(&name).unwrap().to_string(),
            "http://localhost:11434/v1/qwen3:8b"
        );
        assert_eq!(entry.context_size, Some(8192));
        let (name, entry) = config.entry("qwen/qwen3-coder-30b").unwrap().unwrap();
        assert_eq!(
            entry.spec(&name).unwrap().to_string(),
            "http://localhost:1234/v1/qwen/qwen3-coder-30b"
        );
        assert_eq!(entry.text_tool_calls, Some(true));
        assert_eq!(entry.vision, Some(true));
        assert!(
            config
                .entry("http://localhost:8080/v1/x")
                .unwrap()
                .is_none(),
            "a spec, not an entry"
        );
    }

    #[test]
    fn a_model_named_by_its_path_keeps_its_slash() {
        let config: ConfigFile = toml::from_str(
            "[models.local]\nbase_url = \"http://127.0.0.1:8080/v1\"\nmodel = \"/models/q.gguf\"\nserver_wait = 300\n",
        )
        .unwrap();
        let (name, entry) = config.entry("local").unwrap().unwrap();
        let spec = entry.spec(&name).unwrap();
        assert_eq!(spec.model.as_deref(), Some("/models/q.gguf"));
        assert_eq!(spec.base_url, "http://127.0.0.1:8080/v1");
        assert_eq!(entry.server_wait, Some(300));
    }

    #[test]
    fn mistakes_are_reported() {
        assert!(
            toml::from_str::<ConfigFile>("[models.x]\ntemprature = 1").is_err(),
            "typos are caught"
        );
        let config: ConfigFile = toml::from_str("default_model = \"gone\"").unwrap();
        assert!(config.entry("").is_err());
    }
}
