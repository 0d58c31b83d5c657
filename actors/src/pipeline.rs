//! The path every message takes, whichever way it came in: a processor, then the store;
//! and the store's record of device sessions.

use std::future::Future;

use actix::Addr;
use bytes::Bytes;
use time::OffsetDateTime;

use crate::processor::{Message, Process, Processors};
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

    /// Validates messages and commits their readings (or dead letters) in one store
    /// request. Resolves `Ok` (with how each was stored, in order) only once the commit
    /// happened: the caller may then ack them.
    pub fn ingest(
        &self,
        messages: Vec<Message>,
    ) -> impl Future<Output = Result<Vec<Ingested>, NotStored>> + 'static {
        let processor = self.processors.pick().clone();
        let store = self.store.clone();
        async move {
            let outcomes = processor
                .send(Process(messages))
                .await
                .map_err(|e| NotStored(format!("processor unavailable: {e}")))?;
            let ingested = outcomes
                .iter()
                .map(|outcome| match outcome {
                    Outcome::Accepted(_) => Ingested::Stored,
                    Outcome::Rejected(_) => Ingested::DeadLettered,
                })
                .collect();
            persist(&store, outcomes).await.map(|()| ingested)
        }
    }

    /// One message, received now, from `client_id`.
    pub fn message(topic: String, payload: Bytes, client_id: String) -> Message {
        Message {
            topic,
            payload,
            client_id,
            received_at: OffsetDateTime::now_utc(),
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
