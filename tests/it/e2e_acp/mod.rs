//! End-to-end: the real `punie` binary, driven by the official ACP client, against a fake
//! OpenAI-compatible model server.

mod cancel;
mod failures;
mod permissions;
mod turns;

use serde_json::Value;

use crate::support::fake_model::FakeModelServer;

/// Every line Punie wrote to stdout is one JSON-RPC 2.0 message.
fn assert_stdout_is_json_rpc(lines: &[String]) {
    assert!(!lines.is_empty(), "no stdout at all");
    for line in lines {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        assert_eq!(value["jsonrpc"], "2.0", "not JSON-RPC 2.0: {line}");
        assert!(
            value.get("method").is_some()
                || value.get("result").is_some()
                || value.get("error").is_some(),
            "{line}"
        );
    }
}

/// The messages of the `n`th request the model server received.
fn messages(server: &FakeModelServer, n: usize) -> Vec<Value> {
    server.requests()[n]["messages"].as_array().unwrap().clone()
}
