//! The SQLite store: schema, and one-transaction writes of many outcomes.
//!
//! The schema is documented in the README ("The SQLite schema"); users query it directly,
//! so a change here is a migration, not a refactor.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::dead_letters::{shed_over_quota, Shed, ROW_BYTES};
use crate::ingest::Outcome;
use crate::settings::Problems;

/// The `[store]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// Directory holding `eliot.db` (created if missing).
    pub data_dir: PathBuf,
    /// Most rows one transaction carries; a full batch is committed at once.
    pub batch_max: usize,
    /// Longest a row waits for its batch to fill before the batch is committed anyway.
    #[serde(with = "humantime_serde")]
    pub batch_delay: Duration,
    /// Capacity of the store writer's mailbox, in write requests; senders wait when it is full.
    pub mailbox: usize,
    /// `normal` survives a crash of Eliot (kill -9); `full` also survives power loss, slower.
    pub synchronous: Synchronous,
    /// Most device sessions kept; past it, the least recently seen is dropped. Random
    /// client ids with persistent sessions cannot grow the table for ever.
    pub max_sessions: usize,
    /// Bytes the dead letters may take (payload, topic, client id and reason); past it the
    /// oldest are shed.
    pub dead_letter_quota: u64,
    /// The most the database may grow to, in bytes (0: no limit but the disk's). Reaching it
    /// is treated as a full disk.
    pub max_size: u64,
}

impl StoreSettings {
    /// Settings for unit tests of the store: a database in `dir`, small batches, and no
    /// size limit or quota to get in the way.
    #[cfg(test)]
    pub(crate) fn for_tests(dir: &std::path::Path) -> Self {
        StoreSettings {
            data_dir: dir.to_owned(),
            batch_max: 100,
            batch_delay: Duration::from_millis(1),
            mailbox: 16,
            synchronous: Synchronous::Normal,
            max_sessions: 100,
            dead_letter_quota: 1 << 30,
            max_size: 0,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("eliot.db")
    }

    pub fn validate(&self, problems: &mut Problems) {
        problems.at_least("batch_max", self.batch_max, 1);
        problems.at_least("mailbox", self.mailbox, 1);
        problems.at_least("max_sessions", self.max_sessions, 1);
        problems.at_least("dead_letter_quota", self.dead_letter_quota, 1);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    Normal,
    Full,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}, or make it private (0700): {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("SQLite error on {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// What is written would go to a file nobody will find again.
    #[error("the database file {path} was deleted or replaced while open")]
    Moved { path: PathBuf },
    /// The file no longer starts as a SQLite database does: something overwrote it.
    #[error("the database file {path} is damaged: its header is not SQLite's any more")]
    Damaged { path: PathBuf },
}

/// What one committed transaction wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub readings: usize,
    /// Readings whose natural key was already stored (redeliveries): not written again.
    pub duplicates: usize,
    pub dead_letters: usize,
    /// The oldest dead letters removed to stay within the quota.
    pub shed: Shed,
    /// Positions (in the outcomes written) of DUP re-sends found among the latest dead
    /// letters, and so not written again.
    pub redeliveries: Vec<usize>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS readings (
    device_id   TEXT NOT NULL,
    sensor_type TEXT NOT NULL,
    ts          TEXT NOT NULL,
    data        TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (device_id, sensor_type, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    topic       TEXT NOT NULL,
    payload     BLOB NOT NULL,
    reason      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_received_at ON dead_letters (received_at);
CREATE TABLE IF NOT EXISTS sessions (
    client_id   TEXT PRIMARY KEY,
    expiry_s    INTEGER,
    last_seen_s INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_last_seen ON sessions (last_seen_s);
PRAGMA user_version = 2;
";

const INSERT_READING: &str = "INSERT OR IGNORE INTO readings \
    (device_id, sensor_type, ts, data, received_at) VALUES (?1, ?2, ?3, ?4, ?5)";
/// Whether a DUP re-send is among the latest dead letters (bounded: a flood of DUPs must
/// not make each commit scan the whole table).
const SEEN_DEAD_LETTER: &str = "SELECT 1 FROM dead_letters \
    WHERE id > (SELECT coalesce(max(id), 0) - 1000 FROM dead_letters) \
    AND client_id = ?1 AND topic = ?2 AND payload = ?3";
const INSERT_DEAD_LETTER: &str = "INSERT INTO dead_letters \
    (received_at, client_id, topic, payload, reason) VALUES (?1, ?2, ?3, ?4, ?5)";

/// Readings are nobody else's business, whatever the umask: the data directory is 0700
/// and the database 0600 (SQLite gives its -wal and -shm files the database's mode).
/// The database file is created here, before SQLite opens it, for that reason.
#[cfg(unix)]
fn private_files(dir: &Path, db: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(db)?;
    std::fs::set_permissions(db, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn private_files(_: &Path, _: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Whether the file at `path` starts as every SQLite database does (a file too short to
/// tell, or unreadable, is left to SQLite).
fn has_sqlite_header(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 16];
    match std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut header)) {
        Ok(()) => &header == b"SQLite format 3\0",
        Err(_) => true,
    }
}

/// The device and inode of the file at `path`, if there is one.
#[cfg(unix)]
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &Path) -> Option<(u64, u64)> {
    None
}

/// Turns a SQLite error into one that names the database file.
pub(super) fn naming(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

pub struct Store {
    pub(super) conn: Connection,
    /// Kept for error messages.
    pub(super) path: PathBuf,
    /// The file the connection opened (device and inode), to notice it being deleted or
    /// replaced: SQLite would go on writing to the unlinked file, and lose it all on restart.
    file: Option<(u64, u64)>,
    /// Rows in `sessions`, counted once at open and kept up to date (SQLite would scan).
    pub(super) sessions_kept: usize,
    pub(super) max_sessions: usize,
    /// What the dead letters weigh now (summed once at open), and may weigh.
    pub(super) dead_letter_bytes: u64,
    dead_letter_quota: u64,
}

impl Store {
    /// Opens (creating if needed) the database in WAL mode and applies the schema.
    pub fn open(settings: &StoreSettings) -> Result<Store, StoreError> {
        let data_dir = |source| StoreError::DataDir {
            path: settings.data_dir.clone(),
            source,
        };
        std::fs::create_dir_all(&settings.data_dir).map_err(data_dir)?;
        let path = settings.db_path();
        private_files(&settings.data_dir, &path).map_err(data_dir)?;
        let sqlite = naming(&path);
        let conn = Connection::open(&path).map_err(&sqlite)?;
        let synchronous = match settings.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; PRAGMA busy_timeout = 5000;"
        ))
        .map_err(&sqlite)?;
        conn.execute_batch(SCHEMA).map_err(&sqlite)?;
        if settings.max_size > 0 {
            let page_size: i64 = conn
                .query_row("PRAGMA page_size", [], |row| row.get(0))
                .map_err(&sqlite)?;
            let page_size = u64::try_from(page_size).unwrap_or(4096).max(1);
            let pages = (settings.max_size / page_size).max(1);
            conn.execute_batch(&format!("PRAGMA max_page_count = {pages}"))
                .map_err(&sqlite)?;
        }
        let sessions_kept: i64 = conn
            .query_row("SELECT count(*) FROM sessions", [], |row| row.get(0))
            .map_err(&sqlite)?;
        let dead_letter_bytes: i64 = conn
            .query_row(
                &format!("SELECT coalesce(sum({ROW_BYTES}), 0) FROM dead_letters"),
                [],
                |row| row.get(0),
            )
            .map_err(&sqlite)?;
        drop(sqlite); // it borrows `path`
        let file = file_id(&path);
        Ok(Store {
            conn,
            file,
            path,
            sessions_kept: usize::try_from(sessions_kept).unwrap_or(0),
            max_sessions: settings.max_sessions,
            dead_letter_bytes: u64::try_from(dead_letter_bytes).unwrap_or(0),
            dead_letter_quota: settings.dead_letter_quota,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database file is still the one opened, and still a SQLite database: SQLite
    /// itself would notice neither until it reopens the file, after acking more.
    fn check_file(&self) -> Result<(), StoreError> {
        if self.file.is_some() && file_id(&self.path) != self.file {
            return Err(StoreError::Moved {
                path: self.path.clone(),
            });
        }
        if !has_sqlite_header(&self.path) {
            return Err(StoreError::Damaged {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Writes every outcome in one transaction: all of them are committed, or none.
    pub fn write<'a>(
        &mut self,
        outcomes: impl IntoIterator<Item = &'a Outcome>,
    ) -> Result<WriteStats, StoreError> {
        self.check_file()?;
        let sqlite = naming(&self.path);
        let tx = self.conn.transaction().map_err(&sqlite)?;
        let mut stats = WriteStats::default();
        let mut dead_letter_bytes = self.dead_letter_bytes;
        {
            let mut reading = tx.prepare_cached(INSERT_READING).map_err(&sqlite)?;
            let mut dead = tx.prepare_cached(INSERT_DEAD_LETTER).map_err(&sqlite)?;
            let mut seen = tx.prepare_cached(SEEN_DEAD_LETTER).map_err(&sqlite)?;
            for (position, outcome) in outcomes.into_iter().enumerate() {
                match outcome {
                    Outcome::Accepted(readings) => {
                        for r in readings {
                            let inserted = reading
                                .execute(params![
                                    r.device_id,
                                    r.sensor_type,
                                    r.ts,
                                    r.data,
                                    r.received_at
                                ])
                                .map_err(&sqlite)?;
                            stats.readings += inserted;
                            stats.duplicates += 1 - inserted;
                        }
                    }
                    Outcome::Rejected(d)
                        if d.redelivered
                            && seen
                                .exists(params![d.client_id, d.topic, &d.payload[..]])
                                .map_err(&sqlite)? =>
                    {
                        stats.redeliveries.push(position);
                    }
                    Outcome::Rejected(d) => {
                        dead.execute(params![
                            d.received_at,
                            d.client_id,
                            d.topic,
                            &d.payload[..],
                            d.reason
                        ])
                        .map_err(&sqlite)?;
                        stats.dead_letters += 1;
                        dead_letter_bytes +=
                            (d.payload.len() + d.topic.len() + d.client_id.len() + d.reason.len())
                                as u64;
                    }
                }
            }
        }
        stats.shed = shed_over_quota(&tx, self.dead_letter_quota, &mut dead_letter_bytes)
            .map_err(&sqlite)?;
        tx.commit().map_err(&sqlite)?;
        self.dead_letter_bytes = dead_letter_bytes;
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{DeadLetter, Reading};

    fn settings(dir: &Path) -> StoreSettings {
        StoreSettings::for_tests(dir)
    }

    fn reading(ts: &str) -> Reading {
        Reading {
            device_id: "d1".into(),
            sensor_type: "gps".into(),
            ts: ts.into(),
            data: r#"{"latitude":1}"#.into(),
            received_at: "2025-01-01T00:00:00.000000Z".into(),
        }
    }

    #[test]
    fn a_redelivered_reading_is_ignored_and_counted_as_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&settings(dir.path())).unwrap();
        let first = Outcome::Accepted(vec![reading("t1"), reading("t2")]);
        assert_eq!(store.write([&first]).unwrap().readings, 2);
        let again = Outcome::Accepted(vec![reading("t2"), reading("t3")]);
        let stats = store.write([&again]).unwrap();
        assert_eq!((stats.readings, stats.duplicates), (1, 1));
        let rows: i64 = store
            .conn
            .query_row("SELECT count(*) FROM readings", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3);
    }

    #[cfg(unix)]
    #[test]
    fn the_data_directory_and_the_database_files_are_private_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut store = Store::open(&settings(&dir)).unwrap();
        store
            .write([&Outcome::Accepted(vec![reading("t1")])])
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for file in ["eliot.db", "eliot.db-wal", "eliot.db-shm"] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
        }
    }

    #[test]
    fn a_file_deleted_or_damaged_under_the_store_refuses_the_next_write() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&settings(dir.path())).unwrap();
        store
            .write([&Outcome::Accepted(vec![reading("t1")])])
            .unwrap();
        let db = dir.path().join("eliot.db");
        let mut file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
        file.write_all(b"not a database!!").unwrap();
        let damaged = store.write([&Outcome::Accepted(vec![reading("t2")])]);
        assert!(
            matches!(damaged, Err(StoreError::Damaged { .. })),
            "{damaged:?}"
        );
        std::fs::remove_file(&db).unwrap();
        let gone = store.write([&Outcome::Accepted(vec![reading("t3")])]);
        assert!(matches!(gone, Err(StoreError::Moved { .. })), "{gone:?}");
        assert_eq!(
            gone.unwrap_err().kind(),
            crate::store::failure::FailureKind::Broken
        );
    }

    #[test]
    fn dead_letters_keep_the_payload_bytes_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&settings(dir.path())).unwrap();
        let payload = bytes::Bytes::from_static(b"\xff\x00not json");
        let dl = Outcome::Rejected(DeadLetter {
            topic: "devices/d1/telemetry".into(),
            payload: payload.clone(),
            client_id: "c1".into(),
            reason: "payload is not valid JSON".into(),
            received_at: "2025-01-01T00:00:00.000000Z".into(),
            redelivered: false,
        });
        assert_eq!(store.write([&dl]).unwrap().dead_letters, 1);
        let stored: Vec<u8> = store
            .conn
            .query_row("SELECT payload FROM dead_letters", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, payload.to_vec());
    }
}
