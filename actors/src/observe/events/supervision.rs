//! The supervision tree's events: a panic caught, a child restarted or escalated, a
//! circuit breaker's change of state, and a misbehaving device's breaker.

use std::time::Duration;

use slog::{error, warn, Logger};

use super::values::Clean;
use super::Observe;
use crate::observe::Metrics;

/// Emitted by the actor itself, whose logger carries its name.
pub struct ActorPanicked<'a> {
    pub panic: &'a str,
}

impl Observe for ActorPanicked<'_> {
    const NAME: &'static str = "actor_panicked";
    const MOVES: &'static [&'static str] = &["eliot_panics_total"];

    fn log(&self, log: &Logger) {
        error!(log, "panic caught"; "event" => Self::NAME, "panic" => %Clean(self.panic))
    }

    fn count(&self, m: &Metrics) {
        m.panics.inc();
    }
}

/// A child stopped; it is restarted after `delay`.
pub struct ActorRestarting<'a> {
    pub actor: &'a str,
    pub restarts: u32,
    pub in_window: u32,
    pub delay: Duration,
    pub reason: &'a str,
}

impl Observe for ActorRestarting<'_> {
    const NAME: &'static str = "actor_restarting";
    const MOVES: &'static [&'static str] = &["eliot_restarts_total"];

    fn log(&self, log: &Logger) {
        let ActorRestarting {
            actor,
            restarts,
            in_window,
            delay,
            reason,
        } = *self;
        warn!(log, "restarting actor after a backoff";
            "event" => Self::NAME, "child" => %Clean(actor), "restarts" => restarts,
            "restarts_in_window" => in_window, "delay_ms" => delay.as_millis() as u64,
            "reason" => %Clean(reason))
    }

    fn count(&self, m: &Metrics) {
        let child = [("child", self.actor.to_owned())];
        m.restarts.get_or_create(&child).inc();
    }
}

/// A child restarted more often than its restart intensity allows: Eliot stops.
pub struct Escalated<'a> {
    pub actor: &'a str,
    pub restarts: u32,
    pub window: Duration,
}

impl Observe for Escalated<'_> {
    const NAME: &'static str = "escalated";
    const MOVES: &'static [&'static str] = &["eliot_escalations_total"];

    fn log(&self, log: &Logger) {
        let Escalated {
            actor,
            restarts,
            window,
        } = *self;
        slog::crit!(log, "restart intensity exceeded: stopping Eliot";
            "event" => Self::NAME, "child" => %Clean(actor), "restarts" => restarts,
            "window_ms" => window.as_millis() as u64)
    }

    fn count(&self, m: &Metrics) {
        m.escalations.inc();
    }
}

/// A circuit breaker (one per dependency) changed state.
pub struct BreakerTransition<'a> {
    pub breaker: &'a str,
    pub from: &'static str,
    pub to: &'static str,
    pub reason: &'a str,
}

impl Observe for BreakerTransition<'_> {
    const NAME: &'static str = "breaker_transition";
    const MOVES: &'static [&'static str] =
        &["eliot_breaker_transitions_total", "eliot_breaker_state"];

    fn log(&self, log: &Logger) {
        let BreakerTransition {
            breaker,
            from,
            to,
            reason,
        } = *self;
        warn!(log, "circuit breaker changed state";
            "event" => Self::NAME, "breaker" => %Clean(breaker), "from" => from, "to" => to,
            "reason" => %Clean(reason))
    }

    fn count(&self, m: &Metrics) {
        let label = [("breaker", self.breaker.to_owned())];
        m.breaker_transitions.get_or_create(&label).inc();
        let state = match self.to {
            "open" => 1,
            "half_open" => 2,
            _ => 0,
        };
        m.breaker_state.get_or_create(&label).set(state);
    }
}

/// A device misbehaved past its breaker's threshold: it is closed, and refused for
/// `cooldown`.
pub struct DeviceBreakerTripped<'a> {
    pub client_id: &'a str,
    pub reason: &'a str,
    pub cooldown: Duration,
}

impl Observe for DeviceBreakerTripped<'_> {
    const NAME: &'static str = "device_breaker_tripped";
    const MOVES: &'static [&'static str] = &["eliot_device_breaker_trips_total"];

    fn log(&self, log: &Logger) {
        let DeviceBreakerTripped {
            client_id,
            reason,
            cooldown,
        } = *self;
        warn!(log, "device breaker tripped: closing it and refusing it for a cool-down";
            "event" => Self::NAME, "client_id" => %Clean(client_id), "reason" => %Clean(reason),
            "cooldown_ms" => cooldown.as_millis() as u64)
    }

    fn count(&self, m: &Metrics) {
        m.device_breaker_trips.inc();
    }
}

/// A device's CONNECT was refused because its breaker is open (CONNACK quota exceeded).
pub struct DeviceRefused<'a> {
    pub client_id: &'a str,
    pub reason: &'a str,
    pub retry_after: Duration,
}

impl Observe for DeviceRefused<'_> {
    const NAME: &'static str = "device_refused";
    const MOVES: &'static [&'static str] = &[
        "eliot_device_refusals_total",
        "eliot_connections_refused_total",
    ];

    fn log(&self, log: &Logger) {
        let DeviceRefused {
            client_id,
            reason,
            retry_after,
        } = *self;
        warn!(log, "device refused: its breaker is open";
            "event" => Self::NAME, "client_id" => %Clean(client_id), "reason" => %Clean(reason),
            "retry_after_ms" => retry_after.as_millis() as u64)
    }

    fn count(&self, m: &Metrics) {
        m.device_refusals.inc();
        let code = [("code", "quota_exceeded")];
        m.connections_refused.get_or_create(&code).inc();
    }
}
