//! Databases of older Eliots are migrated and keep what they held (version 2's readings,
//! version 4's devices); one of a newer Eliot is refused.

use super::*;
use crate::store::StoreError;

/// Version 2's schema, as Eliot 0.1 wrote it, with a user's own view over `readings`.
const VERSION_2: &str = "
CREATE TABLE readings (device_id TEXT NOT NULL, sensor_type TEXT NOT NULL, ts TEXT NOT NULL,
    data TEXT NOT NULL, received_at TEXT NOT NULL, PRIMARY KEY (device_id, sensor_type, ts)
) WITHOUT ROWID;
CREATE TABLE dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, received_at TEXT NOT NULL,
    client_id TEXT NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL, reason TEXT NOT NULL);
CREATE INDEX dead_letters_received_at ON dead_letters (received_at);
CREATE TABLE sessions (client_id TEXT PRIMARY KEY, expiry_s INTEGER, last_seen_s INTEGER NOT NULL);
CREATE INDEX sessions_last_seen ON sessions (last_seen_s);
CREATE VIEW gps AS SELECT device_id, ts FROM readings WHERE sensor_type = 'gps';
PRAGMA user_version = 2;
";

#[test]
fn a_version_2_database_is_migrated_and_its_readings_still_count() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    {
        let old = Connection::open(settings.db_path()).unwrap();
        old.execute_batch(VERSION_2).unwrap();
        let mut insert = old
            .prepare("INSERT INTO readings VALUES (?1, ?2, ?3, ?4, ?5)")
            .unwrap();
        for n in 0..40 {
            let r = reading("d0", "gps", n, "{}");
            insert
                .execute(rusqlite::params![
                    r.device_id,
                    r.sensor_type,
                    r.ts,
                    r.data,
                    r.received_at
                ])
                .unwrap();
        }
    }
    let mut store = Store::open(&settings).unwrap();
    assert_eq!(store.migrated_from(), Some(2));
    assert_eq!(count(&store.conn, "PRAGMA user_version"), 9);
    let owned = "SELECT count(*) FROM pragma_table_info('sessions') WHERE name = 'owner'";
    assert_eq!(count(&store.conn, owned), 1, "sessions gained their owner");
    let in_chunk_1 = "SELECT count(*) FROM series WHERE last_chunk = 1";
    assert_eq!(count(&store.conn, in_chunk_1), 1, "kept until chunk_1 goes");
    assert_eq!(view_rows(&store), (40, 40));
    // Known to the dedupe: the old rows are the first chunk, their series' newest known.
    let again = Outcome::accepted(vec![reading("d0", "gps", 7, "{}")]);
    assert_eq!(store.write([&again]).unwrap().duplicates, 1);
    let conflict = Outcome::accepted(vec![reading("d0", "gps", 8, "[]")]);
    assert_eq!(store.write([&conflict]).unwrap().amended.len(), 1);
    store
        .write([&Outcome::accepted(vec![reading("d0", "gps", 99, "{}")])])
        .unwrap();
    assert_eq!(
        count(&store.conn, "SELECT count(*) FROM gps"),
        41,
        "the user's view reads the new `readings`, new rows included"
    );
    drop(store);
    let reopened = Store::open(&settings).unwrap();
    assert_eq!(reopened.migrated_from(), None, "migrated once");
}

/// Version 4's `devices`, which required a secret hash.
const VERSION_4_DEVICES: &str = "
CREATE TABLE devices (device_id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL, rotated_at TEXT);
INSERT INTO devices VALUES ('robot_1', '$argon2id$stand-in', '2026-12-01T00:00:00Z', NULL);
PRAGMA user_version = 4;
";

#[test]
fn a_version_4_database_keeps_its_devices_and_logs_their_revocations() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    Connection::open(settings.db_path())
        .unwrap()
        .execute_batch(VERSION_4_DEVICES)
        .unwrap();
    let store = Store::open(&settings).unwrap();
    assert_eq!(store.migrated_from(), Some(4));
    let conn = &store.conn;
    assert_eq!(
        count(
            conn,
            "SELECT count(*) FROM devices WHERE secret_hash IS NOT NULL"
        ),
        1
    );
    conn.execute_batch(
        "INSERT INTO devices VALUES ('robot_2', NULL, '2026-12-07T00:00:00Z', NULL);
         UPDATE devices SET secret_hash = 'other' WHERE device_id = 'robot_1';
         UPDATE devices SET rotated_at = 'now' WHERE device_id = 'robot_1';
         DELETE FROM devices WHERE device_id = 'robot_2';",
    )
    .unwrap();
    let logged: Vec<(String, String)> = conn
        .prepare("SELECT device_id, cause FROM device_revocations ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = [("robot_1", "rotated"), ("robot_2", "removed")];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(d, c)| (d.to_string(), c.to_string()))
        .collect();
    assert_eq!(
        logged, expected,
        "a change that keeps the hash is no revocation"
    );
}

/// What versions 7 and 8 added, taken away again: a version 6 database, with its rows.
const BACK_TO_VERSION_6: &str = "
DROP TABLE anomalies;
DROP TABLE device_state;
DROP TABLE device_events;
DROP INDEX dead_letters_device;
ALTER TABLE dead_letters DROP COLUMN device_id;
PRAGMA user_version = 6;
";

#[test]
fn a_version_6_database_gains_the_fleets_tables_and_keeps_its_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    {
        let mut store = Store::open(&settings).unwrap();
        let readings = Outcome::accepted(vec![reading("d0", "gps", 1, "{}")]);
        let mut dead = Outcome::accepted(vec![reading("d0", "gps", 2, "{}")]);
        if let Outcome::Accepted { origin, .. } = &dead {
            dead = Outcome::Rejected(origin.dead_letter("payload is not valid JSON".into()));
        }
        store.write([&readings, &dead]).unwrap();
        store.conn.execute_batch(BACK_TO_VERSION_6).unwrap();
    }
    let store = Store::open(&settings).unwrap();
    assert_eq!(store.migrated_from(), Some(6));
    assert_eq!(count(&store.conn, "PRAGMA user_version"), 9);
    assert_eq!(
        count(
            &store.conn,
            "SELECT count(*) FROM dead_letters WHERE device_id IS NULL"
        ),
        1,
        "the old dead letter is kept, attributed to nobody"
    );
    assert_eq!(view_rows(&store).0, 1, "the reading is kept");
    for table in ["device_state", "device_events", "anomalies"] {
        let sql = format!("SELECT count(*) FROM {table}");
        assert_eq!(count(&store.conn, &sql), 0, "{table} exists, empty");
    }
    let indexed = "SELECT count(*) FROM sqlite_schema WHERE name = 'dead_letters_device'";
    assert_eq!(count(&store.conn, indexed), 1);
}

/// What version 8 added, taken away again: a version 7 database.
const BACK_TO_VERSION_7: &str = "
DROP TABLE anomalies;
PRAGMA user_version = 7;
";

#[test]
fn a_version_7_database_gains_the_anomalies_table_and_keeps_its_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    {
        let store = Store::open(&settings).unwrap();
        store
            .conn
            .execute_batch(
                "INSERT INTO device_events (device_id, at, status, reason) \
                 VALUES ('d0', '2025-01-01T00:00:00.000000Z', 'online', 'connected');",
            )
            .unwrap();
        store.conn.execute_batch(BACK_TO_VERSION_7).unwrap();
    }
    let store = Store::open(&settings).unwrap();
    assert_eq!(store.migrated_from(), Some(7));
    assert_eq!(count(&store.conn, "PRAGMA user_version"), 9);
    assert_eq!(count(&store.conn, "SELECT count(*) FROM device_events"), 1);
    assert_eq!(count(&store.conn, "SELECT count(*) FROM anomalies"), 0);
    let indexed = "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'anomalies_%'";
    assert_eq!(count(&store.conn, indexed), 2, "by device, and by receipt");
}

/// What version 9 added, taken away again: a version 8 database.
const BACK_TO_VERSION_8: &str = "
DROP TABLE alert_states;
DROP TABLE alert_events;
DROP TABLE alert_deliveries;
DROP TABLE alert_silences;
DROP TABLE alert_rules;
PRAGMA user_version = 8;
";

#[test]
fn a_version_8_database_gains_the_alert_tables_and_keeps_its_anomalies() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    {
        let store = Store::open(&settings).unwrap();
        store
            .conn
            .execute_batch(
                "INSERT INTO anomalies (device_id, sensor_type, ts, field, score, received_at) \
                 VALUES ('d0', 't', '2025-01-01T00:00:00.000000Z', 'v', 0.9, '2025-01-01T00:00:00.000000Z');",
            )
            .unwrap();
        store.conn.execute_batch(BACK_TO_VERSION_8).unwrap();
    }
    let store = Store::open(&settings).unwrap();
    assert_eq!(store.migrated_from(), Some(8));
    assert_eq!(count(&store.conn, "PRAGMA user_version"), 9);
    assert_eq!(count(&store.conn, "SELECT count(*) FROM anomalies"), 1);
    let tables = "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name LIKE 'alert_%'";
    assert_eq!(count(&store.conn, tables), 5);
}

#[test]
fn a_database_from_a_newer_eliot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    Connection::open(settings.db_path())
        .unwrap()
        .execute_batch("PRAGMA user_version = 10")
        .unwrap();
    let refused = Store::open(&settings).err().unwrap();
    assert!(
        matches!(refused, StoreError::Newer { version: 10, .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("newer than this Eliot's"));
}
