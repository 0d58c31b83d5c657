//! The `Store`: opened over the writer's connection (`connection.rs`), with what it must
//! know of the database counted once; one-transaction writes of many outcomes; the upkeep
//! between them (merging, retention); and what it holds, for health.
//!
//! The schema (`schema.rs`) is documented in docs/schema.md; users query
//! it directly, so a change there is a migration, not a refactor.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

use super::super::alerts::{api_alert_rules, expire_silences, silences, AlertWrites, SilenceRow};
use super::super::anomalies::expire_anomalies;
use super::super::dead_letters::{
    forget_replayed, replayed_weight, shed_over_quota, Shed, ROW_BYTES,
};
use super::super::device_state::FleetWrites;
use super::super::readings::{Accepted, MergePace, SharedMemtable, Staged, Tiers, Upkeep};
use super::super::settings::{micros, StoreSettings};
use super::checkpointer::WAL_MAX_BYTES;
use super::checkpointer::{wal_path, Checkpointer};
use super::connection::open_migrated;
use super::db_file;
use super::error::{naming, StoreError};
use super::schema::Migrated;
use crate::message::{format_micros, DeadLetter, Outcome};
pub use crate::supervision::StoreShape;

/// What one committed transaction wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStats {
    pub readings: usize,
    /// Readings whose natural key was already stored (redeliveries): not written again.
    pub duplicates: usize,
    pub dead_letters: usize,
    /// The oldest dead letters removed to stay within the quota.
    pub shed: Shed,
    /// Replayed dead letters whose readings were stored: deleted from `dead_letters`.
    pub replayed: usize,
    /// Messages whose fate the store decided otherwise than validation, by position in
    /// the outcomes written.
    pub amended: Vec<(usize, Amendment)>,
}

/// What became of an accepted message, or a dead letter, when the store saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Amendment {
    /// A DUP re-send of a message among the latest dead letters: not kept twice.
    Redelivered,
    /// One of its readings has the key of a stored one with other data, or would start a
    /// series past its device's limit: the message is kept as a dead letter instead.
    DeadLettered,
    /// Stored, but this many of its readings were already (a redelivery): for the fleet's
    /// per-device duplicate count. The message is acked as stored.
    Duplicated(u32),
    /// A replay the store refused (a conflict, a series too many), for this reason: its
    /// dead letter stays, and no other is kept.
    StillRefused(String),
    /// A replay whose dead letter was no longer there (replayed meanwhile, or shed):
    /// nothing of it was written.
    Gone,
}

/// Whether a DUP re-send is among the latest dead letters (bounded: a flood of DUPs must
/// not make each commit scan the whole table).
const SEEN_DEAD_LETTER: &str = "SELECT 1 FROM dead_letters \
    WHERE id > (SELECT coalesce(max(id), 0) - 1000 FROM dead_letters) \
    AND client_id = ?1 AND topic = ?2 AND payload = ?3";
const INSERT_DEAD_LETTER: &str = "INSERT INTO dead_letters \
    (received_at, client_id, topic, payload, reason, device_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

pub struct Store {
    pub(in crate::store) conn: Connection,
    /// Kept for error messages.
    pub(in crate::store) path: PathBuf,
    /// Rows in `sessions`, counted once at open and kept up to date (SQLite would scan).
    pub(in crate::store) sessions_kept: usize,
    pub(in crate::store) max_sessions: usize,
    /// What the dead letters weigh now (summed once at open), and may weigh.
    pub(in crate::store) dead_letter_bytes: u64,
    dead_letter_quota: u64,
    /// The memtable, the chunks and what is merged where.
    pub(in crate::store) tiers: Tiers,
    pub(in crate::store) pace: MergePace,
    /// Microseconds; `None`: readings are kept for ever.
    retention: Option<i64>,
    /// When chunks were last checked against the retention.
    retention_checked: Option<Instant>,
    /// What opening found: a fresh database, a current one, or one migrated.
    migrated: Migrated,
    /// Checkpoints the WAL on its own thread while the store is open.
    _checkpointer: Checkpointer,
}

/// Now, in microseconds since the Unix epoch.
pub(super) fn now_micros() -> i64 {
    micros(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// How often chunks are checked against the retention.
const RETENTION_CHECK: Duration = Duration::from_secs(60);

impl Store {
    /// Opens (creating if needed) the database in WAL mode, migrated to the current schema,
    /// with a memtable of its own.
    pub fn open(settings: &StoreSettings) -> Result<Store, StoreError> {
        Store::open_sharing(settings, SharedMemtable::default())
    }

    /// A plain connection to the database, for the administration commands (`eliot device
    /// ...`), which may run beside a running Eliot. Created (and migrated) if need be only
    /// when `create`: a command that only reads or changes devices on a mistyped data
    /// directory must say so, not leave an empty database there.
    pub fn admin(settings: &StoreSettings, create: bool) -> Result<Connection, StoreError> {
        open_migrated(settings, !create).map(|(conn, _)| conn)
    }

    /// Opens the database and rebuilds `memtable` (which readers may hold) from its log.
    pub fn open_sharing(
        settings: &StoreSettings,
        memtable: SharedMemtable,
    ) -> Result<Store, StoreError> {
        let path = settings.db_path();
        let sqlite = naming(&path);
        let (conn, migrated) = open_migrated(settings, false)?;
        // SQLite opens a file it cannot write read-only, without an error: the first
        // commit would fail, and nothing would fail again until another one came.
        if conn.is_readonly(rusqlite::MAIN_DB).map_err(&sqlite)? {
            return Err(StoreError::ReadOnly { path: path.clone() });
        }
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
        let tiers =
            Tiers::load(&conn, memtable, settings.max_series_per_device).map_err(&sqlite)?;
        let checkpointer = Checkpointer::start(&path, WAL_MAX_BYTES).map_err(&sqlite)?;
        drop(sqlite); // it borrows `path`
        Ok(Store {
            conn,
            path,
            sessions_kept: usize::try_from(sessions_kept).unwrap_or(0),
            max_sessions: settings.max_sessions,
            dead_letter_bytes: u64::try_from(dead_letter_bytes).unwrap_or(0),
            dead_letter_quota: settings.dead_letter_quota,
            tiers,
            pace: settings.pace(),
            retention: settings.retention.map(micros),
            retention_checked: None,
            migrated,
            _checkpointer: checkpointer,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The alert silences in force at `now` (the ended ones are deleted), for the shards
    /// at start.
    pub fn silences_in_force(&self, now: i64) -> Result<Vec<SilenceRow>, StoreError> {
        let sqlite = naming(&self.path);
        expire_silences(&self.conn, now).map_err(&sqlite)?;
        silences(&self.conn, now).map_err(&sqlite)
    }

    /// The alert rules made through the API, as their JSON text.
    pub fn api_alert_rules(&self) -> Result<Vec<String>, StoreError> {
        api_alert_rules(&self.conn).map_err(naming(&self.path))
    }

    /// The memtable this store keeps up to date, for readers.
    pub fn memtable(&self) -> SharedMemtable {
        self.tiers.memtable.clone()
    }

    /// The database file is still the one opened, and still a SQLite database: SQLite
    /// itself would notice neither until it reopens the file, after acking more.
    pub(in crate::store) fn check_file(&self) -> Result<(), StoreError> {
        let path = || self.path.clone();
        if db_file::has_moved(&self.conn).map_err(naming(&self.path))? {
            return Err(StoreError::Moved { path: path() });
        }
        if !db_file::starts_as_sqlite(&self.conn).map_err(naming(&self.path))? {
            return Err(StoreError::Damaged { path: path() });
        }
        Ok(())
    }

    /// Writes every outcome in one transaction: all of them are committed, or none.
    /// Readings go to the log; the memtable learns them once the commit succeeded.
    ///
    /// A replay (`replay_of`) whose readings are stored deletes its dead letter in the
    /// same transaction; refused again, it is not kept a second time (its dead letter
    /// stays as it was); its dead letter gone meanwhile (replayed, shed), nothing of it
    /// is written.
    pub fn write<'a>(
        &mut self,
        outcomes: impl IntoIterator<Item = &'a Outcome>,
    ) -> Result<WriteStats, StoreError> {
        self.write_with(outcomes, &FleetWrites::default(), &[])
    }

    /// `write`, with the fleet's device rows and events in the same transaction, and the
    /// alert changes `tied` to a message (by its position among `outcomes`): each written
    /// unless the store amended its message (a duplicate, a conflict, a redelivery: then
    /// the reading that changed the alert was not stored as the shard saw it, and the
    /// pipeline tells the shard to undo the change).
    pub fn write_with<'a>(
        &mut self,
        outcomes: impl IntoIterator<Item = &'a Outcome>,
        fleet: &FleetWrites,
        tied: &[(usize, &AlertWrites)],
    ) -> Result<WriteStats, StoreError> {
        self.check_file()?;
        let sqlite = naming(&self.path);
        let tx = self.conn.transaction().map_err(&sqlite)?;
        let mut stats = WriteStats::default();
        let mut staged = Staged::default();
        let mut dead_letter_bytes = self.dead_letter_bytes;
        {
            let mut dead = tx.prepare_cached(INSERT_DEAD_LETTER).map_err(&sqlite)?;
            let mut seen = tx.prepare_cached(SEEN_DEAD_LETTER).map_err(&sqlite)?;
            let mut keep_dead_letter = |d: &DeadLetter, stats: &mut WriteStats| {
                dead.execute(params![
                    d.received_at,
                    d.client_id,
                    d.topic,
                    &d.payload[..],
                    d.reason,
                    d.device_id
                ])?;
                stats.dead_letters += 1;
                Ok::<_, rusqlite::Error>(
                    (d.payload.len() + d.topic.len() + d.client_id.len() + d.reason.len()) as u64,
                )
            };
            for (position, outcome) in outcomes.into_iter().enumerate() {
                let replayed = match outcome {
                    Outcome::Accepted { origin, .. } => origin.replay_of,
                    Outcome::Rejected(d) => d.replay_of,
                };
                let replayed = match replayed {
                    None => None,
                    Some(id) => match replayed_weight(&tx, id).map_err(&sqlite)? {
                        Some(bytes) => Some((id, bytes)),
                        None => {
                            stats.amended.push((position, Amendment::Gone));
                            continue;
                        }
                    },
                };
                match outcome {
                    Outcome::Accepted { readings, origin } => {
                        match self
                            .tiers
                            .accept(&tx, &mut staged, readings, origin)
                            .map_err(&sqlite)?
                        {
                            Accepted::Stored { fresh, duplicates } => {
                                stats.readings += fresh;
                                stats.duplicates += duplicates;
                                if duplicates > 0 {
                                    let n = u32::try_from(duplicates).unwrap_or(u32::MAX);
                                    stats.amended.push((position, Amendment::Duplicated(n)));
                                }
                                if let Some((id, bytes)) = replayed {
                                    forget_replayed(&tx, id).map_err(&sqlite)?;
                                    dead_letter_bytes = dead_letter_bytes.saturating_sub(bytes);
                                    stats.replayed += 1;
                                }
                            }
                            Accepted::Refused(reason) if replayed.is_some() => {
                                stats
                                    .amended
                                    .push((position, Amendment::StillRefused(reason)));
                            }
                            Accepted::Refused(reason) => {
                                dead_letter_bytes +=
                                    keep_dead_letter(&origin.dead_letter(reason), &mut stats)
                                        .map_err(&sqlite)?;
                                stats.amended.push((position, Amendment::DeadLettered));
                            }
                        }
                    }
                    // Refused again by validation: its dead letter stays, the one reason kept.
                    Outcome::Rejected(_) if replayed.is_some() => {}
                    Outcome::Rejected(d)
                        if d.redelivered
                            && seen
                                .exists(params![d.client_id, d.topic, &d.payload[..]])
                                .map_err(&sqlite)? =>
                    {
                        stats.amended.push((position, Amendment::Redelivered));
                    }
                    Outcome::Rejected(d) => {
                        dead_letter_bytes += keep_dead_letter(d, &mut stats).map_err(&sqlite)?
                    }
                }
            }
        }
        if stats.replayed > 0 {
            // Tests: a failure between a replay's delete and its readings' insert.
            fail::fail_point!("store::replay");
        }
        self.tiers.write_log(&tx, &staged).map_err(&sqlite)?;
        for (position, alerts) in tied {
            if stats
                .amended
                .binary_search_by_key(position, |(p, _)| *p)
                .is_err()
            {
                alerts.write(&tx).map_err(&sqlite)?;
            }
        }
        fleet.write(&tx).map_err(&sqlite)?;
        stats.shed = shed_over_quota(&tx, self.dead_letter_quota, &mut dead_letter_bytes)
            .map_err(&sqlite)?;
        tx.commit().map_err(&sqlite)?;
        self.tiers.committed(staged);
        self.dead_letter_bytes = dead_letter_bytes;
        Ok(stats)
    }

    /// The schema version the database was migrated from when opened (0: created), if it
    /// was.
    pub fn migrated_from(&self) -> Option<i64> {
        match self.migrated {
            Migrated::Current => None,
            Migrated::Created => Some(0),
            Migrated::From(version) => Some(version),
        }
    }

    /// The active generation is full while the sealed one is still being merged: merging
    /// must finish before anything more is written.
    pub fn must_finish_generation(&self) -> bool {
        let memtable = self
            .tiers
            .memtable
            .read()
            .unwrap_or_else(|e| e.into_inner());
        (memtable.sealed.is_some() || self.tiers.deleting_through.is_some())
            && self.pace.is_full(&memtable.active)
    }

    /// Whether `upkeep` has work to do now.
    pub fn wants_upkeep(&self) -> bool {
        self.tiers.wants_merge(&self.pace)
            || (self.retention.is_some()
                && self
                    .retention_checked
                    .is_none_or(|at| at.elapsed() >= RETENTION_CHECK))
    }

    /// One step of the store's own work, between writes: a slice of merging (at most
    /// `rows`, and at most `store.merge_slice`), and now and then the retention's check.
    pub fn upkeep(&mut self, rows: usize) -> Result<Upkeep, StoreError> {
        self.check_file()?;
        let sqlite = naming(&self.path);
        let now = now_micros();
        let mut upkeep = if self.tiers.wants_merge(&self.pace) {
            self.tiers
                .merge_step(&mut self.conn, &self.pace, rows, now)
                .map_err(&sqlite)?
        } else {
            Upkeep::default()
        };
        if let Some(retention) = self.retention {
            if self
                .retention_checked
                .is_none_or(|at| at.elapsed() >= RETENTION_CHECK)
            {
                self.retention_checked = Some(Instant::now());
                let horizon = now.saturating_sub(retention);
                upkeep.expired = self
                    .tiers
                    .expire(&mut self.conn, horizon)
                    .map_err(&sqlite)?;
                expire_anomalies(&self.conn, horizon).map_err(&sqlite)?;
            }
        }
        Ok(upkeep)
    }

    /// What the store holds, for health: readings not yet merged, and the chunks.
    pub fn shape(&self) -> StoreShape {
        let (unmerged, unmerged_bytes) = {
            let memtable = self
                .tiers
                .memtable
                .read()
                .unwrap_or_else(|e| e.into_inner());
            (memtable.rows(), memtable.bytes())
        };
        let chunks = &self.tiers.chunks.list;
        StoreShape {
            unmerged_readings: unmerged as u64,
            unmerged_bytes: unmerged_bytes as u64,
            chunks: chunks.len() as u64,
            chunked_readings: chunks.iter().map(|c| c.rows.max(0) as u64).sum(),
            oldest_received_at: chunks
                .iter()
                .filter_map(|c| c.last_received_at)
                .min()
                .map(format_micros),
            retention: self.retention.map(|r| {
                humantime_serde::re::humantime::format_duration(Duration::from_micros(r as u64))
                    .to_string()
            }),
            dead_letter_bytes: self.dead_letter_bytes,
            dead_letter_quota: self.dead_letter_quota,
            wal_bytes: std::fs::metadata(wal_path(&self.path)).map_or(0, |m| m.len()),
        }
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
