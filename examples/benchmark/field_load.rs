//! The field load: a fleet of devices multiplexed over a few MQTT connections, as gateways
//! and cloud bridges send it, publishing QoS 1 readings either as fast as the acks allow or
//! paced evenly at a total rate. A share of the connections write as some devices' TCP
//! stacks do, each write ending one byte into the next packet. It runs in this process, on a
//! small tokio runtime, so that acks are counted where they arrive (the store is never
//! polled), and it records every connection the server ended while the load ran.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::load_shared::Shared;
use crate::procs::Server;
use crate::publisher::{self, ConnectionOutcome, ConnectionPlan};
use crate::sampling::cpu_seconds;
use crate::telemetry::{Device, Sensors};

/// How a field load ends.
#[derive(Clone, Copy, Debug)]
pub enum Until {
    /// Once this many readings (all connections together) are made; then the acks are awaited.
    Readings(u64),
    /// After this long.
    Elapsed(Duration),
    /// Once this many readings are made and this long has passed, whichever comes later:
    /// a load of a given size that still covers a given time, however fast the machine.
    ReadingsAndElapsed(u64, Duration),
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
    /// Every this many-th connection (the 1st, the `n+1`-th, ...) ends each write one byte
    /// into the next packet, as devices whose TCP writes split packets do; `None`: all write
    /// whole packets. The field has such devices, so the load has them too: a server that
    /// mistimes a packet split across writes closes them (`packet_writer.rs`).
    pub split_every: Option<u32>,
    /// What the devices' readings are.
    pub sensors: Sensors,
}

/// The share of connections that split their writes in the field configurations: every 4th.
pub const SPLIT_EVERY: Option<u32> = Some(4);

/// A connection the load did not end: the server closed it, or it broke (reset, any I/O
/// error).
#[derive(Clone, Debug)]
pub struct Disconnect {
    /// Which connection: its client id is `{client_prefix}-{connection}`.
    pub connection: u32,
    /// How long after the load started.
    pub after: Duration,
    /// "closed by the server", or the error.
    pub reason: String,
}

impl std::fmt::Display for Disconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "connection {} at {:.3} s: {}",
            self.connection,
            self.after.as_secs_f64(),
            self.reason
        )
    }
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
    /// Connections that failed otherwise than by a disconnect, with why: they could not
    /// connect, the server broke the protocol or never acked, or they gave up reconnecting.
    pub errors: Vec<String>,
    /// Every connection the server ended while the load ran, in the order they happened,
    /// those a reconnecting connection got over included.
    pub disconnects: Vec<Disconnect>,
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

    /// What went wrong in a load no connection of which should be lost: the connections
    /// that failed, and how many the server ended (each one is listed by
    /// `Report::disconnects`).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.errors.clone();
        if !self.disconnects.is_empty() {
            let count = self.disconnects.len();
            problems.push(format!(
                "{count} server-side disconnects (listed under the table)"
            ));
        }
        problems
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
            Until::Readings(n) => (n, None),
            Until::Elapsed(d) => (0, Some(Instant::now() + d)),
            Until::ReadingsAndElapsed(n, d) => (n, Some(Instant::now() + d)),
        };
        Arc::new(Shared::new(count, until, self.progress_step))
    }

    /// Runs the load against a fresh Mosquitto, which acks QoS 1 on receipt and stores
    /// nothing: the outcome, and the share of one core Mosquitto used meanwhile.
    pub fn run_against_mosquitto(&self) -> (LoadOutcome, f64) {
        let broker = Server::mosquitto();
        let cpu_before = broker.cpu_seconds();
        let outcome = self.run(broker.addr);
        let cpu = broker.cpu_seconds() - cpu_before;
        let cores = cpu / outcome.duration.as_secs_f64().max(1e-9);
        (outcome, cores)
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
            disconnects: disconnects(&outcomes, started),
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
                    .map(|index| Device::new(index, self.sensors))
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
                    split_writes: self.split_every.is_some_and(|n| c % n.max(1) == 0),
                }
            })
            .collect()
    }
}

/// Every connection's disconnects (`outcomes` in the order of the connections), in the
/// order they happened.
fn disconnects(outcomes: &[ConnectionOutcome], started: Instant) -> Vec<Disconnect> {
    let mut all: Vec<Disconnect> = (0u32..)
        .zip(outcomes)
        .flat_map(|(connection, outcome)| {
            outcome
                .disconnects
                .iter()
                .map(move |(at, reason)| Disconnect {
                    connection,
                    after: at.saturating_duration_since(started),
                    reason: reason.clone(),
                })
        })
        .collect();
    all.sort_by_key(|d| d.after);
    all
}
