//! The store's layout end to end, on real SQLite files: the log, the merge into chunks,
//! a crash in the middle of it, the `readings` view, conflicts, retention, migration from
//! version 2, and the read API.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::memtable::Key;
use super::reader::Reader;
use super::sqlite::{Amendment, Store, StoreError, StoreSettings};
use crate::message::{format_micros, Outcome, Reading};

/// 2025-01-01T00:00:00Z.
const BASE: i64 = 1_735_689_600_000_000;

fn settings(dir: &Path) -> StoreSettings {
    StoreSettings {
        generation_rows: 100,
        merge_slice: 30,
        ..StoreSettings::for_tests(dir)
    }
}

fn reading(device: &str, sensor: &str, second: i64, data: &str) -> Reading {
    Reading {
        device_id: device.into(),
        sensor_type: sensor.into(),
        ts: format_micros(BASE + second * 1_000_000),
        data: data.into(),
        received_at: format_micros(BASE + second * 1_000_000 + 500),
    }
}

/// `count` readings from 3 devices × 2 sensor types, one message each, from `second` on.
fn fleet(from: i64, count: i64) -> Vec<Outcome> {
    (from..from + count)
        .map(|n| {
            let device = format!("d{}", n % 3);
            let sensor = if n % 2 == 0 { "gps" } else { "battery" };
            Outcome::accepted(vec![reading(&device, sensor, n, &format!("{{\"n\":{n}}}"))])
        })
        .collect()
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Rows in the `readings` view, and distinct keys among them.
fn view_rows(store: &Store) -> (i64, i64) {
    (
        count(&store.conn, "SELECT count(*) FROM readings"),
        count(
            &store.conn,
            "SELECT count(*) FROM (SELECT DISTINCT device_id, sensor_type, ts FROM readings)",
        ),
    )
}

fn upkeep_until_merged(store: &mut Store) {
    while store.tiers.memtable.read().unwrap().sealed.is_some() || store.wants_upkeep() {
        store.upkeep(usize::MAX).unwrap();
    }
}

fn unmerged(store: &Store) -> usize {
    store.tiers.memtable.read().unwrap().rows()
}

#[test]
fn readings_are_merged_into_a_chunk_and_the_view_shows_each_once_throughout() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&settings(dir.path())).unwrap();
    assert_eq!(store.migrated_from(), Some(0), "created");
    let outcomes = fleet(0, 250);
    for batch in outcomes.chunks(25) {
        store.write(batch).unwrap();
        assert_eq!(view_rows(&store).0, view_rows(&store).1, "no key twice");
        if store.wants_upkeep() {
            store.upkeep(usize::MAX).unwrap();
            let (rows, keys) = view_rows(&store);
            assert_eq!(rows, keys, "no key twice in the middle of a merge");
        }
    }
    upkeep_until_merged(&mut store);
    assert_eq!(view_rows(&store), (250, 250));
    let chunked = count(&store.conn, "SELECT count(*) FROM chunk_1");
    let logged = count(&store.conn, "SELECT count(*) FROM readings_log");
    assert_eq!(chunked + logged, 250);
    assert!(chunked >= 200, "two generations merged: {chunked}");
    assert_eq!(unmerged(&store), logged as usize, "memory mirrors the log");
}

#[test]
fn big_readings_seal_a_generation_by_its_bytes_so_memory_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 50_000;
    let mut store = Store::open(&StoreSettings {
        generation_bytes: limit,
        ..settings(dir.path())
    })
    .unwrap();
    let big = format!("{{\"blob\":\"{}\"}}", "x".repeat(10_000));
    let mut most = 0;
    for second in 0..60 {
        let outcome = Outcome::accepted(vec![reading("d1", "gps", second, &big)]);
        store.write([&outcome]).unwrap();
        // As the writer does: a step after each commit, and no more writes while the
        // active generation is full and the sealed one is not merged yet.
        store.upkeep(2).unwrap();
        while store.must_finish_generation() {
            store.upkeep(usize::MAX).unwrap();
        }
        most = most.max(store.tiers.memtable.read().unwrap().bytes());
    }
    let row = big.len() + 64;
    assert!(
        most <= 2 * (limit + row),
        "memory held {most} bytes, more than two generations of {limit}"
    );
    assert!(
        count(&store.conn, "SELECT count(*) FROM chunk_1") >= 40,
        "sealed by bytes long before 100 rows"
    );
    upkeep_until_merged(&mut store);
    assert_eq!(view_rows(&store), (60, 60));
    assert_eq!(
        store.shape().unmerged_bytes as usize,
        unmerged(&store) * row
    );
}

#[test]
fn a_crash_in_the_middle_of_a_merge_resumes_it_without_loss_or_repeat() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = Store::open(&settings(dir.path())).unwrap();
        store.write(&fleet(0, 120)).unwrap();
        store.upkeep(usize::MAX).unwrap(); // sealed, and one slice of 30 merged
        store.upkeep(usize::MAX).unwrap(); // another
        assert_eq!(count(&store.conn, "SELECT count(*) FROM chunk_1"), 60);
        // Dropped here as a kill would: no shutdown step of any kind.
    }
    let mut store = Store::open(&settings(dir.path())).unwrap();
    assert_eq!(view_rows(&store), (120, 120));
    assert_eq!(
        unmerged(&store),
        120,
        "the sealed generation is in memory again"
    );
    upkeep_until_merged(&mut store);
    assert_eq!(count(&store.conn, "SELECT count(*) FROM chunk_1"), 120);
    assert_eq!(view_rows(&store), (120, 120));
    assert_eq!(unmerged(&store), 0);
    // Redelivered after the restart: found in the chunk, not stored again.
    let stats = store.write(&fleet(0, 120)).unwrap();
    assert_eq!((stats.readings, stats.duplicates), (0, 120));
}

#[test]
fn a_redelivery_is_a_duplicate_and_other_data_a_conflict_wherever_the_original_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&settings(dir.path())).unwrap();
    store.write(&fleet(0, 150)).unwrap();
    upkeep_until_merged(&mut store);
    // 0..100 are in the chunk now, 100..150 in the log and memory.
    for second in [5, 120] {
        let original = fleet(second, 1);
        let stats = store.write(&original).unwrap();
        assert_eq!((stats.readings, stats.duplicates), (0, 1), "at {second}");
        let device = format!("d{}", second % 3);
        let sensor = if second % 2 == 0 { "gps" } else { "battery" };
        let changed = reading(&device, sensor, second, r#"{"n":-1}"#);
        let stats = store.write([&Outcome::accepted(vec![changed])]).unwrap();
        assert_eq!(stats.amended, [(0, Amendment::DeadLettered)], "at {second}");
        assert_eq!((stats.readings, stats.dead_letters), (0, 1));
    }
    let reason: String = store
        .conn
        .query_row(
            "SELECT reason FROM dead_letters ORDER BY id DESC",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        reason.contains("conflicts with a stored reading")
            && reason.contains("device `d0`, sensor_type `gps`")
            && reason.contains("2025-01-01T00:02:00.000000Z"),
        "{reason}"
    );
    assert_eq!(
        view_rows(&store),
        (150, 150),
        "nothing of either conflict stored"
    );
}

#[test]
fn a_message_with_one_conflicting_reading_stores_none_of_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&settings(dir.path())).unwrap();
    store.write(&fleet(0, 1)).unwrap();
    let mixed = Outcome::accepted(vec![
        reading("d0", "gps", 50, "{}"),
        reading("d0", "gps", 0, r#"{"n":"other"}"#),
    ]);
    let stats = store.write([&mixed]).unwrap();
    assert_eq!(stats.amended, [(0, Amendment::DeadLettered)]);
    assert_eq!(view_rows(&store), (1, 1));
    // Two readings with one key in one message: a duplicate if alike, else a conflict.
    let twice = Outcome::accepted(vec![
        reading("d5", "gps", 1, "{}"),
        reading("d5", "gps", 1, "{}"),
    ]);
    let stats = store.write([&twice]).unwrap();
    assert_eq!((stats.readings, stats.duplicates), (1, 1));
}

#[test]
fn retention_drops_whole_chunks_but_never_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings {
        // Every merge after a millisecond opens a chunk of its own.
        chunk_span: Duration::from_millis(1),
        retention: Some(Duration::from_millis(1)),
        ..settings(dir.path())
    };
    let mut store = Store::open(&settings).unwrap();
    store.write(&fleet(0, 200)).unwrap();
    // The retention is checked once at the first upkeep (nothing to drop: one chunk), then
    // a minute later, or at the next opening.
    upkeep_until_merged(&mut store);
    std::thread::sleep(Duration::from_millis(5));
    store.write(&fleet(200, 100)).unwrap();
    upkeep_until_merged(&mut store);
    let chunks = store.tiers.chunks.list.clone();
    assert!(chunks.len() >= 2, "{chunks:?}");
    drop(store);

    let mut store = Store::open(&settings).unwrap();
    let upkeep = store.upkeep(usize::MAX).unwrap();
    assert!(
        upkeep.expired.len() >= chunks.len() - 1,
        "all but the newest go: the readings were received in 2025"
    );
    let kept = store.tiers.chunks.list.clone();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let logged = count(&store.conn, "SELECT count(*) FROM readings_log");
    let dropped: i64 = upkeep.expired.iter().map(|c| c.rows).sum();
    assert_eq!(dropped + kept[0].rows + logged, 300);
    let tables = count(
        &store.conn,
        "SELECT count(*) FROM sqlite_schema WHERE name GLOB 'chunk_[0-9]*'",
    );
    assert_eq!(tables, 1, "dropped as tables, not emptied row by row");
    let left = kept[0].rows + logged;
    assert_eq!(view_rows(&store), (left, left));
    assert_eq!(store.shape().chunks, 1);
}

#[test]
fn a_device_has_at_most_its_series_until_retention_gives_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings {
        max_series_per_device: 3,
        generation_rows: 2,
        chunk_span: Duration::from_millis(1),
        retention: Some(Duration::from_millis(1)),
        ..settings(dir.path())
    };
    let one = |device: &str, sensor: &str, second: i64| {
        Outcome::accepted(vec![reading(device, sensor, second, "{}")])
    };
    let mut store = Store::open(&settings).unwrap();
    let first: Vec<Outcome> = (0..3).map(|n| one("d0", &format!("s{n}"), n)).collect();
    assert_eq!(store.write(&first).unwrap().readings, 3);
    let stats = store.write([&one("d0", "s3", 3)]).unwrap();
    assert_eq!(stats.amended, [(0, Amendment::DeadLettered)]);
    let reason: String = store
        .conn
        .query_row("SELECT reason FROM dead_letters", [], |r| r.get(0))
        .unwrap();
    assert!(
        reason.contains("`d0`") && reason.contains("`s3`") && reason.contains("max_series"),
        "{reason}"
    );
    assert_eq!(
        store.write([&one("d0", "s1", 4)]).unwrap().readings,
        1,
        "a known one"
    );
    assert_eq!(
        store.write([&one("d1", "s3", 3)]).unwrap().readings,
        1,
        "another device"
    );
    // In one transaction, the series staged before count too.
    let burst: Vec<Outcome> = (0..4).map(|n| one("d2", &format!("s{n}"), n)).collect();
    let stats = store.write(&burst).unwrap();
    assert_eq!((stats.readings, stats.amended.len()), (3, 1));
    upkeep_until_merged(&mut store);
    assert_eq!(
        count(
            &store.conn,
            "SELECT count(*) FROM series WHERE device_id = 'd0'"
        ),
        3
    );
    drop(store);

    // Known again at opening, from `series` and the log.
    let mut store = Store::open(&settings).unwrap();
    let stats = store.write([&one("d0", "s4", 5)]).unwrap();
    assert_eq!(stats.amended, [(0, Amendment::DeadLettered)]);
    upkeep_until_merged(&mut store);
    std::thread::sleep(Duration::from_millis(5));
    store.write([&one("d9", "s0", 9)]).unwrap();
    upkeep_until_merged(&mut store);
    drop(store);

    // Retention drops every chunk but the newest (d9's): the series only in them go.
    let mut store = Store::open(&settings).unwrap();
    assert!(!store.upkeep(usize::MAX).unwrap().expired.is_empty());
    let left = count(
        &store.conn,
        "SELECT count(*) FROM series WHERE device_id <> 'd9'",
    );
    assert_eq!(left, 0, "only d9's series may be left");
    assert_eq!(
        store.tiers.series.of_device("d9"),
        1,
        "d9's, in the log or merged"
    );
    assert_eq!(store.tiers.series.of_device("d0"), 0);
    assert_eq!(
        store.write([&one("d0", "s5", 10)]).unwrap().readings,
        1,
        "d0 may have new sensor types again"
    );
}

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
    assert_eq!(count(&store.conn, "PRAGMA user_version"), 6);
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

#[test]
fn a_database_from_a_newer_eliot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    Connection::open(settings.db_path())
        .unwrap()
        .execute_batch("PRAGMA user_version = 9")
        .unwrap();
    let refused = Store::open(&settings).err().unwrap();
    assert!(
        matches!(refused, StoreError::Newer { version: 9, .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("newer than this Eliot's"));
}

#[test]
fn reads_combine_memory_and_chunks_and_return_each_reading_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&settings(dir.path())).unwrap();
    store.write(&fleet(0, 250)).unwrap();
    store.upkeep(usize::MAX).unwrap(); // mid-merge: the sealed generation is in memory and partly chunked
    let reader = Reader::new(&settings(dir.path()), store.memtable());
    let d0: Vec<i64> = (0..250).filter(|n| n % 3 == 0).collect();

    let last = reader.last("d0", 1_000).unwrap();
    assert_eq!(last.len(), d0.len());
    assert_eq!(last[0].timestamp, format_micros(BASE + 249 * 1_000_000));
    assert!(last.windows(2).all(|w| w[0].timestamp > w[1].timestamp));
    assert_eq!(reader.last("d0", 5).unwrap().len(), 5);

    let latest = reader.latest("d0").unwrap();
    let sensors: Vec<(&str, &str)> = latest
        .iter()
        .map(|r| (r.sensor_type.as_str(), r.data.as_str()))
        .collect();
    assert_eq!(
        sensors,
        [("battery", r#"{"n":249}"#), ("gps", r#"{"n":246}"#)]
    );

    let (from, to) = (BASE + 30 * 1_000_000, BASE + 60 * 1_000_000);
    let range = reader.range("d0", (from, to), 10_000).unwrap();
    let expected: Vec<String> = (30..60)
        .filter(|n| n % 3 == 0)
        .map(|n| format_micros(BASE + n * 1_000_000))
        .collect();
    let got: Vec<String> = range.iter().map(|r| r.timestamp.clone()).collect();
    assert_eq!(got, expected);
    assert_eq!(reader.range("d0", (from, to), 3).unwrap().len(), 3);
    assert!(reader.last("nobody", 10).unwrap().is_empty());

    upkeep_until_merged(&mut store);
    assert_eq!(
        reader.last("d0", 1_000).unwrap(),
        last,
        "the same once merged"
    );
}

#[test]
fn keys_order_as_sqlite_orders_a_chunk() {
    // Merge progress is a key: memory and SQLite must agree on what comes after it.
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE c (device_id TEXT, sensor_type TEXT, ts TEXT, \
         PRIMARY KEY (device_id, ts, sensor_type)) WITHOUT ROWID",
    )
    .unwrap();
    let mut keys = Vec::new();
    for device in ["d1", "d10", "d2", "D1", "é"] {
        for sensor in ["gps", "battery", "temperature"] {
            for ts in [0, 999_999, 1_000_000, 1_735_689_600_000_000] {
                let key = Key {
                    device: device.into(),
                    ts,
                    sensor: sensor.into(),
                };
                conn.execute(
                    "INSERT INTO c VALUES (?1, ?2, ?3)",
                    rusqlite::params![device, sensor, format_micros(ts)],
                )
                .unwrap();
                keys.push(key);
            }
        }
    }
    keys.sort();
    let mut statement = conn
        .prepare("SELECT device_id, sensor_type, ts FROM c")
        .unwrap();
    let stored: Vec<(String, String, String)> = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let sorted: Vec<(String, String, String)> = keys
        .iter()
        .map(|k| {
            (
                k.device.to_string(),
                k.sensor.to_string(),
                format_micros(k.ts),
            )
        })
        .collect();
    assert_eq!(stored, sorted, "a full scan reads the primary key's order");
}

#[test]
fn reopening_at_any_step_loses_nothing_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    let mut store = Store::open(&settings).unwrap();
    let mut written = 0;
    for round in 0..40 {
        store.write(&fleet(written, 17)).unwrap();
        written += 17;
        for _ in 0..round % 4 {
            store.upkeep(usize::MAX).unwrap();
        }
        if round % 3 == 0 {
            store = Store::open(&settings).unwrap();
        }
        let (rows, keys) = view_rows(&store);
        assert_eq!((rows, keys), (written, written), "round {round}");
        let again = store.write(&fleet(written - 17, 17)).unwrap();
        assert_eq!(again.duplicates, 17, "round {round}");
    }
}

#[test]
fn a_merge_that_fails_changes_nothing_and_the_next_one_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings {
        // The failing slice opens a chunk of its own.
        chunk_span: Duration::from_millis(1),
        ..settings(dir.path())
    };
    let mut store = Store::open(&settings).unwrap();
    store.conn.busy_timeout(Duration::from_millis(50)).unwrap();
    store.write(&fleet(0, 120)).unwrap();
    store.upkeep(usize::MAX).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let other = Connection::open(settings.db_path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert!(store.upkeep(usize::MAX).is_err(), "the database is locked");
    assert!(store.upkeep(usize::MAX).is_err(), "still locked");
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(view_rows(&store), (120, 120));
    store.write(&fleet(120, 120)).unwrap();
    upkeep_until_merged(&mut store);
    assert_eq!(view_rows(&store), (240, 240));
    let reopened = Store::open(&settings).unwrap();
    assert_eq!(view_rows(&reopened), (240, 240));
}

#[test]
fn readings_after_a_wholly_merged_log_are_kept_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    let mut store = Store::open(&settings).unwrap();
    store.write(&fleet(0, 100)).unwrap();
    upkeep_until_merged(&mut store);
    assert_eq!(count(&store.conn, "SELECT count(*) FROM readings_log"), 0);
    // The log is empty: a plain rowid would start again from 1, inside the sealed range.
    store.write(&fleet(100, 10)).unwrap();
    assert_eq!(view_rows(&store), (110, 110));
    let mut store = Store::open(&settings).unwrap();
    assert_eq!(view_rows(&store), (110, 110));
    upkeep_until_merged(&mut store);
    // Emptied, and reopened: the next seq must come from what the log ever held, or the
    // next readings reopen as part of the generation merged already, and are deleted.
    store.write(&fleet(110, 90)).unwrap();
    upkeep_until_merged(&mut store);
    assert_eq!(count(&store.conn, "SELECT count(*) FROM readings_log"), 0);
    let mut store = Store::open(&settings).unwrap();
    store.write(&fleet(200, 10)).unwrap();
    let mut store = Store::open(&settings).unwrap();
    upkeep_until_merged(&mut store);
    store.write(&fleet(210, 100)).unwrap();
    upkeep_until_merged(&mut store);
    assert_eq!(view_rows(&store), (310, 310));
}

#[test]
fn the_wal_is_checkpointed_off_the_writer_s_thread() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    let mut store = Store::open(&settings).unwrap();
    let db_bytes = || std::fs::metadata(settings.db_path()).unwrap().len();
    let before = db_bytes();
    store.write(&fleet(0, 3_000)).unwrap();
    // The writer's automatic checkpoint is off: only the checkpointer's thread copies the
    // WAL into the database file.
    let copied = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        db_bytes() > before + 200_000
    });
    assert!(
        copied,
        "the database file grew from {before} to {} bytes",
        db_bytes()
    );
}

fn log_rows(store: &Store) -> i64 {
    count(&store.conn, "SELECT count(*) FROM readings_log")
}

/// A store whose first generation (readings 0..100) is merged and out of memory, and whose
/// log rows are not deleted yet.
fn merged_but_still_in_the_log(settings: &StoreSettings) -> Store {
    let mut store = Store::open(settings).unwrap();
    store.write(&fleet(0, 100)).unwrap();
    while store.tiers.deleting_through.is_none() {
        store.upkeep(usize::MAX).unwrap();
    }
    store
}

#[test]
fn a_merged_generation_leaves_the_log_a_slice_at_a_time_even_across_a_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    let mut store = merged_but_still_in_the_log(&settings);
    // Merged, out of memory, and still in the log: the view shows each reading once.
    assert_eq!((log_rows(&store), view_rows(&store)), (100, (100, 100)));
    store.upkeep(usize::MAX).unwrap();
    assert_eq!(log_rows(&store), 100 - 30, "one slice deleted");
    // A full active generation waits for the deletion before it is sealed.
    store.write(&fleet(100, 150)).unwrap();
    assert!(store.must_finish_generation());
    store.upkeep(usize::MAX).unwrap();
    assert!(store.tiers.memtable.read().unwrap().sealed.is_none());
    assert_eq!(log_rows(&store), 150 + 100 - 60);
    assert_eq!(view_rows(&store), (250, 250));
    // A crash here: the rest of the merged rows are found sealed, and deleted.
    let mut store = Store::open(&settings).unwrap();
    assert_eq!(view_rows(&store), (250, 250));
    upkeep_until_merged(&mut store);
    assert_eq!((log_rows(&store), view_rows(&store)), (0, (250, 250)));
    let again = store.write(&fleet(0, 250)).unwrap();
    assert_eq!(
        again.duplicates, 250,
        "every reading found once, in a chunk"
    );
}

#[test]
fn the_merged_log_rows_are_all_deleted_before_the_next_seal_even_across_a_gap_in_seq() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    let mut store = merged_but_still_in_the_log(&settings);
    // A gap wider than a slice (30), as rolled-back writes leave: the first slice finds
    // fewer rows than it may delete, and must not take that for the end.
    store
        .conn
        .execute_batch("DELETE FROM readings_log WHERE seq BETWEEN 11 AND 50")
        .unwrap();
    store.upkeep(usize::MAX).unwrap();
    assert_eq!(log_rows(&store), 50);
    assert!(store.tiers.deleting_through.is_some(), "rows are left");
    store.write(&fleet(100, 100)).unwrap();
    upkeep_until_merged(&mut store);
    assert_eq!((log_rows(&store), view_rows(&store)), (0, (200, 200)));
}
