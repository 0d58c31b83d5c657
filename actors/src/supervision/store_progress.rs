//! `StoreProgress`: what the store writer is doing, kept in atomics so that health and
//! readiness read it from any thread without asking the writer, which may be stuck in a
//! commit (a locked or full database) exactly when someone needs to know.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

pub struct StoreProgress {
    /// Times below are milliseconds since this, plus one (0 means "none").
    epoch: Instant,
    last_commit_at: AtomicU64,
    last_commit_us: AtomicU64,
    /// Rows received and not yet committed (the batch being committed included).
    backlog_rows: AtomicU64,
    /// When the oldest of those rows arrived.
    backlog_since: AtomicU64,
    /// Why the store cannot take writes now (a full disk), if it cannot.
    condition: Mutex<Option<String>>,
    /// What the store holds, as of its last commit or merge.
    shape: Mutex<StoreShape>,
}

/// What the store holds: where its readings are, what retention keeps, what the dead
/// letters weigh.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreShape {
    /// Committed readings in memory and in `readings_log`, not yet merged into a chunk.
    pub unmerged_readings: u64,
    /// What they take in memory, about (`store.generation_bytes` bounds each generation).
    pub unmerged_bytes: u64,
    pub chunks: u64,
    pub chunked_readings: u64,
    /// When the oldest kept chunk's newest reading was received (retention drops a chunk
    /// once this is older than the retention).
    pub oldest_received_at: Option<String>,
    /// `store.retention`, if set.
    pub retention: Option<String>,
    pub dead_letter_bytes: u64,
    pub dead_letter_quota: u64,
    /// The WAL file's size (`eliot.db-wal`): about 64 MiB at most, more while a reader keeps
    /// an old snapshot (a long query, a transaction left open), which stops it being started
    /// over.
    pub wal_bytes: u64,
}

/// The store's figures in a health report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StoreHealth {
    /// Since the last successful commit; `None` before the first.
    pub last_commit_age_ms: Option<u64>,
    /// How long the last successful commit took.
    pub last_commit_us: u64,
    /// Rows waiting for a commit (or for a retry of one).
    pub backlog_rows: u64,
    /// How long the oldest of them has waited; `None` when there is none.
    pub backlog_age_ms: Option<u64>,
    /// Why the store takes no writes now (its disk is full), if it does not: Eliot is
    /// then `degraded` and not ready until a commit succeeds again.
    pub condition: Option<String>,
    pub holds: StoreShape,
}

impl Default for StoreProgress {
    fn default() -> Self {
        StoreProgress {
            epoch: Instant::now(),
            last_commit_at: AtomicU64::new(0),
            last_commit_us: AtomicU64::new(0),
            backlog_rows: AtomicU64::new(0),
            backlog_since: AtomicU64::new(0),
            condition: Mutex::new(None),
            shape: Mutex::new(StoreShape::default()),
        }
    }
}

impl StoreProgress {
    fn stamp(&self, at: Instant) -> u64 {
        millis(at.saturating_duration_since(self.epoch)).saturating_add(1)
    }

    fn age(&self, stamp: u64, now: Instant) -> Option<u64> {
        let then = stamp.checked_sub(1)?;
        Some(millis(now.saturating_duration_since(self.epoch)).saturating_sub(then))
    }

    /// Rows arrived at `now`; `backlog_rows` are now waiting in all.
    pub fn received(&self, backlog_rows: usize, now: Instant) {
        self.backlog_rows.store(backlog_rows as u64, Relaxed);
        let _ = self
            .backlog_since
            .compare_exchange(0, self.stamp(now), Relaxed, Relaxed);
    }

    /// A commit that took `took` succeeded at `now`; `backlog_rows` still wait.
    pub fn committed(&self, took: Duration, backlog_rows: usize, now: Instant) {
        self.last_commit_at.store(self.stamp(now), Relaxed);
        self.last_commit_us.store(took.as_micros() as u64, Relaxed);
        self.settled(backlog_rows);
    }

    /// Requests were answered (committed, or failed and told so); `backlog_rows` still
    /// wait. The oldest of those keeps its age: it may be older than what was answered.
    pub fn settled(&self, backlog_rows: usize) {
        self.backlog_rows.store(backlog_rows as u64, Relaxed);
        if backlog_rows == 0 {
            self.backlog_since.store(0, Relaxed);
        }
    }

    /// The store cannot take writes, and why; `None` once it can again.
    pub fn set_condition(&self, condition: Option<String>) {
        *self.condition.lock().unwrap_or_else(|e| e.into_inner()) = condition;
    }

    pub fn set_shape(&self, shape: StoreShape) {
        *self.shape.lock().unwrap_or_else(|e| e.into_inner()) = shape;
    }

    pub fn health(&self, now: Instant) -> StoreHealth {
        StoreHealth {
            last_commit_age_ms: self.age(self.last_commit_at.load(Relaxed), now),
            last_commit_us: self.last_commit_us.load(Relaxed),
            backlog_rows: self.backlog_rows.load(Relaxed),
            backlog_age_ms: self.age(self.backlog_since.load(Relaxed), now),
            condition: self
                .condition
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            holds: self.shape.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_ages_until_a_commit_clears_it() {
        let p = StoreProgress::default();
        let t = p.epoch;
        assert_eq!(p.health(t), StoreHealth::default());
        p.received(10, t + Duration::from_millis(5));
        p.received(30, t + Duration::from_millis(50));
        let stuck = p.health(t + Duration::from_millis(2_005));
        assert_eq!(stuck.backlog_rows, 30);
        assert_eq!(
            stuck.backlog_age_ms,
            Some(2_000),
            "aged from the oldest row"
        );
        assert_eq!(stuck.last_commit_age_ms, None);
        p.committed(
            Duration::from_micros(700),
            0,
            t + Duration::from_millis(2_100),
        );
        let done = p.health(t + Duration::from_millis(2_400));
        assert_eq!(done.backlog_age_ms, None);
        assert_eq!(done.last_commit_age_ms, Some(300));
        assert_eq!(done.last_commit_us, 700);
    }

    #[test]
    fn rows_still_waiting_keep_their_age_and_a_failure_answered_clears_it() {
        let p = StoreProgress::default();
        let t = p.epoch;
        p.received(5, t);
        // Something else (a session) commits; the 5 rows still wait, from t.
        p.committed(
            Duration::from_micros(100),
            5,
            t + Duration::from_millis(900),
        );
        assert_eq!(
            p.health(t + Duration::from_secs(1)).backlog_age_ms,
            Some(1_000)
        );
        // The batch is answered with an error: nobody waits any more.
        p.settled(0);
        assert_eq!(p.health(t + Duration::from_secs(2)).backlog_age_ms, None);
    }
}
