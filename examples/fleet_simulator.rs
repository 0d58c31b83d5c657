//! A fleet of simulated devices publishing telemetry to Eliot (or any MQTT server): a way
//! to watch Eliot work, and the load generator of its benchmarks.
//!
//! Every device is an actix actor owning its own MQTT connection (rumqttc). It publishes
//! readings in the original format to `devices/{id}/telemetry`, cycling through `gps`,
//! `temperature` and `battery` with values that drift slowly (a position around the device's
//! home point, a temperature around its own mean, a battery that drains and is recharged).
//! Timestamps are the current time, made strictly increasing per device, so no reading is a
//! duplicate of another. Each device sets a will (`devices/{id}/status`, `offline`, QoS 1),
//! asks for a persistent session, reconnects after an error with exponential backoff and
//! jitter (100 ms doubling to 5 s), and re-sends what was not acked when the server did not
//! keep its session (Eliot does not keep sessions yet).
//!
//! All devices run on one actix thread: rumqttc is async, and one thread keeps up with
//! 10,000 devices at 1 reading/s each (measured on 2 cores beside Eliot: under half a core,
//! its timers late by 4 ms at p99, about 47 KB of memory per device).
//!
//! # Usage
//!
//! ```text
//! cargo run --release                                             # Eliot, in one terminal
//! cargo run --release --example fleet_simulator                   # 10 devices, 1 reading/s, 10 s
//! cargo run --release --example fleet_simulator -- --devices 50 --rate 20 --duration 5s
//! cargo run --release --example fleet_simulator -- --rate 0 --count 2000 --devices 20  # throughput
//! cargo run --release --example fleet_simulator -- --malformed 0.1        # some dead letters
//! cargo run --release --example fleet_simulator -- --mqtt-version 5 --payload-size 1000
//! cargo run --release --example fleet_simulator -- --devices 10000 --duration 30s --quiet
//! cargo run --release --example fleet_simulator -- --json --duration 5s   # one JSON object
//! ```
//!
//! # Output
//!
//! A progress line on standard error once a second (not with `--quiet` or `--json`), then a
//! summary on standard output: readable, or with `--json` one JSON object on one line and
//! nothing else on standard output. Its fields:
//!
//! - `devices`, `connected_peak`: devices simulated, most connected at once.
//! - `sent`: messages whose PUBLISH went out (each counted once, however often re-sent);
//!   `acked`: of those, PUBACKed (always 0 at QoS 0); `lost`: `sent - acked` at QoS 1 when
//!   the run ended, after waiting up to 10 s for outstanding acks (0 at QoS 0).
//! - `errors`: connection errors; `reconnects`: CONNACKs after a device's first.
//! - `duration_s`: seconds from the first device's start to the end of publishing (every
//!   device reached its `--duration` or `--count`); `drain_s`: seconds then spent waiting for
//!   the last acks.
//! - `rate_sent`: `sent` / seconds from the start to the last PUBLISH of a new message;
//!   `rate_acked`: `acked` / seconds from the start to the last PUBACK; both in messages per
//!   second, ramp-up included.
//! - `latency_ms`: PUBLISH written → PUBACK read, in milliseconds, over every acked message:
//!   `{samples, mean, p50, p99, p999, max}`; `null` at QoS 0 or when nothing was acked.
//! - `qos`, `mqtt_version`, `rate_per_device` (0: as fast as acks allow), `payload_bytes`
//!   (mean size of a sent payload), `malformed` / `malformed_acked` (invalid JSON sent / acked:
//!   they are dead letters, so the readings stored are `acked - malformed_acked`), `resent`
//!   (PUBLISHes of messages sent before), `skipped` (scheduled readings dropped because a
//!   device fell behind), `unsent` (readings made but never sent), `first_error` (text of the
//!   first connection error, or `null`), `interrupted` (stopped by Ctrl-C or a stall).
//! - `loop_lag_p99_ms`, `loop_lag_max_ms`: how late the simulator's own 10 ms timer fired; a
//!   few ms means its thread kept up, far more means the simulator limited the run.
//!   `cpu_s`: CPU seconds the simulator used (`null` off Linux).
//!
//! Readings made while a device is disconnected wait (up to 100 per device) and go out when
//! it reconnects. With `--malformed`, mind Eliot's per-device breaker: a device with more than
//! 50 refused messages within 60 s is disconnected and refused for a while (its will, on
//! `devices/{id}/status`, then becomes a dead letter); the simulator reconnects and re-sends.
//!
//! With `--duration`, each device publishes that long from its own start; devices start at
//! `--connect-rate` per second, so a run lasts about `devices / connect-rate + duration`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use bytes::Bytes;
use clap::Parser;
use futures_util::stream::{self, Stream};
use humantime_serde::re::humantime;
use serde::Serialize;

/// Capacity of each device's rumqttc request channel: small, since 10,000 devices each have one.
const CHANNEL_CAPACITY: usize = 10;
/// Readings a device keeps waiting for its connection before it skips new ones.
const OUTBOX_LIMIT: usize = 100;
/// Readings a late device publishes at once to catch up with its schedule; the rest are skipped.
const MAX_CATCH_UP: u32 = 3;
/// MQTT keep-alive of every connection.
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Session expiry asked for by MQTT 5 devices (a persistent session needs one > 0).
const SESSION_EXPIRY_S: u32 = 3600;
/// First delay before reconnecting after an error; it doubles up to `BACKOFF_MAX`.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// Longest delay before reconnecting.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often the run is watched (progress line, end of phases, the thread's lag).
const MONITOR_TICK: Duration = Duration::from_millis(10);
/// How long the end of the run waits for outstanding acks.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// How long the end of the run waits for the devices' DISCONNECTs to go out.
const DISCONNECT_LIMIT: Duration = Duration::from_secs(3);
/// With `--count` alone (no time limit), give up after this long without any message sent or acked.
const STALL_LIMIT: Duration = Duration::from_secs(30);
/// Largest `--payload-size`: below Eliot's 256 KiB packet limit.
const MAX_PAYLOAD_SIZE: usize = 200_000;
/// Longest string Eliot accepts in `data` (`ingest.max_string_len`): padding is cut in such pieces.
const MAX_NOTE_LEN: usize = 1024;
/// Longest device id Eliot accepts.
const MAX_DEVICE_ID_LEN: usize = 64;

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

/// Simulates a fleet of devices publishing telemetry readings to Eliot over MQTT.
#[derive(Parser)]
#[command(version)]
struct Options {
    /// The MQTT server, as host:port.
    #[arg(long, default_value = "127.0.0.1:1883")]
    addr: String,
    /// Devices to simulate, each with its own connection.
    #[arg(long, default_value_t = 10)]
    devices: u64,
    /// Readings per second per device; 0 publishes as fast as the in-flight window allows.
    #[arg(long, default_value_t = 1.0, value_parser = parse_rate)]
    rate: f64,
    /// QoS of the readings: 0 or 1.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    qos: u8,
    /// MQTT version: 4 (3.1.1) or 5.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(4..=5))]
    mqtt_version: u8,
    /// Approximate payload size in bytes, reached by padding `data` with a `note` string
    /// (default: no padding, about 150 bytes).
    #[arg(long)]
    payload_size: Option<usize>,
    /// Fraction (0 to 1) of messages sent as invalid JSON; Eliot stores them as dead letters
    /// (and refuses a device for a while after 50 of its messages were refused within 60 s).
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    malformed: f64,
    /// How long each device publishes, from its start (e.g. 30s, 2m). Default 10s, unless
    /// --count is given.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Readings each device publishes (with --duration too: whichever ends first).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Device ids are `{prefix}-00000`, `{prefix}-00001`, ...; they are the client ids too.
    #[arg(long, default_value = "sim")]
    client_prefix: String,
    /// User name sent in CONNECT.
    #[arg(long)]
    username: Option<String>,
    /// Password sent in CONNECT (never printed).
    #[arg(long, requires = "username")]
    password: Option<String>,
    /// Print only the final summary, as one JSON object on standard output.
    #[arg(long)]
    json: bool,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// Connections opened per second at the start.
    #[arg(long, default_value_t = 500.0, value_parser = parse_positive)]
    connect_rate: f64,
    /// rumqttc's in-flight window: QoS 1 messages a device may have unacked.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..))]
    inflight: u16,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= 0.0 => Ok(rate),
        _ => Err("expected a number ≥ 0".into()),
    }
}

fn parse_positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err("expected a number > 0".into()),
    }
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err("expected a number from 0 to 1".into()),
    }
}

/// QoS of the published readings.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Qos {
    AtMostOnce,
    AtLeastOnce,
}

/// MQTT protocol version of the connections.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V311,
    V5,
}

/// What every device does, checked and derived from the options once.
struct Plan {
    /// Server host, as rumqttc takes it.
    host: String,
    /// Server port.
    port: u16,
    /// QoS of the readings.
    qos: Qos,
    /// MQTT version of the connections.
    version: Version,
    /// Pause between two readings of one device; `None` (`--rate 0`): as fast as acks allow.
    interval: Option<Duration>,
    /// Readings per device at most (`--count`).
    count: Option<u64>,
    /// How long each device publishes (`--duration`, or 10 s when neither limit is given).
    duration: Option<Duration>,
    /// Target payload size in bytes (`--payload-size`).
    payload_size: Option<usize>,
    /// Fraction of messages sent as invalid JSON.
    malformed: f64,
    /// User name and password for CONNECT.
    credentials: Option<(String, String)>,
    /// rumqttc's in-flight window.
    inflight: u16,
    /// Seed of every random choice; each device derives its own generator from it.
    seed: u64,
}

impl Plan {
    fn from_options(options: &Options) -> Result<Plan, String> {
        let (host, port) = split_addr(&options.addr)?;
        check_prefix(&options.client_prefix)?;
        if options.devices == 0 {
            return Err("--devices must be at least 1".into());
        }
        if options
            .payload_size
            .is_some_and(|size| size > MAX_PAYLOAD_SIZE)
        {
            return Err(format!("--payload-size must be at most {MAX_PAYLOAD_SIZE}"));
        }
        let duration = match (options.duration, options.count) {
            (None, None) => Some(Duration::from_secs(10)),
            (duration, _) => duration,
        };
        Ok(Plan {
            host,
            port,
            qos: if options.qos == 0 {
                Qos::AtMostOnce
            } else {
                Qos::AtLeastOnce
            },
            version: if options.mqtt_version == 5 {
                Version::V5
            } else {
                Version::V311
            },
            interval: (options.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / options.rate)),
            count: options.count,
            duration,
            payload_size: options.payload_size,
            malformed: options.malformed,
            credentials: options.username.clone().map(|user| {
                let password = options.password.clone().unwrap_or_default();
                (user, password)
            }),
            inflight: options.inflight,
            seed: unix_micros() as u64,
        })
    }
}

fn split_addr(addr: &str) -> Result<(String, u16), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("--addr `{addr}`: expected host:port"))?;
    let port = port
        .parse()
        .map_err(|_| format!("--addr `{addr}`: `{port}` is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_owned(), port))
}

/// The prefix must make device ids Eliot accepts: `A-Z a-z 0-9 _ . : -`, at most 64 characters.
fn check_prefix(prefix: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_.:-".contains(c);
    if prefix.is_empty() || !prefix.chars().all(allowed) {
        return Err(format!(
            "--client-prefix `{prefix}`: use 1 or more of A-Z a-z 0-9 _ . : -"
        ));
    }
    if device_id(prefix, 0).len() > MAX_DEVICE_ID_LEN {
        return Err(format!("--client-prefix `{prefix}` is too long"));
    }
    Ok(())
}

fn device_id(prefix: &str, index: u64) -> String {
    format!("{prefix}-{index:05}")
}

// ---------------------------------------------------------------------------------------
// Main: start the fleet, watch it, drain, summarize
// ---------------------------------------------------------------------------------------

fn main() -> ExitCode {
    let options = Options::parse();
    let plan = match Plan::from_options(&options) {
        Ok(plan) => Rc::new(plan),
        Err(message) => {
            eprintln!("fleet_simulator: {message}");
            return ExitCode::from(2);
        }
    };
    raise_open_file_limit(options.devices);
    if !options.json {
        eprintln!("{}", describe_run(&options, &plan));
    }
    let fleet = Fleet {
        plan,
        devices: options.devices,
        prefix: options.client_prefix.clone(),
        connect_rate: options.connect_rate,
        show_progress: !options.quiet && !options.json,
    };
    let summary = actix::System::new().block_on(fleet.run());
    if options.json {
        println!(
            "{}",
            serde_json::to_string(&summary).expect("a summary serializes")
        );
    } else {
        print_summary(&summary);
    }
    if summary.connected_peak == 0 {
        eprintln!("fleet_simulator: no device could connect");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Raises the soft open-file limit to the hard one: each device holds a socket.
fn raise_open_file_limit(devices: u64) {
    let needed = devices + 100;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < needed => eprintln!(
            "fleet_simulator: WARNING: the open-file limit is {limit}, below devices + 100 = \
             {needed}; devices beyond it will fail to connect (raise the hard limit: ulimit -Hn)"
        ),
        Ok(_) => {}
        Err(error) => eprintln!("fleet_simulator: could not raise the open-file limit: {error}"),
    }
}

fn describe_run(options: &Options, plan: &Plan) -> String {
    let rate = match plan.interval {
        Some(_) => format!("{} reading/s each", options.rate),
        None => "as fast as acks allow".into(),
    };
    let mut limits = Vec::new();
    if let Some(duration) = plan.duration {
        limits.push(format!("for {}", humantime::format_duration(duration)));
    }
    if let Some(count) = plan.count {
        limits.push(format!("{count} readings each"));
    }
    format!(
        "fleet_simulator: {} devices -> {}, MQTT {}, QoS {}, {rate}, {}",
        options.devices,
        options.addr,
        if plan.version == Version::V5 {
            "5"
        } else {
            "3.1.1"
        },
        options.qos,
        limits.join(", at most ")
    )
}

/// The run as a whole.
struct Fleet {
    /// What each device does.
    plan: Rc<Plan>,
    /// How many devices to start.
    devices: u64,
    /// Device id prefix.
    prefix: String,
    /// Devices started per second.
    connect_rate: f64,
    /// Whether to draw the progress line.
    show_progress: bool,
}

impl Fleet {
    async fn run(self) -> Summary {
        let totals = Rc::new(Totals::default());
        let start = Instant::now();
        let addrs = Rc::new(RefCell::new(Vec::new()));
        watch_interrupts(totals.clone());
        actix_rt::spawn(start_devices(
            self.plan.clone(),
            self.prefix.clone(),
            self.devices,
            self.connect_rate,
            totals.clone(),
            addrs.clone(),
        ));
        let mut monitor = Monitor::new(start, self.devices, self.show_progress);
        let published = self.wait_publishing(&totals, &mut monitor).await;
        let drained = wait_drained(&totals, &mut monitor).await;
        monitor.finish();
        let addrs = addrs.take();
        let latencies_us = finish_devices(addrs).await;
        wait_disconnected(&totals).await;
        let timing = Timing {
            start,
            published,
            drained,
        };
        let samples = Samples {
            latencies_us,
            loop_lags_us: monitor.lags_us,
        };
        summarize(&self, &totals, timing, samples)
    }

    /// Waits until every device has made its last reading (or Ctrl-C, or a stall).
    async fn wait_publishing(&self, totals: &Totals, monitor: &mut Monitor) -> Instant {
        let stall_limit = self.stall_limit();
        let mut stall = StallGuard::new(stall_limit);
        loop {
            monitor.wait(totals).await;
            let all_started = totals.started.get() == self.devices;
            if totals.stop.get() {
                return Instant::now();
            }
            if all_started && totals.generating.get() == 0 {
                return totals.publishing_ended.get().unwrap_or_else(Instant::now);
            }
            if stall.stalled(totals) {
                let limit = stall_limit.unwrap_or_default().as_secs();
                eprintln!("\nfleet_simulator: nothing sent or acked for {limit} s: giving up");
                totals.stop.set(true);
                totals.interrupted.set(true);
            }
        }
    }

    /// Only a run without a time limit needs a stall guard.
    fn stall_limit(&self) -> Option<Duration> {
        if self.plan.duration.is_some() {
            return None;
        }
        let interval = self.plan.interval.unwrap_or_default();
        Some(STALL_LIMIT.max(interval * 3))
    }
}

/// Starts the devices at `connect_rate` per second.
async fn start_devices(
    plan: Rc<Plan>,
    prefix: String,
    devices: u64,
    connect_rate: f64,
    totals: Rc<Totals>,
    addrs: Rc<RefCell<Vec<Addr<Device>>>>,
) {
    let start = Instant::now();
    for index in 0..devices {
        let due = start + Duration::from_secs_f64(index as f64 / connect_rate);
        if due > Instant::now() {
            actix_rt::time::sleep_until(due.into()).await;
        }
        if totals.stop.get() {
            // Not started: as far as the run is concerned, done.
            totals.started.set(devices);
            return;
        }
        let id = device_id(&prefix, index);
        let device = Device::new(id, index, plan.clone(), totals.clone());
        addrs.borrow_mut().push(device.start());
    }
}

/// First Ctrl-C: stop publishing, drain and summarize. Second: exit at once.
fn watch_interrupts(totals: Rc<Totals>) {
    actix_rt::spawn(async move {
        if actix_rt::signal::ctrl_c().await.is_err() {
            return;
        }
        eprintln!("\nfleet_simulator: interrupted: waiting for acks (Ctrl-C again to quit now)");
        totals.stop.set(true);
        totals.interrupted.set(true);
        if actix_rt::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    });
}

/// Waits until every reading made is settled (acked, or sent at QoS 0), at most `DRAIN_LIMIT`.
async fn wait_drained(totals: &Totals, monitor: &mut Monitor) -> Instant {
    let deadline = Instant::now() + DRAIN_LIMIT;
    while totals.outstanding.get() > 0 && Instant::now() < deadline {
        monitor.wait(totals).await;
    }
    Instant::now()
}

/// Tells every device to finish (disconnect) and gathers their latencies.
async fn finish_devices(addrs: Vec<Addr<Device>>) -> Vec<u32> {
    let mut latencies = Vec::new();
    for addr in addrs {
        if let Ok(report) = addr.send(Finish).await {
            latencies.extend_from_slice(&report.latencies_us);
        }
    }
    latencies
}

/// Waits (a little) until every device has sent its DISCONNECT, so no will is published.
async fn wait_disconnected(totals: &Totals) {
    let deadline = Instant::now() + DISCONNECT_LIMIT;
    while totals.alive.get() > 0 && Instant::now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Detects a run that makes no progress at all.
struct StallGuard {
    /// How long without progress is a stall; `None`: never.
    limit: Option<Duration>,
    /// `sent + acked` at the last change.
    last_seen: u64,
    /// When `last_seen` changed.
    since: Instant,
}

impl StallGuard {
    fn new(limit: Option<Duration>) -> StallGuard {
        StallGuard {
            limit,
            last_seen: 0,
            since: Instant::now(),
        }
    }

    fn stalled(&mut self, totals: &Totals) -> bool {
        let Some(limit) = self.limit else {
            return false;
        };
        let seen = totals.sent.get() + totals.acked.get();
        if seen != self.last_seen {
            self.last_seen = seen;
            self.since = Instant::now();
        }
        self.since.elapsed() > limit
    }
}

// ---------------------------------------------------------------------------------------
// Counters and the progress line
// ---------------------------------------------------------------------------------------

/// The fleet's counters. Every device runs on the one actix thread, so plain cells suffice.
#[derive(Default)]
struct Totals {
    /// Devices started so far (they start at `--connect-rate`).
    started: Cell<u64>,
    /// Devices whose actor is alive: the end waits for them to disconnect.
    alive: Cell<u64>,
    /// Devices still making readings: publishing ends when this is 0.
    generating: Cell<u64>,
    /// Devices connected now.
    connected: Cell<u64>,
    /// Most devices connected at once.
    connected_peak: Cell<u64>,
    /// Messages whose PUBLISH went out, each counted once.
    sent: Cell<u64>,
    /// Payload bytes of those messages, for the mean payload size.
    payload_bytes: Cell<u64>,
    /// Messages PUBACKed.
    acked: Cell<u64>,
    /// Invalid-JSON messages sent.
    malformed: Cell<u64>,
    /// Invalid-JSON messages PUBACKed (stored as dead letters).
    malformed_acked: Cell<u64>,
    /// PUBLISHes of messages that went out before (after a reconnect).
    resent: Cell<u64>,
    /// Scheduled readings not made because the device had fallen behind.
    skipped: Cell<u64>,
    /// Connection errors.
    errors: Cell<u64>,
    /// CONNACKs after a device's first one.
    reconnects: Cell<u64>,
    /// Readings made and not yet settled (acked at QoS 1, sent at QoS 0): the drain waits for 0.
    outstanding: Cell<u64>,
    /// Readings made and never sent by the end.
    unsent: Cell<u64>,
    /// When the last PUBLISH of a new message went out, for the send rate.
    last_sent: Cell<Option<Instant>>,
    /// When the last PUBACK arrived, for the ack rate.
    last_ack: Cell<Option<Instant>>,
    /// When the last device made its last reading: the end of publishing.
    publishing_ended: Cell<Option<Instant>>,
    /// The first connection error, shown in the summary to say why devices did not connect.
    first_error: RefCell<Option<String>>,
    /// Set by Ctrl-C or a stall: devices stop making readings.
    stop: Cell<bool>,
    /// Whether the run was cut short, reported in the summary.
    interrupted: Cell<bool>,
}

fn add(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get() + n);
}

fn subtract(cell: &Cell<u64>, n: u64) {
    cell.set(cell.get().saturating_sub(n));
}

/// Watches the run every `MONITOR_TICK`: draws the progress line once a second, and measures
/// how late its own timer fires, which tells whether the simulator's one thread keeps up.
struct Monitor {
    /// The monitor's timer.
    ticks: actix_rt::time::Interval,
    /// How late each tick of `ticks` was, in µs.
    lags_us: Vec<u32>,
    /// Start of the run, for the elapsed time.
    start: Instant,
    /// Devices in the run, shown next to the connected count.
    devices: u64,
    /// Whether to draw at all (`--quiet`, `--json`).
    enabled: bool,
    /// Whether standard error is a terminal: then the line is redrawn in place.
    in_place: bool,
    /// When the line was last drawn.
    last_drawn: Instant,
    /// `sent` when the line was last drawn, for the current rate.
    last_sent: u64,
    /// `acked` when the line was last drawn, for the current rate.
    last_acked: u64,
}

impl Monitor {
    fn new(start: Instant, devices: u64, enabled: bool) -> Monitor {
        let mut ticks = actix_rt::time::interval(MONITOR_TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        Monitor {
            ticks,
            lags_us: Vec::new(),
            start,
            devices,
            enabled,
            in_place: std::io::stderr().is_terminal(),
            last_drawn: start,
            last_sent: 0,
            last_acked: 0,
        }
    }

    /// Waits for the next tick, then draws the progress line if it is due.
    async fn wait(&mut self, totals: &Totals) {
        let scheduled = self.ticks.tick().await;
        let lag = scheduled.elapsed().as_micros();
        self.lags_us.push(lag.min(u32::MAX as u128) as u32);
        self.draw(totals);
    }

    fn draw(&mut self, totals: &Totals) {
        let since = self.last_drawn.elapsed();
        if !self.enabled || since < Duration::from_secs(1) {
            return;
        }
        let (sent, acked) = (totals.sent.get(), totals.acked.get());
        let seconds = since.as_secs_f64();
        let line = format!(
            "{:>7.1}s  connected {}/{}  sent {}  acked {}  errors {}  {:.0} sent/s  {:.0} acked/s",
            self.start.elapsed().as_secs_f64(),
            totals.connected.get(),
            self.devices,
            sent,
            acked,
            totals.errors.get(),
            (sent - self.last_sent) as f64 / seconds,
            (acked - self.last_acked) as f64 / seconds,
        );
        let mut stderr = std::io::stderr().lock();
        let _ = if self.in_place {
            write!(stderr, "\r{line}\x1b[K")
        } else {
            writeln!(stderr, "{line}")
        };
        (self.last_drawn, self.last_sent, self.last_acked) = (Instant::now(), sent, acked);
    }

    fn finish(&self) {
        if self.enabled && self.in_place {
            eprintln!();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The device actor
// ---------------------------------------------------------------------------------------

/// One message, from the moment it is made until it is acked.
struct Message {
    /// The exact bytes published; kept until acked so they can be sent again.
    payload: Bytes,
    /// Whether it is deliberately invalid JSON, to count dead letters apart from readings.
    malformed: bool,
    /// Whether it went out before: another PUBLISH of it is a re-send, not a new message.
    sent_before: bool,
}

/// A QoS 1 message sent and not yet acked.
struct InFlight {
    /// Its packet id, which its PUBACK carries.
    pkid: u16,
    /// When its PUBLISH went out, for the latency.
    sent_at: Instant,
    /// The message, re-sent if the server loses the session.
    message: Message,
}

/// Tells a device to stop and disconnect; it answers with its latencies.
#[derive(Message)]
#[rtype(result = "DeviceReport")]
struct Finish;

/// What a device hands back at the end.
struct DeviceReport {
    /// PUBLISH → PUBACK latency of each acked message, in µs.
    latencies_us: Vec<u32>,
}

/// A simulated device: one MQTT connection, one schedule of readings.
struct Device {
    /// The device id, also its MQTT client id and a level of its topic.
    id: String,
    /// `devices/{id}/telemetry`, built once rather than per reading.
    topic: String,
    /// What every device does.
    plan: Rc<Plan>,
    /// The fleet's counters, updated as things happen so the progress line is live.
    totals: Rc<Totals>,
    /// Hands publishes to the connection's event loop; only its `try_` calls are used, so the
    /// actor never waits on rumqttc.
    client: Option<Client>,
    /// Whether the connection is up (from CONNACK to an error): messages are handed to
    /// rumqttc only then, so what it drops on a reconnect is exactly what was handed.
    connected: bool,
    /// Whether a CONNACK ever arrived: later ones count as reconnects.
    ever_connected: bool,
    /// When the device stops making readings (`--duration`).
    stop_at: Option<Instant>,
    /// When the next scheduled reading is due (`--rate` > 0).
    next_due: Instant,
    /// Readings made so far, compared with `--count`.
    made: u64,
    /// False once the device has made its last reading.
    generating: bool,
    /// Set by `Finish`: nothing more is published.
    finishing: bool,
    /// Messages made and not yet handed to rumqttc (waiting for the connection or for room).
    outbox: VecDeque<Message>,
    /// Messages handed to rumqttc whose PUBLISH has not gone out yet. rumqttc sends them in
    /// order, so the next new `Outgoing::Publish` is the front one's.
    handed: VecDeque<Message>,
    /// QoS 1 messages sent and not acked, oldest first (Eliot acks in order, so an ack is
    /// usually the front one's).
    in_flight: VecDeque<InFlight>,
    /// PUBLISH → PUBACK latency of every acked message, in µs; merged at the end.
    latencies_us: Vec<u32>,
    /// The values the device reports, drifting from one reading to the next.
    sensors: Sensors,
    /// Makes every timestamp of the device unique and increasing.
    clock: Clock,
    /// The device's own random numbers (schedule offset, drift, malformed messages).
    rng: Rng,
}

impl Device {
    fn new(id: String, index: u64, plan: Rc<Plan>, totals: Rc<Totals>) -> Device {
        let mut rng = Rng::new(plan.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let now = Instant::now();
        let first_offset = plan.interval.unwrap_or_default().mul_f64(rng.unit());
        Device {
            topic: format!("devices/{id}/telemetry"),
            id,
            stop_at: plan.duration.map(|duration| now + duration),
            next_due: now + first_offset,
            sensors: Sensors::new(&mut rng),
            clock: Clock::default(),
            rng,
            plan,
            totals,
            client: None,
            connected: false,
            ever_connected: false,
            made: 0,
            generating: true,
            finishing: false,
            outbox: VecDeque::new(),
            handed: VecDeque::new(),
            in_flight: VecDeque::new(),
            latencies_us: Vec::new(),
        }
    }

    /// Opens the connection; its events arrive as a stream handled by this actor.
    fn connect(&mut self, ctx: &mut Context<Self>) {
        let (client, eventloop) = open_link(&self.id, &self.plan);
        self.client = Some(client);
        let backoff = Backoff::new(self.rng.next_u64());
        ctx.add_stream(link_events(eventloop, backoff));
    }

    /// Whether the device may make another reading now.
    fn may_make(&self, now: Instant) -> bool {
        !self.finishing
            && !self.totals.stop.get()
            && self.plan.count.is_none_or(|count| self.made < count)
            && self.stop_at.is_none_or(|stop_at| now < stop_at)
    }

    fn stop_generating(&mut self) {
        if self.generating {
            self.generating = false;
            subtract(&self.totals.generating, 1);
            if self.totals.generating.get() == 0 {
                self.totals.publishing_ended.set(Some(Instant::now()));
            }
        }
    }

    /// With `--rate`: makes the readings due, then sleeps until the next one.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let Some(interval) = self.plan.interval else {
            return;
        };
        let now = Instant::now();
        let mut made_now = 0;
        while self.next_due <= now && made_now < MAX_CATCH_UP && self.may_make(now) {
            self.schedule_reading();
            self.next_due += interval;
            made_now += 1;
        }
        self.fill();
        if !self.may_make(now) {
            self.stop_generating();
            return;
        }
        self.skip_missed(now, interval);
        ctx.run_later(self.next_due - now, Self::tick);
    }

    /// A device late by more than `MAX_CATCH_UP` readings skips the rest: no bursts.
    fn skip_missed(&mut self, now: Instant, interval: Duration) {
        if self.next_due > now {
            return;
        }
        let missed = ((now - self.next_due).as_secs_f64() / interval.as_secs_f64()) as u64 + 1;
        add(&self.totals.skipped, missed);
        self.next_due += interval.mul_f64(missed as f64);
    }

    /// Makes a scheduled reading, unless too many already wait for the connection.
    fn schedule_reading(&mut self) {
        if self.outbox.len() >= OUTBOX_LIMIT {
            add(&self.totals.skipped, 1);
            return;
        }
        let message = self.make_message();
        self.outbox.push_back(message);
    }

    fn make_message(&mut self) -> Message {
        let sensor = SENSOR_CYCLE[(self.made % SENSOR_CYCLE.len() as u64) as usize];
        self.made += 1;
        add(&self.totals.outstanding, 1);
        let timestamp = rfc3339_micros(self.clock.next());
        let fields = self.sensors.fields(sensor, &mut self.rng);
        let mut payload = reading_json(&self.id, &timestamp, sensor, &fields);
        if let Some(size) = self.plan.payload_size {
            pad_to(&mut payload, size);
        }
        let malformed = self.rng.unit() < self.plan.malformed;
        if malformed {
            payload.pop(); // the closing brace: no longer JSON
        }
        Message {
            payload: Bytes::from(payload),
            malformed,
            sent_before: false,
        }
    }

    /// Hands messages to rumqttc while its request channel has room; with `--rate 0`, makes
    /// new ones as room appears.
    fn fill(&mut self) {
        if !self.connected || self.finishing {
            return;
        }
        let fast = self.plan.interval.is_none();
        while self.handed.len() < CHANNEL_CAPACITY {
            let message = match self.outbox.pop_front() {
                Some(message) => message,
                None if fast && self.may_make(Instant::now()) => self.make_message(),
                None => break,
            };
            if !self.hand_over(message) {
                break;
            }
        }
        if fast && !self.may_make(Instant::now()) {
            self.stop_generating();
        }
    }

    /// Gives one message to rumqttc; if its channel is full, the message waits in the outbox.
    fn hand_over(&mut self, message: Message) -> bool {
        let client = self.client.as_ref().expect("connected means a client");
        if client.try_publish(&self.topic, self.plan.qos, message.payload.clone()) {
            self.handed.push_back(message);
            true
        } else {
            self.outbox.push_front(message);
            false
        }
    }

    fn on_connected(&mut self, session_present: bool) {
        self.connected = true;
        add(&self.totals.connected, 1);
        let peak = self
            .totals
            .connected_peak
            .get()
            .max(self.totals.connected.get());
        self.totals.connected_peak.set(peak);
        if self.ever_connected {
            add(&self.totals.reconnects, 1);
        }
        self.ever_connected = true;
        if !session_present {
            self.requeue_unacked();
        }
        self.fill();
    }

    /// Without a session, rumqttc has dropped every message it held: send them again, in
    /// their order, before anything new.
    fn requeue_unacked(&mut self) {
        let handed = std::mem::take(&mut self.handed);
        let sent = self.in_flight.drain(..).map(|entry| entry.message);
        let mut requeued: VecDeque<Message> = sent.chain(handed).collect();
        requeued.append(&mut self.outbox);
        self.outbox = requeued;
    }

    fn on_failed(&mut self, reason: String) {
        add(&self.totals.errors, 1);
        self.totals.first_error.borrow_mut().get_or_insert(reason);
        if self.connected {
            self.connected = false;
            subtract(&self.totals.connected, 1);
        }
    }

    /// A PUBLISH went out: the front handed message, or a re-send of an in-flight one.
    fn on_published(&mut self, pkid: u16) {
        let now = Instant::now();
        if let Some(entry) = self.in_flight.iter_mut().find(|entry| entry.pkid == pkid) {
            entry.sent_at = now; // rumqttc re-sent it in a resumed session
            add(&self.totals.resent, 1);
            return;
        }
        let Some(mut message) = self.handed.pop_front() else {
            return;
        };
        self.count_sent(&message);
        if self.plan.qos == Qos::AtMostOnce {
            subtract(&self.totals.outstanding, 1);
        } else {
            message.sent_before = true;
            self.in_flight.push_back(InFlight {
                pkid,
                sent_at: now,
                message,
            });
        }
        self.fill();
    }

    fn count_sent(&self, message: &Message) {
        if message.sent_before {
            add(&self.totals.resent, 1);
            return;
        }
        add(&self.totals.sent, 1);
        self.totals.last_sent.set(Some(Instant::now()));
        add(&self.totals.payload_bytes, message.payload.len() as u64);
        if message.malformed {
            add(&self.totals.malformed, 1);
        }
    }

    fn on_acked(&mut self, pkid: u16) {
        let Some(position) = self.in_flight.iter().position(|entry| entry.pkid == pkid) else {
            return;
        };
        let entry = self.in_flight.remove(position).expect("found above");
        let latency = entry.sent_at.elapsed().as_micros();
        self.latencies_us.push(latency.min(u32::MAX as u128) as u32);
        add(&self.totals.acked, 1);
        if entry.message.malformed {
            add(&self.totals.malformed_acked, 1);
        }
        subtract(&self.totals.outstanding, 1);
        self.totals.last_ack.set(Some(Instant::now()));
        self.fill();
    }

    /// Messages made and never sent at all.
    fn count_unsent(&self) -> u64 {
        let waiting = self.outbox.iter().chain(&self.handed);
        waiting.filter(|message| !message.sent_before).count() as u64
    }
}

impl Actor for Device {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        add(&self.totals.started, 1);
        add(&self.totals.alive, 1);
        add(&self.totals.generating, 1);
        self.connect(ctx);
        if self.plan.interval.is_some() {
            let delay = self.next_due.saturating_duration_since(Instant::now());
            ctx.run_later(delay, Self::tick);
        }
        if let Some(stop_at) = self.stop_at {
            let delay = stop_at.saturating_duration_since(Instant::now());
            ctx.run_later(delay, |device, _| device.stop_generating());
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        subtract(&self.totals.alive, 1);
        if self.connected {
            subtract(&self.totals.connected, 1);
        }
        self.stop_generating();
    }
}

impl StreamHandler<LinkEvent> for Device {
    fn handle(&mut self, event: LinkEvent, ctx: &mut Context<Self>) {
        match event {
            LinkEvent::Connected { session_present } => self.on_connected(session_present),
            LinkEvent::Published(pkid) => self.on_published(pkid),
            LinkEvent::Acked(pkid) => self.on_acked(pkid),
            LinkEvent::Failed(reason) => self.on_failed(reason),
            LinkEvent::DisconnectSent => ctx.stop(),
            LinkEvent::Other => {}
        }
    }
}

impl Handler<Finish> for Device {
    type Result = MessageResult<Finish>;

    fn handle(&mut self, _: Finish, ctx: &mut Context<Self>) -> Self::Result {
        self.finishing = true;
        self.stop_generating();
        add(&self.totals.unsent, self.count_unsent());
        let disconnecting =
            self.connected && self.client.as_ref().is_some_and(Client::try_disconnect);
        if disconnecting {
            // Stops on `DisconnectSent`, or after this if the DISCONNECT cannot go out.
            ctx.run_later(DISCONNECT_LIMIT, |_, ctx| ctx.stop());
        } else {
            ctx.stop();
        }
        MessageResult(DeviceReport {
            latencies_us: std::mem::take(&mut self.latencies_us),
        })
    }
}

// ---------------------------------------------------------------------------------------
// The MQTT link: rumqttc 3.1.1 or 5 behind one interface
// ---------------------------------------------------------------------------------------

/// A device's handle on its connection.
enum Client {
    V311(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

impl Client {
    /// Queues a PUBLISH without waiting; false if the request channel is full.
    fn try_publish(&self, topic: &str, qos: Qos, payload: Bytes) -> bool {
        match self {
            Client::V311(client) => client
                .try_publish(topic, qos.v311(), false, payload)
                .is_ok(),
            Client::V5(client) => client.try_publish(topic, qos.v5(), false, payload).is_ok(),
        }
    }

    fn try_disconnect(&self) -> bool {
        match self {
            Client::V311(client) => client.try_disconnect().is_ok(),
            Client::V5(client) => client.try_disconnect().is_ok(),
        }
    }
}

impl Qos {
    fn v311(self) -> rumqttc::QoS {
        match self {
            Qos::AtMostOnce => rumqttc::QoS::AtMostOnce,
            Qos::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        }
    }

    fn v5(self) -> rumqttc::v5::mqttbytes::QoS {
        match self {
            Qos::AtMostOnce => rumqttc::v5::mqttbytes::QoS::AtMostOnce,
            Qos::AtLeastOnce => rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        }
    }
}

/// A connection's event loop, polled by the device's event stream only.
enum EventLoop {
    V311(Box<rumqttc::EventLoop>),
    V5(Box<rumqttc::v5::EventLoop>),
}

/// What a device needs to know of its connection's events.
enum LinkEvent {
    /// CONNACK received.
    Connected { session_present: bool },
    /// A PUBLISH went out with this packet id (0 at QoS 0).
    Published(u16),
    /// A PUBACK came in for this packet id.
    Acked(u16),
    /// The connection failed or could not be opened; rumqttc reconnects at the next poll.
    Failed(String),
    /// The DISCONNECT went out: the device may close.
    DisconnectSent,
    /// Anything else (pings).
    Other,
}

fn open_link(id: &str, plan: &Plan) -> (Client, EventLoop) {
    match plan.version {
        Version::V311 => {
            let (client, eventloop) =
                rumqttc::AsyncClient::new(v311_options(id, plan), CHANNEL_CAPACITY);
            (Client::V311(client), EventLoop::V311(Box::new(eventloop)))
        }
        Version::V5 => {
            let (client, eventloop) =
                rumqttc::v5::AsyncClient::new(v5_options(id, plan), CHANNEL_CAPACITY);
            (Client::V5(client), EventLoop::V5(Box::new(eventloop)))
        }
    }
}

fn status_topic(id: &str) -> String {
    format!("devices/{id}/status")
}

fn v311_options(id: &str, plan: &Plan) -> rumqttc::MqttOptions {
    let mut options = rumqttc::MqttOptions::new(id, &plan.host, plan.port);
    options
        .set_keep_alive(KEEP_ALIVE)
        .set_clean_session(false)
        .set_inflight(plan.inflight)
        .set_last_will(rumqttc::LastWill::new(
            status_topic(id),
            "offline",
            rumqttc::QoS::AtLeastOnce,
            false,
        ));
    if let Some((user, password)) = &plan.credentials {
        options.set_credentials(user, password);
    }
    options
}

fn v5_options(id: &str, plan: &Plan) -> rumqttc::v5::MqttOptions {
    use rumqttc::v5::mqttbytes::{v5::LastWill, QoS};
    let mut options = rumqttc::v5::MqttOptions::new(id, &plan.host, plan.port);
    options
        .set_keep_alive(KEEP_ALIVE)
        .set_clean_start(false)
        .set_session_expiry_interval(Some(SESSION_EXPIRY_S))
        // Without it rumqttc sizes its in-flight table for 65,535 messages per connection.
        .set_outgoing_inflight_upper_limit(plan.inflight)
        .set_last_will(LastWill::new(
            status_topic(id),
            "offline",
            QoS::AtLeastOnce,
            false,
            None,
        ));
    if let Some((user, password)) = &plan.credentials {
        options.set_credentials(user, password);
    }
    options
}

impl EventLoop {
    async fn next_event(&mut self) -> LinkEvent {
        match self {
            EventLoop::V311(eventloop) => v311_event(eventloop.poll().await),
            EventLoop::V5(eventloop) => v5_event(eventloop.poll().await),
        }
    }
}

fn v311_event(polled: Result<rumqttc::Event, rumqttc::ConnectionError>) -> LinkEvent {
    use rumqttc::{Event, Outgoing, Packet};
    match polled {
        Ok(Event::Incoming(Packet::ConnAck(ack))) => LinkEvent::Connected {
            session_present: ack.session_present,
        },
        Ok(Event::Incoming(Packet::PubAck(ack))) => LinkEvent::Acked(ack.pkid),
        Ok(Event::Outgoing(Outgoing::Publish(pkid))) => LinkEvent::Published(pkid),
        Ok(Event::Outgoing(Outgoing::Disconnect)) => LinkEvent::DisconnectSent,
        Ok(_) => LinkEvent::Other,
        Err(error) => LinkEvent::Failed(error.to_string()),
    }
}

fn v5_event(polled: Result<rumqttc::v5::Event, rumqttc::v5::ConnectionError>) -> LinkEvent {
    use rumqttc::v5::{mqttbytes::v5::Packet, Event};
    use rumqttc::Outgoing;
    match polled {
        Ok(Event::Incoming(Packet::ConnAck(ack))) => LinkEvent::Connected {
            session_present: ack.session_present,
        },
        Ok(Event::Incoming(Packet::PubAck(ack))) => LinkEvent::Acked(ack.pkid),
        Ok(Event::Outgoing(Outgoing::Publish(pkid))) => LinkEvent::Published(pkid),
        Ok(Event::Outgoing(Outgoing::Disconnect)) => LinkEvent::DisconnectSent,
        Ok(_) => LinkEvent::Other,
        Err(error) => LinkEvent::Failed(error.to_string()),
    }
}

/// The connection's events as a stream. After an error it waits (backoff) before polling
/// again, since rumqttc would reconnect at once; waiting only delays a reconnection, which
/// has no pings to miss.
fn link_events(eventloop: EventLoop, backoff: Backoff) -> impl Stream<Item = LinkEvent> {
    let state = (eventloop, backoff, None::<Duration>);
    stream::unfold(state, |(mut eventloop, mut backoff, wait)| async move {
        if let Some(wait) = wait {
            actix_rt::time::sleep(wait).await;
        }
        let event = eventloop.next_event().await;
        let wait = match &event {
            LinkEvent::Failed(_) => Some(backoff.next_delay()),
            LinkEvent::Connected { .. } => {
                backoff.reset();
                None
            }
            _ => None,
        };
        Some((event, (eventloop, backoff, wait)))
    })
}

/// Exponential backoff with jitter between reconnections.
struct Backoff {
    /// The delay before the next attempt, before jitter.
    next: Duration,
    /// Jitter source, so devices that failed together do not reconnect together.
    rng: Rng,
}

impl Backoff {
    fn new(seed: u64) -> Backoff {
        Backoff {
            next: BACKOFF_FIRST,
            rng: Rng::new(seed),
        }
    }

    /// A delay between half and all of the current step; the step doubles up to the maximum.
    fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (step * 2).min(BACKOFF_MAX);
        step.mul_f64(0.5 + 0.5 * self.rng.unit())
    }

    fn reset(&mut self) {
        self.next = BACKOFF_FIRST;
    }
}

// ---------------------------------------------------------------------------------------
// Readings
// ---------------------------------------------------------------------------------------

/// The sensor types Eliot knows, which a device cycles through.
#[derive(Clone, Copy)]
enum SensorType {
    Gps,
    Temperature,
    Battery,
}

const SENSOR_CYCLE: [SensorType; 3] = [
    SensorType::Gps,
    SensorType::Temperature,
    SensorType::Battery,
];

impl SensorType {
    fn name(self) -> &'static str {
        match self {
            SensorType::Gps => "gps",
            SensorType::Temperature => "temperature",
            SensorType::Battery => "battery",
        }
    }
}

/// The state behind a device's values.
struct Sensors {
    /// Where the device lives (latitude, longitude, degrees); its position wanders around it.
    home: (f64, f64),
    /// Current distance from home (degrees), a random walk pulled back towards 0.
    offset: (f64, f64),
    /// GPS accuracy in metres, drifting within 0.5..25.
    accuracy: f64,
    /// The temperature the device's surroundings hover around.
    mean_celsius: f64,
    /// Current temperature.
    celsius: f64,
    /// Battery charge in percent, draining slowly; recharged to 100 below 5.
    percent: f64,
}

impl Sensors {
    fn new(rng: &mut Rng) -> Sensors {
        let mean_celsius = rng.between(5.0, 35.0);
        Sensors {
            home: (rng.between(-60.0, 60.0), rng.between(-180.0, 180.0)),
            offset: (0.0, 0.0),
            accuracy: rng.between(2.0, 8.0),
            mean_celsius,
            celsius: mean_celsius,
            percent: rng.between(40.0, 100.0),
        }
    }

    /// The next values of one sensor, as the inside of a JSON object.
    fn fields(&mut self, sensor: SensorType, rng: &mut Rng) -> String {
        match sensor {
            SensorType::Gps => self.gps(rng),
            SensorType::Temperature => self.temperature(rng),
            SensorType::Battery => self.battery(rng),
        }
    }

    fn gps(&mut self, rng: &mut Rng) -> String {
        self.offset.0 = self.offset.0 * 0.95 + rng.gauss() * 0.0002;
        self.offset.1 = self.offset.1 * 0.95 + rng.gauss() * 0.0002;
        self.accuracy = (self.accuracy + rng.gauss() * 0.3).clamp(0.5, 25.0);
        let latitude = (self.home.0 + self.offset.0).clamp(-90.0, 90.0);
        let longitude = wrap_longitude(self.home.1 + self.offset.1);
        format!(
            r#""latitude":{latitude:.6},"longitude":{longitude:.6},"accuracy":{:.1}"#,
            self.accuracy
        )
    }

    fn temperature(&mut self, rng: &mut Rng) -> String {
        self.celsius += (self.mean_celsius - self.celsius) * 0.05 + rng.gauss() * 0.1;
        format!(r#""celsius":{:.2}"#, self.celsius)
    }

    fn battery(&mut self, rng: &mut Rng) -> String {
        self.percent -= rng.between(0.01, 0.05);
        if self.percent < 5.0 {
            self.percent = 100.0;
        }
        let voltage = (3.3 + 0.9 * self.percent / 100.0 + rng.gauss() * 0.005).max(0.0);
        format!(r#""percent":{:.2},"voltage":{voltage:.3}"#, self.percent)
    }
}

fn wrap_longitude(longitude: f64) -> f64 {
    if longitude > 180.0 {
        longitude - 360.0
    } else if longitude < -180.0 {
        longitude + 360.0
    } else {
        longitude
    }
}

/// A reading in the original format.
fn reading_json(id: &str, timestamp: &str, sensor: SensorType, fields: &str) -> String {
    format!(
        r#"{{"device_id":"{id}","timestamp":"{timestamp}","sensor_type":"{}","data":{{{fields}}}}}"#,
        sensor.name()
    )
}

/// Pads a reading's `data` with `note` strings until the payload is about `size` bytes. Eliot
/// refuses strings over 1024 bytes, so a long padding is cut into `note`, `note_2`, ...
fn pad_to(payload: &mut String, size: usize) {
    let mut padding = String::new();
    let mut need = size.saturating_sub(payload.len());
    for n in 1.. {
        let key = if n == 1 {
            "note".to_owned()
        } else {
            format!("note_{n}")
        };
        let overhead = key.len() + 6; // ,"key":""
        if need <= overhead {
            break;
        }
        let len = (need - overhead).min(MAX_NOTE_LEN);
        padding.push_str(&format!(r#","{key}":""#));
        padding.extend(std::iter::repeat_n('x', len));
        padding.push('"');
        need -= overhead + len;
    }
    payload.insert_str(payload.len() - 2, &padding); // before the closing `}}`
}

/// The device's clock: the current time, but never the same microsecond twice.
#[derive(Default)]
struct Clock {
    /// The last timestamp given, in µs since the Unix epoch.
    last_us: i64,
}

impl Clock {
    fn next(&mut self) -> i64 {
        self.last_us = unix_micros().max(self.last_us + 1);
        self.last_us
    }
}

fn unix_micros() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    since_epoch.as_micros() as i64
}

/// RFC 3339 in UTC with microseconds: `2025-06-05T14:30:00.123456Z`.
fn rfc3339_micros(unix_us: i64) -> String {
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(unix_us as i128 * 1000)
        .expect("the current time is a valid date");
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        time.year(),
        time.month() as u8,
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        time.microsecond()
    )
}

/// SplitMix64: small, fast and good enough for simulated values and jitter.
struct Rng {
    /// The generator's state.
    state: u64,
}

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Roughly normal, mean 0 and standard deviation 1 (sum of four uniforms).
    fn gauss(&mut self) -> f64 {
        let sum: f64 = (0..4).map(|_| self.unit()).sum();
        (sum - 2.0) * 3.0f64.sqrt()
    }
}

// ---------------------------------------------------------------------------------------
// The summary
// ---------------------------------------------------------------------------------------

/// When the phases of the run ended.
struct Timing {
    /// Start of the run.
    start: Instant,
    /// When every device had made its last reading.
    published: Instant,
    /// When the wait for the last acks ended.
    drained: Instant,
}

/// What was measured message by message or tick by tick.
struct Samples {
    /// PUBLISH → PUBACK latency of every acked message, in µs.
    latencies_us: Vec<u32>,
    /// Lateness of every monitor tick, in µs.
    loop_lags_us: Vec<u32>,
}

/// The final report; its JSON form is what benchmarks parse, so its field names are stable.
#[derive(Serialize)]
struct Summary {
    /// Devices simulated.
    devices: u64,
    /// Most devices connected at once.
    connected_peak: u64,
    /// Messages whose PUBLISH went out (each counted once).
    sent: u64,
    /// Messages PUBACKed (0 at QoS 0).
    acked: u64,
    /// Connection errors.
    errors: u64,
    /// CONNACKs after a device's first.
    reconnects: u64,
    /// Seconds from the start to the end of publishing.
    duration_s: f64,
    /// Seconds spent waiting for the last acks.
    drain_s: f64,
    /// `sent` / seconds from the start to the last PUBLISH of a new message, messages per second.
    rate_sent: f64,
    /// `acked` / seconds from the start to the last PUBACK, messages per second.
    rate_acked: f64,
    /// PUBLISH → PUBACK latency; `None` at QoS 0 or when nothing was acked.
    latency_ms: Option<Latency>,
    /// QoS 1 messages sent and not acked by the end.
    lost: u64,
    /// QoS of the readings.
    qos: u8,
    /// 4 (3.1.1) or 5.
    mqtt_version: u8,
    /// Readings per second per device; 0: as fast as acks allow.
    rate_per_device: f64,
    /// Mean payload size of the messages sent, in bytes.
    payload_bytes: f64,
    /// Invalid-JSON messages sent.
    malformed: u64,
    /// Invalid-JSON messages acked (stored as dead letters).
    malformed_acked: u64,
    /// PUBLISHes of messages that had gone out before.
    resent: u64,
    /// Scheduled readings skipped because a device had fallen behind.
    skipped: u64,
    /// Readings made and never sent.
    unsent: u64,
    /// Text of the first connection error.
    first_error: Option<String>,
    /// Whether Ctrl-C or a stall cut the run short.
    interrupted: bool,
    /// 99th percentile of how late the simulator's 10 ms timer fired, in ms: a few ms means its
    /// one thread keeps up; much more means the simulator, not the server, limits the run.
    loop_lag_p99_ms: f64,
    /// Worst lateness of that timer, in ms.
    loop_lag_max_ms: f64,
    /// CPU time the simulator used (user + system), in seconds; `None` off Linux.
    cpu_s: Option<f64>,
}

/// Latency percentiles in milliseconds.
#[derive(Serialize)]
struct Latency {
    /// Acked messages measured.
    samples: u64,
    /// Mean.
    mean: f64,
    /// Median.
    p50: f64,
    /// 99th percentile.
    p99: f64,
    /// 99.9th percentile.
    p999: f64,
    /// Slowest.
    max: f64,
}

fn summarize(fleet: &Fleet, totals: &Totals, timing: Timing, samples: Samples) -> Summary {
    let mut lags_us = samples.loop_lags_us;
    lags_us.sort_unstable();
    let lag_ms = |quantile| percentile(&lags_us, quantile) as f64 / 1000.0;
    let duration_s = seconds(timing.start, timing.published);
    let (sent, acked) = (totals.sent.get(), totals.acked.get());
    let send_window = totals.last_sent.get().map(|at| seconds(timing.start, at));
    let ack_window = totals.last_ack.get().map(|at| seconds(timing.start, at));
    let at_least_once = fleet.plan.qos == Qos::AtLeastOnce;
    Summary {
        devices: fleet.devices,
        connected_peak: totals.connected_peak.get(),
        sent,
        acked,
        errors: totals.errors.get(),
        reconnects: totals.reconnects.get(),
        duration_s: round3(duration_s),
        drain_s: round3(seconds(timing.published, timing.drained)),
        rate_sent: round1(per_second(sent, send_window)),
        rate_acked: round1(per_second(acked, ack_window)),
        latency_ms: latency_summary(samples.latencies_us),
        lost: if at_least_once {
            sent.saturating_sub(acked)
        } else {
            0
        },
        qos: u8::from(at_least_once),
        mqtt_version: if fleet.plan.version == Version::V5 {
            5
        } else {
            4
        },
        rate_per_device: fleet
            .plan
            .interval
            .map_or(0.0, |i| round3(1.0 / i.as_secs_f64())),
        payload_bytes: round1(totals.payload_bytes.get() as f64 / sent.max(1) as f64),
        malformed: totals.malformed.get(),
        malformed_acked: totals.malformed_acked.get(),
        resent: totals.resent.get(),
        skipped: totals.skipped.get(),
        unsent: totals.unsent.get(),
        first_error: totals.first_error.borrow().clone(),
        interrupted: totals.interrupted.get(),
        loop_lag_p99_ms: round3(lag_ms(0.99)),
        loop_lag_max_ms: round3(lag_ms(1.0)),
        cpu_s: own_cpu_seconds(),
    }
}

/// User + system CPU time of this process, from `/proc/self/stat` (in USER_HZ = 100 ticks).
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11); // utime is field 14 of the line
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / 100.0)
}

fn seconds(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64()
}

fn per_second(count: u64, seconds: Option<f64>) -> f64 {
    match seconds {
        Some(seconds) if seconds > 0.0 => count as f64 / seconds,
        _ => 0.0,
    }
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn latency_summary(mut latencies_us: Vec<u32>) -> Option<Latency> {
    if latencies_us.is_empty() {
        return None;
    }
    latencies_us.sort_unstable();
    let ms = |us: u32| round3(us as f64 / 1000.0);
    let total: u64 = latencies_us.iter().map(|&us| us as u64).sum();
    Some(Latency {
        samples: latencies_us.len() as u64,
        mean: round3(total as f64 / latencies_us.len() as f64 / 1000.0),
        p50: ms(percentile(&latencies_us, 0.50)),
        p99: ms(percentile(&latencies_us, 0.99)),
        p999: ms(percentile(&latencies_us, 0.999)),
        max: ms(*latencies_us.last().expect("not empty")),
    })
}

/// Nearest-rank percentile of sorted samples (0 if there are none).
fn percentile(sorted: &[u32], quantile: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn print_summary(summary: &Summary) {
    let version = if summary.mqtt_version == 5 {
        "5"
    } else {
        "3.1.1"
    };
    println!(
        "devices      {} (peak {} connected), MQTT {version}, QoS {}",
        summary.devices, summary.connected_peak, summary.qos
    );
    println!(
        "sent         {} in {:.3} s: {:.1} msg/s ({:.0}-byte payloads, {} malformed)",
        summary.sent,
        summary.duration_s,
        summary.rate_sent,
        summary.payload_bytes,
        summary.malformed
    );
    if summary.qos == 1 {
        println!(
            "acked        {}: {:.1} msg/s ({} malformed, stored as dead letters); lost {} \
             (waited {:.1} s for the last acks)",
            summary.acked,
            summary.rate_acked,
            summary.malformed_acked,
            summary.lost,
            summary.drain_s
        );
    }
    if let Some(latency) = &summary.latency_ms {
        println!(
            "latency      p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms (mean {} ms, {} samples)",
            latency.p50, latency.p99, latency.p999, latency.max, latency.mean, latency.samples
        );
    }
    println!(
        "connections  {} errors, {} reconnects, {} re-sent, {} skipped, {} never sent",
        summary.errors, summary.reconnects, summary.resent, summary.skipped, summary.unsent
    );
    println!(
        "simulator    timer lag p99 {} ms, max {} ms; CPU {}",
        summary.loop_lag_p99_ms,
        summary.loop_lag_max_ms,
        summary
            .cpu_s
            .map_or("unknown".into(), |cpu| format!("{cpu:.2} s"))
    );
    if let Some(error) = &summary.first_error {
        println!("first error  {error}");
    }
    if summary.interrupted {
        println!("interrupted  the run was cut short");
    }
}
