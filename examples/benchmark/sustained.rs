//! `sustained`: does Eliot keep its speed as its store fills? A fleet of 10,000 devices,
//! multiplexed over 50 connections, publishes QoS 1 readings as fast as the acks allow into
//! a fresh store until 10,000,000 are acked. The ack rate is taken at every 1 % of the
//! readings, so a store that slows down as it grows (indexes outgrowing the cache, say)
//! shows as a falling curve; the figure held to the target is the rate over the last quarter,
//! when the store is at its largest.
//!
//! The store it fills is kept: `paced` and `reads` run on it (a store that already holds
//! millions of readings, as a real one does).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::field_load::{FieldLoad, Until};
use crate::procs::{Programs, RssSampler, Server};
use crate::report::{Figure, Goal, Report, Row, Target};
use crate::sustained_chart;

/// Acked msg/s over the last quarter of the readings, at the least (issue 8, goal 1).
pub const TARGET_LAST_QUARTER: f64 = 100_000.0;
/// Unacked PUBLISHes per connection: twice Eliot's `max_in_flight` (128), so that the next
/// PUBLISHes already wait in the socket when Eliot acks.
const WINDOW: usize = 256;
/// The ack rate is taken every this fraction of the readings.
const STEPS: u64 = 100;

/// The sustained run's size.
pub struct SustainedScale {
    pub devices: u32,
    pub connections: u32,
    pub readings: u64,
}

/// The store a sustained run filled, for the configurations that need a full one.
pub struct FilledStore {
    pub dir: Arc<TempDir>,
    /// Readings acked into it.
    pub readings: u64,
    /// The devices that have readings in it: `dev-00000` up to this many.
    pub devices: u32,
}

/// The ack rate over one stretch of the run.
pub struct Stretch {
    /// Readings acked at its end.
    pub acked: u64,
    pub rate: f64,
}

/// The sustained load of `scale`: its fleet as fast as acks allow until its readings are
/// made, with the ack rate taken every `STEPS`th of them.
pub fn load(scale: &SustainedScale) -> FieldLoad {
    FieldLoad {
        devices: scale.devices,
        connections: scale.connections,
        rate: None,
        until: Until::Readings(scale.readings),
        window: WINDOW,
        record_latency: false,
        progress_step: Some((scale.readings / STEPS).max(1)),
        client_prefix: "sustained",
        reconnects: false,
    }
}

/// Runs the sustained load into a fresh Eliot; adds its row, deciles and chart to the
/// report (the chart as `sustained.png` in `out`), and hands the filled store on.
pub fn measure(
    programs: &Programs,
    scale: &SustainedScale,
    out: &Path,
    report: &mut Report,
) -> FilledStore {
    let eliot = Server::eliot(programs);
    let sampler = RssSampler::start(eliot.pid());
    let outcome = load(scale).run(eliot.addr);
    let peak_mib = sampler.peak_mib();
    let dead_letters = eliot.dead_letters();

    let stretches = stretches(outcome.started, &outcome.marks);
    let last_quarter = rate_between(&outcome.marks, outcome.started, 0.75, 1.0, scale.readings);
    let first_quarter = rate_between(&outcome.marks, outcome.started, 0.0, 0.25, scale.readings);
    let overall = outcome.rate();
    let mut row = Row::measured(
        &format!(
            "Eliot, sustained: {} devices over {} connections as fast as acks allow, \
             {} readings into a fresh store, QoS 1 (1 run)",
            scale.devices, scale.connections, scale.readings
        ),
        Some(Figure::of([overall])),
        None,
        format!(
            "first quarter {first_quarter:.0} msg/s, last quarter {last_quarter:.0} msg/s; \
             peak RSS {peak_mib:.0} MiB; load generator {:.0} % of a core",
            outcome.generator_cores() * 100.0
        ),
    )
    .with_label("Eliot sustained")
    .with_target(Target::new(
        "last quarter",
        last_quarter,
        Goal::AtLeast(TARGET_LAST_QUARTER),
        " msg/s",
    ));
    let mut problems = outcome.errors.clone();
    if outcome.acked < scale.readings {
        problems.push(format!("{} of {} acked", outcome.acked, scale.readings));
    }
    if dead_letters > 0 {
        let reason = eliot.first_dead_letter().unwrap_or_default();
        problems.push(format!(
            "{dead_letters} readings refused (dead letters), the first: {reason}"
        ));
    }
    if !problems.is_empty() {
        row.failure = Some(problems.join("; "));
    }
    report.add(row);
    let tenths = tenths(&outcome.marks, outcome.started, scale.readings);
    report.section(deciles_table(&tenths));
    std::fs::create_dir_all(out).expect("the output directory can be made");
    if let Err(e) = sustained_chart::draw(&out.join("sustained.png"), &stretches, &tenths) {
        eprintln!("no sustained chart: {e}");
    }
    FilledStore {
        dir: eliot.dir.clone(),
        readings: outcome.acked,
        devices: scale.devices,
    }
}

/// The ack rate between consecutive progress marks.
fn stretches(started: Instant, marks: &[(u64, Instant)]) -> Vec<Stretch> {
    let mut previous = (0, started);
    marks
        .iter()
        .map(|&(acked, at)| {
            let took = at
                .saturating_duration_since(previous.1)
                .max(Duration::from_micros(1));
            let rate = (acked - previous.0) as f64 / took.as_secs_f64();
            previous = (acked, at);
            Stretch { acked, rate }
        })
        .collect()
}

/// Acked msg/s between the fractions `from` and `to` of `total` readings (0 if the run did
/// not get that far).
fn rate_between(marks: &[(u64, Instant)], started: Instant, from: f64, to: f64, total: u64) -> f64 {
    let reached = |fraction: f64| {
        let readings = (fraction * total as f64).round() as u64;
        if readings == 0 {
            return Some((0, started));
        }
        marks.iter().copied().find(|&(acked, _)| acked >= readings)
    };
    match (reached(from), reached(to)) {
        (Some((a0, t0)), Some((a1, t1))) if t1 > t0 => (a1 - a0) as f64 / (t1 - t0).as_secs_f64(),
        _ => 0.0,
    }
}

/// The ack rate over each tenth of the readings: (first reading, last reading, msg/s).
fn tenths(marks: &[(u64, Instant)], started: Instant, total: u64) -> Vec<(u64, u64, f64)> {
    (0..10)
        .map(|tenth| {
            let (from, to) = (f64::from(tenth) / 10.0, f64::from(tenth + 1) / 10.0);
            let rate = rate_between(marks, started, from, to, total);
            let at = |fraction: f64| (fraction * total as f64) as u64;
            (at(from), at(to), rate)
        })
        .collect()
}

/// The markdown table of msg/s by tenth of the readings, and the chart under it.
fn deciles_table(tenths: &[(u64, u64, f64)]) -> String {
    let mut md = String::from(
        "## Sustained ingestion, by tenth of the readings\n\n\
         | readings stored | msg/s |\n|---|---|\n",
    );
    for (from, to, rate) in tenths {
        let _ = writeln!(md, "| {from}–{to} | {rate:.0} |");
    }
    md.push_str("\n![msg/s against readings stored](sustained.png)\n");
    md
}
