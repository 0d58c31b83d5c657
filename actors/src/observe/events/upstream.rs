//! The upstream connections' events: connecting to an existing broker (and failing to),
//! its session, its subscriptions, its disconnects, and messages from it not stored.

use std::time::Duration;

use slog::{error, info, warn, Logger};

use super::values::Clean;
use super::Observe;
use crate::observe::Metrics;

/// An upstream connection's CONNACK arrived.
pub struct UpstreamConnected<'a> {
    pub connection: &'a str,
    pub broker: &'a str,
    pub session_present: bool,
}

impl Observe for UpstreamConnected<'_> {
    const NAME: &'static str = "upstream_connected";
    const MOVES: &'static [&'static str] =
        &["eliot_upstream_connects_total", "eliot_upstream_connected"];

    fn log(&self, log: &Logger) {
        let UpstreamConnected {
            connection,
            broker,
            session_present,
        } = *self;
        info!(log, "connected to the upstream broker";
            "event" => Self::NAME, "connection" => %Clean(connection),
            "broker" => %Clean(broker), "session_present" => session_present)
    }

    fn count(&self, m: &Metrics) {
        m.upstream_connects.inc();
        let label = [("connection", self.connection.to_owned())];
        m.upstream_connected.get_or_create(&label).set(1);
    }
}

/// Session Present 0 where Eliot had a session: what the broker held for Eliot while
/// it was away is gone (a possible gap).
pub struct UpstreamSessionLost<'a> {
    pub connection: &'a str,
}

impl Observe for UpstreamSessionLost<'_> {
    const NAME: &'static str = "upstream_session_lost";
    const MOVES: &'static [&'static str] = &["eliot_upstream_sessions_lost_total"];

    fn log(&self, log: &Logger) {
        warn!(log,
            "the upstream broker has no session for Eliot: \
             messages sent while Eliot was away may be missing (possible gap)";
            "event" => Self::NAME, "connection" => %Clean(self.connection))
    }

    fn count(&self, m: &Metrics) {
        m.upstream_sessions_lost.inc();
    }
}

/// Connecting to the broker failed, or the connection broke; the next try waits.
pub struct UpstreamConnectFailed<'a> {
    pub connection: &'a str,
    pub error: &'a str,
    pub attempt: u32,
    pub retry_in: Duration,
}

impl Observe for UpstreamConnectFailed<'_> {
    const NAME: &'static str = "upstream_connect_failed";
    const MOVES: &'static [&'static str] = &[
        "eliot_upstream_connect_failures_total",
        "eliot_upstream_connected",
    ];

    fn log(&self, log: &Logger) {
        let UpstreamConnectFailed {
            connection,
            error,
            attempt,
            retry_in,
        } = *self;
        warn!(log, "upstream broker connection failed; retrying after a delay";
            "event" => Self::NAME, "connection" => %Clean(connection), "error" => %Clean(error),
            "attempt" => attempt, "retry_in_ms" => retry_in.as_millis() as u64)
    }

    fn count(&self, m: &Metrics) {
        m.upstream_connect_failures.inc();
        let label = [("connection", self.connection.to_owned())];
        m.upstream_connected.get_or_create(&label).set(0);
    }
}

/// The broker answered the subscriptions: `filters` asked, some perhaps refused.
pub struct UpstreamSubscribed<'a> {
    pub connection: &'a str,
    pub filters: usize,
    /// The broker's reasons for the filters it refused, if any.
    pub refused: &'a str,
}

impl Observe for UpstreamSubscribed<'_> {
    const NAME: &'static str = "upstream_subscribed";
    const MOVES: &'static [&'static str] = &[];

    fn log(&self, log: &Logger) {
        let UpstreamSubscribed {
            connection,
            filters,
            refused,
        } = *self;
        if refused.is_empty() {
            info!(log, "subscribed at the upstream broker";
                "event" => Self::NAME, "connection" => %Clean(connection), "filters" => filters)
        } else {
            error!(log, "the upstream broker refused subscriptions";
                "event" => Self::NAME, "connection" => %Clean(connection), "filters" => filters,
                "refused" => %Clean(refused))
        }
    }

    fn count(&self, _: &Metrics) {}
}

/// The broker closed the connection and said why (MQTT 5 DISCONNECT).
pub struct UpstreamDisconnected<'a> {
    pub connection: &'a str,
    pub reason: &'a str,
}

impl Observe for UpstreamDisconnected<'_> {
    const NAME: &'static str = "upstream_disconnected";
    const MOVES: &'static [&'static str] = &[];

    fn log(&self, log: &Logger) {
        let UpstreamDisconnected { connection, reason } = *self;
        warn!(log, "the upstream broker closed the connection";
            "event" => Self::NAME, "connection" => %Clean(connection), "reason" => %Clean(reason))
    }

    fn count(&self, _: &Metrics) {}
}

/// Messages from the broker could not be stored: none is acked, and the connection
/// is dropped so that the broker redelivers them.
pub struct UpstreamNotStored<'a> {
    pub connection: &'a str,
    pub messages: usize,
    pub error: &'a str,
}

impl Observe for UpstreamNotStored<'_> {
    const NAME: &'static str = "upstream_not_stored";
    const MOVES: &'static [&'static str] = &["eliot_upstream_not_stored_total"];

    fn log(&self, log: &Logger) {
        let UpstreamNotStored {
            connection,
            messages,
            error,
        } = *self;
        error!(log,
            "messages from the upstream broker not stored; none acked, reconnecting for redelivery";
            "event" => Self::NAME, "connection" => %Clean(connection), "messages" => messages,
            "error" => %Clean(error))
    }

    fn count(&self, m: &Metrics) {
        m.upstream_not_stored.inc_by(self.messages as u64);
    }
}
