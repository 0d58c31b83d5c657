//! Sessions as the database keeps them: a row of `sessions` per kept device session
//! (bounded by `store.max_sessions`, its owner the connection that holds it), and a row of
//! `upstream_sessions` per broker and client id of Eliot's that it has held a session for. Each change is one
//! committed transaction: what a CONNACK says rests on it.

use rusqlite::{params, OptionalExtension};

use super::super::database::{naming, Store, StoreError};
use super::SessionRequest;

impl Store {
    /// Records a CONNECT's session and says whether one was present, in one committed
    /// transaction, so the CONNACK's Session Present is true after any crash.
    pub fn open_session(
        &mut self,
        request: &SessionRequest,
        now_s: i64,
    ) -> Result<bool, StoreError> {
        let sqlite = naming(&self.path);
        let tx = self.conn.transaction().map_err(&sqlite)?;
        let stored: Option<(Option<i64>, i64)> = tx
            .query_row(
                "SELECT expiry_s, last_seen_s FROM sessions WHERE client_id = ?1",
                params![request.client_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(&sqlite)?;
        let present = !request.clean_start
            && match stored {
                None => false,
                Some((None, _)) => true,
                Some((Some(expiry), last_seen)) => last_seen + expiry > now_s,
            };
        let kept = match (request.keep, stored) {
            (None, stored) => {
                tx.execute(
                    "DELETE FROM sessions WHERE client_id = ?1",
                    params![request.client_id],
                )
                .map_err(&sqlite)?;
                self.sessions_kept - usize::from(stored.is_some())
            }
            (Some(expiry), stored) => {
                let mut kept = self.sessions_kept + usize::from(stored.is_none());
                if kept > self.max_sessions {
                    // The policy: the least recently seen session makes room.
                    tx.execute(
                        "DELETE FROM sessions WHERE client_id = \
                         (SELECT client_id FROM sessions ORDER BY last_seen_s LIMIT 1)",
                        [],
                    )
                    .map_err(&sqlite)?;
                    kept -= 1;
                }
                tx.execute(
                    "INSERT OR REPLACE INTO sessions (client_id, expiry_s, last_seen_s, owner) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![request.client_id, expiry, now_s, owner(request.owner)],
                )
                .map_err(&sqlite)?;
                kept
            }
        };
        tx.commit().map_err(&sqlite)?;
        self.sessions_kept = kept;
        Ok(present)
    }

    /// Marks the sessions of `connected` devices seen at `now_s`, and purges the v5
    /// sessions that expired more than `grace_s` ago (the grace covers a device seen just
    /// before the last refresh). Answers how many were purged.
    pub fn refresh_sessions(
        &mut self,
        connected: &[String],
        now_s: i64,
        grace_s: i64,
    ) -> Result<usize, StoreError> {
        let sqlite = naming(&self.path);
        let tx = self.conn.transaction().map_err(&sqlite)?;
        {
            let mut seen = tx
                .prepare_cached("UPDATE sessions SET last_seen_s = ?2 WHERE client_id = ?1")
                .map_err(&sqlite)?;
            for client_id in connected {
                seen.execute(params![client_id, now_s]).map_err(&sqlite)?;
            }
        }
        let purged = tx
            .execute(
                "DELETE FROM sessions WHERE expiry_s IS NOT NULL AND last_seen_s + expiry_s + ?2 < ?1",
                params![now_s, grace_s],
            )
            .map_err(&sqlite)?;
        tx.commit().map_err(&sqlite)?;
        self.sessions_kept = self.sessions_kept.saturating_sub(purged);
        Ok(purged)
    }

    /// Marks the end of connection `owner`: its session's expiry counts from here, and is
    /// `new_expiry` if the device's v5 DISCONNECT set one (0: the session ends now). A
    /// session another connection has taken over since is not this one's to end: that
    /// connection's end may come after its successor's CONNECT was recorded.
    pub fn touch_session(
        &mut self,
        (client_id, owner_id): (&str, u64),
        now_s: i64,
        new_expiry: Option<u32>,
    ) -> Result<(), StoreError> {
        let sqlite = naming(&self.path);
        if new_expiry == Some(0) {
            let removed = self
                .conn
                .execute(
                    "DELETE FROM sessions WHERE client_id = ?1 AND owner = ?2",
                    params![client_id, owner(owner_id)],
                )
                .map_err(&sqlite)?;
            self.sessions_kept = self.sessions_kept.saturating_sub(removed);
            return Ok(());
        }
        self.conn
            .execute(
                "UPDATE sessions SET last_seen_s = ?2, expiry_s = coalesce(?3, expiry_s) \
                 WHERE client_id = ?1 AND owner = ?4",
                params![client_id, now_s, new_expiry, owner(owner_id)],
            )
            .map(drop)
            .map_err(&sqlite)
    }
}

impl Store {
    /// Notes a CONNACK from the upstream broker `broker` to Eliot's client `client_id`,
    /// with Session Present = `present`: from then on, the broker holds a session for it.
    /// Answers whether a session it held before, in this run of Eliot or an earlier one,
    /// is gone: what the broker kept for Eliot meanwhile is lost (a possible gap).
    pub fn note_upstream_session(
        &mut self,
        (broker, client_id): (&str, &str),
        present: bool,
        now_s: i64,
    ) -> Result<bool, StoreError> {
        let sqlite = naming(&self.path);
        let held = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO upstream_sessions (broker, client_id, since_s) \
                 VALUES (?1, ?2, ?3)",
                params![broker, client_id, now_s],
            )
            .map_err(&sqlite)?
            == 0;
        Ok(held && !present)
    }
}

/// A connection id as SQLite keeps it (an INTEGER is signed; ids never come near 2^63).
fn owner(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreSettings;
    use std::path::Path;

    fn store(dir: &Path) -> Store {
        Store::open(&StoreSettings {
            max_sessions: 3,
            ..StoreSettings::for_tests(dir)
        })
        .unwrap()
    }

    fn request(clean_start: bool, keep: Option<Option<u32>>) -> SessionRequest {
        SessionRequest {
            client_id: "dev".into(),
            clean_start,
            keep,
            owner: 1,
        }
    }

    #[test]
    fn a_kept_session_is_present_after_reopening_the_database() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!store(dir.path())
            .open_session(&request(false, Some(None)), 100)
            .unwrap());
        // A new Store is what Eliot has after a crash.
        assert!(store(dir.path())
            .open_session(&request(false, Some(None)), 200)
            .unwrap());
        // Clean start discards it, and without `keep` none is left behind.
        assert!(!store(dir.path())
            .open_session(&request(true, None), 300)
            .unwrap());
        assert!(!store(dir.path())
            .open_session(&request(false, None), 400)
            .unwrap());
    }

    #[test]
    fn a_v5_session_expires_its_interval_after_the_connection_ended() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        s.open_session(&request(false, Some(Some(60))), 1_000)
            .unwrap();
        s.touch_session(("dev", 1), 1_100, None).unwrap();
        assert!(s
            .open_session(&request(false, Some(Some(60))), 1_159)
            .unwrap());
        s.touch_session(("dev", 1), 1_200, None).unwrap();
        assert!(!s
            .open_session(&request(false, Some(Some(60))), 1_261)
            .unwrap());
    }

    fn kept(client_id: &str, keep: Option<u32>) -> SessionRequest {
        SessionRequest {
            client_id: client_id.into(),
            clean_start: false,
            keep: Some(keep),
            owner: 1,
        }
    }

    /// Connection 1's late end (its DISCONNECT said: no session after me) comes after
    /// connection 2 took the session over for 600 s: it ends nothing of connection 2's.
    #[test]
    fn a_replaced_connections_end_leaves_its_successors_session_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        s.open_session(&kept("dev", Some(600)), 1_000).unwrap();
        let successor = SessionRequest {
            owner: 2,
            ..kept("dev", Some(600))
        };
        assert!(s.open_session(&successor, 1_001).unwrap());
        s.touch_session(("dev", 1), 1_002, Some(0)).unwrap();
        assert_eq!(count(&s), 1, "still connection 2's");
        s.touch_session(("dev", 2), 1_003, None).unwrap();
        assert!(s.open_session(&kept("dev", Some(600)), 1_500).unwrap());
    }

    fn count(store: &Store) -> i64 {
        store
            .conn
            .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn past_the_cap_the_least_recently_seen_session_makes_room() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        for (t, id) in ["a", "b", "c", "d"].iter().enumerate() {
            s.open_session(&kept(id, None), 100 + t as i64).unwrap();
        }
        assert_eq!(count(&s), 3, "the cap is 3");
        assert_eq!(s.sessions_kept, 3);
        assert!(
            !s.open_session(&kept("a", None), 200).unwrap(),
            "a made room"
        );
        assert!(s.open_session(&kept("d", None), 201).unwrap());
        // The count survives a reopening (it is read back from the table).
        assert_eq!(store(dir.path()).sessions_kept, 3);
    }

    #[test]
    fn connected_sessions_are_refreshed_and_expired_ones_purged() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        s.open_session(&kept("connected", Some(60)), 1_000).unwrap();
        s.open_session(&kept("gone", Some(60)), 1_000).unwrap();
        // Eliot refreshes its connected devices, then is killed at about 5,000.
        let purged = s
            .refresh_sessions(&["connected".to_owned()], 5_000, 60)
            .unwrap();
        assert_eq!(purged, 1, "the other one expired long ago");
        assert_eq!(count(&s), 1);
        // Back 50 s later: the device was seen 50 s ago, within its 60 s.
        assert!(store(dir.path())
            .open_session(&kept("connected", Some(60)), 5_050)
            .unwrap());
    }
}
