//! The log merged into chunks: the view shows each key once throughout, a generation is
//! sealed by its rows or its bytes, merge progress orders keys as SQLite orders a chunk,
//! and a merged generation leaves the log a slice at a time.

use super::super::memtable::Key;
use super::*;

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
