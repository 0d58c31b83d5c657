//! `sustained`: does Eliot keep its speed as its store fills? A fleet of 10,000 devices,
//! multiplexed over 50 connections (every 4th ending each write one byte into the next
//! packet), publishes QoS 1 readings as fast as the acks allow into a fresh store until
//! 10,000,000 are acked and 120 s have passed, whichever comes later. The ack rate is taken
//! at every 1 % of the 10,000,000 readings, so a store that slows down as it grows (indexes
//! outgrowing the cache, say) shows as a falling curve; the figure held to the target is the
//! rate over the last quarter of the readings, when the store is at its largest.
//!
//! Then the same load runs against Mosquitto, which acks on receipt and stores nothing: its
//! ack rates (overall and over the last quarter) stand beside Eliot's, as ratios. Absolute
//! rates on a shared machine swing twofold from day to day, the same code on the same
//! machine; the ratio to a broker measured in the same run does not. A server-side
//! disconnect in either run fails it.
//!
//! The store it fills is kept: `paced` and `reads` run on it (a store that already holds
//! millions of readings, as a real one does).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::field_load::{FieldLoad, LoadOutcome, Until, SPLIT_EVERY};
use crate::procs::{Programs, Server};
use crate::report::{Figure, Report, Row};
use crate::sampling::RssSampler;
use crate::sustained_chart;
use crate::target::{Goal, Target};
use crate::telemetry::Sensors;

/// Acked msg/s over the last quarter of the readings, at the least.
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
    /// The run goes on at least this long, past its readings if need be: on a fast day its
    /// figures still cover this much time, not only a burst.
    pub min_duration: Duration,
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
/// made and its time has passed, with the ack rate taken every `STEPS`th of its readings.
pub fn load(scale: &SustainedScale) -> FieldLoad {
    FieldLoad {
        devices: scale.devices,
        connections: scale.connections,
        rate: None,
        until: Until::ReadingsAndElapsed(scale.readings, scale.min_duration),
        window: WINDOW,
        record_latency: false,
        progress_step: Some((scale.readings / STEPS).max(1)),
        client_prefix: "sustained",
        reconnects: false,
        split_every: SPLIT_EVERY,
        sensors: Sensors::Cycle,
    }
}

/// A run's ack rates, over the readings its progress marks cover.
struct Rates {
    overall: f64,
    first_quarter: f64,
    last_quarter: f64,
    /// Readings acked by the last progress mark: what the quarters are of.
    covered: u64,
}

impl Rates {
    fn of(outcome: &LoadOutcome) -> Rates {
        let covered = outcome.marks.last().map_or(0, |&(acked, _)| acked);
        let quarter = |from, to| rate_between(&outcome.marks, outcome.started, from, to, covered);
        Rates {
            overall: outcome.rate(),
            first_quarter: quarter(0.0, 0.25),
            last_quarter: quarter(0.75, 1.0),
            covered,
        }
    }
}

/// "Eliot 150000 msg/s, Mosquitto 250000 msg/s, ratio 0.60".
fn beside(eliot: f64, mosquitto: f64) -> String {
    format!(
        "Eliot {eliot:.0} msg/s, Mosquitto {mosquitto:.0} msg/s, ratio {:.2}",
        eliot / mosquitto
    )
}

/// Runs the sustained load into a fresh Eliot, then against Mosquitto; adds both rows
/// (Eliot's rates beside Mosquitto's), their disconnects, and Eliot's deciles and chart to
/// the report (the chart as `sustained.png` in `out`), and hands the filled store on.
pub fn measure(
    programs: &Programs,
    scale: &SustainedScale,
    out: &Path,
    report: &mut Report,
) -> FilledStore {
    let load = load(scale);
    let eliot = Server::eliot(programs);
    let sampler = RssSampler::start(eliot.pid());
    let outcome = load.run(eliot.addr);
    let peak_mib = sampler.peak_mib();
    let refused = refused(&eliot);
    let store = FilledStore {
        dir: eliot.dir.clone(),
        readings: outcome.acked,
        devices: scale.devices,
    };
    // Mosquitto runs alone, as Eliot did: what Eliot acked is committed in `store`.
    drop(eliot);
    eprintln!("Mosquitto, the same sustained load ...");
    let (beside_outcome, mosquitto_cores) = load.run_against_mosquitto();
    let (rates, mosquitto) = (Rates::of(&outcome), Rates::of(&beside_outcome));

    let mut problems = problems(scale, &outcome);
    problems.extend(refused);
    report.add(eliot_row(scale, &outcome, &rates, &mosquitto, peak_mib).with_problems(&problems));
    report.disconnects("Eliot sustained", &outcome.disconnects);
    report.add(mosquitto_row(
        scale,
        &beside_outcome,
        &mosquitto,
        mosquitto_cores,
    ));
    report.disconnects("Mosquitto sustained", &beside_outcome.disconnects);

    let tenths = tenths(&outcome.marks, outcome.started, rates.covered);
    report.section(deciles_table(&tenths));
    std::fs::create_dir_all(out).expect("the output directory can be made");
    let stretches = stretches(outcome.started, &outcome.marks);
    if let Err(e) = sustained_chart::draw(&out.join("sustained.png"), &stretches, &tenths) {
        eprintln!("no sustained chart: {e}");
    }
    store
}

/// "10000 devices over 50 connections (1 in 4 ending its writes one byte into a packet) as
/// fast as acks allow, at least 10000000 readings and 120 s"
pub fn shape(scale: &SustainedScale) -> String {
    let split = load(scale).split_every.map_or_else(String::new, |n| {
        format!(" (1 in {n} ending its writes one byte into a packet)")
    });
    format!(
        "{} devices over {} connections{split} as fast as acks allow, at least {} readings \
         and {} s",
        scale.devices,
        scale.connections,
        scale.readings,
        scale.min_duration.as_secs()
    )
}

/// Eliot's row: its rates beside Mosquitto's, held to the target over the last quarter.
fn eliot_row(
    scale: &SustainedScale,
    outcome: &LoadOutcome,
    rates: &Rates,
    mosquitto: &Rates,
    peak_mib: f64,
) -> Row {
    Row::measured(
        &format!(
            "Eliot, sustained: {} into a fresh store, QoS 1 (1 run)",
            shape(scale)
        ),
        Some(Figure::of([rates.overall])),
        None,
        format!(
            "{}; first quarter {:.0} msg/s; beside Mosquitto (the same load in the same run): \
             overall {}, last quarter {}; peak RSS {peak_mib:.0} MiB; load generator {:.0} % \
             of a core",
            run_notes(outcome),
            rates.first_quarter,
            beside(rates.overall, mosquitto.overall),
            beside(rates.last_quarter, mosquitto.last_quarter),
            outcome.generator_cores() * 100.0
        ),
    )
    .with_label("Eliot sustained")
    .with_target(
        Target::new(
            "last quarter",
            rates.last_quarter,
            Goal::AtLeast(TARGET_LAST_QUARTER),
            " msg/s",
        )
        .with_beside(format!(
            "Mosquitto {:.0} msg/s over the last quarter of the same load, ratio {:.2}",
            mosquitto.last_quarter,
            rates.last_quarter / mosquitto.last_quarter
        )),
    )
}

/// Mosquitto's row: the same load, acked on receipt, nothing stored.
fn mosquitto_row(scale: &SustainedScale, outcome: &LoadOutcome, rates: &Rates, cores: f64) -> Row {
    Row::measured(
        &format!(
            "Mosquitto, sustained: {} (acked by the broker, no subscriber, nothing stored; \
             1 run)",
            shape(scale)
        ),
        Some(Figure::of([rates.overall])),
        None,
        format!(
            "{}; first quarter {:.0} msg/s, last quarter {:.0} msg/s; Mosquitto {:.0} % of a \
             core, load generator {:.0} %",
            run_notes(outcome),
            rates.first_quarter,
            rates.last_quarter,
            cores * 100.0,
            outcome.generator_cores() * 100.0
        ),
    )
    .with_label("Mosquitto sustained")
    .with_problems(&problems(scale, outcome))
}

/// "10000000 acked in 131 s; 0 server-side disconnects"
fn run_notes(outcome: &LoadOutcome) -> String {
    format!(
        "{} acked in {:.0} s; {} server-side disconnects",
        outcome.acked,
        outcome.duration.as_secs_f64(),
        outcome.disconnects.len()
    )
}

/// What went wrong in a run of the sustained load: failed connections, disconnects, or
/// fewer readings acked than asked for.
fn problems(scale: &SustainedScale, outcome: &LoadOutcome) -> Vec<String> {
    let mut problems = outcome.problems();
    if outcome.acked < scale.readings {
        problems.push(format!("{} of {} acked", outcome.acked, scale.readings));
    }
    problems
}

/// The readings Eliot refused (dead letters), if any: a load of valid readings leaves none.
fn refused(eliot: &Server) -> Option<String> {
    let dead_letters = eliot.dead_letters();
    (dead_letters > 0).then(|| {
        let reason = eliot.first_dead_letter().unwrap_or_default();
        format!("{dead_letters} readings refused (dead letters), the first: {reason}")
    })
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
