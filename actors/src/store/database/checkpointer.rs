//! Checkpoints on a thread of their own: copying the WAL into the database (and syncing
//! it) takes up to hundreds of milliseconds with a long WAL, and SQLite's automatic
//! checkpoint would do it inside a commit, holding up every ack waiting on that commit.
//!
//! A passive checkpoint runs beside the writer's commits and the readers' reads, never
//! blocking either; the writer's own automatic checkpoint is off. Only starting the WAL
//! over holds off the writer, for about 2 ms (`checkpoint`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

use super::connection::retry_every_millisecond;
use super::db_file;

/// How often the WAL is checkpointed.
const EVERY: Duration = Duration::from_millis(250);

/// Past this, the WAL is started over: a passive checkpoint copies its frames but, under
/// unending writes, never finds the moment to start it over, so it would grow for ever.
/// The writer's `journal_size_limit` cuts the file back to this size when it next writes
/// from the beginning. (Truncating it to nothing, as `TRUNCATE` does, cost more: the file
/// must grow again. At 16 MiB the restarts came four times as often, for a slower
/// sustained rate: 2M readings at 10,000 devices, last quarter 55k against 59k msg/s,
/// measured before `checkpoint` synced first.) Between two checkpoints the WAL grows
/// past it by what the writer writes meanwhile.
pub const WAL_MAX_BYTES: u64 = 64 << 20;

/// A restart is not tried while more than this share of the WAL's frames could not be
/// copied: a reader keeps an older snapshot (a user's long query, a transaction left open),
/// and SQLite's restart would hold off the writer, up to its whole wait of 1 s, at every
/// tick until that reader is done. Under writes alone, the passive checkpoint just before
/// leaves only what was written while it ran.
const HELD_BACK_SHARE: i64 = 4;

/// The WAL file of the database at `db`: SQLite's name for it.
pub fn wal_path(db: &Path) -> std::path::PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    wal.into()
}

/// Runs checkpoints until dropped.
pub struct Checkpointer {
    stop: Arc<AtomicBool>,
}

impl Checkpointer {
    /// Checkpoints the database at `path`, starting its WAL over past `wal_max_bytes`
    /// (`WAL_MAX_BYTES`, but for tests).
    pub fn start(path: &Path, wal_max_bytes: u64) -> rusqlite::Result<Checkpointer> {
        let mut conn = Connection::open(path)?;
        let wal = wal_path(path);
        // Its restart holds the writer lock while it waits for readers: not for long.
        conn.busy_handler(Some(retry_every_millisecond::<1_000>))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("eliot-checkpoint".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(EVERY);
                    // A failure (the file gone, a disk error) is the writer's to find and
                    // report at its next commit; this only tries again.
                    let _ = checkpoint(&conn, &wal, wal_max_bytes);
                }
            })
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Checkpointer { stop })
    }
}

/// One checkpoint: a passive one; and when the WAL has grown past `wal_max_bytes`, the
/// database file synced, a passive one again, and a restart.
///
/// The restart holds off the writer until it is done, so it must find little to do. A
/// passive checkpoint under steady writes never copies the very last frames, so SQLite
/// does not sync the database after it: the restart would then sync every page the
/// passive ones wrote (measured: 50 ms and more, every time, with commits waiting). Synced
/// here first, outside any lock, it leaves the restart a few frames (about 2 ms). No
/// restart is tried while a reader holds the passive one back (`HELD_BACK_SHARE`): the
/// WAL grows instead, until that reader is done.
fn checkpoint(conn: &Connection, wal: &Path, wal_max_bytes: u64) -> rusqlite::Result<()> {
    // (busy, frames in the WAL, frames copied into the database)
    let passive = || {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        })
    };
    passive()?;
    if std::fs::metadata(wal).is_ok_and(|m| m.len() > wal_max_bytes) {
        db_file::sync(conn)?;
        let (frames, copied) = passive()?;
        if frames - copied > frames / HELD_BACK_SHARE {
            return Ok(());
        }
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))?;
    }
    Ok(())
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_unending_writes_the_wal_is_started_over_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let limit = 1 << 20;
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
             PRAGMA journal_size_limit = {limit}; CREATE TABLE t (v BLOB NOT NULL);"
        ))
        .unwrap();
        let _checkpointer = Checkpointer::start(&path, limit).unwrap();
        let wal_bytes = || {
            std::fs::metadata(dir.path().join("t.db-wal"))
                .unwrap()
                .len()
        };
        let (mut written, mut last, mut shrank) = (0_u64, 0, false);
        let started = std::time::Instant::now();
        // Commits back to back, never a pause for a passive checkpoint to catch up, until
        // 8 limits' worth was written and the file shrank. Counted in bytes, not seconds:
        // on a busy machine 3 s of writes once came to 5.4 MB, too few to show anything.
        // Without a restart the file only grows; the minute is a deadline, not a measure.
        while !(shrank && written > 8 * limit) && started.elapsed() < Duration::from_secs(60) {
            conn.execute("INSERT INTO t (v) VALUES (zeroblob(16384))", [])
                .unwrap();
            written += 16_384;
            let now = wal_bytes();
            shrank |= now < last;
            last = now;
        }
        assert!(
            shrank,
            "the WAL only grew, to {last} bytes of {written} written"
        );
        // Once started over, the writer's next commit cuts it back to the limit.
        let cut_back = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            conn.execute("INSERT INTO t (v) VALUES (zeroblob(16))", [])
                .unwrap();
            wal_bytes() <= limit
        });
        assert!(cut_back, "the WAL kept {} bytes", wal_bytes());
    }

    /// A reader keeping an old snapshot (a user's long query, an open transaction) stops
    /// the WAL from being started over. The restart must then give up soon, since it holds
    /// off the writer while it waits; once the reader is done, the next one succeeds.
    #[test]
    fn a_reader_keeping_an_old_snapshot_holds_the_restart_back_not_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let wal = dir.path().join("t.db-wal");
        let limit = 64 << 10;
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
                 PRAGMA journal_size_limit = {limit}; CREATE TABLE t (v BLOB NOT NULL);"
            ))
            .unwrap();
        let write = |n: usize| {
            for _ in 0..n {
                writer
                    .execute("INSERT INTO t (v) VALUES (zeroblob(16384))", [])
                    .unwrap();
            }
        };
        let wal_bytes = || std::fs::metadata(&wal).unwrap().len();
        write(8);
        let mut reader = Connection::open(&path).unwrap();
        let snapshot = reader.transaction().unwrap();
        let rows: i64 = snapshot
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 8);
        write(8);
        assert!(wal_bytes() > limit);

        let mut checkpointer = Connection::open(&path).unwrap();
        checkpointer
            .busy_handler(Some(retry_every_millisecond::<1_000>))
            .unwrap();
        let started = std::time::Instant::now();
        checkpoint(&checkpointer, &wal, limit).unwrap();
        let held = started.elapsed();
        // Tried, the restart would wait its whole 1 s for the reader, holding the writer off.
        assert!(held < Duration::from_secs(1), "the restart waited {held:?}");
        write(1);
        assert!(
            wal_bytes() > limit,
            "started over under the reader's snapshot"
        );

        snapshot.finish().unwrap();
        checkpoint(&checkpointer, &wal, limit).unwrap();
        write(1);
        assert!(
            wal_bytes() <= limit,
            "the WAL kept {} bytes once the reader was done",
            wal_bytes()
        );
    }
}
