//! Device sessions, kept in the store so that a CONNACK's Session Present is true after
//! any crash: a v5 client that has session state and is told Session Present = 0 must
//! discard it, and with it the messages it had not got acked.
//!
//! `Sessions` is the endpoint's handle: it records sessions through the store writer,
//! which owns the database connection.

use std::future::Future;

use std::time::Instant;

use actix::prelude::*;
use rusqlite::{params, OptionalExtension};

use super::sqlite::{naming, Store, StoreError};
use super::store_writer::{NotStored, StoreWriter};
use crate::observe::Event;

/// A CONNECT's session request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    pub client_id: String,
    /// Clean session (3.1.1) / clean start (5): any stored session is discarded.
    pub clean_start: bool,
    /// Whether the session outlives this connection: `None` no; `Some(None)` for ever
    /// (3.1.1 clean session 0); `Some(Some(s))` until `s` seconds after it ends (5).
    pub keep: Option<Option<u32>>,
}

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
        match request.keep {
            None => tx.execute("DELETE FROM sessions WHERE client_id = ?1", params![request.client_id]),
            Some(expiry) => tx.execute(
                "INSERT OR REPLACE INTO sessions (client_id, expiry_s, last_seen_s) VALUES (?1, ?2, ?3)",
                params![request.client_id, expiry, now_s],
            ),
        }
        .map_err(&sqlite)?;
        tx.commit().map_err(&sqlite)?;
        Ok(present)
    }

    /// Marks the end of a connection: a session's expiry counts from here.
    pub fn touch_session(&mut self, client_id: &str, now_s: i64) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE sessions SET last_seen_s = ?2 WHERE client_id = ?1",
                params![client_id, now_s],
            )
            .map(drop)
            .map_err(naming(&self.path))
    }
}

/// Records a CONNECT's session; answers whether a session was present, once committed.
#[derive(Message)]
#[rtype(result = "Result<bool, NotStored>")]
pub struct OpenSession(pub SessionRequest);

/// A connection with a kept session ended: its expiry counts from now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndSession(pub String);

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Handler<OpenSession> for StoreWriter {
    type Result = Result<bool, NotStored>;

    fn handle(&mut self, msg: OpenSession, _: &mut Context<Self>) -> Self::Result {
        // A session is a write too: a store that cannot record it is behind.
        let started = Instant::now();
        self.progress.received(self.pending_rows + 1, started);
        let opened = match self.store.as_mut() {
            None => Err(NotStored("the database is not open".into())),
            Some(store) => store
                .open_session(&msg.0, unix_now())
                .map_err(|e| NotStored(e.to_string())),
        };
        let now = Instant::now();
        match &opened {
            Ok(_) => self
                .progress
                .committed(now - started, self.pending_rows, now),
            Err(_) => self.progress.settled(self.pending_rows),
        }
        opened
    }
}

impl Handler<EndSession> for StoreWriter {
    type Result = ();

    fn handle(&mut self, msg: EndSession, _: &mut Context<Self>) {
        if let Some(store) = self.store.as_mut() {
            if let Err(e) = store.touch_session(&msg.0, unix_now()) {
                Event::StoreFailed {
                    error: &format!("ending session of {}: {e}", msg.0),
                    requests: 1,
                }
                .emit(&self.telemetry);
            }
        }
    }
}

/// The sessions of connected devices, as the device endpoint and its connections see them.
#[derive(Clone)]
pub struct Sessions {
    writer: Addr<StoreWriter>,
}

impl Sessions {
    pub fn new(writer: Addr<StoreWriter>) -> Self {
        Sessions { writer }
    }

    /// Records a CONNECT's session; resolves to Session Present once committed.
    pub fn open(
        &self,
        request: SessionRequest,
    ) -> impl Future<Output = Result<bool, NotStored>> + 'static {
        let writer = self.writer.clone();
        async move {
            writer
                .send(OpenSession(request))
                .await
                .map_err(|e| NotStored(format!("store writer unavailable: {e}")))?
        }
    }

    /// The connection of a device with a kept session ended.
    pub fn end(&self, client_id: String) {
        let writer = self.writer.clone();
        actix_rt::spawn(async move {
            let _ = writer.send(EndSession(client_id)).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::sqlite::{StoreSettings, Synchronous};
    use super::*;
    use std::path::Path;
    use std::time::Duration;

    fn store(dir: &Path) -> Store {
        Store::open(&StoreSettings {
            data_dir: dir.to_owned(),
            batch_max: 1,
            batch_delay: Duration::from_millis(1),
            mailbox: 1,
            synchronous: Synchronous::Normal,
        })
        .unwrap()
    }

    fn request(clean_start: bool, keep: Option<Option<u32>>) -> SessionRequest {
        SessionRequest {
            client_id: "dev".into(),
            clean_start,
            keep,
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
        s.touch_session("dev", 1_100).unwrap();
        assert!(s
            .open_session(&request(false, Some(Some(60))), 1_159)
            .unwrap());
        s.touch_session("dev", 1_200).unwrap();
        assert!(!s
            .open_session(&request(false, Some(Some(60))), 1_261)
            .unwrap());
    }
}
