//! The directory of saved sessions: one journal (`ID.jsonl`) and one summary (`ID.json`) per
//! session, private to the user; creating, opening (locked), listing, deleting and pruning them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::format::{FORMAT_VERSION, Header, JournalError, Summary};
use super::reader::{Loaded, read_header, read_journal};
use super::writer::Journal;

/// Sessions one `session/list` page holds.
pub const LIST_PAGE: usize = 50;

/// The most journals the directory is read for; beyond it the oldest are not listed (and are
/// pruned at start-up if a count limit is set).
const MAX_LISTED: usize = 100_000;

/// The current time, RFC 3339 in UTC.
pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Millisecond)
        .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string())
}

/// How long and how many saved sessions are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// Sessions idle longer than this are deleted at start-up.
    pub max_age: Option<Duration>,
    /// At most this many sessions are kept (the most recently active).
    pub max_count: Option<usize>,
}

/// Where sessions are saved.
#[derive(Clone, Debug)]
pub struct SessionStore {
    dir: PathBuf,
}

/// One page of saved sessions.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionPage {
    /// The sessions, newest activity first.
    pub sessions: Vec<Summary>,
    /// The cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
}

fn io<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> JournalError + 'a {
    move |source| JournalError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Checks that `id` can name a file: letters, digits, `_` and `-`.
pub(crate) fn check_id(id: &str) -> Result<(), JournalError> {
    let ok = !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(JournalError::BadId(id.chars().take(120).collect()))
    }
}

/// Takes the one-writer lock of an open journal; the OS drops it with the process.
fn lock(file: &File, id: &str) -> Result<(), JournalError> {
    match rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(JournalError::Locked(id.to_owned())),
        Err(error) => Err(JournalError::Io {
            action: "lock",
            path: PathBuf::from(id),
            source: error.into(),
        }),
    }
}

/// Writes `summary` to `path` atomically (a temporary file renamed over it), mode 0600.
pub(crate) fn write_summary(path: &Path, summary: &Summary) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new()
        .prefix(".summary")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    serde_json::to_writer(&mut file, summary)?;
    file.write_all(b"\n")?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

impl SessionStore {
    /// Sessions saved in `dir`, created (0700) if missing; an existing directory is made 0700.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, JournalError> {
        let dir = dir.into();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io("create", &dir))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io("set permissions of", &dir))?;
        Ok(Self { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The journal file of session `id`.
    pub fn journal_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.jsonl"))
    }

    fn summary_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Starts the journal of a new session, locked for this process.
    pub fn create(&self, id: &str, cwd: &Path, model: &str) -> Result<Journal, JournalError> {
        check_id(id)?;
        let path = self.journal_path(id);
        let mut file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io("create", &path))?;
        lock(&file, id)?;
        let header = Header {
            format: FORMAT_VERSION,
            punie: env!("CARGO_PKG_VERSION").to_owned(),
            session: id.to_owned(),
            cwd: cwd.to_owned(),
            created_at: now(),
            model: model.to_owned(),
        };
        let mut line = serde_json::to_vec(&header).expect("a header encodes");
        line.push(b'\n');
        file.write_all(&line).map_err(io("write", &path))?;
        let summary = Summary {
            session: id.to_owned(),
            cwd: cwd.to_owned(),
            title: None,
            created_at: header.created_at.clone(),
            updated_at: header.created_at,
        };
        let summary_path = self.summary_path(id);
        write_summary(&summary_path, &summary).map_err(io("write", &summary_path))?;
        Ok(Journal::new(
            id.to_owned(),
            path,
            summary_path,
            file,
            summary,
        ))
    }

    /// Opens a saved session for this process: locks its journal (refused while another
    /// process has it) and reads it back.
    pub fn open_session(&self, id: &str) -> Result<(Journal, Loaded), JournalError> {
        check_id(id)?;
        let path = self.journal_path(id);
        let file = match OpenOptions::new().read(true).append(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(JournalError::NotFound(id.to_owned()));
            }
            Err(e) => return Err(io("open", &path)(e)),
        };
        lock(&file, id)?;
        let loaded = read_journal(&file, &path, id)?;
        let len = file.metadata().map_err(io("read", &path))?.len();
        if loaded.valid_len < len {
            if loaded.skipped > 0 {
                // Kept for the person: the damaged original, before the journal goes on
                // from its last good record.
                let copy = self.dir.join(format!(
                    "{id}.damaged-{}.jsonl",
                    jiff::Timestamp::now().as_second()
                ));
                std::fs::copy(&path, &copy).map_err(io("copy", &path))?;
            }
            file.set_len(loaded.valid_len)
                .map_err(io("truncate", &path))?;
        }
        let summary = Summary {
            session: id.to_owned(),
            cwd: loaded.header.cwd.clone(),
            title: loaded.title.clone(),
            created_at: loaded.header.created_at.clone(),
            updated_at: self.summary(id).map_or_else(now, |s| s.updated_at),
        };
        let journal = Journal::new(id.to_owned(), path, self.summary_path(id), file, summary);
        Ok((journal, loaded))
    }

    /// Reads a saved session without opening it (no lock: `punie sessions show`).
    pub fn read(&self, id: &str) -> Result<Loaded, JournalError> {
        check_id(id)?;
        let path = self.journal_path(id);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(JournalError::NotFound(id.to_owned()));
            }
            Err(e) => return Err(io("open", &path)(e)),
        };
        read_journal(&file, &path, id)
    }

    /// The summary of one saved session: its summary file, else its journal's header.
    fn summary(&self, id: &str) -> Option<Summary> {
        let text = std::fs::read(self.summary_path(id)).ok();
        if let Some(summary) = text.and_then(|t| serde_json::from_slice::<Summary>(&t).ok()) {
            return Some(summary);
        }
        let path = self.journal_path(id);
        // Any header that names the session and its directory: a journal of a newer format
        // is listed too, so loading it says why it cannot be.
        let header = read_header(&path).ok()?;
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
        let updated = jiff::Timestamp::try_from(modified).ok()?.to_string();
        Some(Summary {
            session: header.session,
            cwd: header.cwd,
            title: None,
            created_at: header.created_at,
            updated_at: updated,
        })
    }

    /// Every saved session, newest activity first.
    pub fn all(&self) -> Result<Vec<Summary>, JournalError> {
        let entries = std::fs::read_dir(&self.dir).map_err(io("read", &self.dir))?;
        let mut sessions = Vec::new();
        for entry in entries.flatten().take(MAX_LISTED * 3) {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".jsonl")) else {
                continue;
            };
            if check_id(id).is_err() {
                continue;
            }
            match self.summary(id) {
                Some(summary) if summary.session == id => sessions.push(summary),
                _ => tracing::warn!(
                    session = id,
                    "a saved session without a readable header is not listed"
                ),
            }
        }
        sessions.sort_by(|a, b| {
            b.updated_at
                .cmp(&a.updated_at)
                .then_with(|| a.session.cmp(&b.session))
        });
        sessions.truncate(MAX_LISTED);
        Ok(sessions)
    }

    /// One page of the sessions saved for `cwd` (all when `None`), from `cursor` (as a previous
    /// page returned it) on.
    pub fn list(
        &self,
        cwd: Option<&Path>,
        cursor: Option<&str>,
    ) -> Result<SessionPage, JournalError> {
        let start = match cursor {
            None => 0,
            Some(cursor) => cursor
                .parse::<usize>()
                .map_err(|_| JournalError::BadId(format!("cursor {cursor}")))?,
        };
        let matching: Vec<Summary> = self
            .all()?
            .into_iter()
            .filter(|s| cwd.is_none_or(|cwd| s.cwd == cwd))
            .collect();
        let end = (start + LIST_PAGE).min(matching.len());
        let sessions = matching
            .get(start.min(end)..end)
            .unwrap_or_default()
            .to_vec();
        let next_cursor = (end < matching.len()).then(|| end.to_string());
        Ok(SessionPage {
            sessions,
            next_cursor,
        })
    }

    /// Deletes a saved session (refused while another process has it open).
    pub fn delete(&self, id: &str) -> Result<(), JournalError> {
        check_id(id)?;
        let path = self.journal_path(id);
        let file = match OpenOptions::new().read(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(JournalError::NotFound(id.to_owned()));
            }
            Err(e) => return Err(io("open", &path)(e)),
        };
        lock(&file, id)?;
        std::fs::remove_file(&path).map_err(io("delete", &path))?;
        let summary = self.summary_path(id);
        if let Err(e) = std::fs::remove_file(&summary)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(io("delete", &summary)(e));
        }
        Ok(())
    }

    /// Deletes the sessions `retention` no longer keeps (skipping those open elsewhere);
    /// returns how many were deleted.
    pub fn prune(&self, retention: Retention) -> usize {
        if retention.max_age.is_none() && retention.max_count.is_none() {
            return 0;
        }
        let Ok(all) = self.all() else {
            return 0;
        };
        let oldest = retention.max_age.and_then(|age| {
            let at = SystemTime::now().checked_sub(age)?;
            jiff::Timestamp::try_from(at).ok()
        });
        let mut deleted = 0;
        for (index, summary) in all.iter().enumerate() {
            let too_many = retention.max_count.is_some_and(|max| index >= max);
            let too_old = oldest.is_some_and(|oldest| {
                summary
                    .updated_at
                    .parse::<jiff::Timestamp>()
                    .is_ok_and(|t| t < oldest)
            });
            if !(too_many || too_old) {
                continue;
            }
            match self.delete(&summary.session) {
                Ok(()) => deleted += 1,
                Err(error) => tracing::info!(session = %summary.session, %error, "not pruned"),
            }
        }
        if deleted > 0 {
            tracing::info!(deleted, dir = %self.dir.display(), "old sessions pruned");
        }
        deleted
    }
}
