//! A replay's dead letter leaves in the transaction that stores its readings, or not at
//! all; and the selections a replay loads.

use bytes::Bytes;
use time::macros::datetime;

use super::super::database::{Amendment, Store};
use super::super::settings::StoreSettings;
use super::*;
use crate::message::{DeadLetter, Origin, Outcome, Reading};

fn reading(n: i64, data: &str) -> Reading {
    Reading {
        device_id: "d1".into(),
        sensor_type: "gps".into(),
        ts: format_micros(1_735_689_600_000_000 + n * 1_000_000),
        data: data.into(),
        received_at: "2025-01-01T00:00:00.000000Z".into(),
    }
}

fn dead_letter(client: &str, reason: &str, received_at: &str) -> Outcome {
    Outcome::Rejected(DeadLetter {
        topic: format!("devices/{client}/telemetry"),
        payload: Bytes::from_static(b"{\"x\":1}"),
        client_id: client.into(),
        device_id: Some(client.into()),
        reason: reason.into(),
        received_at: received_at.into(),
        redelivered: false,
        replay_of: None,
    })
}

/// The replay of dead letter `id` as accepted with these readings.
fn replay_accepted(id: i64, readings: Vec<Reading>) -> Outcome {
    Outcome::Accepted {
        readings,
        origin: Origin {
            topic: "devices/d1/telemetry".into(),
            payload: Bytes::from_static(b"{\"x\":1}"),
            client_id: "d1".into(),
            device_id: Some("d1".into()),
            received_at: datetime!(2025-01-01 00:00 UTC),
            redelivered: false,
            replay_of: Some(id),
        },
    }
}

fn count(store: &Store, sql: &str) -> i64 {
    store.conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreSettings::for_tests(dir.path())).unwrap();
    (dir, store)
}

const T0: &str = "2025-01-01T00:00:00.000000Z";

#[test]
fn an_accepted_replay_stores_its_readings_and_deletes_its_dead_letter_in_one_commit() {
    let (_dir, mut store) = open();
    store.write([&dead_letter("d1", "too big", T0)]).unwrap();
    let weight_before = store.dead_letter_bytes;
    assert!(weight_before > 0);
    let stats = store
        .write([&replay_accepted(
            1,
            vec![reading(1, "{}"), reading(2, "{}")],
        )])
        .unwrap();
    assert_eq!((stats.readings, stats.replayed), (2, 1));
    assert!(stats.amended.is_empty(), "{:?}", stats.amended);
    assert_eq!(count(&store, "SELECT count(*) FROM dead_letters"), 0);
    assert_eq!(count(&store, "SELECT count(*) FROM readings"), 2);
    assert_eq!(store.dead_letter_bytes, 0, "its weight left the quota");
}

#[test]
fn a_replay_already_stored_with_the_same_data_is_accepted_and_a_conflicting_one_stays() {
    let (_dir, mut store) = open();
    store
        .write([&Outcome::accepted(vec![reading(1, "{\"a\":1}")])])
        .unwrap();
    store.write([&dead_letter("d1", "r1", T0)]).unwrap();
    store.write([&dead_letter("d1", "r2", T0)]).unwrap();
    let same = replay_accepted(1, vec![reading(1, "{\"a\":1}")]);
    let other = replay_accepted(2, vec![reading(1, "{\"a\":2}")]);
    let stats = store.write([&same, &other]).unwrap();
    assert_eq!(
        (stats.readings, stats.duplicates, stats.replayed),
        (0, 1, 1)
    );
    // The first is stored as a duplicate (for its device's count), the second refused.
    let [(0, Amendment::Duplicated(1)), (1, Amendment::StillRefused(reason))] = &stats.amended[..]
    else {
        panic!("{:?}", stats.amended)
    };
    assert!(
        reason.contains("conflicts with a stored reading"),
        "{reason}"
    );
    assert_eq!(stats.dead_letters, 0, "refused again, not kept twice");
    let kept: Vec<(i64, String)> = {
        let mut s = store
            .conn
            .prepare("SELECT id, reason FROM dead_letters")
            .unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(
        kept,
        [(2, "r2".to_owned())],
        "the conflicting one stays as it was"
    );
}

#[test]
fn a_replay_whose_dead_letter_is_gone_writes_nothing_and_one_refused_again_is_not_kept_twice() {
    let (_dir, mut store) = open();
    store.write([&dead_letter("d1", "bad", T0)]).unwrap();
    let refused_again = match dead_letter("d1", "still bad", T0) {
        Outcome::Rejected(d) => Outcome::Rejected(DeadLetter {
            replay_of: Some(1),
            ..d
        }),
        other => other,
    };
    let first = replay_accepted(1, vec![reading(1, "{}")]);
    // The same dead letter twice in one transaction (two replays at once): stored once.
    let twice = replay_accepted(1, vec![reading(2, "{}")]);
    let unknown = replay_accepted(99, vec![reading(3, "{}")]);
    let stats = store
        .write([&refused_again, &first, &twice, &unknown])
        .unwrap();
    assert_eq!(stats.amended, [(2, Amendment::Gone), (3, Amendment::Gone)]);
    assert_eq!(
        (stats.readings, stats.replayed, stats.dead_letters),
        (1, 1, 0)
    );
    assert_eq!(count(&store, "SELECT count(*) FROM dead_letters"), 0);
    assert_eq!(count(&store, "SELECT count(*) FROM readings"), 1);
}

/// The readings' insert fails after the dead letter's delete, in the same transaction:
/// both are still there, nothing is in memory, and the replay succeeds once it can.
#[test]
fn a_failure_between_the_delete_and_the_insert_leaves_both() {
    let (_dir, mut store) = open();
    store.write([&dead_letter("d1", "bad", T0)]).unwrap();
    store
        .conn
        .execute_batch(
            "CREATE TEMP TRIGGER no_log BEFORE INSERT ON readings_log \
             BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        )
        .unwrap();
    let replay = replay_accepted(1, vec![reading(1, "{}")]);
    assert!(store.write([&replay]).is_err());
    assert_eq!(count(&store, "SELECT count(*) FROM dead_letters"), 1);
    assert_eq!(count(&store, "SELECT count(*) FROM readings"), 0);
    assert_eq!(store.shape().unmerged_readings, 0, "nothing reached memory");
    assert!(store.dead_letter_bytes > 0, "its weight is still counted");
    store.conn.execute_batch("DROP TRIGGER no_log").unwrap();
    assert_eq!(store.write([&replay]).unwrap().replayed, 1);
    assert_eq!(count(&store, "SELECT count(*) FROM dead_letters"), 0);
    assert_eq!(count(&store, "SELECT count(*) FROM readings"), 1);
}

#[test]
fn a_filter_selects_by_device_reason_prefix_and_time_a_page_at_a_time() {
    let (_dir, mut store) = open();
    let t = |n: i64| format_micros(1_735_689_600_000_000 + n * 1_000_000);
    store
        .write([
            &dead_letter("d1", "payload is 100% wrong", &t(1)),
            &dead_letter("d2", "payload is 100% wrong", &t(2)),
            &dead_letter("d1", "PAYLOAD is wrong", &t(3)),
            &dead_letter("d1", "payload is 100% wrong", &t(4)),
            &dead_letter("d1", "payload is 100% wrong", &t(5)),
        ])
        .unwrap();
    store
        .conn
        .execute(
            "INSERT INTO devices (device_id, created_at) VALUES ('d1', ?1)",
            [T0],
        )
        .unwrap();
    let ids = |selection: &Selection| -> Vec<i64> {
        store
            .dead_letters_to_replay(selection)
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect()
    };
    let filter = DeadLetterFilter {
        device: Some("d1".into()),
        reason_prefix: Some("payload is 100%".into()),
        from: Some(1_735_689_600_000_000 + 1_000_000),
        to: Some(1_735_689_600_000_000 + 5_000_000),
    };
    let page = |after, limit| Selection::Matching {
        filter: filter.clone(),
        after,
        limit,
    };
    assert_eq!(
        ids(&page(0, 10)),
        [1, 4],
        "not d2's, not another case, not at `to`"
    );
    assert_eq!(ids(&page(0, 1)), [1]);
    assert_eq!(ids(&page(1, 1)), [4]);
    // `%` and `_` are not wildcards, and a prefix is matched as written.
    let wildcard = DeadLetterFilter {
        reason_prefix: Some("payload is 1%".into()),
        ..DeadLetterFilter::default()
    };
    assert!(ids(&Selection::Matching {
        filter: wildcard,
        after: 0,
        limit: 10
    })
    .is_empty());
    let kept = store
        .dead_letters_to_replay(&Selection::Ids(vec![5, 2, 42]))
        .unwrap();
    let seen: Vec<(i64, bool)> = kept.iter().map(|d| (d.id, d.provisioned)).collect();
    assert_eq!(seen, [(2, false), (5, true)], "those kept, in id order");
    assert_eq!(kept[1].payload, Bytes::from_static(b"{\"x\":1}"));
}
