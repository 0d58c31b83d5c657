//! The store's own tests: one-transaction writes, files, dead letters' bytes.

use super::*;
use crate::message::{DeadLetter, Reading};
use crate::settings::Problems;

fn settings(dir: &Path) -> StoreSettings {
    StoreSettings::for_tests(dir)
}

/// Reading `n` of device `d1`'s GPS: `n` seconds after 2025-01-01.
fn reading(n: u32) -> Reading {
    reading_of("d1", n, r#"{"latitude":1}"#)
}

fn reading_of(device: &str, n: u32, data: &str) -> Reading {
    Reading {
        device_id: device.into(),
        sensor_type: "gps".into(),
        ts: format_micros(1_735_689_600_000_000 + i64::from(n) * 1_000_000),
        data: data.into(),
        received_at: "2025-01-01T00:00:00.000000Z".into(),
    }
}

#[test]
fn a_redelivered_reading_is_ignored_and_counted_as_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&settings(dir.path())).unwrap();
    let first = Outcome::accepted(vec![reading(1), reading(2)]);
    assert_eq!(store.write([&first]).unwrap().readings, 2);
    let again = Outcome::accepted(vec![reading(2), reading(3)]);
    let stats = store.write([&again]).unwrap();
    assert_eq!((stats.readings, stats.duplicates), (1, 1));
    let rows: i64 = store
        .conn
        .query_row("SELECT count(*) FROM readings", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 3);
}

#[test]
fn the_shape_shows_what_the_wal_file_weighs() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&settings(dir.path())).unwrap();
    store.write([&Outcome::accepted(vec![reading(1)])]).unwrap();
    let wal = std::fs::metadata(dir.path().join("eliot.db-wal"))
        .unwrap()
        .len();
    assert!(wal > 0);
    assert_eq!(store.shape().wal_bytes, wal);
}

#[cfg(unix)]
#[test]
fn what_the_store_creates_is_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let mut store = Store::open(&settings(&dir)).unwrap();
    store.write([&Outcome::accepted(vec![reading(1)])]).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&dir), 0o700);
    for file in ["eliot.db", "eliot.db-wal", "eliot.db-shm"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
}

/// A shared directory (a 1777 one, as `/tmp` is) is not Eliot's to close to others, nor
/// is a database file whose mode its owner chose (a group of readers, say).
#[cfg(unix)]
#[test]
fn what_existed_before_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("shared");
    std::fs::create_dir(&dir).unwrap();
    let set = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    set(&dir, 0o1777).unwrap();
    drop(Store::open(&settings(&dir)).unwrap());
    set(&dir.join("eliot.db"), 0o640).unwrap();
    let mut store = Store::open(&settings(&dir)).unwrap();
    store.write([&Outcome::accepted(vec![reading(1)])]).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&dir), 0o1777);
    assert_eq!(mode(&dir.join("eliot.db")), 0o640);
}

#[test]
fn a_file_deleted_or_damaged_under_the_store_refuses_the_next_write() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&settings(dir.path())).unwrap();
    store.write([&Outcome::accepted(vec![reading(1)])]).unwrap();
    let db = dir.path().join("eliot.db");
    let mut file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    file.write_all(b"not a database!!").unwrap();
    let damaged = store.write([&Outcome::accepted(vec![reading(2)])]);
    assert!(
        matches!(damaged, Err(StoreError::Damaged { .. })),
        "{damaged:?}"
    );
    std::fs::remove_file(&db).unwrap();
    let gone = store.write([&Outcome::accepted(vec![reading(3)])]);
    assert!(matches!(gone, Err(StoreError::Moved { .. })), "{gone:?}");
    assert_eq!(
        gone.unwrap_err().kind(),
        crate::store::writer::FailureKind::Broken
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
        device_id: Some("d1".into()),
        reason: "payload is not valid JSON".into(),
        received_at: "2025-01-01T00:00:00.000000Z".into(),
        redelivered: false,
        replay_of: None,
    });
    assert_eq!(store.write([&dl]).unwrap().dead_letters, 1);
    let stored: Vec<u8> = store
        .conn
        .query_row("SELECT payload FROM dead_letters", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, payload.to_vec());
}

#[test]
fn a_retention_shorter_than_a_chunk_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let settings = StoreSettings {
        retention: Some(Duration::from_secs(3_600)),
        ..settings(dir.path())
    };
    let mut problems = Problems::new();
    problems.section("store", |p| settings.validate(p));
    let problems = problems.into_vec();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].key, "store.retention");
    assert!(
        problems[0]
            .message
            .contains("shorter than chunk_span (1day)"),
        "{}",
        problems[0].message
    );
}
