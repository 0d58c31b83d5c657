//! The store writer's own work between commits: merging the log into chunks, a slice at
//! a time, and the retention's check. One step follows each commit (so merging keeps pace
//! with writing: a slice holds more rows than a batch), and a timer runs steps while no
//! device writes.
//!
//! A sealed generation must be wholly merged before the next one is sealed, so memory
//! holds two generations at most: when the active one is full again before that, steps
//! run back to back until it is, and meanwhile the writer takes no request
//! (backpressure, as for a slow commit).

use std::time::{Duration, Instant};

use actix::prelude::*;

use super::failure::FailureKind;
use super::store_writer::StoreWriter;
use crate::observe::Event;
use crate::supervision::catch_panic;

/// How often upkeep runs while no commit triggers it.
pub const UPKEEP_WHEN_IDLE: Duration = Duration::from_millis(100);

impl StoreWriter {
    /// Runs upkeep steps: one, or as many as it takes to finish a generation that holds up
    /// the next. A failure is logged; a broken database restarts the writer, as a failed
    /// commit does, and anything else is tried again at the next step.
    pub(super) fn upkeep(&mut self, ctx: &mut Context<Self>) {
        let started = Instant::now();
        loop {
            let Some(store) = self.store.as_mut() else {
                return;
            };
            if !store.wants_upkeep() {
                break;
            }
            let step = catch_panic(|| store.upkeep()).map_err(|panic| format!("panic: {panic}"));
            match step {
                Ok(Ok(upkeep)) => {
                    if upkeep.generation_done {
                        Event::GenerationMerged {
                            readings: upkeep.merged,
                            took: started.elapsed(),
                        }
                        .emit(&self.telemetry);
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
        if let Some(store) = &self.store {
            self.progress.set_shape(store.shape());
        }
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
            version: super::schema::VERSION,
            migrated_from: store.migrated_from(),
        }
        .emit(&self.telemetry);
        self.progress.set_shape(store.shape());
    }
}
