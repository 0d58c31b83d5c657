//! The `HealthMonitor`: knows the state of every child of the tree.
//!
//! Children report their own lifecycle (started, restarting); the monitor also probes each
//! one with a `Ping` on an interval, so a child that is alive but stuck shows as
//! unresponsive.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::{Deserialize, Serialize};

use super::circuit::BreakerState;
use super::store_progress::{StoreHealth, StoreProgress};
use super::window::SlidingWindow;
use crate::observe::{Event, Telemetry};
use crate::settings::Problems;

/// The `[health]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// How often the health monitor probes every child; also the probe's timeout.
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
}

impl HealthSettings {
    pub fn validate(&self, problems: &mut Problems) {
        problems.positive("probe_interval", self.probe_interval);
    }
}

/// A child tells the monitor about itself.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Lifecycle {
    pub child: String,
    pub change: Change,
}

pub enum Change {
    Started,
    /// The supervisor is restarting the child, after `delay`, because of `reason`.
    Restarting {
        reason: String,
        delay: Duration,
    },
    /// The child restarted too often and gave up: the failure escalates.
    Failed {
        reason: String,
    },
}

/// Asks the monitor to probe a child.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch {
    pub child: String,
    pub probe: Recipient<Ping>,
}

/// Liveness probe: a child answers it from its mailbox, proving it is processing messages.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Ping;

/// Implements the `Ping` answer for a child actor.
#[macro_export]
macro_rules! answers_pings {
    ($actor:ty) => {
        impl actix::Handler<$crate::Ping> for $actor {
            type Result = ();
            fn handle(&mut self, _: $crate::Ping, _: &mut Self::Context) {}
        }
    };
}

#[derive(Message)]
#[rtype(result = "HealthReport")]
pub struct GetHealth;

/// Asks the health monitor for a report; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct HealthProbe(Addr<HealthMonitor>);

impl HealthProbe {
    pub fn new(monitor: Addr<HealthMonitor>) -> Self {
        HealthProbe(monitor)
    }

    /// `None` when the monitor is gone (the tree stopped).
    pub async fn report(&self) -> Option<HealthReport> {
        self.0.send(GetHealth).await.ok()
    }
}

/// A circuit breaker changed state.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BreakerChanged {
    pub breaker: String,
    pub state: BreakerState,
    pub reason: String,
}

/// An upstream connection's state changed.
#[derive(Message, Debug, Clone, Serialize)]
#[rtype(result = "()")]
pub struct LinkHealth {
    /// `upstream-N`.
    pub name: String,
    /// `host:port`.
    pub broker: String,
    pub connected: bool,
    /// Whether the broker had kept Eliot's session at the last CONNACK.
    pub session_present: bool,
    /// Failed attempts since the last successful connection.
    pub failed_attempts: u32,
    pub last_error: Option<String>,
    /// CONNACKs since Eliot started that came without a session the broker had held for
    /// Eliot (in this run or an earlier one): each a possible gap.
    pub sessions_lost: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct BreakerHealth {
    pub name: String,
    pub state: BreakerState,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildState {
    Running,
    Restarting,
    /// Did not answer its last probe in time.
    Unresponsive,
    /// Past its restart intensity: Eliot is stopping.
    Failed,
}

impl ChildState {
    pub fn name(self) -> &'static str {
        match self {
            ChildState::Running => "running",
            ChildState::Restarting => "restarting",
            ChildState::Unresponsive => "unresponsive",
            ChildState::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ChildHealth {
    pub name: String,
    pub state: ChildState,
    /// Restarts since Eliot started.
    pub restarts: u32,
    /// Restarts within the restart window (what the restart intensity counts).
    pub restarts_in_window: u32,
    pub last_failure: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every child running and answering.
    Healthy,
    /// Some child restarting or slow to answer, a breaker not closed, or the store
    /// waiting for room (its `condition`): Eliot serves, with less capacity or none.
    Degraded,
    /// Some child gave up: Eliot is stopping.
    Failed,
}

#[derive(Debug, Clone, Serialize, MessageResponse)]
pub struct HealthReport {
    pub status: Status,
    pub children: Vec<ChildHealth>,
    pub breakers: Vec<BreakerHealth>,
    pub store: StoreHealth,
    /// The upstream broker connections, when the upstream mode is on.
    pub upstream: Vec<LinkHealth>,
}

impl HealthReport {
    pub fn child(&self, name: &str) -> Option<&ChildHealth> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn breaker(&self, name: &str) -> Option<&BreakerHealth> {
        self.breakers.iter().find(|b| b.name == name)
    }
}

pub struct HealthMonitor {
    /// Keyed by child name, so reports list children in a stable order.
    children: BTreeMap<String, ChildHealth>,
    /// When each child restarted, within the restart window.
    restart_times: BTreeMap<String, SlidingWindow>,
    restart_window: Duration,
    breakers: BTreeMap<String, BreakerHealth>,
    upstream: BTreeMap<String, LinkHealth>,
    /// The store writer's figures, read when a report is asked for.
    store: Arc<StoreProgress>,
    probes: Vec<(String, Recipient<Ping>)>,
    /// How often every child is probed; a probe unanswered within it marks the child
    /// unresponsive.
    probe_interval: Duration,
    /// Restarts are logged here, where their count is known.
    telemetry: Telemetry,
}

impl HealthMonitor {
    pub fn new(
        probe_interval: Duration,
        restart_window: Duration,
        store: Arc<StoreProgress>,
        telemetry: &Telemetry,
    ) -> Self {
        HealthMonitor {
            children: BTreeMap::new(),
            restart_times: BTreeMap::new(),
            restart_window,
            breakers: BTreeMap::new(),
            upstream: BTreeMap::new(),
            store,
            probes: Vec::new(),
            probe_interval,
            telemetry: telemetry.for_actor("health_monitor"),
        }
    }

    fn entry(&mut self, child: &str) -> &mut ChildHealth {
        self.children
            .entry(child.to_owned())
            .or_insert_with(|| ChildHealth {
                name: child.to_owned(),
                state: ChildState::Running,
                restarts: 0,
                restarts_in_window: 0,
                last_failure: None,
            })
    }

    fn probe_all(&mut self, ctx: &mut Context<Self>) {
        for (name, probe) in self.probes.clone() {
            let sent = Instant::now();
            let timeout = self.probe_interval;
            probe
                .send(Ping)
                .timeout(timeout)
                .into_actor(self)
                .map(move |answer, monitor, _| {
                    let child = monitor.entry(&name);
                    match answer {
                        Ok(()) if child.state == ChildState::Unresponsive => {
                            child.state = ChildState::Running
                        }
                        Ok(()) => {}
                        Err(_) if child.state == ChildState::Running => {
                            child.state = ChildState::Unresponsive;
                            child.last_failure =
                                Some(format!("no answer to a probe within {:?}", sent.elapsed()));
                        }
                        Err(_) => {}
                    }
                })
                .spawn(ctx);
        }
    }
}

impl Actor for HealthMonitor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.probe_interval, |monitor, ctx| monitor.probe_all(ctx));
    }
}

/// Under a `Supervisor` like every child; it keeps what it knew across a restart.
impl Supervised for HealthMonitor {}

impl Handler<Lifecycle> for HealthMonitor {
    type Result = ();

    fn handle(&mut self, msg: Lifecycle, _: &mut Context<Self>) {
        let now = Instant::now();
        let window = self.restart_window;
        let times = self
            .restart_times
            .entry(msg.child.clone())
            .or_insert_with(|| SlidingWindow::new(window));
        let in_window = match &msg.change {
            Change::Restarting { .. } => times.record(now),
            _ => times.count(now),
        };
        let in_window = u32::try_from(in_window).unwrap_or(u32::MAX);
        let telemetry = self.telemetry.clone();
        let child = self.entry(&msg.child);
        match msg.change {
            Change::Started => child.state = ChildState::Running,
            Change::Restarting { reason, delay } => {
                child.state = ChildState::Restarting;
                child.restarts += 1;
                child.restarts_in_window = in_window;
                Event::ActorRestarting {
                    actor: &msg.child,
                    restarts: child.restarts,
                    in_window: child.restarts_in_window,
                    delay,
                    reason: &reason,
                }
                .emit(&telemetry);
                child.last_failure = Some(reason);
            }
            Change::Failed { reason } => {
                child.state = ChildState::Failed;
                child.last_failure = Some(reason);
            }
        }
    }
}

impl Handler<Watch> for HealthMonitor {
    type Result = ();

    fn handle(&mut self, msg: Watch, _: &mut Context<Self>) {
        self.entry(&msg.child);
        self.probes.push((msg.child, msg.probe));
    }
}

impl Handler<GetHealth> for HealthMonitor {
    type Result = HealthReport;

    fn handle(&mut self, _: GetHealth, _: &mut Context<Self>) -> HealthReport {
        let now = Instant::now();
        let mut children: Vec<ChildHealth> = self.children.values().cloned().collect();
        for child in &mut children {
            child.restarts_in_window = self.restart_times.get_mut(&child.name).map_or(0, |times| {
                u32::try_from(times.count(now)).unwrap_or(u32::MAX)
            });
        }
        let breakers: Vec<BreakerHealth> = self.breakers.values().cloned().collect();
        let all_closed = breakers.iter().all(|b| b.state == BreakerState::Closed);
        let store = self.store.health(now);
        // A full disk is not a failure: Eliot is waiting for room, as it should, and a
        // liveness probe that restarted it would gain nothing (`/ready` says it instead).
        let status = if children.iter().any(|c| c.state == ChildState::Failed) {
            Status::Failed
        } else if all_closed
            && store.condition.is_none()
            && children.iter().all(|c| c.state == ChildState::Running)
            && self.upstream.values().all(|link| link.connected)
        {
            Status::Healthy
        } else {
            Status::Degraded
        };
        HealthReport {
            status,
            children,
            breakers,
            store,
            upstream: self.upstream.values().cloned().collect(),
        }
    }
}

impl Handler<LinkHealth> for HealthMonitor {
    type Result = ();

    fn handle(&mut self, link: LinkHealth, _: &mut Context<Self>) {
        self.upstream.insert(link.name.clone(), link);
    }
}

impl Handler<BreakerChanged> for HealthMonitor {
    type Result = ();

    fn handle(&mut self, msg: BreakerChanged, _: &mut Context<Self>) {
        self.breakers.insert(
            msg.breaker.clone(),
            BreakerHealth {
                name: msg.breaker,
                state: msg.state,
                reason: msg.reason,
            },
        );
    }
}
