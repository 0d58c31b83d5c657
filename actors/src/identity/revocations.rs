//! The revocation log, as a running Eliot reads it: which devices lost their credentials
//! (secret rotated, device removed) since it last looked. The `devices` triggers write
//! `device_revocations` whoever changes the table, so `eliot device rotate` or `remove` in
//! another process is seen here.
//!
//! Reading it is cheap enough to do several times a second with 10,000 devices: one range
//! read on the rowid past the last row seen, on a read-only connection kept open (in WAL
//! mode it never blocks, nor is blocked by, the store writer), and no secret is hashed.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

/// Rows read at most per poll; the rest are read at the next.
const PER_POLL: i64 = 1_000;

/// Why a device's credentials were revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Rotated,
    Removed,
}

impl Cause {
    pub fn name(self) -> &'static str {
        match self {
            Cause::Rotated => "rotated",
            Cause::Removed => "removed",
        }
    }
}

/// One row of the log: `device` lost its credentials at `seq`. It revokes the logins
/// checked before (`Authenticated::checked_at` below `seq`), not those checked after,
/// which were checked against what the rotation or removal left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub seq: i64,
    pub device: String,
    pub cause: Cause,
}

/// What changed since the last poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// These revocations, oldest first (empty: nothing changed).
    Devices(Vec<Revocation>),
    /// Rows were deleted (more than a day old) before this Eliot read them: which devices
    /// changed is unknown, so every authenticated connection is to be closed. `through`:
    /// the last row read, past every row missed.
    Unknown { through: i64 },
}

/// A read-only connection to the log, and the last row seen.
pub struct RevocationLog {
    conn: Connection,
    seen: i64,
}

impl RevocationLog {
    /// Opens the log of database `db`. From `seen` on when given (a restarted endpoint
    /// carries on where it was); else from its newest row: what was revoked before this
    /// Eliot started has no connection here.
    pub fn open(db: &Path, seen: Option<i64>) -> rusqlite::Result<RevocationLog> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(db, flags)?;
        // Short: a poll that cannot read now reads at the next tick.
        conn.busy_timeout(Duration::from_millis(200))?;
        let seen = match seen {
            Some(seen) => seen,
            None => conn.query_row(
                "SELECT coalesce(max(seq), 0) FROM device_revocations",
                [],
                |r| r.get(0),
            )?,
        };
        Ok(RevocationLog { conn, seen })
    }

    /// The last row seen.
    pub fn seen(&self) -> i64 {
        self.seen
    }

    /// The revocations past the last seen (at most `PER_POLL` of them).
    pub fn poll(&mut self) -> rusqlite::Result<Revoked> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, device_id, cause FROM device_revocations \
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt
            .query_map([self.seen, PER_POLL], |r| {
                let cause = match r.get::<_, String>(2)?.as_str() {
                    "removed" => Cause::Removed,
                    _ => Cause::Rotated,
                };
                Ok(Revocation {
                    seq: r.get(0)?,
                    device: r.get(1)?,
                    cause,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        drop(stmt);
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(Revoked::Devices(Vec::new()));
        };
        // Sequence numbers are consecutive (AUTOINCREMENT, one writer at a time): a gap
        // after the last seen means rows were deleted unread.
        let missed = first.seq != self.seen + 1 && self.missed_rows()?;
        self.seen = last.seq;
        if missed {
            return Ok(Revoked::Unknown { through: last.seq });
        }
        Ok(Revoked::Devices(rows))
    }

    /// Whether the oldest row kept is past the one after the last seen.
    fn missed_rows(&self) -> rusqlite::Result<bool> {
        let oldest: Option<i64> = self
            .conn
            .query_row("SELECT min(seq) FROM device_revocations", [], |r| r.get(0))
            .optional()?
            .flatten();
        Ok(oldest.is_some_and(|oldest| oldest > self.seen + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::credentials;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("eliot.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL").unwrap();
        conn.execute_batch(crate::store::DEVICES_TABLE).unwrap();
        (dir, conn)
    }

    #[test]
    fn rotations_and_removals_are_read_once_in_order_from_where_the_log_was_opened() {
        let (dir, conn) = db();
        let path = dir.path().join("eliot.db");
        credentials::add(&conn, "before").unwrap();
        credentials::remove(&conn, "before").unwrap();
        let mut log = RevocationLog::open(&path, None).unwrap();
        assert_eq!(log.poll().unwrap(), Revoked::Devices(vec![]), "from now on");
        credentials::add(&conn, "robot_1").unwrap();
        credentials::add_certificate_only(&conn, "robot_2").unwrap();
        credentials::rotate(&conn, "robot_1").unwrap();
        credentials::remove(&conn, "robot_2").unwrap();
        let revocation = |seq, device: &str, cause| Revocation {
            seq,
            device: device.to_owned(),
            cause,
        };
        // Row 1 (`before` removed) was there before the log was opened.
        let expected = vec![
            revocation(2, "robot_1", Cause::Rotated),
            revocation(3, "robot_2", Cause::Removed),
        ];
        assert_eq!(log.poll().unwrap(), Revoked::Devices(expected));
        assert_eq!(log.poll().unwrap(), Revoked::Devices(vec![]));
        let reopened = RevocationLog::open(&path, Some(log.seen())).unwrap();
        assert_eq!(reopened.seen(), log.seen());
    }

    #[test]
    fn rows_deleted_unread_make_every_connection_suspect() {
        let (dir, conn) = db();
        let path = dir.path().join("eliot.db");
        let mut log = RevocationLog::open(&path, None).unwrap();
        for device in ["robot_1", "robot_2"] {
            credentials::add(&conn, device).unwrap();
            credentials::remove(&conn, device).unwrap();
        }
        conn.execute(
            "DELETE FROM device_revocations WHERE device_id = 'robot_1'",
            [],
        )
        .unwrap();
        assert_eq!(log.poll().unwrap(), Revoked::Unknown { through: 2 });
        assert_eq!(log.poll().unwrap(), Revoked::Devices(vec![]));
    }
}
