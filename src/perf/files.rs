//! Writing reports to disk: `punie-perf-<UTC timestamp>.html` and `.json` side by side, each
//! written to a temporary file in the target directory and renamed into place, never replacing
//! an existing file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::{PerfRecorder, PerfReport};

/// The UTC calendar date and time of `time`: (year, month, day, hour, minute, second).
fn civil(time: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let rest = rest as u32;
    (year, month, day, rest / 3600, rest / 60 % 60, rest % 60)
}

/// `time` as RFC 3339 in UTC, to the second: `2026-11-21T09:15:00Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(time);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `time` as a file name stamp in UTC: `20261121-091500`.
pub(crate) fn file_stamp(time: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(time);
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

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
    use std::time::Duration;

    #[test]
    fn dates_are_utc_calendar_dates() {
        let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(at(1_795_252_500)), "2026-11-21T09:15:00Z");
        assert_eq!(file_stamp(at(1_795_252_500)), "20261121-091500");
        assert_eq!(rfc3339(at(4_102_444_799)), "2099-12-31T23:59:59Z");
    }

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
