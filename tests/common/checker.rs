//! The fault drills' checker, after Jepsen's: every message a drill publishes has a
//! unique (device_id, timestamp); afterwards the database is read and every message is
//! classed. Lost: acked but not stored. Duplicated: stored more than once. Unexpected:
//! stored but never published.
//!
//! Also the drills' device: a real MQTT client with a persistent session that publishes
//! its readings at QoS 1, reconnects after any error, and records which readings were
//! acked.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Outgoing, Packet, QoS};

use super::{options, reading, topic};

/// What the drill's devices published and what Eliot acked, as (device, n).
#[derive(Default, Clone)]
pub struct Ledger(Arc<Mutex<LedgerInner>>);

#[derive(Default)]
struct LedgerInner {
    published: HashSet<(String, u64)>,
    acked: HashSet<(String, u64)>,
}

impl Ledger {
    pub fn published(&self, device: &str, n: u64) {
        self.0
            .lock()
            .unwrap()
            .published
            .insert((device.to_owned(), n));
    }

    pub fn acked(&self, device: &str, n: u64) {
        self.0.lock().unwrap().acked.insert((device.to_owned(), n));
    }

    pub fn acked_count(&self) -> usize {
        self.0.lock().unwrap().acked.len()
    }

    /// The acked messages the database does not hold, as (device, n), sorted.
    pub fn lost(&self, db: &Path) -> Vec<(String, u64)> {
        let inner = self.0.lock().unwrap();
        let db = rusqlite::Connection::open(db).unwrap();
        let mut stmt = db.prepare("SELECT device_id, ts FROM readings").unwrap();
        let stored: HashSet<(String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut lost: Vec<(String, u64)> = inner
            .acked
            .iter()
            .filter(|(device, n)| !stored.contains(&(device.clone(), reading_ts(*n))))
            .cloned()
            .collect();
        lost.sort();
        lost
    }

    /// Reads the database and classes every message.
    pub fn check(&self, db: &Path) -> Verdict {
        let inner = self.0.lock().unwrap();
        let db = rusqlite::Connection::open(db).unwrap();
        let mut stmt = db
            .prepare("SELECT device_id, ts, count(*) FROM readings GROUP BY device_id, ts")
            .unwrap();
        let mut stored = HashSet::new();
        let mut duplicated = 0;
        for row in stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .unwrap()
        {
            let (device, ts, count) = row.unwrap();
            duplicated += (count - 1) as usize;
            stored.insert((device, ts));
        }
        let key = |(device, n): &(String, u64)| (device.clone(), reading_ts(*n));
        let published: HashSet<_> = inner.published.iter().map(key).collect();
        Verdict {
            published: inner.published.len(),
            acked: inner.acked.len(),
            stored: stored.len(),
            lost: inner
                .acked
                .iter()
                .filter(|m| !stored.contains(&key(m)))
                .count(),
            duplicated,
            unexpected: stored.iter().filter(|m| !published.contains(*m)).count(),
        }
    }
}

/// The `ts` column Eliot stores for `reading(_, n)`.
pub fn reading_ts(n: u64) -> String {
    let ts = time::OffsetDateTime::from_unix_timestamp(super::READING_EPOCH + n as i64).unwrap();
    eliot_actors::format_utc(ts)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub published: usize,
    pub acked: usize,
    pub stored: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub unexpected: usize,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "checker: published {}, acked {}, stored {}; lost {}, duplicated {}, unexpected {}",
            self.published, self.acked, self.stored, self.lost, self.duplicated, self.unexpected
        )
    }
}

/// How a drill device publishes.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Readings to publish.
    pub count: u64,
    /// Pause between two publishes (zero: as fast as acks allow).
    pub every: Duration,
    /// Give up (returning what was acked) after this long.
    pub within: Duration,
}

/// Publishes readings `0..count` for `device` at QoS 1 with a persistent session, through
/// every disconnection, until all are acked or `within` passes. Returns how many were
/// acked. After an error the event loop waits 100 ms, then rumqttc reconnects.
pub async fn publish_through_failures(
    addr: SocketAddr,
    device: String,
    pace: Pace,
    ledger: Ledger,
) -> u64 {
    let Pace {
        count,
        every,
        within,
    } = pace;
    let mut opts = options(addr, &device);
    opts.set_clean_session(false);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let publisher = spawn_publisher(client.clone(), &device, Some(count), every, &ledger);
    // rumqttc gives a new PUBLISH a packet id no unacked one holds, in request order, and
    // re-sends unacked ones (after a reconnect) with their old id: so the first outgoing
    // PUBLISH with a free id is the next reading.
    let (mut next, mut in_flight, mut acked) = (0u64, HashMap::<u16, u64>::new(), 0u64);
    let deadline = tokio::time::Instant::now() + within;
    while acked < count {
        let polled = match tokio::time::timeout_at(deadline, eventloop.poll()).await {
            Ok(polled) => polled,
            Err(_) => break,
        };
        match polled {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                in_flight.entry(pkid).or_insert_with(|| {
                    next += 1;
                    next - 1
                });
            }
            // Without a session, rumqttc drops what it had not got acked: those readings
            // stay unacked, and their packet ids are free again.
            Ok(Event::Incoming(Packet::ConnAck(ack))) if !ack.session_present => in_flight.clear(),
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some(n) = in_flight.remove(&ack.pkid) {
                    ledger.acked(&device, n);
                    acked += 1;
                }
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    publisher.abort();
    let _ = client.try_disconnect();
    acked
}

/// Publishes `device`'s readings `0..count` (for ever with `None`) at QoS 1, `every` apart,
/// recording each in the ledger as published, until the client is gone.
pub fn spawn_publisher(
    client: AsyncClient,
    device: &str,
    count: Option<u64>,
    every: Duration,
    ledger: &Ledger,
) -> tokio::task::JoinHandle<()> {
    let (device, ledger) = (device.to_owned(), ledger.clone());
    tokio::spawn(async move {
        for n in 0..count.unwrap_or(u64::MAX) {
            ledger.published(&device, n);
            let payload = reading(&device, n);
            if client
                .publish(topic(&device), QoS::AtLeastOnce, false, payload)
                .await
                .is_err()
            {
                return;
            }
            if !every.is_zero() {
                tokio::time::sleep(every).await;
            }
        }
    })
}
