//! The supervision tree: starts every child under an actix `Supervisor`, and shuts the
//! tree down in phases (stop intake, drain until a deadline, then stop). Wiring only:
//! each child's behaviour lives in its own module.

mod children;
mod settings;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use crate::endpoint::{Adopter, DeviceEndpoint, EndpointLinks, StopIntake, StopTls, TlsListener};
use crate::fleet::{now_micros, Alerting, Fleet, FleetHandle, RuleConfig, Silences, Source};
use crate::identity::{AuthMode, Authenticator};
use crate::ingest::Rules;
use crate::notify::AlertsHandle;
use crate::observe::{Event, Telemetry};
use crate::pipeline::{ByteBudget, Pipeline, ReplayIdentity, Replayer};
use crate::store::{Purger, Reader, Sessions, Store, StoreWriter};
use crate::supervision::{
    readiness, DeviceGuard, Escalation, HealthMonitor, HealthProbe, HealthReport, Ping,
    RestartSettings, Restarts, StoreProgress,
};
use crate::upstream::{client_config, StopUpstream, UpstreamConnection, UpstreamLinks};
use children::{watch, Children};
pub use settings::{StartError, TreeSettings};

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
    /// `None` with `fleet.enabled = false`.
    fleet: Option<Fleet>,
    /// The alerts, for the HTTP API; `None` with `fleet.enabled` or `alerts.enabled` false.
    alerts: Option<AlertsHandle>,
    /// Replays dead letters through today's rules, for the HTTP API.
    pub replayer: Replayer,
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
        let tls_config = settings.check_start(listener.as_ref(), tls_listener.as_ref())?;
        let rules = Arc::new(Rules::try_from(settings.ingest)?);
        let pattern = rules.topic.clone();
        // Opened here, before any actor, so a bad data directory fails the start clearly.
        let store = Store::open(settings.store)?;
        let silences = Arc::new(Silences::new(store.silences_in_force(now_micros())?));
        // The API's rules beside the configuration's; one that no longer compiles, or whose
        // name the configuration now has, is left out (and said so).
        let api_rules: Vec<RuleConfig> = store
            .api_alert_rules()?
            .iter()
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect();
        let (rule_set, left_out) = settings.alerts.rule_set(&api_rules);
        for name in &left_out {
            Event::AlertRuleLeftOut { rule: name }.emit(telemetry);
        }
        let reader = Reader::new(settings.store, store.memtable());
        let upstream_tls = match settings.upstream.enabled {
            true => client_config(settings.upstream)?,
            false => None,
        };
        let listener = listener
            .map(nonblocking)
            .transpose()
            .map_err(StartError::Listen)?;
        let local_addr = listener.as_ref().map(|l| l.local_addr());
        let local_addr = local_addr.transpose().map_err(StartError::Listen)?;

        let progress = Arc::new(StoreProgress::default());
        let (children, escalations) = Children::new(&settings, progress.clone(), telemetry);
        let store_thread = Arbiter::new();
        let store_writer = children.store_writer(
            settings.store,
            store,
            &settings.breakers.store,
            progress,
            &store_thread,
        );
        let processors = children.processors(settings.processors, rules);
        let guard = DeviceGuard::new(settings.breakers.device.clone(), telemetry);
        let guard = Supervisor::start(move |_| guard);
        watch(&children.health, "device_guard", &guard);
        let alerting = match settings.fleet.enabled && settings.alerts.enabled {
            true => Some(Arc::new(Alerting::new(settings.alerts, rule_set, silences))),
            false => None,
        };
        let fleet = settings.fleet.enabled.then(|| {
            children.fleet(
                settings.fleet,
                settings.anomaly,
                alerting.clone(),
                settings.store,
                &store_writer,
                &reader,
            )
        });
        if let Some(alerting) = &alerting {
            children.self_watch(alerting.clone(), &settings.alerts.webhook, settings.store);
        }
        let notifier = (alerting.is_some() && !settings.alerts.webhook.url.is_empty())
            .then(|| children.notifier(&settings.alerts.webhook, settings.store, &store_writer));
        let alerts = alerting
            .as_ref()
            .zip(fleet.as_ref())
            .map(|(alerting, fleet)| AlertsHandle {
                alerting: alerting.clone(),
                configured: settings.alerts.rules.clone(),
                api_rules: Arc::new(tokio::sync::Mutex::new(
                    api_rules
                        .into_iter()
                        .filter(|r| !left_out.contains(&r.name))
                        .collect(),
                )),
                fleet: fleet.handle.clone(),
                store: store_writer.clone(),
                notifier,
                db_path: settings.store.db_path(),
            });
        let pipeline = Pipeline::new(
            processors,
            store_writer.clone(),
            telemetry.metrics().clone(),
            fleet.as_ref().map(|f| f.feed.clone()),
        );
        // A replay is bound to its sender's identity wherever clients authenticate.
        let identity = match settings.auth.mode {
            AuthMode::None => ReplayIdentity::Unbound,
            _ => ReplayIdentity::ClientId,
        };
        let replayer = Replayer::new(
            pipeline.clone(),
            settings.replay.clone(),
            identity,
            telemetry,
        );
        // One budget of payload bytes held between receipt and commit, whichever way in.
        let budget = ByteBudget::new(
            settings.mqtt.max_in_flight_bytes,
            telemetry.metrics().in_flight_bytes.clone(),
        );
        let upstream = match settings.upstream.enabled {
            true => {
                let breaker = children.breaker("upstream", &settings.breakers.upstream);
                let links = |_| UpstreamLinks {
                    pipeline: pipeline.with_source(Source::Upstream),
                    guard: guard.clone(),
                    breaker: breaker.clone(),
                    health: children.health.clone().recipient(),
                    pattern: pattern.clone(),
                    status: settings.fleet.status_pattern(),
                    tls: upstream_tls.clone(),
                    budget: budget.clone(),
                    sessions: Sessions::new(store_writer.clone()),
                };
                children.upstream(settings.upstream, links)
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
            children.endpoint(settings.mqtt, listener, links)
        });
        let tls = match (tls_listener, tls_config, &endpoint) {
            (Some(socket), Some(config), Some(endpoint)) => {
                let socket = nonblocking(socket).map_err(StartError::ListenTls)?;
                let tls = (settings.tls, settings.auth.mode);
                Some(children.tls_listener(tls, socket, config, endpoint))
            }
            _ => None,
        };

        Ok(Tree {
            health: children.health,
            endpoint,
            upstream,
            tls,
            store_writer,
            reader,
            fleet,
            alerts,
            replayer,
            store_thread,
            escalations,
            escalate: children.escalate,
            restart_settings: settings.supervision.clone(),
            local_addr,
            telemetry: children.telemetry,
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

    /// The fleet's handle (device state, quarantine release, closing a device's
    /// connections), for the HTTP API; `None` with `fleet.enabled = false`.
    pub fn fleet(&self) -> Option<FleetHandle> {
        self.fleet.as_ref().map(|f| f.handle.clone())
    }

    /// The alerts' handle (rules, alerts, history, silences, deliveries), for the HTTP
    /// API; `None` with the fleet or alerting off.
    pub fn alerts(&self) -> Option<AlertsHandle> {
        self.alerts.clone()
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

    /// Purges devices' readings in the store writer, for the HTTP API.
    pub fn purger(&self) -> Purger {
        Purger::new(self.store_writer.clone())
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
        // The devices' last changes (their connections just ended) go to the store
        // writer, which commits what it holds as its thread stops.
        if let Some(fleet) = &self.fleet {
            let _ = tokio::time::timeout(deadline, fleet.flush()).await;
        }
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

/// A listening socket for tokio's reactor.
fn nonblocking(listener: std::net::TcpListener) -> std::io::Result<tokio::net::TcpListener> {
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}
