//! A purge deletes every reading of one device wherever it is (log, memory, chunks), a
//! bounded step at a time, with merges and writes in between, and brings none back.

use super::super::settings::StoreSettings;
use super::*;
use crate::message::{format_micros, Outcome, Reading};

fn reading(device: &str, n: i64, data: &str) -> Reading {
    Reading {
        device_id: device.into(),
        sensor_type: "gps".into(),
        ts: format_micros(1_735_689_600_000_000 + n * 1_000_000),
        data: data.into(),
        received_at: "2025-01-01T00:00:00.000000Z".into(),
    }
}

fn write(store: &mut Store, device: &str, ns: std::ops::Range<i64>) {
    let outcomes: Vec<Outcome> = ns
        .map(|n| Outcome::accepted(vec![reading(device, n, "{}")]))
        .collect();
    store.write(&outcomes).unwrap();
}

fn count(store: &Store, device: &str) -> i64 {
    store
        .conn
        .query_row(
            "SELECT count(*) FROM readings WHERE device_id = ?1",
            [device],
            |r| r.get(0),
        )
        .unwrap()
}

fn job(device: &str) -> PurgeJob {
    PurgeJob {
        device_id: device.into(),
        stage: PurgeStage::Unmerged,
        deleted: 0,
        started: Instant::now(),
        done: oneshot::channel().0,
    }
}

/// Small generations and slices: a few dozen readings cross sealing and merging.
fn settings(dir: &std::path::Path) -> StoreSettings {
    StoreSettings {
        generation_rows: 10,
        merge_slice: 4,
        ..StoreSettings::for_tests(dir)
    }
}

#[test]
fn a_purge_during_a_merge_deletes_every_reading_of_the_device_and_none_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&settings(dir.path())).unwrap();
    // Merged into a chunk, then a generation sealed and half merged, then unmerged ones.
    for round in 0..3 {
        write(&mut store, "d1", round * 10..round * 10 + 6);
        write(&mut store, "d2", round * 10..round * 10 + 6);
        while store.wants_upkeep() && round < 2 {
            store.upkeep(4).unwrap();
        }
    }
    store.upkeep(4).unwrap();
    assert!(
        store.tiers.memtable.read().unwrap().sealed.is_some(),
        "a generation is being merged"
    );
    let before = count(&store, "d1");
    assert_eq!((before, count(&store, "d2")), (18, 18));

    let mut purge = job("d1");
    let mut steps = 0;
    while !store.purge_step(&mut purge).unwrap() {
        steps += 1;
        // The merge goes on between the steps, and d2 keeps writing.
        if store.wants_upkeep() {
            store.upkeep(4).unwrap();
        }
        write(&mut store, "d2", 100 + steps..101 + steps);
        assert!(steps < 1_000, "the purge ends");
    }
    assert!(steps > 3, "in bounded steps ({steps})");
    assert_eq!(purge.deleted, before as u64, "each reading counted once");
    assert_eq!(count(&store, "d1"), 0);
    assert_eq!(count(&store, "d2"), 18 + steps);
    while store.wants_upkeep() {
        store.upkeep(4).unwrap();
    }
    assert_eq!(count(&store, "d1"), 0, "no merge brought one back");
    assert!(store
        .tiers
        .memtable
        .read()
        .unwrap()
        .device_rows("d1", (i64::MIN, i64::MAX), true, 100)
        .is_empty());
    let series: i64 = store
        .conn
        .query_row(
            "SELECT count(*) FROM series WHERE device_id = 'd1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(series, 0);
    // Reopened, the memory rebuilt from the log: still nothing of d1, all of d2.
    drop(store);
    let mut store = Store::open(&settings(dir.path())).unwrap();
    assert_eq!((count(&store, "d1"), count(&store, "d2")), (0, 18 + steps));
    // The device may write again, even what it wrote before with other data: no conflict.
    let again = Outcome::accepted(vec![reading("d1", 1, "{\"other\":1}")]);
    let stats = store.write([&again]).unwrap();
    assert_eq!((stats.readings, stats.amended.len()), (1, 0));
}

#[test]
fn a_purge_of_a_device_with_nothing_stored_is_done_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&settings(dir.path())).unwrap();
    write(&mut store, "d2", 0..3);
    let mut purge = job("nobody");
    let mut steps = 0;
    while !store.purge_step(&mut purge).unwrap() {
        steps += 1;
    }
    assert_eq!((steps, purge.deleted), (2, 0));
    assert_eq!(count(&store, "d2"), 3);
}
