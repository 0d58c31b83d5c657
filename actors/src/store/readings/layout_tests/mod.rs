//! The store's layout end to end, on real SQLite files, through the `Store` as the writer
//! drives it: the log merged into chunks (`merging`), what a crash, a failed merge or a
//! reopening leaves (`durability`), redeliveries and conflicts (`conflicts`), retention
//! and the series bound (`retention`), migrations from older schemas (`migrations`), and
//! the read API (`reads`). Here: the fleet of readings and the probes they share.

mod conflicts;
mod durability;
mod merging;
mod migrations;
mod reads;
mod retention;

use std::path::Path;

use rusqlite::Connection;

use super::super::database::Store;
use super::super::settings::StoreSettings;
use crate::message::{format_micros, Outcome, Reading};

/// 2025-01-01T00:00:00Z.
const BASE: i64 = 1_735_689_600_000_000;

fn settings(dir: &Path) -> StoreSettings {
    StoreSettings {
        generation_rows: 100,
        merge_slice: 30,
        ..StoreSettings::for_tests(dir)
    }
}

fn reading(device: &str, sensor: &str, second: i64, data: &str) -> Reading {
    Reading {
        device_id: device.into(),
        sensor_type: sensor.into(),
        ts: format_micros(BASE + second * 1_000_000),
        data: data.into(),
        received_at: format_micros(BASE + second * 1_000_000 + 500),
    }
}

/// `count` readings from 3 devices × 2 sensor types, one message each, from `second` on.
fn fleet(from: i64, count: i64) -> Vec<Outcome> {
    (from..from + count)
        .map(|n| {
            let device = format!("d{}", n % 3);
            let sensor = if n % 2 == 0 { "gps" } else { "battery" };
            Outcome::accepted(vec![reading(&device, sensor, n, &format!("{{\"n\":{n}}}"))])
        })
        .collect()
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Rows in the `readings` view, and distinct keys among them.
fn view_rows(store: &Store) -> (i64, i64) {
    (
        count(&store.conn, "SELECT count(*) FROM readings"),
        count(
            &store.conn,
            "SELECT count(*) FROM (SELECT DISTINCT device_id, sensor_type, ts FROM readings)",
        ),
    )
}

fn upkeep_until_merged(store: &mut Store) {
    while store.tiers.memtable.read().unwrap().sealed.is_some() || store.wants_upkeep() {
        store.upkeep(usize::MAX).unwrap();
    }
}

fn unmerged(store: &Store) -> usize {
    store.tiers.memtable.read().unwrap().rows()
}
