//! Deleting every stored reading of one device, in bounded steps between the writer's
//! commits (a device may have millions): each step is a transaction of its own.
//!
//! 1. The unmerged readings first: the device's log rows, then its rows in memory (both
//!    generations, the sealed one included). From then on no merge can carry one of
//!    them into a chunk, so nothing the purge deletes there comes back.
//! 2. The chunks, at most `rows` rows a step, the chunk's count kept with them.
//! 3. A last step deletes again what was logged meanwhile (the device, or a replay, may
//!    have written during the purge), and if no chunk holds a row of the device (a merge
//!    may have carried one there since), forgets its series: in the database and in
//!    memory at once. Otherwise the chunks are stepped through again.
//!
//! The merge's bookkeeping is untouched: its progress is a key, and a slice past a
//! device no longer in memory simply finds nothing of it; a merged generation's log
//! rows are deleted by `seq`, whatever is gone among them. A crash mid-purge loses only
//! part of the purge (the caller was not answered, and purges again).

use rusqlite::{params, Connection};

use super::chunks::Chunk;
use super::tiers::Tiers;

/// Where a purge is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeStage {
    Unmerged,
    Chunks,
    Last,
    Done,
}

impl Tiers {
    /// One step of purging `device`; answers the readings it deleted, and moves `stage` on.
    pub fn purge_step(
        &mut self,
        conn: &mut Connection,
        device: &str,
        stage: &mut PurgeStage,
        rows: usize,
    ) -> rusqlite::Result<u64> {
        match *stage {
            PurgeStage::Unmerged => {
                let deleted = self.purge_unmerged(conn, device, false)?;
                *stage = PurgeStage::Chunks;
                Ok(deleted)
            }
            PurgeStage::Chunks => match self.chunk_holding(conn, device)? {
                Some(chunk) => self.purge_chunk(conn, device, &chunk, rows),
                None => {
                    *stage = PurgeStage::Last;
                    Ok(0)
                }
            },
            PurgeStage::Last => {
                if self.chunk_holding(conn, device)?.is_some() {
                    *stage = PurgeStage::Chunks;
                    return Ok(0);
                }
                let deleted = self.purge_unmerged(conn, device, true)?;
                *stage = PurgeStage::Done;
                Ok(deleted)
            }
            PurgeStage::Done => Ok(0),
        }
    }

    /// Deletes the device's log rows (and, when `last`, its series) in one transaction,
    /// then its rows in memory. The log is at most two generations: one scan of it.
    fn purge_unmerged(
        &mut self,
        conn: &mut Connection,
        device: &str,
        last: bool,
    ) -> rusqlite::Result<u64> {
        let tx = conn.transaction()?;
        // Counted as the `readings` view shows them: merged ones are counted in their chunk.
        let unmerged: i64 = tx.query_row(
            "SELECT count(*) FROM readings_log WHERE device_id = ?1 \
             AND (seq > (SELECT sealed_through FROM merge_state) \
             OR (device_id, ts, sensor_type) > \
                (SELECT merged_device, merged_ts, merged_sensor FROM merge_state))",
            params![device],
            |r| r.get(0),
        )?;
        tx.execute(
            "DELETE FROM readings_log WHERE device_id = ?1",
            params![device],
        )?;
        if last {
            tx.execute("DELETE FROM series WHERE device_id = ?1", params![device])?;
        }
        tx.commit()?;
        {
            let mut memtable = self.memtable.write().unwrap_or_else(|e| e.into_inner());
            if let Some(sealed) = memtable.sealed.as_mut() {
                sealed.remove_device(device);
            }
            memtable.active.remove_device(device);
        }
        if last {
            self.series.forget_device(device);
        }
        Ok(u64::try_from(unmerged).unwrap_or(0))
    }

    /// The oldest chunk holding a row of `device`, if any (a seek of each chunk's key).
    fn chunk_holding(&self, conn: &Connection, device: &str) -> rusqlite::Result<Option<Chunk>> {
        for chunk in &self.chunks.list {
            let sql = format!(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE device_id = ?1)",
                chunk.table()
            );
            let holds: bool = conn
                .prepare_cached(&sql)?
                .query_row(params![device], |r| r.get(0))?;
            if holds {
                return Ok(Some(chunk.clone()));
            }
        }
        Ok(None)
    }

    /// Deletes at most `rows` of the device's rows from `chunk`, its count with them.
    fn purge_chunk(
        &mut self,
        conn: &mut Connection,
        device: &str,
        chunk: &Chunk,
        rows: usize,
    ) -> rusqlite::Result<u64> {
        let table = chunk.table();
        let tx = conn.transaction()?;
        let deleted = tx.execute(
            &format!(
                "DELETE FROM {table} WHERE (device_id, ts, sensor_type) IN \
                 (SELECT device_id, ts, sensor_type FROM {table} WHERE device_id = ?1 LIMIT ?2)"
            ),
            params![device, rows.max(1) as i64],
        )?;
        tx.execute(
            "UPDATE chunks SET rows = max(rows - ?2, 0) WHERE id = ?1",
            params![chunk.id, deleted as i64],
        )?;
        tx.commit()?;
        if let Some(listed) = self.chunks.list.iter_mut().find(|c| c.id == chunk.id) {
            listed.rows = (listed.rows - deleted as i64).max(0);
        }
        Ok(deleted as u64)
    }
}
