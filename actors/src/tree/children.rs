//! Starting each child of the tree under an actix `Supervisor`, with its restart policy,
//! and telling the health monitor to watch it. The wiring between children is in
//! `Tree::start`; what each child does is in its own module.

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::mpsc;

use crate::endpoint::{
    Adopter, DeviceEndpoint, EndpointLinks, EndpointSettings, TlsListener, DEVICE_ENDPOINT,
    TLS_LISTENER,
};
use crate::fleet::{
    Alerting, AnomalySettings, Detection, Fleet, FleetSettings, FleetShard, QuarantineSet,
    ShardLinks, Tracked, WebhookSettings,
};
use crate::identity::{AuthMode, TlsSettings};
use crate::ingest::{Processor, ProcessorSettings, Processors, Rules};
use crate::notify::{Notifier, NotifierLinks, SelfWatch, NOTIFIER, SELF_WATCH};
use crate::observe::Telemetry;
use crate::store::{Reader, Store, StoreSettings, StoreWriter, StoreWriterLinks, STORE_WRITER};
use crate::supervision::{
    Breaker, BreakerSettings, Escalation, HealthMonitor, HealthProbe, Ping, RestartSettings,
    Restarts, StoreProgress, Watch,
};
use crate::upstream::{UpstreamConnection, UpstreamLinks, UpstreamSettings};

use super::TreeSettings;

/// What every child is started with: where its health is watched, where it escalates
/// past its restart intensity, and where its events go.
pub(super) struct Children<'a> {
    pub health: Addr<HealthMonitor>,
    pub escalate: mpsc::Sender<Escalation>,
    pub supervision: &'a RestartSettings,
    pub telemetry: Telemetry,
}

impl<'a> Children<'a> {
    /// Starts the health monitor, which watches every child started after it; the
    /// receiver hears of escalations.
    pub fn new(
        settings: &TreeSettings<'a>,
        progress: Arc<StoreProgress>,
        telemetry: &Telemetry,
    ) -> (Self, mpsc::Receiver<Escalation>) {
        let health = HealthMonitor::new(
            settings.health.probe_interval,
            settings.supervision.window,
            progress,
            telemetry,
        );
        let (escalate, escalations) = mpsc::channel(16);
        let children = Children {
            health: Supervisor::start(move |_| health),
            escalate,
            supervision: settings.supervision,
            telemetry: telemetry.clone(),
        };
        (children, escalations)
    }

    /// The restart policy of the child `name`.
    pub fn restarts(&self, name: &str) -> Restarts {
        Restarts::new(
            name,
            self.supervision,
            self.health.clone().recipient(),
            self.escalate.clone(),
        )
    }

    /// The store writer, on a thread of its own (`store_thread`): its commits block.
    pub fn store_writer(
        &self,
        settings: &StoreSettings,
        store: Store,
        breaker: &BreakerSettings,
        progress: Arc<StoreProgress>,
        store_thread: &Arbiter,
    ) -> Addr<StoreWriter> {
        let links = StoreWriterLinks {
            restarts: self.restarts(STORE_WRITER),
            breaker: self.breaker("store", breaker),
            progress,
        };
        let (settings, t) = (settings.clone(), self.telemetry.clone());
        let store_writer = Supervisor::start_in_arbiter(&store_thread.handle(), move |_| {
            StoreWriter::new(settings, store, links, &t)
        });
        watch(&self.health, STORE_WRITER, &store_writer);
        store_writer
    }

    /// A circuit breaker for the dependency `name`, watched as `breaker:<name>`.
    pub fn breaker(&self, name: &str, settings: &BreakerSettings) -> Addr<Breaker> {
        let breaker = Breaker::new(
            name,
            settings.clone(),
            self.health.clone().recipient(),
            &self.telemetry,
        );
        let breaker = Supervisor::start(move |_| breaker);
        watch(&self.health, &format!("breaker:{name}"), &breaker);
        breaker
    }

    /// Processors run on the connections' thread: measured, a hop to another thread cost
    /// more than the validation it moved (see the benchmark's results).
    pub fn processors(&self, settings: &ProcessorSettings, rules: Arc<Rules>) -> Processors {
        let mut processors = Vec::new();
        for index in 0..settings.count {
            let name = format!("processor-{index}");
            let (rules, restarts, t) =
                (rules.clone(), self.restarts(&name), self.telemetry.clone());
            let mailbox = settings.mailbox;
            let addr = Supervisor::start(move |ctx: &mut Context<Processor>| {
                ctx.set_mailbox_capacity(mailbox);
                Processor::new(rules, restarts, &t)
            });
            watch(&self.health, &name, &addr);
            processors.push(addr);
        }
        Processors::new(processors)
    }

    /// The fleet's shards, `fleet-0` to `fleet-N`, on the connections' thread: each loads
    /// its devices from the database as it starts.
    pub fn fleet(
        &self,
        settings: &FleetSettings,
        anomaly: &AnomalySettings,
        alerting: Option<Arc<Alerting>>,
        store: &StoreSettings,
        store_writer: &Addr<StoreWriter>,
        reader: &Reader,
    ) -> Fleet {
        let shared = Arc::new(settings.clone());
        let detection = anomaly.enabled.then(|| Arc::new(Detection::new(anomaly)));
        let quarantine = Arc::new(QuarantineSet::default());
        let tracked = Arc::new(Tracked::default());
        let shards = (0..settings.shards)
            .map(|index| {
                let name = format!("fleet-{index}");
                let links = ShardLinks {
                    index,
                    shards: settings.shards,
                    settings: shared.clone(),
                    store: store_writer.clone(),
                    db_path: store.db_path(),
                    quarantine: quarantine.clone(),
                    tracked: tracked.clone(),
                    max_series: store.max_series_per_device,
                    detection: detection.clone(),
                    max_pending_anomalies: anomaly.max_pending,
                    reader: reader.clone(),
                    alerting: alerting.clone(),
                    restarts: self.restarts(&name),
                };
                let t = self.telemetry.clone();
                let shard = Supervisor::start(move |_| FleetShard::new(links, &t));
                watch(&self.health, &name, &shard);
                shard
            })
            .collect();
        let every_data = detection.is_some();
        Fleet::new(
            shards,
            settings.mailbox,
            quarantine,
            store.db_path(),
            every_data,
            alerting,
        )
    }

    /// The webhook's notifier, `notifier`.
    pub fn notifier(
        &self,
        settings: &WebhookSettings,
        store: &StoreSettings,
        store_writer: &Addr<StoreWriter>,
    ) -> Addr<Notifier> {
        let links = NotifierLinks {
            store: store_writer.clone(),
            db_path: store.db_path(),
            restarts: self.restarts(NOTIFIER),
        };
        let (settings, t) = (settings.clone(), self.telemetry.clone());
        let notifier = Supervisor::start(move |_| Notifier::new(settings, links, &t));
        watch(&self.health, NOTIFIER, &notifier);
        notifier
    }

    /// The `eliot` rules' judge, on the health report.
    pub fn self_watch(
        &self,
        alerting: Arc<Alerting>,
        webhook: &WebhookSettings,
        store: &StoreSettings,
    ) -> Addr<SelfWatch> {
        let webhook = (!webhook.url.is_empty()).then(|| webhook.clone());
        let probe = HealthProbe::new(self.health.clone());
        let (data_dir, t) = (store.data_dir.clone(), self.telemetry.clone());
        let watch_addr =
            Supervisor::start(move |_| SelfWatch::new(alerting, probe, webhook, data_dir, &t));
        watch(&self.health, SELF_WATCH, &watch_addr);
        watch_addr
    }

    /// The upstream connections, `upstream-0` to `upstream-N`.
    pub fn upstream(
        &self,
        settings: &UpstreamSettings,
        links: impl Fn(usize) -> UpstreamLinks,
    ) -> Vec<Addr<UpstreamConnection>> {
        let shared = Arc::new(settings.clone());
        (0..settings.connections)
            .map(|index| {
                let name = format!("upstream-{index}");
                let (settings, links, restarts, t) = (
                    shared.clone(),
                    links(index),
                    self.restarts(&name),
                    self.telemetry.clone(),
                );
                let addr = Supervisor::start(move |_| {
                    UpstreamConnection::new(index, settings, links, restarts, &t)
                });
                watch(&self.health, &name, &addr);
                addr
            })
            .collect()
    }

    /// The device endpoint, accepting on `listener`.
    pub fn endpoint(
        &self,
        settings: &EndpointSettings,
        listener: tokio::net::TcpListener,
        links: EndpointLinks,
    ) -> Addr<DeviceEndpoint> {
        let (mqtt, restarts, t) = (
            settings.clone(),
            self.restarts(DEVICE_ENDPOINT),
            self.telemetry.clone(),
        );
        let endpoint =
            Supervisor::start(move |_| DeviceEndpoint::new(mqtt, listener, links, restarts, &t));
        watch(&self.health, DEVICE_ENDPOINT, &endpoint);
        endpoint
    }

    /// The TLS listener, handing the devices it accepts to `endpoint`.
    pub fn tls_listener(
        &self,
        (settings, mode): (&TlsSettings, AuthMode),
        socket: tokio::net::TcpListener,
        config: Arc<rustls::ServerConfig>,
        endpoint: &Addr<DeviceEndpoint>,
    ) -> Addr<TlsListener> {
        let (tls, adopter, restarts, t) = (
            settings.clone(),
            Adopter::new(endpoint.clone()),
            self.restarts(TLS_LISTENER),
            self.telemetry.clone(),
        );
        let listener = Supervisor::start(move |_| {
            TlsListener::new(tls, mode, (socket, config), adopter, restarts, &t)
        });
        watch(&self.health, TLS_LISTENER, &listener);
        listener
    }
}

/// Tells the health monitor to probe `child` under `name`.
pub(super) fn watch<A>(health: &Addr<HealthMonitor>, name: &str, child: &Addr<A>)
where
    A: Actor + Handler<Ping>,
    A::Context: actix::dev::ToEnvelope<A, Ping>,
{
    health.do_send(Watch {
        child: name.to_owned(),
        probe: child.clone().recipient(),
    });
}
