//! The chunks: where readings go once merged, one table per span of arrival time
//! (`chunk_<id>`, clustered by device, time and sensor type), listed in `chunks`.
//!
//! Retention drops whole chunks (`DROP TABLE`), never rows one by one; the `readings`
//! view, which users query, is rebuilt over the chunks left whenever the list changes.

use rusqlite::{params, Connection, OptionalExtension};

use crate::message::{format_micros, utc_micros};

/// SQLite refuses a compound SELECT of more than 500 terms: past this, the view nests.
const TERMS_PER_SELECT: usize = 400;

const COLUMNS: &str = "device_id, sensor_type, ts, data, received_at";

/// One chunk as `chunks` lists it; times are microseconds since 1970.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub id: i64,
    pub opened_at: i64,
    pub rows: i64,
    /// The span of the readings' own times in it (`None` while empty).
    pub ts_range: Option<(i64, i64)>,
    /// When its newest reading was received: retention goes by this.
    pub last_received_at: Option<i64>,
}

impl Chunk {
    pub fn table(&self) -> String {
        table(self.id)
    }

    pub fn may_hold(&self, ts: i64) -> bool {
        self.ts_range
            .is_some_and(|(min, max)| (min..=max).contains(&ts))
    }
}

pub fn table(id: i64) -> String {
    format!("chunk_{id}")
}

/// The chunks in the order they were opened.
#[derive(Debug, Clone, Default)]
pub struct Chunks {
    pub list: Vec<Chunk>,
}

fn time_column(text: Option<String>) -> Option<i64> {
    text.as_deref().and_then(utc_micros)
}

impl Chunks {
    pub fn load(conn: &Connection) -> rusqlite::Result<Chunks> {
        let mut statement = conn.prepare_cached(
            "SELECT id, opened_at, rows, min_ts, max_ts, last_received_at FROM chunks ORDER BY id",
        )?;
        let list = statement
            .query_map([], |row| {
                let range = (time_column(row.get(3)?), time_column(row.get(4)?));
                Ok(Chunk {
                    id: row.get(0)?,
                    opened_at: time_column(row.get(1)?).unwrap_or(0),
                    rows: row.get(2)?,
                    ts_range: match range {
                        (Some(min), Some(max)) => Some((min, max)),
                        _ => None,
                    },
                    last_received_at: time_column(row.get(5)?),
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Chunks { list })
    }

    /// The chunk merges go into: the newest, unless it was opened `span` or more before
    /// `now`, in which case a new one is opened (and the view rebuilt).
    pub fn open_for_merge(
        &mut self,
        conn: &Connection,
        now: i64,
        span: i64,
    ) -> rusqlite::Result<i64> {
        if let Some(newest) = self.list.last() {
            if now - newest.opened_at < span {
                return Ok(newest.id);
            }
        }
        let id = self.list.last().map_or(1, |c| c.id + 1);
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {} (
                device_id   TEXT NOT NULL,
                sensor_type TEXT NOT NULL,
                ts          TEXT NOT NULL,
                data        TEXT NOT NULL,
                received_at TEXT NOT NULL,
                PRIMARY KEY (device_id, ts, sensor_type)
            ) WITHOUT ROWID",
            table(id)
        ))?;
        conn.execute(
            "INSERT INTO chunks (id, opened_at) VALUES (?1, ?2)",
            params![id, format_micros(now)],
        )?;
        self.list.push(Chunk {
            id,
            opened_at: now,
            rows: 0,
            ts_range: None,
            last_received_at: None,
        });
        rebuild_view(conn, &self.list)?;
        Ok(id)
    }

    /// Records `rows` more merged into chunk `id`, with these times.
    pub fn grew(
        &mut self,
        conn: &Connection,
        id: i64,
        rows: i64,
        (min_ts, max_ts): (i64, i64),
        last_received_at: i64,
    ) -> rusqlite::Result<()> {
        let Some(chunk) = self.list.iter_mut().find(|c| c.id == id) else {
            return Ok(());
        };
        chunk.rows += rows;
        chunk.ts_range = Some(match chunk.ts_range {
            None => (min_ts, max_ts),
            Some((min, max)) => (min.min(min_ts), max.max(max_ts)),
        });
        chunk.last_received_at = Some(chunk.last_received_at.unwrap_or(0).max(last_received_at));
        let (min, max) = chunk.ts_range.expect("just set");
        conn.execute(
            "UPDATE chunks SET rows = ?2, min_ts = ?3, max_ts = ?4, last_received_at = ?5 WHERE id = ?1",
            params![
                id,
                chunk.rows,
                format_micros(min),
                format_micros(max),
                format_micros(chunk.last_received_at.unwrap_or(0)),
            ],
        )?;
        Ok(())
    }

    /// Drops every chunk but the newest whose readings were all received before
    /// `horizon`; answers what went.
    pub fn expire(&mut self, conn: &Connection, horizon: i64) -> rusqlite::Result<Vec<Chunk>> {
        let newest = self.list.last().map(|c| c.id);
        let (gone, kept): (Vec<Chunk>, Vec<Chunk>) = self.list.drain(..).partition(|c| {
            Some(c.id) != newest && c.last_received_at.unwrap_or(c.opened_at) < horizon
        });
        self.list = kept;
        if gone.is_empty() {
            return Ok(gone);
        }
        for chunk in &gone {
            conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", chunk.table()))?;
            conn.execute("DELETE FROM chunks WHERE id = ?1", params![chunk.id])?;
        }
        rebuild_view(conn, &self.list)?;
        Ok(gone)
    }

    /// The stored data of `key` in a chunk, if a chunk holds it.
    pub fn find(
        &self,
        conn: &Connection,
        device: &str,
        sensor: &str,
        ts: i64,
    ) -> rusqlite::Result<Option<String>> {
        let text = format_micros(ts);
        for chunk in self.list.iter().rev().filter(|c| c.may_hold(ts)) {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT data FROM {} WHERE device_id = ?1 AND sensor_type = ?2 AND ts = ?3",
                chunk.table()
            ))?;
            let found = statement
                .query_row(params![device, sensor, text], |row| row.get(0))
                .optional()?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }
}

/// `readings`: every chunk, and the log's rows not yet merged (those of the sealed
/// generation up to the merge's progress are in a chunk already).
pub fn rebuild_view(conn: &Connection, chunks: &[Chunk]) -> rusqlite::Result<()> {
    let mut terms: Vec<String> = chunks
        .iter()
        .map(|c| format!("SELECT {COLUMNS} FROM {}", c.table()))
        .collect();
    terms.push(format!(
        "SELECT {COLUMNS} FROM readings_log \
         WHERE seq > (SELECT sealed_through FROM merge_state) \
         OR (device_id, ts, sensor_type) > \
            (SELECT merged_device, merged_ts, merged_sensor FROM merge_state)"
    ));
    while terms.len() > TERMS_PER_SELECT {
        terms = terms
            .chunks(TERMS_PER_SELECT)
            .map(|group| format!("SELECT {COLUMNS} FROM ({})", group.join(" UNION ALL ")))
            .collect();
    }
    conn.execute_batch(&format!(
        "DROP VIEW IF EXISTS readings; CREATE VIEW readings AS {};",
        terms.join(" UNION ALL ")
    ))
}
