//! The supervision tree: starts every child under an actix `Supervisor`, and shuts the
//! tree down in phases (stop intake, drain until a deadline, then stop).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use slog::Logger;

use crate::breaker::{Breaker, BreakerSettings};
use crate::device_endpoint::{DeviceEndpoint, EndpointSettings, StopIntake};
use crate::device_guard::{DeviceBreakerSettings, DeviceGuard};
use crate::events::Event;
use crate::health::{GetHealth, HealthMonitor, HealthReport, Watch};
use crate::pipeline::Pipeline;
use crate::processor::{Processor, Processors};
use crate::restart::{Escalation, RestartSettings, Restarts};
use crate::store::{Store, StoreError, StoreSettings};
use crate::store_writer::{self, StoreWriter, StoreWriterLinks};
use crate::validate::{IngestSettings, Rules};

/// The `[processors]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorSettings {
    /// How many processor actors (on the connections' thread; each restarts on its own).
    pub count: usize,
    /// Capacity of each processor's mailbox; senders wait when it is full.
    pub mailbox: usize,
}

/// The `[health]` section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// How often the health monitor probes every child; also the probe's timeout.
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
}

/// What the tree is built from: the engine's sections of the configuration.
pub struct TreeSettings<'a> {
    pub mqtt: &'a EndpointSettings,
    pub ingest: &'a IngestSettings,
    pub store: &'a StoreSettings,
    pub processors: &'a ProcessorSettings,
    pub health: &'a HealthSettings,
    pub supervision: &'a RestartSettings,
    pub breakers: &'a BreakersSettings,
}

/// The `[breakers]` section: one circuit breaker per dependency.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BreakersSettings {
    /// Guards the SQLite store: while it is open, nothing is written or acked.
    pub store: BreakerSettings,
    /// One per device that keeps sending rejected messages.
    pub device: DeviceBreakerSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("ingest.topic: {0}")]
    Topic(#[from] crate::topic::TopicPatternError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen for devices: {0}")]
    Listen(std::io::Error),
    #[error("processors.count must be at least 1")]
    NoProcessor,
}

/// How a shutdown went.
#[derive(Debug, Clone, Copy)]
pub struct ShutdownReport {
    pub took: Duration,
    /// True when the deadline passed with connections still draining.
    pub forced: bool,
}

/// A running tree. Must be started and shut down inside an actix `System`.
pub struct Tree {
    pub health: Addr<HealthMonitor>,
    pub endpoint: Addr<DeviceEndpoint>,
    pub store_writer: Addr<StoreWriter>,
    /// The store writer's thread (its commits block), stopped after the drain.
    store_thread: Arbiter,
    /// Children past their restart intensity report here.
    escalations: tokio::sync::mpsc::Receiver<Escalation>,
    local_addr: SocketAddr,
    log: Logger,
}

impl Tree {
    /// Opens the store and starts every child; `listener` is the device endpoint's socket.
    pub fn start(
        settings: TreeSettings<'_>,
        listener: std::net::TcpListener,
        log: &Logger,
    ) -> Result<Tree, StartError> {
        if settings.processors.count == 0 {
            return Err(StartError::NoProcessor);
        }
        let rules = Arc::new(Rules::try_from(settings.ingest)?);
        // Opened here, before any actor, so a bad data directory fails the start clearly.
        let store = Store::open(settings.store)?;
        listener.set_nonblocking(true).map_err(StartError::Listen)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(StartError::Listen)?;
        let local_addr = listener.local_addr().map_err(StartError::Listen)?;

        let health = HealthMonitor::new(
            settings.health.probe_interval,
            settings.supervision.window,
            log,
        );
        let health = Supervisor::start(move |_| health);
        let (escalate, escalations) = tokio::sync::mpsc::channel(16);
        let restarts = |child: &str| {
            Restarts::new(
                child,
                settings.supervision.clone(),
                health.clone(),
                escalate.clone(),
            )
        };
        let store_thread = Arbiter::new();
        let store_settings = settings.store.clone();
        let breaker = Breaker::new(
            "store",
            settings.breakers.store.clone(),
            health.clone(),
            log,
        );
        let breaker = Supervisor::start(move |_| breaker);
        watch(&health, "breaker:store", &breaker);
        let links = StoreWriterLinks {
            restarts: restarts(store_writer::NAME),
            breaker,
            health: health.clone(),
        };
        let log_for_store = log.clone();
        let store_writer = Supervisor::start_in_arbiter(&store_thread.handle(), move |_| {
            StoreWriter::new(store_settings, store, links, &log_for_store)
        });
        watch(&health, store_writer::NAME, &store_writer);

        // Processors run on the connections' thread: measured, a hop to another thread
        // cost more than the validation it moved (see README "Performance").
        let mut processors = Vec::new();
        for index in 0..settings.processors.count {
            let name = format!("processor-{index}");
            let (rules, restarts_p, log_p) = (rules.clone(), restarts(&name), log.clone());
            let mailbox = settings.processors.mailbox;
            let addr = Supervisor::start(move |ctx: &mut Context<Processor>| {
                ctx.set_mailbox_capacity(mailbox);
                Processor::new(rules, restarts_p, &log_p)
            });
            watch(&health, &name, &addr);
            processors.push(addr);
        }

        let pipeline = Pipeline::new(Processors::new(processors), store_writer.clone());
        let guard = DeviceGuard::new(settings.breakers.device.clone(), log);
        let guard = Supervisor::start(move |_| guard);
        watch(&health, "device_guard", &guard);
        let (mqtt, restarts_e, log_e) = (
            settings.mqtt.clone(),
            restarts(crate::device_endpoint::NAME),
            log.clone(),
        );
        let endpoint = Supervisor::start(move |_| {
            DeviceEndpoint::new(mqtt, listener, pipeline, guard, restarts_e, &log_e)
        });
        watch(&health, crate::device_endpoint::NAME, &endpoint);

        Ok(Tree {
            health,
            endpoint,
            store_writer,
            store_thread,
            escalations,
            local_addr,
            log: log.clone(),
        })
    }

    /// Where the device endpoint listens (useful when the configured port was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Resolves when a child exceeds its restart intensity. The caller then shuts the
    /// tree down and exits non-zero.
    pub async fn escalation(&mut self) -> Escalation {
        match self.escalations.recv().await {
            Some(escalation) => escalation,
            // Every child is gone, so none can escalate.
            None => std::future::pending().await,
        }
    }

    pub async fn health(&self) -> Option<HealthReport> {
        self.health.send(GetHealth).await.ok()
    }

    /// Stops accepting, lets every connection commit and ack what it has read (up to
    /// `deadline`), then stops the store's thread. Whatever was acked is stored.
    pub async fn shutdown(self, deadline: Duration) -> ShutdownReport {
        let started = Instant::now();
        Event::ShutdownStarted { deadline }.emit(&self.log);
        let drained = self.endpoint.send(StopIntake).await.unwrap_or_default();
        let all_closed = futures_util::future::join_all(drained);
        let forced = tokio::time::timeout(deadline, all_closed).await.is_err();
        // Every connection has settled (or the deadline passed, and what is unsettled was
        // not acked): nothing the devices were promised waits on the store's thread.
        self.store_thread.stop();
        let _ = self.store_thread.join();
        let report = ShutdownReport {
            took: started.elapsed(),
            forced,
        };
        Event::ShutdownFinished {
            took: report.took,
            forced,
        }
        .emit(&self.log);
        report
    }
}

fn watch<A>(health: &Addr<HealthMonitor>, name: &str, child: &Addr<A>)
where
    A: Actor + Handler<crate::health::Ping>,
    A::Context: actix::dev::ToEnvelope<A, crate::health::Ping>,
{
    health.do_send(Watch {
        child: name.to_owned(),
        probe: child.clone().recipient(),
    });
}
