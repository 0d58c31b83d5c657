//! The `[upstream]` section: which broker to subscribe to, how, and to what.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::filter::Filter;
use crate::secret::Secret;
use crate::settings::Problems;

/// MQTT version spoken to the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// MQTT 5: session expiry, receive maximum, shared subscriptions, reason codes.
    V5,
    /// MQTT 3.1.1, for brokers that speak nothing newer.
    V311,
}

/// The `[upstream]` section. Empty strings mean "not set".
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSettings {
    /// Subscribe to `host`; also turned on by setting `MQTT_BROKER_HOST`.
    pub enabled: bool,
    pub host: String,
    /// A `u32`, so that an out-of-range port is named as such by `check-config`.
    pub port: u32,
    pub protocol: Protocol,
    pub tls: bool,
    /// PEM CA certificate(s) the broker's certificate must chain to.
    pub ca_file: PathBuf,
    /// Trust the operating system's roots instead of `ca_file` (a public broker).
    pub system_roots: bool,
    /// PEM client certificate (chain) and its private key, for mutual TLS.
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
    pub username: String,
    pub password: Secret,
    /// Connection `n` uses the client id `<client_id>-<n>`: stable across restarts, so
    /// that the broker keeps its session (and the messages queued in it).
    pub client_id: String,
    /// Connections to the broker, each with every subscription (use a shared group to
    /// split the stream between them).
    pub connections: usize,
    /// Topic filters subscribed at QoS 1. `$share/<group>/<filter>` splits the stream
    /// among every subscriber of the group (MQTT 5; several Eliot nodes).
    pub topics: Vec<String>,
    #[serde(with = "humantime_serde")]
    pub keepalive: Duration,
    /// How long the broker keeps the session (and queues for it) while Eliot is away (v5).
    #[serde(with = "humantime_serde")]
    pub session_expiry: Duration,
    /// Unacked messages the broker may send each connection (the v5 Receive Maximum;
    /// 3.1.1 brokers have their own setting, e.g. Mosquitto's `max_inflight_messages`).
    /// Also the most messages a connection holds between receipt and ack.
    pub receive_maximum: u16,
    /// Largest packet accepted from the broker, bytes.
    pub max_packet_size: u32,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Reconnect delays: from `backoff_initial`, doubling (±20 %) up to `backoff_max`.
    #[serde(with = "humantime_serde")]
    pub backoff_initial: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
}

fn set(path: &Path) -> Option<&Path> {
    (!path.as_os_str().is_empty()).then_some(path)
}

impl UpstreamSettings {
    pub fn ca_file(&self) -> Option<&Path> {
        set(&self.ca_file)
    }

    pub fn client_cert_file(&self) -> Option<&Path> {
        set(&self.client_cert_file)
    }

    pub fn client_key_file(&self) -> Option<&Path> {
        set(&self.client_key_file)
    }

    /// The client id of connection `index`.
    pub(crate) fn client_id_of(&self, index: usize) -> String {
        format!("{}-{index}", self.client_id)
    }

    /// The filters as configured, parsed; bad ones are left to `validate`.
    pub fn filters(&self) -> Vec<Filter> {
        self.topics
            .iter()
            .filter_map(|t| Filter::parse(t).ok())
            .collect()
    }

    /// Checks the keys alone; the TLS files are read by `tls::client_config`.
    pub fn validate(&self, problems: &mut Problems) {
        if !self.enabled {
            return;
        }
        problems.check(
            !self.host.is_empty(),
            "host",
            "expected the broker's host name or address (or set MQTT_BROKER_HOST)",
        );
        problems.check(
            (1..=65535).contains(&self.port),
            "port",
            "expected a port from 1 to 65535",
        );
        problems.check(
            (1..=64).contains(&self.connections),
            "connections",
            "expected 1 to 64",
        );
        problems.check(
            !self.client_id.is_empty() && self.client_id.len() <= 200,
            "client_id",
            "expected 1 to 200 bytes: a persistent session needs a stable, non-empty id",
        );
        problems.check(
            !self.topics.is_empty(),
            "topics",
            "expected at least one topic filter",
        );
        for topic in &self.topics {
            if let Err(e) = Filter::parse(topic) {
                problems.add("topics", format!("`{topic}`: {e}"));
            }
        }
        problems.at_least("receive_maximum", self.receive_maximum, 1);
        problems.at_least("max_packet_size", self.max_packet_size, 1024);
        problems.check(
            self.keepalive.is_zero() || self.keepalive >= Duration::from_secs(5),
            "keepalive",
            "expected 0 (off) or at least 5s",
        );
        if self.protocol == Protocol::V5 {
            problems.check(
                (Duration::from_secs(1)..=Duration::from_secs(u32::MAX.into()))
                    .contains(&self.session_expiry),
                "session_expiry",
                "expected 1s to 136 years: with none, the broker forgets what Eliot missed",
            );
        }
        problems.positive("connect_timeout", self.connect_timeout);
        problems.positive("backoff_initial", self.backoff_initial);
        problems.ordered(
            ("backoff_initial", self.backoff_initial),
            ("backoff_max", self.backoff_max),
        );
        problems.check(
            self.password.is_empty() || !self.username.is_empty(),
            "password",
            "a password needs a username (MQTT sends none without one)",
        );
        self.validate_tls(problems);
    }

    fn validate_tls(&self, problems: &mut Problems) {
        let client_cert = self.client_cert_file().is_some();
        let client_key = self.client_key_file().is_some();
        if !self.tls {
            let files = self.ca_file().is_some() || client_cert || client_key;
            problems.check(
                !files,
                "tls",
                "certificate files are set but tls = false: set tls = true to use them",
            );
            return;
        }
        problems.check(
            self.ca_file().is_some() || self.system_roots,
            "ca_file",
            "TLS needs the CA that signed the broker's certificate (or MQTT_CA_FILE); \
             to trust the system's roots instead, set system_roots = true",
        );
        problems.check(
            !(self.ca_file().is_some() && self.system_roots),
            "system_roots",
            "choose one: ca_file or system_roots",
        );
        problems.check(
            client_cert == client_key,
            if client_cert {
                "client_key_file"
            } else {
                "client_cert_file"
            },
            "mutual TLS needs both client_cert_file and client_key_file",
        );
    }
}
