//! `Circuit`: the circuit-breaker state machine, kept apart from the actor that runs it
//! so that it is tested without one.
//!
//! Closed: calls go through; `failure_threshold` failures in a row open it. Open: no call
//! is made until the open period has passed; then one trial call is let through
//! (half-open). The trial's success closes the breaker; its failure opens it again for
//! twice as long (up to `open_max`).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::backoff::Backoff;
use crate::settings::Problems;

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

impl BreakerSettings {
    pub fn validate(&self, problems: &mut Problems) {
        problems.at_least("failure_threshold", self.failure_threshold, 1);
        problems.positive("open_for", self.open_for);
        problems.positive("retry_delay", self.retry_delay);
        problems.ordered(("open_for", self.open_for), ("open_max", self.open_max));
    }
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

/// The result of one call through the breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult {
    Success,
    Failure(String),
}

/// What a report decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// How long the caller waits before its next call.
    pub wait: Duration,
    /// Set when the breaker just opened: it turns half-open after this long.
    pub half_open_after: Option<Duration>,
    /// The state the breaker moved to, and why; `None` when it stayed where it was.
    pub transition: Option<(BreakerState, String)>,
}

#[derive(Debug, Clone)]
pub struct Circuit {
    settings: BreakerSettings,
    state: BreakerState,
    consecutive_failures: u32,
    /// The open period: `open_for`, doubled by each failed trial.
    open_period: Backoff,
    /// When the current open period ends.
    open_until: Option<Instant>,
}

impl Circuit {
    pub fn new(settings: BreakerSettings) -> Self {
        Circuit {
            open_period: Backoff::new(settings.open_for, settings.open_max),
            settings,
            state: BreakerState::Closed,
            consecutive_failures: 0,
            open_until: None,
        }
    }

    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// Takes the result of a call made at `now`.
    pub fn decide(&mut self, result: &CallResult, now: Instant) -> Verdict {
        let error = match result {
            CallResult::Success => {
                self.consecutive_failures = 0;
                self.open_period.reset();
                self.open_until = None;
                let transition = self.move_to(BreakerState::Closed, || "a call succeeded".into());
                return Verdict {
                    wait: Duration::ZERO,
                    half_open_after: None,
                    transition,
                };
            }
            CallResult::Failure(error) => error,
        };
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let trips = match self.state {
            BreakerState::Closed => self.consecutive_failures >= self.settings.failure_threshold,
            BreakerState::HalfOpen => true,
            BreakerState::Open => false,
        };
        if trips {
            let period = self.open_period.next_delay();
            self.open_until = Some(now + period);
            let failures = self.consecutive_failures;
            let transition = self.move_to(BreakerState::Open, || {
                format!("{failures} failures in a row; open for {period:?}; last: {error}")
            });
            return Verdict {
                wait: period,
                half_open_after: Some(period),
                transition,
            };
        }
        let wait = match (self.state, self.open_until) {
            (BreakerState::Open, Some(until)) => until.saturating_duration_since(now),
            _ => self.settings.retry_delay,
        };
        Verdict {
            wait,
            half_open_after: None,
            transition: None,
        }
    }

    /// The open period is over: the next call is a trial. Answers the transition, if the
    /// breaker was still open.
    pub fn half_open(&mut self) -> Option<(BreakerState, String)> {
        if self.state != BreakerState::Open {
            return None;
        }
        self.move_to(BreakerState::HalfOpen, || {
            "open period over: one trial call".into()
        })
    }

    fn move_to(
        &mut self,
        to: BreakerState,
        reason: impl FnOnce() -> String,
    ) -> Option<(BreakerState, String)> {
        if self.state == to {
            return None;
        }
        self.state = to;
        Some((to, reason()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circuit() -> Circuit {
        Circuit::new(BreakerSettings {
            failure_threshold: 3,
            open_for: Duration::from_secs(1),
            open_max: Duration::from_secs(3),
            retry_delay: Duration::from_millis(10),
        })
    }

    #[test]
    fn opens_after_the_threshold_and_doubles_on_failed_trials() {
        let mut c = circuit();
        let t = Instant::now();
        let fail = CallResult::Failure("disk I/O error".into());
        assert_eq!(c.decide(&fail, t).wait, Duration::from_millis(10));
        assert_eq!(c.decide(&fail, t).wait, Duration::from_millis(10));
        assert_eq!(c.state(), BreakerState::Closed);
        let opened = c.decide(&fail, t);
        assert_eq!(c.state(), BreakerState::Open);
        assert_eq!(opened.half_open_after, Some(Duration::from_secs(1)));
        let (to, reason) = opened.transition.unwrap();
        assert_eq!(to, BreakerState::Open);
        assert!(reason.contains("3 failures in a row"), "{reason}");
        assert!(reason.contains("disk I/O error"), "{reason}");
        // While open, a failure only says how long is left.
        let still = c.decide(&fail, t + Duration::from_millis(400));
        assert_eq!(still.wait, Duration::from_millis(600));
        assert_eq!(still.transition, None);
        // The open period passes; the trial fails: open again, twice as long, then capped.
        assert!(c.half_open().is_some());
        assert_eq!(c.decide(&fail, t).wait, Duration::from_secs(2));
        c.half_open();
        assert_eq!(c.decide(&fail, t).wait, Duration::from_secs(3));
        // A successful trial closes it and resets the period.
        c.half_open();
        let closed = c.decide(&CallResult::Success, t);
        assert_eq!(closed.wait, Duration::ZERO);
        assert_eq!(c.state(), BreakerState::Closed);
        assert_eq!(
            closed.transition.map(|(to, _)| to),
            Some(BreakerState::Closed)
        );
        for _ in 0..3 {
            c.decide(&fail, t);
        }
        assert_eq!(c.decide(&fail, t).wait, Duration::from_secs(1));
    }

    #[test]
    fn half_open_only_follows_open() {
        let mut c = circuit();
        assert_eq!(c.half_open(), None);
        assert_eq!(c.state(), BreakerState::Closed);
    }
}
