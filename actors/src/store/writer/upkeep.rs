//! The store writer's own work between commits: merging the log into chunks, a slice at
//! a time, and the retention's check. One step follows each commit, merging twice the
//! rows the commit wrote (so merging keeps pace with writing, and a small commit is not
//! followed by a long merge: acks wait for neither), and a timer runs full slices while no
//! device writes.
//!
//! A sealed generation must be wholly merged before the next one is sealed, so memory
//! holds two generations at most: when the active one is full again before that, steps
//! run back to back until it is, and meanwhile the writer takes no request
//! (backpressure, as for a slow commit).

use std::time::Duration;

use actix::prelude::*;

use super::failure::FailureKind;
use super::store_writer::StoreWriter;
use crate::observe::Event;
use crate::supervision::catch_panic;

/// How often upkeep runs full slices while no commit happened in between (a full slice
/// takes tens of milliseconds at 10,000 devices: it must not run between busy commits).
pub const UPKEEP_WHEN_IDLE: Duration = Duration::from_millis(100);

/// Rows merged after a commit of `committed` rows: twice as many, so that a sealed
/// generation is merged before the active one fills; at least a few hundred, so that tiny
/// commits do not make tiny slices.
pub fn merge_after(committed: usize) -> usize {
    committed.saturating_mul(2).max(256)
}

impl StoreWriter {
    /// Runs upkeep steps: one merging at most `rows`, or as many full slices as it takes
    /// to finish a generation that holds up the next. A failure is logged; a broken
    /// database restarts the writer, as a failed commit does, and anything else is tried
    /// again at the next step.
    pub(super) fn upkeep(&mut self, mut rows: usize, ctx: &mut Context<Self>) {
        loop {
            let Some(store) = self.store.as_mut() else {
                return;
            };
            if !store.wants_upkeep() {
                break;
            }
            let step =
                catch_panic(|| store.upkeep(rows)).map_err(|panic| format!("panic: {panic}"));
            rows = usize::MAX;
            match step {
                Ok(Ok(upkeep)) => {
                    if let Some((readings, took)) = upkeep.generation_done {
                        Event::GenerationMerged { readings, took }.emit(&self.telemetry);
                    }
                    if !upkeep.expired.is_empty() {
                        Event::ChunksExpired {
                            chunks: upkeep.expired.len(),
                            readings: upkeep.expired.iter().map(|c| c.rows.max(0) as u64).sum(),
                            retention: self.settings.retention.unwrap_or_default(),
                        }
                        .emit(&self.telemetry);
                    }
                    if !store.must_finish_generation() {
                        break;
                    }
                }
                Ok(Err(error)) => {
                    let broken = error.kind() == FailureKind::Broken;
                    let error = format!("merging the log into a chunk: {error}");
                    self.failed_upkeep(&error, broken, ctx);
                    break;
                }
                Err(panic) => {
                    self.failed_upkeep(&panic, true, ctx);
                    break;
                }
            }
        }
        self.show_shape();
    }

    /// What the store holds, to `/health` and to the live gauges of `/metrics`.
    fn show_shape(&self) {
        let Some(store) = &self.store else {
            return;
        };
        let shape = store.shape();
        let metrics = self.telemetry.metrics();
        metrics
            .store_unmerged_readings
            .set(shape.unmerged_readings as i64);
        metrics
            .store_unmerged_bytes
            .set(shape.unmerged_bytes as i64);
        metrics.store_wal_bytes.set(shape.wal_bytes as i64);
        self.progress.set_shape(shape);
    }

    fn failed_upkeep(&mut self, error: &str, broken: bool, ctx: &mut Context<Self>) {
        Event::StoreFailed { error, requests: 0 }.emit(&self.telemetry);
        if broken {
            self.last_failure = Some(error.to_owned());
            ctx.stop();
        }
    }

    /// The store opened (or reopened): what schema it found, and what it holds.
    pub(super) fn opened(&self) {
        let Some(store) = &self.store else {
            return;
        };
        Event::StoreOpened {
            version: super::super::database::SCHEMA_VERSION,
            migrated_from: store.migrated_from(),
        }
        .emit(&self.telemetry);
        self.show_shape();
    }
}
