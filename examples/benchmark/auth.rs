//! `auth`: what device identity costs, against plain TCP without authentication
//! measured in the same run:
//!
//! - connections per second (CONNECT to CONNACK, 8 at a time, each closed after its
//!   CONNACK): plain, a password (an Argon2 check per connection), TLS, mutual TLS;
//! - the steady QoS 1 rate of 20 devices, pipelined: plain, and over TLS;
//! - rate limits: the publish→PUBACK p99 of 20 devices at 50 msg/s each, alone and while
//!   one more device floods past its limit (`auth.device_messages_per_second = 100`).
//!   Target: the p99 with the flooder within 10 % of the p99 without.
//!
//! Eliot runs as a process with a configuration file written here; the certificates are
//! made here with rcgen, the devices provisioned with `eliot device add`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::{
    AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS, TlsConfiguration, Transport,
};

use crate::latency::{over_runs, Percentiles};
use crate::pki::Pki;
use crate::procs::{free_addrs, Programs};
use crate::report::{Figure, Report, Row};
use crate::target::Goal;

/// The p99 with a flooding device, over the p99 without, at most.
const TARGET_FLOOD_P99_RATIO: f64 = 1.10;

pub struct Scale {
    /// Connections per measurement, and devices provisioned for them.
    pub connects: usize,
    pub devices: usize,
    /// Messages per device in the steady-rate measurement.
    pub per_device: u64,
    /// How long the paced devices publish, alone and beside the flooder.
    pub paced_for: Duration,
}

pub const FULL: Scale = Scale {
    connects: 1_000,
    devices: 50,
    per_device: 2_000,
    paced_for: Duration::from_secs(15),
};

pub const QUICK: Scale = Scale {
    connects: 40,
    devices: 8,
    per_device: 100,
    paced_for: Duration::from_secs(2),
};

pub fn device(d: usize) -> String {
    format!("bench_{d:04}")
}

/// How a device connects in one measurement.
#[derive(Clone, Copy, PartialEq)]
enum Way {
    Plain,
    Password,
    Tls,
    MutualTls,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Plain => "plain TCP, no authentication",
            Way::Password => "plain TCP, password",
            Way::Tls => "TLS, no authentication",
            Way::MutualTls => "mutual TLS (client certificate)",
        }
    }
}

/// Eliot with device identity on: `auth.mode` as `way` needs, and a TLS listener.
struct Eliot {
    child: Child,
    addr: SocketAddr,
    tls: SocketAddr,
    secrets: Vec<String>,
    _data: tempfile::TempDir,
}

impl Drop for Eliot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Eliot {
    fn start(programs: &Programs, pki: &Pki, way: Way, extra: &str, devices: usize) -> Eliot {
        let data = tempfile::tempdir().unwrap();
        let [addr, tls, http] = free_addrs();
        let mode = match way {
            Way::Password => "password",
            Way::MutualTls => "certificate",
            Way::Plain | Way::Tls => "none",
        };
        let config = data.path().join("bench.toml");
        std::fs::write(
            &config,
            format!(
                "[auth]\nmode = \"{mode}\"\n{extra}\n[tls]\nenabled = true\nlisten = \"{tls}\"\n\
                 cert_file = \"{}\"\nkey_file = \"{}\"\nclient_ca_file = \"{}\"\n",
                pki.server.0.display(),
                pki.server.1.display(),
                pki.dir.path().join("ca.pem").display()
            ),
        )
        .unwrap();
        let env = |command: &mut Command| {
            command
                .env("ELIOT_ENV", "dev")
                .env("ELIOT_LOG_LEVEL", "warning")
                .env("ELIOT_DATA_DIR", data.path())
                .env("ELIOT_MQTT_ADDR", addr.to_string())
                .env("ELIOT_HTTP_ADDR", http.to_string())
                .arg("--config")
                .arg(&config);
        };
        let secrets = match way {
            Way::Password => (0..devices)
                .map(|d| provision(&programs.eliot, &[&device(d)], &env))
                .collect(),
            // A certificate logs in only for a device in `devices`; it has no secret.
            Way::MutualTls => {
                for d in 0..devices {
                    provision(&programs.eliot, &["--certificate", &device(d)], &env);
                }
                Vec::new()
            }
            Way::Plain | Way::Tls => Vec::new(),
        };
        let mut command = Command::new(&programs.eliot);
        env(&mut command);
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("eliot starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "eliot listens");
            std::thread::sleep(Duration::from_millis(10));
        }
        Eliot {
            child,
            addr,
            tls,
            secrets,
            _data: data,
        }
    }

    /// Options for device `d` connecting the way of this measurement.
    fn options(&self, pki: &Pki, way: Way, d: usize) -> MqttOptions {
        let port = match way {
            Way::Plain | Way::Password => self.addr.port(),
            Way::Tls | Way::MutualTls => self.tls.port(),
        };
        let mut o = MqttOptions::new(device(d), "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30));
        match way {
            Way::Password => {
                o.set_credentials(device(d), self.secrets[d].clone());
            }
            Way::Tls => {
                o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                    pki.client(None),
                )));
            }
            Way::MutualTls => {
                let config = pki.client(Some(d));
                o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
            }
            Way::Plain => {}
        }
        o
    }
}

/// `eliot device add ARGS` on the data directory `env` sets; the secret from its last line.
fn provision(eliot: &Path, args: &[&str], env: &dyn Fn(&mut Command)) -> String {
    let mut command = Command::new(eliot);
    env(&mut command);
    let out = command.args(["device", "add"]).args(args).output().unwrap();
    assert!(out.status.success(), "eliot device add: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_owned()
}

/// Connects, waits for the CONNACK, and drops the connection; true when accepted.
async fn connect_once(options: MqttOptions) -> bool {
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    let accepted = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    drop(client);
    accepted
}

/// `connects` connections, 8 at a time, round the devices: connections per second.
async fn connection_rate(eliot: &Eliot, pki: &Pki, way: Way, scale: &Scale) -> f64 {
    let started = Instant::now();
    let mut accepted = 0;
    for round in (0..scale.connects).collect::<Vec<_>>().chunks(8) {
        let tasks: Vec<_> = round
            .iter()
            .map(|i| tokio::spawn(connect_once(eliot.options(pki, way, i % scale.devices))))
            .collect();
        for task in tasks {
            accepted += usize::from(task.await.unwrap());
        }
    }
    match accepted == scale.connects {
        true => scale.connects as f64 / started.elapsed().as_secs_f64(),
        false => f64::NAN,
    }
}

/// Every device publishes `per_device` QoS 1 readings as fast as acks allow: msg/s.
async fn steady_rate(eliot: &Eliot, pki: &Pki, way: Way, scale: &Scale) -> f64 {
    let started = Instant::now();
    let devices: Vec<_> = (0..scale.devices)
        .map(|d| {
            tokio::spawn(publish(
                eliot.options(pki, way, d),
                d,
                scale.per_device,
                None,
            ))
        })
        .collect();
    let mut acked = 0;
    for d in devices {
        acked += d.await.unwrap().0;
    }
    match acked == scale.devices as u64 * scale.per_device {
        true => acked as f64 / started.elapsed().as_secs_f64(),
        false => f64::NAN,
    }
}

fn reading(d: usize, n: u64) -> String {
    let ts = 1_780_000_000 + n as i64;
    let ts = time::OffsetDateTime::from_unix_timestamp(ts).unwrap();
    format!(
        r#"{{"device_id":"{}","timestamp":"{}","sensor_type":"temperature","data":{{"celsius":21.5}}}}"#,
        device(d),
        eliot_actors::format_utc(ts)
    )
}

/// Publishes `count` readings of device `d` at QoS 1: pipelined (100 in flight) without
/// `every`, else one every `every`, each timed to its PUBACK. Answers (acked, latencies µs).
async fn publish(
    options: MqttOptions,
    d: usize,
    count: u64,
    every: Option<Duration>,
) -> (u64, Vec<u32>) {
    let mut options = options;
    options.set_inflight(100);
    let (client, mut eventloop) = AsyncClient::new(options, 200);
    let topic = format!("devices/{}/telemetry", device(d));
    let publisher = tokio::spawn(async move {
        let mut next = tokio::time::Instant::now();
        for n in 0..count {
            if let Some(every) = every {
                next += every;
                tokio::time::sleep_until(next).await;
            }
            if client
                .publish(&topic, QoS::AtLeastOnce, false, reading(d, n))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let (mut acked, mut sent_at, mut latencies) = (0, HashMap::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while acked < count {
        match tokio::time::timeout_at(deadline, eventloop.poll()).await {
            Ok(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => {
                sent_at.insert(pkid, Instant::now());
            }
            Ok(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                acked += 1;
                if let Some(at) = sent_at.remove(&ack.pkid) {
                    latencies.push(at.elapsed().as_micros().min(u32::MAX as u128) as u32);
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    publisher.abort();
    (acked, latencies)
}

/// The p99 of `scale.devices` devices at 50 msg/s each, with a device flooding past its
/// limit beside them or not.
async fn paced_p99(eliot: &Eliot, pki: &Pki, scale: &Scale, flood: bool) -> Option<Percentiles> {
    let count = (scale.paced_for.as_secs_f64() * 50.0) as u64;
    let flooder = flood.then(|| {
        let options = eliot.options(pki, Way::Plain, scale.devices);
        tokio::spawn(publish(options, scale.devices, 1_000_000, None))
    });
    let paced: Vec<_> = (0..scale.devices)
        .map(|d| {
            let options = eliot.options(pki, Way::Plain, d);
            tokio::spawn(publish(options, d, count, Some(Duration::from_millis(20))))
        })
        .collect();
    let mut samples = Vec::new();
    for p in paced {
        samples.extend(p.await.unwrap().1);
    }
    if let Some(f) = flooder {
        f.abort();
    }
    Percentiles::of_us(samples)
}

/// Runs every measurement `runs` times and adds the rows, a section and the target.
pub fn run(programs: &Programs, scale: &Scale, runs: usize, report: &mut Report) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pki = Pki::new(scale.devices + 1);
    let ways = [Way::Plain, Way::Password, Way::Tls, Way::MutualTls];
    let mut connections: Vec<(Way, Figure)> = Vec::new();
    let mut steady: Vec<(Way, Figure)> = Vec::new();
    for way in ways {
        let (mut conn, mut rate) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            // Every client here comes from 127.0.0.1, where a fleet's devices come from
            // many addresses: one address's cap on logins waiting for a check (4) would
            // refuse half of each round of 8, and measure that cap, not a login's cost.
            let many_addresses = "max_waiting_logins_per_address = 64";
            let eliot = Eliot::start(programs, &pki, way, many_addresses, scale.devices);
            conn.push(runtime.block_on(connection_rate(&eliot, &pki, way, scale)));
            if matches!(way, Way::Plain | Way::Tls) {
                rate.push(runtime.block_on(steady_rate(&eliot, &pki, way, scale)));
            }
        }
        connections.push((way, Figure::of(conn)));
        if !rate.is_empty() {
            steady.push((way, Figure::of(rate)));
        }
    }
    let limit = "new_connections_per_second = 100000\ndevice_messages_per_second = 100";
    let (mut alone, mut flooded) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let eliot = Eliot::start(programs, &pki, Way::Plain, limit, 0);
        alone.push(runtime.block_on(paced_p99(&eliot, &pki, scale, false)));
        flooded.push(runtime.block_on(paced_p99(&eliot, &pki, scale, true)));
    }
    let ([_, alone_p99, _], _) = over_runs(&alone);
    let ([_, flooded_p99, _], _) = over_runs(&flooded);

    let baseline = connections[0].1.median;
    let mut md = String::from(
        "### Device identity: what authentication costs\n\n\
         | way in | connections/s | vs plain | steady QoS 1 msg/s |\n|---|---|---|---|\n",
    );
    for (way, figure) in &connections {
        let rate = match steady.iter().find(|(w, _)| w == way) {
            Some((_, figure)) => figure.show(0),
            // Identity is checked at CONNECT only: the rest of the session costs the same.
            None if *way == Way::Password => "as plain TCP".to_owned(),
            None => "as TLS".to_owned(),
        };
        md += &format!(
            "| {} | {} | {:.2}× | {rate} |\n",
            way.name(),
            figure.show(0),
            figure.median / baseline
        );
        let mut row = Row::throughput(&format!("auth: connect, {}", way.name()), "", *figure);
        row.in_chart = false;
        if figure.median.is_nan() {
            row.failure = Some("connections refused or timed out".into());
        }
        report.add(row);
    }
    md += &format!(
        "\nRate limits: p99 publish→PUBACK of {} devices at 50 msg/s, alone {} ms, beside a \
         device flooding past `auth.device_messages_per_second = 100`: {} ms.\n",
        scale.devices,
        alone_p99.show(1),
        flooded_p99.show(1)
    );
    report.section(md);
    report.ratio(
        "auth: paced devices' p99 beside a rate-limited flooder / alone",
        flooded_p99.median / alone_p99.median,
        Goal::AtMost(TARGET_FLOOD_P99_RATIO),
    );
}
