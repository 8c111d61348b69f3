//! Fuzzes inbound JSON-RPC line handling, in process: arbitrary bytes and a newline, written to
//! `punie::acp::serve_io` (the whole inbound path an editor's stdio reaches), must leave the agent
//! answering a following valid `initialize`, and everything it writes back must be JSON-RPC.
//!
//! Each input also goes through `punie::acp::fuzz_inbound_lines` (the line reader and its
//! pre-check alone, with a small line limit so the too-long path is reached).

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use punie::agent::Agent;
use punie::testing::ScriptedModel;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// The request that must still be answered; its id is one a fuzzed line is unlikely to reuse.
const PROBE: &[u8] =
    br#"{"jsonrpc":"2.0","id":"fuzz-probe","method":"initialize","params":{"protocolVersion":1}}"#;

/// Generous: an answer takes milliseconds, a wedged agent never comes.
const PATIENCE: Duration = Duration::from_secs(10);

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Serves a fresh agent, writes `line` and a newline, then the probe; panics unless the probe
/// is answered within [`PATIENCE`] and every line written back is a JSON-RPC message.
fn agent_still_answers(line: &[u8]) {
    runtime().block_on(async {
        // An empty script: a prompt fails at once, so no tool ever runs.
        let agent = Agent::builder()
            .model(ScriptedModel::new())
            .build()
            .expect("an agent");
        let (client, server) = tokio::io::duplex(64 * 1024);
        let (server_read, server_write) = tokio::io::split(server);
        let serving = tokio::spawn(punie::acp::serve_io(agent, server_read, server_write));
        let (client_read, mut client_write) = tokio::io::split(client);

        let send = async move {
            let mut bytes = line.to_vec();
            bytes.push(b'\n');
            bytes.extend_from_slice(PROBE);
            bytes.push(b'\n');
            // The agent may have closed the connection on this input: the reader reports it.
            let _ = client_write.write_all(&bytes).await;
            client_write
        };
        let answered = async {
            let mut reader = BufReader::new(client_read);
            let mut out = Vec::new();
            loop {
                out.clear();
                let read = reader.read_until(b'\n', &mut out).await.expect("reading");
                if read == 0 {
                    return Err("the agent closed the connection".to_owned());
                }
                let message: Value = match serde_json::from_slice(&out) {
                    Ok(message) => message,
                    Err(err) => {
                        return Err(format!(
                            "the agent wrote a line that is not JSON ({err}): {:?}",
                            String::from_utf8_lossy(&out)
                        ));
                    }
                };
                assert_eq!(message["jsonrpc"], "2.0", "not JSON-RPC: {message}");
                if message["id"] == "fuzz-probe" {
                    return match message.get("result") {
                        Some(_) => Ok(()),
                        None => Err(format!("the probe was refused: {message}")),
                    };
                }
            }
        };
        let (client_write, answered) = tokio::join!(send, async {
            tokio::time::timeout(PATIENCE, answered).await
        });
        let outcome = match answered {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer to the probe within {PATIENCE:?}")),
        };
        drop(client_write);
        serving.abort();
        if let Err(problem) = outcome {
            panic!(
                "after the line {:?}: {problem}",
                String::from_utf8_lossy(line)
            );
        }
    });
}

fuzz_target!(|data: &[u8]| {
    // The line pre-check alone (fast: every split and limit path), then the whole inbound path.
    punie::acp::fuzz_inbound_lines(data);
    agent_still_answers(data);
});
