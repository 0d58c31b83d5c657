//! `paced`: latency and CPU cost at a steady, realistic load. 1,000 devices
//! over 10 connections (every 4th ending each write one byte into the next packet) offer
//! 20,000 msg/s in total, evenly spread, QoS 1, for 120 s; first to Eliot on the store
//! `sustained` filled (millions of readings already there), then to Mosquitto with the same
//! load. Each run reports publish→PUBACK percentiles, the rate achieved, the server's CPU
//! time per acked message (utime + stime from /proc, the difference over the run) and its
//! server-side disconnects (any fails the run): Eliot's CPU over Mosquitto's is what durable
//! storage costs beyond a broker that only acks.

use std::time::Duration;

use crate::field_load::{Disconnect, FieldLoad, LoadOutcome, Until, SPLIT_EVERY};
use crate::latency::{over_runs, Percentiles};
use crate::procs::{Programs, Server};
use crate::report::{Figure, Report, Row};
use crate::sustained::FilledStore;
use crate::target::{Goal, Target};
use crate::telemetry::Sensors;

/// publish→PUBACK p99 at most, ms.
const TARGET_P99_MS: f64 = 50.0;
/// Eliot's CPU per message over Mosquitto's, at most.
const TARGET_CPU_RATIO: f64 = 2.0;
/// Unacked PUBLISHes per connection: wide, so that a slow ack never holds a message back
/// (the load stays at the rate offered, and the wait shows in the latency).
const WINDOW: usize = 2_000;

pub struct PacedScale {
    pub devices: u32,
    pub connections: u32,
    /// Total msg/s offered.
    pub rate: f64,
    /// How long each run offers it: long enough that a connection the server ends every
    /// `mqtt.packet_timeout` (30 s) is seen.
    pub duration: Duration,
}

/// One run against one server.
struct PacedRun {
    latency: Option<Percentiles>,
    rate: f64,
    cpu_us_per_message: f64,
    max_late_ms: f64,
    disconnects: Vec<Disconnect>,
    problems: Vec<String>,
}

/// Measures Eliot (on `store`) and Mosquitto, `runs` times each; adds both rows and the
/// CPU ratio to the report.
pub fn measure(
    programs: &Programs,
    scale: &PacedScale,
    runs: usize,
    store: &FilledStore,
    report: &mut Report,
) {
    let load = FieldLoad {
        devices: scale.devices,
        connections: scale.connections,
        rate: Some(scale.rate),
        until: Until::Elapsed(scale.duration),
        window: WINDOW,
        record_latency: true,
        progress_step: None,
        client_prefix: "paced",
        reconnects: false,
        split_every: SPLIT_EVERY,
        sensors: Sensors::Cycle,
    };
    let shape = format!(
        "{:.0} msg/s offered by {} devices over {} connections for {} s, QoS 1",
        scale.rate,
        scale.devices,
        scale.connections,
        scale.duration.as_secs_f64()
    );
    let eliot_runs: Vec<PacedRun> = (0..runs)
        .map(|_| {
            let eliot = Server::eliot_in(programs, store.dir.clone());
            let mut run = measure_run(&eliot, &load);
            let dead_letters = eliot.dead_letters();
            if dead_letters > 0 {
                let reason = eliot.first_dead_letter().unwrap_or_default();
                run.problems.push(format!(
                    "{dead_letters} dead letters in the store, the first: {reason}"
                ));
            }
            run
        })
        .collect();
    let mosquitto_runs: Vec<PacedRun> = (0..runs)
        .map(|_| measure_run(&Server::mosquitto(), &load))
        .collect();
    for (label, runs) in [
        ("Eliot paced", &eliot_runs),
        ("Mosquitto paced", &mosquitto_runs),
    ] {
        report.disconnects_by_run(label, runs.iter().map(|r| r.disconnects.as_slice()));
    }

    let eliot_row = row(
        &format!(
            "Eliot, paced: {shape}, on a store of {} readings",
            store.readings
        ),
        "Eliot paced",
        &eliot_runs,
    );
    let eliot_p99 = eliot_row.p99_ms().unwrap_or(f64::NAN);
    report.add(eliot_row.with_target(Target::new(
        "p99",
        eliot_p99,
        Goal::AtMost(TARGET_P99_MS),
        " ms",
    )));
    report.add(row(
        &format!("Mosquitto, paced: {shape} (acked by the broker, no subscriber)"),
        "Mosquitto paced",
        &mosquitto_runs,
    ));
    let cpu = |runs: &[PacedRun]| Figure::of(runs.iter().map(|r| r.cpu_us_per_message)).median;
    report.ratio(
        "CPU per message, Eliot paced / Mosquitto paced",
        cpu(&eliot_runs) / cpu(&mosquitto_runs),
        Goal::AtMost(TARGET_CPU_RATIO),
    );
}

/// One paced run against `server`, with its CPU time over the run.
fn measure_run(server: &Server, load: &FieldLoad) -> PacedRun {
    let cpu_before = server.cpu_seconds();
    let outcome: LoadOutcome = load.run(server.addr);
    let cpu_seconds = server.cpu_seconds() - cpu_before;
    let mut problems = outcome.problems();
    if outcome.acked < outcome.sent {
        problems.push(format!("{} of {} acked", outcome.acked, outcome.sent));
    }
    PacedRun {
        latency: Percentiles::of_sorted_us(&outcome.latencies_us),
        rate: outcome.rate(),
        cpu_us_per_message: cpu_seconds * 1e6 / outcome.acked.max(1) as f64,
        max_late_ms: outcome.max_late.as_secs_f64() * 1000.0,
        disconnects: outcome.disconnects,
        problems,
    }
}

fn row(name: &str, label: &str, runs: &[PacedRun]) -> Row {
    let latencies: Vec<Option<Percentiles>> = runs.iter().map(|r| r.latency).collect();
    let (percentiles, max) = over_runs(&latencies);
    let cpu = Figure::of(runs.iter().map(|r| r.cpu_us_per_message));
    let late = Figure::of(runs.iter().map(|r| r.max_late_ms));
    let disconnects: usize = runs.iter().map(|r| r.disconnects.len()).sum();
    let problems: Vec<String> = runs.iter().flat_map(|r| r.problems.clone()).collect();
    Row::measured(
        name,
        Some(Figure::of(runs.iter().map(|r| r.rate))),
        Some(percentiles),
        format!(
            "max {} ms; server CPU {} µs/msg; sent late by at most {} ms; \
             {disconnects} server-side disconnects over the runs",
            max.show(1),
            cpu.show(1),
            late.show(1)
        ),
    )
    .with_label(label)
    .with_problems(&problems)
}
