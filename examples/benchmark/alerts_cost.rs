//! `alerts`: what alert rules cost. The figure is taken beside the same Eliot with
//! `[alerts] enabled = false` (the same rules configured, the fleet on, anomaly detection
//! off in both), in the same run, runs alternating between the two, each into a fresh
//! store.
//!
//! The fleet: devices `dev-00000` on, every reading a `gps` one. The rules: 1,000
//! threshold rules on `gps.latitude`, each scoped to ten devices by an id prefix
//! (`dev-0042` covers `dev-00420` to `dev-00429`), so that every device has its own rule to
//! meet; one in a hundred of them holds for every reading (its devices' alerts fire at
//! their first reading and stay firing), the others never do; and an absence rule and a
//! dead-letter rule over every device. Ingest at the sustained QoS 1 load (devices over 50
//! connections as fast as acks allow): Eliot's CPU per message with the rules over without
//! (goal ≤ 1.10), and the rates.

use std::fmt::Write as _;

use crate::field_load::{FieldLoad, Until, SPLIT_EVERY};
use crate::on_off::{run, Modes, Run};
use crate::procs::Programs;
use crate::report::{Figure, Report, Row};
use crate::target::{Goal, Target};
use crate::telemetry::Sensors;

/// CPU per message with the rules, at most this times without.
const TARGET_CPU_RATIO: f64 = 1.10;
/// Threshold rules, each over ten devices.
const RULES: u32 = 1_000;
/// Unacked PUBLISHes per connection (as `sustained`).
const WINDOW: usize = 256;

pub struct AlertsScale {
    pub devices: u32,
    pub connections: u32,
    pub readings: u64,
}

pub const FULL: AlertsScale = AlertsScale {
    devices: 10_000,
    connections: 50,
    readings: 2_000_000,
};

pub const QUICK: AlertsScale = AlertsScale {
    devices: 1_000,
    connections: 4,
    readings: 20_000,
};

/// The rules, as `[[alerts.rules]]` tables (and anomaly detection off).
fn rules() -> String {
    let mut toml = String::from("[anomaly]\nenabled = false\n");
    for i in 0..RULES {
        // One rule in a hundred always holds: latitudes are within ±61°.
        let value = if i % 100 == 0 { -90.0 } else { 89.0 };
        let _ = write!(
            toml,
            "[[alerts.rules]]\nname = \"north_{i:04}\"\nkind = \"threshold\"\n\
             sensor_type = \"gps\"\nfield = \"latitude\"\nop = \">\"\nvalue = {value:.1}\n\
             device_prefix = \"dev-{i:04}\"\n"
        );
    }
    toml.push_str(
        "[[alerts.rules]]\nname = \"silent\"\nkind = \"absence\"\nfor = \"1m\"\n\
         [[alerts.rules]]\nname = \"bad_data\"\nkind = \"dead_letters\"\ncount = 10\nwindow = \"1m\"\n",
    );
    toml
}

pub fn measure(programs: &Programs, scale: &AlertsScale, runs: usize, report: &mut Report) {
    let modes = Modes::new("alerts", &rules());
    eprintln!(
        "Alerts: ingest and CPU with and without {} rules ...",
        RULES + 2
    );
    let load = || FieldLoad {
        devices: scale.devices,
        connections: scale.connections,
        rate: None,
        until: Until::Readings(scale.readings),
        window: WINDOW,
        record_latency: false,
        progress_step: None,
        client_prefix: "alerts",
        reconnects: false,
        split_every: SPLIT_EVERY,
        sensors: Sensors::Gps,
    };
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
    let us = |runs: &[Run]| Figure::of(runs.iter().map(|r| r.us_per_message));
    let rate = |runs: &[Run]| Figure::of(runs.iter().map(|r| r.rate));
    let pairs = || with.iter().zip(&without);
    let cpu_ratio = Figure::of(pairs().map(|(w, o)| w.us_per_message / o.us_per_message));
    let rate_ratio = Figure::of(pairs().map(|(w, o)| w.rate / o.rate));
    let row = Row::measured(
        &format!(
            "Eliot, alerts cost: {} rules ({RULES} thresholds over ten devices each, 1 in 100 \
             firing; an absence and a dead-letter rule over all), {} gps devices over {} \
             connections, QoS 1 as fast as acks allow, {} readings a run into a fresh store, \
             rules on and off alternating (msg/s: with rules)",
            RULES + 2,
            scale.devices,
            scale.connections,
            scale.readings
        ),
        Some(rate(&with)),
        None,
        format!(
            "msg/s without rules {}; rate with / without {}; CPU per message with {} µs, \
             without {} µs: with / without {} per pair of runs",
            rate(&without).show(0),
            rate_ratio.show(3),
            us(&with).show(2),
            us(&without).show(2),
            cpu_ratio.show(3)
        ),
    )
    .with_label("Alerts CPU")
    .with_target(Target::new(
        "CPU per message with / without rules",
        cpu_ratio.median,
        Goal::AtMost(TARGET_CPU_RATIO),
        "×",
    ))
    .with_problems(&problems);
    report.add(row);
}
