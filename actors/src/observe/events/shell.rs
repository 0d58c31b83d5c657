//! The process's events: starting (or not), the open-file limit, SIGHUP, the HTTP
//! server, and shutdown.

use std::time::Duration;

use slog::{error, info, warn, Logger};

use super::values::Clean;
use super::Observe;
use crate::observe::Metrics;

/// Eliot could not start (a port, the store, the configuration of the tree).
pub struct StartFailed<'a> {
    pub error: &'a str,
}

impl Observe for StartFailed<'_> {
    const NAME: &'static str = "start_failed";
    const MOVES: &'static [&'static str] = &["eliot_start_failures_total"];

    fn log(&self, log: &Logger) {
        slog::crit!(log, "cannot start"; "event" => Self::NAME, "error" => %Clean(self.error))
    }

    fn count(&self, m: &Metrics) {
        m.start_failures.inc();
    }
}

/// The open-file limit could not be raised to what `mqtt.max_connections` needs.
pub struct DescriptorLimit<'a> {
    pub limit: Option<u64>,
    pub wanted: u64,
    /// The connections Eliot takes: `mqtt.max_connections`, or fewer, to fit `limit`.
    pub max_connections: usize,
    pub error: Option<&'a str>,
}

impl Observe for DescriptorLimit<'_> {
    const NAME: &'static str = "descriptor_limit";
    const MOVES: &'static [&'static str] = &["eliot_open_file_limit_wanted"];

    fn log(&self, log: &Logger) {
        let DescriptorLimit {
            limit,
            wanted,
            max_connections,
            error,
        } = *self;
        match error {
            Some(error) => warn!(log, "cannot raise the open-file limit";
                "event" => Self::NAME, "wanted" => wanted, "error" => %Clean(error)),
            None => warn!(log,
                "the open-file limit is below what mqtt.max_connections needs: \
                 taking only the connections it leaves room for";
                "event" => Self::NAME, "limit" => limit, "wanted" => wanted,
                "max_connections" => max_connections),
        }
    }

    fn count(&self, m: &Metrics) {
        let wanted = i64::try_from(self.wanted).unwrap_or(i64::MAX);
        m.open_file_limit_wanted.set(wanted);
    }
}

/// A SIGHUP arrived: the TLS listener, if `tls`, reads its files again; nothing else
/// is reloaded, and Eliot goes on.
pub struct Hangup {
    pub tls: bool,
}

impl Observe for Hangup {
    const NAME: &'static str = "hangup";
    const MOVES: &'static [&'static str] = &[];

    fn log(&self, log: &Logger) {
        match self.tls {
            true => info!(log,
                "SIGHUP: reading the TLS files again; nothing else is reloaded";
                "event" => Self::NAME),
            false => info!(log,
                "SIGHUP: nothing to reload (TLS is off); going on";
                "event" => Self::NAME),
        }
    }

    fn count(&self, _: &Metrics) {}
}

/// The HTTP server (health, readiness, metrics, the API v1) listens, and says who may
/// call the API: holders of `api_tokens` tokens, or, with none, anyone on this machine
/// (the configuration allows no tokens on a loopback address only).
pub struct HttpListening {
    pub addr: std::net::SocketAddr,
    pub api_tokens: usize,
}

impl Observe for HttpListening {
    const NAME: &'static str = "http_listening";
    const MOVES: &'static [&'static str] = &["eliot_http_listening"];

    fn log(&self, log: &Logger) {
        match self.api_tokens {
            0 => warn!(log,
                "HTTP server listening; no API token is configured: the API (/api/v1) \
                 answers anyone who reaches this loopback address, with every right";
                "event" => Self::NAME, "addr" => %self.addr, "api_tokens" => 0),
            n => info!(log, "HTTP server listening; the API (/api/v1) takes bearer tokens";
                "event" => Self::NAME, "addr" => %self.addr, "api_tokens" => n),
        }
    }

    fn count(&self, m: &Metrics) {
        m.http_listening.set(1);
    }
}

/// The HTTP server could not start or stopped on its own; it is restarted.
pub struct HttpFailed<'a> {
    pub error: &'a str,
}

impl Observe for HttpFailed<'_> {
    const NAME: &'static str = "http_failed";
    const MOVES: &'static [&'static str] = &["eliot_http_listening", "eliot_http_failures_total"];

    fn log(&self, log: &Logger) {
        error!(log, "HTTP server failed, restarting it";
            "event" => Self::NAME, "error" => %Clean(self.error))
    }

    fn count(&self, m: &Metrics) {
        m.http_listening.set(0);
        m.http_failures.inc();
    }
}

/// Shutdown began: intake stopped, connections drain for up to `deadline`.
pub struct ShutdownStarted {
    pub deadline: Duration,
}

impl Observe for ShutdownStarted {
    const NAME: &'static str = "shutdown_started";
    const MOVES: &'static [&'static str] = &["eliot_shutting_down"];

    fn log(&self, log: &Logger) {
        info!(log, "shutting down: intake stopped, draining";
            "event" => Self::NAME, "deadline_ms" => self.deadline.as_millis() as u64)
    }

    fn count(&self, m: &Metrics) {
        m.shutting_down.set(1);
    }
}

/// Shutdown ended, `forced` when the deadline cut the drain short.
pub struct ShutdownFinished {
    pub took: Duration,
    pub forced: bool,
}

impl Observe for ShutdownFinished {
    const NAME: &'static str = "shutdown_finished";
    const MOVES: &'static [&'static str] = &["eliot_listening"];

    fn log(&self, log: &Logger) {
        let ShutdownFinished { took, forced } = *self;
        info!(log, "shutdown finished";
            "event" => Self::NAME, "duration_ms" => took.as_millis() as u64, "forced" => forced)
    }

    fn count(&self, m: &Metrics) {
        m.listening.set(0);
    }
}
