//! The field configurations, which check that the store keeps its speed for real fleets. Their
//! sizes, and the order they run in: `sustained` fills a fresh store (and runs the same load
//! against Mosquitto beside it), `paced` and `reads` run on it; `generator` checks that the
//! load generator is not what limits them; `drill` kills Eliot while a store of the same size
//! fills. `sustained`, `paced` and `drill` each run at least `MIN_DURATION` in the full run,
//! so that a server's timeout that ends connections (`mqtt.packet_timeout` is 30 s) falls
//! well inside each of them.

use std::path::Path;
use std::time::Duration;

use crate::ack_sink::AckSink;
use crate::drill::{self, DrillScale};
use crate::field_load::{FieldLoad, LoadOutcome, Until};
use crate::paced::{self, PacedScale};
use crate::procs::Programs;
use crate::reads::{self, ReadsScale};
use crate::report::{Figure, Report, Row};
use crate::sustained::{self, SustainedScale};
use crate::target::{Goal, Target};

/// What the field load must reach against a server that only acks, so that it is not what
/// limits `sustained` at its target of 100,000 msg/s.
const TARGET_GENERATOR: f64 = 150_000.0;
/// The least time `sustained`, `paced` and `drill` each run in the full run (what counts is
/// the field's load, not a burst): four times `mqtt.packet_timeout`.
const MIN_DURATION: Duration = Duration::from_secs(120);
/// The same with `--quick`, which only checks that the benchmark works.
const QUICK_MIN_DURATION: Duration = Duration::from_secs(3);

pub struct FieldScale {
    pub sustained: SustainedScale,
    pub paced: PacedScale,
    pub reads: ReadsScale,
    pub drill: DrillScale,
    /// Readings the generator check publishes.
    pub generator_readings: u64,
}

pub fn full() -> FieldScale {
    FieldScale {
        sustained: SustainedScale {
            devices: 10_000,
            connections: 50,
            readings: 10_000_000,
            min_duration: MIN_DURATION,
        },
        paced: PacedScale {
            devices: 1_000,
            connections: 10,
            rate: 20_000.0,
            duration: MIN_DURATION,
        },
        reads: ReadsScale {
            ingest_rate: 50_000.0,
            ingest_connections: 50,
            duration: Duration::from_secs(20),
        },
        drill: DrillScale {
            fleet: SustainedScale {
                devices: 10_000,
                connections: 50,
                readings: 10_000_000,
                min_duration: MIN_DURATION,
            },
            kills: 5,
        },
        generator_readings: 2_000_000,
    }
}

impl FieldScale {
    /// `sustained`, `paced` and `drill` each run at least `least` (paced: exactly).
    pub fn run_at_least(&mut self, least: Duration) {
        self.sustained.min_duration = least;
        self.paced.duration = least;
        self.drill.fleet.min_duration = least;
    }
}

pub fn quick() -> FieldScale {
    FieldScale {
        sustained: SustainedScale {
            devices: 200,
            connections: 4,
            readings: 40_000,
            min_duration: QUICK_MIN_DURATION,
        },
        paced: PacedScale {
            devices: 1_000,
            connections: 10,
            rate: 1_000.0,
            duration: QUICK_MIN_DURATION,
        },
        reads: ReadsScale {
            ingest_rate: 2_000.0,
            ingest_connections: 4,
            duration: Duration::from_secs(3),
        },
        drill: DrillScale {
            fleet: SustainedScale {
                devices: 200,
                connections: 4,
                readings: 40_000,
                min_duration: QUICK_MIN_DURATION,
            },
            kills: 2,
        },
        generator_readings: 40_000,
    }
}

/// Runs the field configurations `wanted` asks for. `paced` and `reads` need the store
/// `sustained` fills, so either of them runs `sustained` too.
pub fn measure(
    programs: &Programs,
    scale: &FieldScale,
    runs: usize,
    wanted: &dyn Fn(&str) -> bool,
    out: &Path,
    report: &mut Report,
) {
    if wanted("generator") {
        eprintln!("Load generator, against a null acker and against Mosquitto ...");
        generator(scale, report);
    }
    if wanted("drill") {
        let d = &scale.drill;
        eprintln!(
            "Eliot, kill -9 drill: {} readings from {} devices for at least {} s, {} kills ...",
            d.fleet.readings,
            d.fleet.devices,
            d.fleet.min_duration.as_secs(),
            d.kills
        );
        drill::measure(programs, d, report);
    }
    if !["sustained", "paced", "reads"].iter().any(|c| wanted(c)) {
        return;
    }
    let s = &scale.sustained;
    eprintln!(
        "Eliot, sustained: {} readings from {} devices over {} connections, at least {} s ...",
        s.readings,
        s.devices,
        s.connections,
        s.min_duration.as_secs()
    );
    let store = sustained::measure(programs, s, out, report);
    if wanted("paced") {
        eprintln!(
            "Eliot and Mosquitto, paced at {:.0} msg/s ...",
            scale.paced.rate
        );
        paced::measure(programs, &scale.paced, runs, &store, report);
    }
    if wanted("reads") {
        eprintln!(
            "Eliot, reads while ingesting {:.0} msg/s ...",
            scale.reads.ingest_rate
        );
        reads::measure(programs, &scale.reads, runs, &store, report);
    }
}

/// The sustained load, as fast as acks allow, against a null server that only acks (the
/// generator's own ceiling, held to the target) and against Mosquitto (a broker's); adds
/// both rows and their disconnects.
fn generator(scale: &FieldScale, report: &mut Report) {
    let s = &scale.sustained;
    let load = FieldLoad {
        until: Until::Readings(scale.generator_readings),
        progress_step: None,
        client_prefix: "generator",
        ..sustained::load(s)
    };
    let shape = format!(
        "{} readings over {} connections, QoS 1 (1 run)",
        scale.generator_readings, s.connections
    );
    let sink = AckSink::start();
    let outcome = load.run(sink.addr);
    drop(sink);
    report.disconnects("Generator", &outcome.disconnects);
    let to_sink = generator_row(
        &format!("Load generator against a null acker (in process): {shape}"),
        "Generator",
        &outcome,
        format!(
            "this process (generator and acker) {:.0} % of a core",
            outcome.generator_cores() * 100.0
        ),
    )
    .with_target(Target::new(
        "msg/s",
        outcome.rate(),
        Goal::AtLeast(TARGET_GENERATOR),
        " msg/s",
    ));
    report.add(to_sink);
    let (outcome, broker_cores) = load.run_against_mosquitto();
    report.disconnects("Generator→Mosquitto", &outcome.disconnects);
    let to_mosquitto = generator_row(
        &format!("Load generator against Mosquitto: {shape}"),
        "Generator→Mosquitto",
        &outcome,
        format!(
            "load generator {:.0} % of a core, Mosquitto {:.0} %",
            outcome.generator_cores() * 100.0,
            broker_cores * 100.0
        ),
    );
    report.add(to_mosquitto);
}

fn generator_row(name: &str, label: &str, outcome: &LoadOutcome, notes: String) -> Row {
    let mut row = Row::measured(name, Some(Figure::of([outcome.rate()])), None, notes)
        .with_label(label)
        .with_problems(&outcome.problems());
    // Of another scale than the servers' figures: in the table, not in the chart.
    row.in_chart = false;
    row
}
