//! One device's state as its shard keeps it (`Device`: compact, times in microseconds,
//! no string for the status), and as the fleet hands it out (`DeviceState`: plain,
//! serialisable, times in the store's RFC 3339 format).

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use actix::Recipient;
use serde::{Deserialize, Serialize};

use super::alerts::DeviceAlerts;
use super::anomalies::{AnomalyState, DeviceAnomalies};
use super::feed::CloseConnection;
use super::quality::Quality;
use super::rhythm::Rhythm;
use super::timers::Slot;
use crate::message::format_micros;

/// Whether a device is heard: online (a connection is up, or it reports on its rhythm),
/// late (it missed its rhythm), offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    Online,
    Late,
    Offline,
}

/// What the API filters on: the presence, or `quarantined`, which overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Online,
    Late,
    Offline,
    Quarantined,
}

impl Status {
    pub const ALL: [Status; 4] = [
        Status::Online,
        Status::Late,
        Status::Offline,
        Status::Quarantined,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Late => "late",
            Status::Offline => "offline",
            Status::Quarantined => "quarantined",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.name() == text)
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl From<Presence> for Status {
    fn from(p: Presence) -> Status {
        match p {
            Presence::Online => Status::Online,
            Presence::Late => Status::Late,
            Presence::Offline => Status::Offline,
        }
    }
}

/// The live connection carrying a device: the endpoint's id for it, and how to close it.
#[derive(Clone)]
pub struct Connection {
    pub id: u64,
    pub closer: Recipient<CloseConnection>,
}

/// How a device was last heard: its peer, protocol and live connection (if any).
#[derive(Clone, Default)]
pub struct Link {
    pub peer: Option<SocketAddr>,
    /// `mqtt-3.1.1`, `mqtt-5`, `upstream`.
    pub protocol: Option<&'static str>,
    pub connection: Option<Connection>,
}

/// A quarantine in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Quarantined {
    pub since: i64,
    /// `None`: until released.
    pub until: Option<i64>,
    pub why: Box<str>,
}

/// The last reading of one sensor type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastReading {
    pub sensor_type: Box<str>,
    /// Microseconds since 1970.
    pub ts: i64,
    /// The `data` object, as JSON text.
    pub data: Box<str>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub messages: u64,
    pub readings: u64,
    pub duplicates: u64,
    pub dead_letters: u64,
}

/// A device as its shard keeps it.
pub struct Device {
    pub presence: Presence,
    /// When the status last changed, and why (shared: most devices' reason is one of a
    /// few, `provisioned` above all).
    pub since: i64,
    pub reason: Arc<str>,
    pub quarantine: Option<Box<Quarantined>>,
    pub connected_since: Option<i64>,
    pub last_seen: Option<i64>,
    /// `None` until the device is first heard.
    pub link: Option<Box<Link>>,
    pub counts: Counts,
    pub quality: Quality,
    pub rhythm: Rhythm,
    /// Boxed, not a `Vec`: it grows only with a new sensor type, and a `Vec`'s capacity
    /// word would push `Device` past its 256-byte allocation class.
    pub last: Box<[LastReading]>,
    pub timer: Slot,
    /// The last turn (`Observed`) that sampled its rhythm (in `presence`'s padding).
    pub turn: u32,
    /// It progressed since its row was last written, and waits in its shard's queue of
    /// such devices (`unsaved.rs`).
    pub unsaved: bool,
    /// Its series' anomaly detectors, once a reading was scored (`anomalies.rs`).
    pub anomalies: Option<Box<DeviceAnomalies>>,
    /// Its alerts, once a rule was judged on it (`alerts/`).
    pub alerts: Option<Box<DeviceAlerts>>,
}

impl Device {
    /// A device known but never heard (provisioned, say).
    pub fn unheard(now: i64, reason: &'static str) -> Device {
        Device {
            presence: Presence::Offline,
            since: now,
            reason: shared_reason(reason),
            quarantine: None,
            connected_since: None,
            last_seen: None,
            link: None,
            counts: Counts::default(),
            quality: Quality::default(),
            rhythm: Rhythm::default(),
            last: Box::default(),
            timer: Slot::default(),
            turn: 0,
            unsaved: false,
            anomalies: None,
            alerts: None,
        }
    }

    /// Marks it progressed unsaved: whether it was not already (it must be queued).
    pub fn progress_unsaved(&mut self) -> bool {
        !std::mem::replace(&mut self.unsaved, true)
    }

    pub fn status(&self) -> Status {
        match self.quarantine {
            Some(_) => Status::Quarantined,
            None => self.presence.into(),
        }
    }

    /// The live connection's id, if a connection carries it.
    pub fn connection_id(&self) -> Option<u64> {
        self.link.as_ref()?.connection.as_ref().map(|c| c.id)
    }

    /// Keeps `reading` as the last of a sensor type it had none of.
    pub fn add_last(&mut self, reading: LastReading) {
        let mut last = std::mem::take(&mut self.last).into_vec();
        last.push(reading);
        self.last = last.into_boxed_slice();
    }

    pub fn last_of(&self, sensor_type: &str) -> Option<&LastReading> {
        self.last.iter().find(|r| &*r.sensor_type == sensor_type)
    }

    /// The view handed out.
    pub fn view(&self, id: &str) -> DeviceState {
        let link = self.link.as_deref();
        DeviceState {
            device_id: id.to_owned(),
            status: self.status(),
            presence: self.presence,
            since: format_micros(self.since),
            reason: self.reason.to_string(),
            quarantine: self.quarantine.as_deref().map(|q| QuarantineState {
                since: format_micros(q.since),
                until: q.until.map(format_micros),
                reason: q.why.to_string(),
            }),
            connected_since: self.connected_since.map(format_micros),
            last_seen: self.last_seen.map(format_micros),
            peer: link.and_then(|l| l.peer).map(|p| p.to_string()),
            protocol: link.and_then(|l| l.protocol).map(str::to_owned),
            last_readings: self
                .last
                .iter()
                .map(|r| LastReadingState {
                    sensor_type: r.sensor_type.to_string(),
                    ts: format_micros(r.ts),
                    data: r.data.to_string(),
                })
                .collect(),
            counts: self.counts,
            quality: QualityState {
                duplicates: self.counts.duplicates,
                out_of_order: self.quality.out_of_order,
                future_timestamps: self.quality.future_timestamps,
                seq_gaps: self.quality.seq_gaps,
                clock_skew_ms: self.quality.skew_ms,
                rejection_rate: self.quality.rejection_rate,
            },
            rhythm: (self.rhythm.samples > 0).then(|| RhythmState {
                interval_ms: self.rhythm.interval as f64 / 1_000.0,
                spread_ms: self.rhythm.spread as f64 / 1_000.0,
                samples: self.rhythm.samples,
            }),
            anomaly: self.anomalies.as_deref().map(DeviceAnomalies::view),
        }
    }
}

/// A device's live state, as the fleet hands it out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceState {
    pub device_id: String,
    /// `quarantined` while quarantined, else the presence.
    pub status: Status,
    pub presence: Presence,
    /// When the status last changed (RFC 3339, microseconds, UTC), and why.
    pub since: String,
    pub reason: String,
    pub quarantine: Option<QuarantineState>,
    /// While a connection of the device endpoint carries it.
    pub connected_since: Option<String>,
    pub last_seen: Option<String>,
    pub peer: Option<String>,
    pub protocol: Option<String>,
    pub last_readings: Vec<LastReadingState>,
    pub counts: Counts,
    pub quality: QualityState,
    /// The learnt reporting interval, once sampled.
    pub rhythm: Option<RhythmState>,
    /// Its anomaly scores, once a reading was scored.
    pub anomaly: Option<AnomalyState>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuarantineState {
    pub since: String,
    /// `None`: until released.
    pub until: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastReadingState {
    pub sensor_type: String,
    pub ts: String,
    /// The `data` object as JSON text.
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityState {
    pub duplicates: u64,
    pub out_of_order: u64,
    pub future_timestamps: u64,
    pub seq_gaps: u64,
    /// Receipt − reading time, rolling, milliseconds (positive: the device is behind).
    pub clock_skew_ms: f64,
    /// Rolling share of messages refused, 0 to 1.
    pub rejection_rate: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RhythmState {
    pub interval_ms: f64,
    pub spread_ms: f64,
    pub samples: u32,
}

/// One status change, committed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceEvent {
    pub id: i64,
    pub device_id: String,
    pub at: String,
    pub status: String,
    pub reason: String,
}

/// The reasons a device is first given, allocated once and shared by every device
/// that has them (100,000 provisioned devices hold one string, not 100,000).
fn shared_reason(reason: &'static str) -> Arc<str> {
    static SHARED: LazyLock<[Arc<str>; 2]> =
        LazyLock::new(|| ["provisioned".into(), "first seen".into()]);
    SHARED
        .iter()
        .find(|r| ***r == *reason)
        .cloned()
        .unwrap_or_else(|| reason.into())
}

/// Kept in the shard's map, shared with its indexes and timers.
pub type DeviceId = Arc<str>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The memory goal is 1 KiB per known device, all in: a device never heard is its
    /// `Device`, its id (twice: map and index) and the B-tree's share. Keep `Device` small.
    #[test]
    fn a_device_stays_compact() {
        let size = std::mem::size_of::<Device>();
        println!("Device: {size} bytes");
        assert!(size <= 320, "Device grew to {size} bytes");
    }
}
