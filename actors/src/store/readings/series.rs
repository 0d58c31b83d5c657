//! `Series`: every (device, sensor type) the store holds readings of, and for those
//! merged into a chunk the newest time merged (a newer reading cannot be in a chunk, so
//! the duplicate check asks no SQL for it).
//!
//! It is bounded two ways: a device has at most `store.max_series_per_device` (a reading
//! that would start one more is refused as a dead letter), and a series whose chunks
//! retention dropped is forgotten, in `series` and here.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::Connection;

use super::memtable::Interner;
use crate::message::utc_micros;

#[derive(Debug, Default)]
pub struct Series {
    /// By device, each sensor type's newest merged time (`None`: not merged yet).
    devices: HashMap<Arc<str>, HashMap<Arc<str>, Option<i64>>>,
}

impl Series {
    /// The merged series (`series`) and those still only in the log (`readings_log`).
    pub fn load(conn: &Connection, interner: &mut Interner) -> rusqlite::Result<Series> {
        let mut series = Series::default();
        let mut merged =
            conn.prepare("SELECT device_id, sensor_type, merged_max_ts FROM series")?;
        let mut rows = merged.query([])?;
        while let Some(row) = rows.next()? {
            let (device, sensor, ts): (String, String, String) =
                (row.get(0)?, row.get(1)?, row.get(2)?);
            let (device, sensor) = (interner.intern(&device), interner.intern(&sensor));
            series.add(&device, &sensor);
            if let Some(ts) = utc_micros(&ts) {
                series.merged(&device, &sensor, ts);
            }
        }
        let mut logged =
            conn.prepare("SELECT DISTINCT device_id, sensor_type FROM readings_log")?;
        let mut rows = logged.query([])?;
        while let Some(row) = rows.next()? {
            let (device, sensor): (String, String) = (row.get(0)?, row.get(1)?);
            series.add(&interner.intern(&device), &interner.intern(&sensor));
        }
        Ok(series)
    }

    pub fn contains(&self, device: &str, sensor: &str) -> bool {
        self.devices
            .get(device)
            .is_some_and(|sensors| sensors.contains_key(sensor))
    }

    /// How many series `device` has.
    pub fn of_device(&self, device: &str) -> usize {
        self.devices.get(device).map_or(0, HashMap::len)
    }

    /// The newest time of the series merged into a chunk, if any was.
    pub fn merged_max(&self, device: &str, sensor: &str) -> Option<i64> {
        *self.devices.get(device)?.get(sensor)?
    }

    /// Readings of the series were committed to the log.
    pub fn add(&mut self, device: &Arc<str>, sensor: &Arc<str>) {
        self.devices
            .entry(device.clone())
            .or_default()
            .entry(sensor.clone())
            .or_insert(None);
    }

    /// Readings of the series up to `ts` were merged into a chunk.
    pub fn merged(&mut self, device: &Arc<str>, sensor: &Arc<str>, ts: i64) {
        let sensors = self.devices.entry(device.clone()).or_default();
        let max = sensors.entry(sensor.clone()).or_insert(Some(ts));
        *max = Some(max.map_or(ts, |max| max.max(ts)));
    }

    /// Every reading of the device was purged: none of its series is stored any more.
    pub fn forget_device(&mut self, device: &str) {
        self.devices.remove(device);
    }

    /// Retention dropped every chunk the series was in: it is forgotten, unless readings
    /// of it wait in the log (`unmerged`), which keep it, as not merged.
    pub fn expired(&mut self, device: &str, sensor: &str, unmerged: bool) {
        let Some(sensors) = self.devices.get_mut(device) else {
            return;
        };
        if unmerged {
            if let Some(max) = sensors.get_mut(sensor) {
                *max = None;
            }
            return;
        }
        sensors.remove(sensor);
        if sensors.is_empty() {
            self.devices.remove(device);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_is_known_from_its_first_commit_and_forgotten_once_expired() {
        let (device, gps, heat): (Arc<str>, Arc<str>, Arc<str>) =
            ("robot".into(), "gps".into(), "heat".into());
        let mut series = Series::default();
        series.add(&device, &gps);
        assert!(series.contains("robot", "gps"));
        assert_eq!(series.merged_max("robot", "gps"), None, "not merged yet");
        series.merged(&device, &gps, 20);
        series.merged(&device, &gps, 10);
        assert_eq!(series.merged_max("robot", "gps"), Some(20));
        series.add(&device, &gps);
        assert_eq!(
            series.merged_max("robot", "gps"),
            Some(20),
            "kept by a new commit"
        );
        series.add(&device, &heat);
        assert_eq!(series.of_device("robot"), 2);

        series.expired("robot", "heat", true);
        assert!(
            series.contains("robot", "heat"),
            "readings of it wait in the log"
        );
        series.expired("robot", "gps", false);
        assert!(!series.contains("robot", "gps"));
        series.expired("robot", "heat", false);
        assert_eq!(series.of_device("robot"), 0);
        assert!(
            series.devices.is_empty(),
            "the device's entry went with its last series"
        );
    }
}
