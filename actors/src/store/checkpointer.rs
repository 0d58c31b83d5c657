//! Checkpoints on a thread of their own: copying the WAL into the database (and syncing
//! it) takes up to hundreds of milliseconds with a long WAL, and SQLite's automatic
//! checkpoint would do it inside a commit, holding up every ack waiting on that commit.
//!
//! A passive checkpoint runs beside the writer's commits and the readers' reads, never
//! blocking either; the writer's own automatic checkpoint is off.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is checkpointed.
const EVERY: Duration = Duration::from_millis(250);

/// Past this, the WAL is truncated: a passive checkpoint copies its frames but, under
/// unending writes, never finds the moment to start it over, so it would grow for ever.
/// Truncating waits for the commit in progress, once the frames are mostly copied.
const WAL_MAX_BYTES: u64 = 16 << 20;

/// Runs checkpoints until dropped.
pub struct Checkpointer {
    stop: Arc<AtomicBool>,
}

impl Checkpointer {
    pub fn start(path: &Path) -> rusqlite::Result<Checkpointer> {
        let conn = Connection::open(path)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        conn.busy_timeout(Duration::from_secs(1))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("eliot-checkpoint".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(EVERY);
                    // A failure (the file gone, a disk error) is the writer's to find and
                    // report at its next commit; this only tries again.
                    let long = std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_MAX_BYTES);
                    let mode = if long { "TRUNCATE" } else { "PASSIVE" };
                    let _ =
                        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()));
                }
            })
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Checkpointer { stop })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
