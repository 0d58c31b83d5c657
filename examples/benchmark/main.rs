//! Eliot against its limit and its peers, on this machine, in one run.
//!
//! # Usage
//!
//! ```text
//! cargo run --release --example benchmark             # the full run (about 50 minutes)
//! cargo run --release --example benchmark -- --quick  # a few minutes; what CI runs
//! cargo run --release --example benchmark -- --only qos1,latency --eliot /tmp/eliot-old
//! cargo run --release --example benchmark -- --only sustained --sustained-readings 2000000
//! cargo run --release --example benchmark -- --only drill --sustained-readings 200000 --min-seconds 40
//! ```
//!
//! `--eliot` measures another build of Eliot (say, the one before a change) with the same
//! load generator, `--eliot-config` starts it with a configuration file (say, metrics off;
//! not in `upstream`, which writes its own);
//! `--only` picks configurations, for such comparisons. `--min-seconds` sets the least time
//! `sustained`, `paced` and `drill` each run (120 s in the full run, 3 s with `--quick`), to
//! check a change in less time.
//!
//! Needs `mosquitto` (`apt-get install mosquitto`) and the DejaVu font
//! (`apt-get install fonts-dejavu-core`) for the charts. Every figure is the median of
//! `--runs` runs (at least 3; `--quick` makes one of each unless told) with their min–max, except `sustained` (Eliot's, and
//! Mosquitto's beside it), `generator` and `drill` (one run each: one sustained run fills the
//! store the others use). Prints a table, the targets
//! met or missed, and writes `report.md`, `chart.png` and (with `sustained`) `sustained.png`
//! to `--out` (default `target/benchmark`). Exits non-zero when a configuration measured
//! nothing or failed (connection errors, refused readings, reads not answered 200, a
//! server-side disconnect no kill explains): a broken benchmark, or a broken Eliot, not a
//! slow one.
//!
//! # Configurations (`--only`)
//!
//! The lab ones (see README.md beside this file), each with the fleet simulator
//! (`examples/fleet_simulator/`, one connection per device) as the load, the same program on
//! every side:
//!
//! - `qos1`, `qos0`: Eliot's device endpoint at QoS 1 and QoS 0 (durable SQLite, PUBACK
//!   after commit), msg/s from the first row stored to the last.
//! - `chain`: the baseline chain (Mosquitto + a minimal Rust subscriber writing SQLite in
//!   batches, acking after commit); `drain`: the bare broker drain.
//! - `upstream`: Eliot in its upstream broker mode alone (`[mqtt] enabled = false`) draining
//!   a Mosquitto backlog of 300,000 readings from 1,000 devices (20,000 with `--quick`), at
//!   QoS 0 and QoS 1 (acks after commit), against the bare drain (the baseline subscriber
//!   counting only) on the same broker setup: msg/s from each subscriber's start to the last
//!   message received or stored, the CPU each side used, and Eliot's store checked (exactly
//!   N readings). Target: upstream drain ≥ 0.9 × bare drain at each QoS (`upstream.rs`).
//! - `latency`: publish→PUBACK at a fixed offered load.
//! - `auth`: what device identity costs against plain TCP in the same run:
//!   connections per second with a password, over TLS and mutual TLS, the steady QoS 1
//!   rate over TLS, and well-behaved devices' p99 beside a device flooding past its rate
//!   limit (target: within 10 % of their p99 alone). See `auth.rs`.
//! - `connections`: many concurrent connections at 1 msg/s each (10,000 in the full run:
//!   target p99 ≤ 25 ms), with the memory each costs.
//! - `overload`: 3 × what Eliot sustains at QoS 1 (needs `qos1`).
//!
//! The field ones (a store that keeps its speed for real fleets), with a load
//! generated in this process (`field_load.rs`): many devices multiplexed over a few raw
//! MQTT 3.1.1 connections, pipelined QoS 1, acks counted where they arrive. Every 4th
//! connection writes as some devices' TCP stacks do, each write ending one byte into the next
//! packet (the rest follows with its next write, or alone within 5 ms). Every connection the
//! server ends while a load runs (EOF, reset, any I/O error) is counted in its row and listed
//! in report.md and on standard error; any fails the run, but those of the drill's kills.
//!
//! - `sustained`: 10,000 devices over 50 connections, as fast as acks allow, into a fresh
//!   store until 10,000,000 readings are acked (`--sustained-readings` to change it) and
//!   120 s have passed, whichever comes later. The ack rate at every 1 % of the readings
//!   shows whether Eliot slows as its store grows (`sustained.png`, and a table by tenth).
//!   Then the same load against Mosquitto (acked on receipt, nothing stored), whose ack
//!   rates, overall and over the last quarter, stand beside Eliot's as ratios: absolute
//!   rates on a shared machine swing twofold from day to day, ratios do not. Target:
//!   ≥ 100,000 msg/s over the last quarter (shown with its ratio to Mosquitto's).
//! - `paced`: 1,000 devices over 10 connections offering 20,000 msg/s evenly for 120 s, to
//!   Eliot on the store `sustained` filled and to Mosquitto: publish→PUBACK percentiles and
//!   the server's CPU time per message. Targets: Eliot's p99 ≤ 50 ms, its CPU per message
//!   ≤ 2 × Mosquitto's.
//! - `reads`: on that store, while 50,000 msg/s are ingested, one reader's HTTP reads of
//!   random devices for 20 s: `/api/v1/devices/{id}/readings/latest`,
//!   `/api/v1/devices/{id}/readings?limit=1000` and a one-hour `?from=&to=&order=asc`
//!   window. Target: p99 ≤ 10 ms for each.
//! - `generator`: the sustained load (2,000,000 readings, no least time) against a null
//!   server in this process that only acks (`ack_sink.rs`): what the load generator reaches
//!   on this machine (target ≥ 150,000 msg/s, so that it is not what limits `sustained`);
//!   and against Mosquitto, which acks packet by packet and tops out first.
//! - `drill`: the sustained fleet with persistent sessions into a fresh store, at least
//!   10,000,000 readings (`--sustained-readings` too) and 120 s, while Eliot is killed with
//!   SIGKILL 5 times, spread over the run, and started again at once; the connections
//!   reconnect and send again what was not acked. A disconnect from a kill to 2 s after Eliot
//!   answers `/ready` again is the kill's (explained); any other fails the run. Target:
//!   every reading stored exactly once (none lost, none twice, none refused).
//!
//! - `fleet`: what the live device state costs, beside the same Eliot with `[fleet] enabled
//!   = false` in the same run: CPU per message at the sustained load (target ≤ 1.05×), the
//!   memory it adds per known and per active device with 100,000 known (target ≤ 1 KiB per
//!   known device), and `GET /api/v1/devices?status=late&limit=100` and
//!   `GET /api/v1/devices/{id}` p99 while ingesting 50,000 msg/s (target ≤ 10 ms). See
//!   `fleet_cost.rs`.
//!
//! - `anomaly`: what anomaly detection costs, beside the same Eliot with `[anomaly] enabled
//!   = false` in the same run, every reading a `gps` one (three series per device): the
//!   ingest rate at the sustained load with detection over without (target ≥ 0.90), the CPU
//!   it adds per value scored (target ≤ 2 µs), and its memory per series (target ≤ 4 KiB).
//!   See `anomaly_cost.rs`.
//!
//! - `alerts`: what alert rules cost, beside the same Eliot with `[alerts] enabled = false`
//!   in the same run: 1,002 rules over 10,000 gps devices (every device meeting its own
//!   threshold rule, 1 % of them firing), CPU per message at the sustained load with the
//!   rules over without (target ≤ 1.10). See `alerts_cost.rs`.
//!
//! - `dashboards`: what open dashboards cost ingest, beside the same Eliot with none open
//!   in the same run: 100 dashboards following the fleet page's live feed, the ingest rate
//!   at the sustained load with them over without (target ≥ 0.95). See
//!   `dashboards_cost.rs`.
//!
//! `paced` and `reads` run `sustained` first: they need its store, on which each of their
//! runs starts a fresh Eliot (what it acked is committed). Eliot runs on its defaults
//! (`ELIOT_ENV=dev`, logging at `warning`), never the `test` overlay. `--quick` shrinks every
//! configuration (sustained: 200 devices over 4 connections, 40,000 readings and 3 s, then
//! the same against Mosquitto; paced: 1,000 msg/s for 3 s; reads: 3 s at 2,000 msg/s; drill:
//! 40,000 readings and 3 s, 2 kills).

mod ack_sink;
mod alerts_cost;
mod anomaly_cost;
mod auth;
mod chart;
mod clients;
mod dashboards_cost;
mod drill;
mod field;
mod field_load;
mod fleet_cost;
mod fleet_reads;
mod in_flight;
mod lab;
mod latency;
mod load_shared;
mod mqtt_wire;
mod on_off;
mod paced;
mod pacer;
mod packet_writer;
mod pki;
mod procs;
mod publisher;
mod read_api;
mod reads;
mod report;
mod sampling;
// Shared with the quick-start test, which runs cargo from inside cargo too.
#[path = "../../tests/common/shell_env.rs"]
mod shell_env;
mod sustained;
mod sustained_chart;
mod target;
mod telemetry;
mod upstream;

use std::time::Duration;

use clap::Parser;
use lab::{chain_throughput, eliot_throughput, measure_loads};
use procs::Programs;
use report::{Figure, Report, Row};
use target::Goal;

#[derive(Parser)]
struct Args {
    /// Small counts and short runs, to check that the benchmark works.
    #[arg(long)]
    quick: bool,
    /// Runs per configuration (the median is reported): 3 by default, 1 with --quick,
    /// whose figures say nothing anyway.
    #[arg(long)]
    runs: Option<usize>,
    /// Where report.md and chart.png go.
    #[arg(long, default_value = "target/benchmark")]
    out: std::path::PathBuf,
    /// Measure this `eliot` binary instead of the one built from this tree.
    #[arg(long, value_name = "PATH")]
    eliot: Option<std::path::PathBuf>,
    /// Start Eliot with this configuration file (say, `[metrics] enabled = false`).
    #[arg(long, value_name = "PATH")]
    eliot_config: Option<std::path::PathBuf>,
    /// Only these configurations (comma-separated): qos1, qos0, chain, drain, upstream, auth,
    /// latency, connections, overload (overload also needs qos1), sustained, paced, reads
    /// (paced and reads run sustained first), generator, drill, fleet, anomaly, alerts.
    #[arg(long, value_delimiter = ',', value_parser = CONFIGURATIONS)]
    only: Vec<String>,
    /// Readings the sustained and drill configurations publish (default 10,000,000; 40,000
    /// with --quick).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(100..))]
    sustained_readings: Option<u64>,
    /// The least time sustained, paced and drill each run, in seconds (default 120; 3 with
    /// --quick).
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..))]
    min_seconds: Option<u64>,
}

const CONFIGURATIONS: [&str; 18] = [
    "qos1",
    "qos0",
    "chain",
    "drain",
    "upstream",
    "auth",
    "latency",
    "connections",
    "overload",
    "sustained",
    "paced",
    "reads",
    "generator",
    "drill",
    "fleet",
    "anomaly",
    "alerts",
    "dashboards",
];

/// The sizes of one benchmark run.
struct Scale {
    /// Devices publishing in the throughput configurations, and messages each.
    devices: u32,
    per_device: u64,
    /// Offered load for the latency configuration, msg/s, and how long.
    latency_load: f64,
    latency_for: Duration,
    /// Concurrent connections at 1 msg/s each, and how long.
    connections: u32,
    connections_for: Duration,
    overload_for: Duration,
}

const FULL: Scale = Scale {
    devices: 1_000,
    per_device: 200,
    latency_load: 20_000.0,
    latency_for: Duration::from_secs(10),
    connections: 10_000,
    connections_for: Duration::from_secs(60),
    overload_for: Duration::from_secs(30),
};

const QUICK: Scale = Scale {
    devices: 50,
    per_device: 100,
    latency_load: 1_000.0,
    latency_for: Duration::from_secs(2),
    connections: 200,
    connections_for: Duration::from_secs(3),
    overload_for: Duration::from_secs(2),
};

fn main() {
    let args = Args::parse();
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 });
    assert!(
        args.quick || runs >= 3,
        "every figure is a median of at least 3 runs"
    );
    let scale = if args.quick { QUICK } else { FULL };
    let mut programs = Programs::build();
    if let Some(eliot) = &args.eliot {
        programs.eliot = eliot.clone();
    }
    programs.eliot_config = args.eliot_config.clone();
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let total = u64::from(scale.devices) * scale.per_device;
    let mut report = Report::new(args.quick, total);

    let throughput = |configuration: &str,
                      name: &str,
                      label: &str,
                      measure: &dyn Fn() -> f64,
                      report: &mut Report| {
        if !wanted(configuration) {
            return None;
        }
        eprintln!("{label} ...");
        let figure = Figure::of((0..runs).map(|_| measure()));
        report.add(Row::throughput(name, label, figure));
        Some(figure)
    };
    let eliot_qos1 = throughput(
        "qos1",
        "Eliot device endpoint, QoS 1 (PUBACK after commit)",
        "Eliot QoS 1",
        &|| eliot_throughput(&programs, &scale, 1),
        &mut report,
    );
    let eliot_qos0 = throughput(
        "qos0",
        "Eliot device endpoint, QoS 0",
        "Eliot QoS 0",
        &|| eliot_throughput(&programs, &scale, 0),
        &mut report,
    );
    let chain_qos1 = throughput(
        "chain",
        "Mosquitto + Rust subscriber + SQLite, QoS 1 (ack after commit)",
        "Chain QoS 1",
        &|| chain_throughput(&programs, &scale, 1, false),
        &mut report,
    );
    let chain_qos0 = throughput(
        "chain",
        "Mosquitto + Rust subscriber + SQLite, QoS 0",
        "Chain QoS 0",
        &|| chain_throughput(&programs, &scale, 0, false),
        &mut report,
    );
    throughput(
        "drain",
        "Mosquitto, subscriber only counting (bare drain)",
        "Bare drain",
        &|| chain_throughput(&programs, &scale, 0, true),
        &mut report,
    );

    if wanted("upstream") {
        let scale = if args.quick {
            upstream::QUICK
        } else {
            upstream::FULL
        };
        upstream::measure(&programs, &scale, runs, &mut report);
    }

    if wanted("fleet") {
        let scale = if args.quick {
            fleet_cost::QUICK
        } else {
            fleet_cost::FULL
        };
        fleet_cost::measure(&programs, &scale, runs, &mut report);
    }

    if wanted("anomaly") {
        let scale = if args.quick {
            anomaly_cost::QUICK
        } else {
            anomaly_cost::FULL
        };
        anomaly_cost::measure(&programs, &scale, runs, &mut report);
    }

    if wanted("alerts") {
        let scale = if args.quick {
            alerts_cost::QUICK
        } else {
            alerts_cost::FULL
        };
        alerts_cost::measure(&programs, &scale, runs, &mut report);
    }

    if wanted("dashboards") {
        let scale = if args.quick {
            dashboards_cost::QUICK
        } else {
            dashboards_cost::FULL
        };
        dashboards_cost::measure(&programs, &scale, runs, &mut report);
    }

    if wanted("auth") {
        let scale = if args.quick { auth::QUICK } else { auth::FULL };
        auth::run(&programs, &scale, runs, &mut report);
    }

    let sustained = eliot_qos1.map(|f| f.median);
    measure_loads(&programs, &scale, runs, &wanted, sustained, &mut report);

    if let (Some(eliot), Some(chain)) = (eliot_qos1, chain_qos1) {
        report.ratio(
            "Eliot QoS 1 / chain QoS 1",
            eliot.median / chain.median,
            Goal::AtLeast(2.5),
        );
    }
    if let (Some(eliot), Some(chain)) = (eliot_qos0, chain_qos0) {
        report.ratio(
            "Eliot QoS 0 / chain QoS 0",
            eliot.median / chain.median,
            Goal::AtLeast(1.5),
        );
    }

    let mut field_scale = if args.quick {
        field::quick()
    } else {
        field::full()
    };
    if let Some(readings) = args.sustained_readings {
        field_scale.sustained.readings = readings;
        field_scale.drill.fleet.readings = readings;
    }
    if let Some(seconds) = args.min_seconds {
        field_scale.run_at_least(Duration::from_secs(seconds));
    }
    field::measure(
        &programs,
        &field_scale,
        runs,
        &wanted,
        &args.out,
        &mut report,
    );
    publish(&report, &args.out);
}

/// Prints the table, writes report.md and the charts to `out`, and exits non-zero when a
/// configuration measured nothing or failed (a broken benchmark, not a slow Eliot).
fn publish(report: &Report, out: &std::path::Path) {
    print!("{}", report.table());
    report.write(out);
    eprintln!("wrote {}", out.display());
    let broken = report.broken();
    if !broken.is_empty() {
        eprintln!("benchmark broken: no figure, or a failure, for {broken:?}");
        std::process::exit(1);
    }
}
