//! The store's read API: a device's latest reading per sensor type, its last readings,
//! and its readings in a time range.
//!
//! Reads never wait for the writer: each runs on a read-only connection of its own (WAL
//! lets it read a snapshot while the writer commits), after a copy of the device's rows
//! from the memtable. Rows leave the memtable only after they are committed in a chunk,
//! so reading the memtable first and SQLite second misses nothing; what both hold is
//! returned once.

use std::ops::Bound;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OpenFlags};
use serde::Serialize;

use super::super::database::{naming, StoreError};
use super::super::settings::StoreSettings;
use super::chunks::{Chunk, Chunks};
use super::memtable::{Memtable, Row as MemRow};
use super::tiers::SharedMemtable;
use crate::message::{format_micros, utc_micros};

/// Idle read connections kept for the next reads; more are opened as needed.
const IDLE_CONNECTIONS: usize = 4;

/// One stored reading, as the read API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredReading {
    pub device_id: String,
    pub sensor_type: String,
    /// Same format as the `readings` view's `ts`.
    pub timestamp: String,
    /// The `data` object, as compact JSON text.
    pub data: String,
    pub received_at: String,
}

/// A reading of a known device as a read found it: its key (sensor type, microseconds)
/// and its columns as the text they are returned in (a chunk's, as stored; the
/// memtable's, formatted), so that rows read from SQLite are never parsed and formatted
/// again.
pub(super) struct Found {
    pub(super) sensor: String,
    pub(super) ts: i64,
    timestamp: String,
    data: String,
    received_at: String,
}

impl Found {
    pub(super) fn key(&self) -> (i64, &str) {
        (self.ts, &self.sensor)
    }

    pub(super) fn into_reading(self, device: &str) -> StoredReading {
        StoredReading {
            device_id: device.to_owned(),
            sensor_type: self.sensor,
            timestamp: self.timestamp,
            data: self.data,
            received_at: self.received_at,
        }
    }
}

/// Which end of a device's time order a read keeps.
#[derive(Clone, Copy)]
enum Order {
    NewestFirst,
    OldestFirst,
}

/// The first `limit` of `found` in `order` (by time, then sensor type), each key once.
fn first_of(device: &str, mut found: Vec<Found>, order: Order, limit: usize) -> Vec<StoredReading> {
    match order {
        Order::NewestFirst => {
            found.sort_unstable_by(|a, b| b.ts.cmp(&a.ts).then_with(|| a.sensor.cmp(&b.sensor)))
        }
        Order::OldestFirst => found.sort_unstable_by(|a, b| a.key().cmp(&b.key())),
    }
    found.dedup_by(|a, b| a.key() == b.key());
    found.truncate(limit);
    found.into_iter().map(|f| f.into_reading(device)).collect()
}

#[derive(Clone)]
pub struct Reader {
    path: PathBuf,
    memtable: SharedMemtable,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl Reader {
    pub fn new(settings: &StoreSettings, memtable: SharedMemtable) -> Reader {
        Reader {
            path: settings.db_path(),
            memtable,
            idle: Arc::default(),
        }
    }

    /// The newest reading of each of the device's sensor types.
    pub fn latest(&self, device: &str) -> Result<Vec<StoredReading>, StoreError> {
        let mut found = self.in_memtable(|m| m.latest_rows(device));
        self.with_snapshot(device, |conn, chunks, sensors| {
            for sensor in sensors {
                for chunk in chunks {
                    let better_than = found
                        .iter()
                        .filter(|f| f.sensor == sensor)
                        .map(|f| f.ts)
                        .max()
                        .unwrap_or(i64::MIN);
                    if chunk.ts_range.is_none_or(|(_, max)| max <= better_than) {
                        continue;
                    }
                    let sql = "ORDER BY ts DESC LIMIT 1";
                    let newest_there = query(conn, chunk, device, Some(&sensor), None, sql)?;
                    found.extend(newest_there.into_iter().filter(|f| f.ts > better_than));
                }
            }
            Ok(())
        })?;
        // Newest first; a stable sort by sensor type then keeps each type's newest first.
        let mut newest = first_of(device, found, Order::NewestFirst, usize::MAX);
        newest.sort_by(|a, b| a.sensor_type.cmp(&b.sensor_type));
        newest.dedup_by(|a, b| a.sensor_type == b.sensor_type);
        Ok(newest)
    }

    /// The device's `count` newest readings, newest first.
    pub fn last(&self, device: &str, count: usize) -> Result<Vec<StoredReading>, StoreError> {
        let mut found =
            self.in_memtable(|m| m.device_rows(device, (i64::MIN, i64::MAX), true, count));
        self.with_snapshot(device, |conn, chunks, _| {
            let sql = format!("ORDER BY ts DESC LIMIT {count}");
            for chunk in chunks {
                found.extend(query(conn, chunk, device, None, None, &sql)?);
            }
            Ok(())
        })?;
        Ok(first_of(device, found, Order::NewestFirst, count))
    }

    /// The device's readings with `from <= ts < to` (microseconds), oldest first; at
    /// most `limit` (the oldest ones).
    pub fn range(
        &self,
        device: &str,
        (from, to): (i64, i64),
        limit: usize,
    ) -> Result<Vec<StoredReading>, StoreError> {
        let mut found = self.in_memtable(|m| m.device_rows(device, (from, to), false, limit));
        self.with_snapshot(device, |conn, chunks, _| {
            let sql = format!("ORDER BY ts LIMIT {limit}");
            let overlapping = chunks.iter().filter(|chunk| {
                chunk
                    .ts_range
                    .is_some_and(|(min, max)| min < to && max >= from)
            });
            for chunk in overlapping {
                found.extend(query(conn, chunk, device, None, Some((from, to)), &sql)?);
            }
            Ok(())
        })?;
        Ok(first_of(device, found, Order::OldestFirst, limit))
    }

    /// What `pick` copies out of the memtable, under its lock for no longer than that.
    pub(super) fn in_memtable(
        &self,
        pick: impl FnOnce(&Memtable) -> Vec<(Arc<str>, i64, MemRow)>,
    ) -> Vec<Found> {
        let rows = {
            let memtable = self.memtable.read().unwrap_or_else(|e| e.into_inner());
            pick(&memtable)
        };
        rows.into_iter()
            .map(|(sensor, ts, row)| Found {
                sensor: sensor.to_string(),
                ts,
                timestamp: format_micros(ts),
                data: row.data.into(),
                received_at: format_micros(row.received_at),
            })
            .collect()
    }

    /// Runs `read` in one read transaction, with the chunks (newest first) and the
    /// device's sensor types known to the chunks, as of that snapshot.
    pub(super) fn with_snapshot(
        &self,
        device: &str,
        read: impl FnOnce(&Connection, &[Chunk], Vec<String>) -> rusqlite::Result<()>,
    ) -> Result<(), StoreError> {
        self.in_read_transaction(|tx| {
            let mut chunks = Chunks::load(tx)?.list;
            chunks.reverse();
            let sensors = {
                let mut statement = tx.prepare_cached(
                    "SELECT sensor_type FROM series WHERE device_id = ?1 ORDER BY sensor_type",
                )?;
                let sensors = statement.query_map([device], |r| r.get(0))?;
                sensors.collect::<rusqlite::Result<Vec<String>>>()?
            };
            read(tx, &chunks, sensors)
        })
    }

    /// Runs `read` in one read transaction on a read-only connection (an idle one, or
    /// a new one), which it then keeps for the next read.
    pub(in crate::store) fn in_read_transaction<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let sqlite = naming(&self.path);
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => open_read_only(&self.path).map_err(&sqlite)?,
        };
        let result = (|| {
            let tx = conn.transaction()?;
            let answer = read(&tx)?;
            tx.finish()?;
            Ok(answer)
        })();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_CONNECTIONS {
            idle.push(conn);
        }
        result.map_err(&sqlite)
    }
}

fn open_read_only(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.execute_batch("PRAGMA busy_timeout = 1000")?;
    Ok(conn)
}

/// The rows of `device` in `chunk` (of one sensor type, or all), optionally within
/// `[from, to)`, ordered and limited by `order_limit`. A chunk is clustered by device then
/// time, so a device's newest (or a range) are read in order, whatever the sensor type.
fn query(
    conn: &Connection,
    chunk: &Chunk,
    device: &str,
    sensor: Option<&str>,
    within: Option<(i64, i64)>,
    order_limit: &str,
) -> rusqlite::Result<Vec<Found>> {
    let (from, to) = within.unwrap_or((0, i64::MAX));
    let which_sensor = if sensor.is_some() {
        "AND sensor_type = ?4"
    } else {
        "AND ?4 IS NULL"
    };
    let mut statement = conn.prepare_cached(&format!(
        "SELECT sensor_type, ts, data, received_at FROM {} \
         WHERE device_id = ?1 AND ts >= ?2 AND ts < ?3 {which_sensor} {order_limit}",
        chunk.table()
    ))?;
    // Timestamps as text compare as times; `~` sorts after any of them.
    let upper = if to == i64::MAX {
        "~".to_owned()
    } else {
        format_micros(to)
    };
    let rows = statement.query_map(params![device, format_micros(from), upper, sensor], columns)?;
    found(rows)
}

/// A range of keys (time as text, sensor type), as a chunk's rows are compared.
pub(super) type TextRange = (Bound<(String, String)>, Bound<(String, String)>);

/// A keyset page's rows of `device` in `chunk`: keys (time as text, sensor type) within
/// `bounds`, of `sensor` only when given, in key order or its reverse, `limit` at most.
/// The chunk's primary key leads with (device, time, sensor type): SQLite walks it from
/// the page's start, whatever the filters.
pub(super) fn query_page(
    conn: &Connection,
    chunk: &Chunk,
    device: &str,
    bounds: TextRange,
    sensor: Option<&str>,
    descending: bool,
    limit: usize,
) -> rusqlite::Result<Vec<Found>> {
    let condition =
        |bound: &Bound<(String, String)>, included: &str, excluded: &str, n: u8| match bound {
            Bound::Included(_) => format!("AND (ts, sensor_type) {included} (?{n}, ?{})", n + 1),
            Bound::Excluded(_) => format!("AND (ts, sensor_type) {excluded} (?{n}, ?{})", n + 1),
            Bound::Unbounded => format!("AND ?{n} IS NULL AND ?{} IS NULL", n + 1),
        };
    let low = condition(&bounds.0, ">=", ">", 2);
    let high = condition(&bounds.1, "<=", "<", 4);
    let which_sensor = match sensor {
        Some(_) => "AND sensor_type = ?6",
        None => "AND ?6 IS NULL",
    };
    let direction = if descending { "DESC" } else { "ASC" };
    let mut statement = conn.prepare_cached(&format!(
        "SELECT sensor_type, ts, data, received_at FROM {} \
         WHERE device_id = ?1 {low} {high} {which_sensor} \
         ORDER BY ts {direction}, sensor_type {direction} LIMIT {limit}",
        chunk.table()
    ))?;
    let parts = |bound: Bound<(String, String)>| match bound {
        Bound::Included(k) | Bound::Excluded(k) => (Some(k.0), Some(k.1)),
        Bound::Unbounded => (None, None),
    };
    let ((low_ts, low_sensor), (high_ts, high_sensor)) = (parts(bounds.0), parts(bounds.1));
    let rows = statement.query_map(
        params![device, low_ts, low_sensor, high_ts, high_sensor, sensor],
        columns,
    )?;
    found(rows)
}

/// A chunk row's `sensor_type, ts, data, received_at`, as text.
fn columns(row: &rusqlite::Row<'_>) -> rusqlite::Result<[String; 4]> {
    Ok([row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?])
}

/// The rows as `Found`; one whose time is not Eliot's format (never written so) is skipped.
fn found(
    rows: impl Iterator<Item = rusqlite::Result<[String; 4]>>,
) -> rusqlite::Result<Vec<Found>> {
    let mut found = Vec::new();
    for row in rows {
        let [sensor, timestamp, data, received_at] = row?;
        let Some(ts) = utc_micros(&timestamp) else {
            continue;
        };
        found.push(Found {
            sensor,
            ts,
            timestamp,
            data,
            received_at,
        });
    }
    Ok(found)
}
