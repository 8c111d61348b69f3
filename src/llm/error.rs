//! What can go wrong talking to a model: [`LlmError`], and the readings of server messages and
//! transport errors that decide how an error is reported, retried or recovered from.
//!
//! At the bottom of the module: it uses nothing else of `llm`, so every other file may use it.

/// What can go wrong talking to a model server. Every message names the server and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The server could not be reached at all.
    #[error(
        "cannot reach the model server at {url}{}: {reason} — {}",
        tries(*.attempts),
        unreachable_advice(url)
    )]
    Unreachable {
        /// The base URL tried.
        url: String,
        /// Why (connection refused, DNS, TLS…).
        reason: String,
        /// How many times the request was tried.
        attempts: u32,
    },
    /// The server refused connections or answered 503 (starting, loading a model) for the whole
    /// of [`RetryPolicy::server_wait`](super::RetryPolicy::server_wait).
    #[error(
        "the model server at {url} did not answer within {waited} s ({attempts} attempts; last: {reason}) — start it (LM Studio, llama-server, ollama serve, vllm serve, mlx_lm.server) or check --model; if it needs longer to load the model, wait longer with --server-wait SECONDS (PUNIE_SERVER_WAIT)"
    )]
    NotReady {
        /// The base URL.
        url: String,
        /// The last failure: "Connection refused (os error 111)", "HTTP 503: Loading model".
        reason: String,
        /// How long Punie waited, in seconds.
        waited: u64,
        /// How many times the request was tried.
        attempts: u32,
    },
    /// The server answered with an HTTP error status.
    #[error(
        "the model server at {url} answered HTTP {status}{}: {message}{hint}",
        tries(*.attempts)
    )]
    Status {
        /// The base URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The server's error message, from whichever error body shape it uses.
        message: String,
        /// What to do about it (may be empty), starting with " — ".
        hint: String,
        /// How many times the request was tried.
        attempts: u32,
    },
    /// The server reported an error inside a successful stream.
    #[error("the model server at {url} reported an error while answering: {message}")]
    InStream {
        /// The base URL.
        url: String,
        /// The server's error message.
        message: String,
    },
    /// The server sent something that is not an OpenAI-compatible answer.
    #[error(
        "the model server at {url} sent a response Punie cannot understand ({detail}) — is {url} an OpenAI-compatible /v1 endpoint?"
    )]
    Malformed {
        /// The base URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// The stream stopped before the answer was complete.
    #[error(
        "the model server at {url} closed the stream before the answer was complete{} — check the server's log",
        tries(*.attempts)
    )]
    StreamCut {
        /// The base URL.
        url: String,
        /// How many times the request was tried.
        attempts: u32,
    },
    /// The server did not answer in time.
    #[error("the model server at {url} did not answer within {seconds} s ({phase}){advice}")]
    Timeout {
        /// The base URL.
        url: String,
        /// How long Punie waited.
        seconds: u64,
        /// Which wait ran out (connect, first byte, between chunks).
        phase: String,
        /// Which limit that was and how to change it, or what to check, starting with " — ".
        advice: String,
    },
    /// The server sent more than Punie accepts in one event or one answer: a server (or a
    /// proxy) that misbehaves, which must not exhaust Punie's memory.
    #[error(
        "the model server at {url} sent {what} over Punie's limit of {} ({excerpt}) — the server or a proxy in between is misbehaving; check the server's log",
        human_bytes(*.limit)
    )]
    TooLarge {
        /// The base URL.
        url: String,
        /// What was too large ("a server-sent event", "an answer", "a response body").
        what: String,
        /// The limit, in bytes.
        limit: usize,
        /// How the oversized part began, quoted.
        excerpt: String,
    },
    /// The server redirected the request to another origin, where Punie does not send the
    /// conversation.
    #[error(
        "the model server at {url} redirected the request to {location}; Punie does not follow redirects to another host, port or scheme (that would send the conversation there) — point --model at the final URL"
    )]
    CrossOriginRedirect {
        /// The base URL.
        url: String,
        /// Where the server redirected to.
        location: String,
    },
    /// No model was named and the server lists none.
    #[error(
        "the model server at {url} has no model loaded — load one (e.g. in LM Studio) or pass --model NAME"
    )]
    NoModel {
        /// The base URL.
        url: String,
    },
    /// The model named in the spec is not one the server has.
    #[error(
        "the model server at {url} has no model {model:?}; it lists: {} — pass one of them with --model",
        available.join(", ")
    )]
    UnknownModel {
        /// The base URL.
        url: String,
        /// The model asked for.
        model: String,
        /// The models the server lists.
        available: Vec<String>,
    },
    /// A model back end that is not an HTTP server (a scripted model, an embedder's own) failed.
    #[error("the model failed: {message}")]
    Backend {
        /// What went wrong.
        message: String,
    },
    /// The model spec given on the command line or in `PUNIE_MODEL` is not valid.
    #[error("invalid model spec {spec:?}: {reason}")]
    BadSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A size as people read it: "1 MiB", "512 KiB", "100 bytes".
pub(crate) fn human_bytes(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// " (after N attempts)" when a request was tried more than once.
/// LM Studio's address, what an empty `--model` means (`spec::DEFAULT_BASE_URL`; this file uses
/// nothing else of `llm`, a test checks they agree).
const LM_STUDIO_URL: &str = "http://localhost:1234/v1";

/// What to do about a server that cannot be reached at `url`: start it, and only when `url` is
/// the default (no server was named) name the option that picks another one.
fn unreachable_advice(url: &str) -> &'static str {
    if url == LM_STUDIO_URL {
        "this is LM Studio's address, used when no --model is given: start LM Studio's server \
         (Developer tab → Start Server), or pass --model URL for another server (llama-server, \
         ollama serve, vllm serve, mlx_lm.server)"
    } else {
        "start the server at that address (LM Studio, llama-server, ollama serve, vllm serve, \
         mlx_lm.server), or correct the URL in --model / PUNIE_MODEL / the config entry"
    }
}

fn tries(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

impl LlmError {
    /// Whether the server refused or failed the request because the conversation does not fit
    /// the model's context window (so compacting the history and retrying may help).
    ///
    /// Recognises llama.cpp (`exceed_context_size_error`: "exceeds the available context
    /// size"), vLLM ("maximum context length is … tokens", "longer than the maximum model
    /// length"), LM Studio ("context length of only … tokens"), Ollama, mlx_lm.server and
    /// OpenAI (`context_length_exceeded`).
    pub fn is_context_overflow(&self) -> bool {
        match self {
            LlmError::Status { message, .. } | LlmError::InStream { message, .. } => {
                is_context_overflow_message(message)
            }
            _ => false,
        }
    }

    /// Whether the server or model refused the request because it does not take tools at all
    /// (Ollama models without a tool template, llama-server without `--jinja`, vLLM without
    /// `--enable-auto-tool-choice`). [`OpenAiModel`](super::OpenAiModel) handles these itself by describing the tools
    /// in the prompt from then on; another back end's caller may do the same.
    pub fn is_tools_unsupported(&self) -> bool {
        match self {
            LlmError::Status { message, .. } | LlmError::InStream { message, .. } => {
                is_tools_unsupported_message(message)
            }
            _ => false,
        }
    }

    /// The same error, saying it came after `made` tries.
    pub(crate) fn with_attempts(mut self, made: u32) -> Self {
        match &mut self {
            LlmError::Unreachable { attempts, .. }
            | LlmError::NotReady { attempts, .. }
            | LlmError::Status { attempts, .. }
            | LlmError::StreamCut { attempts, .. } => *attempts = made,
            _ => {}
        }
        self
    }
}

/// Whether a server's error message says the prompt does not fit the context window
/// (llama.cpp, vLLM, LM Studio, Ollama, mlx and OpenAI each word it differently).
pub(crate) fn is_context_overflow_message(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "context size",
        "context length",
        "context window",
        "context_length",
        "exceed_context",
        "n_ctx",
        "maximum context",
        "maximum model length",
        "is too long and exceeds",
        "prompt is too long",
        "prompt too long",
    ]
    .iter()
    .any(|words| message.contains(words))
}

/// Whether a server's error message says the server or model does not take tools at all
/// (Ollama: "… does not support tools"; llama-server without `--jinja`; vLLM without
/// `--enable-auto-tool-choice`; OpenRouter).
pub(crate) fn is_tools_unsupported_message(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "does not support tools",
        "--enable-auto-tool-choice",
        "support tool use",
        "tools param requires --jinja",
        "cannot use tools with stream",
    ]
    .iter()
    .any(|words| message.contains(words))
}

/// The innermost cause of an error: "Connection refused (os error 111)" rather than
/// "error sending request for url (…)".
pub(crate) fn deepest_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = error;
    while let Some(source) = deepest.source() {
        deepest = source;
    }
    deepest.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_default_address_is_told_to_pass_a_model_url() {
        assert_eq!(LM_STUDIO_URL, crate::llm::DEFAULT_BASE_URL);
        let unreachable = |url: &str| {
            LlmError::Unreachable {
                url: url.to_owned(),
                reason: "Connection refused (os error 111)".to_owned(),
                attempts: 1,
            }
            .to_string()
        };
        let named = unreachable("http://127.0.0.1:8080/v1");
        assert!(
            named.contains("at http://127.0.0.1:8080/v1: Connection refused"),
            "{named}"
        );
        assert!(!named.contains("pass --model"), "{named}");
        assert!(named.contains("correct the URL"), "{named}");
        let default = unreachable(LM_STUDIO_URL);
        assert!(default.contains("no --model is given"), "{default}");
        assert!(default.contains("pass --model URL"), "{default}");
    }

    #[test]
    fn context_overflow_wordings() {
        for message in [
            "request (5030 tokens) exceeds the available context size (4096 tokens), try increasing it",
            "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens",
            "Trying to keep the first 5000 tokens when context the overflows. However, the model is loaded with context length of only 4096 tokens",
            "The decoder prompt (length 5000) is longer than the maximum model length of 4096. Make sure that `max_model_len` is no smaller than the number of text tokens.",
            "'max_tokens' or 'max_completion_tokens' is too large: 512. This model's maximum context length is 4096 tokens and your request has 3700 input tokens (512 > 4096 - 3700).",
            "Input prompt (5000 tokens) is too long and exceeds limit of 4096",
            "the input length exceeds the context length",
            "prompt too long; exceeded max context length by 904 tokens",
            "too long (context_length_exceeded)",
        ] {
            assert!(is_context_overflow_message(message), "{message}");
        }
        assert!(!is_context_overflow_message("'messages' is required"));
    }

    #[test]
    fn tools_unsupported_wordings() {
        for message in [
            "registry.ollama.ai/library/gemma3:270m does not support tools",
            "tools param requires --jinja flag",
            "No endpoints found that support tool use",
            "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set",
        ] {
            assert!(is_tools_unsupported_message(message), "{message}");
        }
        assert!(!is_tools_unsupported_message("Connection refused"));
    }
}
