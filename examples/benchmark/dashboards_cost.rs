//! `dashboards`: what open dashboards cost ingest. The same Eliot (no API tokens, so the
//! dashboard is open on its loopback HTTP address), the same load, with and without 100
//! dashboards following a page's live feed (Server-Sent Events): 90 the fleet page's
//! (`GET /live`), 10 a publishing device's page (`GET /live/devices/{id}`: a store read a
//! second each), in the same run, alternating, each run into a fresh store. The sustained QoS 1 load
//! (devices over 50 connections as fast as acks allow): the ingest rate with dashboards
//! over without (goal ≥ 0.95: they lower it by at most 5 %), and the CPU per message.
//! Each dashboard counts the events it got: one that got none is a problem of the run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::field_load::{FieldLoad, Until, SPLIT_EVERY};
use crate::on_off::{run_beside, tempdir, Run};
use crate::procs::{Programs, Server};
use crate::report::{Figure, Report, Row};
use crate::target::{Goal, Target};
use crate::telemetry::{device_id, Sensors};

/// Ingest rate with dashboards open, at least this times without.
const TARGET_RATE_RATIO: f64 = 0.95;
/// Unacked PUBLISHes per connection (as `sustained`).
const WINDOW: usize = 256;
/// One dashboard in this many follows a device's page; the others the fleet page.
const DEVICE_PAGE_EVERY: usize = 10;

pub struct DashboardsScale {
    pub dashboards: usize,
    pub devices: u32,
    pub connections: u32,
    pub readings: u64,
}

pub const FULL: DashboardsScale = DashboardsScale {
    dashboards: 100,
    devices: 10_000,
    connections: 50,
    readings: 2_000_000,
};

pub const QUICK: DashboardsScale = DashboardsScale {
    dashboards: 100,
    devices: 1_000,
    connections: 4,
    readings: 20_000,
};

/// Dashboards following the live feed until dropped; each counts its events.
struct Dashboards {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<usize>>,
}

impl Dashboards {
    /// Opens `n` (one in `DEVICE_PAGE_EVERY` on the page of one of the load's `devices`),
    /// and returns once each has its first event (or after 20 s): the load meets them all
    /// following.
    fn open(http: SocketAddr, n: usize, devices: u32) -> Dashboards {
        let stop = Arc::new(AtomicBool::new(false));
        let (first, firsts) = std::sync::mpsc::channel();
        let threads = (0..n)
            .map(|i| {
                let (stop, first) = (stop.clone(), first.clone());
                let feed = match i % DEVICE_PAGE_EVERY == DEVICE_PAGE_EVERY - 1 {
                    true => {
                        let device = (i as u32).wrapping_mul(7_919) % devices.max(1);
                        format!("/live/devices/{}", device_id(device))
                    }
                    false => "/live".to_owned(),
                };
                std::thread::spawn(move || follow(http, &feed, &stop, first))
            })
            .collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        for _ in 0..n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if firsts.recv_timeout(left).is_err() {
                break;
            }
        }
        Dashboards { stop, threads }
    }

    /// Closes them all; how many events each got.
    fn close(self) -> Vec<usize> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| t.join().unwrap_or(0))
            .collect()
    }
}

/// One dashboard: `GET feed`, read until told to stop; its events (`fleet` or `device`)
/// counted, the first told on `first`.
fn follow(
    http: SocketAddr,
    feed: &str,
    stop: &AtomicBool,
    first: std::sync::mpsc::Sender<()>,
) -> usize {
    let Ok(mut stream) = TcpStream::connect(http) else {
        return 0;
    };
    let request =
        format!("GET {feed} HTTP/1.1\r\nHost: {http}\r\nAccept: text/event-stream\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let (mut events, mut buffer) = (0, [0u8; 16 * 1024]);
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                let before = events;
                // Every event starts a line (JSON data holds no line break); one split
                // across two reads goes uncounted.
                events += buffer[..n]
                    .windows(8)
                    .filter(|w| *w == b"\nevent: ")
                    .count();
                if before == 0 && events > 0 {
                    let _ = first.send(());
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    events
}

pub fn measure(programs: &Programs, scale: &DashboardsScale, runs: usize, report: &mut Report) {
    eprintln!(
        "Dashboards: ingest and CPU with and without {} live dashboards ...",
        scale.dashboards
    );
    let dir = tempdir();
    let config = dir.path().join("dashboards.toml");
    std::fs::write(&config, "[anomaly]\nenabled = false\n").expect("the configuration is written");
    let load = || FieldLoad {
        devices: scale.devices,
        connections: scale.connections,
        rate: None,
        until: Until::Readings(scale.readings),
        window: WINDOW,
        record_latency: false,
        progress_step: None,
        client_prefix: "dashboards",
        reconnects: false,
        split_every: SPLIT_EVERY,
        sensors: Sensors::Gps,
    };
    let (mut with, mut without, mut problems) = (Vec::new(), Vec::new(), Vec::new());
    let mut fewest_events = usize::MAX;
    for _ in 0..runs {
        for open in [true, false] {
            let n = if open { scale.dashboards } else { 0 };
            let beside = |eliot: &Server| {
                Dashboards::open(eliot.http.expect("Eliot serves HTTP"), n, scale.devices)
            };
            let (measured, trouble, dashboards): (Run, _, _) =
                run_beside(programs, &config, load(), beside);
            problems.extend(trouble);
            let events = dashboards.close();
            if open {
                let fewest = events.iter().copied().min().unwrap_or(0);
                fewest_events = fewest_events.min(fewest);
                if fewest == 0 {
                    problems.push("a dashboard got no live event".into());
                }
                with.push(measured);
            } else {
                without.push(measured);
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
            "Eliot, dashboards cost: {} dashboards following a live feed (one in {} a \
             publishing device's page, the others the fleet page's; no tokens, loopback), {} gps devices over {} connections, QoS 1 as fast as acks allow, {} \
             readings a run into a fresh store, runs with and without dashboards \
             alternating (msg/s: with dashboards)",
            scale.dashboards,
            DEVICE_PAGE_EVERY,
            scale.devices,
            scale.connections,
            scale.readings
        ),
        Some(rate(&with)),
        None,
        format!(
            "msg/s without dashboards {}; rate with / without {} per pair of runs; CPU per \
             message with {} µs, without {} µs: with / without {}; fewest live events a \
             dashboard got in a run: {}",
            rate(&without).show(0),
            rate_ratio.show(3),
            us(&with).show(2),
            us(&without).show(2),
            cpu_ratio.show(3),
            fewest_events
        ),
    )
    .with_label("Dashboards")
    .with_target(Target::new(
        "ingest rate with / without 100 dashboards",
        rate_ratio.median,
        Goal::AtLeast(TARGET_RATE_RATIO),
        "×",
    ))
    .with_problems(&problems);
    report.add(row);
}
