//! What the tree is built from (the engine's sections of the configuration, each checking
//! itself), and why a start can fail.

use std::sync::Arc;

use rustls::ServerConfig;

use crate::endpoint::EndpointSettings;
use crate::fleet::{AlertSettings, AnomalySettings, FleetSettings};
use crate::identity::{check_mode, server_config, AuthSettings, ServerTlsError, TlsSettings};
use crate::ingest::{IngestSettings, ProcessorSettings, TopicPattern};
use crate::pipeline::ReplaySettings;
use crate::settings::Problems;
use crate::store::{StoreError, StoreSettings};
use crate::supervision::{BreakersSettings, HealthSettings, RestartSettings};
use crate::upstream::{client_config, TlsError, UpstreamSettings};

/// What the tree is built from: the engine's sections of the configuration.
pub struct TreeSettings<'a> {
    pub mqtt: &'a EndpointSettings,
    pub ingest: &'a IngestSettings,
    pub store: &'a StoreSettings,
    pub processors: &'a ProcessorSettings,
    pub health: &'a HealthSettings,
    pub supervision: &'a RestartSettings,
    pub breakers: &'a BreakersSettings,
    pub upstream: &'a UpstreamSettings,
    pub auth: &'a AuthSettings,
    pub tls: &'a TlsSettings,
    pub fleet: &'a FleetSettings,
    pub anomaly: &'a AnomalySettings,
    pub alerts: &'a AlertSettings,
    pub replay: &'a ReplaySettings,
}

impl TreeSettings<'_> {
    /// Every section checks itself; problems are named by their dotted key.
    pub fn validate(&self, problems: &mut Problems) {
        problems.section("mqtt", |p| self.mqtt.validate(p));
        problems.section("ingest", |p| self.ingest.validate(p));
        problems.section("store", |p| self.store.validate(p));
        problems.section("processors", |p| self.processors.validate(p));
        problems.section("health", |p| self.health.validate(p));
        problems.section("supervision", |p| self.supervision.validate(p));
        problems.section("breakers", |p| self.breakers.validate(p));
        problems.section("upstream", |p| self.upstream.validate(p));
        self.validate_upstream_topics(problems);
        problems.section("auth", |p| self.auth.validate(p));
        problems.section("tls", |p| self.tls.validate(p));
        problems.section("fleet", |p| self.fleet.validate(p));
        problems.section("anomaly", |p| self.anomaly.validate(p));
        problems.section("alerts", |p| self.alerts.validate(p));
        problems.section("replay", |p| self.replay.validate(p));
        self.validate_listeners(problems);
    }

    /// What `validate` checks of the listeners, again on the sockets actually bound (a test
    /// or an embedder may hand the tree its own), and at least one processor. Returns the
    /// TLS listener's server configuration, when there is a TLS listener.
    pub(super) fn check_start(
        &self,
        listener: Option<&std::net::TcpListener>,
        tls_listener: Option<&std::net::TcpListener>,
    ) -> Result<Option<Arc<ServerConfig>>, StartError> {
        let plain = listener.and_then(|l| l.local_addr().ok());
        let tls_settings = tls_listener.map(|_| self.tls);
        check_mode(self.auth.mode, plain, tls_settings).map_err(StartError::Unprotected)?;
        let tls_config = match tls_listener {
            Some(_) => Some(server_config(self.tls, self.auth.mode)?),
            None => None,
        };
        if self.processors.count == 0 {
            return Err(StartError::NoProcessor);
        }
        Ok(tls_config)
    }

    /// `auth.mode = none` only where nobody else can connect; the TLS files readable.
    fn validate_listeners(&self, problems: &mut Problems) {
        let plain = self.mqtt.enabled.then_some(self.mqtt.listen);
        let tls = self.tls.enabled.then_some(self.tls);
        if let Err(why) = check_mode(self.auth.mode, plain, tls) {
            problems.add("auth.mode", why);
        }
        if self.tls.enabled {
            if let Err(e) = server_config(self.tls, self.auth.mode) {
                problems.add(
                    &format!("tls.{}", e.key),
                    format!("`{}`: {}", e.path, e.message),
                );
            }
        }
    }

    /// A filter that can match no telemetry topic would dead-letter all it brings; and
    /// the TLS files must be readable and valid now.
    fn validate_upstream_topics(&self, problems: &mut Problems) {
        if !self.upstream.enabled {
            return;
        }
        if let Ok(pattern) = TopicPattern::parse(&self.ingest.topic) {
            for filter in self.upstream.filters() {
                if !filter.can_match(&pattern) {
                    problems.add(
                        "upstream.topics",
                        format!("`{filter}` can match no topic of ingest.topic `{pattern}`: all it brings would be dead letters"),
                    );
                }
            }
        }
        if let Err(e) = client_config(self.upstream) {
            problems.add(&format!("upstream.{}", e.key), e.message);
        }
    }
}

/// Why the tree did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("ingest.topic: {0}")]
    Topic(#[from] crate::ingest::TopicPatternError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen for devices: {0}")]
    Listen(std::io::Error),
    #[error("cannot listen for HTTP: {0}")]
    ListenHttp(std::io::Error),
    #[error(transparent)]
    UpstreamTls(#[from] TlsError),
    #[error(transparent)]
    DeviceTls(#[from] ServerTlsError),
    #[error("{0}")]
    Unprotected(String),
    #[error("cannot listen for devices over TLS: {0}")]
    ListenTls(std::io::Error),
    #[error("processors.count must be at least 1")]
    NoProcessor,
}
