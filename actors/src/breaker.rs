//! `Breaker`: a circuit breaker as an actor, one per dependency (the store, for now).
//!
//! Closed: calls go through; `failure_threshold` failures in a row open it. Open: no call
//! is made until `open_for` has passed; then one trial call is let through (half-open).
//! The trial's success closes the breaker; its failure opens it again for twice as long
//! (up to `open_max`). Every transition is logged and reported to the health monitor.

use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use slog::Logger;

use crate::events::Event;
use crate::health::{BreakerChanged, HealthMonitor};

/// A `[breakers.*]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSettings {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// How long the breaker stays open before a trial call.
    #[serde(with = "humantime_serde")]
    pub open_for: Duration,
    /// Each failed trial doubles the open time, up to this.
    #[serde(with = "humantime_serde")]
    pub open_max: Duration,
    /// Wait between retries while the breaker is still closed.
    #[serde(with = "humantime_serde")]
    pub retry_delay: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// The result of a call through the breaker. Answered with how long to wait before the
/// next call (zero when calls may go on).
#[derive(Message)]
#[rtype(result = "Duration")]
pub enum Report {
    Success,
    Failure(String),
}

pub struct Breaker {
    /// The dependency, e.g. `store`; the breaker's name in logs and health.
    name: String,
    settings: BreakerSettings,
    state: BreakerState,
    consecutive_failures: u32,
    /// The current open period: `open_for`, doubled by each failed trial.
    open_period: Duration,
    /// When the current open period ends.
    open_until: Option<Instant>,
    health: Addr<HealthMonitor>,
    log: Logger,
}

/// What a report decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// How long the caller waits before its next call.
    pub wait: Duration,
    /// Set when the breaker just opened: it turns half-open after this long.
    pub half_open_after: Option<Duration>,
}

impl Breaker {
    pub fn new(
        name: &str,
        settings: BreakerSettings,
        health: Addr<HealthMonitor>,
        log: &Logger,
    ) -> Self {
        Breaker {
            name: name.to_owned(),
            open_period: settings.open_for,
            settings,
            state: BreakerState::Closed,
            consecutive_failures: 0,
            open_until: None,
            health,
            log: log.new(slog::o!("actor" => format!("breaker:{name}"))),
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    fn transition(&mut self, to: BreakerState, reason: &str) {
        if self.state == to {
            return;
        }
        Event::BreakerTransition {
            breaker: &self.name,
            from: self.state.name(),
            to: to.name(),
            reason,
        }
        .emit(&self.log);
        self.state = to;
        self.health.do_send(BreakerChanged {
            breaker: self.name.clone(),
            state: to,
            reason: reason.to_owned(),
        });
    }

    /// The state machine: takes a report made at `now`.
    pub fn decide(&mut self, report: &Report, now: Instant) -> Verdict {
        let go_on = Verdict {
            wait: Duration::ZERO,
            half_open_after: None,
        };
        match report {
            Report::Success => {
                self.consecutive_failures = 0;
                self.open_period = self.settings.open_for;
                self.open_until = None;
                self.transition(BreakerState::Closed, "a call succeeded");
                go_on
            }
            Report::Failure(error) => {
                self.consecutive_failures += 1;
                let trips = match self.state {
                    BreakerState::Closed => {
                        self.consecutive_failures >= self.settings.failure_threshold
                    }
                    BreakerState::HalfOpen => {
                        self.open_period = (self.open_period * 2).min(self.settings.open_max);
                        true
                    }
                    BreakerState::Open => false,
                };
                if trips {
                    self.open_until = Some(now + self.open_period);
                    let reason = format!(
                        "{} failures in a row; open for {:?}; last: {error}",
                        self.consecutive_failures, self.open_period
                    );
                    self.transition(BreakerState::Open, &reason);
                    return Verdict {
                        wait: self.open_period,
                        half_open_after: Some(self.open_period),
                    };
                }
                match (self.state, self.open_until) {
                    (BreakerState::Open, Some(until)) => Verdict {
                        wait: until.saturating_duration_since(now),
                        half_open_after: None,
                    },
                    _ => Verdict {
                        wait: self.settings.retry_delay,
                        half_open_after: None,
                    },
                }
            }
        }
    }
}

impl Actor for Breaker {
    type Context = Context<Self>;
}

impl Supervised for Breaker {}

crate::answers_pings!(Breaker);

impl Handler<Report> for Breaker {
    type Result = MessageResult<Report>;

    fn handle(&mut self, report: Report, ctx: &mut Context<Self>) -> Self::Result {
        let verdict = self.decide(&report, Instant::now());
        if let Some(after) = verdict.half_open_after {
            ctx.run_later(after, |breaker, _| {
                if breaker.state == BreakerState::Open {
                    breaker.transition(BreakerState::HalfOpen, "open period over: one trial call");
                }
            });
        }
        MessageResult(verdict.wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> (actix::SystemRunner, Breaker) {
        let system = actix::System::new();
        let log = Logger::root(slog::Discard, slog::o!());
        let health = system.block_on(async {
            HealthMonitor::new(Duration::from_secs(1), Duration::from_secs(60), &log).start()
        });
        let settings = BreakerSettings {
            failure_threshold: 3,
            open_for: Duration::from_secs(1),
            open_max: Duration::from_secs(3),
            retry_delay: Duration::from_millis(10),
        };
        (system, Breaker::new("store", settings, health, &log))
    }

    #[test]
    fn opens_after_the_threshold_and_doubles_on_failed_trials() {
        let (_system, mut b) = breaker();
        let t = Instant::now();
        let fail = Report::Failure("disk I/O error".into());
        assert_eq!(b.decide(&fail, t).wait, Duration::from_millis(10));
        assert_eq!(b.decide(&fail, t).wait, Duration::from_millis(10));
        assert_eq!(b.state(), BreakerState::Closed);
        let opened = b.decide(&fail, t);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(opened.half_open_after, Some(Duration::from_secs(1)));
        // The open period passes; the trial fails: open again, twice as long, then capped.
        b.state = BreakerState::HalfOpen;
        assert_eq!(b.decide(&fail, t).wait, Duration::from_secs(2));
        b.state = BreakerState::HalfOpen;
        assert_eq!(b.decide(&fail, t).wait, Duration::from_secs(3));
        // A successful trial closes it and resets the period.
        b.state = BreakerState::HalfOpen;
        assert_eq!(b.decide(&Report::Success, t).wait, Duration::ZERO);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.open_period, Duration::from_secs(1));
    }
}
