//! Every log line Eliot writes comes from one of these typed events, so the keys are
//! stable for whoever parses the JSON logs, and every event also updates its metric
//! (`Metrics`), so what the logs tell and what `/metrics` counts cannot drift apart.
//! No event carries a password or token.
//!
//! README's "Log events" lists every event by its `name()`; a test keeps the two equal.

use std::net::SocketAddr;
use std::time::Duration;

use slog::{debug, error, info, trace, warn, Logger};

use super::Telemetry;

pub enum Event<'a> {
    Listening {
        addr: SocketAddr,
    },
    DeviceConnected {
        client_id: &'a str,
        peer: SocketAddr,
        protocol: &'static str,
        keep_alive: u16,
        clean_start: bool,
    },
    DeviceDisconnected {
        client_id: &'a str,
        reason: &'a str,
    },
    ConnectionRefused {
        peer: SocketAddr,
        /// The CONNACK code sent (`ConnectCode::name`), or `none` when the socket was
        /// closed without one.
        code: &'static str,
        reason: &'a str,
    },
    ProtocolError {
        client_id: &'a str,
        error: &'a str,
    },
    /// A PUBLISH was read (trace level: one per message).
    PublishReceived {
        client_id: &'a str,
        qos: u8,
        bytes: usize,
    },
    /// Acks written for the stored prefix of a connection's queue.
    AcksSent {
        client_id: &'a str,
        pubacks: usize,
        pubrecs: usize,
    },
    /// The messages a connection read in one turn were committed, `waited` after the
    /// first of them was read.
    OutcomesCommitted {
        client_id: &'a str,
        messages: usize,
        waited: Duration,
    },
    MessageProcessed {
        client_id: &'a str,
        topic: &'a str,
        readings: usize,
        took: Duration,
    },
    MessageRejected {
        client_id: &'a str,
        topic: &'a str,
        /// The reason's class, from a small fixed set (a metric label).
        class: &'static str,
        reason: &'a str,
    },
    WillPublished {
        client_id: &'a str,
        topic: &'a str,
    },
    BatchCommitted {
        rows: usize,
        duplicates: usize,
        dead_letters: usize,
        took: Duration,
    },
    StoreFailed {
        error: &'a str,
        requests: usize,
    },
    /// The oldest dead letters were removed to stay within `store.dead_letter_quota`.
    DeadLettersShed {
        rows: usize,
        bytes: u64,
        quota: u64,
    },
    /// A sealed generation of the log is wholly merged into a chunk.
    GenerationMerged {
        readings: usize,
        took: Duration,
    },
    /// Retention dropped whole chunks.
    ChunksExpired {
        chunks: usize,
        readings: u64,
        retention: Duration,
    },
    /// The store writer opened the database: its schema version, and the version it was
    /// migrated from, if it was (0: created).
    StoreOpened {
        version: i64,
        migrated_from: Option<i64>,
    },
    /// Emitted by the actor itself, whose logger carries its name.
    ActorPanicked {
        panic: &'a str,
    },
    ActorRestarting {
        actor: &'a str,
        restarts: u32,
        in_window: u32,
        delay: Duration,
        reason: &'a str,
    },
    Escalated {
        actor: &'a str,
        restarts: u32,
        window: Duration,
    },
    BreakerTransition {
        breaker: &'a str,
        from: &'static str,
        to: &'static str,
        reason: &'a str,
    },
    DeviceBreakerTripped {
        client_id: &'a str,
        reason: &'a str,
        cooldown: Duration,
    },
    DeviceRefused {
        client_id: &'a str,
        reason: &'a str,
        retry_after: Duration,
    },
    StoreRetry {
        rows: usize,
        wait: Duration,
        error: &'a str,
    },
    ShutdownStarted {
        deadline: Duration,
    },
    ShutdownFinished {
        took: Duration,
        forced: bool,
    },
    /// Accepting a socket failed (out of descriptors, typically); accepts pause.
    AcceptFailed {
        error: &'a str,
        pause: Duration,
    },
    /// The open-file limit could not be raised to what `mqtt.max_connections` needs.
    DescriptorLimit {
        limit: Option<u64>,
        wanted: u64,
        /// The connections Eliot takes: `mqtt.max_connections`, or fewer, to fit `limit`.
        max_connections: usize,
        error: Option<&'a str>,
    },
    /// The HTTP server (health, readiness, metrics) listens.
    HttpListening {
        addr: SocketAddr,
    },
    /// The HTTP server could not start or stopped on its own; it is restarted.
    HttpFailed {
        error: &'a str,
    },
    /// Eliot could not start (a port, the store, the configuration of the tree).
    /// The TLS listener for devices is accepting.
    TlsListening {
        addr: SocketAddr,
    },
    /// A SIGHUP arrived: the TLS listener, if `tls`, reads its files again; nothing else
    /// is reloaded, and Eliot goes on.
    Hangup {
        tls: bool,
    },
    /// The TLS files were read again (SIGHUP); with `error`, the old ones stay in use.
    TlsReloaded {
        error: Option<&'a str>,
    },
    /// A device's secret was rotated or it was removed (`device_id`), or revocations were
    /// missed (`None`): its open connections (`connections`) are being closed.
    CredentialsRevoked {
        device_id: Option<&'a str>,
        cause: &'static str,
        connections: usize,
    },
    /// The revocation log cannot be read now; it is read again after `retry_in`.
    RevocationsUnreadable {
        error: &'a str,
        retry_in: Duration,
    },
    /// An upstream connection's CONNACK arrived.
    UpstreamConnected {
        connection: &'a str,
        broker: &'a str,
        session_present: bool,
    },
    /// Session Present 0 where Eliot had a session: what the broker held for Eliot while
    /// it was away is gone (a possible gap).
    UpstreamSessionLost {
        connection: &'a str,
    },
    /// Connecting to the broker failed, or the connection broke; the next try waits.
    UpstreamConnectFailed {
        connection: &'a str,
        error: &'a str,
        attempt: u32,
        retry_in: Duration,
    },
    UpstreamSubscribed {
        connection: &'a str,
        filters: usize,
        /// The broker's reasons for the filters it refused, if any.
        refused: &'a str,
    },
    /// The broker closed the connection and said why (MQTT 5 DISCONNECT).
    UpstreamDisconnected {
        connection: &'a str,
        reason: &'a str,
    },
    /// Messages from the broker could not be stored: none is acked, and the connection
    /// is dropped so that the broker redelivers them.
    UpstreamNotStored {
        connection: &'a str,
        messages: usize,
        error: &'a str,
    },
    StartFailed {
        error: &'a str,
    },
}

/// The most one logged value takes, in bytes; a longer one is cut and marked.
pub const LOG_VALUE_MAX: usize = 512;

/// A logged string, cut at `LOG_VALUE_MAX` bytes and with control characters escaped: a
/// device's topic, id or payload-quoting reason can neither flood the logs nor forge
/// lines in the terminal format.
struct Clean<'a>(&'a str);

impl std::fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        let mut written = 0;
        for c in self.0.chars() {
            if written + c.len_utf8() > LOG_VALUE_MAX {
                return write!(f, "…[cut: {} bytes in all]", self.0.len());
            }
            written += c.len_utf8();
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().try_into().unwrap_or(u64::MAX)
}

impl Event<'_> {
    /// Writes the event's record and updates its metric.
    pub fn emit(&self, telemetry: &Telemetry) {
        self.log(telemetry.log());
        self.count(telemetry.metrics());
    }

    /// The stable `event` key of the record.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Listening { .. } => "listening",
            Event::DeviceConnected { .. } => "device_connected",
            Event::DeviceDisconnected { .. } => "device_disconnected",
            Event::ConnectionRefused { .. } => "connection_refused",
            Event::ProtocolError { .. } => "protocol_error",
            Event::PublishReceived { .. } => "publish_received",
            Event::AcksSent { .. } => "acks_sent",
            Event::OutcomesCommitted { .. } => "outcomes_committed",
            Event::MessageProcessed { .. } => "message_processed",
            Event::MessageRejected { .. } => "message_rejected",
            Event::WillPublished { .. } => "will_published",
            Event::BatchCommitted { .. } => "batch_committed",
            Event::StoreFailed { .. } => "store_failed",
            Event::DeadLettersShed { .. } => "dead_letters_shed",
            Event::GenerationMerged { .. } => "generation_merged",
            Event::ChunksExpired { .. } => "chunks_expired",
            Event::StoreOpened { .. } => "store_opened",
            Event::ActorPanicked { .. } => "actor_panicked",
            Event::ActorRestarting { .. } => "actor_restarting",
            Event::Escalated { .. } => "escalated",
            Event::BreakerTransition { .. } => "breaker_transition",
            Event::DeviceBreakerTripped { .. } => "device_breaker_tripped",
            Event::DeviceRefused { .. } => "device_refused",
            Event::StoreRetry { .. } => "store_retry",
            Event::ShutdownStarted { .. } => "shutdown_started",
            Event::ShutdownFinished { .. } => "shutdown_finished",
            Event::AcceptFailed { .. } => "accept_failed",
            Event::DescriptorLimit { .. } => "descriptor_limit",
            Event::HttpListening { .. } => "http_listening",
            Event::HttpFailed { .. } => "http_failed",
            Event::TlsListening { .. } => "tls_listening",
            Event::Hangup { .. } => "hangup",
            Event::TlsReloaded { .. } => "tls_reloaded",
            Event::CredentialsRevoked { .. } => "credentials_revoked",
            Event::RevocationsUnreadable { .. } => "revocations_unreadable",
            Event::UpstreamConnected { .. } => "upstream_connected",
            Event::UpstreamSessionLost { .. } => "upstream_session_lost",
            Event::UpstreamConnectFailed { .. } => "upstream_connect_failed",
            Event::UpstreamSubscribed { .. } => "upstream_subscribed",
            Event::UpstreamDisconnected { .. } => "upstream_disconnected",
            Event::UpstreamNotStored { .. } => "upstream_not_stored",
            Event::StartFailed { .. } => "start_failed",
        }
    }

    fn log(&self, log: &Logger) {
        let event = self.name();
        match *self {
            Event::Listening { addr } => {
                info!(log, "listening for MQTT devices"; "event" => event, "addr" => %addr)
            }
            Event::DeviceConnected {
                client_id,
                peer,
                protocol,
                keep_alive,
                clean_start,
            } => info!(log, "device connected";
                "event" => event, "client_id" => %Clean(client_id), "peer" => %peer,
                "protocol" => protocol, "keep_alive_s" => keep_alive, "clean_start" => clean_start),
            Event::DeviceDisconnected { client_id, reason } => info!(log, "device disconnected";
                "event" => event, "client_id" => %Clean(client_id), "reason" => %Clean(reason)),
            Event::ConnectionRefused { peer, code, reason } => warn!(log, "connection refused";
                "event" => event, "peer" => %peer, "code" => code, "reason" => %Clean(reason)),
            Event::PublishReceived {
                client_id,
                qos,
                bytes,
            } => trace!(log, "publish received";
                "event" => event, "client_id" => %Clean(client_id), "qos" => qos, "bytes" => bytes),
            Event::AcksSent {
                client_id,
                pubacks,
                pubrecs,
            } => trace!(log, "acks sent";
                "event" => event, "client_id" => %Clean(client_id), "pubacks" => pubacks,
                "pubrecs" => pubrecs),
            Event::OutcomesCommitted {
                client_id,
                messages,
                waited,
            } => trace!(log, "outcomes committed";
                "event" => event, "client_id" => %Clean(client_id), "messages" => messages,
                "waited_us" => micros(waited)),
            Event::ProtocolError { client_id, error } => warn!(log, "protocol error, closing";
                "event" => event, "client_id" => %Clean(client_id), "error" => %Clean(error)),
            Event::MessageProcessed {
                client_id,
                topic,
                readings,
                took,
            } => debug!(log, "message processed";
                "event" => event, "client_id" => %Clean(client_id), "topic" => %Clean(topic),
                "readings" => readings, "duration_us" => micros(took)),
            Event::MessageRejected {
                client_id,
                topic,
                class,
                reason,
            } => warn!(log, "message rejected, kept as a dead letter";
                "event" => event, "client_id" => %Clean(client_id), "topic" => %Clean(topic),
                "class" => class, "reason" => %Clean(reason)),
            Event::WillPublished { client_id, topic } => info!(log, "will message published";
                "event" => event, "client_id" => %Clean(client_id), "topic" => %Clean(topic)),
            Event::BatchCommitted {
                rows,
                duplicates,
                dead_letters,
                took,
            } => debug!(log, "batch committed";
                "event" => event, "rows" => rows, "duplicates" => duplicates,
                "dead_letters" => dead_letters, "duration_us" => micros(took)),
            Event::StoreFailed { error, requests } => {
                error!(log, "store write failed, nothing acked";
                "event" => event, "error" => %Clean(error), "requests" => requests)
            }
            Event::DeadLettersShed { rows, bytes, quota } => {
                warn!(log, "dead letters over their quota: the oldest shed";
                "event" => event, "rows" => rows, "bytes" => bytes, "quota_bytes" => quota)
            }
            Event::GenerationMerged { readings, took } => {
                debug!(log, "a generation of the log merged into its chunk";
                "event" => event, "readings" => readings, "duration_ms" => took.as_millis() as u64)
            }
            Event::ChunksExpired {
                chunks,
                readings,
                retention,
            } => info!(log, "retention dropped whole chunks";
                "event" => event, "chunks" => chunks, "readings" => readings,
                "retention" => %humantime_serde::re::humantime::format_duration(retention)),
            Event::StoreOpened {
                version,
                migrated_from,
            } => info!(log, "database opened";
                "event" => event, "schema_version" => version, "migrated_from" => ?migrated_from),
            Event::ActorPanicked { panic } => error!(log, "panic caught";
                "event" => event, "panic" => %Clean(panic)),
            Event::ActorRestarting {
                actor,
                restarts,
                in_window,
                delay,
                reason,
            } => warn!(log, "restarting actor after a backoff";
                "event" => event, "child" => %Clean(actor), "restarts" => restarts,
                "restarts_in_window" => in_window, "delay_ms" => delay.as_millis() as u64,
                "reason" => %Clean(reason)),
            Event::Escalated {
                actor,
                restarts,
                window,
            } => slog::crit!(log, "restart intensity exceeded: stopping Eliot";
                "event" => event, "child" => %Clean(actor), "restarts" => restarts,
                "window_ms" => window.as_millis() as u64),
            Event::BreakerTransition {
                breaker,
                from,
                to,
                reason,
            } => warn!(log, "circuit breaker changed state";
                "event" => event, "breaker" => %Clean(breaker), "from" => from, "to" => to,
                "reason" => %Clean(reason)),
            Event::DeviceBreakerTripped {
                client_id,
                reason,
                cooldown,
            } => warn!(log, "device breaker tripped: closing it and refusing it for a cool-down";
                "event" => event, "client_id" => %Clean(client_id), "reason" => %Clean(reason),
                "cooldown_ms" => cooldown.as_millis() as u64),
            Event::DeviceRefused {
                client_id,
                reason,
                retry_after,
            } => warn!(log, "device refused: its breaker is open";
                "event" => event, "client_id" => %Clean(client_id), "reason" => %Clean(reason),
                "retry_after_ms" => retry_after.as_millis() as u64),
            Event::StoreRetry { rows, wait, error } => {
                warn!(log, "commit failed; nothing acked, retrying the batch";
                "event" => event, "rows" => rows, "wait_ms" => wait.as_millis() as u64,
                "error" => %Clean(error))
            }
            Event::ShutdownStarted { deadline } => {
                info!(log, "shutting down: intake stopped, draining";
                "event" => event, "deadline_ms" => deadline.as_millis() as u64)
            }
            Event::ShutdownFinished { took, forced } => info!(log, "shutdown finished";
                "event" => event, "duration_ms" => took.as_millis() as u64,
                "forced" => forced),
            Event::AcceptFailed { error, pause } => error!(log, "accept failed, pausing accepts";
                "event" => event, "error" => %Clean(error), "pause_ms" => pause.as_millis() as u64),
            Event::DescriptorLimit {
                limit,
                wanted,
                max_connections,
                error,
            } => match error {
                Some(error) => warn!(log, "cannot raise the open-file limit";
                    "event" => event, "wanted" => wanted, "error" => %Clean(error)),
                None => warn!(log,
                    "the open-file limit is below what mqtt.max_connections needs: \
                     taking only the connections it leaves room for";
                    "event" => event, "limit" => limit, "wanted" => wanted,
                    "max_connections" => max_connections),
            },
            Event::HttpListening { addr } => info!(log, "HTTP server listening";
                "event" => event, "addr" => %addr),
            Event::HttpFailed { error } => error!(log, "HTTP server failed, restarting it";
                "event" => event, "error" => %Clean(error)),
            Event::TlsListening { addr } => info!(log, "listening for MQTT devices over TLS";
                "event" => event, "addr" => %addr),
            Event::Hangup { tls: true } => info!(log,
                "SIGHUP: reading the TLS files again; nothing else is reloaded";
                "event" => event),
            Event::Hangup { tls: false } => info!(log,
                "SIGHUP: nothing to reload (TLS is off); going on";
                "event" => event),
            Event::TlsReloaded { error: None } => {
                info!(log, "TLS certificate, key and client CA reloaded";
                "event" => event)
            }
            Event::TlsReloaded { error: Some(error) } => error!(log,
                "cannot reload the TLS files; the previous ones stay in use";
                "event" => event, "error" => %Clean(error)),
            Event::CredentialsRevoked {
                device_id: Some(device_id),
                cause,
                connections,
            } => info!(log, "device credentials revoked, closing its connections";
                "event" => event, "device_id" => %Clean(device_id), "cause" => cause,
                "connections" => connections),
            Event::CredentialsRevoked {
                device_id: None,
                cause,
                connections,
            } => warn!(log, "revocations were missed: closing every authenticated connection";
                "event" => event, "cause" => cause, "connections" => connections),
            Event::RevocationsUnreadable { error, retry_in } => error!(log,
                "cannot read the revocation log; revoked devices stay connected until it can be read";
                "event" => event, "error" => %Clean(error), "retry_in_ms" => retry_in.as_millis() as u64),
            Event::UpstreamConnected {
                connection,
                broker,
                session_present,
            } => info!(log, "connected to the upstream broker";
                "event" => event, "connection" => %Clean(connection), "broker" => %Clean(broker),
                "session_present" => session_present),
            Event::UpstreamSessionLost { connection } => warn!(log,
                "the upstream broker has no session for Eliot: messages sent while Eliot was away may be missing (possible gap)";
                "event" => event, "connection" => %Clean(connection)),
            Event::UpstreamConnectFailed {
                connection,
                error,
                attempt,
                retry_in,
            } => warn!(log, "upstream broker connection failed; retrying after a delay";
                "event" => event, "connection" => %Clean(connection), "error" => %Clean(error),
                "attempt" => attempt, "retry_in_ms" => retry_in.as_millis() as u64),
            Event::UpstreamSubscribed {
                connection,
                filters,
                refused,
            } => {
                if refused.is_empty() {
                    info!(log, "subscribed at the upstream broker";
                    "event" => event, "connection" => %Clean(connection), "filters" => filters)
                } else {
                    error!(log, "the upstream broker refused subscriptions";
                    "event" => event, "connection" => %Clean(connection), "filters" => filters,
                    "refused" => %Clean(refused))
                }
            }
            Event::UpstreamDisconnected { connection, reason } => warn!(log,
                "the upstream broker closed the connection";
                "event" => event, "connection" => %Clean(connection), "reason" => %Clean(reason)),
            Event::UpstreamNotStored {
                connection,
                messages,
                error,
            } => {
                error!(log, "messages from the upstream broker not stored; none acked, reconnecting for redelivery";
                "event" => event, "connection" => %Clean(connection), "messages" => messages,
                "error" => %Clean(error))
            }
            Event::StartFailed { error } => slog::crit!(log, "cannot start";
                "event" => event, "error" => %Clean(error)),
        }
    }
}

#[cfg(test)]
mod tests;
