//! `Breaker`: a circuit breaker as an actor, one per dependency: the store, and the
//! upstream broker when that mode is on. It runs a `Circuit`, turns it half-open when the
//! open period ends, and logs every transition and reports it to the health monitor.

use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::{Deserialize, Serialize};

use super::circuit::{BreakerSettings, BreakerState, CallResult, Circuit};
use super::device_guard::DeviceBreakerSettings;
use super::health_monitor::BreakerChanged;
use crate::observe::{Event, Telemetry};
use crate::settings::Problems;

/// The `[breakers]` section: one circuit breaker per dependency, and the device guard's.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BreakersSettings {
    /// Guards the SQLite store: while it is open, nothing is written or acked.
    pub store: BreakerSettings,
    /// Guards the upstream broker (shared by every upstream connection): while it is
    /// open, no connection is tried.
    pub upstream: BreakerSettings,
    /// One per device that keeps sending rejected messages.
    pub device: DeviceBreakerSettings,
}

impl BreakersSettings {
    pub fn validate(&self, problems: &mut Problems) {
        problems.section("store", |p| self.store.validate(p));
        problems.section("upstream", |p| self.upstream.validate(p));
        problems.section("device", |p| self.device.validate(p));
    }
}

/// The result of a call through the breaker. Answered with how long to wait before the
/// next call (zero when calls may go on).
#[derive(Message)]
#[rtype(result = "Duration")]
pub struct Report(pub CallResult);

pub struct Breaker {
    /// The dependency, e.g. `store`; the breaker's name in logs and health.
    name: String,
    circuit: Circuit,
    /// The health monitor, told of every transition.
    health: Recipient<BreakerChanged>,
    telemetry: Telemetry,
}

impl Breaker {
    pub fn new(
        name: &str,
        settings: BreakerSettings,
        health: Recipient<BreakerChanged>,
        telemetry: &Telemetry,
    ) -> Self {
        Breaker {
            name: name.to_owned(),
            circuit: Circuit::new(settings),
            health,
            telemetry: telemetry.for_actor(format!("breaker:{name}")),
        }
    }

    fn announce(&self, from: BreakerState, transition: Option<(BreakerState, String)>) {
        let Some((to, reason)) = transition else {
            return;
        };
        Event::BreakerTransition {
            breaker: &self.name,
            from: from.name(),
            to: to.name(),
            reason: &reason,
        }
        .emit(&self.telemetry);
        self.health.do_send(BreakerChanged {
            breaker: self.name.clone(),
            state: to,
            reason,
        });
    }
}

impl Actor for Breaker {
    type Context = Context<Self>;

    fn started(&mut self, _: &mut Context<Self>) {
        // So that health lists the breaker from the start, not from its first change.
        let state = self.circuit.state();
        let reason = match state {
            BreakerState::Closed => "no call has failed since it started".into(),
            other => format!("{} when the breaker restarted", other.name()),
        };
        self.health.do_send(BreakerChanged {
            breaker: self.name.clone(),
            state,
            reason,
        });
    }
}

impl Supervised for Breaker {}

crate::answers_pings!(Breaker);

impl Handler<Report> for Breaker {
    type Result = MessageResult<Report>;

    fn handle(&mut self, report: Report, ctx: &mut Context<Self>) -> Self::Result {
        let from = self.circuit.state();
        let verdict = self.circuit.decide(&report.0, Instant::now());
        self.announce(from, verdict.transition);
        if let Some(after) = verdict.half_open_after {
            ctx.run_later(after, |breaker, _| {
                let from = breaker.circuit.state();
                let transition = breaker.circuit.half_open();
                breaker.announce(from, transition);
            });
        }
        MessageResult(verdict.wait)
    }
}
