//! The supervision tree at work: Eliot runs in-process while three simulated devices
//! publish readings, and a failure is injected into a processor, a device connection and
//! the store writer in turn. A processor's panic only dead-letters the message it was
//! handling (a panic tied to one message restarts nothing); the store writer is restarted;
//! a connection is closed, and its device reconnects. The message flow carries on.
//!
//! # Usage
//!
//! ```text
//! cargo run --example supervision_restarts
//! ```
//!
//! It takes about 15 seconds, then shuts Eliot down gracefully and exits 0. You will see:
//!
//! - every second, the messages acked so far, the rows in `readings` and the health status.
//!   Each failure costs the flow a fraction of a second, which the devices then catch up
//!   on: the per-second rate barely moves;
//! - a headline before each injected failure;
//! - as they happen, the tree's log events: `actor_panicked`, `actor_restarting` (with its
//!   backoff delay and the restart count in the window), `device_disconnected` and
//!   `device_connected`, `breaker_transition`, and the `message_rejected` of the message a
//!   processor was handling when it panicked (it is kept as a dead letter);
//! - a final line: published, acked, stored, and each child's restart count. Every reading
//!   published is acked and stored once, except the one the processor was handling when it
//!   panicked, which is stored as a dead letter.
//!
//! Failures are injected through the `fail` crate's fault points, which are compiled in for
//! examples and tests only.

use std::collections::HashSet;
use std::error::Error;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use eliot::app::{Ending, Listeners, Server};
use eliot::config::{Config, Sources};
use eliot_actors::{CapturedLogs, HealthProbe, HealthReport, Telemetry};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::task::JoinHandle;
use tokio::time::sleep;

const DEVICES: [&str; 3] = ["robot_001", "robot_002", "robot_003"];
/// Each device publishes a reading this often (nearly 100 messages a second each).
const PUBLISH_EVERY: Duration = Duration::from_millis(10);
/// After a connection error, a device waits this long before reconnecting.
const RECONNECT_AFTER: Duration = Duration::from_millis(200);
/// What we break, in order: (headline, fault point, action); `1*panic(msg)` panics once.
const INJECTIONS: [(&str, &str, &str); 3] = [
    (
        "a processor panics",
        "processor::process",
        "1*panic(injected processor failure)",
    ),
    (
        "a device connection panics",
        "connection::packet",
        "1*panic(injected connection failure)",
    ),
    (
        "the store writer panics mid-commit",
        "store::write",
        "1*panic(injected store failure)",
    ),
];

/// Readings handed to an MQTT client, and readings Eliot acknowledged (PUBACK).
static PUBLISHED: AtomicU64 = AtomicU64::new(0);
static ACKED: AtomicU64 = AtomicU64::new(0);
/// When the program started; every printed line shows the seconds since.
static START: OnceLock<Instant> = OnceLock::new();

/// Eliot's tree and the simulated devices share this actix `System` (the processors and
/// the store writer run on threads of their own).
#[actix_rt::main]
async fn main() -> Result<(), Box<dyn Error>> {
    START.get_or_init(Instant::now);
    silence_injected_panics();
    let data_dir = tempfile::tempdir()?;
    let db = data_dir.path().join("eliot.db");
    let logs = CapturedLogs::default();
    let server = start_eliot(data_dir.path(), &logs)?;
    let addr = server
        .local_addr()
        .ok_or("the test configuration has a device endpoint")?;
    println!("{}  Eliot listening on {addr}", stamp());
    let printer = tokio::spawn(print_events(logs));
    let probe = server.health_probe();
    // The story runs while Eliot does; when it ends, Eliot shuts down gracefully.
    let (ending, shutdown) = server.run(story(addr, &db, &probe)).await;
    let health = match ending {
        Ending::Requested(health) => health?,
        Ending::Escalated(e) => return Err(format!("{} escalated", e.child).into()),
    };
    sleep(Duration::from_millis(100)).await;
    printer.abort();
    println!("{}  Eliot shut down in {:?}", stamp(), shutdown.took);
    print_summary(&db, &health)?;
    Ok(())
}

/// Three devices publish; a failure is injected into each part in turn; then the devices
/// stop. Answers the last health report before the shutdown.
async fn story(addr: SocketAddr, db: &Path, probe: &HealthProbe) -> Result<HealthReport, String> {
    let devices: Vec<Device> = DEVICES
        .iter()
        .map(|name| Device::start(addr, name))
        .collect();
    watch_flow(probe, db, 3).await;

    for (headline, fault_point, action) in INJECTIONS {
        println!("\n{}  === {headline} ({fault_point}) ===", stamp());
        fail::cfg(fault_point, action)?;
        watch_flow(probe, db, 4).await;
        fail::remove(fault_point);
    }

    println!("\n{}  === stopping the devices, then Eliot ===", stamp());
    for device in &devices {
        device.publisher.abort();
    }
    wait_for_acks(Duration::from_secs(5)).await;
    for device in devices {
        device.disconnect().await;
    }
    probe
        .report()
        .await
        .ok_or_else(|| "no health report".to_owned())
}

/// Starts Eliot with the `test` configuration, its data in `data_dir`, on a free
/// loopback port, logging into `logs`.
fn start_eliot(data_dir: &Path, logs: &CapturedLogs) -> Result<Server, Box<dyn Error>> {
    let sources = Sources {
        env: Some("test".into()),
        ..Sources::default()
    };
    let mut config: Config = Config::load(&sources).map_err(|e| format!("{e:?}"))?;
    config.store.data_dir = data_dir.to_owned();
    let listeners = Listeners {
        devices: Some(TcpListener::bind("127.0.0.1:0")?),
        tls: None,
        http: TcpListener::bind("127.0.0.1:0")?,
    };
    let telemetry = Telemetry::new(logs.logger(), Default::default());
    Ok(Server::start(&config, listeners, &telemetry)?)
}

// ---- The tree's log events, printed as they come ----------------------------------------

/// Prints the events that tell the story of a failure; ignores the rest.
async fn print_events(logs: CapturedLogs) {
    let mut seen = 0;
    loop {
        let new = logs.records_from(seen);
        seen += new.len();
        for e in new {
            print_event(&e);
        }
        sleep(Duration::from_millis(50)).await;
    }
}

fn print_event(e: &eliot_actors::Fields) {
    let f = |key: &str| e.get(key).cloned().unwrap_or_default();
    let line = match f("event").as_str() {
        "actor_panicked" => format!("{} panicked: {}", f("actor"), f("panic")),
        "actor_restarting" => format!(
            "{} restarting in {} ms (restart {} in window): {}",
            f("child"),
            f("delay_ms"),
            f("restarts_in_window"),
            f("reason")
        ),
        "device_connected" => format!("{} connected", f("client_id")),
        "device_disconnected" => format!("{} disconnected: {}", f("client_id"), f("reason")),
        "message_rejected" => format!("{} dead letter: {}", f("client_id"), f("reason")),
        "breaker_transition" => format!("breaker {}: now {}", f("breaker"), f("to")),
        _ => return,
    };
    println!("{}  {line}", stamp());
}

// ---- Simulated devices ------------------------------------------------------------------

/// One device: a task publishing readings, and a task driving its MQTT connection.
struct Device {
    client: AsyncClient,
    publisher: JoinHandle<()>,
    connection: JoinHandle<()>,
}

impl Device {
    fn start(addr: SocketAddr, name: &'static str) -> Device {
        let mut options = MqttOptions::new(name, addr.ip().to_string(), addr.port());
        // A persistent session: after a reconnect, rumqttc re-sends what was not acked.
        options.set_clean_session(false);
        options.set_keep_alive(Duration::from_secs(5));
        let (client, eventloop) = AsyncClient::new(options, 64);
        Device {
            publisher: tokio::spawn(publish_readings(client.clone(), name)),
            connection: tokio::spawn(drive_connection(eventloop)),
            client,
        }
    }

    async fn disconnect(self) {
        let _ = self.client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), self.connection).await;
    }
}

/// A valid temperature reading (see docs/readings.md), unique per `n`: n seconds after a base.
fn reading(device: &str, n: u64) -> String {
    let ts = time::OffsetDateTime::from_unix_timestamp(1_749_132_000 + n as i64).unwrap();
    let ts = ts
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let celsius = n % 40;
    format!(
        r#"{{"device_id":"{device}","timestamp":"{ts}","sensor_type":"temperature","data":{{"celsius":{celsius}.5}}}}"#
    )
}

async fn publish_readings(client: AsyncClient, device: &str) {
    let topic = format!("devices/{device}/telemetry");
    for n in 0.. {
        let published = client.publish(&topic, QoS::AtLeastOnce, false, reading(device, n));
        if published.await.is_err() {
            return; // the event loop is gone
        }
        PUBLISHED.fetch_add(1, Relaxed);
        sleep(PUBLISH_EVERY).await;
    }
}

/// Polls the MQTT event loop, counting acks; after an error, polling again reconnects.
async fn drive_connection(mut eventloop: EventLoop) {
    // Packet ids sent and not yet acked, so that a re-sent message is counted once.
    let mut unacked = HashSet::new();
    loop {
        match eventloop.poll().await {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                unacked.insert(pkid);
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) if unacked.remove(&ack.pkid) => {
                ACKED.fetch_add(1, Relaxed);
            }
            // No session kept by the server: rumqttc drops what was unacked, so do we.
            Ok(Event::Incoming(Packet::ConnAck(ack))) if !ack.session_present => unacked.clear(),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(_) => sleep(RECONNECT_AFTER).await,
        }
    }
}

// ---- Watching ---------------------------------------------------------------------------

/// Prints, once a second for `seconds`, the acks so far, the stored rows and the health.
async fn watch_flow(probe: &HealthProbe, db: &Path, seconds: u32) {
    for _ in 0..seconds {
        let before = ACKED.load(Relaxed);
        sleep(Duration::from_secs(1)).await;
        let acked = ACKED.load(Relaxed);
        let status = probe.report().await.map(|h| format!("{:?}", h.status));
        println!(
            "{}  flow: {acked} acked (+{}/s), {} rows in readings, health {}",
            stamp(),
            acked - before,
            count_rows(db, "readings").unwrap_or(-1),
            status.unwrap_or_else(|| "unknown".into()).to_lowercase(),
        );
    }
}

/// Waits (at most `within`) until every published reading is acked.
async fn wait_for_acks(within: Duration) {
    let deadline = Instant::now() + within;
    while ACKED.load(Relaxed) < PUBLISHED.load(Relaxed) && Instant::now() < deadline {
        sleep(Duration::from_millis(20)).await;
    }
}

fn count_rows(db: &Path, table: &str) -> rusqlite::Result<i64> {
    let db = rusqlite::Connection::open(db)?;
    db.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
}

fn print_summary(db: &Path, health: &HealthReport) -> rusqlite::Result<()> {
    let restarts: Vec<String> = health
        .children
        .iter()
        .map(|c| format!("{} {}", c.name, c.restarts))
        .collect();
    println!(
        "{}  published {}, acked {}, stored {} readings + {} dead letter(s); restarts: {}",
        stamp(),
        PUBLISHED.load(Relaxed),
        ACKED.load(Relaxed),
        count_rows(db, "readings")?,
        count_rows(db, "dead_letters")?,
        restarts.join(", ")
    );
    Ok(())
}

fn stamp() -> String {
    let elapsed = START.get_or_init(Instant::now).elapsed();
    format!("{:5.1}s", elapsed.as_secs_f64())
}

/// The default panic hook prints every panic to stderr; the injected ones are expected,
/// and shown by their `actor_panicked` events.
fn silence_injected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info
            .payload_as_str()
            .is_some_and(|m| m.starts_with("injected"))
        {
            default(info);
        }
    }));
}
