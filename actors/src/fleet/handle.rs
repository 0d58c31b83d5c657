//! `FleetHandle`: how the rest of Eliot (the HTTP API, provisioning) asks the fleet,
//! from any thread: each call is a message to the shard that owns the device (or to every
//! shard, for a listing, merged here), or a read of committed events on a read-only
//! connection of its own, on the blocking pool, off the actors' threads.
//!
//! Paging: by id, the cursor is the last id returned and the next page starts strictly
//! after it (keyset): a device added or changed meanwhile never makes a page repeat or
//! skip another. By last seen, the cursor is (last seen, id) and pages go from the most
//! recently seen down; a device that reports while someone pages moves to the front, so it
//! may be missed by (or appear twice in) that paging: that order is a snapshot per page.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::alerts::{Acked, RuleSet, RulesChanged};
use super::feed::shard_of;
use super::shard::FleetShard;
use super::state::{DeviceEvent, DeviceState, Status};

use crate::message::{format_micros, is_device_id};
use crate::store::{device_anomalies, device_events, open_for_reading, AnomalyQuery, AnomalyRow};

/// The most devices or events one call returns.
pub const MAX_PAGE: usize = 1000;

/// How long `disconnect` waits for the connections it closed to end. A connection ends
/// once what it read is stored and acked, and the device closed its side or
/// `CLOSE_GRACE` (2 s) passed.
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSort {
    #[default]
    Id,
    /// Most recently seen first; never seen last.
    LastSeen,
}

/// Where a page ends, to start the next after it. Opaque once encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceCursor {
    Id(String),
    /// `last_seen`: microseconds (`i64::MIN`: never seen).
    LastSeen {
        last_seen: i64,
        id: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a cursor this server gave")]
pub struct BadCursor;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl DeviceCursor {
    /// An opaque, URL-safe string (hex).
    pub fn encode(&self) -> String {
        match self {
            DeviceCursor::Id(id) => format!("i{}", hex(id.as_bytes())),
            DeviceCursor::LastSeen { last_seen, id } => {
                format!("s{}{}", hex(&last_seen.to_be_bytes()), hex(id.as_bytes()))
            }
        }
    }

    /// The cursor `encode` wrote; anything else is refused.
    pub fn decode(text: &str) -> Result<DeviceCursor, BadCursor> {
        let id_of = |hex: &str| {
            let id = String::from_utf8(unhex(hex).ok_or(BadCursor)?).map_err(|_| BadCursor)?;
            is_device_id(&id).then_some(id).ok_or(BadCursor)
        };
        match text.split_at_checked(1) {
            Some(("i", rest)) => Ok(DeviceCursor::Id(id_of(rest)?)),
            Some(("s", rest)) if rest.len() > 16 => {
                let (seen, id) = rest.split_at(16);
                let seen: [u8; 8] = unhex(seen)
                    .ok_or(BadCursor)?
                    .try_into()
                    .map_err(|_| BadCursor)?;
                Ok(DeviceCursor::LastSeen {
                    last_seen: i64::from_be_bytes(seen),
                    id: id_of(id)?,
                })
            }
            _ => Err(BadCursor),
        }
    }

    fn of(sort: DeviceSort, device: &DeviceState) -> DeviceCursor {
        match sort {
            DeviceSort::Id => DeviceCursor::Id(device.device_id.clone()),
            DeviceSort::LastSeen => DeviceCursor::LastSeen {
                last_seen: last_seen_micros(device),
                id: device.device_id.clone(),
            },
        }
    }
}

fn last_seen_micros(device: &DeviceState) -> i64 {
    device
        .last_seen
        .as_deref()
        .and_then(crate::message::utc_micros)
        .unwrap_or(i64::MIN)
}

/// Which devices to list, in which order, from where.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceQuery {
    pub status: Option<Status>,
    /// Devices with a reading of this sensor type.
    pub sensor_type: Option<String>,
    pub id_prefix: Option<String>,
    pub quarantined: Option<bool>,
    pub sort: DeviceSort,
    pub after: Option<DeviceCursor>,
    /// At most `MAX_PAGE`.
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DevicePage {
    pub devices: Vec<DeviceState>,
    /// `None`: this was the last page.
    #[serde(skip)]
    pub next: Option<DeviceCursor>,
}

/// What `release` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    Released,
    NotQuarantined,
    Unknown,
}

/// What `disconnect` did: of the connections it closed, how many ended within
/// `CLOSE_WAIT`, and how many had not yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionsClosed {
    pub ended: usize,
    pub timed_out: usize,
}

impl ConnectionsClosed {
    pub fn total(&self) -> usize {
        self.ended + self.timed_out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    #[error("the fleet is unavailable: {0}")]
    Unavailable(String),
    #[error("reading the device events failed: {0}")]
    Store(String),
}

fn unavailable(e: MailboxError) -> FleetError {
    FleetError::Unavailable(e.to_string())
}

/// Requests from the handle to a shard.
#[derive(Message)]
#[rtype(result = "Vec<DeviceState>")]
pub struct List(pub DeviceQuery);

#[derive(Message)]
#[rtype(result = "Option<DeviceState>")]
pub struct Get(pub String);

/// The shard's `limit` devices that sent the most messages.
#[derive(Message)]
#[rtype(result = "Vec<DeviceState>")]
pub struct Noisiest(pub usize);

#[derive(Message)]
#[rtype(result = "Released")]
pub struct Release(pub String);

/// Acknowledge the firing alert of `rule` on `device_id`, for `by`.
#[derive(Message)]
#[rtype(result = "Acked")]
pub struct Acknowledge {
    pub rule: String,
    pub device_id: String,
    pub by: String,
}

/// Answers, per connection closed, a receiver told when that connection ended.
#[derive(Message)]
#[rtype(result = "Vec<tokio::sync::oneshot::Receiver<()>>")]
pub struct CloseDevice {
    pub device_id: String,
    pub why: &'static str,
}

#[derive(Message)]
#[rtype(result = "bool")]
pub struct Forget(pub String);

#[derive(Message)]
#[rtype(result = "()")]
pub struct Provisioned(pub String);

/// The fleet, from anywhere (Clone, Send, Sync).
#[derive(Clone)]
pub struct FleetHandle {
    pub(super) shards: Arc<[Addr<FleetShard>]>,
    pub(super) db_path: Arc<PathBuf>,
}

impl FleetHandle {
    fn shard(&self, id: &str) -> &Addr<FleetShard> {
        &self.shards[shard_of(id, self.shards.len())]
    }

    /// A page of devices matching `query`, and the cursor of the next page if any.
    pub async fn list(&self, mut query: DeviceQuery) -> Result<DevicePage, FleetError> {
        let limit = query.limit.min(MAX_PAGE);
        if limit == 0 {
            return Ok(DevicePage {
                devices: Vec::new(),
                next: None,
            });
        }
        // One more than asked tells whether another page follows.
        query.limit = limit + 1;
        let asked = self.shards.iter().map(|s| s.send(List(query.clone())));
        let mut devices = Vec::new();
        for answer in futures_util::future::join_all(asked).await {
            devices.extend(answer.map_err(unavailable)?);
        }
        match query.sort {
            DeviceSort::Id => devices.sort_by(|a, b| a.device_id.cmp(&b.device_id)),
            DeviceSort::LastSeen => devices.sort_by(|a, b| {
                (std::cmp::Reverse(last_seen_micros(a)), &a.device_id)
                    .cmp(&(std::cmp::Reverse(last_seen_micros(b)), &b.device_id))
            }),
        }
        let more = devices.len() > limit;
        devices.truncate(limit);
        let next = more
            .then(|| devices.last().map(|d| DeviceCursor::of(query.sort, d)))
            .flatten();
        Ok(DevicePage { devices, next })
    }

    /// The `limit` devices (`MAX_PAGE` at most) that sent the most messages since they
    /// were first heard, most first (ties by id).
    pub async fn noisiest(&self, limit: usize) -> Result<Vec<DeviceState>, FleetError> {
        let limit = limit.min(MAX_PAGE);
        let asked = self.shards.iter().map(|s| s.send(Noisiest(limit)));
        let mut devices = Vec::new();
        for answer in futures_util::future::join_all(asked).await {
            devices.extend(answer.map_err(unavailable)?);
        }
        devices.sort_by(|a, b| {
            (std::cmp::Reverse(a.counts.messages), &a.device_id)
                .cmp(&(std::cmp::Reverse(b.counts.messages), &b.device_id))
        });
        devices.truncate(limit);
        Ok(devices)
    }

    pub async fn get(&self, id: &str) -> Result<Option<DeviceState>, FleetError> {
        self.shard(id)
            .send(Get(id.to_owned()))
            .await
            .map_err(unavailable)
    }

    /// The device's committed status events after event `after`, oldest first.
    pub async fn events(
        &self,
        id: &str,
        after: Option<i64>,
        limit: usize,
    ) -> Result<Vec<DeviceEvent>, FleetError> {
        let (path, id) = (self.db_path.clone(), id.to_owned());
        let limit = limit.min(MAX_PAGE);
        let read = tokio::task::spawn_blocking(move || {
            let conn = open_for_reading(&path)?;
            device_events(&conn, &id, after, limit)
        });
        let rows = read
            .await
            .map_err(|e| FleetError::Store(e.to_string()))?
            .map_err(|e| FleetError::Store(e.to_string()))?;
        Ok(rows
            .into_iter()
            .map(|r| DeviceEvent {
                id: r.id,
                device_id: r.device_id,
                at: format_micros(r.at),
                status: r.status,
                reason: r.reason,
            })
            .collect())
    }

    /// The device's kept anomaly scores matching `query`, in the order they were kept.
    pub async fn anomalies(&self, query: AnomalyQuery) -> Result<Vec<AnomalyRow>, FleetError> {
        let path = self.db_path.clone();
        let query = AnomalyQuery {
            limit: query.limit.min(MAX_PAGE),
            ..query
        };
        let read = tokio::task::spawn_blocking(move || {
            let conn = open_for_reading(&path)?;
            device_anomalies(&conn, &query)
        });
        read.await
            .map_err(|e| FleetError::Store(e.to_string()))?
            .map_err(|e| FleetError::Store(e.to_string()))
    }

    /// Ends the device's quarantine now.
    pub async fn release(&self, id: &str) -> Result<Released, FleetError> {
        self.shard(id)
            .send(Release(id.to_owned()))
            .await
            .map_err(unavailable)
    }

    /// Tells every shard the rules in force changed (each then judges by them).
    pub fn rules_changed(&self, rules: Arc<RuleSet>) {
        for shard in self.shards.iter() {
            shard.do_send(RulesChanged(rules.clone()));
        }
    }

    /// Acknowledges the firing alert of `rule` on `id` (recorded as `by`); the change is
    /// written with the shard's next hand-over.
    pub async fn acknowledge(&self, rule: &str, id: &str, by: &str) -> Result<Acked, FleetError> {
        self.shard(id)
            .send(Acknowledge {
                rule: rule.to_owned(),
                device_id: id.to_owned(),
                by: by.to_owned(),
            })
            .await
            .map_err(unavailable)
    }

    /// Closes the device's live connections (v5 DISCONNECT 0x87, no will), and resolves
    /// once they ended, or `CLOSE_WAIT` passed. A connection that ended has stored and
    /// acked everything it read, and the fleet has heard all of it (its last updates are
    /// ahead of its end in the shard's mailbox): nothing of it comes after.
    pub async fn disconnect(
        &self,
        id: &str,
        why: &'static str,
    ) -> Result<ConnectionsClosed, FleetError> {
        self.disconnect_within(id, why, CLOSE_WAIT).await
    }

    pub(super) async fn disconnect_within(
        &self,
        id: &str,
        why: &'static str,
        wait: Duration,
    ) -> Result<ConnectionsClosed, FleetError> {
        let ends = self
            .shard(id)
            .send(CloseDevice {
                device_id: id.to_owned(),
                why,
            })
            .await
            .map_err(unavailable)?;
        let deadline = tokio::time::Instant::now() + wait;
        let mut closed = ConnectionsClosed::default();
        for end in ends {
            // `Err` inside: the shard dropped the waiter (it is gone): not seen to end.
            match tokio::time::timeout_at(deadline, end).await {
                Ok(Ok(())) => closed.ended += 1,
                _ => closed.timed_out += 1,
            }
        }
        Ok(closed)
    }

    /// The device was deleted: its state and `device_state` row are dropped (its events
    /// are kept, as history), and a connection still carrying it is closed. What that
    /// connection still had in flight does not bring it back; a new connection of the
    /// device (where none is needed to log in) makes it known again. Call `disconnect`
    /// first to have its connections ended. False if it was not known.
    pub async fn forget(&self, id: &str) -> Result<bool, FleetError> {
        self.shard(id)
            .send(Forget(id.to_owned()))
            .await
            .map_err(unavailable)
    }

    /// A device was provisioned: known from now on (offline, never seen).
    pub async fn provisioned(&self, id: &str) -> Result<(), FleetError> {
        self.shard(id)
            .send(Provisioned(id.to_owned()))
            .await
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        for cursor in [
            DeviceCursor::Id("robot_001".into()),
            DeviceCursor::LastSeen {
                last_seen: 1_700_000_000_123_456,
                id: "a:b.c-d".into(),
            },
            DeviceCursor::LastSeen {
                last_seen: i64::MIN,
                id: "x".into(),
            },
        ] {
            let text = cursor.encode();
            assert!(text.bytes().all(|b| b.is_ascii_alphanumeric()), "{text}");
            assert_eq!(DeviceCursor::decode(&text), Ok(cursor));
        }
        for garbage in [
            "",
            "i",
            "ix",
            "i0",
            "iZZ",
            "s00",
            "q6162",
            "i2f2f",
            "sxyz0000000000000061",
        ] {
            assert_eq!(DeviceCursor::decode(garbage), Err(BadCursor), "{garbage}");
        }
        let too_long = format!("i{}", "61".repeat(65));
        assert_eq!(DeviceCursor::decode(&too_long), Err(BadCursor));
    }
}
