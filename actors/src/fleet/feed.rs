//! What the fleet is told, and by whom: the pipeline tells it what each committed message
//! was (`Observed`), the device connections when they carry a device and when they end
//! (`Connected`, `Disconnected`). `FleetFeed` is the cheap handle they use.
//!
//! The mailbox policy: backpressure, nothing dropped. After the commit, and before the
//! pipeline's future resolves (so before the acks), an `Observed` waits for room in its
//! shard: one of the shard's `fleet.mailbox` permits (a FIFO semaphore), which the
//! `Observed` carries into the mailbox and which is given back when the shard has handled
//! it. A fleet that falls behind thus slows the acks the way a slow store does, and every
//! committed message is counted, exactly. (Not actix's `send().await`: on a full mailbox it
//! enqueues anyway, through a fresh clone of the address, so it bounds nothing; nor
//! `try_send`, which would have to drop.)
//!
//! No deadlock: a shard's handlers never wait on anything (its hand-over to the store
//! writer is a future spawned on its context, not `ctx.wait`), so a permit is given back
//! as soon as the shard reaches the update, whatever the pipeline or the store do. While a
//! shard restarts (its backoff) the acks wait for it, as they wait for a restarting store
//! writer; a shard that is gone drops its mailbox, and with it the permits.
//!
//! `Connected` and `Disconnected` are lifecycle reports, one per connection, sent with
//! `do_send` like the connections' other lifecycle reports (the endpoint bounds the
//! connections).

use std::net::SocketAddr;
use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::alerts::{Alerting, Evaluate, Judged, ToJudge, Undo, Unsettled};
use super::anomaly_settings::{MAX_DEPTH, MAX_FIELD_PATH};
use super::numeric_fields::numeric_fields;
use super::quality::seq_of;
use super::quarantine::QuarantineSet;
use super::shard::FleetShard;
use crate::message::{utc_micros, Outcome};

/// Close this connection (a device rotated or deleted): v5 DISCONNECT 0x87, no will.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseConnection {
    pub why: &'static str,
}

/// A connection of the device endpoint, as the fleet knows it.
pub struct Carrier {
    /// The endpoint's id for it: a replaced connection's late end is told apart by it.
    pub connection: u64,
    pub peer: SocketAddr,
    /// `mqtt-3.1.1` or `mqtt-5`.
    pub protocol: &'static str,
    pub closer: Recipient<CloseConnection>,
}

/// Which way messages came in.
#[derive(Clone)]
pub enum Source {
    /// A device endpoint connection: its devices are online while it is up.
    Connection(Arc<Carrier>),
    /// An upstream broker: online while readings come on the device's rhythm.
    Upstream,
    /// A will published for a connection that ended: counted, no sign of life.
    Will,
}

/// One reading of a message, as the fleet needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct NoteReading {
    pub sensor_type: String,
    pub ts: i64,
    /// For the message's last reading of its sensor type (the one kept), and for every
    /// reading when anomaly detection is on (each is scored).
    pub data: Option<String>,
    pub seq: Option<i64>,
}

/// What one committed message was, for its device.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub device_id: String,
    /// Microseconds since 1970.
    pub received_at: i64,
    /// Empty for a dead letter.
    pub readings: Vec<NoteReading>,
    pub rejected: bool,
    /// Dead-lettered because its device is quarantined: not evidence against it.
    pub quarantined: bool,
    /// Readings the store already had.
    pub duplicates: u32,
}

/// The committed messages of one turn of one source, for one shard.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Observed {
    pub source: Source,
    pub notes: Vec<Note>,
    /// Its place among the shard's `fleet.mailbox`: given back once handled (dropped).
    pub room: OwnedSemaphorePermit,
}

/// A connection carries `device_id` (it authenticated as it).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Connected {
    pub device_id: String,
    pub carrier: Arc<Carrier>,
}

/// The connection `connection` ended, for `reason`.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Disconnected {
    pub connection: u64,
    pub reason: String,
}

/// The shard owning `device_id` among `shards` (FNV-1a: stable across runs, so a
/// device's row is loaded by the shard that owns it).
pub fn shard_of(device_id: &str, shards: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in device_id.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x100_0000_01b3);
    }
    (hash % shards.max(1) as u64) as usize
}

/// The handle the pipeline and the connections tell the fleet through.
#[derive(Clone)]
pub struct FleetFeed {
    pub(super) shards: Arc<[Addr<FleetShard>]>,
    /// Per shard, the room left in its mailbox for `Observed` updates.
    pub(super) room: Arc<[Arc<Semaphore>]>,
    pub(super) quarantine: Arc<QuarantineSet>,
    /// Every reading's data goes to the shards (anomaly detection scores each).
    pub(super) every_data: bool,
    /// The alert rules; `None`: none.
    pub(super) alerting: Option<Arc<Alerting>>,
}

impl FleetFeed {
    /// Turns accepted messages of quarantined devices into dead letters `quarantined`,
    /// before they are stored.
    pub fn quarantine(&self, outcomes: &mut [Outcome]) {
        if self.quarantine.is_empty() {
            return;
        }
        let accepted = outcomes.iter_mut().filter_map(|o| {
            let device = match o {
                Outcome::Accepted { readings, .. } => readings.first()?.device_id.clone(),
                Outcome::Rejected(_) => return None,
            };
            Some((device, o))
        });
        let mut accepted: Vec<_> = accepted.collect();
        let mut quarantined = Vec::new();
        self.quarantine.check(
            accepted
                .iter()
                .enumerate()
                .map(|(i, (d, _))| (d.as_str(), i)),
            |i, why| quarantined.push((i, why.to_owned())),
        );
        for (i, why) in quarantined {
            let outcome = &mut *accepted[i].1;
            if let Outcome::Accepted { origin, .. } = outcome {
                *outcome = Outcome::Rejected(origin.dead_letter(format!("quarantined: {why}")));
            }
        }
    }

    /// Judges the accepted readings against the threshold rules about their sensor types,
    /// in their devices' shards, before they are committed: the changes, each to be
    /// written with its message (`Judged::message`, its position in `outcomes`). Each
    /// shard's answer is awaited; the callers' own bounds (windows, in-flight bytes)
    /// bound how many such requests wait.
    pub async fn judge(&self, outcomes: &[Outcome]) -> Vec<Judged> {
        let Some(alerting) = &self.alerting else {
            return Vec::new();
        };
        let rules = alerting.rules();
        let n = self.shards.len();
        let mut by_shard: Vec<Vec<ToJudge>> = (0..n).map(|_| Vec::new()).collect();
        for (message, outcome) in outcomes.iter().enumerate() {
            let Outcome::Accepted { readings, origin } = outcome else {
                continue;
            };
            for r in readings {
                let Some(fields) = rules.threshold_fields(&r.sensor_type) else {
                    continue;
                };
                // The values those rules read, walked here (on the connection's task):
                // the shard gets numbers, not the reading's text.
                let mut values = Vec::new();
                numeric_fields(&r.data, MAX_DEPTH, MAX_FIELD_PATH, &mut |path, value| {
                    if let Some(field) = fields.iter().find(|f| ***f == *path) {
                        values.push((field.clone(), value));
                    }
                });
                if values.is_empty() {
                    continue;
                }
                by_shard[shard_of(&r.device_id, n)].push(ToJudge {
                    message,
                    device_id: r.device_id.clone(),
                    sensor_type: r.sensor_type.clone(),
                    ts: utc_micros(&r.ts).unwrap_or(0),
                    received_at: origin.received_micros(),
                    values,
                });
            }
        }
        let asked = self
            .shards
            .iter()
            .zip(by_shard)
            .filter(|(_, readings)| !readings.is_empty())
            .map(|(shard, readings)| shard.send(Evaluate(readings)));
        let answers = futures_util::future::join_all(asked).await;
        // A shard that is gone (restarting) judged nothing: its alerts are reloaded as
        // they were written.
        answers
            .into_iter()
            .flat_map(Result::unwrap_or_default)
            .collect()
    }

    /// These changes were not written with their readings: their shards undo them.
    pub fn unsettled(&self, undos: impl IntoIterator<Item = Undo>) {
        let n = self.shards.len();
        let mut by_shard: Vec<Vec<Undo>> = (0..n).map(|_| Vec::new()).collect();
        for undo in undos {
            by_shard[shard_of(&undo.device_id, n)].push(undo);
        }
        for (shard, undos) in self.shards.iter().zip(by_shard) {
            if !undos.is_empty() {
                shard.do_send(Unsettled(undos));
            }
        }
    }

    /// What each outcome will tell its device's shard, once committed (`None`: nobody's).
    pub fn notes(&self, outcomes: &[Outcome]) -> Vec<Option<Note>> {
        notes_of(outcomes, self.every_data)
    }

    /// Tells the shards what was committed, waiting for room in each one's mailbox.
    pub async fn observe(&self, source: &Source, notes: impl IntoIterator<Item = Note>) {
        let n = self.shards.len();
        let mut by_shard: Vec<Vec<Note>> = (0..n).map(|_| Vec::new()).collect();
        for note in notes {
            by_shard[shard_of(&note.device_id, n)].push(note);
        }
        for ((shard, room), notes) in self.shards.iter().zip(self.room.iter()).zip(by_shard) {
            if notes.is_empty() {
                continue;
            }
            // The semaphore is never closed: `Err` cannot happen, and would only mean
            // "nothing to wait for".
            let Ok(room) = room.clone().acquire_owned().await else {
                continue;
            };
            // `do_send`: the permit, not actix's capacity, is the bound.
            shard.do_send(Observed {
                source: source.clone(),
                notes,
                room,
            });
        }
    }

    pub fn connected(&self, device_id: &str, carrier: Arc<Carrier>) {
        let shard = &self.shards[shard_of(device_id, self.shards.len())];
        shard.do_send(Connected {
            device_id: device_id.to_owned(),
            carrier,
        });
    }

    /// Every shard hears of it: a connection may have carried devices of any shard.
    pub fn disconnected(&self, connection: u64, reason: &str) {
        let ended = Disconnected {
            connection,
            reason: reason.to_owned(),
        };
        for shard in self.shards.iter() {
            shard.do_send(ended.clone());
        }
    }
}

/// What each outcome tells its device's shard; `every_data`: the data of every reading,
/// else of the message's last of each sensor type.
pub(super) fn notes_of(outcomes: &[Outcome], every_data: bool) -> Vec<Option<Note>> {
    outcomes.iter().map(|o| note_of(o, every_data)).collect()
}

fn note_of(outcome: &Outcome, every_data: bool) -> Option<Note> {
    match outcome {
        Outcome::Accepted { readings, origin } => {
            let device_id = readings.first()?.device_id.clone();
            let mut notes: Vec<NoteReading> = Vec::with_capacity(readings.len());
            // Walked from the end: the first of a type met is the message's last of it.
            let mut types_seen: Vec<&str> = Vec::new();
            for r in readings.iter().rev() {
                let last_of_type = !types_seen.contains(&r.sensor_type.as_str());
                if last_of_type {
                    types_seen.push(&r.sensor_type);
                }
                notes.push(NoteReading {
                    sensor_type: r.sensor_type.clone(),
                    ts: utc_micros(&r.ts).unwrap_or(0),
                    data: (last_of_type || every_data).then(|| r.data.clone()),
                    seq: seq_of(&r.data),
                });
            }
            notes.reverse();
            Some(Note {
                device_id,
                received_at: origin.received_micros(),
                readings: notes,
                rejected: false,
                quarantined: false,
                duplicates: 0,
            })
        }
        Outcome::Rejected(dead) => Some(Note {
            device_id: dead.device_id.clone()?,
            received_at: utc_micros(&dead.received_at).unwrap_or(0),
            readings: Vec::new(),
            rejected: true,
            quarantined: dead.reason.starts_with("quarantined: "),
            duplicates: 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_always_lands_on_the_same_shard() {
        let a = shard_of("robot_001", 4);
        assert!((0..10).all(|_| shard_of("robot_001", 4) == a));
        let spread: std::collections::BTreeSet<_> =
            (0..100).map(|i| shard_of(&format!("d{i}"), 4)).collect();
        assert_eq!(spread.len(), 4, "ids spread over every shard");
    }
}
