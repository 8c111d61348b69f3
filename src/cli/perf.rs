//! `--perf`: records where each turn's time goes and writes `punie-perf-<timestamp>.html` and
//! `.json` to the state directory when a session ends and when Punie exits.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use punie::agent::{ModelRequestStats, StopReason, ToolCallStats, TurnObserver};
use punie::perf::PerfRecorder;

/// The recorder, plus where its report files go.
pub struct PerfFiles {
    recorder: PerfRecorder,
    dir: PathBuf,
    /// Write a report for each session as it closes (not for `ask`, which has one session).
    per_session: bool,
}

/// Where perf reports go by default: the platform state directory.
pub fn default_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "punie", "punie").map(|dirs| {
        dirs.state_dir()
            .unwrap_or_else(|| dirs.data_local_dir())
            .to_owned()
    })
}

impl PerfFiles {
    /// A recorder writing its reports to `dir`.
    pub fn new(dir: PathBuf, per_session: bool) -> Arc<Self> {
        Arc::new(Self {
            recorder: PerfRecorder::new(),
            dir,
            per_session,
        })
    }

    /// Writes the report of everything recorded and returns the HTML file's path.
    pub fn write_all(&self) -> Option<PathBuf> {
        match self.recorder.write_reports(&self.dir) {
            Ok((html, json)) => {
                tracing::info!(html = %html.display(), json = %json.display(), "perf report written");
                Some(html)
            }
            Err(error) => {
                tracing::warn!(dir = %self.dir.display(), %error, "could not write the perf report");
                None
            }
        }
    }
}

impl TurnObserver for PerfFiles {
    fn turn_started(&self, session: &str) {
        self.recorder.turn_started(session);
    }

    fn turn_finished(&self, session: &str, stop: Option<StopReason>, elapsed: Duration) {
        self.recorder.turn_finished(session, stop, elapsed);
    }

    fn model_request(&self, session: &str, stats: &ModelRequestStats) {
        self.recorder.model_request(session, stats);
    }

    fn tool_call(&self, session: &str, stats: &ToolCallStats) {
        self.recorder.tool_call(session, stats);
    }

    fn permission_wait(&self, session: &str, tool: &str, waited: Duration) {
        self.recorder.permission_wait(session, tool, waited);
    }

    fn editor_request(&self, session: &str, method: &str, elapsed: Duration, ok: bool) {
        self.recorder.editor_request(session, method, elapsed, ok);
    }

    fn session_closed(&self, session: &str) {
        if !self.per_session {
            return self.recorder.session_closed(session);
        }
        match self.recorder.write_session_reports(&self.dir, session) {
            Ok(Some((html, _))) => {
                tracing::info!(session, html = %html.display(), "session perf report written")
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(session, dir = %self.dir.display(), %error, "could not write the session perf report")
            }
        }
        self.recorder.session_closed(session);
    }

    fn report_json(&self) -> Option<serde_json::Value> {
        self.recorder.report_json()
    }

    fn report_html(&self) -> Option<String> {
        self.recorder.report_html()
    }
}
