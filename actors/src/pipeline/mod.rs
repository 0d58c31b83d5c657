//! The path every message takes, whichever way it came in (a device connection, a will,
//! an upstream connection): a processor, then the store.
//!
//! - `Pipeline` (here): validates messages and commits what they became in one store
//!   request, resolving only after the commit, so that the caller may then ack. With the
//!   fleet on, a quarantined device's accepted messages become dead letters before they
//!   are stored; the readings some threshold rule is about are judged by their devices'
//!   shards, and the alert changes go into the same commit (undone if their message was
//!   not stored as judged); and after the commit the fleet is told what each message was
//!   (waiting for room in its shard's mailbox, before the caller may ack: see
//!   `fleet/feed.rs`).
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

use crate::fleet::{FleetFeed, Source};
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
    /// The fleet, told of every committed message (`None`: `fleet.enabled = false`).
    fleet: Option<FleetFeed>,
    /// Which way this pipeline's messages come in: a will's, unless its owner says.
    source: Source,
}

impl Pipeline {
    pub fn new(
        processors: Processors,
        store: Addr<StoreWriter>,
        metrics: Arc<Metrics>,
        fleet: Option<FleetFeed>,
    ) -> Self {
        Pipeline {
            processors,
            store,
            metrics,
            fleet,
            source: Source::Will,
        }
    }

    /// This pipeline, for messages that come in `source`'s way.
    pub fn with_source(&self, source: Source) -> Pipeline {
        Pipeline {
            source,
            ..self.clone()
        }
    }

    /// The fleet, for the connections' own reports (`None`: the fleet is off).
    pub fn fleet(&self) -> Option<&FleetFeed> {
        self.fleet.as_ref()
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
        let (fleet, source) = (self.fleet.clone(), self.source.clone());
        let processing = Queued::new(&metrics.processor_queue, metrics.enabled);
        async move {
            let mut outcomes = processor
                .send(Process {
                    messages,
                    queued: processing,
                })
                .await
                .map_err(|e| NotStored(format!("processor unavailable: {e}")))?;
            if let Some(fleet) = &fleet {
                fleet.quarantine(&mut outcomes);
            }
            let mut notes = fleet.as_ref().map(|f| f.notes(&outcomes));
            let mut ingested: Vec<Ingested> = outcomes
                .iter()
                .map(|outcome| match outcome {
                    Outcome::Accepted { .. } => Ingested::Stored,
                    Outcome::Rejected(_) => Ingested::DeadLettered,
                })
                .collect();
            let judged = match &fleet {
                Some(fleet) => fleet.judge(&outcomes).await,
                None => Vec::new(),
            };
            let tied = judged
                .iter()
                .map(|j| (j.message, j.undo.writes.clone()))
                .collect();
            let storing = Queued::new(&metrics.store_writer_queue, metrics.enabled);
            let amended = match persist(&store, (outcomes, tied), storing).await {
                Ok(amended) => amended,
                Err(failure) => {
                    if let Some(fleet) = &fleet {
                        fleet.unsettled(judged.into_iter().map(|j| j.undo));
                    }
                    return Err(failure);
                }
            };
            if let Some(fleet) = fleet.as_ref().filter(|_| !judged.is_empty()) {
                // The store wrote no change tied to a message it amended.
                let amended_at = |i: usize| amended.iter().any(|(at, _)| *at == i);
                let undone = judged.into_iter().filter(|j| amended_at(j.message));
                fleet.unsettled(undone.map(|j| j.undo));
            }
            for (index, amendment) in amended {
                let note = notes.as_mut().and_then(|n| n.get_mut(index));
                ingested[index] = match amendment {
                    Amendment::Redelivered => {
                        // Kept once, and counted once: the first time.
                        note.map(Option::take);
                        Ingested::Redelivered
                    }
                    Amendment::DeadLettered => {
                        if let Some(Some(note)) = note {
                            note.rejected = true;
                            note.readings.clear();
                        }
                        Ingested::DeadLettered
                    }
                    Amendment::Duplicated(n) => {
                        if let Some(Some(note)) = note {
                            note.duplicates = n;
                        }
                        Ingested::Stored
                    }
                    // Replays only (`replay.rs`): nothing here is one.
                    Amendment::StillRefused(_) | Amendment::Gone => Ingested::DeadLettered,
                };
            }
            if let (Some(fleet), Some(notes)) = (fleet, notes) {
                fleet.observe(&source, notes.into_iter().flatten()).await;
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
