//! What a crash, a failed merge or a reopening leaves: nothing lost, nothing repeated,
//! the merge resumed where it stopped; and the WAL reaches the database file off the
//! writer's thread.

use std::time::Duration;

use super::*;

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
