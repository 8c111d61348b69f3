//! Model specs: the one string (`--model`, `PUNIE_MODEL`) that says which server and which model.
//!
//! | spec | server | model |
//! |---|---|---|
//! | *(empty)* | `http://localhost:1234/v1` (LM Studio) | the server's first |
//! | `qwen3:8b`, `qwen/qwen3-coder-30b` | `http://localhost:1234/v1` | as named |
//! | `http://host:8080/v1` | `http://host:8080/v1` | the server's first |
//! | `http://host:8080/v1/qwen/qwen3-coder` | `http://host:8080/v1` | `qwen/qwen3-coder` |
//! | `http://localhost:11434` | `http://localhost:11434/v1` | the server's first |
//! | `http://host:8080/v1//models/q.gguf` | `http://host:8080/v1` | `/models/q.gguf` (llama-server without `--alias`) |

use std::fmt;
use std::str::FromStr;

use super::LlmError;

/// LM Studio's default address, the server most people already run.
pub const DEFAULT_BASE_URL: &str = "http://localhost:1234/v1";

/// Which OpenAI-compatible server to talk to, and which of its models.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// The server's OpenAI-compatible base URL, ending with its `/v1` path, without a trailing
    /// slash (e.g. `http://localhost:1234/v1`).
    pub base_url: String,
    /// The model name; `None` means the first model the server lists.
    pub model: Option<String>,
}

impl Default for ModelSpec {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            model: None,
        }
    }
}

impl ModelSpec {
    /// Parses a spec (see the module docs for the accepted forms).
    pub fn parse(spec: &str) -> Result<Self, LlmError> {
        let trimmed = spec.trim();
        let bad = |reason: &str| LlmError::BadSpec {
            spec: spec.to_owned(),
            reason: reason.to_owned(),
        };
        if trimmed.is_empty() {
            return Ok(Self::default());
        }
        if trimmed.chars().any(char::is_whitespace) {
            return Err(bad("it contains spaces"));
        }
        let Some((scheme, rest)) = trimmed.split_once("://") else {
            if looks_like_an_address(trimmed) {
                return Err(bad(&format!(
                    "it looks like a server address; write it as a URL: http://{trimmed}"
                )));
            }
            return Ok(Self {
                base_url: DEFAULT_BASE_URL.to_owned(),
                model: Some(trimmed.to_owned()),
            });
        };
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad(&format!(
                "the scheme {scheme}:// is not supported; use http:// or https://"
            )));
        }
        if rest.contains(['?', '#']) {
            return Err(bad("a model URL cannot have a query or a fragment"));
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err(bad("the URL has no host"));
        }
        let raw: Vec<&str> = path.split('/').collect();
        let segments: Vec<&str> = raw
            .iter()
            .copied()
            .filter(|part| !part.is_empty())
            .collect();
        let origin = format!("{scheme}://{authority}");
        Ok(match raw.iter().position(|&part| part == "v1") {
            Some(v1) => {
                // The model is everything after `/v1/`, as written: llama-server lists a model
                // by its file path when started without `--alias`, so `…/v1//models/q.gguf`
                // names `/models/q.gguf`. Only trailing slashes go.
                let model = raw[v1 + 1..].join("/");
                let model = model.trim_end_matches('/');
                let before: Vec<&str> = raw[..=v1]
                    .iter()
                    .copied()
                    .filter(|part| !part.is_empty())
                    .collect();
                Self {
                    base_url: join_path(&origin, &before),
                    model: (!model.is_empty()).then(|| model.to_owned()),
                }
            }
            None => Self {
                base_url: format!("{}/v1", join_path(&origin, &segments)),
                model: None,
            },
        })
    }

    /// The same server with `model` named.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }
}

fn join_path(origin: &str, segments: &[&str]) -> String {
    segments
        .iter()
        .fold(origin.to_owned(), |url, part| format!("{url}/{part}"))
}

/// `localhost:1234`, `127.0.0.1:8080/v1`: an address typed without `http://`. Model names such as
/// `qwen3:8b` have a colon too, but never a bare port after `localhost` or an IPv4 address.
fn looks_like_an_address(spec: &str) -> bool {
    let host_and_port = spec.split('/').next().unwrap_or(spec);
    let (host, port) = host_and_port.split_once(':').unwrap_or((host_and_port, ""));
    let is_port = !port.is_empty() && port.chars().all(|c| c.is_ascii_digit());
    let is_ipv4 = host.split('.').count() == 4
        && host
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()));
    (host.eq_ignore_ascii_case("localhost") || is_ipv4) && (is_port || port.is_empty())
}

impl FromStr for ModelSpec {
    type Err = LlmError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        Self::parse(spec)
    }
}

/// `BASE` or `BASE/MODEL`, which parses back to the same spec.
impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.model {
            Some(model) => write!(f, "{}/{model}", self.base_url),
            None => f.write_str(&self.base_url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(base_url: &str, model: Option<&str>) -> ModelSpec {
        ModelSpec {
            base_url: base_url.into(),
            model: model.map(str::to_owned),
        }
    }

    #[test]
    fn accepted_forms() {
        let cases = [
            ("", spec("http://localhost:1234/v1", None)),
            ("   ", spec("http://localhost:1234/v1", None)),
            (
                "qwen3:8b",
                spec("http://localhost:1234/v1", Some("qwen3:8b")),
            ),
            (
                "qwen/qwen3-coder-30b",
                spec("http://localhost:1234/v1", Some("qwen/qwen3-coder-30b")),
            ),
            (
                "http://localhost:8080/v1",
                spec("http://localhost:8080/v1", None),
            ),
            (
                "http://localhost:8080/v1/",
                spec("http://localhost:8080/v1", None),
            ),
            (
                "http://localhost:1234/v1/qwen/qwen3-coder-30b",
                spec("http://localhost:1234/v1", Some("qwen/qwen3-coder-30b")),
            ),
            (
                "http://localhost:11434/v1/qwen3:8b/",
                spec("http://localhost:11434/v1", Some("qwen3:8b")),
            ),
            (
                "http://localhost:11434",
                spec("http://localhost:11434/v1", None),
            ),
            (
                "http://localhost:11434/",
                spec("http://localhost:11434/v1", None),
            ),
            (
                "https://openrouter.ai/api/v1/qwen/qwen3-coder",
                spec("https://openrouter.ai/api/v1", Some("qwen/qwen3-coder")),
            ),
            ("HTTP://Box:8000/v1", spec("http://Box:8000/v1", None)),
            (
                "http://[::1]:8000/v1/m",
                spec("http://[::1]:8000/v1", Some("m")),
            ),
            (
                "http://gpu-box:8000/v1/org/v1/model",
                spec("http://gpu-box:8000/v1", Some("org/v1/model")),
            ),
            (
                "http://127.0.0.1:8080/v1//models/qwen.gguf",
                spec("http://127.0.0.1:8080/v1", Some("/models/qwen.gguf")),
            ),
            (
                "/models/qwen.gguf",
                spec("http://localhost:1234/v1", Some("/models/qwen.gguf")),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(ModelSpec::parse(input).unwrap(), expected, "{input:?}");
            assert_eq!(input.parse::<ModelSpec>().unwrap(), expected, "{input:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        for input in [
            "",
            "qwen3:8b",
            "qwen/qwen3-coder-30b",
            "http://localhost:8080/v1",
            "http://localhost:1234/v1/qwen/qwen3-coder-30b",
            "http://localhost:11434",
            "https://openrouter.ai/api/v1/qwen/qwen3-coder",
            "http://127.0.0.1:8080/v1//home/me/q.gguf",
        ] {
            let parsed = ModelSpec::parse(input).unwrap();
            assert_eq!(
                ModelSpec::parse(&parsed.to_string()).unwrap(),
                parsed,
                "{input:?}"
            );
        }
        assert_eq!(
            ModelSpec::parse("qwen3:8b").unwrap().to_string(),
            "http://localhost:1234/v1/qwen3:8b"
        );
        assert_eq!(ModelSpec::default().to_string(), "http://localhost:1234/v1");
    }

    #[test]
    fn rejected_forms() {
        for (input, reason) in [
            ("ftp://host/v1", "scheme ftp://"),
            ("ws://localhost:1234/v1", "scheme ws://"),
            ("http:///v1", "no host"),
            ("http://host/v1?key=1", "query"),
            ("qwen 3", "spaces"),
            ("localhost:1234", "http://localhost:1234"),
            ("127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        ] {
            match ModelSpec::parse(input) {
                Err(LlmError::BadSpec { spec, reason: why }) => {
                    assert_eq!(spec, input);
                    assert!(why.contains(reason), "{input:?}: {why}");
                }
                other => panic!("{input:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn with_model() {
        assert_eq!(
            ModelSpec::default().with_model("m"),
            spec("http://localhost:1234/v1", Some("m"))
        );
    }
}
