//! One `llama-server` process for the live suite: started on a free loopback port, waited for
//! until `/health` answers, asked about its slots, stopped and started again on the same port
//! (a server restarting mid-session), and stopped by its pid when dropped (at the end, and
//! while unwinding from a panic).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The name llama-server gives the model (`--alias`), so Punie's config can name it.
pub const MODEL_ALIAS: &str = "qwen2.5-coder-0.5b-instruct";

/// How long loading a 0.5B model may take on a busy 2-core machine (seconds, in practice).
const HEALTHY_WITHIN: Duration = Duration::from_secs(180);

/// A running llama-server.
pub struct LlamaServer {
    /// The running process; `None` while stopped.
    child: Option<Child>,
    /// The binary, model and extra flags it was started with, to start it again.
    binary: PathBuf,
    model: PathBuf,
    extra: Vec<String>,
    port: u16,
    log: PathBuf,
    what: String,
    http: reqwest::Client,
    /// How much of the log [`LlamaServer::print_new_timings`] has already shown.
    log_shown: std::cell::Cell<usize>,
}

impl LlamaServer {
    /// Starts `binary` on `model` with the suite's fixed flags plus `extra` (e.g. `--no-jinja`,
    /// `-c 1024`), logging to a file in `dir`, and waits until it is healthy.
    pub async fn start(
        binary: &Path,
        model: &Path,
        what: &str,
        extra: &[&str],
        dir: &Path,
    ) -> Result<Self, String> {
        let port = free_port()?;
        let log = dir.join(format!("llama-server-{}.log", what.replace(' ', "-")));
        std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut server = Self {
            child: None,
            binary: binary.to_owned(),
            model: model.to_owned(),
            extra: extra.iter().map(|e| (*e).to_owned()).collect(),
            port,
            log,
            what: what.to_owned(),
            http: reqwest::Client::new(),
            log_shown: std::cell::Cell::new(0),
        };
        server.spawn()?;
        server.wait_healthy().await?;
        Ok(server)
    }

    /// Starts the process (again) on the server's port, its output appended to its log.
    fn spawn(&mut self) -> Result<(), String> {
        let log = &self.log;
        let log_file = std::fs::File::options()
            .append(true)
            .open(log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let log_err = log_file
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let mut command = Command::new(&self.binary);
        command
            .arg("-m")
            .arg(&self.model)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--alias", MODEL_ALIAS])
            // One slot: every request reuses the same KV cache, so the fixed prefix (system
            // prompt and tool schemas) is read once per server, not once per request.
            .args(["-np", "1", "-t", "2", "--seed", "1", "--temp", "0"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        // A server must not outlive the suite, even when the suite is killed outright.
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
            .map_err(|e| format!("cannot start {}: {e}", self.binary.display()))?;
        eprintln!(
            "live: started llama-server ({}) pid {} on 127.0.0.1:{} {}",
            self.what,
            child.id(),
            self.port,
            self.extra.join(" ")
        );
        self.child = Some(child);
        Ok(())
    }

    /// Stops the process by its pid (the port is then refused) and waits for it to exit.
    pub fn stop(&mut self) {
        self.print_new_timings();
        if let Some(mut child) = self.child.take() {
            // Its own pid, never a name: other llama-servers on this machine are not ours.
            let _ = child.kill();
            let _ = child.wait();
            eprintln!(
                "live: stopped llama-server ({}) pid {}",
                self.what,
                child.id()
            );
        }
    }

    /// Starts the stopped server again on the same port, without waiting for it: while it
    /// loads the model it refuses connections, then answers 503 "Loading model".
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.spawn()
    }

    /// The OpenAI-compatible base URL.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    async fn wait_healthy(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let url = format!("http://127.0.0.1:{}/health", self.port);
        while started.elapsed() < HEALTHY_WITHIN {
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait(),
                None => return Err(format!("llama-server ({}) is stopped", self.what)),
            };
            if let Ok(Some(status)) = exited {
                return Err(format!(
                    "llama-server ({}) exited with {status} while starting:\n{}",
                    self.what,
                    self.log_tail(20)
                ));
            }
            if let Ok(response) = self.http.get(&url).send().await
                && response.status().is_success()
            {
                eprintln!(
                    "live: llama-server ({}) healthy after {:.1} s",
                    self.what,
                    started.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(format!(
            "llama-server ({}) not healthy within {} s:\n{}",
            self.what,
            HEALTHY_WITHIN.as_secs(),
            self.log_tail(20)
        ))
    }

    /// `GET path` as JSON.
    pub async fn get_json(&self, path: &str) -> Result<Value, String> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let response = self
            .http
            .get(&url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        response
            .json()
            .await
            .map_err(|e| format!("GET {url}: not JSON: {e}"))
    }

    /// Whether any slot is generating, from `/slots` (`is_processing`).
    pub async fn busy(&self) -> Result<bool, String> {
        let slots = self.get_json("/slots").await?;
        let slots = slots
            .as_array()
            .ok_or_else(|| format!("/slots is not a list: {slots}"))?;
        Ok(slots
            .iter()
            .any(|slot| slot["is_processing"].as_bool().unwrap_or(false)))
    }

    /// Whether a slot is generating: processing, with at least one token decoded for its
    /// task (`/slots`: `next_token[0].n_decoded`), so past the prompt's prefill.
    pub async fn generating(&self) -> Result<bool, String> {
        let slots = self.get_json("/slots").await?;
        let slots = slots
            .as_array()
            .ok_or_else(|| format!("/slots is not a list: {slots}"))?;
        Ok(slots.iter().any(|slot| {
            let decoded = slot["next_token"][0]["n_decoded"]
                .as_u64()
                .or_else(|| slot["next_token"]["n_decoded"].as_u64())
                .unwrap_or(0);
            slot["is_processing"].as_bool().unwrap_or(false) && decoded > 0
        }))
    }

    /// Prints the server's own account of the requests since the last call (prompt tokens
    /// read and generated, and how fast): what the suite's wall time is made of.
    pub fn print_new_timings(&self) {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let new = text.get(self.log_shown.get()..).unwrap_or_default();
        for line in new.lines() {
            if line.contains("eval time =") || line.contains("prompt processing done") {
                let detail = line.split_once("| task").map_or(line, |(_, rest)| rest);
                eprintln!("live:   llama-server ({}): task{detail}", self.what);
            }
        }
        self.log_shown.set(text.len());
    }

    /// The last `lines` lines of the server's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nobody listens on right now (the server binds it a moment later).
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot find a free loopback port: {e}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| format!("cannot find a free loopback port: {e}"))
}
