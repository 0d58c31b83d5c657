//! Eliot's restart policy, which actix's `Supervisor` lacks: each restart of a child
//! waits an exponentially growing, jittered delay, and more than `max_restarts` restarts
//! within `window` escalate instead: the tree shuts down and the process exits non-zero,
//! so that an outer supervisor (systemd, Kubernetes) takes over.

use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::backoff::{jitter, Backoff};
use super::health_monitor::{Change, Lifecycle};
use super::window::SlidingWindow;
use crate::settings::Problems;

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

impl RestartSettings {
    pub fn validate(&self, problems: &mut Problems) {
        problems.positive("window", self.window);
        problems.positive("backoff_initial", self.backoff_initial);
        problems.ordered(
            ("backoff_initial", self.backoff_initial),
            ("backoff_max", self.backoff_max),
        );
    }
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

/// The policy itself, without an actor: restarts within the window, and their delays.
#[derive(Debug, Clone)]
pub struct RestartPolicy {
    max_restarts: u32,
    recent: SlidingWindow,
    backoff: Backoff,
}

impl RestartPolicy {
    pub fn new(settings: &RestartSettings) -> Self {
        RestartPolicy {
            max_restarts: settings.max_restarts,
            recent: SlidingWindow::new(settings.window),
            backoff: Backoff::new(settings.backoff_initial, settings.backoff_max),
        }
    }

    /// Counts a restart at `now` and says what to do.
    pub fn decide(&mut self, now: Instant) -> Decision {
        let restarts = u32::try_from(self.recent.record(now)).unwrap_or(u32::MAX);
        if restarts > self.max_restarts {
            return Decision::Escalate { restarts };
        }
        let delay = jitter(self.backoff.nth(restarts));
        Decision::Restart { delay, restarts }
    }

    pub fn window(&self) -> Duration {
        self.recent.span()
    }
}

/// The restart bookkeeping one supervised child carries across its restarts (actix
/// restarts the same struct, so this survives).
pub struct Restarts {
    child: String,
    policy: RestartPolicy,
    /// Set by `restarting`, consumed by `started`.
    delay: Option<Duration>,
    escalated: bool,
    /// The health monitor, told of every start and restart.
    health: Recipient<Lifecycle>,
    escalations: Escalations,
}

impl Restarts {
    pub fn new(
        child: impl Into<String>,
        settings: &RestartSettings,
        health: Recipient<Lifecycle>,
        escalations: Escalations,
    ) -> Self {
        Restarts {
            child: child.into(),
            policy: RestartPolicy::new(settings),
            delay: None,
            escalated: false,
            health,
            escalations,
        }
    }

    pub fn child(&self) -> &str {
        &self.child
    }

    fn tell(&self, change: Change) {
        self.health.do_send(Lifecycle {
            child: self.child.clone(),
            change,
        });
    }

    /// Call from `Supervised::restarting`, with why the child stopped.
    pub fn restarting(&mut self, reason: String) {
        match self.policy.decide(Instant::now()) {
            Decision::Restart { delay, .. } => {
                self.delay = Some(delay);
                self.tell(Change::Restarting { reason, delay });
            }
            Decision::Escalate { restarts } => {
                self.escalated = true;
                self.tell(Change::Failed { reason });
                let _ = self.escalations.try_send(Escalation {
                    child: self.child.clone(),
                    restarts,
                    window: self.policy.window(),
                });
            }
        }
    }

    /// Call from `Actor::started`: runs `init` once the backoff delay (if this is a
    /// restart) has passed; the mailbox waits meanwhile. The health monitor hears that the
    /// child runs only once `init` is done and did not stop it (the store writer's `init`
    /// opens the database: `/health` must not say it runs while it is still opening, or
    /// could not). A child that escalated stays idle: the tree is shutting down around it.
    pub fn start<A>(&mut self, ctx: &mut Context<A>, init: fn(&mut A, &mut Context<A>))
    where
        A: Actor<Context = Context<A>>,
    {
        if self.escalated {
            ctx.wait(actix::fut::wrap_future(std::future::pending::<()>()));
            return;
        }
        let delay = self.delay.take().unwrap_or_default();
        let (health, child) = (self.health.clone(), self.child.clone());
        // A first start runs `init` on the actor's first turn, without a timer.
        let backoff = async move {
            if !delay.is_zero() {
                actix::clock::sleep(delay).await;
            }
        };
        ctx.wait(actix::fut::wrap_future(backoff).map(
            move |(), actor: &mut A, ctx: &mut Context<A>| {
                init(actor, ctx);
                if ctx.state() == ActorState::Running {
                    health.do_send(Lifecycle {
                        child,
                        change: Change::Started,
                    });
                }
            },
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_restarts: u32) -> RestartPolicy {
        RestartPolicy::new(&RestartSettings {
            max_restarts,
            window: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
        })
    }

    #[test]
    fn delays_double_with_jitter_up_to_the_cap_then_escalate() {
        let mut p = policy(5);
        let t0 = Instant::now();
        let mut delays = Vec::new();
        for i in 0..5 {
            match p.decide(t0 + Duration::from_millis(i)) {
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
            p.decide(t0 + Duration::from_millis(6)),
            Decision::Escalate { restarts: 6 }
        );
    }

    #[test]
    fn restarts_outside_the_window_are_forgotten() {
        let mut p = policy(2);
        let t0 = Instant::now();
        p.decide(t0);
        p.decide(t0 + Duration::from_secs(1));
        // Both earlier restarts are more than 10 s old: this one is the first again.
        match p.decide(t0 + Duration::from_secs(12)) {
            Decision::Restart { restarts, .. } => assert_eq!(restarts, 1),
            other => panic!("{other:?}"),
        }
    }

    /// Records what the health monitor would hear.
    struct Heard(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl Actor for Heard {
        type Context = Context<Self>;
    }

    impl Handler<Lifecycle> for Heard {
        type Result = ();

        fn handle(&mut self, heard: Lifecycle, _: &mut Context<Self>) {
            let change = match heard.change {
                Change::Started => "started",
                Change::Restarting { .. } => "restarting",
                Change::Failed { .. } => "failed",
            };
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {change}", heard.child));
        }
    }

    /// A child whose `init` fails (stops it), or not.
    struct Child {
        restarts: Restarts,
        fails: bool,
    }

    impl Actor for Child {
        type Context = Context<Self>;

        fn started(&mut self, ctx: &mut Context<Self>) {
            self.restarts.start(ctx, |child, ctx| {
                if child.fails {
                    ctx.stop();
                }
            });
        }
    }

    #[actix::test]
    async fn a_child_is_told_running_only_once_its_init_succeeded() {
        let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let health = Heard(heard.clone()).start().recipient();
        let settings = RestartSettings {
            max_restarts: 3,
            window: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(10),
        };
        for (name, fails) in [("opens", false), ("cannot-open", true)] {
            let (escalations, _) = mpsc::channel(1);
            let restarts = Restarts::new(name, &settings, health.clone(), escalations);
            Child { restarts, fails }.start();
        }
        actix::clock::sleep(Duration::from_millis(100)).await;
        assert_eq!(*heard.lock().unwrap(), ["opens started"]);
    }
}
