//! What flows from a processor to the store: accepted readings and dead letters.

use bytes::Bytes;
use time::OffsetDateTime;

use super::timefmt::format_utc;

/// One validated sensor reading, ready to be written.
///
/// `(device_id, sensor_type, ts)` is its natural key: the store ignores a second reading
/// with the same key and the same data, so a redelivered message never makes a second
/// row; one with different data is a conflict, kept as a dead letter.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub device_id: String,
    pub sensor_type: String,
    /// The reading's own time, normalised to UTC with microseconds
    /// (`2025-06-05T14:30:00.000000Z`) so that text order is time order.
    pub ts: String,
    /// The `data` object, re-serialised as compact JSON text.
    pub data: String,
    /// When Eliot received the message, same format as `ts`.
    pub received_at: String,
}

/// A message Eliot refused, kept whole with the reason, so nothing is silently dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub topic: String,
    /// The payload exactly as received (it may not even be UTF-8).
    pub payload: Bytes,
    pub client_id: String,
    /// The device it is attributed to: the client's authenticated identity, else the
    /// device its topic names (when that is a valid device id); `None` otherwise.
    pub device_id: Option<String>,
    /// A sentence a person can act on, e.g. `data.latitude: expected a number, found a string`.
    pub reason: String,
    pub received_at: String,
    /// Re-sent with DUP: if the same message is among the latest dead letters, it is not
    /// kept (or counted) twice.
    pub redelivered: bool,
    /// The dead letter this is a replay of (`dead_letters.id`): refused again, it is not
    /// kept a second time; that one stays as it was.
    pub replay_of: Option<i64>,
}

/// The message readings came from, kept until their commit: should the store find one
/// of them conflicting with a stored reading, the whole message becomes a dead letter.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub topic: String,
    pub payload: Bytes,
    pub client_id: String,
    /// The device the message is attributed to (see `DeadLetter::device_id`).
    pub device_id: Option<String>,
    pub received_at: OffsetDateTime,
    pub redelivered: bool,
    /// The dead letter this message is a replay of: its row is deleted in the transaction
    /// that stores the readings, and only then (see `Store::write`).
    pub replay_of: Option<i64>,
}

impl Origin {
    pub fn dead_letter(&self, reason: String) -> DeadLetter {
        DeadLetter {
            topic: self.topic.clone(),
            payload: self.payload.clone(),
            client_id: self.client_id.clone(),
            device_id: self.device_id.clone(),
            reason,
            received_at: format_utc(self.received_at),
            redelivered: self.redelivered,
            replay_of: self.replay_of,
        }
    }

    /// When the message was received, in microseconds since 1970.
    pub fn received_micros(&self) -> i64 {
        i64::try_from(self.received_at.unix_timestamp_nanos() / 1_000).unwrap_or(0)
    }
}

/// What one MQTT message becomes: all of its readings, or one dead letter.
///
/// A JSON array of readings is all-or-nothing: if any element is invalid, the whole
/// message is dead-lettered (and the reason names the element), so a replay of the
/// dead letter never half-applies a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Accepted {
        readings: Vec<Reading>,
        origin: Origin,
    },
    Rejected(DeadLetter),
}

impl Outcome {
    /// How many rows this outcome writes (readings, or the one dead letter).
    pub fn len(&self) -> usize {
        match self {
            Outcome::Accepted { readings, .. } => readings.len(),
            Outcome::Rejected(_) => 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
impl Outcome {
    /// An accepted message of these readings, from client `c1` on their device's topic.
    pub fn accepted(readings: Vec<Reading>) -> Outcome {
        let device = readings.first().map_or("d1", |r| r.device_id.as_str());
        let origin = Origin {
            topic: format!("devices/{device}/telemetry"),
            payload: Bytes::from_static(b"{}"),
            client_id: "c1".into(),
            device_id: Some(device.into()),
            received_at: time::macros::datetime!(2025-01-01 00:00 UTC),
            redelivered: false,
            replay_of: None,
        };
        Outcome::Accepted { readings, origin }
    }
}
