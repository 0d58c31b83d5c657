//! The `[fleet]` section: how many shards own the devices, when a device is late or
//! offline by its own rhythm, what the quality signals tolerate, when a device is
//! quarantined, and how device state is persisted.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ingest::TopicPattern;
use crate::settings::Problems;

/// The `[fleet]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSettings {
    /// False: no fleet is started, the pipeline tells it nothing, and no device state is
    /// kept or quarantine applied (the benchmark measures the fleet's cost this way).
    pub enabled: bool,
    /// Shard actors owning the devices (a device's shard: a hash of its id).
    pub shards: usize,
    /// Capacity of each shard's mailbox, in updates (each carries a turn's messages of a
    /// connection). When full, the pipeline waits for room before it answers (and the
    /// acks with it): nothing is dropped.
    pub mailbox: usize,
    /// A device is late once silent for `late_factor` × its usual interval (plus four
    /// times the interval's spread), never sooner than `late_floor`.
    pub late_factor: f64,
    #[serde(with = "humantime_serde")]
    pub late_floor: Duration,
    /// A device with no live connection (the upstream mode) is offline once silent for
    /// `offline_factor` × its usual interval, never sooner than `offline_floor` (nor
    /// before then, while its rhythm is not yet known).
    pub offline_factor: f64,
    #[serde(with = "humantime_serde")]
    pub offline_floor: Duration,
    /// Intervals seen before a device's rhythm is trusted: until then it is never late.
    pub min_samples: u32,
    /// A reading whose time is more than this past its receipt counts as a future
    /// timestamp (validation refuses beyond `ingest.max_future_skew`).
    #[serde(with = "humantime_serde")]
    pub future_tolerance: Duration,
    /// A device whose rolling rejection rate reaches this (0 to 1; 0: never) after
    /// `quarantine_min_messages` messages is quarantined.
    pub quarantine_rejection_rate: f64,
    pub quarantine_min_messages: u64,
    /// A device whose rolling clock skew (receipt − reading time) exceeds this, either
    /// way, after `min_samples` readings is quarantined (0: never).
    #[serde(with = "humantime_serde")]
    pub quarantine_max_skew: Duration,
    /// How long a quarantine lasts unless released first (0: until released).
    #[serde(with = "humantime_serde")]
    pub quarantine_duration: Duration,
    /// Devices tracked at most; past it, new devices are not tracked (counted, and
    /// logged once).
    pub max_devices: usize,
    /// How often each shard hands its new status events, and the rows of devices whose
    /// status changed, to the store writer.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// How long a device that only progressed (counts, quality, last readings, last seen)
    /// waits before its row is written: its progress since then goes in that one write.
    #[serde(with = "humantime_serde")]
    pub state_interval: Duration,
    /// Status events a shard may hold before they are written; past it the oldest are
    /// dropped (and counted).
    pub max_pending_events: usize,
    /// Upstream mode: the topic pattern of the devices' status (`online`/`offline`, e.g.
    /// their wills), e.g. `devices/{device_id}/status`, subscribed with the telemetry
    /// topics; empty: none (the default).
    pub status_topic: String,
}

impl FleetSettings {
    pub fn validate(&self, problems: &mut Problems) {
        problems.check(
            (1..=64).contains(&self.shards),
            "shards",
            "expected 1 to 64",
        );
        problems.at_least("mailbox", self.mailbox, 1);
        problems.at_least("late_factor", self.late_factor, 1.0);
        problems.at_least("offline_factor", self.offline_factor, 1.0);
        problems.positive("late_floor", self.late_floor);
        problems.ordered(
            ("late_floor", self.late_floor),
            ("offline_floor", self.offline_floor),
        );
        problems.at_least("min_samples", self.min_samples, 1);
        problems.check(
            (0.0..=1.0).contains(&self.quarantine_rejection_rate),
            "quarantine_rejection_rate",
            "expected 0 to 1",
        );
        problems.at_least("quarantine_min_messages", self.quarantine_min_messages, 1);
        problems.at_least("max_devices", self.max_devices, 1);
        problems.positive("flush_interval", self.flush_interval);
        problems.positive("state_interval", self.state_interval);
        problems.at_least("max_pending_events", self.max_pending_events, 1);
        if self.status_on() {
            if let Err(e) = TopicPattern::parse(&self.status_topic) {
                problems.check(false, "status_topic", &format!("{e}, or empty (none)"));
            }
        }
    }

    fn status_on(&self) -> bool {
        self.enabled && !self.status_topic.is_empty()
    }

    /// The status topic's pattern, if the fleet is on and one is set.
    pub fn status_pattern(&self) -> Option<TopicPattern> {
        self.status_on()
            .then(|| TopicPattern::parse(&self.status_topic).ok())
            .flatten()
    }
}

#[cfg(test)]
impl FleetSettings {
    pub fn for_tests() -> FleetSettings {
        FleetSettings {
            enabled: true,
            shards: 2,
            mailbox: 64,
            late_factor: 3.0,
            late_floor: Duration::from_millis(500),
            offline_factor: 10.0,
            offline_floor: Duration::from_secs(60),
            min_samples: 5,
            future_tolerance: Duration::from_secs(5),
            quarantine_rejection_rate: 0.5,
            quarantine_min_messages: 20,
            quarantine_max_skew: Duration::from_secs(3600),
            quarantine_duration: Duration::from_secs(600),
            max_devices: 1000,
            flush_interval: Duration::from_millis(100),
            state_interval: Duration::from_millis(100),
            max_pending_events: 100,
            status_topic: String::new(),
        }
    }
}
