//! The device endpoint's events: listening and accepting, a device's connection from
//! CONNECT (or its refusal) to its end, and what closes connections from outside them
//! (revoked credentials) or changes how they are accepted (TLS files reloaded).

use std::net::SocketAddr;
use std::time::Duration;

use slog::{error, info, warn, Logger};

use super::values::Clean;
use super::Observe;
use crate::observe::Metrics;

/// The device endpoint listens (plain TCP).
pub struct Listening {
    pub addr: SocketAddr,
}

impl Observe for Listening {
    const NAME: &'static str = "listening";
    const MOVES: &'static [&'static str] = &["eliot_listening"];

    fn log(&self, log: &Logger) {
        info!(log, "listening for MQTT devices"; "event" => Self::NAME, "addr" => %self.addr)
    }

    fn count(&self, m: &Metrics) {
        m.listening.set(1);
    }
}

/// The TLS listener for devices is accepting.
pub struct TlsListening {
    pub addr: SocketAddr,
}

impl Observe for TlsListening {
    const NAME: &'static str = "tls_listening";
    const MOVES: &'static [&'static str] = &[];

    fn log(&self, log: &Logger) {
        info!(log, "listening for MQTT devices over TLS";
            "event" => Self::NAME, "addr" => %self.addr)
    }

    fn count(&self, _: &Metrics) {}
}

/// Accepting a socket failed (out of descriptors, typically); accepts pause.
pub struct AcceptFailed<'a> {
    pub error: &'a str,
    pub pause: Duration,
}

impl Observe for AcceptFailed<'_> {
    const NAME: &'static str = "accept_failed";
    const MOVES: &'static [&'static str] = &["eliot_accept_failures_total"];

    fn log(&self, log: &Logger) {
        let AcceptFailed { error, pause } = *self;
        error!(log, "accept failed, pausing accepts";
            "event" => Self::NAME, "error" => %Clean(error), "pause_ms" => pause.as_millis() as u64)
    }

    fn count(&self, m: &Metrics) {
        m.accept_failures.inc();
    }
}

/// A device's CONNECT was accepted.
pub struct DeviceConnected<'a> {
    pub client_id: &'a str,
    pub peer: SocketAddr,
    pub protocol: &'static str,
    pub keep_alive: u16,
    pub clean_start: bool,
}

impl Observe for DeviceConnected<'_> {
    const NAME: &'static str = "device_connected";
    const MOVES: &'static [&'static str] =
        &["eliot_connections_opened_total", "eliot_connections_open"];

    fn log(&self, log: &Logger) {
        let DeviceConnected {
            client_id,
            peer,
            protocol,
            keep_alive,
            clean_start,
        } = *self;
        info!(log, "device connected";
            "event" => Self::NAME, "client_id" => %Clean(client_id), "peer" => %peer,
            "protocol" => protocol, "keep_alive_s" => keep_alive, "clean_start" => clean_start)
    }

    fn count(&self, m: &Metrics) {
        m.connections_opened.inc();
        m.connections_open.inc();
    }
}

/// A connected device's connection ended.
pub struct DeviceDisconnected<'a> {
    pub client_id: &'a str,
    pub reason: &'a str,
}

impl Observe for DeviceDisconnected<'_> {
    const NAME: &'static str = "device_disconnected";
    const MOVES: &'static [&'static str] = &["eliot_connections_open"];

    fn log(&self, log: &Logger) {
        let DeviceDisconnected { client_id, reason } = *self;
        info!(log, "device disconnected";
            "event" => Self::NAME, "client_id" => %Clean(client_id), "reason" => %Clean(reason))
    }

    fn count(&self, m: &Metrics) {
        m.connections_open.dec();
    }
}

/// A connection refused at or before its CONNECT.
pub struct ConnectionRefused<'a> {
    pub peer: SocketAddr,
    /// The CONNACK code sent (`ConnectCode::name`), or `none` when the socket was
    /// closed without one.
    pub code: &'static str,
    pub reason: &'a str,
}

impl Observe for ConnectionRefused<'_> {
    const NAME: &'static str = "connection_refused";
    const MOVES: &'static [&'static str] = &["eliot_connections_refused_total"];

    fn log(&self, log: &Logger) {
        let ConnectionRefused { peer, code, reason } = *self;
        warn!(log, "connection refused";
            "event" => Self::NAME, "peer" => %peer, "code" => code, "reason" => %Clean(reason))
    }

    fn count(&self, m: &Metrics) {
        let code = [("code", self.code)];
        m.connections_refused.get_or_create(&code).inc();
    }
}

/// A device broke the protocol; its connection is closed.
pub struct ProtocolError<'a> {
    pub client_id: &'a str,
    pub error: &'a str,
}

impl Observe for ProtocolError<'_> {
    const NAME: &'static str = "protocol_error";
    const MOVES: &'static [&'static str] = &["eliot_protocol_errors_total"];

    fn log(&self, log: &Logger) {
        let ProtocolError { client_id, error } = *self;
        warn!(log, "protocol error, closing";
            "event" => Self::NAME, "client_id" => %Clean(client_id), "error" => %Clean(error))
    }

    fn count(&self, m: &Metrics) {
        m.protocol_errors.inc();
    }
}

/// The TLS files were read again (SIGHUP); with `error`, the old ones stay in use.
pub struct TlsReloaded<'a> {
    pub error: Option<&'a str>,
}

impl Observe for TlsReloaded<'_> {
    const NAME: &'static str = "tls_reloaded";
    const MOVES: &'static [&'static str] = &["eliot_tls_reloads_total"];

    fn log(&self, log: &Logger) {
        match self.error {
            None => info!(log, "TLS certificate, key and client CA reloaded";
                "event" => Self::NAME),
            Some(error) => error!(log,
                "cannot reload the TLS files; the previous ones stay in use";
                "event" => Self::NAME, "error" => %Clean(error)),
        }
    }

    fn count(&self, m: &Metrics) {
        let outcome = if self.error.is_some() {
            "failed"
        } else {
            "done"
        };
        m.tls_reloads.get_or_create(&[("outcome", outcome)]).inc();
    }
}

/// A device's secret was rotated or it was removed (`device_id`), or revocations were
/// missed (`None`): its open connections (`connections`) are being closed.
pub struct CredentialsRevoked<'a> {
    pub device_id: Option<&'a str>,
    pub cause: &'static str,
    pub connections: usize,
}

impl Observe for CredentialsRevoked<'_> {
    const NAME: &'static str = "credentials_revoked";
    const MOVES: &'static [&'static str] = &[];

    fn log(&self, log: &Logger) {
        let CredentialsRevoked {
            device_id,
            cause,
            connections,
        } = *self;
        match device_id {
            Some(device_id) => info!(log, "device credentials revoked, closing its connections";
                "event" => Self::NAME, "device_id" => %Clean(device_id), "cause" => cause,
                "connections" => connections),
            None => warn!(log,
                "revocations were missed: closing every authenticated connection";
                "event" => Self::NAME, "cause" => cause, "connections" => connections),
        }
    }

    fn count(&self, _: &Metrics) {}
}

/// The revocation log cannot be read now; it is read again after `retry_in`.
pub struct RevocationsUnreadable<'a> {
    pub error: &'a str,
    pub retry_in: Duration,
}

impl Observe for RevocationsUnreadable<'_> {
    const NAME: &'static str = "revocations_unreadable";
    const MOVES: &'static [&'static str] = &[];

    fn log(&self, log: &Logger) {
        let RevocationsUnreadable { error, retry_in } = *self;
        error!(log,
            "cannot read the revocation log; revoked devices stay connected until it can be read";
            "event" => Self::NAME, "error" => %Clean(error),
            "retry_in_ms" => retry_in.as_millis() as u64)
    }

    fn count(&self, _: &Metrics) {}
}
