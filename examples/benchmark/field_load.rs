//! The field load: a fleet of devices multiplexed over a few MQTT connections, as gateways
//! and cloud bridges send it, publishing QoS 1 readings either as fast as the acks allow or
//! paced evenly at a total rate. It runs in this process, on a small tokio runtime, so that
//! acks are counted where they arrive (the store is never polled).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::load_shared::Shared;
use crate::procs::cpu_seconds;
use crate::publisher::{self, ConnectionPlan};
use crate::telemetry::Device;

/// How a field load ends.
#[derive(Clone, Copy, Debug)]
pub enum Until {
    /// Once this many readings (all connections together) are made; then the acks are awaited.
    Readings(u64),
    /// After this long.
    Elapsed(Duration),
}

/// A field load's shape.
#[derive(Clone, Debug)]
pub struct FieldLoad {
    /// Devices `dev-00000` up to this many, spread round-robin over the connections.
    pub devices: u32,
    pub connections: u32,
    /// Total msg/s, spread evenly over the connections and in time; `None`: as fast as acks allow.
    pub rate: Option<f64>,
    pub until: Until,
    /// Unacked PUBLISHes per connection at most.
    pub window: usize,
    /// Whether to keep every message's latency.
    pub record_latency: bool,
    /// Record when every `progress_step` acked readings were reached.
    pub progress_step: Option<u64>,
    /// Client ids are `{client_prefix}-{n}`.
    pub client_prefix: &'static str,
    /// Whether connections keep a session and connect again when lost, sending again what
    /// was not acked (`ConnectionPlan::reconnects`).
    pub reconnects: bool,
}

/// What a field load did.
pub struct LoadOutcome {
    /// When the connections started.
    pub started: Instant,
    pub sent: u64,
    pub acked: u64,
    /// From the start to the last PUBACK.
    pub duration: Duration,
    /// publish→PUBACK of every acked message, µs, sorted (with `record_latency`).
    pub latencies_us: Vec<u32>,
    /// Most a paced message went out after it was due.
    pub max_late: Duration,
    /// (readings acked, when) at every progress step.
    pub marks: Vec<(u64, Instant)>,
    /// Connections that failed, with why.
    pub errors: Vec<String>,
    /// CPU seconds this process (the load generator) used meanwhile.
    pub generator_cpu_s: f64,
    /// Connections made again after one was lost, all connections together.
    pub reconnects: u64,
}

impl LoadOutcome {
    /// Acked msg/s from the start to the last PUBACK.
    pub fn rate(&self) -> f64 {
        self.acked as f64 / self.duration.as_secs_f64().max(1e-9)
    }

    /// The share of one core the load generator used: near 1 (or near the machine's
    /// cores less the server's), it may be what limited the run.
    pub fn generator_cores(&self) -> f64 {
        self.generator_cpu_s / self.duration.as_secs_f64().max(1e-9)
    }
}

/// How often a long load says how far it got.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Every `PROGRESS_EVERY`, the readings acked so far and the rate since the last line, on
/// standard error: a long run shows it is alive.
async fn report_progress(shared: Arc<Shared>, started: Instant) {
    let mut last = (0, started);
    loop {
        tokio::time::sleep(PROGRESS_EVERY).await;
        let (acked, now) = (shared.acked(), Instant::now());
        let rate = (acked - last.0) as f64 / (now - last.1).as_secs_f64();
        eprintln!(
            "  {:>4.0} s: {acked} acked, {rate:.0} msg/s",
            (now - started).as_secs_f64()
        );
        last = (acked, now);
    }
}

impl FieldLoad {
    /// Runs the load against the MQTT server at `addr`; returns when every connection is done.
    pub fn run(&self, addr: SocketAddr) -> LoadOutcome {
        self.run_sharing(addr, self.shared())
    }

    /// What the connections of a run will share, starting now: a caller that keeps a copy
    /// can watch the acks while `run_sharing` runs.
    pub fn shared(&self) -> Arc<Shared> {
        let (count, until) = match self.until {
            Until::Readings(n) => (Some(n), None),
            Until::Elapsed(d) => (None, Some(Instant::now() + d)),
        };
        Arc::new(Shared::new(count, until, self.progress_step))
    }

    /// `run`, with `shared` (from `shared`).
    pub fn run_sharing(&self, addr: SocketAddr, shared: Arc<Shared>) -> LoadOutcome {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let cpu_before = cpu_seconds(std::process::id());
        let started = Instant::now();
        let outcomes = runtime.block_on(async {
            let reporter = tokio::spawn(report_progress(shared.clone(), started));
            let tasks: Vec<_> = self
                .plans()
                .into_iter()
                .map(|plan| {
                    let shared = shared.clone();
                    tokio::spawn(async move { publisher::run(addr, plan, &shared).await })
                })
                .collect();
            let mut outcomes = Vec::new();
            for task in tasks {
                outcomes.push(task.await.expect("a connection task does not panic"));
            }
            reporter.abort();
            outcomes
        });
        let last_ack = outcomes.iter().filter_map(|o| o.last_ack).max();
        let mut latencies_us: Vec<u32> = outcomes
            .iter()
            .flat_map(|o| o.latencies_us.iter().copied())
            .collect();
        latencies_us.sort_unstable();
        LoadOutcome {
            started,
            sent: outcomes.iter().map(|o| o.sent).sum(),
            acked: shared.acked(),
            duration: last_ack.map_or(Duration::ZERO, |at| at - started),
            latencies_us,
            max_late: outcomes
                .iter()
                .map(|o| o.max_late)
                .max()
                .unwrap_or_default(),
            marks: shared.progress_marks(),
            reconnects: outcomes.iter().map(|o| o.reconnects).sum(),
            errors: outcomes.into_iter().filter_map(|o| o.error).collect(),
            generator_cpu_s: cpu_seconds(std::process::id()) - cpu_before,
        }
    }

    /// Each connection's devices, window and share of the pace; shares start staggered so
    /// that the connections together send evenly.
    fn plans(&self) -> Vec<ConnectionPlan> {
        let connections = self.connections.clamp(1, self.devices.max(1));
        (0..connections)
            .map(|c| {
                let devices = (c..self.devices)
                    .step_by(connections as usize)
                    .map(Device::new)
                    .collect();
                let pace = self.rate.map(|rate| {
                    let share = rate / f64::from(connections);
                    let offset = f64::from(c) / f64::from(connections) / share;
                    (share, Duration::from_secs_f64(offset))
                });
                ConnectionPlan {
                    client_id: format!("{}-{c:03}", self.client_prefix),
                    devices,
                    window: self.window,
                    pace,
                    record_latency: self.record_latency,
                    reconnects: self.reconnects,
                }
            })
            .collect()
    }
}
