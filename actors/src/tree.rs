//! The supervision tree: starts every child under an actix `Supervisor`, and shuts the
//! tree down in phases (stop intake, drain until a deadline, then stop). Wiring only:
//! each child's behaviour lives in its own module.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::endpoint::{
    Adopter, DeviceEndpoint, EndpointLinks, EndpointSettings, StopIntake, StopTls, TlsListener,
    DEVICE_ENDPOINT, TLS_LISTENER,
};
use crate::identity::{
    check_mode, server_config, AuthSettings, Authenticator, ServerTlsError, TlsSettings,
};
use crate::ingest::{
    IngestSettings, Processor, ProcessorSettings, Processors, Rules, TopicPattern,
};
use crate::observe::{Event, Telemetry};
use crate::pipeline::{ByteBudget, Pipeline};
use crate::settings::Problems;
use crate::store::{
    Reader, Sessions, Store, StoreError, StoreSettings, StoreWriter, StoreWriterLinks, STORE_WRITER,
};
use crate::supervision::{
    readiness, Breaker, BreakerSettings, BreakersSettings, DeviceGuard, Escalation, HealthMonitor,
    HealthProbe, HealthReport, HealthSettings, Ping, RestartSettings, Restarts, StoreProgress,
    Watch,
};
use crate::upstream::{
    client_config, StopUpstream, TlsError, UpstreamConnection, UpstreamLinks, UpstreamSettings,
};

/// What the tree is built from: the engine's sections of the configuration.
pub struct TreeSettings<'a> {
    pub mqtt: &'a EndpointSettings,
    pub ingest: &'a IngestSettings,
    pub store: &'a StoreSettings,
    pub processors: &'a ProcessorSettings,
    pub health: &'a HealthSettings,
    pub supervision: &'a RestartSettings,
    pub breakers: &'a BreakersSettings,
    pub upstream: &'a UpstreamSettings,
    pub auth: &'a AuthSettings,
    pub tls: &'a TlsSettings,
}

impl TreeSettings<'_> {
    /// Every section checks itself; problems are named by their dotted key.
    pub fn validate(&self, problems: &mut Problems) {
        problems.section("mqtt", |p| self.mqtt.validate(p));
        problems.section("ingest", |p| self.ingest.validate(p));
        problems.section("store", |p| self.store.validate(p));
        problems.section("processors", |p| self.processors.validate(p));
        problems.section("health", |p| self.health.validate(p));
        problems.section("supervision", |p| self.supervision.validate(p));
        problems.section("breakers", |p| self.breakers.validate(p));
        problems.section("upstream", |p| self.upstream.validate(p));
        self.validate_upstream_topics(problems);
        problems.section("auth", |p| self.auth.validate(p));
        problems.section("tls", |p| self.tls.validate(p));
        self.validate_listeners(problems);
    }

    /// `auth.mode = none` only where nobody else can connect; the TLS files readable.
    fn validate_listeners(&self, problems: &mut Problems) {
        let plain = self.mqtt.enabled.then_some(self.mqtt.listen);
        let tls = self.tls.enabled.then_some(self.tls);
        if let Err(why) = check_mode(self.auth.mode, plain, tls) {
            problems.add("auth.mode", why);
        }
        if self.tls.enabled {
            if let Err(e) = server_config(self.tls, self.auth.mode) {
                problems.add(
                    &format!("tls.{}", e.key),
                    format!("`{}`: {}", e.path, e.message),
                );
            }
        }
    }

    /// A filter that can match no telemetry topic would dead-letter all it brings; and
    /// the TLS files must be readable and valid now.
    fn validate_upstream_topics(&self, problems: &mut Problems) {
        if !self.upstream.enabled {
            return;
        }
        if let Ok(pattern) = TopicPattern::parse(&self.ingest.topic) {
            for filter in self.upstream.filters() {
                if !filter.can_match(&pattern) {
                    problems.add(
                        "upstream.topics",
                        format!("`{filter}` can match no topic of ingest.topic `{pattern}`: all it brings would be dead letters"),
                    );
                }
            }
        }
        if let Err(e) = client_config(self.upstream) {
            problems.add(&format!("upstream.{}", e.key), e.message);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("ingest.topic: {0}")]
    Topic(#[from] crate::ingest::TopicPatternError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen for devices: {0}")]
    Listen(std::io::Error),
    #[error("cannot listen for HTTP: {0}")]
    ListenHttp(std::io::Error),
    #[error(transparent)]
    UpstreamTls(#[from] TlsError),
    #[error(transparent)]
    DeviceTls(#[from] ServerTlsError),
    #[error("{0}")]
    Unprotected(String),
    #[error("cannot listen for devices over TLS: {0}")]
    ListenTls(std::io::Error),
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
    /// `None` with `mqtt.enabled = false` (the upstream mode alone).
    pub endpoint: Option<Addr<DeviceEndpoint>>,
    pub upstream: Vec<Addr<UpstreamConnection>>,
    /// `None` unless `tls.enabled`.
    pub tls: Option<Addr<TlsListener>>,
    pub store_writer: Addr<StoreWriter>,
    /// The store's read API, for the HTTP API.
    pub reader: Reader,
    /// The store writer's thread (its commits block), stopped after the drain.
    store_thread: Arbiter,
    /// Children past their restart intensity report here.
    escalations: tokio::sync::mpsc::Receiver<Escalation>,
    /// For children started later (`supervise`).
    escalate: tokio::sync::mpsc::Sender<Escalation>,
    restart_settings: RestartSettings,
    local_addr: Option<SocketAddr>,
    telemetry: Telemetry,
}

impl Tree {
    /// Opens the store and starts every child; `listener` is the device endpoint's socket
    /// (`None`: no device endpoint), `tls_listener` its TLS one. Every event goes to
    /// `telemetry`.
    pub fn start(
        settings: TreeSettings<'_>,
        (listener, tls_listener): (Option<std::net::TcpListener>, Option<std::net::TcpListener>),
        telemetry: &Telemetry,
    ) -> Result<Tree, StartError> {
        let plain = listener.as_ref().and_then(|l| l.local_addr().ok());
        let tls_settings = tls_listener.as_ref().map(|_| settings.tls);
        check_mode(settings.auth.mode, plain, tls_settings).map_err(StartError::Unprotected)?;
        let tls_config = match &tls_listener {
            Some(_) => Some(server_config(settings.tls, settings.auth.mode)?),
            None => None,
        };
        if settings.processors.count == 0 {
            return Err(StartError::NoProcessor);
        }
        let telemetry = telemetry.clone();
        let rules = Arc::new(Rules::try_from(settings.ingest)?);
        let pattern = rules.topic.clone();
        // Opened here, before any actor, so a bad data directory fails the start clearly.
        let store = Store::open(settings.store)?;
        let reader = Reader::new(settings.store, store.memtable());
        let tls = match settings.upstream.enabled {
            true => client_config(settings.upstream)?,
            false => None,
        };
        let listener = match listener {
            Some(listener) => {
                listener.set_nonblocking(true).map_err(StartError::Listen)?;
                Some(tokio::net::TcpListener::from_std(listener).map_err(StartError::Listen)?)
            }
            None => None,
        };
        let local_addr = match &listener {
            Some(l) => Some(l.local_addr().map_err(StartError::Listen)?),
            None => None,
        };

        let progress = Arc::new(StoreProgress::default());
        let health = HealthMonitor::new(
            settings.health.probe_interval,
            settings.supervision.window,
            progress.clone(),
            &telemetry,
        );
        let health = Supervisor::start(move |_| health);
        let (escalate, escalations) = tokio::sync::mpsc::channel(16);
        let restarts = |child: &str| {
            Restarts::new(
                child,
                settings.supervision,
                health.clone().recipient(),
                escalate.clone(),
            )
        };

        let store_thread = Arbiter::new();
        let links = StoreWriterLinks {
            restarts: restarts(STORE_WRITER),
            breaker: start_breaker("store", &settings.breakers.store, &health, &telemetry),
            progress,
        };
        let (store_settings, t) = (settings.store.clone(), telemetry.clone());
        let store_writer = Supervisor::start_in_arbiter(&store_thread.handle(), move |_| {
            StoreWriter::new(store_settings, store, links, &t)
        });
        watch(&health, STORE_WRITER, &store_writer);

        let processors =
            start_processors(settings.processors, rules, &restarts, &health, &telemetry);
        let guard = DeviceGuard::new(settings.breakers.device.clone(), &telemetry);
        let guard = Supervisor::start(move |_| guard);
        watch(&health, "device_guard", &guard);
        let pipeline = Pipeline::new(
            processors,
            store_writer.clone(),
            telemetry.metrics().clone(),
        );
        // One budget of payload bytes held between receipt and commit, whichever way in.
        let budget = ByteBudget::new(
            settings.mqtt.max_in_flight_bytes,
            telemetry.metrics().in_flight_bytes.clone(),
        );
        let upstream = match settings.upstream.enabled {
            true => {
                let breaker =
                    start_breaker("upstream", &settings.breakers.upstream, &health, &telemetry);
                let links = |_| UpstreamLinks {
                    pipeline: pipeline.clone(),
                    guard: guard.clone(),
                    breaker: breaker.clone(),
                    health: health.clone().recipient(),
                    pattern: pattern.clone(),
                    tls: tls.clone(),
                    budget: budget.clone(),
                    sessions: Sessions::new(store_writer.clone()),
                };
                start_upstream(settings.upstream, links, &restarts, &health, &telemetry)
            }
            false => Vec::new(),
        };
        let endpoint = listener.map(|listener| {
            let links = EndpointLinks {
                pipeline,
                sessions: Sessions::new(store_writer.clone()),
                guard,
                authenticator: Authenticator::new(settings.auth, settings.store.db_path()),
                auth: settings.auth.clone(),
                budget,
            };
            let (mqtt, restarts, t) = (
                settings.mqtt.clone(),
                restarts(DEVICE_ENDPOINT),
                telemetry.clone(),
            );
            let endpoint = Supervisor::start(move |_| {
                DeviceEndpoint::new(mqtt, listener, links, restarts, &t)
            });
            watch(&health, DEVICE_ENDPOINT, &endpoint);
            endpoint
        });
        let tls = match (tls_listener, tls_config, &endpoint) {
            (Some(socket), Some(config), Some(endpoint)) => {
                socket
                    .set_nonblocking(true)
                    .map_err(StartError::ListenTls)?;
                let socket =
                    tokio::net::TcpListener::from_std(socket).map_err(StartError::ListenTls)?;
                let (tls, mode) = (settings.tls.clone(), settings.auth.mode);
                let (adopter, restarts, t) = (
                    Adopter::new(endpoint.clone()),
                    restarts(TLS_LISTENER),
                    telemetry.clone(),
                );
                let listener = Supervisor::start(move |_| {
                    TlsListener::new(tls, mode, (socket, config), adopter, restarts, &t)
                });
                watch(&health, TLS_LISTENER, &listener);
                Some(listener)
            }
            _ => None,
        };

        Ok(Tree {
            health,
            endpoint,
            upstream,
            tls,
            store_writer,
            reader,
            store_thread,
            escalations,
            escalate,
            restart_settings: settings.supervision.clone(),
            local_addr,
            telemetry,
        })
    }

    /// Where the device endpoint listens (useful when the configured port was 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Starts another child (the HTTP server, say) under the tree's supervision: actix
    /// restarts it when it stops, after the delay its `Restarts` sets, and the health
    /// monitor probes it under `name`.
    pub fn supervise<A>(&self, name: &str, make: impl FnOnce(Restarts) -> A + 'static) -> Addr<A>
    where
        A: Actor<Context = Context<A>> + Supervised + Handler<Ping>,
    {
        let restarts = Restarts::new(
            name,
            &self.restart_settings,
            self.health.clone().recipient(),
            self.escalate.clone(),
        );
        let child = Supervisor::start(move |_| make(restarts));
        watch(&self.health, name, &child);
        child
    }

    /// Serves devices connected over any byte stream, as if they had come in on the port.
    pub fn adopter(&self) -> Option<Adopter> {
        self.endpoint.clone().map(Adopter::new)
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

    /// Whether Eliot should be sent devices now (see `readiness`); `Err` says why not.
    pub fn readiness(
        report: &HealthReport,
        shutting_down: bool,
        max_backlog_age: Duration,
    ) -> Result<(), Vec<String>> {
        readiness(report, shutting_down, max_backlog_age)
    }

    pub async fn health(&self) -> Option<HealthReport> {
        self.health_probe().report().await
    }

    /// Asks for health reports from anywhere (another thread, an HTTP handler).
    pub fn health_probe(&self) -> HealthProbe {
        HealthProbe::new(self.health.clone())
    }

    /// Stops accepting, lets every connection commit and ack what it has read (up to
    /// `deadline`), then stops the store's thread. Whatever was acked is stored.
    pub async fn shutdown(self, deadline: Duration) -> ShutdownReport {
        let started = Instant::now();
        Event::ShutdownStarted { deadline }.emit(&self.telemetry);
        if let Some(tls) = &self.tls {
            let _ = tokio::time::timeout(deadline, tls.send(StopTls)).await;
        }
        // What the broker sent and Eliot did not ack, it redelivers at the next start.
        for connection in &self.upstream {
            let _ = tokio::time::timeout(deadline, connection.send(StopUpstream)).await;
        }
        let drained = match &self.endpoint {
            // An endpoint that escalated answers nothing: do not wait for it past the deadline.
            Some(endpoint) => tokio::time::timeout(deadline, endpoint.send(StopIntake))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
            None => Vec::new(),
        };
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
        .emit(&self.telemetry);
        report
    }
}

/// A circuit breaker for the dependency `name`, watched as `breaker:<name>`.
fn start_breaker(
    name: &str,
    settings: &BreakerSettings,
    health: &Addr<HealthMonitor>,
    telemetry: &Telemetry,
) -> Addr<Breaker> {
    let breaker = Breaker::new(
        name,
        settings.clone(),
        health.clone().recipient(),
        telemetry,
    );
    let breaker = Supervisor::start(move |_| breaker);
    watch(health, &format!("breaker:{name}"), &breaker);
    breaker
}

/// Processors run on the connections' thread: measured, a hop to another thread cost more
/// than the validation it moved (see README "Performance").
fn start_processors(
    settings: &ProcessorSettings,
    rules: Arc<Rules>,
    restarts: &dyn Fn(&str) -> Restarts,
    health: &Addr<HealthMonitor>,
    telemetry: &Telemetry,
) -> Processors {
    let mut processors = Vec::new();
    for index in 0..settings.count {
        let name = format!("processor-{index}");
        let (rules, restarts, t) = (rules.clone(), restarts(&name), telemetry.clone());
        let mailbox = settings.mailbox;
        let addr = Supervisor::start(move |ctx: &mut Context<Processor>| {
            ctx.set_mailbox_capacity(mailbox);
            Processor::new(rules, restarts, &t)
        });
        watch(health, &name, &addr);
        processors.push(addr);
    }
    Processors::new(processors)
}

/// The upstream connections, `upstream-0` to `upstream-N`, each under supervision.
fn start_upstream(
    settings: &UpstreamSettings,
    links: impl Fn(usize) -> UpstreamLinks,
    restarts: &dyn Fn(&str) -> Restarts,
    health: &Addr<HealthMonitor>,
    telemetry: &Telemetry,
) -> Vec<Addr<UpstreamConnection>> {
    let shared = Arc::new(settings.clone());
    (0..settings.connections)
        .map(|index| {
            let name = format!("upstream-{index}");
            let (settings, links, restarts, t) = (
                shared.clone(),
                links(index),
                restarts(&name),
                telemetry.clone(),
            );
            let addr = Supervisor::start(move |_| {
                UpstreamConnection::new(index, settings, links, restarts, &t)
            });
            watch(health, &name, &addr);
            addr
        })
        .collect()
}

fn watch<A>(health: &Addr<HealthMonitor>, name: &str, child: &Addr<A>)
where
    A: Actor + Handler<Ping>,
    A::Context: actix::dev::ToEnvelope<A, Ping>,
{
    health.do_send(Watch {
        child: name.to_owned(),
        probe: child.clone().recipient(),
    });
}
