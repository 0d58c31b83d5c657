//! Insert throughput of candidate SQLite layouts for the readings table, as the table grows.
//!
//! Why: the measurement behind the store's layout (an unindexed log, merged in bulk into
//! time chunks clustered by device: `actors/src/store/`). Clustering by device on every
//! insert costs about one page write per device per transaction, so once the table outgrows
//! the cache a large fleet's every batch dirties thousands of leaf pages.
//!
//! What: `--devices` devices report once a second on a common clock (reading `i` is device
//! `i % devices`'s, so arrival order is time order); `--rows` readings go in transactions of
//! `--batch` rows (WAL, synchronous=NORMAL, one thread, a fresh database per layout) into
//! `clustered` (the store's earlier layout: a WITHOUT ROWID table keyed by device, sensor,
//! ts), `rowid+index` (rowid table plus a UNIQUE index on that key), `time-first` (WITHOUT
//! ROWID keyed by ts first), `append` (rowid table, no index) and `log+merge G` (LSM-like:
//! an unindexed log whose every G rows are sealed, sorted in memory and merged into a
//! clustered table `--slice` rows per transaction, one after each append; merged log rows
//! are then deleted; the tail is merged at the end). Only inserting, sorting and merging
//! are timed. Printed: rows/s overall and per quarter of the rows, database and WAL sizes,
//! and the speed relative to `clustered`.
//!
//! Run: `cargo run --release --example store_layouts -- --rows 2000000 --devices 10000`

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use rusqlite::Connection;
use time::OffsetDateTime;

#[derive(Parser)]
#[command(about = "Insert throughput of candidate SQLite layouts for readings")]
struct Args {
    /// Readings written into each layout.
    #[arg(long, default_value_t = 2_000_000)]
    rows: usize,
    /// Devices in the fleet; each reports once a second.
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    /// Rows per append transaction.
    #[arg(long, default_value_t = 4096)]
    batch: usize,
    /// Generation sizes of the log+merge layouts, one layout each.
    #[arg(long, value_delimiter = ',', default_value = "100000,250000")]
    generations: Vec<usize>,
    /// Rows per merge transaction of log+merge.
    #[arg(long, default_value_t = 8192)]
    slice: usize,
    /// SQLite's page cache per connection, MiB (SQLite's default is 2).
    #[arg(long, default_value_t = 2)]
    cache_mib: u64,
    /// Only the layouts whose name starts with one of these (comma-separated); `clustered`
    /// always runs, as the baseline.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

const SENSORS: [&str; 3] = ["gps", "temperature", "battery"];
/// 2026-11-30T14:00:00Z.
const BASE_UNIX_S: i64 = 1_796_047_200;
const COLUMNS: &str = "device_id TEXT NOT NULL, sensor_type TEXT NOT NULL, ts TEXT NOT NULL, \
    data TEXT NOT NULL, received_at TEXT NOT NULL";
const KEY: &str = "device_id, sensor_type, ts";

struct Reading {
    device_id: String,
    sensor_type: &'static str,
    ts: String,
    data: String,
    received_at: String,
}

impl Reading {
    /// Reading `i` of a fleet of `devices` that each report once a second.
    fn nth(i: usize, devices: usize) -> Reading {
        let device = i % devices;
        let at_us = BASE_UNIX_S as i128 * 1_000_000 + i as i128 * 1_000_000 / devices as i128;
        let f = (i % 997) as f64 / 997.0;
        let (lat, lon, alt, speed) = (48.85 + f / 10.0, 2.35 - f / 10.0, 35.0 + f * 9.0, f * 30.0);
        Reading {
            device_id: format!("dev-{device:05}"),
            sensor_type: SENSORS[device % SENSORS.len()],
            ts: rfc3339(at_us),
            data: format!(
                r#"{{"latitude":{lat:.5},"longitude":{lon:.5},"altitude":{alt:.1},"speed":{speed:.2},"heading":{:.1}}}"#,
                f * 359.0
            ),
            received_at: rfc3339(at_us + 150_000 + (i % 50_000) as i128),
        }
    }
}

/// Fixed-width RFC 3339 UTC with microseconds, so that text order is time order.
fn rfc3339(unix_us: i128) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(unix_us * 1000).expect("time in range");
    let (h, m, s, us) = t.to_hms_micro();
    format!("{}T{h:02}:{m:02}:{s:02}.{us:06}Z", t.date())
}

/// A candidate: its tables, and for log+merge the rows per sealed generation.
struct Layout {
    name: String,
    schema: String,
    generation: Option<usize>,
}

fn layouts(generations: &[usize]) -> Vec<Layout> {
    let create = |table: &str, key: &str| match key {
        "" => format!("CREATE TABLE {table} ({COLUMNS});"),
        key => format!("CREATE TABLE {table} ({COLUMNS}, PRIMARY KEY ({key})) WITHOUT ROWID;"),
    };
    let index = format!("CREATE UNIQUE INDEX readings_key ON readings ({KEY});");
    let layout = |name: &str, schema: String, generation| Layout {
        name: name.into(),
        schema,
        generation,
    };
    let mut layouts = vec![
        layout("clustered", create("readings", KEY), None),
        layout("rowid+index", create("readings", "") + &index, None),
        layout(
            "time-first",
            create("readings", "ts, device_id, sensor_type"),
            None,
        ),
        layout("append", create("readings", ""), None),
    ];
    let log_merge = create("log", "") + &create("sorted", KEY);
    for &g in generations {
        layouts.push(layout(
            &format!("log+merge {g}"),
            log_merge.clone(),
            Some(g),
        ));
    }
    layouts
}

fn insert(conn: &mut Connection, table: &str, rows: &[Reading]) {
    let tx = conn.transaction().expect("begin");
    {
        let columns = format!("{KEY}, data, received_at");
        let sql = format!("INSERT OR IGNORE INTO {table} ({columns}) VALUES (?, ?, ?, ?, ?)");
        let mut stmt = tx.prepare_cached(&sql).expect("prepare insert");
        for r in rows {
            let row = (&r.device_id, r.sensor_type, &r.ts, &r.data, &r.received_at);
            stmt.execute(row).expect("insert reading");
        }
    }
    tx.commit().expect("commit");
}

/// The log+merge state: rows appended since the last seal, and the sealed generations (rows
/// sorted by key, last log rowid) of which the first has its `merged` rows merged so far.
#[derive(Default)]
struct LogMerge {
    unsealed: Vec<Reading>,
    sealed: VecDeque<(Vec<Reading>, i64)>,
    merged: usize,
}

impl LogMerge {
    fn seal(&mut self, conn: &Connection) {
        let mut rows = std::mem::take(&mut self.unsealed);
        rows.sort_unstable_by(|a, b| {
            (&a.device_id, a.sensor_type, &a.ts).cmp(&(&b.device_id, b.sensor_type, &b.ts))
        });
        self.sealed.push_back((rows, conn.last_insert_rowid()));
    }

    /// Merges one slice of the oldest sealed generation; false when none was pending.
    fn merge_slice(&mut self, conn: &mut Connection, slice: usize) -> bool {
        let Some((rows, last_rowid)) = self.sealed.front() else {
            return false;
        };
        let end = (self.merged + slice).min(rows.len());
        insert(conn, "sorted", &rows[self.merged..end]);
        self.merged = end;
        if end == rows.len() {
            conn.execute("DELETE FROM log WHERE rowid <= ?1", [last_rowid])
                .expect("delete merged log rows");
            self.sealed.pop_front();
            self.merged = 0;
        }
        true
    }
}

struct Outcome {
    name: String,
    rows_per_s: f64,
    quarters: Vec<f64>,
    db_bytes: u64,
    wal_bytes: u64,
}

fn measure(layout: &Layout, args: &Args, dir: &Path) -> Outcome {
    let path = dir.join("readings.db");
    let mut conn = Connection::open(&path).expect("open database");
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -{};",
        args.cache_mib * 1024
    ))
    .expect("pragmas");
    conn.execute_batch(&layout.schema).expect("schema");
    let mut log = layout.generation.map(|g| (g, LogMerge::default()));
    let table = if log.is_some() { "log" } else { "readings" };
    let (mut busy, mut written) = (Duration::ZERO, 0);
    let mut marks = vec![(0, Duration::ZERO)];
    while written < args.rows {
        let end = (written + args.batch).min(args.rows);
        let batch: Vec<_> = (written..end)
            .map(|i| Reading::nth(i, args.devices))
            .collect();
        let started = Instant::now();
        insert(&mut conn, table, &batch);
        written = end;
        if let Some((generation, log)) = log.as_mut() {
            log.unsealed.extend(batch);
            if log.unsealed.len() >= *generation || written == args.rows {
                log.seal(&conn);
            }
            log.merge_slice(&mut conn, args.slice);
            while written == args.rows && log.merge_slice(&mut conn, args.slice) {}
        }
        busy += started.elapsed();
        if written * 4 >= args.rows * marks.len() {
            marks.push((written, busy));
        }
    }
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let (db_bytes, wal_bytes) = (size(&path), size(&path.with_extension("db-wal")));
    let kept = if log.is_some() { "sorted" } else { "readings" };
    let count_sql = format!("SELECT count(*) FROM {kept}");
    let count: i64 = conn
        .query_row(&count_sql, [], |row| row.get(0))
        .expect("count");
    assert_eq!(count, args.rows as i64, "{} lost readings", layout.name);
    let rate = |rows: usize, t: Duration| rows as f64 / t.as_secs_f64();
    let quarters = marks
        .windows(2)
        .map(|w| rate(w[1].0 - w[0].0, w[1].1 - w[0].1));
    Outcome {
        name: layout.name.clone(),
        rows_per_s: rate(written, busy),
        quarters: quarters.collect(),
        db_bytes,
        wal_bytes,
    }
}

impl Outcome {
    /// A row of the markdown table.
    fn row(&self, clustered_rows_per_s: f64) -> String {
        let kilo = |r: f64| format!("{:.0}k", r / 1000.0);
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let quarters: Vec<String> = self.quarters.iter().map(|&q| kilo(q)).collect();
        format!(
            "| {} | {} | {} | {:.1} | {:.1} | x{:.2} |",
            self.name,
            kilo(self.rows_per_s),
            quarters.join(" | "),
            mib(self.db_bytes),
            mib(self.wal_bytes),
            self.rows_per_s / clustered_rows_per_s
        )
    }
}

const HEADER: &str = "| layout | rows/s | Q1 | Q2 | Q3 | Q4 | db MiB | WAL MiB | vs clustered |\n\
    |---|---:|---:|---:|---:|---:|---:|---:|---:|";

fn main() {
    let args = Args::parse();
    assert!(args.rows >= 4 && args.devices > 0 && args.batch > 0 && args.slice > 0);
    println!(
        "{} rows, {} devices, {} rows per transaction, merge slices of {}, cache {} MiB\n\n{HEADER}",
        args.rows, args.devices, args.batch, args.slice, args.cache_mib
    );
    let mut outcomes: Vec<Outcome> = Vec::new();
    let wanted = |name: &str| {
        name == "clustered" || args.only.is_empty() || args.only.iter().any(|o| name.starts_with(o))
    };
    for layout in layouts(&args.generations)
        .into_iter()
        .filter(|l| wanted(&l.name))
    {
        let dir = tempfile::tempdir().expect("temporary directory");
        let outcome = measure(&layout, &args, dir.path());
        let clustered = outcomes.first().unwrap_or(&outcome).rows_per_s;
        println!("{}", outcome.row(clustered));
        outcomes.push(outcome);
    }
    println!("\n{HEADER}");
    for outcome in &outcomes {
        println!("{}", outcome.row(outcomes[0].rows_per_s));
    }
}
