//! Eliot's restart policy, which actix's `Supervisor` lacks: each restart of a child
//! waits an exponentially growing, jittered delay, and more than `max_restarts` restarts
//! within `window` escalate instead: the tree shuts down and the process exits non-zero,
//! so that an outer supervisor (systemd, Kubernetes) takes over.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::health::{Change, HealthMonitor, Lifecycle};

/// The `[supervision]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RestartSettings {
    /// Restarts of one child allowed within `window`; one more escalates.
    pub max_restarts: u32,
    /// The sliding window restarts are counted in.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Delay before the first restart in a window; it doubles with each further one.
    #[serde(with = "humantime_serde")]
    pub backoff_initial: Duration,
    /// The delay never grows past this.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
}

/// A child gave up: too many restarts in too short a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub child: String,
    pub restarts: u32,
    pub window: Duration,
}

/// Where escalations go; the tree's owner waits on the other end.
pub type Escalations = mpsc::Sender<Escalation>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Restart after `delay`; this is restart number `restarts` in the window.
    Restart {
        delay: Duration,
        restarts: u32,
    },
    Escalate {
        restarts: u32,
    },
}

/// The restart bookkeeping one supervised child carries across its restarts (actix
/// restarts the same struct, so this survives).
pub struct Restarts {
    child: String,
    settings: RestartSettings,
    /// When the restarts within the window happened.
    recent: VecDeque<Instant>,
    /// Set by `restarting`, consumed by `started`.
    delay: Option<Duration>,
    escalated: bool,
    health: Addr<HealthMonitor>,
    escalations: Escalations,
}

impl Restarts {
    pub fn new(
        child: impl Into<String>,
        settings: RestartSettings,
        health: Addr<HealthMonitor>,
        escalations: Escalations,
    ) -> Self {
        Restarts {
            child: child.into(),
            settings,
            recent: VecDeque::new(),
            delay: None,
            escalated: false,
            health,
            escalations,
        }
    }

    pub fn child(&self) -> &str {
        &self.child
    }

    /// The policy itself: counts this restart and says what to do.
    pub fn decide(&mut self, now: Instant) -> Decision {
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.settings.window)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(now);
        let restarts = self.recent.len() as u32;
        if restarts > self.settings.max_restarts {
            return Decision::Escalate { restarts };
        }
        let doubled = self
            .settings
            .backoff_initial
            .saturating_mul(1 << (restarts - 1).min(20));
        let delay = jitter(doubled.min(self.settings.backoff_max));
        Decision::Restart { delay, restarts }
    }

    /// Call from `Supervised::restarting`, with why the child stopped.
    pub fn restarting(&mut self, reason: String) {
        match self.decide(Instant::now()) {
            Decision::Restart { delay, .. } => {
                self.delay = Some(delay);
                self.health.do_send(Lifecycle {
                    child: self.child.clone(),
                    change: Change::Restarting { reason, delay },
                });
            }
            Decision::Escalate { restarts } => {
                self.escalated = true;
                self.health.do_send(Lifecycle {
                    child: self.child.clone(),
                    change: Change::Failed { reason },
                });
                let _ = self.escalations.try_send(Escalation {
                    child: self.child.clone(),
                    restarts,
                    window: self.settings.window,
                });
            }
        }
    }

    /// Call from `Actor::started`: runs `init` once the backoff delay (if this is a
    /// restart) has passed; the mailbox waits meanwhile. A child that escalated stays
    /// idle: the tree is shutting down around it.
    pub fn start<A>(&mut self, ctx: &mut Context<A>, init: fn(&mut A, &mut Context<A>))
    where
        A: Actor<Context = Context<A>>,
    {
        if self.escalated {
            ctx.wait(actix::fut::wrap_future(std::future::pending::<()>()));
            return;
        }
        let delay = self.delay.take();
        if delay.is_none() {
            self.health.do_send(Lifecycle {
                child: self.child.clone(),
                change: Change::Started,
            });
            return init_now(ctx, init);
        }
        let health = self.health.clone();
        let child = self.child.clone();
        ctx.wait(
            actix::fut::wrap_future(actix::clock::sleep(delay.unwrap_or_default())).map(
                move |(), actor: &mut A, ctx: &mut Context<A>| {
                    health.do_send(Lifecycle {
                        child,
                        change: Change::Started,
                    });
                    init(actor, ctx);
                },
            ),
        );
    }
}

fn init_now<A: Actor<Context = Context<A>>>(
    ctx: &mut Context<A>,
    init: fn(&mut A, &mut Context<A>),
) {
    ctx.wait(
        actix::fut::ready(()).map(move |(), actor: &mut A, ctx: &mut Context<A>| init(actor, ctx)),
    );
}

/// ±20 %, so that children failing together do not restart in lockstep.
fn jitter(delay: Duration) -> Duration {
    let random = RandomState::new().build_hasher().finish();
    let factor = 0.8 + 0.4 * (random % 1_000) as f64 / 1_000.0;
    delay.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restarts(max: u32) -> Restarts {
        let settings = RestartSettings {
            max_restarts: max,
            window: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
        };
        let system = actix::System::new();
        let health = system.block_on(async {
            HealthMonitor::new(
                Duration::from_secs(1),
                Duration::from_secs(10),
                &slog::Logger::root(slog::Discard, slog::o!()),
            )
            .start()
        });
        let (escalations, _) = mpsc::channel(1);
        Restarts::new("child", settings, health, escalations)
    }

    #[test]
    fn delays_double_with_jitter_up_to_the_cap_then_escalate() {
        let mut r = restarts(5);
        let t0 = Instant::now();
        let mut delays = Vec::new();
        for i in 0..5 {
            match r.decide(t0 + Duration::from_millis(i)) {
                Decision::Restart { delay, restarts } => {
                    assert_eq!(restarts, i as u32 + 1);
                    delays.push(delay.as_millis());
                }
                other => panic!("{other:?}"),
            }
        }
        let expected = [100, 200, 400, 800, 1000];
        for (got, want) in delays.iter().zip(expected) {
            assert!((want * 8 / 10..=want * 12 / 10).contains(got), "{delays:?}");
        }
        assert_eq!(
            r.decide(t0 + Duration::from_millis(6)),
            Decision::Escalate { restarts: 6 }
        );
    }

    #[test]
    fn restarts_outside_the_window_are_forgotten() {
        let mut r = restarts(2);
        let t0 = Instant::now();
        r.decide(t0);
        r.decide(t0 + Duration::from_secs(1));
        // Both earlier restarts are more than 10 s old: this one is the first again.
        match r.decide(t0 + Duration::from_secs(12)) {
            Decision::Restart { restarts, .. } => assert_eq!(restarts, 1),
            other => panic!("{other:?}"),
        }
    }
}
