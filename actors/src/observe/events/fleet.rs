//! The fleet's events: a device's status changed (online, late, offline, quarantined), a
//! shard loaded or dropped its devices, a device was forgotten, the fleet is full, and
//! updates or events the fleet could not keep.

use slog::{info, warn, Logger};

use super::values::Clean;
use super::Observe;
use crate::observe::Metrics;

/// The statuses, in the order the fleet counts them (`eliot_devices{status}`).
pub const DEVICE_STATUSES: [&str; 4] = ["online", "late", "offline", "quarantined"];

/// A device's status changed; `from` is `None` for a device just added.
pub struct DeviceStatusChanged<'a> {
    pub device_id: &'a str,
    pub from: Option<&'static str>,
    pub to: &'static str,
    pub reason: &'a str,
}

impl Observe for DeviceStatusChanged<'_> {
    const NAME: &'static str = "device_status_changed";
    const MOVES: &'static [&'static str] = &["eliot_device_status_changes_total", "eliot_devices"];

    fn log(&self, log: &Logger) {
        let DeviceStatusChanged {
            device_id,
            from,
            to,
            reason,
        } = *self;
        info!(log, "device status changed";
            "event" => Self::NAME, "device_id" => %Clean(device_id),
            "from" => from.unwrap_or("none"), "to" => to, "reason" => %Clean(reason))
    }

    fn count(&self, m: &Metrics) {
        m.device_status_changes
            .get_or_create(&[("to", self.to)])
            .inc();
        if let Some(from) = self.from {
            m.devices.get_or_create(&[("status", from)]).dec();
        }
        m.devices.get_or_create(&[("status", self.to)]).inc();
    }
}

/// A fleet shard loaded its devices (at start, or after a restart): how many per status.
pub struct FleetLoaded {
    pub shard: usize,
    pub devices: [i64; 4],
}

impl Observe for FleetLoaded {
    const NAME: &'static str = "fleet_loaded";
    const MOVES: &'static [&'static str] = &["eliot_devices"];

    fn log(&self, log: &Logger) {
        let [online, late, offline, quarantined] = self.devices;
        info!(log, "fleet shard loaded its devices";
            "event" => Self::NAME, "shard" => self.shard, "online" => online, "late" => late,
            "offline" => offline, "quarantined" => quarantined)
    }

    fn count(&self, m: &Metrics) {
        for (status, n) in DEVICE_STATUSES.iter().zip(self.devices) {
            m.devices.get_or_create(&[("status", *status)]).inc_by(n);
        }
    }
}

/// A fleet shard restarts: the devices it held are dropped, to be loaded again.
pub struct FleetUnloaded {
    pub shard: usize,
    pub devices: [i64; 4],
}

impl Observe for FleetUnloaded {
    const NAME: &'static str = "fleet_unloaded";
    const MOVES: &'static [&'static str] = &["eliot_devices"];

    fn log(&self, log: &Logger) {
        let total: i64 = self.devices.iter().sum();
        warn!(log, "fleet shard restarting: reloading its devices";
            "event" => Self::NAME, "shard" => self.shard, "devices" => total)
    }

    fn count(&self, m: &Metrics) {
        for (status, n) in DEVICE_STATUSES.iter().zip(self.devices) {
            m.devices.get_or_create(&[("status", *status)]).dec_by(n);
        }
    }
}

/// A deleted device was dropped from the fleet (its events are kept).
pub struct DeviceForgotten<'a> {
    pub device_id: &'a str,
    pub status: &'static str,
}

impl Observe for DeviceForgotten<'_> {
    const NAME: &'static str = "device_forgotten";
    const MOVES: &'static [&'static str] = &["eliot_devices"];

    fn log(&self, log: &Logger) {
        info!(log, "device forgotten by the fleet";
            "event" => Self::NAME, "device_id" => %Clean(self.device_id), "status" => self.status)
    }

    fn count(&self, m: &Metrics) {
        m.devices.get_or_create(&[("status", self.status)]).dec();
    }
}

/// `fleet.max_devices` was reached: new devices are not tracked (logged once; counted
/// in `eliot_fleet_untracked_total` by the fleet).
pub struct FleetFull {
    pub max_devices: usize,
}

impl Observe for FleetFull {
    const NAME: &'static str = "fleet_full";
    const MOVES: &'static [&'static str] = &[];

    fn log(&self, log: &Logger) {
        warn!(log, "the fleet tracks fleet.max_devices devices: new devices are not tracked";
            "event" => Self::NAME, "max_devices" => self.max_devices)
    }

    fn count(&self, _: &Metrics) {}
}

/// A shard held `fleet.max_pending_events` unwritten status events: the oldest went.
pub struct DeviceEventsDropped {
    pub dropped: usize,
}

impl Observe for DeviceEventsDropped {
    const NAME: &'static str = "device_events_dropped";
    const MOVES: &'static [&'static str] = &["eliot_device_events_dropped_total"];

    fn log(&self, log: &Logger) {
        warn!(log, "status events not written: the store writer is behind";
            "event" => Self::NAME, "dropped" => self.dropped)
    }

    fn count(&self, m: &Metrics) {
        m.device_events_dropped.inc_by(self.dropped as u64);
    }
}

/// A reading's field scored at or above `anomaly.floor`: kept (stored with the reading's
/// key), counted.
pub struct AnomalyFound<'a> {
    pub device_id: &'a str,
    pub sensor_type: &'a str,
    pub field: &'a str,
    pub score: f64,
}

impl Observe for AnomalyFound<'_> {
    const NAME: &'static str = "anomaly_found";
    const MOVES: &'static [&'static str] = &["eliot_anomalies_total"];

    fn log(&self, log: &Logger) {
        info!(log, "anomaly";
            "event" => Self::NAME, "device_id" => %Clean(self.device_id),
            "sensor_type" => %Clean(self.sensor_type), "field" => %Clean(self.field),
            "score" => self.score)
    }

    fn count(&self, m: &Metrics) {
        m.anomalies.inc();
    }
}

/// `anomaly.max_series` was reached: new series are not scored (logged once; counted in
/// `eliot_anomaly_series_untracked_total` by the fleet).
pub struct AnomalySeriesFull {
    pub max_series: usize,
}

impl Observe for AnomalySeriesFull {
    const NAME: &'static str = "anomaly_series_full";
    const MOVES: &'static [&'static str] = &[];

    fn log(&self, log: &Logger) {
        warn!(log, "anomaly.max_series series are scored: new series are not";
            "event" => Self::NAME, "max_series" => self.max_series)
    }

    fn count(&self, _: &Metrics) {}
}

/// A shard held `anomaly.max_pending` unwritten anomaly scores: the oldest went.
pub struct AnomaliesDropped {
    pub dropped: usize,
}

impl Observe for AnomaliesDropped {
    const NAME: &'static str = "anomalies_dropped";
    const MOVES: &'static [&'static str] = &["eliot_anomalies_dropped_total"];

    fn log(&self, log: &Logger) {
        warn!(log, "anomaly scores not written: the store writer is behind";
            "event" => Self::NAME, "dropped" => self.dropped)
    }

    fn count(&self, m: &Metrics) {
        m.anomalies_dropped.inc_by(self.dropped as u64);
    }
}
