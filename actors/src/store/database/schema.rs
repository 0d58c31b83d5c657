//! The schema, and the migrations that bring an older database to it (`user_version`).
//!
//! Version 9 (this one) adds the alerts' tables (`store/alerts.rs`): `alert_states`, the
//! alerts raised now; `alert_events`, their history; `alert_deliveries`, the webhook's
//! outbox and log; `alert_silences`.
//! Version 8 adds `anomalies`: the anomaly scores at or above `anomaly.floor`,
//! each with its reading's key and the field scored, indexed by device (the API's pages)
//! and by receipt (retention).
//! Version 7 adds the fleet's tables: `device_state`, one row per known device
//! (its presence, counters, quality and rhythm, written in the store writer's batches), and
//! `device_events`, every status change with its time and reason; and
//! `dead_letters.device_id`, the device a dead letter is attributed to (nullable: older
//! rows, and messages naming no valid device, have none), indexed with the id for listing
//! a device's dead letters in order.
//! Version 6 adds `series.last_chunk`, the newest chunk holding each series,
//! so that a series is forgotten once retention dropped that chunk (an existing series
//! takes the newest chunk at migration: kept until every chunk it may be in is gone).
//! Version 5 lets a device have no secret (it logs in by client certificate
//! only); adds `device_revocations`: the devices whose secret was rotated or which were
//! removed, written by triggers, so a running Eliot closes their connections whichever
//! process changed `devices`; and adds `sessions.owner`: the connection that holds each
//! session, so that a replaced connection's late end cannot end its successor's session;
//! and adds `upstream_sessions`: the brokers that have held a session for Eliot, so that
//! one lost while Eliot was down is noticed after a restart.
//! Version 4 adds `devices`: each provisioned device and the
//! Argon2 hash of its secret. Version 3: readings are appended to `readings_log` in arrival order, merged
//! in bulk into time chunks (`chunk_<id>`), and read through the `readings` view, which
//! has version 2's columns. Version 2 had one `readings` table, clustered by device: it
//! becomes the first chunk as it is (a rename, whatever its size).

use rusqlite::{params, Connection, OptionalExtension};

use super::super::alerts::ALERT_TABLES;
use super::super::anomalies::ANOMALIES_TABLE;
use super::super::readings::{rebuild_view, Chunks};
use crate::message::format_micros;

pub const VERSION: i64 = 9;

/// Provisioned devices (`eliot device add`): the hash of each one's secret, never the
/// secret; no hash for a device that logs in by certificate only.
///
/// Every rotation and removal is logged in `device_revocations` by a trigger, so that
/// whoever changes `devices` (the CLI in another process, `sqlite3`, an API later) is
/// seen by the running Eliot, which reads only the rows past the last it saw. Rows older
/// than a day are deleted as new ones come: the log stays small.
pub const DEVICES_TABLE: &str = "
CREATE TABLE IF NOT EXISTS devices (
    device_id   TEXT PRIMARY KEY,
    secret_hash TEXT,
    created_at  TEXT NOT NULL,
    rotated_at  TEXT
);
CREATE TABLE IF NOT EXISTS device_revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id  TEXT NOT NULL,
    cause      TEXT NOT NULL CHECK (cause IN ('rotated', 'removed')),
    revoked_s  INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS devices_rotated AFTER UPDATE OF secret_hash ON devices
WHEN old.secret_hash IS NOT new.secret_hash
BEGIN
    DELETE FROM device_revocations WHERE revoked_s < CAST(strftime('%s', 'now') AS INTEGER) - 86400;
    INSERT INTO device_revocations (device_id, cause, revoked_s)
    VALUES (old.device_id, 'rotated', CAST(strftime('%s', 'now') AS INTEGER));
END;
CREATE TRIGGER IF NOT EXISTS devices_removed AFTER DELETE ON devices
BEGIN
    DELETE FROM device_revocations WHERE revoked_s < CAST(strftime('%s', 'now') AS INTEGER) - 86400;
    INSERT INTO device_revocations (device_id, cause, revoked_s)
    VALUES (old.device_id, 'removed', CAST(strftime('%s', 'now') AS INTEGER));
END;
";

/// Version 4's `devices` required a secret hash: rebuilt as version 5's, rows kept.
const DEVICES_FROM_V4: &str = "
CREATE TABLE devices_v5 (
    device_id   TEXT PRIMARY KEY,
    secret_hash TEXT,
    created_at  TEXT NOT NULL,
    rotated_at  TEXT
);
INSERT INTO devices_v5 SELECT device_id, secret_hash, created_at, rotated_at FROM devices;
DROP TABLE devices;
ALTER TABLE devices_v5 RENAME TO devices;
";

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS readings_log (
    -- Never reused (AUTOINCREMENT): `merge_state.sealed_through` names a range of it.
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id   TEXT NOT NULL,
    sensor_type TEXT NOT NULL,
    ts          TEXT NOT NULL,
    data        TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id               INTEGER PRIMARY KEY,
    opened_at        TEXT NOT NULL,
    rows             INTEGER NOT NULL DEFAULT 0,
    min_ts           TEXT,
    max_ts           TEXT,
    last_received_at TEXT
);
CREATE TABLE IF NOT EXISTS merge_state (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    sealed_through INTEGER NOT NULL DEFAULT 0,
    merged_device  TEXT NOT NULL DEFAULT '',
    merged_sensor  TEXT NOT NULL DEFAULT '',
    merged_ts      TEXT NOT NULL DEFAULT ''
);
INSERT OR IGNORE INTO merge_state (id) VALUES (1);
CREATE TABLE IF NOT EXISTS series (
    device_id     TEXT NOT NULL,
    sensor_type   TEXT NOT NULL,
    merged_max_ts TEXT NOT NULL,
    last_chunk    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, sensor_type)
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
CREATE TABLE IF NOT EXISTS device_state (
    device_id        TEXT PRIMARY KEY,
    status           TEXT NOT NULL,
    since            TEXT NOT NULL,
    reason           TEXT NOT NULL,
    quarantined      INTEGER NOT NULL DEFAULT 0,
    quarantine_until TEXT,
    connected_since  TEXT,
    last_seen        TEXT,
    peer             TEXT,
    protocol         TEXT,
    counts           TEXT NOT NULL,
    quality          TEXT NOT NULL,
    rhythm           TEXT NOT NULL,
    last_readings    TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    at        TEXT NOT NULL,
    status    TEXT NOT NULL,
    reason    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS device_events_device ON device_events (device_id, id);
CREATE TABLE IF NOT EXISTS sessions (
    client_id   TEXT PRIMARY KEY,
    expiry_s    INTEGER,
    last_seen_s INTEGER NOT NULL,
    owner       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sessions_last_seen ON sessions (last_seen_s);
CREATE TABLE IF NOT EXISTS upstream_sessions (
    broker     TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    since_s    INTEGER NOT NULL,
    PRIMARY KEY (broker, client_id)
) WITHOUT ROWID;
";

/// What `migrate` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrated {
    Current,
    Created,
    /// From this version.
    From(i64),
}

/// Brings the database to `VERSION`, in one transaction. A database from a newer Eliot is
/// refused (`Err(Some(version))`), not guessed at.
pub fn migrate(conn: &mut Connection, now: i64) -> Result<Migrated, MigrateError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == VERSION {
        return Ok(Migrated::Current);
    }
    if version > VERSION {
        return Err(MigrateError::Newer(version));
    }
    // A rename must not rewrite users' own views that name `readings`: they are to see
    // the new view of that name.
    conn.execute_batch("PRAGMA legacy_alter_table = ON")?;
    let tx = conn.transaction()?;
    let legacy = tx
        .query_row(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'readings'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    tx.execute_batch(TABLES)?;
    tx.execute_batch(ANOMALIES_TABLE)?;
    tx.execute_batch(ALERT_TABLES)?;
    if version == 4 {
        tx.execute_batch(DEVICES_FROM_V4)?;
    }
    tx.execute_batch(DEVICES_TABLE)?;
    let owned = tx
        .prepare("SELECT 1 FROM pragma_table_info('sessions') WHERE name = 'owner'")?
        .exists([])?;
    if !owned {
        tx.execute_batch("ALTER TABLE sessions ADD COLUMN owner INTEGER NOT NULL DEFAULT 0")?;
    }
    if legacy {
        tx.execute_batch("ALTER TABLE readings RENAME TO chunk_1")?;
        tx.execute(
            "INSERT INTO chunks (id, opened_at, rows, min_ts, max_ts, last_received_at) \
             SELECT 1, ?1, count(*), min(ts), max(ts), max(received_at) FROM chunk_1",
            params![format_micros(now)],
        )?;
        tx.execute_batch(
            "INSERT INTO series (device_id, sensor_type, merged_max_ts) \
             SELECT device_id, sensor_type, max(ts) FROM chunk_1 GROUP BY device_id, sensor_type",
        )?;
    }
    let chunked = tx
        .prepare("SELECT 1 FROM pragma_table_info('series') WHERE name = 'last_chunk'")?
        .exists([])?;
    if !chunked {
        tx.execute_batch("ALTER TABLE series ADD COLUMN last_chunk INTEGER NOT NULL DEFAULT 0")?;
    }
    let attributed = tx
        .prepare("SELECT 1 FROM pragma_table_info('dead_letters') WHERE name = 'device_id'")?
        .exists([])?;
    if !attributed {
        tx.execute_batch("ALTER TABLE dead_letters ADD COLUMN device_id TEXT")?;
    }
    tx.execute_batch(
        "CREATE INDEX IF NOT EXISTS dead_letters_device ON dead_letters (device_id, id)",
    )?;
    // Series from before version 6 (or the version 2 table) may be in any chunk.
    tx.execute_batch(
        "UPDATE series SET last_chunk = (SELECT coalesce(max(id), 0) FROM chunks) \
         WHERE last_chunk = 0",
    )?;
    rebuild_view(&tx, &Chunks::load(&tx)?.list)?;
    tx.execute_batch(&format!("PRAGMA user_version = {VERSION}"))?;
    tx.commit()?;
    conn.execute_batch("PRAGMA legacy_alter_table = OFF")?;
    Ok(if legacy || version > 0 {
        Migrated::From(version)
    } else {
        Migrated::Created
    })
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("schema version {0} is newer than this Eliot's ({VERSION})")]
    Newer(i64),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}
