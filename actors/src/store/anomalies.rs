//! The anomaly scores worth keeping: a score at or above `anomaly.floor`, with its
//! reading's key (device, sensor type, time) and the field scored. The fleet hands them to
//! the store writer with its device rows (`FleetWrites`), so they are written in the
//! writer's next batch, never in a transaction of their own; they go with retention like
//! the readings, and with a device's purge. Read back a device's at a time, by id.

use rusqlite::{params, Connection, Transaction};

use crate::message::{format_micros, utc_micros};

/// One kept score; `id` is set when read back.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyRow {
    pub id: i64,
    pub device_id: String,
    pub sensor_type: String,
    /// The reading's time, microseconds since 1970: with the device and the sensor type,
    /// the reading's key.
    pub ts: i64,
    /// The path of the numeric field in the reading's `data` (`temperature`, `gps.lat`).
    pub field: String,
    /// In [0, 1].
    pub score: f64,
    /// When the reading was received, microseconds since 1970.
    pub received_at: i64,
}

pub const ANOMALIES_TABLE: &str = "
CREATE TABLE IF NOT EXISTS anomalies (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id   TEXT NOT NULL,
    sensor_type TEXT NOT NULL,
    ts          TEXT NOT NULL,
    field       TEXT NOT NULL,
    score       REAL NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS anomalies_device ON anomalies (device_id, id);
CREATE INDEX IF NOT EXISTS anomalies_received_at ON anomalies (received_at);
";

/// Writes `rows` in `tx`.
pub fn write_anomalies(tx: &Transaction<'_>, rows: &[AnomalyRow]) -> rusqlite::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = tx.prepare_cached(
        "INSERT INTO anomalies (device_id, sensor_type, ts, field, score, received_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for a in rows {
        insert.execute(params![
            a.device_id,
            a.sensor_type,
            format_micros(a.ts),
            a.field,
            a.score,
            format_micros(a.received_at)
        ])?;
    }
    Ok(())
}

/// Deletes the scores of readings received before `horizon` (retention).
pub fn expire_anomalies(conn: &Connection, horizon: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM anomalies WHERE received_at < ?1",
        params![format_micros(horizon)],
    )
}

/// Deletes a device's scores (its readings were purged).
pub fn purge_anomalies(conn: &Connection, device_id: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM anomalies WHERE device_id = ?1",
        params![device_id],
    )
}

/// What a page of a device's scores asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyQuery {
    pub device_id: String,
    /// Readings with `from <= ts < to`, microseconds.
    pub within: (i64, i64),
    /// Only scores with an id above this (the previous page's last).
    pub after: Option<i64>,
    pub limit: usize,
}

/// A device's kept scores matching `query`, by id (the order they were kept in).
pub fn device_anomalies(
    conn: &Connection,
    query: &AnomalyQuery,
) -> rusqlite::Result<Vec<AnomalyRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, sensor_type, ts, field, score, received_at FROM anomalies \
         WHERE device_id = ?1 AND id > ?2 AND ts >= ?3 AND ts < ?4 ORDER BY id LIMIT ?5",
    )?;
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    let (from, to) = query.within;
    let micros = |text: String| utc_micros(&text).unwrap_or(0);
    let rows = statement.query_map(
        params![
            query.device_id,
            query.after.unwrap_or(0),
            format_micros(from),
            format_micros(to),
            limit
        ],
        |r| {
            Ok(AnomalyRow {
                id: r.get(0)?,
                device_id: query.device_id.clone(),
                sensor_type: r.get(1)?,
                ts: micros(r.get(2)?),
                field: r.get(3)?,
                score: r.get(4)?,
                received_at: micros(r.get(5)?),
            })
        },
    )?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(device: &str, ts: i64, score: f64) -> AnomalyRow {
        AnomalyRow {
            id: 0,
            device_id: device.into(),
            sensor_type: "temperature".into(),
            ts,
            field: "value".into(),
            score,
            received_at: ts + 5,
        }
    }

    fn database() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(ANOMALIES_TABLE).unwrap();
        conn
    }

    fn query(device: &str, within: (i64, i64), after: Option<i64>, limit: usize) -> AnomalyQuery {
        AnomalyQuery {
            device_id: device.into(),
            within,
            after,
            limit,
        }
    }

    #[test]
    fn a_devices_scores_come_back_by_id_within_the_times_asked() {
        let mut conn = database();
        let tx = conn.transaction().unwrap();
        let rows = [
            row("a", 10, 0.9),
            row("b", 20, 0.95),
            row("a", 30, 1.0),
            row("a", 40, 0.8),
        ];
        write_anomalies(&tx, &rows).unwrap();
        tx.commit().unwrap();
        let all = device_anomalies(&conn, &query("a", (0, i64::MAX / 2), None, 10)).unwrap();
        let seen: Vec<(i64, f64)> = all.iter().map(|a| (a.ts, a.score)).collect();
        assert_eq!(seen, [(10, 0.9), (30, 1.0), (40, 0.8)]);
        assert_eq!(all[0].field, "value");
        assert_eq!(all[0].received_at, 15);
        let window = device_anomalies(&conn, &query("a", (20, 40), None, 10)).unwrap();
        assert_eq!(window.iter().map(|a| a.ts).collect::<Vec<_>>(), [30]);
        let first = device_anomalies(&conn, &query("a", (0, 100), None, 1)).unwrap();
        let next = device_anomalies(&conn, &query("a", (0, 100), Some(first[0].id), 10)).unwrap();
        assert_eq!(next.iter().map(|a| a.ts).collect::<Vec<_>>(), [30, 40]);
    }

    #[test]
    fn retention_and_purge_delete_scores() {
        let mut conn = database();
        let tx = conn.transaction().unwrap();
        write_anomalies(
            &tx,
            &[row("a", 10, 0.9), row("a", 1_000, 0.9), row("b", 10, 0.9)],
        )
        .unwrap();
        tx.commit().unwrap();
        assert_eq!(
            expire_anomalies(&conn, 100).unwrap(),
            2,
            "received at 15: gone"
        );
        assert_eq!(purge_anomalies(&conn, "a").unwrap(), 1);
        let left: i64 = conn
            .query_row("SELECT count(*) FROM anomalies", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }
}
