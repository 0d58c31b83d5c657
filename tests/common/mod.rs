//! The integration test harness: Eliot in-process on a free loopback port with a
//! temporary data directory, and real MQTT clients (rumqttc) talking to it over TCP.
//!
//! Set `ELIOT_TEST_LOG=1` to see Eliot's logs while a test runs.

#![allow(dead_code)]

pub mod certs;
pub mod checker;
pub mod drill_device;
pub mod locks;
pub mod mosquitto;
pub mod outside;
pub mod process;
pub mod scripted;
pub mod shell_env;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use eliot::app::{Ending, Listeners, Server};
use eliot::config::{Config, Sources};
use eliot_actors::{Escalation, HealthReport, Metrics, ShutdownReport, Telemetry, Transport};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use slog::{o, Drain, Logger};
use tokio::sync::{mpsc, oneshot};

enum Command {
    Health(oneshot::Sender<HealthReport>),
    Adopt(Transport),
    Stop(oneshot::Sender<ShutdownReport>),
}

/// What ended an escalated run: the escalation, and how the shutdown after it went.
pub type Escalated = (Escalation, ShutdownReport);

/// A running Eliot. Stopped (gracefully) when dropped.
pub struct Eliot {
    pub addr: SocketAddr,
    /// Where `/health`, `/ready` and `/metrics` answer.
    pub http_addr: SocketAddr,
    /// Where devices connect over TLS, when `tls.enabled`.
    pub tls_addr: Option<SocketAddr>,
    pub config: Config,
    data_dir: tempfile::TempDir,
    commands: mpsc::UnboundedSender<Command>,
    /// Resolves if a child exceeds its restart intensity (the tree then shuts down).
    escalated: Option<oneshot::Receiver<Escalated>>,
    /// What Eliot's events counted.
    pub metrics: Arc<Metrics>,
    /// Replays dead letters in this Eliot (what the HTTP API's replay routes call).
    pub replayer: eliot_actors::Replayer,
    /// Purges devices' readings in this Eliot (what `DELETE /devices/{id}?purge` calls).
    pub purger: eliot_actors::Purger,
    thread: Option<JoinHandle<()>>,
}

pub fn test_config() -> Config {
    let sources = Sources {
        env: Some("test".into()),
        ..Sources::default()
    };
    Config::load(&sources).expect("the test configuration loads")
}

fn logger() -> Logger {
    if std::env::var_os("ELIOT_TEST_LOG").is_some() {
        let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
        let drain = slog_term::FullFormat::new(decorator).build().fuse();
        Logger::root(drain, o!())
    } else {
        Logger::root(slog::Discard, o!())
    }
}

impl Eliot {
    pub fn start() -> Eliot {
        Eliot::start_with(|_| {})
    }

    /// Starts Eliot with the test configuration, changed by `tweak`.
    pub fn start_with(tweak: impl FnOnce(&mut Config)) -> Eliot {
        Eliot::start_logged(tweak, logger())
    }

    /// Like `start_with`, logging to `log`. Eliot runs on a thread of its own, started
    /// and stopped by `eliot::app::Server`, as the binary runs it.
    pub fn start_logged(tweak: impl FnOnce(&mut Config), log: Logger) -> Eliot {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = test_config();
        config.store.data_dir = data_dir.path().to_owned();
        tweak(&mut config);
        let bind = || std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let listeners = Listeners {
            devices: config.mqtt.enabled.then(bind),
            tls: config.tls.enabled.then(bind),
            http: bind(),
        };
        let tls_addr = listeners.tls.as_ref().map(|l| l.local_addr().unwrap());
        // Without a device endpoint, an address nothing listens on.
        let addr = listeners
            .devices
            .as_ref()
            .map_or(SocketAddr::from(([127, 0, 0, 1], 0)), |l| {
                l.local_addr().unwrap()
            });
        let http_addr = listeners.http.local_addr().unwrap();
        let (commands, inbox) = mpsc::unbounded_channel();
        let (started, ready) = std::sync::mpsc::channel();
        let (escalate, escalated) = oneshot::channel();
        let telemetry = Telemetry::new(log, Arc::new(Metrics::new()));
        let metrics = telemetry.metrics().clone();
        let thread_config = config.clone();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = match Server::start(&thread_config, listeners, &telemetry) {
                    Ok(server) => server,
                    Err(e) => return started.send(Err(e.to_string())).unwrap(),
                };
                started
                    .send(Ok((server.replayer(), server.purger())))
                    .unwrap();
                let requests = serve_commands(inbox, &server);
                match server.run(requests).await {
                    (Ending::Requested(Some(reply)), report) => {
                        let _ = reply.send(report);
                    }
                    (Ending::Requested(None), _) => {}
                    (Ending::Escalated(escalation), report) => {
                        let _ = escalate.send((escalation, report));
                    }
                }
            })
        });
        let (replayer, purger) = ready.recv().unwrap().expect("Eliot starts");
        Eliot {
            addr,
            http_addr,
            tls_addr,
            config,
            data_dir,
            commands,
            escalated: Some(escalated),
            metrics,
            replayer,
            purger,
            thread: Some(thread),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.path().join("eliot.db")
    }

    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db_path()).expect("the database opens")
    }

    pub fn count(&self, table: &str) -> i64 {
        self.db()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    /// Every dead letter as (topic, client_id, reason, payload).
    pub fn dead_letters(&self) -> Vec<DeadLetterRow> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT topic, client_id, reason, payload FROM dead_letters ORDER BY id")
            .unwrap();
        stmt.query_map([], |r| {
            Ok(DeadLetterRow {
                topic: r.get(0)?,
                client_id: r.get(1)?,
                reason: r.get(2)?,
                payload: r.get(3)?,
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    /// Hands Eliot a device transport other than a TCP socket it accepted itself.
    pub fn adopt(&self, transport: Transport) {
        self.commands.send(Command::Adopt(transport)).unwrap();
    }

    pub async fn health(&self) -> HealthReport {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Health(reply)).unwrap();
        answer.await.unwrap()
    }

    /// Waits (at most `within`) for a child to exceed its restart intensity, which shuts
    /// the tree down.
    pub async fn escalation(&mut self, within: Duration) -> Escalated {
        let escalated = self.escalated.take().expect("awaited once");
        let outcome = tokio::time::timeout(within, escalated)
            .await
            .expect("an escalation in time")
            .expect("the tree reports it");
        self.join();
        outcome
    }

    /// Graceful shutdown, as on SIGTERM; returns how it went.
    pub async fn stop(mut self) -> ShutdownReport {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Stop(reply)).unwrap();
        let report = answer.await.unwrap();
        self.join();
        report
    }

    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers health requests until a stop is asked for (its reply channel is the result)
/// or the test dropped its handle (`None`).
fn serve_commands(
    mut inbox: mpsc::UnboundedReceiver<Command>,
    server: &Server,
) -> impl std::future::Future<Output = Option<oneshot::Sender<ShutdownReport>>> + 'static {
    let probe = server.health_probe();
    let adopter = server.adopter();
    async move {
        loop {
            match inbox.recv().await? {
                Command::Health(reply) => {
                    let _ = reply.send(probe.report().await.expect("health monitor"));
                }
                Command::Adopt(transport) => adopter
                    .as_ref()
                    .expect("a device endpoint to adopt devices")
                    .adopt(transport),
                Command::Stop(reply) => return Some(reply),
            }
        }
    }
}

impl Drop for Eliot {
    fn drop(&mut self) {
        let (reply, _) = oneshot::channel();
        if self.commands.send(Command::Stop(reply)).is_ok() {
            self.join();
        }
    }
}

#[derive(Debug)]
pub struct DeadLetterRow {
    pub topic: String,
    pub client_id: String,
    pub reason: String,
    pub payload: Vec<u8>,
}

pub const ORIGINAL_EXAMPLE: &str = r#"{
  "device_id": "robot_001",
  "timestamp": "2025-06-05T14:30:00Z",
  "sensor_type": "gps",
  "data": { "latitude": 37.7749, "longitude": -122.4194, "accuracy": 3.2 }
}"#;

pub fn topic(device: &str) -> String {
    format!("devices/{device}/telemetry")
}

/// Unix time of `reading(_, 0)`.
pub const READING_EPOCH: i64 = 1_749_132_000;

/// A valid reading for `device`, unique per `n` (its timestamp is n seconds after a base).
pub fn reading(device: &str, n: u64) -> String {
    let ts = time::OffsetDateTime::from_unix_timestamp(READING_EPOCH + n as i64).unwrap();
    let ts = ts
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    format!(
        r#"{{"device_id":"{device}","timestamp":"{ts}","sensor_type":"temperature","data":{{"celsius":{}.5}}}}"#,
        n % 40
    )
}

/// A real MQTT client on its own event-loop task, counting the acks it receives.
pub struct Device {
    pub client: AsyncClient,
    /// Receives every event the event loop produced, in order, until it ends.
    pub events: mpsc::UnboundedReceiver<Result<Event, String>>,
}

pub fn options(addr: SocketAddr, client_id: &str) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(1024 * 1024, 1024 * 1024);
    options
}

impl Device {
    pub fn connect(addr: SocketAddr, client_id: &str) -> Device {
        Device::connect_with(options(addr, client_id))
    }

    pub fn connect_with(options: MqttOptions) -> Device {
        let (client, eventloop) = AsyncClient::new(options, 256);
        Device {
            client,
            events: spawn_event_loop(eventloop),
        }
    }

    /// Publishes every payload on the device's topic at `qos`, then waits until each is
    /// acked (QoS 1) or written (QoS 0). Returns how many PUBACKs arrived.
    pub async fn publish_all(&mut self, device: &str, payloads: Vec<String>, qos: QoS) -> usize {
        let expected = payloads.len();
        let client = self.client.clone();
        let topic = topic(device);
        tokio::spawn(async move {
            for payload in payloads {
                client.publish(&topic, qos, false, payload).await.unwrap();
            }
        });
        let (mut sent, mut acked) = (0, 0);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while (qos == QoS::AtMostOnce && sent < expected)
            || (qos != QoS::AtMostOnce && acked < expected)
        {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .expect("acks within 60 s")
                .expect("the event loop runs");
            match event.expect("no connection error") {
                Event::Incoming(Packet::PubAck(_)) => acked += 1,
                Event::Outgoing(Outgoing::Publish(_)) => sent += 1,
                _ => {}
            }
        }
        acked
    }

    /// Waits for the first event matching `want`, or fails after `within`.
    pub async fn expect_event(
        &mut self,
        within: Duration,
        mut want: impl FnMut(&Result<Event, String>) -> bool,
    ) -> Result<Event, String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .expect("the awaited event arrives in time")
                .expect("the event loop runs");
            if want(&event) {
                return event;
            }
        }
    }

    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
    }
}

/// Polls the event loop on its own task (never await client calls on this task) and
/// forwards events; stops at the first connection error.
fn spawn_event_loop(mut eventloop: EventLoop) -> mpsc::UnboundedReceiver<Result<Event, String>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(event) => {
                    if tx.send(Ok(event)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            }
        }
    });
    rx
}

/// Polls `check` every 20 ms until it holds (true) or `within` has passed (false).
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    eventually_async(within, || std::future::ready(check())).await
}

/// `eventually`, for a check that has to wait itself (an HTTP request, say).
pub async fn eventually_async<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `check` every 20 ms for all of `during`: false as soon as it fails once.
pub async fn throughout(during: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + during;
    while tokio::time::Instant::now() < deadline {
        if !check() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

/// The value of the unlabelled sample `name` in Eliot's `/metrics`, if it is there.
pub async fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    get(addr, "/metrics").await.1.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// `GET path` on Eliot's HTTP port: the status and the body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request("GET", addr, path).await
}

/// `method path` on Eliot's HTTP port, with a real HTTP client (on a blocking thread).
pub async fn request(method: &'static str, addr: SocketAddr, path: &str) -> (u16, String) {
    let url = format!("http://{addr}{path}");
    tokio::task::spawn_blocking(move || {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(10))
            .build();
        match agent.request(method, &url).call() {
            Ok(response) => (response.status(), response.into_string().unwrap()),
            Err(ureq::Error::Status(code, response)) => (code, response.into_string().unwrap()),
            Err(e) => panic!("{method} {url}: {e}"),
        }
    })
    .await
    .unwrap()
}

/// `GET path`, its body parsed as JSON.
pub async fn json(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = get(addr, path).await;
    (status, serde_json::from_str(&body).expect("a JSON body"))
}
