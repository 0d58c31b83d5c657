//! The store's events: the database opened, each batch committed (or not, and retried),
//! and the upkeep between commits (merges, retention, the dead letters' quota).

use std::time::Duration;

use slog::{debug, error, info, warn, Logger};

use super::values::{micros, Clean};
use super::Observe;
use crate::observe::Metrics;

/// The store writer opened the database: its schema version, and the version it was
/// migrated from, if it was (0: created).
pub struct StoreOpened {
    pub version: i64,
    pub migrated_from: Option<i64>,
}

impl Observe for StoreOpened {
    const NAME: &'static str = "store_opened";
    const MOVES: &'static [&'static str] = &["eliot_schema_version"];

    fn log(&self, log: &Logger) {
        let StoreOpened {
            version,
            migrated_from,
        } = *self;
        info!(log, "database opened";
            "event" => Self::NAME, "schema_version" => version, "migrated_from" => ?migrated_from)
    }

    fn count(&self, m: &Metrics) {
        m.schema_version.set(self.version);
    }
}

/// One transaction committed: readings, redelivered duplicates and dead letters.
pub struct BatchCommitted {
    pub rows: usize,
    pub duplicates: usize,
    pub dead_letters: usize,
    pub took: Duration,
}

impl Observe for BatchCommitted {
    const NAME: &'static str = "batch_committed";
    const MOVES: &'static [&'static str] = &[
        "eliot_readings_stored_total",
        "eliot_readings_duplicate_total",
        "eliot_dead_letters_stored_total",
        "eliot_commit_seconds",
        "eliot_batch_rows",
    ];

    fn log(&self, log: &Logger) {
        let BatchCommitted {
            rows,
            duplicates,
            dead_letters,
            took,
        } = *self;
        debug!(log, "batch committed";
            "event" => Self::NAME, "rows" => rows, "duplicates" => duplicates,
            "dead_letters" => dead_letters, "duration_us" => micros(took))
    }

    fn count(&self, m: &Metrics) {
        let BatchCommitted {
            rows,
            duplicates,
            dead_letters,
            took,
        } = *self;
        m.readings_stored.inc_by(rows as u64);
        m.readings_duplicate.inc_by(duplicates as u64);
        m.dead_letters_stored.inc_by(dead_letters as u64);
        m.commit_seconds.observe(took.as_secs_f64());
        m.batch_rows
            .observe((rows + duplicates + dead_letters) as f64);
    }
}

/// A store operation failed (`requests`: those it carried); nothing of it was acked.
pub struct StoreFailed<'a> {
    pub error: &'a str,
    pub requests: usize,
}

impl Observe for StoreFailed<'_> {
    const NAME: &'static str = "store_failed";
    const MOVES: &'static [&'static str] = &["eliot_store_failures_total"];

    fn log(&self, log: &Logger) {
        let StoreFailed { error, requests } = *self;
        error!(log, "store write failed, nothing acked";
            "event" => Self::NAME, "error" => %Clean(error), "requests" => requests)
    }

    fn count(&self, m: &Metrics) {
        m.store_failures.inc();
    }
}

/// A commit failed in a way worth retrying; the batch is tried again after `wait`.
pub struct StoreRetry<'a> {
    pub rows: usize,
    pub wait: Duration,
    pub error: &'a str,
}

impl Observe for StoreRetry<'_> {
    const NAME: &'static str = "store_retry";
    const MOVES: &'static [&'static str] = &["eliot_store_retries_total"];

    fn log(&self, log: &Logger) {
        let StoreRetry { rows, wait, error } = *self;
        warn!(log, "commit failed; nothing acked, retrying the batch";
            "event" => Self::NAME, "rows" => rows, "wait_ms" => wait.as_millis() as u64,
            "error" => %Clean(error))
    }

    fn count(&self, m: &Metrics) {
        m.store_retries.inc();
    }
}

/// The oldest dead letters were removed to stay within `store.dead_letter_quota`.
pub struct DeadLettersShed {
    pub rows: usize,
    pub bytes: u64,
    pub quota: u64,
}

impl Observe for DeadLettersShed {
    const NAME: &'static str = "dead_letters_shed";
    const MOVES: &'static [&'static str] = &[
        "eliot_dead_letters_shed_total",
        "eliot_dead_letters_shed_bytes_total",
    ];

    fn log(&self, log: &Logger) {
        let DeadLettersShed { rows, bytes, quota } = *self;
        warn!(log, "dead letters over their quota: the oldest shed";
            "event" => Self::NAME, "rows" => rows, "bytes" => bytes, "quota_bytes" => quota)
    }

    fn count(&self, m: &Metrics) {
        m.dead_letters_shed.inc_by(self.rows as u64);
        m.dead_letters_shed_bytes.inc_by(self.bytes);
    }
}

/// A sealed generation of the log is wholly merged into a chunk.
pub struct GenerationMerged {
    pub readings: usize,
    pub took: Duration,
}

impl Observe for GenerationMerged {
    const NAME: &'static str = "generation_merged";
    const MOVES: &'static [&'static str] = &["eliot_readings_merged_total"];

    fn log(&self, log: &Logger) {
        let GenerationMerged { readings, took } = *self;
        debug!(log, "a generation of the log merged into its chunk";
            "event" => Self::NAME, "readings" => readings,
            "duration_ms" => took.as_millis() as u64)
    }

    fn count(&self, m: &Metrics) {
        m.readings_merged.inc_by(self.readings as u64);
    }
}

/// Retention dropped whole chunks.
pub struct ChunksExpired {
    pub chunks: usize,
    pub readings: u64,
    pub retention: Duration,
}

impl Observe for ChunksExpired {
    const NAME: &'static str = "chunks_expired";
    const MOVES: &'static [&'static str] =
        &["eliot_chunks_expired_total", "eliot_readings_expired_total"];

    fn log(&self, log: &Logger) {
        let ChunksExpired {
            chunks,
            readings,
            retention,
        } = *self;
        info!(log, "retention dropped whole chunks";
            "event" => Self::NAME, "chunks" => chunks, "readings" => readings,
            "retention" => %humantime_serde::re::humantime::format_duration(retention))
    }

    fn count(&self, m: &Metrics) {
        m.chunks_expired.inc_by(self.chunks as u64);
        m.readings_expired.inc_by(self.readings);
    }
}
