//! A device's state to its `device_state` row and back, and what a shard loads when it
//! starts: every device's last state, the devices known without one (provisioned, or
//! with readings from before the fleet), and how presence resumes after Eliot was down:
//!
//! - a device a connection of the device endpoint carried is offline: the connection died
//!   with Eliot (event, reason `eliot restarted: its connection ended`);
//! - a device without one (upstream) whose offline bound passed while Eliot was down is
//!   offline (event); the others resume their timers from their last seen.

use std::sync::Arc;

use super::rhythm::Bounds;
use super::state::{Counts, Device, LastReading, Link, Presence, Quarantined};
use crate::store::{DeviceRow, EventRow};

/// The protocols a link may name (a row's text is mapped back to these).
const PROTOCOLS: [&str; 3] = ["mqtt-3.1.1", "mqtt-5", "upstream"];

pub fn row_of(id: &str, device: &Device) -> DeviceRow {
    let link = device.link.as_deref();
    let json = |value: Result<String, serde_json::Error>| value.unwrap_or_else(|_| "{}".into());
    DeviceRow {
        device_id: id.to_owned(),
        status: device.status().name().to_owned(),
        since: device.since,
        reason: device.reason.to_string(),
        quarantined: device.quarantine.is_some(),
        quarantine_until: device.quarantine.as_ref().and_then(|q| q.until),
        connected_since: device.connected_since,
        last_seen: device.last_seen,
        peer: link.and_then(|l| l.peer).map(|p| p.to_string()),
        protocol: link.and_then(|l| l.protocol).map(str::to_owned),
        counts: json(serde_json::to_string(&device.counts)),
        quality: json(serde_json::to_string(&device.quality)),
        rhythm: json(serde_json::to_string(&device.rhythm)),
        last_readings: json(serde_json::to_string(&device.last)),
    }
}

/// A stored row as a device whose presence is yet to be resumed (`resume`).
pub fn device_of(row: &DeviceRow) -> Device {
    let presence = match row.status.as_str() {
        "online" => Presence::Online,
        "late" => Presence::Late,
        // A quarantined row keeps its presence in `reason`'s history only: offline until
        // heard is the safe reading.
        _ => Presence::Offline,
    };
    let protocol = row
        .protocol
        .as_deref()
        .and_then(|p| PROTOCOLS.into_iter().find(|known| *known == p));
    let link = (row.peer.is_some() || protocol.is_some()).then(|| {
        Box::new(Link {
            peer: row.peer.as_deref().and_then(|p| p.parse().ok()),
            protocol,
            connection: None,
        })
    });
    Device {
        presence,
        since: row.since,
        reason: row.reason.as_str().into(),
        quarantine: row.quarantined.then(|| {
            Box::new(Quarantined {
                since: row.since,
                until: row.quarantine_until,
                why: row.reason.as_str().into(),
            })
        }),
        connected_since: row.connected_since,
        last_seen: row.last_seen,
        link,
        counts: serde_json::from_str::<Counts>(&row.counts).unwrap_or_default(),
        quality: serde_json::from_str(&row.quality).unwrap_or_default(),
        rhythm: serde_json::from_str(&row.rhythm).unwrap_or_default(),
        last: serde_json::from_str::<Box<[LastReading]>>(&row.last_readings).unwrap_or_default(),
        timer: Default::default(),
        turn: 0,
        unsaved: false,
        anomalies: None,
        alerts: None,
    }
}

/// How a loaded device's presence resumes at `now`: the status change to record, if any.
pub fn resume(device: &mut Device, bounds: &Bounds, now: i64) -> Option<String> {
    if device.presence == Presence::Offline {
        return None;
    }
    let upstream = device
        .link
        .as_deref()
        .is_some_and(|l| l.protocol == Some("upstream"));
    let reason = if !upstream {
        "eliot restarted: its connection ended".to_owned()
    } else {
        let last_seen = device.last_seen.unwrap_or(0);
        let bound = device.rhythm.offline_after(bounds);
        if now.saturating_sub(last_seen) < bound {
            return None;
        }
        "offline: silent past its offline bound while eliot was down".to_owned()
    };
    device.presence = Presence::Offline;
    device.connected_since = None;
    device.since = now;
    device.reason = reason.as_str().into();
    Some(reason)
}

/// An event row for a status change.
pub fn event_row(id: &Arc<str>, at: i64, status: &str, reason: &str) -> EventRow {
    EventRow {
        id: 0,
        device_id: id.to_string(),
        at,
        status: status.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::state::Status;
    use std::time::Duration;

    fn bounds() -> Bounds {
        Bounds {
            late_factor: 3.0,
            late_floor: Duration::from_millis(500),
            offline_factor: 10.0,
            offline_floor: Duration::from_secs(60),
            min_samples: 5,
        }
    }

    fn heard(protocol: &'static str) -> Device {
        let mut device = Device::unheard(1_000, "first seen");
        device.presence = Presence::Online;
        device.last_seen = Some(5_000_000);
        device.connected_since = Some(1_000);
        device.link = Some(Box::new(Link {
            peer: Some("10.0.0.7:4321".parse().unwrap()),
            protocol: Some(protocol),
            connection: None,
        }));
        device.counts.messages = 7;
        device.quality.seq_gaps = 3;
        device.rhythm.sample(1_000_000);
        device.add_last(LastReading {
            sensor_type: "gps".into(),
            ts: 4_000_000,
            data: r#"{"lat":1}"#.into(),
        });
        device
    }

    #[test]
    fn a_device_survives_its_row() {
        let device = heard("mqtt-5");
        let back = device_of(&row_of("d1", &device));
        assert_eq!(back.status(), Status::Online);
        assert_eq!(back.counts, device.counts);
        assert_eq!(back.quality, device.quality);
        assert_eq!(back.rhythm, device.rhythm);
        assert_eq!(back.last, device.last);
        assert_eq!(back.last_seen, device.last_seen);
        let link = back.link.unwrap();
        assert_eq!(link.protocol, Some("mqtt-5"));
        assert_eq!(link.peer, Some("10.0.0.7:4321".parse().unwrap()));
    }

    #[test]
    fn a_connected_device_is_offline_after_a_restart() {
        let mut device = device_of(&row_of("d1", &heard("mqtt-3.1.1")));
        let why = resume(&mut device, &bounds(), 10_000_000).unwrap();
        assert!(why.contains("eliot restarted"), "{why}");
        assert_eq!(device.presence, Presence::Offline);
    }

    #[test]
    fn an_upstream_device_is_offline_only_past_its_bound() {
        let mut recent = device_of(&row_of("d1", &heard("upstream")));
        assert_eq!(resume(&mut recent, &bounds(), 6_000_000), None);
        assert_eq!(recent.presence, Presence::Online);
        let mut stale = device_of(&row_of("d1", &heard("upstream")));
        assert!(resume(&mut stale, &bounds(), 5_000_000 + 61_000_000).is_some());
        assert_eq!(stale.presence, Presence::Offline);
    }
}
