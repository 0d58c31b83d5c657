//! Where readings live between their commit and their chunk, and how a new reading is
//! checked against everything stored: the memtable (recent readings, no SQL), then, only
//! for a reading no newer than what its series already has in the chunks, the chunks.
//!
//! A reading whose key is stored with the same data is a duplicate (a redelivery); with
//! other data, a conflict.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use rusqlite::{params, Connection};

use super::bulk_insert::insert_all;
use super::chunks::Chunks;
use super::memtable::{Generation, Interner, Key, Memtable, Row};
use super::series::Series;
use crate::message::{format_micros, utc_micros, Origin, Reading};

/// The memtable, as the store writer and the readers share it.
pub type SharedMemtable = Arc<RwLock<Memtable>>;

/// What the store knows of one reading's key.
pub enum Found {
    Nothing,
    Same,
    Different,
}

/// What became of an accepted message's readings.
pub enum Accepted {
    /// The new ones appended to the log; the rest were stored already, with the same data.
    Stored { fresh: usize, duplicates: usize },
    /// One has a stored key with other data, or would start a series past its device's
    /// limit: nothing of the message is written, and this is the reason its dead letter
    /// gives.
    Refused(String),
}

/// Readings accepted in the transaction being written, not yet in the memtable: `rows`
/// answers lookups, `appends` is what `write_log` appends to the log before the commit,
/// `new_series` the series they start.
#[derive(Default)]
pub struct Staged<'a> {
    rows: HashMap<Key, (Row, i64)>,
    appends: Vec<(i64, &'a Reading)>,
    new_series: SensorsByDevice,
}

/// Sensor types, by device.
type SensorsByDevice = HashMap<Arc<str>, HashSet<Arc<str>>>;

pub struct Tiers {
    pub memtable: SharedMemtable,
    pub interner: Interner,
    pub chunks: Chunks,
    /// Every series with readings stored, and the newest `ts` of each merged into a
    /// chunk: a newer reading cannot be in one.
    pub series: Series,
    /// `store.max_series_per_device`.
    max_series_per_device: usize,
    /// How far the sealed generation is merged (in key order); `None`: not begun.
    pub merged_through: Option<Key>,
    /// When the sealed generation was sealed (or found sealed at opening).
    pub sealed_at: std::time::Instant,
    /// A merged generation's log rows (those with `seq` up to this) are still being
    /// deleted; the next generation is sealed only after.
    pub deleting_through: Option<i64>,
    /// The `readings_log.seq` the next accepted reading gets: above every seq ever
    /// committed (AUTOINCREMENT's `sqlite_sequence` keeps that even once the log is emptied).
    next_seq: i64,
}

impl Tiers {
    /// Loads the chunk list and the series from the database, and rebuilds the memtable
    /// (into `memtable`, which readers may already hold) from `readings_log`.
    pub fn load(
        conn: &Connection,
        memtable: SharedMemtable,
        max_series_per_device: usize,
    ) -> rusqlite::Result<Tiers> {
        let mut interner = Interner::default();
        let series = Series::load(conn, &mut interner)?;
        let (sealed_through, device, sensor, ts): (i64, String, String, String) = conn.query_row(
            "SELECT sealed_through, merged_device, merged_sensor, merged_ts FROM merge_state",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        let merged_through = utc_micros(&ts).map(|ts| Key {
            device: interner.intern(&device),
            sensor: interner.intern(&sensor),
            ts,
        });
        let mut active = Generation::default();
        let mut sealed = Generation::default();
        {
            let mut log = conn.prepare(
                "SELECT seq, device_id, sensor_type, ts, data, received_at FROM readings_log ORDER BY seq",
            )?;
            let mut rows = log.query([])?;
            while let Some(row) = rows.next()? {
                let seq: i64 = row.get(0)?;
                let (device, sensor): (String, String) = (row.get(1)?, row.get(2)?);
                let (ts, data, received_at): (String, String, String) =
                    (row.get(3)?, row.get(4)?, row.get(5)?);
                let key = Key {
                    device: interner.intern(&device),
                    sensor: interner.intern(&sensor),
                    ts: utc_micros(&ts).unwrap_or(0),
                };
                let row = Row {
                    data: data.into(),
                    received_at: utc_micros(&received_at).unwrap_or(0),
                };
                let generation = if seq <= sealed_through {
                    &mut sealed
                } else {
                    &mut active
                };
                generation.insert(key, row, seq);
            }
        }
        if sealed_through > 0 {
            // Rows of the sealed generation's merged part are in the chunk already; keeping
            // them here too is harmless (readers drop what they see twice).
            sealed.last_seq = sealed_through;
            sealed.seal();
            active.last_seq = active.last_seq.max(sealed_through);
        }
        {
            let mut shared = memtable.write().unwrap_or_else(|e| e.into_inner());
            shared.active = active;
            shared.sealed = (sealed_through > 0).then_some(sealed);
        }
        let next_seq = conn.query_row(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'readings_log'), 0), \
                        coalesce((SELECT max(seq) FROM readings_log), 0), ?1) + 1",
            params![sealed_through],
            |r| r.get(0),
        )?;
        Ok(Tiers {
            memtable,
            interner,
            chunks: Chunks::load(conn)?,
            series,
            max_series_per_device,
            merged_through,
            sealed_at: std::time::Instant::now(),
            // Left over by a crash, they are found sealed, their merge finds nothing more
            // to do, and their deletion starts again.
            deleting_through: None,
            next_seq,
        })
    }

    /// The key of `reading`; `None` if its timestamp is not in the store's format (which
    /// validation guarantees it is).
    pub fn key(&mut self, reading: &Reading) -> Option<Key> {
        Some(Key {
            device: self.interner.intern(&reading.device_id),
            sensor: self.interner.intern(&reading.sensor_type),
            ts: utc_micros(&reading.ts)?,
        })
    }

    /// Whether `key` is stored (or staged in this transaction), and with `data` or not.
    pub fn find(
        &self,
        conn: &Connection,
        staged: &Staged<'_>,
        key: &Key,
        data: &str,
    ) -> rusqlite::Result<Found> {
        let same = |stored: &str| {
            if stored == data {
                Found::Same
            } else {
                Found::Different
            }
        };
        if let Some((row, _)) = staged.rows.get(key) {
            return Ok(same(&row.data));
        }
        {
            let memtable = self.memtable.read().unwrap_or_else(|e| e.into_inner());
            if let Some(row) = memtable.get(key) {
                return Ok(same(&row.data));
            }
        }
        if self
            .series
            .merged_max(&key.device, &key.sensor)
            .is_some_and(|max| key.ts <= max)
        {
            if let Some(stored) = self.chunks.find(conn, &key.device, &key.sensor, key.ts)? {
                return Ok(same(&stored));
            }
        }
        Ok(Found::Nothing)
    }

    /// Stages the message's new readings for the log (`write_log` appends them in the open
    /// transaction on `conn`), all of them or, on a conflict, none.
    pub fn accept<'a>(
        &mut self,
        conn: &Connection,
        staged: &mut Staged<'a>,
        readings: &'a [Reading],
        origin: &Origin,
    ) -> rusqlite::Result<Accepted> {
        let received_at = origin.received_micros();
        let mut fresh: HashMap<Key, &'a Reading> = HashMap::new();
        let mut duplicates = 0;
        for (position, reading) in readings.iter().enumerate() {
            // Validation wrote the timestamp: it is in the store's format.
            let Some(key) = self.key(reading) else {
                let reason = format!("timestamp {} is not in the store's format", reading.ts);
                return Ok(Accepted::Refused(reason));
            };
            let found = match fresh.get(&key) {
                Some(earlier) if earlier.data == reading.data => Found::Same,
                Some(_) => Found::Different,
                None => self.find(conn, staged, &key, &reading.data)?,
            };
            match found {
                Found::Nothing => {
                    fresh.insert(key, reading);
                }
                Found::Same => duplicates += 1,
                Found::Different => {
                    let reason = conflict_reason(position, readings.len(), &key);
                    return Ok(Accepted::Refused(reason));
                }
            }
        }
        if let Err(reason) = self.stage_new_series(staged, fresh.keys()) {
            return Ok(Accepted::Refused(reason));
        }
        let count = fresh.len();
        for (key, reading) in fresh {
            self.stage(staged, key, reading, received_at);
        }
        Ok(Accepted::Stored {
            fresh: count,
            duplicates,
        })
    }

    /// Stages the series these readings start (neither stored nor staged yet), unless one
    /// would be past its device's limit: then nothing, and why.
    fn stage_new_series<'k>(
        &self,
        staged: &mut Staged<'_>,
        keys: impl Iterator<Item = &'k Key>,
    ) -> Result<(), String> {
        let mut new = SensorsByDevice::new();
        for Key { device, sensor, .. } in keys {
            let known = staged.new_series.get(device);
            if self.series.contains(device, sensor) || known.is_some_and(|s| s.contains(sensor)) {
                continue;
            }
            let message = new.entry(device.clone()).or_default();
            message.insert(sensor.clone());
            let has = self.series.of_device(device) + known.map_or(0, HashSet::len) + message.len();
            if has > self.max_series_per_device {
                return Err(format!(
                    "device `{device}` would have readings of more than {} sensor types \
                     (store.max_series_per_device): sensor_type `{sensor}` is one too many",
                    self.max_series_per_device
                ));
            }
        }
        for (device, sensors) in new {
            staged.new_series.entry(device).or_default().extend(sensors);
        }
        Ok(())
    }

    /// Gives `reading` the next seq and stages it.
    fn stage<'a>(
        &mut self,
        staged: &mut Staged<'a>,
        key: Key,
        reading: &'a Reading,
        received_at: i64,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let row = Row {
            data: reading.data.as_str().into(),
            received_at,
        };
        staged.rows.insert(key, (row, seq));
        staged.appends.push((seq, reading));
    }

    /// Appends the staged readings to the log, in the open transaction on `conn`.
    pub fn write_log(&self, conn: &Connection, staged: &Staged<'_>) -> rusqlite::Result<()> {
        let head = "INSERT INTO readings_log (seq, device_id, sensor_type, ts, data, received_at)";
        insert_all(conn, head, 6, &staged.appends, |values, (seq, reading)| {
            values.bind(seq)?;
            values.bind(&reading.device_id)?;
            values.bind(&reading.sensor_type)?;
            values.bind(&reading.ts)?;
            values.bind(&reading.data)?;
            values.bind(&reading.received_at)
        })?;
        Ok(())
    }

    /// After the commit: the staged readings join the active generation.
    pub fn committed(&mut self, staged: Staged<'_>) {
        for (device, sensors) in &staged.new_series {
            for sensor in sensors {
                self.series.add(device, sensor);
            }
        }
        let mut memtable = self.memtable.write().unwrap_or_else(|e| e.into_inner());
        for (key, (row, seq)) in staged.rows {
            memtable.active.insert(key, row, seq);
        }
    }
}

/// The reason a conflicting message is kept as a dead letter with.
pub fn conflict_reason(position: usize, of: usize, key: &Key) -> String {
    let which = if of > 1 {
        format!("reading {} of {of}: ", position + 1)
    } else {
        String::new()
    };
    format!(
        "{which}conflicts with a stored reading: device `{}`, sensor_type `{}`, timestamp {} \
         is already stored with different data",
        key.device,
        key.sensor,
        format_micros(key.ts)
    )
}
