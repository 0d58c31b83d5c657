//! `upstream`: Eliot in its upstream broker mode (its own device endpoint off) draining an
//! existing Mosquitto, against the bare drain on the same broker: the baseline subscriber
//! with `--count-only` (`examples/baseline_subscriber.rs`, rumqttc, MQTT 3.1.1), which only
//! receives and acks. Target: Eliot's rate ≥ 0.9 × the bare drain's, at QoS 0 and QoS 1.
//!
//! A backlog drain, so that no publisher limits the rate. For each subscriber and run:
//!
//! 1. a fresh Mosquitto: no queue limit, 10,000 messages in flight, QoS 0 messages queued for
//!    offline sessions too, no persistence;
//! 2. the subscriber connects once, so that its persistent session and its QoS 1
//!    subscription to `devices/+/telemetry` exist (Eliot: until /health shows the upstream
//!    connection connected and the broker logged the subscription, then SIGTERM; the bare
//!    drain: until its SUBACK, then killed), and the broker has seen it go;
//! 3. the fleet simulator publishes N readings from 1,000 devices (one connection each, at
//!    the run's QoS), which the broker queues for the absent session; then the broker is let
//!    go idle;
//! 4. the subscriber starts again and is timed from its start until it has received (bare)
//!    or stored (Eliot: `eliot_readings_stored_total` on /metrics) all N.
//!
//! Each figure is N over that time, the median of the runs (bare and Eliot runs alternate,
//! so that whatever else the machine does weighs on both alike). A run fails, and with it the
//! benchmark, when the bare drain does not receive N (the broker lost some), or Eliot does
//! not store exactly N readings with no dead letter. The notes give each process's CPU over
//! the drain, in cores: where the time goes.
//!
//! Eliot runs with a configuration file of its own (`--eliot-config` does not apply here):
//! `[mqtt] enabled = false`, `[upstream]` on this broker over plain TCP, client id `bench`,
//! the rest its defaults (MQTT 5, receive maximum 10,000).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::clients::{simulate, Load, Subscriber};
use crate::procs::{Programs, Server};
use crate::report::{Figure, Report, Row};
use crate::sampling::cpu_seconds;
use crate::target::{Goal, Target};

/// Eliot's rate at least this share of the bare drain's.
const TARGET_RATIO: f64 = 0.9;
/// Mosquitto, beyond what `Server::mosquitto` sets: queue QoS 0 for offline sessions, run as
/// whoever started it (as root it would drop to `mosquitto`, which cannot write our log), and
/// log what shows a subscriber subscribed and gone, nothing per message.
const BROKER_EXTRA: &str =
    "queue_qos0_messages true\nmax_inflight_messages 10000\nuser root\nlog_type error\n\
                            log_type warning\nlog_type notice\nlog_type subscribe\n";
/// Eliot's upstream client id: its connection 0 is `bench-0`.
const CLIENT_ID: &str = "bench";
/// The baseline subscriber's client id (fixed in it).
const BARE_CLIENT_ID: &str = "baseline";
/// The filter both subscribe to (Eliot's default), as the broker logs it.
const FILTER: &str = "devices/+/telemetry";
/// Longest a subscriber may take to connect and subscribe, or to be gone.
const SETUP_LIMIT: Duration = Duration::from_secs(30);
/// Longest a drain may go without progress, and take in all.
const STALL_LIMIT: Duration = Duration::from_secs(15);
const DRAIN_LIMIT: Duration = Duration::from_secs(300);
/// Longest the bare drain may take (it cannot say how far it got).
const BARE_LIMIT: Duration = Duration::from_secs(120);

pub struct UpstreamScale {
    pub devices: u32,
    /// Readings each device publishes: N = devices × per_device.
    pub per_device: u64,
}

pub const FULL: UpstreamScale = UpstreamScale {
    devices: 1_000,
    per_device: 300,
};

pub const QUICK: UpstreamScale = UpstreamScale {
    devices: 1_000,
    per_device: 20,
};

impl UpstreamScale {
    fn total(&self) -> u64 {
        u64::from(self.devices) * self.per_device
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Drainer {
    /// The baseline subscriber, counting only.
    Bare,
    /// Eliot in the upstream mode alone.
    Eliot,
}

/// One drain of the backlog.
struct Drain {
    /// msg/s, from the subscriber's start to the last message received or stored.
    rate: f64,
    /// CPU over the drain, in cores: the subscriber's and the broker's.
    subscriber_cores: f64,
    broker_cores: f64,
    problems: Vec<String>,
}

impl Drain {
    fn failed(problem: String) -> Drain {
        Drain {
            rate: 0.0,
            subscriber_cores: f64::NAN,
            broker_cores: f64::NAN,
            problems: vec![problem],
        }
    }
}

/// Measures the bare drain and Eliot at QoS 0 and QoS 1, `runs` times each; adds their rows
/// to the report, Eliot's held to the ratio target.
pub fn measure(programs: &Programs, scale: &UpstreamScale, runs: usize, report: &mut Report) {
    let total = scale.total();
    for qos in [0u8, 1] {
        eprintln!(
            "Upstream mode, QoS {qos}: a backlog of {total} readings drained by the bare \
             subscriber and by Eliot ..."
        );
        let (mut bare, mut eliot) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            bare.push(drain(programs, scale, qos, Drainer::Bare));
            eliot.push(drain(programs, scale, qos, Drainer::Eliot));
        }
        let shape = format!(
            "a Mosquitto backlog of {total} readings from {} devices, QoS {qos}",
            scale.devices
        );
        let bare_rate = Figure::of(bare.iter().map(|d| d.rate));
        let eliot_rate = Figure::of(eliot.iter().map(|d| d.rate));
        let ratio = eliot_rate.median / bare_rate.median;
        let per_run = Figure::of(bare.iter().zip(&eliot).map(|(b, e)| e.rate / b.rate));
        report.add(row(
            &format!("Bare drain of {shape} (rumqttc, MQTT 3.1.1, receive and ack only)"),
            &format!("Bare backlog Q{qos}"),
            ("subscriber", &bare),
            String::new(),
        ));
        report.add(
            row(
                &format!(
                    "Eliot upstream mode draining {shape} (MQTT 5, stored, acked after commit)"
                ),
                &format!("Upstream Q{qos}"),
                ("Eliot", &eliot),
                format!("Eliot / bare by run {}", per_run.show(2)),
            )
            .with_target(Target::new(
                "upstream drain / bare drain",
                ratio,
                Goal::AtLeast(TARGET_RATIO),
                "×",
            )),
        );
    }
}

/// A row of `drains` by `who`, with the CPU each side used.
fn row(name: &str, label: &str, (who, drains): (&str, &[Drain]), extra: String) -> Row {
    let figure = |f: &dyn Fn(&Drain) -> f64| Figure::of(drains.iter().map(f));
    let mut notes = format!(
        "{who} CPU {} cores, {} µs/msg; Mosquitto CPU {} cores",
        figure(&|d| d.subscriber_cores).show(2),
        figure(&|d| d.subscriber_cores / d.rate * 1e6).show(1),
        figure(&|d| d.broker_cores).show(2)
    );
    if !extra.is_empty() {
        notes = format!("{notes}; {extra}");
    }
    let mut row = Row::measured(name, Some(figure(&|d| d.rate)), None, notes).with_label(label);
    let problems: Vec<&str> = drains
        .iter()
        .flat_map(|d| d.problems.iter().map(String::as_str))
        .collect();
    if !problems.is_empty() {
        row.failure = Some(problems.join("; "));
    }
    row
}

/// One run: a fresh broker, the subscriber's session, the backlog, the timed drain.
fn drain(programs: &Programs, scale: &UpstreamScale, qos: u8, who: Drainer) -> Drain {
    let broker = Server::mosquitto_logged(BROKER_EXTRA);
    let eliot_dir = Arc::new(tempfile::tempdir().unwrap());
    let config = eliot_dir.path().join("upstream.toml");
    std::fs::write(&config, eliot_config(&broker)).unwrap();
    let bare_db = broker.dir.path().join("bare.db");
    let what = match who {
        Drainer::Bare => "bare drain",
        Drainer::Eliot => "Eliot",
    };
    let session = match who {
        Drainer::Bare => bare_session(programs, &broker, scale.total(), &bare_db),
        Drainer::Eliot => eliot_session(programs, &broker, &eliot_dir, &config),
    };
    let drained = session
        .and_then(|()| backlog(programs, &broker, scale, qos))
        .map(|()| match who {
            Drainer::Bare => drain_bare(programs, &broker, scale.total(), &bare_db),
            Drainer::Eliot => drain_eliot(programs, &broker, scale.total(), eliot_dir, &config),
        });
    let mut drained = drained.unwrap_or_else(Drain::failed);
    for problem in &mut drained.problems {
        *problem = format!("{what}, QoS {qos}: {problem}");
    }
    drained
}

/// Eliot's configuration: the upstream mode alone, on `broker`, over plain TCP.
fn eliot_config(broker: &Server) -> String {
    format!(
        "[mqtt]\nenabled = false\n\n[upstream]\nenabled = true\nhost = \"{}\"\n\
         port = {}\ntls = false\nclient_id = \"{CLIENT_ID}\"\n\n[log]\nlevel = \"warning\"\n",
        broker.addr.ip(),
        broker.addr.port()
    )
}

/// The bare drain's session: subscribed (its SUBACK read), then killed; MQTT 3.1.1 with
/// clean session off, so the broker keeps the session.
fn bare_session(programs: &Programs, broker: &Server, total: u64, db: &Path) -> Result<(), String> {
    drop(Subscriber::start(programs, broker.addr, 1, total, db, true));
    gone(broker, BARE_CLIENT_ID)
}

/// Eliot's session: connected (/health) and subscribed (the broker's log), then stopped with
/// SIGTERM, as an operator would.
fn eliot_session(
    programs: &Programs,
    broker: &Server,
    dir: &Arc<TempDir>,
    config: &Path,
) -> Result<(), String> {
    let eliot = Server::eliot_upstream(programs, dir.clone(), config);
    let http = Http::new(eliot.http.expect("eliot has an HTTP listener"));
    let subscribed = format!("{CLIENT_ID}-0 1 {FILTER}");
    let deadline = Instant::now() + SETUP_LIMIT;
    loop {
        let connected = http.upstream_connected();
        if connected && broker.mosquitto_log().contains(&subscribed) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not subscribed within {SETUP_LIMIT:?} (connected: {connected}); broker log:\n{}",
                broker.mosquitto_log()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if !eliot.terminate(SETUP_LIMIT) {
        return Err(format!("did not stop within {SETUP_LIMIT:?} of SIGTERM"));
    }
    gone(broker, &format!("{CLIENT_ID}-0"))
}

/// Waits until the broker logged that `client_id` went ("Client <id> disconnected.", or
/// "closed its connection."): whatever is published after it is queued for its session.
fn gone(broker: &Server, client_id: &str) -> Result<(), String> {
    let line = format!("Client {client_id} ");
    let deadline = Instant::now() + SETUP_LIMIT;
    while !broker.mosquitto_log().contains(&line) {
        if Instant::now() > deadline {
            return Err(format!(
                "the broker did not log `{line}...` within {SETUP_LIMIT:?}:\n{}",
                broker.mosquitto_log()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// The fleet simulator publishes the backlog: every device its readings, at `qos`. Then the
/// broker is let finish taking them in.
fn backlog(
    programs: &Programs,
    broker: &Server,
    scale: &UpstreamScale,
    qos: u8,
) -> Result<(), String> {
    let load = Load {
        devices: scale.devices,
        rate: 0.0,
        qos,
        count: Some(scale.per_device),
        duration: None,
    };
    let summary = simulate(programs, broker.addr, &load);
    let count = |field: &str| summary[field].as_u64().unwrap_or(0);
    let total = scale.total();
    if count("sent") != total || (qos == 1 && count("acked") != total) {
        return Err(format!(
            "the simulator sent {} and had {} acked of {total}: {summary}",
            count("sent"),
            count("acked")
        ));
    }
    wait_idle(broker.pid());
    Ok(())
}

/// Waits (at most 30 s) until process `pid` used no CPU for 200 ms.
fn wait_idle(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = cpu_seconds(pid);
    let mut idle_since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = cpu_seconds(pid);
        if now > last {
            last = now;
            idle_since = Instant::now();
        } else if idle_since.elapsed() >= Duration::from_millis(200) {
            return;
        }
    }
}

/// The bare drain, timed from its start until it exits, having counted `total` messages.
fn drain_bare(programs: &Programs, broker: &Server, total: u64, db: &Path) -> Drain {
    let broker_cpu = broker.cpu_seconds();
    let started = Instant::now();
    let subscriber = Subscriber::start(programs, broker.addr, 1, total, db, true);
    let finished = match subscriber.finish_watched(BARE_LIMIT) {
        Ok(finished) => finished,
        Err(e) => {
            return Drain::failed(format!(
                "{e} (the broker did not deliver {total} messages?)"
            ))
        }
    };
    let took = finished.at.duration_since(started).as_secs_f64();
    let mut problems = Vec::new();
    let received = finished.summary["stored"].as_u64().unwrap_or(0);
    if received != total {
        problems.push(format!("received {received} of {total}"));
    }
    Drain {
        rate: total as f64 / took,
        subscriber_cores: finished.cpu_seconds / took,
        broker_cores: (broker.cpu_seconds() - broker_cpu) / took,
        problems,
    }
}

/// Eliot, timed from its start until its metrics count `total` readings stored; then its
/// store is checked: exactly `total` readings, no dead letter.
fn drain_eliot(
    programs: &Programs,
    broker: &Server,
    total: u64,
    dir: Arc<TempDir>,
    config: &Path,
) -> Drain {
    let broker_cpu = broker.cpu_seconds();
    let started = Instant::now();
    let eliot = Server::eliot_upstream(programs, dir, config);
    let http = Http::new(eliot.http.expect("eliot has an HTTP listener"));
    let (mut stored, mut progressed) = (0, Instant::now());
    while stored < total {
        std::thread::sleep(Duration::from_millis(10));
        let now = http.stored().unwrap_or(stored);
        if now > stored {
            (stored, progressed) = (now, Instant::now());
        } else if progressed.elapsed() > STALL_LIMIT || started.elapsed() > DRAIN_LIMIT {
            return Drain::failed(format!(
                "stalled at {stored} of {total} readings stored (nothing more for {:.0} s; \
                 Eliot used {:.1} CPU s); upstream health: {}",
                progressed.elapsed().as_secs_f64(),
                eliot.cpu_seconds(),
                http.upstream_health()
            ));
        }
    }
    let took = started.elapsed().as_secs_f64();
    let eliot_cpu = eliot.cpu_seconds();
    let broker_cores = (broker.cpu_seconds() - broker_cpu) / took;
    let mut problems = Vec::new();
    if stored != total {
        problems.push(format!("{stored} readings stored, not {total}"));
    }
    let rows = eliot.rows();
    if rows != total {
        problems.push(format!("{rows} readings in the store, not {total}"));
    }
    let dead_letters = eliot.dead_letters();
    if dead_letters > 0 {
        let reason = eliot.first_dead_letter().unwrap_or_default();
        problems.push(format!(
            "{dead_letters} dead letters in the store, the first: {reason}"
        ));
    }
    Drain {
        rate: total as f64 / took,
        subscriber_cores: eliot_cpu / took,
        broker_cores,
        problems,
    }
}

/// Eliot's operations endpoints.
struct Http {
    agent: ureq::Agent,
    base: String,
}

impl Http {
    fn new(addr: std::net::SocketAddr) -> Http {
        Http {
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(5))
                .build(),
            base: format!("http://{addr}"),
        }
    }

    /// GET `path`, whatever the status (/health answers 503 when not healthy).
    fn get(&self, path: &str) -> Option<String> {
        match self.agent.get(&format!("{}{path}", self.base)).call() {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response.into_string().ok(),
            Err(_) => None,
        }
    }

    /// `eliot_readings_stored_total` from /metrics.
    fn stored(&self) -> Option<u64> {
        let metrics = self.get("/metrics")?;
        let line = metrics
            .lines()
            .find_map(|l| l.strip_prefix("eliot_readings_stored_total "))?;
        line.trim().parse::<f64>().ok().map(|v| v as u64)
    }

    /// The upstream connections' part of /health.
    fn upstream_health(&self) -> Value {
        self.get("/health")
            .and_then(|h| serde_json::from_str::<Value>(&h).ok())
            .map_or(Value::Null, |h| h["upstream"].clone())
    }

    fn upstream_connected(&self) -> bool {
        self.upstream_health()[0]["connected"] == true
    }
}
