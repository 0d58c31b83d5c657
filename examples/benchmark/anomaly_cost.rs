//! `anomaly`: what anomaly detection costs. Every figure is taken beside the same Eliot
//! with `[anomaly] enabled = false` (the fleet on in both), in the same run, runs
//! alternating between the two, each into a fresh store. Every reading is a `gps` one:
//! three numeric fields, three series per device.
//!
//! - Ingest at the sustained QoS 1 load (devices over 50 connections as fast as acks
//!   allow), long enough that most readings are scored past the detectors' warm-up: the
//!   rate with detection over the rate without (goal ≥ 0.90), Eliot's CPU per message both
//!   ways, and what detection adds per value scored (goal ≤ 2 µs).
//! - Memory: many devices' series, each past its warm-up, Eliot's resident memory with
//!   detection and without: bytes per series (goal ≤ 4 KiB), beside what a detector says
//!   it holds (`size_of` and its heap).

use crate::field_load::{FieldLoad, Until, SPLIT_EVERY};
use crate::on_off::{run, Modes, Run};
use crate::procs::Programs;
use crate::report::{Figure, Report, Row};
use crate::target::{Goal, Target};
use crate::telemetry::Sensors;

/// Ingest rate with detection, at least this share of the rate without.
const TARGET_RATE_RATIO: f64 = 0.90;
/// CPU detection may add per value scored, µs.
const TARGET_US_PER_VALUE: f64 = 2.0;
/// Memory per series, bytes.
const TARGET_BYTES_PER_SERIES: f64 = 4096.0;
/// Numeric fields of a `gps` reading: each is a series.
const FIELDS: u64 = 3;
/// Unacked PUBLISHes per connection (as `sustained`).
const WINDOW: usize = 256;

pub struct AnomalyScale {
    /// The CPU runs: devices, connections, readings per run.
    pub cpu_devices: u32,
    pub cpu_connections: u32,
    pub cpu_readings: u64,
    /// The memory runs: devices, and readings each.
    pub memory_devices: u32,
    pub memory_readings_each: u64,
}

pub const FULL: AnomalyScale = AnomalyScale {
    cpu_devices: 2_000,
    cpu_connections: 50,
    // 1,000 readings a device: the detectors' warm-up (150) is a small part.
    cpu_readings: 2_000_000,
    // Enough readings that every detector's memory is touched, not only allocated.
    memory_devices: 10_000,
    memory_readings_each: 200,
};

pub const QUICK: AnomalyScale = AnomalyScale {
    cpu_devices: 40,
    cpu_connections: 4,
    cpu_readings: 20_000,
    memory_devices: 1_000,
    memory_readings_each: 20,
};

pub fn measure(programs: &Programs, scale: &AnomalyScale, runs: usize, report: &mut Report) {
    let modes = Modes::new("anomaly", "");
    eprintln!("Anomaly: ingest and CPU with and without detection ...");
    cpu(programs, scale, runs, &modes, report);
    eprintln!(
        "Anomaly: memory of {} devices' series ...",
        scale.memory_devices
    );
    memory(programs, scale, runs, &modes, report);
}

/// `readings` of `devices` gps devices over `connections`, as fast as acks allow.
fn load(devices: u32, connections: u32, readings: u64) -> FieldLoad {
    FieldLoad {
        devices,
        connections,
        rate: None,
        until: Until::Readings(readings),
        window: WINDOW,
        record_latency: false,
        progress_step: None,
        client_prefix: "anomaly",
        reconnects: false,
        split_every: SPLIT_EVERY,
        sensors: Sensors::Gps,
    }
}

/// Runs each mode `runs` times, alternating: (with detection, without).
fn pairs(
    programs: &Programs,
    runs: usize,
    modes: &Modes,
    load: impl Fn() -> FieldLoad,
) -> (Vec<Run>, Vec<Run>, Vec<String>) {
    let (mut with, mut without, mut problems) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        for on in [true, false] {
            let (measured, trouble) = run(programs, modes.config(on), load());
            problems.extend(trouble);
            match on {
                true => with.push(measured),
                false => without.push(measured),
            }
        }
    }
    (with, without, problems)
}

fn cpu(programs: &Programs, scale: &AnomalyScale, runs: usize, modes: &Modes, report: &mut Report) {
    let (with, without, problems) = pairs(programs, runs, modes, || {
        load(scale.cpu_devices, scale.cpu_connections, scale.cpu_readings)
    });
    let us = |runs: &[Run]| Figure::of(runs.iter().map(|r| r.us_per_message));
    let rate = |runs: &[Run]| Figure::of(runs.iter().map(|r| r.rate));
    let pairs = || with.iter().zip(&without);
    let rate_ratio = Figure::of(pairs().map(|(w, o)| w.rate / o.rate));
    let per_value =
        Figure::of(pairs().map(|(w, o)| (w.us_per_message - o.us_per_message) / FIELDS as f64));
    let row = Row::measured(
        &format!(
            "Eliot, anomaly cost: {} gps devices (3 series each) over {} connections, QoS 1 as \
             fast as acks allow, {} readings a run into a fresh store, detection on and off \
             alternating (msg/s: with detection)",
            scale.cpu_devices, scale.cpu_connections, scale.cpu_readings
        ),
        Some(rate(&with)),
        None,
        format!(
            "msg/s without detection {}; rate with / without {} per pair of runs; CPU per \
             message with {} µs, without {} µs: {} µs per value scored",
            rate(&without).show(0),
            rate_ratio.show(3),
            us(&with).show(2),
            us(&without).show(2),
            per_value.show(2)
        ),
    )
    .with_label("Anomaly CPU")
    .with_target(Target::new(
        "ingest rate with / without",
        rate_ratio.median,
        Goal::AtLeast(TARGET_RATE_RATIO),
        "×",
    ))
    .with_target(Target::new(
        "CPU per value scored",
        per_value.median,
        Goal::AtMost(TARGET_US_PER_VALUE),
        " µs",
    ))
    .with_problems(&problems);
    report.add(row);
}

fn memory(
    programs: &Programs,
    scale: &AnomalyScale,
    runs: usize,
    modes: &Modes,
    report: &mut Report,
) {
    let readings = u64::from(scale.memory_devices) * scale.memory_readings_each;
    let (with, without, problems) = pairs(programs, runs, modes, || {
        load(scale.memory_devices, 50.min(scale.memory_devices), readings)
    });
    let series = f64::from(scale.memory_devices) * FIELDS as f64;
    let per_series = Figure::of(
        with.iter()
            .zip(&without)
            .map(|(w, o)| (w.rss_kib as f64 - o.rss_kib as f64) * 1024.0 / series),
    );
    let mib = |runs: &[Run]| Figure::of(runs.iter().map(|r| r.rss_kib as f64 / 1024.0));
    let row = Row::measured(
        &format!(
            "Eliot, anomaly cost: memory, {} gps devices, {} readings each ({} series), \
             detection on and off alternating",
            scale.memory_devices, scale.memory_readings_each, series
        ),
        None,
        None,
        format!(
            "bytes per series {} (a detector: {} B, and its series' names and place in its \
             device); resident: with detection {} MiB, without {} MiB",
            per_series.show(0),
            detector_bytes(),
            mib(&with).show(0),
            mib(&without).show(0)
        ),
    )
    .with_label("Anomaly memory")
    .with_target(Target::new(
        "bytes per series",
        per_series.median,
        Goal::AtMost(TARGET_BYTES_PER_SERIES),
        " B",
    ))
    .with_problems(&problems);
    report.add(row);
}

/// What one detector holds, as it says.
fn detector_bytes() -> usize {
    let detector = eliot_actors::AnomalyDetector::new();
    std::mem::size_of_val(&detector) + detector.heap_bytes()
}
