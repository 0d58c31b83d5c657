//! Retention drops whole chunks, never the newest, and gives a device back the series
//! that were only in them; until then, a device has at most its series.

use std::time::Duration;

use super::*;
use crate::store::Amendment;

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
