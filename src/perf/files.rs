//! Writing reports to disk: `punie-perf-<UTC timestamp>.html` and `.json` side by side, each
//! written to a temporary file in the target directory and renamed into place, never replacing
//! an existing file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::calendar::file_stamp;
use super::{PerfRecorder, PerfReport};

/// Writes `content` to `path` atomically; fails with `AlreadyExists` rather than replace a file.
fn write_new(dir: &Path, path: &Path, content: &str) -> io::Result<()> {
    let mut file = tempfile::Builder::new()
        .prefix(".punie-perf-")
        .tempfile_in(dir)?;
    file.write_all(content.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist_noclobber(path).map_err(|e| e.error)?;
    Ok(())
}

impl PerfReport {
    /// Writes the report as `punie-perf-<timestamp>.html` and `.json` in `dir` (created if
    /// missing), the timestamp in UTC like `20261121-091500`, with `-2`, `-3`… added when a
    /// report of that name exists. Returns the paths of the HTML and JSON files.
    pub fn write_to(&self, dir: impl AsRef<Path>) -> io::Result<(PathBuf, PathBuf)> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)?;
        let stamp = file_stamp(SystemTime::now());
        let (html, json) = (self.to_html(), self.to_json());
        for attempt in 1..10_000u32 {
            let stem = if attempt == 1 {
                format!("punie-perf-{stamp}")
            } else {
                format!("punie-perf-{stamp}-{attempt}")
            };
            let html_path = dir.join(format!("{stem}.html"));
            let json_path = dir.join(format!("{stem}.json"));
            if json_path.exists() {
                continue;
            }
            match write_new(dir, &html_path, &html) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                other => other?,
            }
            match write_new(dir, &json_path, &json) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // Someone took the JSON name in between: give the pair another name.
                    std::fs::remove_file(&html_path)?;
                    continue;
                }
                other => other?,
            }
            return Ok((html_path, json_path));
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "too many perf reports named punie-perf-{stamp}* in {}",
                dir.display()
            ),
        ))
    }
}

impl PerfRecorder {
    /// Writes a report of everything recorded so far to `dir` (see [`PerfReport::write_to`]):
    /// returns the paths of the HTML and the JSON file.
    pub fn write_reports(&self, dir: impl AsRef<Path>) -> io::Result<(PathBuf, PathBuf)> {
        self.snapshot().write_to(dir)
    }

    /// Writes a report of one session to `dir`; `Ok(None)` when the recorder does not hold that
    /// session (never seen, or retired).
    pub fn write_session_reports(
        &self,
        dir: impl AsRef<Path>,
        session: &str,
    ) -> io::Result<Option<(PathBuf, PathBuf)>> {
        self.snapshot_session(session)
            .map(|report| report.write_to(dir))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_never_replace_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = PerfRecorder::new();
        let mut names = std::collections::HashSet::new();
        for _ in 0..3 {
            let (html, json) = recorder.write_reports(dir.path().join("new")).unwrap();
            assert_eq!(html.with_extension("json"), json);
            let stem = html.file_stem().unwrap().to_string_lossy().into_owned();
            assert!(stem.starts_with("punie-perf-"), "{stem}");
            assert!(names.insert(stem));
            assert!(
                std::fs::read_to_string(&html)
                    .unwrap()
                    .starts_with("<!DOCTYPE html>")
            );
            PerfReport::from_json(&std::fs::read_to_string(&json).unwrap()).unwrap();
        }
        let left: Vec<_> = std::fs::read_dir(dir.path().join("new"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }
}
