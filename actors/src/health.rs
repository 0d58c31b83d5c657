//! The `HealthMonitor`: knows the state of every child of the tree.
//!
//! Children report their own lifecycle (started, restarting); the monitor also probes each
//! one with a `Ping` on an interval, so a child that is alive but stuck shows as
//! unresponsive.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::Serialize;
use slog::Logger;

use crate::events::Event;

/// A child tells the monitor about itself.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Lifecycle {
    pub child: String,
    pub change: Change,
}

pub enum Change {
    Started,
    /// The supervisor is restarting the child after it failed for `reason`.
    Restarting {
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
        impl actix::Handler<$crate::health::Ping> for $actor {
            type Result = ();
            fn handle(&mut self, _: $crate::health::Ping, _: &mut Self::Context) {}
        }
    };
}

#[derive(Message)]
#[rtype(result = "HealthReport")]
pub struct GetHealth;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildState {
    Running,
    Restarting,
    /// Did not answer its last probe in time.
    Unresponsive,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChildHealth {
    pub name: String,
    pub state: ChildState,
    pub restarts: u32,
    pub last_failure: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every child running and answering.
    Healthy,
    /// Some child restarting or slow to answer: Eliot serves, with less capacity.
    Degraded,
}

#[derive(Debug, Clone, Serialize, MessageResponse)]
pub struct HealthReport {
    pub status: Status,
    pub children: Vec<ChildHealth>,
}

impl HealthReport {
    pub fn child(&self, name: &str) -> Option<&ChildHealth> {
        self.children.iter().find(|c| c.name == name)
    }
}

pub struct HealthMonitor {
    /// Keyed by child name, so reports list children in a stable order.
    children: BTreeMap<String, ChildHealth>,
    probes: Vec<(String, Recipient<Ping>)>,
    /// How often every child is probed; a probe unanswered within it marks the child
    /// unresponsive.
    probe_interval: Duration,
    /// Restarts are logged here, where their count is known.
    log: Logger,
}

impl HealthMonitor {
    pub fn new(probe_interval: Duration, log: &Logger) -> Self {
        HealthMonitor {
            children: BTreeMap::new(),
            probes: Vec::new(),
            probe_interval,
            log: log.new(slog::o!("actor" => "health_monitor")),
        }
    }

    fn entry(&mut self, child: &str) -> &mut ChildHealth {
        self.children
            .entry(child.to_owned())
            .or_insert_with(|| ChildHealth {
                name: child.to_owned(),
                state: ChildState::Running,
                restarts: 0,
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

impl Handler<Lifecycle> for HealthMonitor {
    type Result = ();

    fn handle(&mut self, msg: Lifecycle, _: &mut Context<Self>) {
        let child = self.entry(&msg.child);
        match msg.change {
            Change::Started => child.state = ChildState::Running,
            Change::Restarting { reason } => {
                child.state = ChildState::Restarting;
                child.restarts += 1;
                child.last_failure = Some(reason);
                let restarts = child.restarts;
                Event::ActorRestarted {
                    actor: &msg.child,
                    restarts,
                }
                .emit(&self.log);
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
        let children: Vec<ChildHealth> = self.children.values().cloned().collect();
        let status = if children.iter().all(|c| c.state == ChildState::Running) {
            Status::Healthy
        } else {
            Status::Degraded
        };
        HealthReport { status, children }
    }
}
