//! Configuration: the embedded `config/default.toml`, an overlay chosen by `ELIOT_ENV`,
//! an optional file of one's own, then environment variables, merged in that order.
//!
//! Every key lives in `config/default.toml` (the one place defaults are kept); the
//! structs here say what each key means. An unknown key or a bad value is an error that
//! names the layer it came from, the key, and what was expected.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use eliot_actors::{
    AlertSettings, AnomalySettings, AuthSettings, BreakersSettings, EndpointSettings,
    FleetSettings, HealthSettings, IngestSettings, Problems, ProcessorSettings, ReplaySettings,
    RestartSettings, StoreSettings, TlsSettings, TreeSettings, UpstreamSettings,
};
use serde::{Deserialize, Serialize};

use crate::http::{v1, ApiSettings, HttpSettings};

const DEFAULT: &str = include_str!("../config/default.toml");
/// The overlays `ELIOT_ENV` may name, embedded so the binary runs from anywhere.
const ENVIRONMENTS: [(&str, &str); 3] = [
    ("dev", include_str!("../config/dev.toml")),
    ("test", include_str!("../config/test.toml")),
    ("prod", include_str!("../config/prod.toml")),
];

/// Environment variables that override one key each: (name, section, key). The
/// `MQTT_*` ones are the original Eliot's, for the upstream broker.
const ENV_OVERRIDES: [(&str, &str, &str); 15] = [
    ("ELIOT_AUTH_MODE", "auth", "mode"),
    ("ELIOT_DATA_DIR", "store", "data_dir"),
    ("ELIOT_MQTT_ADDR", "mqtt", "listen"),
    ("ELIOT_HTTP_ADDR", "http", "listen"),
    ("ELIOT_LOG_LEVEL", "log", "level"),
    ("ELIOT_LOG_FORMAT", "log", "format"),
    ("ELIOT_WEBHOOK_URL", "alerts.webhook", "url"),
    ("ELIOT_WEBHOOK_SECRET", "alerts.webhook", "secret"),
    ("MQTT_BROKER_HOST", "upstream", "host"),
    ("MQTT_BROKER_PORT", "upstream", "port"),
    ("MQTT_USERNAME", "upstream", "username"),
    ("MQTT_PASSWORD", "upstream", "password"),
    ("MQTT_CLIENT_CERT_FILE", "upstream", "client_cert_file"),
    ("MQTT_CLIENT_KEY_FILE", "upstream", "client_key_file"),
    ("MQTT_CA_FILE", "upstream", "ca_file"),
];

/// Plain API tokens, added to `[api] tokens`.
pub const API_TOKENS_VARIABLE: &str = "ELIOT_API_TOKENS";

/// The value of an override as TOML: the port is a number (so that `abc` is refused as
/// such); everything else is a string.
fn override_value(name: &str, value: &str) -> toml::Value {
    match (name, value.trim().parse::<i64>()) {
        ("MQTT_BROKER_PORT", Ok(port)) => toml::Value::Integer(port),
        _ => toml::Value::String(value.to_owned()),
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The device endpoint (Eliot's own MQTT listener).
    pub mqtt: EndpointSettings,
    /// What a valid message looks like.
    pub ingest: IngestSettings,
    /// The SQLite store and its batching.
    pub store: StoreSettings,
    /// The processor actors.
    pub processors: ProcessorSettings,
    /// The health monitor.
    pub health: HealthSettings,
    /// Restart backoff and intensity, for every supervised child.
    pub supervision: RestartSettings,
    /// Circuit breakers, one per dependency.
    pub breakers: BreakersSettings,
    /// Logging.
    pub log: LogSettings,
    /// Graceful shutdown.
    pub shutdown: ShutdownSettings,
    /// The operations endpoints (/health, /ready, /metrics) and the API v1.
    pub http: HttpSettings,
    /// Who may call the API v1.
    pub api: ApiSettings,
    /// The upstream broker mode.
    pub upstream: UpstreamSettings,
    /// How devices authenticate, and the limits keyed by who they are.
    pub auth: AuthSettings,
    /// The TLS listener for devices.
    pub tls: TlsSettings,
    /// What the events count.
    pub metrics: MetricsSettings,
    /// The fleet: live device state, presence, quality, quarantine.
    pub fleet: FleetSettings,
    /// Anomaly detection on every numeric series, in the fleet.
    pub anomaly: AnomalySettings,
    /// Alert rules, evaluated in the fleet, and the webhook they notify.
    pub alerts: AlertSettings,
    /// Replaying dead letters: how much one call may take up.
    pub replay: ReplaySettings,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// False: events only log, and /metrics shows the process's figures alone (to measure
    /// what counting costs).
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `term` for people, `json` for machines.
    pub format: LogFormat,
    /// The least severe level written.
    pub level: LogLevel,
    /// Records buffered between the actors and the log thread.
    pub buffer: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Term,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Critical,
    Error,
    Warning,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownSettings {
    /// How long in-flight messages may take to commit and be acked after SIGINT/SIGTERM.
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
}

/// Where the configuration comes from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `ELIOT_ENV`; `dev` when absent.
    pub env: Option<String>,
    /// `--config PATH`.
    pub file: Option<PathBuf>,
    /// Environment variable overrides, as (name, value).
    pub overrides: Vec<(String, String)>,
    /// `ELIOT_API_TOKENS`: plain API tokens, `role:token,role:token`, added to
    /// `[api] tokens` (hashed as they are read).
    pub api_tokens: Option<String>,
}

impl Sources {
    /// Reads `ELIOT_ENV` and the override variables from the process environment.
    pub fn from_process_env(file: Option<PathBuf>) -> Self {
        Sources {
            env: std::env::var("ELIOT_ENV").ok(),
            file,
            overrides: ENV_OVERRIDES
                .iter()
                .filter_map(|(name, ..)| Some((name.to_string(), std::env::var(name).ok()?)))
                .collect(),
            api_tokens: std::env::var(API_TOKENS_VARIABLE).ok(),
        }
    }
}

/// One problem with the configuration, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The layer: `config/default.toml`, `/etc/eliot.toml`, `environment variable X`, ...
    pub source: String,
    /// Dotted key, e.g. `mqtt.listen`; empty for a whole-file problem.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.source, self.message)
        } else {
            write!(f, "{}: `{}`: {}", self.source, self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Merges every layer of `sources` and validates the result.
    pub fn load(sources: &Sources) -> Result<Config, Vec<ConfigError>> {
        let env = sources.env.as_deref().unwrap_or("dev");
        let Some((_, overlay)) = ENVIRONMENTS.iter().find(|(name, _)| *name == env) else {
            return Err(vec![ConfigError {
                source: "environment variable ELIOT_ENV".into(),
                key: String::new(),
                message: format!("unknown environment `{env}` (expected dev, test or prod)"),
            }]);
        };
        let mut layers = vec![
            (
                "config/default.toml".to_owned(),
                parse("config/default.toml", DEFAULT)?,
            ),
            (
                format!("config/{env}.toml"),
                parse(&format!("config/{env}.toml"), overlay)?,
            ),
        ];
        if let Some(path) = &sources.file {
            layers.push((path.display().to_string(), read_file(path)?));
        }
        for (name, value) in &sources.overrides {
            let Some((_, section, key)) = ENV_OVERRIDES.iter().find(|(n, ..)| n == name) else {
                continue;
            };
            let mut table = toml::Table::new();
            table.insert(key.to_string(), override_value(name, value));
            if *name == "MQTT_BROKER_HOST" {
                // Naming a broker turns the upstream mode on, as in the original Eliot.
                table.insert("enabled".into(), toml::Value::Boolean(true));
            }
            // A dotted section is a table within a table.
            for part in section.rsplit('.') {
                let mut outer = toml::Table::new();
                outer.insert(part.to_string(), toml::Value::Table(table));
                table = outer;
            }
            layers.push((format!("environment variable {name}"), table));
        }

        // Each layer is checked on top of the ones before it, so an error names the
        // layer that introduced it.
        let mut merged = toml::Table::new();
        let mut config = None;
        for (source, layer) in layers {
            merge(&mut merged, layer);
            let candidate = toml::Value::Table(merged.clone());
            match serde_path_to_error::deserialize::<_, Config>(candidate) {
                Ok(c) => config = Some(c),
                Err(e) => {
                    return Err(vec![ConfigError {
                        source,
                        key: key_of(e.path()),
                        message: e.into_inner().to_string(),
                    }])
                }
            }
        }
        let mut config = config.expect("the default layer is always present");
        if let Some(plain) = &sources.api_tokens {
            let tokens = v1::tokens::from_env(plain).map_err(|message| {
                vec![ConfigError {
                    source: format!("environment variable {API_TOKENS_VARIABLE}"),
                    key: String::new(),
                    message,
                }]
            })?;
            config.api.tokens.extend(tokens);
        }
        let problems = config.validate();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// Checks what the types alone cannot: ranges and relations between keys. Each
    /// section checks itself.
    fn validate(&self) -> Vec<ConfigError> {
        let mut problems = Problems::new();
        self.tree().validate(&mut problems);
        problems.section("log", |p| p.at_least("buffer", self.log.buffer, 1));
        problems.section("http", |p| {
            self.http.validate(p);
            p.check(
                !self.api.tokens.is_empty() || self.http.listen.ip().is_loopback(),
                "listen",
                "is not a loopback address, and no API token is configured: the API \
                 (/api/v1) would serve every device's data to whoever reaches it. Set [api] \
                 tokens (`eliot api-token new` prints one and the line to keep) or \
                 ELIOT_API_TOKENS, or listen on 127.0.0.1",
            )
        });
        problems.section("shutdown", |p| {
            p.positive("deadline", self.shutdown.deadline)
        });
        problems
            .into_vec()
            .into_iter()
            .map(|problem| ConfigError {
                source: "effective configuration".into(),
                key: problem.key,
                message: problem.message,
            })
            .collect()
    }

    /// The engine's sections, as the supervision tree takes them.
    pub fn tree(&self) -> TreeSettings<'_> {
        TreeSettings {
            mqtt: &self.mqtt,
            ingest: &self.ingest,
            store: &self.store,
            processors: &self.processors,
            health: &self.health,
            supervision: &self.supervision,
            breakers: &self.breakers,
            upstream: &self.upstream,
            auth: &self.auth,
            tls: &self.tls,
            fleet: &self.fleet,
            anomaly: &self.anomaly,
            alerts: &self.alerts,
            replay: &self.replay,
        }
    }

    /// The effective configuration as TOML, as `eliot check-config` prints it.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the configuration always serialises")
    }
}

fn parse(source: &str, text: &str) -> Result<toml::Table, Vec<ConfigError>> {
    text.parse::<toml::Table>().map_err(|e| {
        vec![ConfigError {
            source: source.to_owned(),
            key: String::new(),
            message: format!("not valid TOML: {}", e.message()),
        }]
    })
}

fn read_file(path: &Path) -> Result<toml::Table, Vec<ConfigError>> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            source: source.clone(),
            key: String::new(),
            message: format!("cannot read: {e}"),
        }]
    })?;
    parse(&source, &text)
}

/// Deep merge: tables merge key by key, anything else in `over` replaces `base`.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

fn key_of(path: &serde_path_to_error::Path) -> String {
    let key = path.to_string();
    if key == "." {
        String::new()
    } else {
        key
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
