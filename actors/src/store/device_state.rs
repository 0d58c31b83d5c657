//! The fleet's rows: `device_state` (one row per known device) and `device_events` (every
//! status change), written by the store writer inside the transaction of its next batch,
//! so that the fleet costs no transaction of its own; and the reads the fleet makes at
//! start (every device's last state, the provisioned devices, the devices with readings)
//! and for the API (a device's events), on connections of their own.
//!
//! The rows are plain text and numbers: the fleet owns what they mean (`fleet/persist.rs`
//! turns its state into them and back). Times are in the store's one format.

use rusqlite::{params, Connection, OpenFlags, Transaction};

use super::alerts::AlertWrites;
use super::anomalies::{write_anomalies, AnomalyRow};
use crate::message::format_micros;

/// One device's state as stored. The JSON columns hold what only the fleet reads back.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRow {
    pub device_id: String,
    pub status: String,
    /// Microseconds since 1970.
    pub since: i64,
    pub reason: String,
    pub quarantined: bool,
    /// Microseconds; `None`: held until released (or not quarantined).
    pub quarantine_until: Option<i64>,
    pub connected_since: Option<i64>,
    pub last_seen: Option<i64>,
    pub peer: Option<String>,
    pub protocol: Option<String>,
    /// JSON text: the message, reading, duplicate and dead-letter counts.
    pub counts: String,
    /// JSON text: the quality signals.
    pub quality: String,
    /// JSON text: the rhythm estimate.
    pub rhythm: String,
    /// JSON text: the last reading per sensor type.
    pub last_readings: String,
}

/// One status change, as stored; `id` is set when read back.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub id: i64,
    pub device_id: String,
    /// Microseconds since 1970.
    pub at: i64,
    pub status: String,
    pub reason: String,
}

/// What the fleet hands the store writer to write with its next batch.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct FleetWrites {
    /// The latest state of each device that changed (one per device).
    pub upserts: Vec<DeviceRow>,
    /// Devices deleted: their `device_state` rows go (their events stay, as history).
    pub forgets: Vec<String>,
    pub events: Vec<EventRow>,
    /// Anomaly scores at or above the floor.
    pub anomalies: Vec<AnomalyRow>,
    /// Alert changes that no reading caused (timers, presence, dead letters, scores,
    /// acknowledgements), and the notifier's delivery records.
    pub alerts: AlertWrites,
}

impl FleetWrites {
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty()
            && self.forgets.is_empty()
            && self.events.is_empty()
            && self.anomalies.is_empty()
            && self.alerts.is_empty()
    }

    pub fn rows(&self) -> usize {
        self.upserts.len()
            + self.forgets.len()
            + self.events.len()
            + self.anomalies.len()
            + self.alerts.rows()
    }

    /// Adds `later`, written after what is here (a later upsert of a device wins).
    pub fn append(&mut self, later: FleetWrites) {
        self.upserts.extend(later.upserts);
        self.forgets.extend(later.forgets);
        self.events.extend(later.events);
        self.anomalies.extend(later.anomalies);
        self.alerts.append(later.alerts);
    }

    /// Writes the rows in `tx`: events and anomalies first, then states, then forgets (a
    /// device deleted after its last change has no row left).
    pub fn write(&self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let mut event = tx.prepare_cached(
            "INSERT INTO device_events (device_id, at, status, reason) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for e in &self.events {
            event.execute(params![
                e.device_id,
                format_micros(e.at),
                e.status,
                e.reason
            ])?;
        }
        write_anomalies(tx, &self.anomalies)?;
        self.alerts.write(tx)?;
        let mut upsert = tx.prepare_cached(
            "INSERT OR REPLACE INTO device_state (device_id, status, since, reason, \
             quarantined, quarantine_until, connected_since, last_seen, peer, protocol, \
             counts, quality, rhythm, last_readings) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?;
        for r in &self.upserts {
            upsert.execute(params![
                r.device_id,
                r.status,
                format_micros(r.since),
                r.reason,
                r.quarantined,
                r.quarantine_until.map(format_micros),
                r.connected_since.map(format_micros),
                r.last_seen.map(format_micros),
                r.peer,
                r.protocol,
                r.counts,
                r.quality,
                r.rhythm,
                r.last_readings,
            ])?;
        }
        let mut forget = tx.prepare_cached("DELETE FROM device_state WHERE device_id = ?1")?;
        // A deleted device's alerts are over; their history stays.
        let mut alerts = tx.prepare_cached("DELETE FROM alert_states WHERE device_id = ?1")?;
        for id in &self.forgets {
            forget.execute([id])?;
            alerts.execute([id])?;
        }
        Ok(())
    }
}

/// A read-only connection to the database at `path`, for the fleet's reads.
pub fn open_for_reading(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.execute_batch("PRAGMA busy_timeout = 1000")?;
    Ok(conn)
}

fn micros_of(text: Option<String>) -> Option<i64> {
    text.as_deref().and_then(crate::message::utc_micros)
}

/// Every stored device state for which `keep(device_id)` holds.
pub fn load_device_rows(
    conn: &Connection,
    keep: impl Fn(&str) -> bool,
) -> rusqlite::Result<Vec<DeviceRow>> {
    let mut statement = conn.prepare(
        "SELECT device_id, status, since, reason, quarantined, quarantine_until, \
         connected_since, last_seen, peer, protocol, counts, quality, rhythm, last_readings \
         FROM device_state",
    )?;
    let mut rows = statement.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let device_id: String = row.get(0)?;
        if !keep(&device_id) {
            continue;
        }
        out.push(DeviceRow {
            device_id,
            status: row.get(1)?,
            since: micros_of(row.get(2)?).unwrap_or(0),
            reason: row.get(3)?,
            quarantined: row.get(4)?,
            quarantine_until: micros_of(row.get(5)?),
            connected_since: micros_of(row.get(6)?),
            last_seen: micros_of(row.get(7)?),
            peer: row.get(8)?,
            protocol: row.get(9)?,
            counts: row.get(10)?,
            quality: row.get(11)?,
            rhythm: row.get(12)?,
            last_readings: row.get(13)?,
        });
    }
    Ok(out)
}

/// Devices known without a state row: provisioned ones, for which `keep` holds. (Devices
/// with readings from before the fleet are known once heard again: a device deleted but
/// whose readings were kept must not come back at the next start.)
pub fn load_known_ids(
    conn: &Connection,
    keep: impl Fn(&str) -> bool,
) -> rusqlite::Result<Vec<String>> {
    let mut statement =
        conn.prepare("SELECT device_id FROM devices EXCEPT SELECT device_id FROM device_state")?;
    let ids = statement.query_map([], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for id in ids {
        let id = id?;
        if keep(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// A device's committed events after `after` (an event id), oldest first, `limit` at most.
pub fn device_events(
    conn: &Connection,
    device_id: &str,
    after: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Vec<EventRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, at, status, reason FROM device_events \
         WHERE device_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = statement.query_map(params![device_id, after.unwrap_or(0), limit], |r| {
        Ok(EventRow {
            id: r.get(0)?,
            device_id: device_id.to_owned(),
            at: micros_of(r.get(1)?).unwrap_or(0),
            status: r.get(2)?,
            reason: r.get(3)?,
        })
    })?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreSettings};

    fn row(id: &str, status: &str) -> DeviceRow {
        DeviceRow {
            device_id: id.into(),
            status: status.into(),
            since: 1_700_000_000_000_000,
            reason: "first seen".into(),
            quarantined: false,
            quarantine_until: None,
            connected_since: Some(1_700_000_000_000_000),
            last_seen: Some(1_700_000_001_000_000),
            peer: Some("127.0.0.1:5000".into()),
            protocol: Some("mqtt-5".into()),
            counts: "{}".into(),
            quality: "{}".into(),
            rhythm: "{}".into(),
            last_readings: "[]".into(),
        }
    }

    #[test]
    fn device_rows_and_events_are_written_with_a_batch_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let settings = StoreSettings::for_tests(dir.path());
        let mut store = Store::open(&settings).unwrap();
        let event = |device: &str, status: &str| EventRow {
            id: 0,
            device_id: device.into(),
            at: 1_700_000_000_000_000,
            status: status.into(),
            reason: "connected".into(),
        };
        let writes = FleetWrites {
            upserts: vec![row("d1", "online"), row("d2", "online")],
            forgets: vec![],
            events: vec![event("d1", "online"), event("d2", "online")],
            ..FleetWrites::default()
        };
        store.write_with([], &writes, &[]).unwrap();
        let later = FleetWrites {
            upserts: vec![row("d1", "offline")],
            forgets: vec!["d2".into()],
            events: vec![event("d1", "offline")],
            ..FleetWrites::default()
        };
        store.write_with([], &later, &[]).unwrap();

        let conn = open_for_reading(&settings.db_path()).unwrap();
        let rows = load_device_rows(&conn, |_| true).unwrap();
        assert_eq!(
            rows,
            vec![row("d1", "offline")],
            "d2 forgotten, d1's latest kept"
        );
        let events = device_events(&conn, "d1", None, 10).unwrap();
        assert_eq!(
            events.iter().map(|e| e.status.as_str()).collect::<Vec<_>>(),
            ["online", "offline"]
        );
        let after_first = device_events(&conn, "d1", Some(events[0].id), 10).unwrap();
        assert_eq!(after_first.len(), 1);
        assert_eq!(
            device_events(&conn, "d2", None, 10).unwrap().len(),
            1,
            "kept"
        );
    }
}
