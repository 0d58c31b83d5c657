//! The path every message takes, whichever way it came in (a device connection, a will,
//! an upstream connection): a processor, then the store.
//!
//! - `Pipeline` (here): validates messages and commits what they became in one store
//!   request, resolving only after the commit, so that the caller may then ack.
//! - `budget`: the `ByteBudget` of payload bytes held between receipt and commit, which
//!   both ways in draw on, so that a slow store stops the reading of every socket.
//! - `replay`: the `Replayer`, which takes dead letters up again through today's rules,
//!   each leaving the dead letters in the transaction that stores its readings.

mod budget;
mod replay;

use std::future::Future;
use std::sync::Arc;

use actix::Addr;
use bytes::Bytes;
use time::OffsetDateTime;

use crate::ingest::{Message, Process, Processors};
use crate::message::Outcome;
use crate::observe::{Metrics, Queued};
use crate::store::{persist, Amendment, NotStored, StoreWriter};

pub use budget::{ByteBudget, BytePermit};
pub use replay::{
    ReplayError, ReplayIdentity, ReplayOutcome, ReplayPage, ReplaySettings, Replayed, Replayer,
};

/// How a committed message was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    Stored,
    /// Refused, and kept in `dead_letters`.
    DeadLettered,
    /// Refused, and already among the latest dead letters (a DUP re-send): not kept, nor
    /// counted against its device, twice.
    Redelivered,
}

#[derive(Clone)]
pub struct Pipeline {
    processors: Processors,
    store: Addr<StoreWriter>,
    /// Where the depth of both queues is counted.
    metrics: Arc<Metrics>,
}

impl Pipeline {
    pub fn new(processors: Processors, store: Addr<StoreWriter>, metrics: Arc<Metrics>) -> Self {
        Pipeline {
            processors,
            store,
            metrics,
        }
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
        let metrics = self.metrics.clone();
        let processing = Queued::new(&metrics.processor_queue, metrics.enabled);
        async move {
            let outcomes = processor
                .send(Process {
                    messages,
                    queued: processing,
                })
                .await
                .map_err(|e| NotStored(format!("processor unavailable: {e}")))?;
            let mut ingested: Vec<Ingested> = outcomes
                .iter()
                .map(|outcome| match outcome {
                    Outcome::Accepted { .. } => Ingested::Stored,
                    Outcome::Rejected(_) => Ingested::DeadLettered,
                })
                .collect();
            let storing = Queued::new(&metrics.store_writer_queue, metrics.enabled);
            for (index, amendment) in persist(&store, outcomes, storing).await? {
                ingested[index] = match amendment {
                    Amendment::Redelivered => Ingested::Redelivered,
                    // Replays only (`replay.rs`): nothing here is one.
                    Amendment::DeadLettered | Amendment::StillRefused(_) | Amendment::Gone => {
                        Ingested::DeadLettered
                    }
                };
            }
            Ok(ingested)
        }
    }

    /// One message, received now, from `client_id` (authenticated as `identity`, if so).
    pub fn message(
        topic: String,
        payload: Bytes,
        (client_id, identity): (String, Option<Arc<str>>),
        redelivered: bool,
    ) -> Message {
        Message {
            topic,
            payload,
            client_id,
            identity,
            received_at: OffsetDateTime::now_utc(),
            redelivered,
            replay_of: None,
        }
    }
}
