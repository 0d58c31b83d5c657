//! The lab configurations measured against a server of their own: Eliot's throughput at
//! QoS 0 and 1, the baseline chain's and the bare drain's, latency at a fixed load, many
//! connections, and overload.

use std::time::{Duration, Instant};

use crate::clients::{simulate, Load, Subscriber};
use crate::procs::{Programs, Server};
use crate::report::{Figure, Report, Row};
use crate::sampling;
use crate::sampling::RssSampler;
use crate::target::{Goal, Target};
use crate::Scale;

/// publish→PUBACK p99 at most with 10,000 connections at 1 msg/s each, ms.
const TARGET_CONNECTIONS_P99_MS: f64 = 25.0;

/// The configurations under a given load: latency at a fixed rate, many connections, and
/// overload at 3 × the `sustained` QoS 1 rate (when it was measured).
pub fn measure_loads(
    programs: &Programs,
    scale: &Scale,
    runs: usize,
    wanted: &dyn Fn(&str) -> bool,
    sustained: Option<f64>,
    report: &mut Report,
) {
    if wanted("latency") {
        eprintln!("Eliot, latency at a fixed load ...");
        report.add(eliot_latency(programs, scale, runs));
    }
    if wanted("connections") {
        eprintln!("Eliot, {} connections ...", scale.connections);
        report.add(eliot_connections(programs, scale, runs));
    }
    if let (true, Some(sustained)) = (wanted("overload"), sustained) {
        eprintln!("Eliot, overload ...");
        let offered = 3.0 * sustained;
        report.add(eliot_overload(programs, scale, runs, offered));
    }
}

/// Messages per second from the first row stored to the last, all devices publishing as
/// fast as acks (QoS 1) or TCP (QoS 0) allow.
pub fn eliot_throughput(programs: &Programs, scale: &Scale, qos: u8) -> f64 {
    let eliot = Server::eliot(programs);
    let total = u64::from(scale.devices) * scale.per_device;
    let load = Load {
        devices: scale.devices,
        rate: 0.0,
        qos,
        count: Some(scale.per_device),
        duration: None,
    };
    let addr = eliot.addr;
    let simulator = std::thread::scope(|s| {
        let sim = s.spawn(|| simulate(programs, addr, &load));
        let rate = time_rows(&eliot, total, Duration::from_secs(300));
        (rate, sim.join().unwrap())
    });
    simulator.0
}

/// Watches Eliot's row count: from the first row to `total` rows, in msg/s.
fn time_rows(eliot: &Server, total: u64, within: Duration) -> f64 {
    let deadline = Instant::now() + within;
    let mut first = None;
    loop {
        let rows = eliot.rows();
        if rows > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if rows >= total || Instant::now() > deadline {
            let took = first.map_or(f64::INFINITY, |f| f.elapsed().as_secs_f64());
            return rows as f64 / took;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The baseline chain (or the bare drain): msg/s stored by the subscriber, timed from the
/// first message it received to its last commit.
pub fn chain_throughput(programs: &Programs, scale: &Scale, qos: u8, count_only: bool) -> f64 {
    let broker = Server::mosquitto();
    let total = u64::from(scale.devices) * scale.per_device;
    let db = broker.dir.path().join("baseline.db");
    let subscriber = Subscriber::start(programs, broker.addr, qos, total, &db, count_only);
    let load = Load {
        devices: scale.devices,
        rate: 0.0,
        qos,
        count: Some(scale.per_device),
        duration: None,
    };
    simulate(programs, broker.addr, &load);
    subscriber.finish(Duration::from_secs(120)).unwrap_or(0.0)
}

fn eliot_latency(programs: &Programs, scale: &Scale, runs: usize) -> Row {
    let mut summaries = Vec::new();
    for _ in 0..runs {
        let eliot = Server::eliot(programs);
        let load = Load {
            devices: scale.devices,
            rate: scale.latency_load / f64::from(scale.devices),
            qos: 1,
            count: None,
            duration: Some(scale.latency_for),
        };
        summaries.push(simulate(programs, eliot.addr, &load));
    }
    Row::latency(
        &format!(
            "Eliot, publish→PUBACK at {:.0} msg/s offered, QoS 1",
            scale.latency_load
        ),
        &summaries,
    )
}

fn eliot_connections(programs: &Programs, scale: &Scale, runs: usize) -> Row {
    let mut summaries = Vec::new();
    let (mut peaks, mut per_connection) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let eliot = Server::eliot(programs);
        let idle = sampling::rss_kib(eliot.pid()) as f64 / 1024.0;
        let sampler = RssSampler::start(eliot.pid());
        let load = Load {
            devices: scale.connections,
            rate: 1.0,
            qos: 1,
            count: None,
            duration: Some(scale.connections_for),
        };
        summaries.push(simulate(programs, eliot.addr, &load));
        let peak = sampler.peak_mib();
        peaks.push(peak);
        per_connection.push((peak - idle) * 1024.0 / f64::from(scale.connections));
    }
    let row = Row::connections(
        &format!("Eliot, {} connections at 1 msg/s each", scale.connections),
        &summaries,
        Figure::of(peaks),
        Figure::of(per_connection),
    );
    let p99 = row.p99_ms().unwrap_or(f64::NAN);
    row.with_target(Target::new(
        "p99",
        p99,
        Goal::AtMost(TARGET_CONNECTIONS_P99_MS),
        " ms",
    ))
}

fn eliot_overload(programs: &Programs, scale: &Scale, runs: usize, offered: f64) -> Row {
    let mut summaries = Vec::new();
    let (mut peaks, mut lost) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let eliot = Server::eliot(programs);
        let sampler = RssSampler::start(eliot.pid());
        let load = Load {
            devices: scale.devices,
            rate: offered / f64::from(scale.devices),
            qos: 1,
            count: None,
            duration: Some(scale.overload_for),
        };
        let summary = simulate(programs, eliot.addr, &load);
        peaks.push(sampler.peak_mib());
        let acked = summary["acked"].as_f64().unwrap_or(0.0);
        lost.push((acked - eliot.rows() as f64).max(0.0));
        summaries.push(summary);
    }
    Row::overload(
        &format!("Eliot, overload: {offered:.0} msg/s offered (3 × sustained), QoS 1"),
        &summaries,
        Figure::of(peaks),
        Figure::of(lost),
    )
}
