//! The path every message takes, whichever way it came in: a processor, then the store;
//! and the store's record of device sessions.

use std::future::Future;

use actix::Addr;
use bytes::Bytes;
use time::OffsetDateTime;

use crate::processor::{Process, Processors};
use crate::reading::Outcome;
use crate::store::SessionRequest;
use crate::store_writer::{persist, NotStored, OpenSession, StoreWriter, TouchSession};

/// How a committed message was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    Stored,
    /// Refused, and kept in `dead_letters`.
    DeadLettered,
}

#[derive(Clone)]
pub struct Pipeline {
    processors: Processors,
    store: Addr<StoreWriter>,
}

impl Pipeline {
    pub fn new(processors: Processors, store: Addr<StoreWriter>) -> Self {
        Pipeline { processors, store }
    }

    /// Validates one message and commits its readings (or its dead letter). Resolves
    /// `Ok` only once the commit happened: the caller may then ack the message.
    pub fn ingest(
        &self,
        topic: String,
        payload: Bytes,
        client_id: String,
    ) -> impl Future<Output = Result<Ingested, NotStored>> + 'static {
        let processor = self.processors.pick().clone();
        let store = self.store.clone();
        let received_at = OffsetDateTime::now_utc();
        async move {
            let outcome = processor
                .send(Process {
                    topic,
                    payload,
                    client_id,
                    received_at,
                })
                .await
                .map_err(|e| NotStored(format!("processor unavailable: {e}")))?;
            let ingested = match outcome {
                Outcome::Accepted(_) => Ingested::Stored,
                Outcome::Rejected(_) => Ingested::DeadLettered,
            };
            persist(&store, outcome).await.map(|()| ingested)
        }
    }

    /// Records a CONNECT's session in the store; resolves to Session Present once committed.
    pub fn open_session(
        &self,
        request: SessionRequest,
    ) -> impl Future<Output = Result<bool, NotStored>> + 'static {
        let store = self.store.clone();
        async move {
            store
                .send(OpenSession(request))
                .await
                .map_err(|e| NotStored(format!("store writer unavailable: {e}")))?
        }
    }

    /// The connection of a device with a kept session ended.
    pub fn end_session(&self, client_id: String) {
        let store = self.store.clone();
        actix_rt::spawn(async move {
            let _ = store.send(TouchSession(client_id)).await;
        });
    }
}
