//! Purging a device's readings (`DELETE /devices/{id}?purge=true`): a store-writer
//! request answered once every reading of the device stored before the answer is
//! deleted, and committed. The work is done a bounded step at a time (`readings/purge.rs`),
//! each step a message of the writer's own, so that the connections' requests are
//! committed between steps: a device with millions of readings holds no ack up for long.
//!
//! Its dead letters are kept: they are the record of what it sent that was refused, bounded
//! by the quota, and shed oldest first like any other.

use std::collections::VecDeque;
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::anomalies::purge_anomalies;
use super::database::{naming, Store, StoreError};
use super::readings::PurgeStage;
use super::writer::{FailureKind, NotStored, StoreWriter};
use crate::observe::Event;

/// Purges waiting at most, the one running included; past it a purge is refused.
const MAX_PURGES: usize = 16;

/// Deletes every stored reading of `device_id`; answers how many, once committed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Purge {
    pub device_id: String,
    pub done: oneshot::Sender<Result<u64, NotStored>>,
}

/// Purges devices' readings, from any thread (the HTTP API's `DELETE /devices/{id}?purge`).
#[derive(Clone)]
pub struct Purger(pub(super) Addr<StoreWriter>);

impl Purger {
    pub fn new(writer: Addr<StoreWriter>) -> Self {
        Purger(writer)
    }

    /// Deletes every stored reading of `device_id`; answers how many, once committed.
    pub async fn purge(&self, device_id: String) -> Result<u64, NotStored> {
        purge(&self.0, device_id).await
    }
}

/// Sends a purge to the writer and waits for its answer.
async fn purge(writer: &Addr<StoreWriter>, device_id: String) -> Result<u64, NotStored> {
    let (done, purged) = oneshot::channel();
    writer
        .send(Purge { device_id, done })
        .await
        .map_err(|e| NotStored(format!("store writer unavailable: {e}")))?;
    purged
        .await
        .map_err(|_| NotStored("store writer stopped before the purge was done".into()))?
}

/// A purge under way.
pub struct PurgeJob {
    device_id: String,
    stage: PurgeStage,
    deleted: u64,
    started: Instant,
    done: oneshot::Sender<Result<u64, NotStored>>,
}

impl PurgeJob {
    /// Tells the caller the purge did not finish.
    pub fn fail(self, why: NotStored) {
        let _ = self.done.send(Err(why));
    }
}

/// The purges waiting, the first one running.
pub type Purges = VecDeque<PurgeJob>;

impl Store {
    /// One bounded step of `job` (at most `store.merge_slice` rows); true once it is done.
    fn purge_step(&mut self, job: &mut PurgeJob) -> Result<bool, StoreError> {
        self.check_file()?;
        let rows = self.pace.merge_slice;
        job.deleted += self
            .tiers
            .purge_step(&mut self.conn, &job.device_id, &mut job.stage, rows)
            .map_err(naming(&self.path))?;
        if job.stage == PurgeStage::Done {
            // The device's anomaly scores were about readings that are gone.
            purge_anomalies(&self.conn, &job.device_id).map_err(naming(&self.path))?;
        }
        Ok(job.stage == PurgeStage::Done)
    }
}

/// The writer's own reminder to take the next step.
#[derive(Message)]
#[rtype(result = "()")]
struct PurgeStep;

impl Handler<Purge> for StoreWriter {
    type Result = ();

    fn handle(&mut self, msg: Purge, ctx: &mut Context<Self>) {
        if self.purges.len() >= MAX_PURGES {
            let busy = format!("{MAX_PURGES} purges are waiting already: try again later");
            let _ = msg.done.send(Err(NotStored(busy)));
            return;
        }
        self.purges.push_back(PurgeJob {
            device_id: msg.device_id,
            stage: PurgeStage::Unmerged,
            deleted: 0,
            started: Instant::now(),
            done: msg.done,
        });
        if self.purges.len() == 1 {
            ctx.notify(PurgeStep);
        }
    }
}

impl Handler<PurgeStep> for StoreWriter {
    type Result = ();

    fn handle(&mut self, _: PurgeStep, ctx: &mut Context<Self>) {
        let Some(job) = self.purges.front_mut() else {
            return;
        };
        let step = match self.store.as_mut() {
            None => Err(NotStored("the database is not open".into())),
            Some(store) => store.purge_step(job).map_err(|e| {
                if e.kind() == FailureKind::Broken {
                    self.last_failure = Some(format!("purging readings: {e}"));
                    ctx.stop();
                }
                NotStored(e.to_string())
            }),
        };
        match step {
            Ok(false) => {}
            Ok(true) => {
                let job = self.purges.pop_front().expect("the job stepped");
                Event::DeviceReadingsPurged {
                    device_id: &job.device_id,
                    readings: job.deleted,
                    took: job.started.elapsed(),
                }
                .emit(&self.telemetry);
                let _ = job.done.send(Ok(job.deleted));
            }
            Err(failure) => {
                let job = self.purges.pop_front().expect("the job stepped");
                Event::StoreFailed {
                    error: &format!("purging the readings of a device: {failure}"),
                    requests: 1,
                }
                .emit(&self.telemetry);
                let _ = job.done.send(Err(failure));
            }
        }
        if !self.purges.is_empty() {
            ctx.notify(PurgeStep);
        }
    }
}

#[cfg(test)]
#[path = "purge_tests.rs"]
mod tests;
