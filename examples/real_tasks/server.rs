//! One `llama-server` for one model: started on a free loopback port with the live suite's flags
//! (`--jinja -np 1 -t 2 --seed 1 --temp 0 -c 8192`), waited for until `/health` answers, asked
//! whether it is still generating (`/slots`), read for its own per-request timings (its log),
//! and stopped by its pid when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long loading a model may take on a busy 2-core machine.
const HEALTHY_WITHIN: Duration = Duration::from_secs(300);

/// What llama-server's log says about the requests in one stretch of it.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct ServerTimings {
    /// Requests that finished (one `prompt eval time` line each).
    pub requests: u64,
    /// Prompt tokens the server really evaluated (the rest came from its cache).
    pub prompt_evaluated: u64,
    /// Milliseconds spent evaluating them.
    pub prompt_ms: f64,
    /// Tokens generated.
    pub generated: u64,
    /// Milliseconds spent generating them.
    pub generation_ms: f64,
}

/// A running llama-server.
pub struct LlamaServer {
    child: Child,
    port: u16,
    log: PathBuf,
    http: reqwest::Client,
}

impl LlamaServer {
    /// Starts `binary` on `model` (named `alias`), logging to `log`, and waits until healthy.
    pub async fn start(
        binary: &Path,
        model: &Path,
        alias: &str,
        log: PathBuf,
    ) -> Result<Self, String> {
        let port = free_port()?;
        let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let mut command = Command::new(binary);
        command
            .arg("-m")
            .arg(model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--alias", alias])
            .args(["-np", "1", "-t", "2", "--seed", "1", "--temp", "0"])
            .args(["--jinja", "-c", "8192"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // The server must not outlive the benchmark, even when the benchmark is killed.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))
                .map_err(std::io::Error::from)
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        eprintln!(
            "real_tasks: llama-server pid {} on 127.0.0.1:{port} for {} (log {})",
            child.id(),
            model.display(),
            log.display()
        );
        let mut server = Self {
            child,
            port,
            log,
            http: reqwest::Client::new(),
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    /// The OpenAI-compatible base URL.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    async fn wait_healthy(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let url = format!("http://127.0.0.1:{}/health", self.port);
        while started.elapsed() < HEALTHY_WITHIN {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "llama-server exited with {status} while loading the model:\n{}",
                    self.log_tail(20)
                ));
            }
            if let Ok(response) = self.http.get(&url).send().await
                && response.status().is_success()
            {
                eprintln!(
                    "real_tasks: llama-server healthy after {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(format!(
            "llama-server not healthy within {} s:\n{}",
            HEALTHY_WITHIN.as_secs(),
            self.log_tail(20)
        ))
    }

    /// Whether a slot is processing a request (`/slots`, `is_processing`).
    pub async fn busy(&self) -> Result<bool, String> {
        let url = format!("http://127.0.0.1:{}/slots", self.port);
        let slots: serde_json::Value = self
            .http
            .get(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("GET {url}: not JSON: {e}"))?;
        let slots = slots
            .as_array()
            .ok_or_else(|| format!("GET {url}: not a list: {slots}"))?;
        Ok(slots
            .iter()
            .any(|s| s["is_processing"].as_bool().unwrap_or(false)))
    }

    /// How long the log is now: where the next task's stretch of it starts.
    pub fn log_len(&self) -> usize {
        std::fs::metadata(&self.log).map_or(0, |m| m.len() as usize)
    }

    /// The server's timing lines since `from` (a [`LlamaServer::log_len`]), added up:
    /// `prompt eval time = X ms / N tokens` and `eval time = X ms / N tokens`.
    pub fn timings_since(&self, from: usize) -> ServerTimings {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let text = String::from_utf8_lossy(text.get(from..).unwrap_or_default());
        let mut timings = ServerTimings::default();
        for line in text.lines() {
            let Some((ms, tokens)) = timing(line) else {
                continue;
            };
            if line.contains("prompt eval time") {
                timings.requests += 1;
                timings.prompt_evaluated += tokens;
                timings.prompt_ms += ms;
            } else {
                timings.generated += tokens;
                timings.generation_ms += ms;
            }
        }
        timings
    }

    /// The last `lines` lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// `… eval time =    1234.56 ms /   100 tokens (…)` → (1234.56, 100).
fn timing(line: &str) -> Option<(f64, u64)> {
    let (_, rest) = line.split_once("eval time =")?;
    let (ms, rest) = rest.split_once(" ms /")?;
    let tokens = rest.split_whitespace().next()?;
    if !rest.contains("tokens") {
        return None;
    }
    Some((ms.trim().parse().ok()?, tokens.parse().ok()?))
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        // Its own pid, never a name: other llama-servers on this machine are not ours.
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("real_tasks: stopped llama-server pid {}", self.child.id());
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free loopback port: {e}"))
}
