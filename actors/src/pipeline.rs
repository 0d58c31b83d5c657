//! The path every message takes, whichever way it came in: a processor, then the store.

use std::future::Future;

use actix::Addr;
use bytes::Bytes;
use time::OffsetDateTime;

use crate::processor::{Process, Processors};
use crate::store_writer::{persist, Committed, NotStored, StoreWriter};

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
    ) -> impl Future<Output = Committed> + 'static {
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
            persist(&store, outcome).await
        }
    }
}
