//! What the store writer is asked about sessions, and how it answers: each request runs
//! on the `Store` the writer owns, and a session opened or an upstream session noted is
//! answered once committed. A refresh or an end is answered by nobody: one that fails
//! is logged, and the session keeps the last time recorded for it.

use std::time::Instant;

use actix::prelude::*;

use super::super::writer::{NotStored, StoreWriter};
use super::{SessionRequest, SESSION_REFRESH};
use crate::observe::Event;

/// Records a CONNECT's session; answers whether a session was present, once committed.
#[derive(Message)]
#[rtype(result = "Result<bool, NotStored>")]
pub struct OpenSession(pub SessionRequest);

/// A CONNACK from an upstream broker: answers whether a session it held is gone.
#[derive(Message)]
#[rtype(result = "Result<bool, NotStored>")]
pub struct NoteUpstreamSession {
    pub broker: String,
    pub client_id: String,
    pub present: bool,
}

impl Handler<NoteUpstreamSession> for StoreWriter {
    type Result = Result<bool, NotStored>;

    fn handle(&mut self, msg: NoteUpstreamSession, _: &mut Context<Self>) -> Self::Result {
        let key = (msg.broker.as_str(), msg.client_id.as_str());
        match self.store.as_mut() {
            None => Err(NotStored("the database is not open".into())),
            Some(store) => store
                .note_upstream_session(key, msg.present, unix_now())
                .map_err(|e| NotStored(e.to_string())),
        }
    }
}

/// These connected devices were seen now; purge what expired.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RefreshSessions(pub Vec<String>);

/// A connection with a kept session ended: its expiry counts from now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndSession {
    pub client_id: String,
    /// The connection that ended.
    pub owner: u64,
    /// A new Session Expiry Interval from the device's v5 DISCONNECT.
    pub new_expiry: Option<u32>,
}

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

impl Handler<RefreshSessions> for StoreWriter {
    type Result = ();

    fn handle(&mut self, msg: RefreshSessions, _: &mut Context<Self>) {
        let Some(store) = self.store.as_mut() else {
            return;
        };
        let grace = i64::try_from(SESSION_REFRESH.as_secs()).unwrap_or(i64::MAX);
        if let Err(e) = store.refresh_sessions(&msg.0, unix_now(), grace) {
            Event::StoreFailed {
                error: &format!("refreshing sessions: {e}"),
                requests: 1,
            }
            .emit(&self.telemetry);
        }
    }
}

impl Handler<EndSession> for StoreWriter {
    type Result = ();

    fn handle(&mut self, msg: EndSession, _: &mut Context<Self>) {
        if let Some(store) = self.store.as_mut() {
            let ended = (msg.client_id.as_str(), msg.owner);
            if let Err(e) = store.touch_session(ended, unix_now(), msg.new_expiry) {
                Event::StoreFailed {
                    error: &format!("ending session of {}: {e}", msg.client_id),
                    requests: 1,
                }
                .emit(&self.telemetry);
            }
        }
    }
}
