//! Every log line Eliot writes comes from one of these typed events, so the keys are
//! stable for whoever parses the JSON logs. No event carries a password or token.

use std::net::SocketAddr;
use std::time::Duration;

use slog::{debug, error, info, warn, Logger};

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
        reason: &'a str,
    },
    ProtocolError {
        client_id: &'a str,
        error: &'a str,
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
}

fn micros(d: Duration) -> u64 {
    d.as_micros().try_into().unwrap_or(u64::MAX)
}

impl Event<'_> {
    pub fn emit(&self, log: &Logger) {
        match *self {
            Event::Listening { addr } => {
                info!(log, "listening for MQTT devices"; "event" => "listening", "addr" => %addr)
            }
            Event::DeviceConnected {
                client_id,
                peer,
                protocol,
                keep_alive,
                clean_start,
            } => info!(log, "device connected";
                "event" => "device_connected", "client_id" => client_id, "peer" => %peer,
                "protocol" => protocol, "keep_alive_s" => keep_alive, "clean_start" => clean_start),
            Event::DeviceDisconnected { client_id, reason } => info!(log, "device disconnected";
                "event" => "device_disconnected", "client_id" => client_id, "reason" => reason),
            Event::ConnectionRefused { peer, reason } => warn!(log, "connection refused";
                "event" => "connection_refused", "peer" => %peer, "reason" => reason),
            Event::ProtocolError { client_id, error } => warn!(log, "protocol error, closing";
                "event" => "protocol_error", "client_id" => client_id, "error" => error),
            Event::MessageProcessed {
                client_id,
                topic,
                readings,
                took,
            } => debug!(log, "message processed";
                "event" => "message_processed", "client_id" => client_id, "topic" => topic,
                "readings" => readings, "duration_us" => micros(took)),
            Event::MessageRejected {
                client_id,
                topic,
                reason,
            } => warn!(log, "message rejected, kept as a dead letter";
                "event" => "message_rejected", "client_id" => client_id, "topic" => topic,
                "reason" => reason),
            Event::WillPublished { client_id, topic } => info!(log, "will message published";
                "event" => "will_published", "client_id" => client_id, "topic" => topic),
            Event::BatchCommitted {
                rows,
                duplicates,
                dead_letters,
                took,
            } => debug!(log, "batch committed";
                "event" => "batch_committed", "rows" => rows, "duplicates" => duplicates,
                "dead_letters" => dead_letters, "duration_us" => micros(took)),
            Event::StoreFailed { error, requests } => {
                error!(log, "store write failed, nothing acked";
                "event" => "store_failed", "error" => error, "requests" => requests)
            }
            Event::ActorPanicked { panic } => error!(log, "actor panicked, restarting it";
                "event" => "actor_panicked", "panic" => panic),
            Event::ActorRestarting {
                actor,
                restarts,
                in_window,
                delay,
                reason,
            } => warn!(log, "restarting actor after a backoff";
                "event" => "actor_restarting", "child" => actor, "restarts" => restarts,
                "restarts_in_window" => in_window, "delay_ms" => delay.as_millis() as u64,
                "reason" => reason),
            Event::Escalated {
                actor,
                restarts,
                window,
            } => slog::crit!(log, "restart intensity exceeded: stopping Eliot";
                "event" => "escalated", "child" => actor, "restarts" => restarts,
                "window_ms" => window.as_millis() as u64),
            Event::BreakerTransition {
                breaker,
                from,
                to,
                reason,
            } => warn!(log, "circuit breaker changed state";
                "event" => "breaker_transition", "breaker" => breaker, "from" => from, "to" => to,
                "reason" => reason),
            Event::DeviceBreakerTripped {
                client_id,
                reason,
                cooldown,
            } => warn!(log, "device breaker tripped: closing it and refusing it for a cool-down";
                "event" => "device_breaker_tripped", "client_id" => client_id, "reason" => reason,
                "cooldown_ms" => cooldown.as_millis() as u64),
            Event::DeviceRefused {
                client_id,
                reason,
                retry_after,
            } => warn!(log, "device refused: its breaker is open";
                "event" => "device_refused", "client_id" => client_id, "reason" => reason,
                "retry_after_ms" => retry_after.as_millis() as u64),
            Event::StoreRetry { rows, wait, error } => {
                warn!(log, "commit failed; nothing acked, retrying the batch";
                "event" => "store_retry", "rows" => rows, "wait_ms" => wait.as_millis() as u64,
                "error" => error)
            }
            Event::ShutdownStarted { deadline } => {
                info!(log, "shutting down: intake stopped, draining";
                "event" => "shutdown_started", "deadline_ms" => deadline.as_millis() as u64)
            }
            Event::ShutdownFinished { took, forced } => info!(log, "shutdown finished";
                "event" => "shutdown_finished", "duration_ms" => took.as_millis() as u64,
                "forced" => forced),
        }
    }
}
