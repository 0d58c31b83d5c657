//! The fault drills' checker, after Jepsen's: every message a drill publishes has a
//! unique (device_id, timestamp); afterwards the database is read and every message is
//! classed. Lost: acked but not stored. Duplicated: stored more than once. Unexpected:
//! stored but never published.
//!
//! The database is read by another process (`outside`): a reader in the process that
//! runs Eliot shares SQLite's lock table with it, and cannot see what users see. The
//! drills' device is `drill_device`.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::drill_device::DrillDevice;
use super::outside;

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

    /// The acked messages the database does not hold, as (device, n), sorted. The
    /// database is read by another process (`outside`).
    pub fn lost(&self, db: &Path) -> Vec<(String, u64)> {
        let stored: HashSet<(String, String)> = outside::stored_keys(db).into_keys().collect();
        let inner = self.0.lock().unwrap();
        let mut lost: Vec<(String, u64)> = inner
            .acked
            .iter()
            .filter(|(device, n)| !stored.contains(&(device.clone(), reading_ts(*n))))
            .cloned()
            .collect();
        lost.sort();
        lost
    }

    /// Reads the database (from another process: `outside`) and classes every message.
    pub fn check(&self, db: &Path) -> Verdict {
        let counts = outside::stored_keys(db);
        let inner = self.0.lock().unwrap();
        let duplicated = counts.values().map(|&count| count.saturating_sub(1)).sum();
        let key = |(device, n): &(String, u64)| (device.clone(), reading_ts(*n));
        let published: HashSet<_> = inner.published.iter().map(key).collect();
        Verdict {
            published: inner.published.len(),
            acked: inner.acked.len(),
            stored: counts.len(),
            lost: inner
                .acked
                .iter()
                .filter(|m| !counts.contains_key(&key(m)))
                .count(),
            duplicated,
            unexpected: counts.keys().filter(|m| !published.contains(*m)).count(),
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
/// every disconnection, until all are acked or `within` passes (see `DrillDevice`).
/// Returns how many were acked.
pub async fn publish_through_failures(
    addr: SocketAddr,
    device: String,
    pace: Pace,
    ledger: Ledger,
) -> u64 {
    DrillDevice::new(addr, device, pace).run(ledger).await.acked
}
