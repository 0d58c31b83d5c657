//! The events of what an operator changes: dead letters replayed, a device's readings
//! purged.

use std::time::Duration;

use slog::{info, Logger};

use super::values::{micros, Clean};
use super::Observe;
use crate::observe::Metrics;

/// One replay call ended: how many of the dead letters it took up are now stored, were
/// refused again (they stay), or were gone.
pub struct DeadLettersReplayed {
    pub accepted: usize,
    pub rejected: usize,
    pub gone: usize,
    pub took: Duration,
}

impl Observe for DeadLettersReplayed {
    const NAME: &'static str = "dead_letters_replayed";
    const MOVES: &'static [&'static str] = &["eliot_dead_letters_replayed_total"];

    fn log(&self, log: &Logger) {
        let DeadLettersReplayed {
            accepted,
            rejected,
            gone,
            took,
        } = *self;
        info!(log, "dead letters replayed";
            "event" => Self::NAME, "accepted" => accepted, "rejected" => rejected,
            "gone" => gone, "duration_us" => micros(took))
    }

    fn count(&self, m: &Metrics) {
        let replayed = &m.dead_letters_replayed;
        for (outcome, n) in [
            ("accepted", self.accepted),
            ("rejected", self.rejected),
            ("gone", self.gone),
        ] {
            replayed
                .get_or_create(&[("outcome", outcome)])
                .inc_by(n as u64);
        }
    }
}

/// Every stored reading of a device was deleted (`DELETE /devices/{id}?purge=true`).
pub struct DeviceReadingsPurged<'a> {
    pub device_id: &'a str,
    pub readings: u64,
    pub took: Duration,
}

impl Observe for DeviceReadingsPurged<'_> {
    const NAME: &'static str = "device_readings_purged";
    const MOVES: &'static [&'static str] = &["eliot_readings_purged_total"];

    fn log(&self, log: &Logger) {
        info!(log, "a device's readings purged";
            "event" => Self::NAME, "device_id" => %Clean(self.device_id),
            "readings" => self.readings, "duration_us" => micros(self.took))
    }

    fn count(&self, m: &Metrics) {
        m.readings_purged.inc_by(self.readings);
    }
}
