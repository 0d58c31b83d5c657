//! The readings not yet merged into a chunk, in memory and sorted by key: what makes a
//! redelivery and a read of recent data cost no SQL.
//!
//! Their durable copy is `readings_log`, in arrival order; this mirrors it. It holds two
//! generations at most: the `active` one, which new readings join, and the `sealed` one,
//! being merged into the open chunk slice by slice. Rows leave memory only once their
//! generation is wholly merged and committed, so a reader that looks here first and at
//! SQLite second misses nothing (and drops what it sees twice by key).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

/// A reading's natural key. Ordered as SQLite orders the chunks' primary key, device, then
/// time, then sensor type (a device's readings of every sensor type share its pages): text
/// by bytes, and `ts` (microseconds) as its fixed-width text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub device: Arc<str>,
    pub ts: i64,
    pub sensor: Arc<str>,
}

/// What is kept of a reading besides its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub data: Box<str>,
    pub received_at: i64,
}

impl Row {
    /// About what this row takes in a generation: its data, plus the map entry around it
    /// (the key's time and shared names, the row's box and time, the tree's share). What a
    /// generation may hold is bounded by this as well as by its rows, so that big readings
    /// cannot fill memory.
    pub fn bytes(&self) -> usize {
        const ENTRY: usize = 64;
        self.data.len() + ENTRY
    }
}

/// A range of one device's keys (time, sensor type): a keyset page's.
pub type KeyRange = (Bound<(i64, Arc<str>)>, Bound<(i64, Arc<str>)>);

/// One device's readings, by time then sensor type.
pub type DeviceRows = BTreeMap<(i64, Arc<str>), Row>;

#[derive(Debug, Default)]
pub struct Generation {
    /// By device (hashed: looked up for every reading written).
    devices: HashMap<Arc<str>, DeviceRows>,
    /// The devices in key order, for merging; set when the generation is sealed.
    order: Vec<Arc<str>>,
    rows: usize,
    /// What its rows take in memory, about: see `Row::bytes`.
    bytes: usize,
    /// The highest `readings_log.seq` in it.
    pub last_seq: i64,
}

impl Generation {
    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn get(&self, key: &Key) -> Option<&Row> {
        self.devices
            .get(&key.device)?
            .get(&(key.ts, key.sensor.clone()))
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn insert(&mut self, key: Key, row: Row, seq: i64) {
        let device = self.devices.entry(key.device).or_default();
        self.bytes += row.bytes();
        match device.insert((key.ts, key.sensor), row) {
            None => self.rows += 1,
            Some(replaced) => self.bytes -= replaced.bytes(),
        }
        self.last_seq = self.last_seq.max(seq);
    }

    pub fn device(&self, device: &str) -> Option<&DeviceRows> {
        self.devices.get(device)
    }

    /// Drops every row of `device` (a purge). A sealed generation's merge, whose progress
    /// is a key, goes on past where the device was.
    pub fn remove_device(&mut self, device: &str) -> usize {
        let Some(rows) = self.devices.remove(device) else {
            return 0;
        };
        if let Ok(at) = self.order.binary_search_by(|d| (**d).cmp(device)) {
            self.order.remove(at);
        }
        self.rows -= rows.len();
        self.bytes -= rows.values().map(Row::bytes).sum::<usize>();
        rows.len()
    }

    /// No more rows will join: orders the devices once, for `slice`.
    pub fn seal(&mut self) {
        self.order = self.devices.keys().cloned().collect();
        self.order.sort_unstable();
    }

    /// Up to `limit` rows in key order, from just after `after` (from the start: `None`).
    /// Only for a sealed generation.
    pub fn slice(&self, after: Option<&Key>, limit: usize) -> Vec<(Key, Row)> {
        debug_assert_eq!(self.order.len(), self.devices.len(), "sealed");
        let mut slice = Vec::with_capacity(limit.min(self.rows));
        let first = match after {
            None => 0,
            Some(k) => self.order.partition_point(|device| **device < *k.device),
        };
        let devices = self.order[first..]
            .iter()
            .filter_map(|device| Some((device, self.devices.get(device)?)));
        for (device, rows) in devices {
            let from = match after {
                Some(k) if k.device == *device => Bound::Excluded((k.ts, k.sensor.clone())),
                _ => Bound::Unbounded,
            };
            for ((ts, sensor), row) in rows.range((from, Bound::Unbounded)) {
                if slice.len() == limit {
                    return slice;
                }
                let key = Key {
                    device: device.clone(),
                    sensor: sensor.clone(),
                    ts: *ts,
                };
                slice.push((key, row.clone()));
            }
        }
        slice
    }
}

/// The two generations, shared by the store writer (which alone changes them) and the
/// readers.
#[derive(Debug, Default)]
pub struct Memtable {
    pub active: Generation,
    pub sealed: Option<Generation>,
}

impl Memtable {
    pub fn get(&self, key: &Key) -> Option<&Row> {
        self.active
            .get(key)
            .or_else(|| self.sealed.as_ref().and_then(|g| g.get(key)))
    }

    pub fn rows(&self) -> usize {
        self.active.rows() + self.sealed.as_ref().map_or(0, Generation::rows)
    }

    pub fn bytes(&self) -> usize {
        self.active.bytes() + self.sealed.as_ref().map_or(0, Generation::bytes)
    }

    /// Whether readings of `sensor` from `device` are here (a scan of the device's rows:
    /// for the rare question, not for every reading).
    pub fn has_series(&self, device: &str, sensor: &str) -> bool {
        let has = |generation: &Generation| {
            generation
                .device(device)
                .is_some_and(|rows| rows.keys().any(|(_, s)| &**s == sensor))
        };
        has(&self.active) || self.sealed.as_ref().is_some_and(has)
    }

    /// Rows of `device` with `from <= ts < to`, at most `limit` from each generation,
    /// the newest or the oldest: a read copies what it may return, not all a device has
    /// here (up to two generations, if it sent nothing else).
    pub fn device_rows(
        &self,
        device: &str,
        (from, to): (i64, i64),
        newest: bool,
        limit: usize,
    ) -> Vec<(Arc<str>, i64, Row)> {
        let first: Arc<str> = Arc::from("");
        let bounds = (
            Bound::Included((from, first.clone())),
            Bound::Excluded((to, first)),
        );
        let mut rows = Vec::new();
        for generation in self.sealed.iter().chain([&self.active]) {
            let Some(device_rows) = generation.device(device) else {
                continue;
            };
            let within = device_rows.range(bounds.clone());
            let copy =
                |((ts, sensor), row): (&(i64, Arc<str>), &Row)| (sensor.clone(), *ts, row.clone());
            if newest {
                rows.extend(within.rev().take(limit).map(copy));
            } else {
                rows.extend(within.take(limit).map(copy));
            }
        }
        rows
    }

    /// Rows of `device` with keys (time, sensor type) within `bounds`, of `sensor` only
    /// when given, at most `limit` from each generation, in key order or (`descending`)
    /// its reverse: a keyset page's share of memory.
    pub fn device_page(
        &self,
        device: &str,
        bounds: KeyRange,
        sensor: Option<&str>,
        descending: bool,
        limit: usize,
    ) -> Vec<(Arc<str>, i64, Row)> {
        if !ordered(&bounds) {
            return Vec::new();
        }
        let mut rows = Vec::new();
        for generation in self.sealed.iter().chain([&self.active]) {
            let Some(device_rows) = generation.device(device) else {
                continue;
            };
            let within = device_rows.range(bounds.clone());
            let wanted = |((_, s), _): &(&(i64, Arc<str>), &Row)| sensor.is_none_or(|x| x == &**s);
            let copy =
                |((ts, sensor), row): (&(i64, Arc<str>), &Row)| (sensor.clone(), *ts, row.clone());
            if descending {
                rows.extend(within.rev().filter(wanted).take(limit).map(copy));
            } else {
                rows.extend(within.filter(wanted).take(limit).map(copy));
            }
        }
        rows
    }

    /// The newest row of each of `device`'s sensor types held here.
    pub fn latest_rows(&self, device: &str) -> Vec<(Arc<str>, i64, Row)> {
        let mut latest: HashMap<Arc<str>, (i64, &Row)> = HashMap::new();
        for generation in self.sealed.iter().chain([&self.active]) {
            for ((ts, sensor), row) in generation.device(device).into_iter().flatten().rev() {
                let newest = latest.entry(sensor.clone()).or_insert((*ts, row));
                if *ts > newest.0 {
                    *newest = (*ts, row);
                }
            }
        }
        latest
            .into_iter()
            .map(|(sensor, (ts, row))| (sensor, ts, row.clone()))
            .collect()
    }
}

/// Whether `BTreeMap::range` takes `bounds` (it panics on a start past the end, or on
/// equal ends both excluded).
fn ordered<T: Ord>((start, end): &(Bound<T>, Bound<T>)) -> bool {
    match (start, end) {
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => true,
        (Bound::Included(a), Bound::Included(b)) => a <= b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => a < b,
    }
}

/// One `Arc<str>` per distinct device id or sensor type in memory, rather than one per row.
#[derive(Debug, Default)]
pub struct Interner {
    names: HashSet<Arc<str>>,
}

impl Interner {
    pub fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(known) = self.names.get(name) {
            return known.clone();
        }
        let name: Arc<str> = Arc::from(name);
        self.names.insert(name.clone());
        name
    }

    /// Forgets the names nothing else holds any more (after a generation left memory).
    pub fn prune(&mut self) {
        self.names.retain(|name| Arc::strong_count(name) > 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(device: &str, sensor: &str, ts: i64) -> Key {
        Key {
            device: device.into(),
            sensor: sensor.into(),
            ts,
        }
    }

    fn row() -> Row {
        Row {
            data: "{}".into(),
            received_at: 0,
        }
    }

    #[test]
    fn slices_walk_the_generation_in_key_order_without_gaps_or_repeats() {
        let mut generation = Generation::default();
        let mut seq = 0;
        for device in ["d2", "d1", "d3"] {
            for sensor in ["gps", "battery"] {
                for ts in [3, 1, 2] {
                    seq += 1;
                    generation.insert(key(device, sensor, ts), row(), seq);
                }
            }
        }
        assert_eq!((generation.rows(), generation.last_seq), (18, 18));
        assert_eq!(generation.bytes(), 18 * row().bytes());
        generation.seal();
        let mut walked = Vec::new();
        let mut after = None;
        loop {
            let slice = generation.slice(after.as_ref(), 4);
            let Some((last, _)) = slice.last() else { break };
            after = Some(last.clone());
            walked.extend(slice.into_iter().map(|(k, _)| k));
        }
        let mut sorted = walked.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(walked, sorted);
        assert_eq!(walked.len(), 18);
    }

    #[test]
    fn a_key_is_found_in_either_generation() {
        let mut memtable = Memtable::default();
        memtable.active.insert(key("d1", "gps", 1), row(), 1);
        let mut sealed = Generation::default();
        sealed.insert(key("d1", "gps", 0), row(), 0);
        memtable.sealed = Some(sealed);
        assert!(memtable.get(&key("d1", "gps", 0)).is_some());
        assert!(memtable.get(&key("d1", "gps", 1)).is_some());
        assert!(memtable.get(&key("d1", "gps", 2)).is_none());
        assert_eq!(
            memtable
                .device_rows("d1", (i64::MIN, i64::MAX), true, 10)
                .len(),
            2
        );
        assert_eq!(memtable.device_rows("d1", (1, 2), true, 10).len(), 1);
        assert_eq!(
            memtable
                .device_rows("d1", (i64::MIN, i64::MAX), true, 1)
                .len(),
            2,
            "1 a generation"
        );
        assert_eq!(memtable.latest_rows("d1").len(), 1);
        assert_eq!(memtable.rows(), 2);
        assert_eq!(memtable.bytes(), 2 * row().bytes());
    }

    #[test]
    fn a_generation_counts_the_bytes_of_its_rows_once_each() {
        let mut generation = Generation::default();
        let big = |n| Row {
            data: "x".repeat(n).into(),
            received_at: 0,
        };
        generation.insert(key("d1", "gps", 1), big(1000), 1);
        generation.insert(key("d1", "gps", 2), big(10), 2);
        assert_eq!(generation.bytes(), big(1000).bytes() + big(10).bytes());
        generation.insert(key("d1", "gps", 1), big(100), 3);
        assert_eq!(generation.rows(), 2);
        assert_eq!(generation.bytes(), big(100).bytes() + big(10).bytes());
    }
}
