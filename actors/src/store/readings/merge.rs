//! Moving readings from the log to a chunk, in bulk and in key order, so that a chunk's
//! pages are written once per many readings of a device rather than once per reading.
//!
//! When the active generation holds `generation_rows` (or `generation_bytes`, whichever
//! comes first), it is sealed (one UPDATE); the sealed generation is then merged into the
//! open chunk `merge_slice` rows at a time, one transaction per slice, between the writes;
//! when all of it is, it leaves memory, and its log rows are deleted, a slice of `seq` at a
//! time too (all at once, 100,000 rows took 40–70 ms, every ack waiting), before the next
//! generation is sealed. Each slice records how far the merge got in the same transaction,
//! so a crash resumes it where it stopped, nothing merged twice; the `readings` view hides
//! the merged rows still in the log.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{params, Connection};

use super::bulk_insert::insert_all;
use super::chunks::{table, Chunk, Chunks};
use super::memtable::Generation;
use super::tiers::Tiers;
use crate::message::format_micros;

/// How the merge is paced.
#[derive(Debug, Clone, Copy)]
pub struct MergePace {
    pub generation_rows: usize,
    /// What a generation may take in memory (`Row::bytes`), whatever its rows.
    pub generation_bytes: usize,
    pub merge_slice: usize,
    /// Microseconds of arrival time one chunk spans.
    pub chunk_span: i64,
}

impl MergePace {
    /// Whether `generation` is to be sealed: it holds its rows, or its bytes.
    pub fn is_full(&self, generation: &Generation) -> bool {
        generation.rows() >= self.generation_rows || generation.bytes() >= self.generation_bytes
    }
}

/// What one step of upkeep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Upkeep {
    /// Rows merged into a chunk.
    pub merged: usize,
    /// The sealed generation was wholly merged (and left memory): its readings, and how
    /// long since it was sealed (or found sealed at opening).
    pub generation_done: Option<(usize, std::time::Duration)>,
    /// Chunks dropped by retention.
    pub expired: Vec<Chunk>,
}

impl Tiers {
    /// Whether there is merging to do now: a sealed generation, log rows of a merged one
    /// to delete, or an active one to seal.
    pub fn wants_merge(&self, pace: &MergePace) -> bool {
        let memtable = self.memtable.read().unwrap_or_else(|e| e.into_inner());
        memtable.sealed.is_some()
            || self.deleting_through.is_some()
            || pace.is_full(&memtable.active)
    }

    /// Deletes at most `rows` of a merged generation's log rows, if any are left; otherwise
    /// seals the active generation once it is full and nothing else is sealed, then merges
    /// a slice of at most `rows` of the sealed generation. Each in its own transaction.
    pub fn merge_step(
        &mut self,
        conn: &mut Connection,
        pace: &MergePace,
        rows: usize,
        now: i64,
    ) -> rusqlite::Result<Upkeep> {
        if let Some(through) = self.deleting_through {
            self.delete_merged(conn, through, rows.clamp(1, pace.merge_slice))?;
            return Ok(Upkeep::default());
        }
        let sealing = {
            let memtable = self.memtable.read().unwrap_or_else(|e| e.into_inner());
            memtable.sealed.is_none() && pace.is_full(&memtable.active)
        };
        if sealing {
            self.seal(conn)?;
        }
        self.merge_slice(conn, pace, rows.clamp(1, pace.merge_slice), now)
    }

    fn seal(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let last_seq = {
            let memtable = self.memtable.read().unwrap_or_else(|e| e.into_inner());
            memtable.active.last_seq
        };
        conn.execute(
            "UPDATE merge_state SET sealed_through = ?1, \
             merged_device = '', merged_sensor = '', merged_ts = ''",
            params![last_seq],
        )?;
        let mut memtable = self.memtable.write().unwrap_or_else(|e| e.into_inner());
        let mut active = std::mem::take(&mut memtable.active);
        active.seal();
        memtable.active.last_seq = active.last_seq;
        memtable.sealed = Some(active);
        self.merged_through = None;
        self.sealed_at = std::time::Instant::now();
        Ok(())
    }

    /// Merges the next slice; on failure, the chunk list is read again, since what was
    /// changed of it in memory was rolled back in the database.
    fn merge_slice(
        &mut self,
        conn: &mut Connection,
        pace: &MergePace,
        rows: usize,
        now: i64,
    ) -> rusqlite::Result<Upkeep> {
        let merged = self.try_merge_slice(conn, pace, rows, now);
        if merged.is_err() {
            self.chunks = Chunks::load(conn)?;
        }
        merged
    }

    fn try_merge_slice(
        &mut self,
        conn: &mut Connection,
        pace: &MergePace,
        rows: usize,
        now: i64,
    ) -> rusqlite::Result<Upkeep> {
        let (slice, sealed_through, sealed_rows) = {
            let memtable = self.memtable.read().unwrap_or_else(|e| e.into_inner());
            let Some(sealed) = &memtable.sealed else {
                return Ok(Upkeep::default());
            };
            (
                sealed.slice(self.merged_through.as_ref(), rows),
                sealed.last_seq,
                sealed.rows(),
            )
        };
        let done = slice.len() < rows;
        let tx = conn.transaction()?;
        let chunk = self.chunks.open_for_merge(&tx, now, pace.chunk_span)?;
        let mut series_max: HashMap<(Arc<str>, Arc<str>), i64> = HashMap::new();
        let mut ts_range = (i64::MAX, i64::MIN);
        let mut last_received = i64::MIN;
        let merged;
        {
            let head = format!(
                "INSERT OR IGNORE INTO {} (device_id, sensor_type, ts, data, received_at)",
                table(chunk)
            );
            merged = insert_all(&tx, &head, 5, &slice, |values, (key, row)| {
                values.bind(&*key.device)?;
                values.bind(&*key.sensor)?;
                values.bind(format_micros(key.ts))?;
                values.bind(&*row.data)?;
                values.bind(format_micros(row.received_at))
            })?;
            for (key, row) in &slice {
                let max = series_max
                    .entry((key.device.clone(), key.sensor.clone()))
                    .or_insert(key.ts);
                *max = (*max).max(key.ts);
                ts_range = (ts_range.0.min(key.ts), ts_range.1.max(key.ts));
                last_received = last_received.max(row.received_at);
            }
            let mut series = tx.prepare_cached(
                "INSERT INTO series (device_id, sensor_type, merged_max_ts, last_chunk) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO UPDATE SET \
                 merged_max_ts = max(merged_max_ts, excluded.merged_max_ts), \
                 last_chunk = max(last_chunk, excluded.last_chunk)",
            )?;
            for ((device, sensor), ts) in &series_max {
                series.execute(params![&**device, &**sensor, format_micros(*ts), chunk])?;
            }
        }
        if !slice.is_empty() {
            self.chunks
                .grew(&tx, chunk, merged as i64, ts_range, last_received)?;
        }
        let through = slice.last().map(|(key, _)| key.clone());
        if let Some(key) = &through {
            tx.execute(
                "UPDATE merge_state SET merged_device = ?1, merged_sensor = ?2, merged_ts = ?3",
                params![&*key.device, &*key.sensor, format_micros(key.ts)],
            )?;
        }
        tx.commit()?;
        for ((device, sensor), ts) in series_max {
            self.series.merged(&device, &sensor, ts);
        }
        if through.is_some() {
            self.merged_through = through;
        }
        if done {
            let sealed = {
                let mut memtable = self.memtable.write().unwrap_or_else(|e| e.into_inner());
                memtable.sealed.take()
            };
            // Freed outside the lock: a reader waits for no deallocation.
            drop(sealed);
            self.merged_through = None;
            self.interner.prune();
            self.deleting_through = Some(sealed_through);
        }
        Ok(Upkeep {
            merged: slice.len(),
            generation_done: done.then(|| (sealed_rows, self.sealed_at.elapsed())),
            expired: Vec::new(),
        })
    }

    /// Deletes the oldest `rows` log rows at most, of those with `seq <= through` (merged
    /// already: the view does not show them). Once none is left, the next generation may be
    /// sealed.
    fn delete_merged(
        &mut self,
        conn: &Connection,
        through: i64,
        rows: usize,
    ) -> rusqlite::Result<()> {
        conn.execute(
            "DELETE FROM readings_log \
             WHERE seq <= min(?1, (SELECT min(seq) FROM readings_log) + ?2 - 1)",
            params![through, rows as i64],
        )?;
        // Not "fewer deleted than asked": seqs have gaps (a rolled-back write used some).
        let left: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM readings_log WHERE seq <= ?1)",
            params![through],
            |r| r.get(0),
        )?;
        if !left {
            self.deleting_through = None;
        }
        Ok(())
    }

    /// Drops the chunks whose newest reading was received before `now - retention`, and
    /// forgets the series that were only in them.
    pub fn expire(&mut self, conn: &mut Connection, horizon: i64) -> rusqlite::Result<Vec<Chunk>> {
        let expired = (|| {
            let tx = conn.transaction()?;
            let gone = self.chunks.expire(&tx, horizon)?;
            let forgotten = if gone.is_empty() {
                Vec::new()
            } else {
                forget_series_before(&tx, self.chunks.list.first().map_or(i64::MAX, |c| c.id))?
            };
            tx.commit()?;
            Ok((gone, forgotten))
        })();
        let (gone, forgotten) = match expired {
            Ok(expired) => expired,
            Err(e) => {
                self.chunks = Chunks::load(conn)?;
                return Err(e);
            }
        };
        let memtable = self.memtable.read().unwrap_or_else(|e| e.into_inner());
        for (device, sensor) in forgotten {
            let unmerged = memtable.has_series(&device, &sensor);
            self.series.expired(&device, &sensor, unmerged);
        }
        Ok(gone)
    }
}

/// Deletes the series whose newest chunk is older than chunk `oldest` (the oldest left):
/// all their readings were in chunks retention dropped. Answers which.
fn forget_series_before(conn: &Connection, oldest: i64) -> rusqlite::Result<Vec<(String, String)>> {
    let mut deleted =
        conn.prepare("DELETE FROM series WHERE last_chunk < ?1 RETURNING device_id, sensor_type")?;
    let forgotten = deleted.query_map(params![oldest], |r| Ok((r.get(0)?, r.get(1)?)))?;
    forgotten.collect()
}
