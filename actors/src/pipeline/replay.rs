//! `Replayer`: takes dead letters up again through today's processors and rules, and
//! stores what is now accepted, its dead letter leaving in the same transaction as its
//! readings come in (`Store::write`). What is refused again stays as it was, and is
//! answered with today's reason; nothing is kept twice.
//!
//! A replay never lets in what its sender could not send today: where devices
//! authenticate (`auth.mode` other than `none`), an authenticated client's client id is
//! its device id, so a replay is bound to the dead letter's client id as its identity
//! (the topic must name that device), and refused if that device is no longer
//! provisioned. With `auth.mode = none` anyone may publish as any device, and a replay
//! is bound to nothing, as its sender would be.
//!
//! The work is bounded: at most `replay.max_ids` ids per call, at most `replay.max_rows`
//! dead letters per call by filter (with a cursor for the rest), taken `STEP` at a time
//! (so that memory holds `STEP` payloads at most), one replay running at a time.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use super::Pipeline;
use crate::ingest::{Message, Process};
use crate::message::{utc_micros, Outcome};
use crate::observe::{Event, Queued, Telemetry};
use crate::settings::Problems;
use crate::store::{
    persist, Amendment, DeadLetterFilter, KeptDeadLetter, LoadDeadLetters, Selection,
};

/// Dead letters taken up per processor request and store request.
const STEP: usize = 32;

/// The `[replay]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaySettings {
    /// Ids one call may name.
    pub max_ids: usize,
    /// Dead letters one call by filter takes up at most; the answer says where to go on.
    pub max_rows: usize,
}

impl ReplaySettings {
    pub fn validate(&self, problems: &mut Problems) {
        problems.check(
            (1..=10_000).contains(&self.max_ids),
            "max_ids",
            "expected 1 to 10000",
        );
        problems.check(
            (1..=100_000).contains(&self.max_rows),
            "max_rows",
            "expected 1 to 100000",
        );
    }
}

/// Who a replayed message is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayIdentity {
    /// Nobody (`auth.mode = none`).
    Unbound,
    /// The dead letter's client id, which must name a provisioned device.
    ClientId,
}

/// What became of one dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// Its readings (this many) are stored, or were already with the same data; it left
    /// the dead letters.
    Accepted { readings: usize },
    /// Refused again, for this reason (today's); it stays as it was.
    Rejected { reason: String },
    /// No such dead letter (any more): never kept, replayed already, or shed.
    Gone,
}

/// One dead letter's replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub id: i64,
    pub outcome: ReplayOutcome,
}

/// What a replay by filter did, and where the next call goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayPage {
    pub replayed: Vec<Replayed>,
    /// More may match past this id: the `after` of the next call. `None`: none left.
    pub next_after: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("{given} ids named, more than the {max} one call may replay (replay.max_ids)")]
    TooManyIds { given: usize, max: usize },
    /// The store could not be read or written. Steps of the call before the failure (of
    /// `STEP` dead letters each) may be committed: replayed again, those answer `Gone`.
    #[error("{0}")]
    NotStored(String),
}

/// Replays dead letters. Cheap to clone: every clone shares the one turn.
#[derive(Clone)]
pub struct Replayer {
    pipeline: Pipeline,
    settings: ReplaySettings,
    identity: ReplayIdentity,
    /// One replay at a time: another waits for its turn.
    turn: Arc<Semaphore>,
    telemetry: Telemetry,
}

impl Replayer {
    pub fn new(
        pipeline: Pipeline,
        settings: ReplaySettings,
        identity: ReplayIdentity,
        telemetry: &Telemetry,
    ) -> Self {
        Replayer {
            pipeline,
            settings,
            identity,
            turn: Arc::new(Semaphore::new(1)),
            telemetry: telemetry.for_actor("replay"),
        }
    }

    pub fn settings(&self) -> &ReplaySettings {
        &self.settings
    }

    /// Replays the dead letters `ids` (each once, in the order given); answers what
    /// became of each.
    pub async fn replay(&self, ids: &[i64]) -> Result<Vec<Replayed>, ReplayError> {
        let max = self.settings.max_ids;
        if ids.len() > max {
            return Err(ReplayError::TooManyIds {
                given: ids.len(),
                max,
            });
        }
        let mut unique = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let _turn = self.turn.acquire().await.expect("the turn is never closed");
        let started = Instant::now();
        let mut replayed = Vec::with_capacity(unique.len());
        for step in unique.chunks(STEP) {
            let kept = self.load(Selection::Ids(step.to_vec())).await?;
            let mut done = self.replay_kept(kept).await?;
            for id in step {
                if !done.iter().any(|r| r.id == *id) {
                    done.push(Replayed {
                        id: *id,
                        outcome: ReplayOutcome::Gone,
                    });
                }
            }
            replayed.extend(done);
        }
        self.report(&replayed, started);
        // In the order the ids were given, each once.
        let mut ordered = Vec::with_capacity(replayed.len());
        for id in ids {
            if let Some(at) = replayed.iter().position(|r| r.id == *id) {
                ordered.push(replayed.swap_remove(at));
            }
        }
        Ok(ordered)
    }

    /// Replays at most `limit` (and `replay.max_rows`) of the dead letters matching
    /// `filter` whose id is above `after`, in id order.
    pub async fn replay_matching(
        &self,
        filter: &DeadLetterFilter,
        after: i64,
        limit: usize,
    ) -> Result<ReplayPage, ReplayError> {
        let limit = limit.clamp(1, self.settings.max_rows);
        let _turn = self.turn.acquire().await.expect("the turn is never closed");
        let started = Instant::now();
        let mut replayed = Vec::new();
        let mut cursor = after;
        let next_after = loop {
            let want = STEP.min(limit - replayed.len());
            // One more than wanted: whether any is left past this page.
            let mut kept = self
                .load(Selection::Matching {
                    filter: filter.clone(),
                    after: cursor,
                    limit: want + 1,
                })
                .await?;
            let more = kept.len() > want;
            kept.truncate(want);
            if let Some(last) = kept.last() {
                cursor = last.id;
            }
            replayed.extend(self.replay_kept(kept).await?);
            if !more {
                break None;
            }
            if replayed.len() >= limit {
                break Some(cursor);
            }
        };
        self.report(&replayed, started);
        Ok(ReplayPage {
            replayed,
            next_after,
        })
    }

    async fn load(&self, selection: Selection) -> Result<Vec<KeptDeadLetter>, ReplayError> {
        self.pipeline
            .store
            .send(LoadDeadLetters(selection))
            .await
            .map_err(|e| ReplayError::NotStored(format!("store writer unavailable: {e}")))?
            .map_err(|e| ReplayError::NotStored(e.0))
    }

    /// Processes `kept` with today's rules and stores what they became; answers each.
    async fn replay_kept(&self, kept: Vec<KeptDeadLetter>) -> Result<Vec<Replayed>, ReplayError> {
        let mut answered = Vec::new();
        let mut messages = Vec::new();
        for dead in kept {
            match self.message(dead) {
                Ok(message) => messages.push(message),
                Err(refused) => answered.push(refused),
            }
        }
        if messages.is_empty() {
            return Ok(answered);
        }
        let ids: Vec<i64> = messages.iter().filter_map(|m| m.replay_of).collect();
        let metrics = &self.pipeline.metrics;
        let processor = self.pipeline.processors.pick().clone();
        let outcomes = processor
            .send(Process {
                messages,
                queued: Queued::new(&metrics.processor_queue, metrics.enabled),
            })
            .await
            .map_err(|e| ReplayError::NotStored(format!("processor unavailable: {e}")))?;
        let mut replayed: Vec<Replayed> = ids
            .iter()
            .zip(&outcomes)
            .map(|(id, outcome)| Replayed {
                id: *id,
                outcome: match outcome {
                    Outcome::Accepted { readings, .. } => ReplayOutcome::Accepted {
                        readings: readings.len(),
                    },
                    Outcome::Rejected(d) => ReplayOutcome::Rejected {
                        reason: d.reason.clone(),
                    },
                },
            })
            .collect();
        let storing = Queued::new(&metrics.store_writer_queue, metrics.enabled);
        let amended = persist(&self.pipeline.store, (outcomes, Vec::new()), storing)
            .await
            .map_err(|e| ReplayError::NotStored(e.0))?;
        for (index, amendment) in amended {
            replayed[index].outcome = match amendment {
                Amendment::StillRefused(reason) => ReplayOutcome::Rejected { reason },
                Amendment::Gone => ReplayOutcome::Gone,
                // Not for a replay: a conflict refuses it again, it is never re-kept; a
                // replay stored as duplicates is accepted, its dead letter gone.
                Amendment::DeadLettered | Amendment::Redelivered | Amendment::Duplicated(_) => {
                    continue
                }
            };
        }
        answered.extend(replayed);
        Ok(answered)
    }

    /// The message `dead` was, as it arrives again; or why it is refused before any rule.
    fn message(&self, dead: KeptDeadLetter) -> Result<Message, Replayed> {
        let refused = |reason: String| Replayed {
            id: dead.id,
            outcome: ReplayOutcome::Rejected { reason },
        };
        let identity = match self.identity {
            ReplayIdentity::Unbound => None,
            ReplayIdentity::ClientId if !dead.provisioned => {
                return Err(refused(format!(
                    "device `{}` is not provisioned (any more): a replay cannot publish as it",
                    crate::ingest::Quoted::from(dead.client_id.as_str())
                )))
            }
            ReplayIdentity::ClientId => Some(Arc::from(dead.client_id.as_str())),
        };
        // Judged against when it first arrived (a reading's time against its receipt).
        let received_at = utc_micros(&dead.received_at)
            .and_then(|micros| {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).ok()
            })
            .ok_or_else(|| {
                refused(format!(
                    "its received_at `{}` is not a time Eliot writes",
                    crate::ingest::Quoted::from(dead.received_at.as_str())
                ))
            })?;
        Ok(Message {
            topic: dead.topic,
            payload: dead.payload,
            client_id: dead.client_id,
            identity,
            received_at,
            redelivered: false,
            replay_of: Some(dead.id),
        })
    }

    fn report(&self, replayed: &[Replayed], started: Instant) {
        let count =
            |f: fn(&ReplayOutcome) -> bool| replayed.iter().filter(|r| f(&r.outcome)).count();
        Event::DeadLettersReplayed {
            accepted: count(|o| matches!(o, ReplayOutcome::Accepted { .. })),
            rejected: count(|o| matches!(o, ReplayOutcome::Rejected { .. })),
            gone: count(|o| matches!(o, ReplayOutcome::Gone)),
            took: started.elapsed(),
        }
        .emit(&self.telemetry);
    }
}
