//! The command line, checked once and turned into the `Plan` every device follows.

use std::time::Duration;

use clap::Parser;
use humantime_serde::re::humantime;

use crate::readings::unix_micros;

/// Largest `--payload-size`: below Eliot's 256 KiB packet limit.
const MAX_PAYLOAD_SIZE: usize = 200_000;
/// Longest device id Eliot accepts.
const MAX_DEVICE_ID_LEN: usize = 64;

/// Simulates a fleet of devices publishing telemetry readings to Eliot over MQTT.
#[derive(Parser)]
#[command(version)]
pub struct Options {
    /// The MQTT server, as host:port.
    #[arg(long, default_value = "127.0.0.1:1883")]
    pub addr: String,
    /// Devices to simulate, each with its own connection.
    #[arg(long, default_value_t = 10)]
    pub devices: u64,
    /// Readings per second per device; 0 publishes as fast as the in-flight window allows.
    #[arg(long, default_value_t = 1.0, value_parser = parse_rate)]
    pub rate: f64,
    /// QoS of the readings: 0 or 1.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub qos: u8,
    /// MQTT version: 4 (3.1.1) or 5.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(4..=5))]
    pub mqtt_version: u8,
    /// Approximate payload size in bytes, reached by padding `data` with a `note` string
    /// (default: no padding, about 150 bytes).
    #[arg(long)]
    pub payload_size: Option<usize>,
    /// Fraction (0 to 1) of messages sent as invalid JSON; Eliot stores them as dead letters
    /// (and refuses a device for a while after 50 of its messages were refused within 60 s).
    #[arg(long, default_value_t = 0.0, value_parser = parse_fraction)]
    pub malformed: f64,
    /// How long each device publishes, from its start (e.g. 30s, 2m). Default 10s, unless
    /// --count is given.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Readings each device publishes (with --duration too: whichever ends first).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Device ids are `{prefix}-00000`, `{prefix}-00001`, ...; they are the client ids too.
    #[arg(long, default_value = "sim")]
    pub client_prefix: String,
    /// User name sent in CONNECT.
    #[arg(long)]
    pub username: Option<String>,
    /// Password sent in CONNECT (never printed).
    #[arg(long, requires = "username")]
    pub password: Option<String>,
    /// Print only the final summary, as one JSON object on standard output.
    #[arg(long)]
    pub json: bool,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
    /// Connections opened per second at the start.
    #[arg(long, default_value_t = 500.0, value_parser = parse_positive)]
    pub connect_rate: f64,
    /// rumqttc's in-flight window: QoS 1 messages a device may have unacked.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..))]
    pub inflight: u16,
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
pub enum Qos {
    AtMostOnce,
    AtLeastOnce,
}

/// MQTT protocol version of the connections.
#[derive(Clone, Copy)]
pub enum Version {
    V311,
    V5,
}

impl Version {
    /// From the protocol level, as `--mqtt-version` and the summary give it: 4 or 5.
    pub fn from_level(level: u8) -> Version {
        if level == 5 {
            Version::V5
        } else {
            Version::V311
        }
    }

    /// The protocol level: 4 or 5.
    pub fn level(self) -> u8 {
        match self {
            Version::V311 => 4,
            Version::V5 => 5,
        }
    }

    /// The name people know it by: `3.1.1` or `5`.
    pub fn name(self) -> &'static str {
        match self {
            Version::V311 => "3.1.1",
            Version::V5 => "5",
        }
    }
}

/// What every device does, checked and derived from the options once.
pub struct Plan {
    /// Server host, as rumqttc takes it.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// QoS of the readings.
    pub qos: Qos,
    /// MQTT version of the connections.
    pub version: Version,
    /// Pause between two readings of one device; `None` (`--rate 0`): as fast as acks allow.
    pub interval: Option<Duration>,
    /// Readings per device at most (`--count`).
    pub count: Option<u64>,
    /// How long each device publishes (`--duration`, or 10 s when neither limit is given).
    pub duration: Option<Duration>,
    /// Target payload size in bytes (`--payload-size`).
    pub payload_size: Option<usize>,
    /// Fraction of messages sent as invalid JSON.
    pub malformed: f64,
    /// User name and password for CONNECT.
    pub credentials: Option<(String, String)>,
    /// rumqttc's in-flight window.
    pub inflight: u16,
    /// Seed of every random choice; each device derives its own generator from it.
    pub seed: u64,
}

impl Plan {
    pub fn from_options(options: &Options) -> Result<Plan, String> {
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
            version: Version::from_level(options.mqtt_version),
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

/// The id of the device numbered `index`: `{prefix}-00042`.
pub fn device_id(prefix: &str, index: u64) -> String {
    format!("{prefix}-{index:05}")
}

/// The line printed on standard error before the run (not with `--json`).
pub fn describe_run(options: &Options, plan: &Plan) -> String {
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
        plan.version.name(),
        options.qos,
        limits.join(", at most ")
    )
}
