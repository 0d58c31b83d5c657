//! Redeliveries and conflicts: the same key with the same data is a duplicate, with other
//! data a conflict that keeps the whole message as a dead letter, wherever the original
//! is (memory, log or chunk).

use super::*;
use crate::store::Amendment;

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
