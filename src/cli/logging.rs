//! Logging to a daily-rotated file under the platform's state directory, never to stdout
//! (stdout carries the protocol).

use std::path::{Path, PathBuf};

use anyhow::Context;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Log files kept before the oldest is deleted.
const KEPT_LOG_FILES: usize = 7;

/// The default log directory: the platform's state directory (or local data directory where
/// the platform has none), under `punie/logs`.
pub fn default_log_dir() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("dev", "punie", "punie")?;
    let base = dirs.state_dir().unwrap_or_else(|| dirs.data_local_dir());
    Some(base.join("logs"))
}

/// Checks a `--log-level` / `PUNIE_LOG` value: a level (`off`, `error`, `warn`, `info`, `debug`,
/// `trace`), `TARGET=LEVEL` directives, or a mix separated by commas (tracing's filter syntax).
///
/// tracing reads a bare word as "this target at every level", so a misspelt level (`infp`)
/// would silently log nothing useful; a bare word is therefore accepted only when it is a level
/// or names Punie's own modules (`punie`, `punie::llm`).
pub fn parse_filter(text: &str) -> Result<String, String> {
    const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];
    if text.trim().is_empty() {
        return Err("empty: use a level such as `info` or `debug`".to_owned());
    }
    for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let is_level = LEVELS
            .iter()
            .any(|level| level.eq_ignore_ascii_case(directive));
        let ours = directive == "punie" || directive.starts_with("punie::");
        if !is_level && !ours && !directive.contains(['=', '[']) {
            return Err(format!(
                "{directive:?} is not a level (off, error, warn, info, debug, trace) nor TARGET=LEVEL"
            ));
        }
    }
    EnvFilter::try_new(text).map_err(|e| e.to_string())?;
    Ok(text.to_owned())
}

/// Starts logging to `dir` at `filter`. Keep the returned guard alive until exit: dropping it
/// flushes the log.
pub fn init(dir: Option<&Path>, filter: &str) -> anyhow::Result<(WorkerGuard, PathBuf)> {
    let dir = match dir {
        Some(dir) => dir.to_owned(),
        None => default_log_dir()
            .context("cannot find a home directory for the logs: pass --log-dir")?,
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the log directory {}", dir.display()))?;
    let filter = EnvFilter::try_new(filter)
        .with_context(|| format!("invalid --log-level / PUNIE_LOG {filter:?}"))?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("punie")
        .filename_suffix("log")
        .max_log_files(KEPT_LOG_FILES)
        .build(&dir)
        .with_context(|| format!("cannot open a log file in {}", dir.display()))?;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(appender);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .init();
    Ok((guard, dir))
}

#[cfg(test)]
mod tests {
    use super::parse_filter;

    #[test]
    fn filters_are_checked() {
        for good in [
            "info",
            "DEBUG",
            "punie=trace",
            "info,punie::llm=debug",
            "punie",
            "warn,hyper=off",
        ] {
            assert!(parse_filter(good).is_ok(), "{good}");
        }
        for bad in ["", "notafilter", "infp", "info,debgu", "punie=loud"] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
    }
}
