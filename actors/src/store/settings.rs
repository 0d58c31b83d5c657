//! The `[store]` section: where the database is, how writes are batched, how much is
//! kept, and how the log is merged into chunks.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::readings::MergePace;
use crate::settings::Problems;

/// The `[store]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// Directory holding `eliot.db` (created if missing).
    pub data_dir: PathBuf,
    /// Most rows one transaction carries; a full batch is committed at once.
    pub batch_max: usize,
    /// Longest a row waits for its batch to fill before the batch is committed anyway.
    #[serde(with = "humantime_serde")]
    pub batch_delay: Duration,
    /// Capacity of the store writer's mailbox, in write requests; senders wait when it is full.
    pub mailbox: usize,
    /// `normal` survives a crash of Eliot (kill -9); `full` also survives power loss, slower.
    pub synchronous: Synchronous,
    /// Most device sessions kept; past it, the least recently seen is dropped. Random
    /// client ids with persistent sessions cannot grow the table for ever.
    pub max_sessions: usize,
    /// Bytes the dead letters may take (payload, topic, client id and reason); past it the
    /// oldest are shed.
    pub dead_letter_quota: u64,
    /// Series (sensor types) one device may have readings of; a reading that would start
    /// one more is refused as a dead letter.
    pub max_series_per_device: usize,
    /// The most the database may grow to, in bytes (0: no limit but the disk's). Reaching it
    /// is treated as a full disk.
    pub max_size: u64,
    /// Readings held in memory (and in `readings_log`) before they are sealed and merged
    /// into a chunk; memory holds two such generations at most.
    pub generation_rows: usize,
    /// What a generation's readings may take in memory, about (their data, plus 64 bytes
    /// each), however few they are: a generation is sealed at whichever of the two comes
    /// first, so memory holds about twice this at most, whatever devices send.
    pub generation_bytes: usize,
    /// Readings merged into a chunk per transaction, between writes (and log rows of a
    /// merged generation deleted per transaction).
    pub merge_slice: usize,
    /// The arrival time one chunk spans; retention drops whole chunks.
    #[serde(with = "humantime_serde")]
    pub chunk_span: Duration,
    /// Readings received longer ago than this are dropped, a whole chunk at a time (a
    /// chunk goes once its newest reading is that old). Absent: kept for ever.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub retention: Option<Duration>,
}

impl StoreSettings {
    /// Settings for unit tests of the store: a database in `dir`, small batches, and no
    /// size limit or quota to get in the way.
    #[cfg(test)]
    pub(crate) fn for_tests(dir: &std::path::Path) -> Self {
        StoreSettings {
            data_dir: dir.to_owned(),
            batch_max: 100,
            batch_delay: Duration::from_millis(1),
            mailbox: 16,
            synchronous: Synchronous::Normal,
            max_sessions: 100,
            dead_letter_quota: 1 << 30,
            max_series_per_device: 100,
            max_size: 0,
            generation_rows: 1_000,
            generation_bytes: 1 << 30,
            merge_slice: 300,
            chunk_span: Duration::from_secs(86_400),
            retention: None,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("eliot.db")
    }

    pub fn validate(&self, problems: &mut Problems) {
        problems.at_least("batch_max", self.batch_max, 1);
        problems.at_least("mailbox", self.mailbox, 1);
        problems.at_least("max_sessions", self.max_sessions, 1);
        problems.at_least("dead_letter_quota", self.dead_letter_quota, 1);
        problems.at_least("max_series_per_device", self.max_series_per_device, 1);
        problems.at_least("generation_rows", self.generation_rows, 1);
        problems.at_least("generation_bytes", self.generation_bytes, 1);
        problems.at_least("merge_slice", self.merge_slice, 1);
        problems.positive("chunk_span", self.chunk_span);
        if let Some(retention) = self.retention {
            if retention < self.chunk_span {
                problems.add(
                    "retention",
                    format!(
                        "{} is shorter than chunk_span ({}): retention drops whole chunks",
                        humantime_serde::re::humantime::format_duration(retention),
                        humantime_serde::re::humantime::format_duration(self.chunk_span)
                    ),
                );
            }
        }
    }

    pub(super) fn pace(&self) -> MergePace {
        MergePace {
            generation_rows: self.generation_rows,
            generation_bytes: self.generation_bytes,
            merge_slice: self.merge_slice,
            chunk_span: micros(self.chunk_span),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    Normal,
    Full,
}

/// Microseconds in `d`, saturated.
pub(super) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}
