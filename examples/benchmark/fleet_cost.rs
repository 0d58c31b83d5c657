//! `fleet`: what the live device state costs. Every figure is taken beside the same Eliot
//! with `[fleet] enabled = false`, in the same run, runs alternating between the two:
//!
//! - CPU per message at the sustained QoS 1 load (the `sustained` fleet: 10,000 devices over
//!   50 connections as fast as acks allow, each run into a fresh store): µs of Eliot's CPU
//!   per acked message with the fleet and without, and their ratio. Goal: ≤ 1.05.
//! - Memory: 100,000 known devices (provisioned: rows in `devices`, certificate logins, so
//!   that no secret is hashed), Eliot's resident memory once it started on them, and again
//!   after 10,000 of them published for a while (paced). What the fleet adds, per known and
//!   per active device. Goal: ≤ 1 KiB per known device.
//! - Fleet reads while ingesting: with those 100,000 known devices, 50,000 msg/s from the
//!   10,000 active ones while one reader alternates `GET /api/v1/devices?status=late&limit=100`
//!   and `GET /api/v1/devices/{id}` of a random known device. Goal: p99 ≤ 10 ms for each
//!   (`fleet_reads.rs`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::field_load::{FieldLoad, Until, SPLIT_EVERY};
use crate::fleet_reads;
use crate::on_off::{run, tempdir, Modes};
use crate::procs::{Programs, Server};
use crate::report::{Figure, Report, Row};
use crate::sampling::rss_kib;
use crate::target::{Goal, Target};
use crate::telemetry::{device_id, Sensors};

/// CPU per message with the fleet, at most this many times that without.
const TARGET_CPU_RATIO: f64 = 1.05;
/// Bytes the fleet may add per known device.
const TARGET_BYTES_PER_KNOWN: f64 = 1024.0;
/// Unacked PUBLISHes per connection (as `sustained`).
const WINDOW: usize = 256;

pub struct FleetScale {
    /// The CPU runs: the sustained fleet's shape, and readings per run.
    pub cpu_devices: u32,
    pub cpu_connections: u32,
    pub cpu_readings: u64,
    /// Provisioned devices, and how many of them publish.
    pub known: u32,
    pub active: u32,
    pub connections: u32,
    /// The memory runs' paced load: msg/s, for how long.
    pub memory_rate: f64,
    pub memory_for: Duration,
    /// The read runs' ingestion, msg/s, and how long the reader reads.
    pub read_ingest_rate: f64,
    pub read_for: Duration,
}

pub const FULL: FleetScale = FleetScale {
    cpu_devices: 10_000,
    cpu_connections: 50,
    cpu_readings: 2_000_000,
    known: 100_000,
    active: 10_000,
    connections: 50,
    memory_rate: 20_000.0,
    memory_for: Duration::from_secs(20),
    read_ingest_rate: 50_000.0,
    read_for: Duration::from_secs(20),
};

pub const QUICK: FleetScale = FleetScale {
    cpu_devices: 200,
    cpu_connections: 4,
    cpu_readings: 40_000,
    known: 10_000,
    active: 1_000,
    connections: 4,
    memory_rate: 2_000.0,
    memory_for: Duration::from_secs(2),
    read_ingest_rate: 2_000.0,
    read_for: Duration::from_secs(3),
};

pub fn measure(programs: &Programs, scale: &FleetScale, runs: usize, report: &mut Report) {
    // The live device state alone: anomaly detection, which runs in the fleet, has a
    // configuration of its own (`anomaly_cost.rs`).
    let modes = Modes::new("fleet", "[anomaly]\nenabled = false\n");
    eprintln!("Fleet: CPU per message with and without ...");
    cpu(programs, scale, runs, &modes, report);
    eprintln!(
        "Fleet: memory of {} known devices, {} active ...",
        scale.known, scale.active
    );
    let template = KnownDevices::provision(programs, &modes, scale.known);
    memory(programs, scale, runs, &modes, &template, report);
    eprintln!(
        "Fleet: reads while ingesting {:.0} msg/s ...",
        scale.read_ingest_rate
    );
    fleet_reads::measure(programs, scale, runs, &modes, &template, report);
}

/// CPU seconds per acked message of one sustained run into a fresh store, and its rate.
fn cpu_run(programs: &Programs, scale: &FleetScale, config: &Path) -> (f64, f64, Vec<String>) {
    let load = FieldLoad {
        devices: scale.cpu_devices,
        connections: scale.cpu_connections,
        rate: None,
        until: Until::Readings(scale.cpu_readings),
        window: WINDOW,
        record_latency: false,
        progress_step: None,
        client_prefix: "fleet-cpu",
        reconnects: false,
        split_every: SPLIT_EVERY,
        sensors: Sensors::Cycle,
    };
    let (measured, problems) = run(programs, config, load);
    (measured.us_per_message, measured.rate, problems)
}

fn cpu(programs: &Programs, scale: &FleetScale, runs: usize, modes: &Modes, report: &mut Report) {
    let (mut with, mut without, mut problems) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        for fleet in [true, false] {
            let (us, rate, trouble) = cpu_run(programs, scale, modes.config(fleet));
            problems.extend(trouble);
            match fleet {
                true => with.push((us, rate)),
                false => without.push((us, rate)),
            }
        }
    }
    let us = |runs: &[(f64, f64)]| Figure::of(runs.iter().map(|r| r.0));
    let rate = |runs: &[(f64, f64)]| Figure::of(runs.iter().map(|r| r.1));
    let ratio = Figure::of(with.iter().zip(&without).map(|(w, o)| w.0 / o.0));
    let row = Row::measured(
        &format!(
            "Eliot, fleet cost: CPU per message, {} devices over {} connections, QoS 1 as fast \
             as acks allow, {} readings a run into a fresh store, fleet on and off alternating \
             (msg/s: with the fleet)",
            scale.cpu_devices, scale.cpu_connections, scale.cpu_readings
        ),
        Some(rate(&with)),
        None,
        format!(
            "CPU per message: with the fleet {} µs, without {} µs ({} msg/s), ratio {} per \
             pair of runs",
            us(&with).show(1),
            us(&without).show(1),
            rate(&without).show(0),
            ratio.show(3)
        ),
    )
    .with_label("Fleet CPU")
    .with_target(Target::new(
        "CPU with / without",
        ratio.median,
        Goal::AtMost(TARGET_CPU_RATIO),
        "×",
    ))
    .with_problems(&problems);
    report.add(row);
}

/// A database with `known` provisioned devices (`dev-00000`, ...), copied for each run.
pub struct KnownDevices {
    dir: TempDir,
    pub known: u32,
}

impl KnownDevices {
    /// Lets an Eliot create the database, then provisions the devices into it directly (the
    /// CLI would hash a secret per device: minutes for 100,000).
    fn provision(programs: &Programs, modes: &Modes, known: u32) -> KnownDevices {
        let dir = tempdir();
        let shared = Arc::new(dir);
        let eliot = Server::eliot_configured(programs, shared.clone(), modes.config(false));
        assert!(
            eliot.terminate(Duration::from_secs(30)),
            "Eliot stops on SIGTERM"
        );
        let dir = Arc::try_unwrap(shared).expect("no other holder of the template");
        let mut db = rusqlite::Connection::open(dir.path().join("eliot.db"))
            .expect("the template database opens");
        let tx = db.transaction().expect("a transaction");
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO devices (device_id, secret_hash, created_at) \
                     VALUES (?1, NULL, '2026-01-01T00:00:00.000000Z')",
                )
                .expect("the devices table is there");
            for index in 0..known {
                insert
                    .execute([device_id(index)])
                    .expect("a device is provisioned");
            }
        }
        tx.commit().expect("the devices are committed");
        db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("the WAL is checkpointed");
        KnownDevices { dir, known }
    }

    /// A fresh data directory holding only the provisioned devices.
    pub fn copy(&self) -> Arc<TempDir> {
        let dir = tempdir();
        std::fs::copy(
            self.dir.path().join("eliot.db"),
            dir.path().join("eliot.db"),
        )
        .expect("the template database is copied");
        Arc::new(dir)
    }
}

/// Resident KiB once started on the known devices, and after the active ones published.
fn memory_run(
    programs: &Programs,
    scale: &FleetScale,
    config: &Path,
    known: &KnownDevices,
) -> (u64, u64, Vec<String>) {
    let eliot = Server::eliot_configured(programs, known.copy(), config);
    wait_ready(&eliot);
    std::thread::sleep(Duration::from_secs(1));
    let at_start = rss_kib(eliot.pid());
    let outcome = paced(scale, scale.memory_rate, scale.memory_for, "fleet-memory").run(eliot.addr);
    std::thread::sleep(Duration::from_secs(1));
    (at_start, rss_kib(eliot.pid()), outcome.problems())
}

fn memory(
    programs: &Programs,
    scale: &FleetScale,
    runs: usize,
    modes: &Modes,
    known: &KnownDevices,
    report: &mut Report,
) {
    let (mut per_known, mut per_active, mut problems) = (Vec::new(), Vec::new(), Vec::new());
    let mut rss = [Vec::new(), Vec::new()];
    for _ in 0..runs {
        let (on_start, on_active, trouble) = memory_run(programs, scale, modes.config(true), known);
        problems.extend(trouble);
        let (off_start, off_active, trouble) =
            memory_run(programs, scale, modes.config(false), known);
        problems.extend(trouble);
        let known_bytes = (on_start as f64 - off_start as f64) * 1024.0;
        let active_bytes = (on_active as f64 - off_active as f64) * 1024.0 - known_bytes;
        per_known.push(known_bytes / f64::from(known.known));
        per_active.push(active_bytes / f64::from(scale.active));
        rss[0].push(on_active as f64 / 1024.0);
        rss[1].push(off_active as f64 / 1024.0);
    }
    let per_known = Figure::of(per_known);
    let row = Row::measured(
        &format!(
            "Eliot, fleet cost: memory, {} known devices, {} of them publishing {:.0} msg/s \
             for {} s, fleet on and off alternating",
            known.known,
            scale.active,
            scale.memory_rate,
            scale.memory_for.as_secs()
        ),
        None,
        None,
        format!(
            "bytes the fleet adds per known device {}, per active device beyond that {}; \
             resident after the load: with the fleet {} MiB, without {} MiB",
            per_known.show(0),
            Figure::of(per_active).show(0),
            Figure::of(rss[0].clone()).show(0),
            Figure::of(rss[1].clone()).show(0)
        ),
    )
    .with_label("Fleet memory")
    .with_target(Target::new(
        "bytes per known device",
        per_known.median,
        Goal::AtMost(TARGET_BYTES_PER_KNOWN),
        " B",
    ))
    .with_problems(&problems);
    report.add(row);
}

/// The active devices, paced at `rate` for `duration`.
pub fn paced(scale: &FleetScale, rate: f64, duration: Duration, prefix: &'static str) -> FieldLoad {
    FieldLoad {
        devices: scale.active,
        connections: scale.connections,
        rate: Some(rate),
        until: Until::Elapsed(duration),
        window: WINDOW,
        record_latency: false,
        progress_step: None,
        client_prefix: prefix,
        reconnects: false,
        split_every: SPLIT_EVERY,
        sensors: Sensors::Cycle,
    }
}

/// Waits until Eliot answers `/ready` 200: its fleet has loaded every known device.
pub fn wait_ready(eliot: &Server) {
    let url = format!(
        "http://{}/ready",
        eliot.http.expect("Eliot listens for HTTP")
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if ureq::get(&url).call().is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("Eliot is not ready after 120 s");
}
