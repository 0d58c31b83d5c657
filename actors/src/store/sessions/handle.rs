//! `Sessions`: the device endpoint's (and the upstream connections') handle on sessions.
//! It only sends requests to the store writer, which owns the database connection.

use std::future::Future;

use actix::prelude::*;

use super::super::writer::{NotStored, StoreWriter};
use super::requests::{EndSession, NoteUpstreamSession, OpenSession, RefreshSessions};
use super::SessionRequest;

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

    /// Notes a CONNACK from the upstream broker (see `Store::note_upstream_session`).
    pub fn note_upstream(
        &self,
        (broker, client_id): (String, String),
        present: bool,
    ) -> impl Future<Output = Result<bool, NotStored>> + 'static {
        let writer = self.writer.clone();
        async move {
            let note = NoteUpstreamSession {
                broker,
                client_id,
                present,
            };
            writer
                .send(note)
                .await
                .map_err(|e| NotStored(format!("store writer unavailable: {e}")))?
        }
    }

    /// These connected devices (with kept sessions) were seen now.
    pub fn refresh(&self, connected: Vec<String>) {
        let writer = self.writer.clone();
        actix_rt::spawn(async move {
            let _ = writer.send(RefreshSessions(connected)).await;
        });
    }

    /// Connection `owner` of a device with a kept session ended.
    pub fn end(&self, (client_id, owner): (String, u64), new_expiry: Option<u32>) {
        let writer = self.writer.clone();
        actix_rt::spawn(async move {
            let ended = EndSession {
                client_id,
                owner,
                new_expiry,
            };
            let _ = writer.send(ended).await;
        });
    }
}
