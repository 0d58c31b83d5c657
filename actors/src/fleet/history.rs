//! A device's history read back for its detectors after a restart (`anomalies.rs`): at
//! its first reading, its newest `anomaly.history` readings received before the shard
//! loaded are read with the store's `Reader` on the blocking pool, never on the shard's
//! thread, `MAX_READS` at a time; the detectors learn them, then score what waited.

use std::collections::VecDeque;

use actix::prelude::*;

use super::anomalies::{Past, Scored};
use super::shard::FleetShard;
use super::state::DeviceId;
use crate::message::{format_micros, utc_micros};
use crate::store::Reader;

/// History reads in flight per shard at most.
const MAX_READS: usize = 2;

pub struct Histories {
    reader: Reader,
    /// Devices waiting for a read, oldest first (each once: its detectors are made once).
    wanted: VecDeque<DeviceId>,
    in_flight: usize,
    /// When the shard loaded its devices, as stored times are written: the history is what
    /// was received before.
    loaded_at: String,
}

impl Histories {
    pub fn new(reader: Reader) -> Histories {
        Histories {
            reader,
            wanted: VecDeque::new(),
            in_flight: 0,
            loaded_at: String::new(),
        }
    }

    pub fn loaded(&mut self, now: i64) {
        self.loaded_at = format_micros(now);
    }

    pub fn want(&mut self, id: DeviceId) {
        self.wanted.push_back(id);
    }

    /// The shard restarts: its devices (and their waiting detectors) are reloaded afresh.
    /// Reads in flight end in no device waiting for them.
    pub fn clear(&mut self) {
        self.wanted.clear();
        self.in_flight = 0;
    }
}

/// The device's readings received before `loaded_at`, oldest first, at most `count`.
fn read(reader: &Reader, device: &str, count: usize, loaded_at: &str) -> Vec<Past> {
    let Ok(newest_first) = reader.last(device, count) else {
        return Vec::new();
    };
    let mut history: Vec<Past> = newest_first
        .into_iter()
        .filter(|r| r.received_at.as_str() < loaded_at)
        .filter_map(|r| {
            Some(Past {
                ts: utc_micros(&r.timestamp)?,
                sensor_type: r.sensor_type,
                data: r.data,
            })
        })
        .collect();
    history.reverse();
    history
}

impl FleetShard {
    /// Starts the history reads wanted, as many as may be in flight.
    pub(super) fn read_histories(&mut self, ctx: &mut Context<Self>) {
        let Some(count) = self.detection.as_ref().map(|d| d.history) else {
            return;
        };
        while self.histories.in_flight < MAX_READS {
            let Some(id) = self.histories.wanted.pop_front() else {
                return;
            };
            self.histories.in_flight += 1;
            let reader = self.histories.reader.clone();
            let loaded_at = self.histories.loaded_at.clone();
            let device = id.clone();
            tokio::task::spawn_blocking(move || read(&reader, &device, count, &loaded_at))
                .into_actor(self)
                .map(move |history, shard, ctx| {
                    // (A read from before a restart of the shard may end after `clear`.)
                    shard.histories.in_flight = shard.histories.in_flight.saturating_sub(1);
                    // A read that failed (or panicked): on without the history.
                    shard.learnt(&id, history.unwrap_or_default());
                    shard.read_histories(ctx);
                })
                .spawn(ctx);
        }
    }

    /// The device's history came: its detectors learn it and score what waited.
    fn learnt(&mut self, id: &DeviceId, history: Vec<Past>) {
        let Some(detection) = self.detection.clone() else {
            return;
        };
        let mut scored = Scored::default();
        self.book.update(id, |device| {
            if let Some(anomalies) = device.anomalies.as_mut() {
                anomalies.learnt(&detection, history, &mut scored);
            }
        });
        if scored != Scored::default() {
            self.scored(id, scored);
        }
    }
}
