//! What flows from a processor to the store: accepted readings and dead letters.

use bytes::Bytes;

/// One validated sensor reading, ready to be written.
///
/// `(device_id, sensor_type, ts)` is its natural key: the store ignores a second
/// reading with the same key, so a redelivered message never makes a second row.
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
    /// A sentence a person can act on, e.g. `data.latitude: expected a number, found a string`.
    pub reason: String,
    pub received_at: String,
    /// Re-sent with DUP: if the same message is among the latest dead letters, it is not
    /// kept (or counted) twice.
    pub redelivered: bool,
}

/// What one MQTT message becomes: all of its readings, or one dead letter.
///
/// A JSON array of readings is all-or-nothing: if any element is invalid, the whole
/// message is dead-lettered (and the reason names the element), so a replay of the
/// dead letter never half-applies a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Accepted(Vec<Reading>),
    Rejected(DeadLetter),
}

impl Outcome {
    /// How many rows this outcome writes (readings, or the one dead letter).
    pub fn len(&self) -> usize {
        match self {
            Outcome::Accepted(readings) => readings.len(),
            Outcome::Rejected(_) => 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
