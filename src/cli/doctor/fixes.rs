//! The flags and settings that fix what the doctor found, in each server's own words.

use super::report::ServerKind;

/// How to start a server when none answers.
pub fn start_a_server(base_url: &str) -> Vec<String> {
    vec![
        format!(
            "nothing answers at {base_url}: start a server there, e.g. \
             `llama-server -m MODEL.gguf --jinja -c 8192 --port 8080` (then --model \
             http://127.0.0.1:8080/v1), `ollama serve` (--model http://localhost:11434), \
             LM Studio's Developer tab → Start server (the default, --model NAME), or \
             `vllm serve MODEL --enable-auto-tool-choice --tool-call-parser hermes`"
        ),
        "or point Punie at the server you run: --model http://HOST:PORT/v1 (or a config \
         entry's name)"
            .to_owned(),
    ]
}

/// The smallest window worth recommending for a fixed prompt of `prompt` tokens: room for
/// the prompt and a few reads and edits, at least 8,192, rounded up to a power of two.
pub fn recommended_window(prompt: u32) -> u32 {
    (prompt.saturating_add(4096)).max(8192).next_power_of_two()
}

/// How to give the model a window of `tokens`. `slots` is llama-server's parallel slots, which
/// share its `-c`.
pub fn window(kind: ServerKind, tokens: u32, slots: Option<u64>) -> String {
    match kind {
        ServerKind::LlamaCpp => match slots.filter(|&slots| slots > 1) {
            Some(slots) => format!(
                "restart llama-server with -c {} -np {slots} (the window is shared by its \
                 {slots} parallel slots: -c {tokens} -np 1 gives one slot {tokens} tokens)",
                u64::from(tokens) * slots
            ),
            None => format!("restart llama-server with -c {tokens}"),
        },
        ServerKind::Ollama => format!(
            "give Ollama a larger window: OLLAMA_CONTEXT_LENGTH={tokens} ollama serve, or \
             PARAMETER num_ctx {tokens} in a Modelfile (ollama create)"
        ),
        ServerKind::Vllm => format!("restart vLLM with --max-model-len {tokens}"),
        ServerKind::LmStudio => format!(
            "in LM Studio, load the model with Context Length {tokens} (the model's load \
             settings, or `lms load MODEL --context-length {tokens}`)"
        ),
        ServerKind::Unknown => format!("give the model a context window of {tokens} tokens"),
    }
}

/// How to make the server parse tool calls itself (`refused`: it refused the `tools`
/// parameter rather than leaving calls in the text).
pub fn native_tool_calls(kind: ServerKind, refused: bool) -> String {
    match kind {
        ServerKind::LlamaCpp if refused => {
            "restart llama-server with --jinja (its chat templates take tools only then)".to_owned()
        }
        ServerKind::LlamaCpp => "llama-server took the tools (so its templates are on) but did \
             not parse this model's calls: use a model whose chat template supports tools (e.g. \
             Qwen2.5-Coder-Instruct 7B+, Qwen3), or give one with --chat-template-file; Punie \
             reads the text calls meanwhile"
            .to_owned(),
        ServerKind::Vllm => {
            "restart vLLM with --enable-auto-tool-choice --tool-call-parser hermes (the parser \
             that matches the model: hermes for Qwen, llama3_json for Llama 3.1)"
                .to_owned()
        }
        ServerKind::Ollama => "use a model whose Ollama template supports tools (`ollama show \
             MODEL --template` mentions .Tools), e.g. qwen2.5-coder or qwen3"
            .to_owned(),
        ServerKind::LmStudio => "use a model LM Studio marks as tool-capable (the hammer icon), \
             e.g. a Qwen2.5-Coder-Instruct or Qwen3 build"
            .to_owned(),
        ServerKind::Unknown => "enable the server's tool-call parsing, or use a model trained for \
             tool calls (e.g. Qwen2.5-Coder-Instruct, Qwen3)"
            .to_owned(),
    }
}

/// How to have thoughts sent apart from the answer.
pub fn reasoning_apart(kind: ServerKind) -> Option<String> {
    match kind {
        ServerKind::LlamaCpp => Some(
            "optional: restart llama-server with --reasoning-format deepseek to receive thoughts \
             as reasoning_content (Punie reads the <think> tags either way)"
                .to_owned(),
        ),
        ServerKind::Vllm => Some(
            "optional: restart vLLM with --reasoning-parser (e.g. qwen3, deepseek_r1) to \
             receive thoughts as reasoning_content"
                .to_owned(),
        ),
        _ => None,
    }
}

/// What shortens a slow first-token wait.
pub fn speed(kind: ServerKind) -> String {
    match kind {
        ServerKind::LlamaCpp => "to shorten the wait: offload layers to a GPU (-ngl 99), use a \
             smaller model or quantisation, or more threads (-t N); later requests reuse the \
             prompt cache"
            .to_owned(),
        _ => "to shorten the wait: run the model on a GPU, or use a smaller model".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(recommended_window(2010), 8192);
        assert_eq!(recommended_window(5000), 16384);
        assert_eq!(
            window(ServerKind::LlamaCpp, 8192, Some(1)),
            "restart llama-server with -c 8192"
        );
        assert!(window(ServerKind::LlamaCpp, 8192, Some(4)).contains("-c 32768 -np 4"));
        assert!(window(ServerKind::Ollama, 8192, None).contains("OLLAMA_CONTEXT_LENGTH=8192"));
        assert!(window(ServerKind::Ollama, 8192, None).contains("num_ctx 8192"));
    }
}
