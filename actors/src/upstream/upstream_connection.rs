//! `UpstreamConnection`: one rumqttc client subscribed to the upstream broker, feeding the
//! same pipeline as the device endpoint, and acking each message only once it is stored.
//!
//! Three parts run apart, so that none waits on another in a way that could deadlock:
//! the poll task and the ack task (`link_tasks`), and this actor, which batches what the
//! poll task hands it, sends it down the pipeline, and puts the acks due in receipt order
//! (`InOrder`) for the ack task. The poll task never awaits anything only the event loop
//! can free: a slot of the window is freed when its message is stored, before its ack is
//! written (backpressure: the broker's flow control and TCP do the rest).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use rustls::ClientConfig;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

use super::filter::Filter;
use super::in_order::{Ack, InOrder, Slot};
use super::link::{self, Delivery};
use super::link_tasks::{poll_link, send_acks, FromLink, LinkNews, PollLink};
use super::settings::UpstreamSettings;
use super::status::Statuses;
use crate::ingest::{Message, TopicPattern};
use crate::observe::{Event, Telemetry};
use crate::pipeline::{ByteBudget, Ingested, Pipeline};
use crate::store::{NotStored, Sessions};
use crate::supervision::{
    catch_panic, jitter, Backoff, Breaker, DeviceGuard, LinkHealth, Rejected, Restarts,
};

/// What the parts of one connection share.
pub struct UpstreamLinks {
    pub pipeline: Pipeline,
    pub guard: Addr<DeviceGuard>,
    /// The broker's circuit breaker (`breaker:upstream`), shared by every connection.
    pub breaker: Addr<Breaker>,
    pub health: Recipient<LinkHealth>,
    /// Names the device of a topic: the origin of a message is its device.
    pub pattern: TopicPattern,
    /// The devices' status topic (`fleet.status_topic`), if set and the fleet is on.
    pub status: Option<TopicPattern>,
    pub tls: Option<Arc<ClientConfig>>,
    /// Payload bytes held between receipt and commit, shared with the device endpoint.
    pub budget: ByteBudget,
    /// Where the brokers' sessions are remembered, across restarts of Eliot.
    pub sessions: Sessions,
}

/// The tasks of the current link; dropping it stops them (and closes the socket).
struct Running {
    id: u64,
    poll: JoinHandle<()>,
    acks: JoinHandle<()>,
    to_acker: mpsc::UnboundedSender<Ack>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.poll.abort();
        self.acks.abort();
    }
}

/// Stop taking messages from the broker (the tree is shutting down). Unacked messages
/// stay with the broker, which redelivers them at the next start.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopUpstream;

pub struct UpstreamConnection {
    index: usize,
    /// `upstream-N`: its name in logs, health and metrics.
    name: String,
    settings: Arc<UpstreamSettings>,
    filters: Arc<[Filter]>,
    links: UpstreamLinks,
    restarts: Restarts,
    telemetry: Telemetry,
    running: Option<Running>,
    next_link: u64,
    /// The connection (CONNACK) count of the current link, shared with its ack task.
    generation: Arc<AtomicU64>,
    order: InOrder,
    /// Statuses received, told to the fleet in their turn.
    statuses: Statuses,
    /// Messages received this turn, sent down the pipeline together.
    unsent: Vec<Message>,
    unsent_from: u64,
    unsent_since: Instant,
    /// Delays between dropping a link that could not store and opening the next.
    reopen: Backoff,
    /// Whether this process has had a session at the broker: what says a session is lost
    /// when the store cannot (which remembers it across restarts).
    had_session: bool,
    health: LinkHealth,
    stopped_intake: bool,
}

impl UpstreamConnection {
    pub fn new(
        index: usize,
        settings: Arc<UpstreamSettings>,
        links: UpstreamLinks,
        restarts: Restarts,
        telemetry: &Telemetry,
    ) -> Self {
        let name = restarts.child().to_owned();
        let statuses = Statuses::new(links.status.clone());
        let mut filters = settings.filters();
        filters.extend(statuses.filter(&filters));
        let filters: Arc<[Filter]> = filters.into();
        let health = LinkHealth {
            name: name.clone(),
            broker: format!("{}:{}", settings.host, settings.port),
            connected: false,
            session_present: false,
            failed_attempts: 0,
            last_error: None,
            sessions_lost: 0,
        };
        UpstreamConnection {
            index,
            telemetry: telemetry.for_actor(name.clone()),
            name,
            reopen: Backoff::new(settings.backoff_initial, settings.backoff_max),
            settings,
            filters,
            links,
            restarts,
            running: None,
            next_link: 0,
            generation: Arc::new(AtomicU64::new(0)),
            order: InOrder::default(),
            statuses,
            unsent: Vec::new(),
            unsent_from: 0,
            unsent_since: Instant::now(),
            had_session: false,
            health,
            stopped_intake: false,
        }
    }

    /// Starts a client, its poll task and its ack task; connecting begins at once.
    fn open_link(&mut self, ctx: &mut Context<Self>) {
        if self.stopped_intake {
            return;
        }
        self.next_link += 1;
        let id = self.next_link;
        let (client, poller) = link::open(&self.settings, self.index, self.links.tls.clone());
        let window = Arc::new(Semaphore::new(usize::from(self.settings.receive_maximum)));
        // Every message holds a slot of the window until stored or given up: no more than
        // `receive_maximum` ever wait here, whatever the broker sends.
        let (news, from_link) = mpsc::channel(usize::from(self.settings.receive_maximum) + 16);
        let (to_acker, acks) = mpsc::unbounded_channel();
        self.generation.store(0, Ordering::Relaxed);
        let poll = actix::spawn(poll_link(PollLink {
            id,
            poller,
            client: client.clone(),
            filters: self.filters.clone(),
            window,
            budget: self.links.budget.clone(),
            news,
            breaker: self.links.breaker.clone(),
            backoff: Backoff::new(self.settings.backoff_initial, self.settings.backoff_max),
            generation: self.generation.clone(),
        }));
        let acks = actix::spawn(send_acks(client, acks, self.generation.clone()));
        self.running = Some(Running {
            id,
            poll,
            acks,
            to_acker,
        });
        let stream = futures_util::stream::unfold(from_link, |mut rx| async move {
            rx.recv().await.map(|news| (news, rx))
        });
        ctx.add_stream(stream);
    }

    /// Drops the link: nothing waiting is acked (the broker redelivers it), and the next
    /// link opens after `delay`.
    fn drop_link(&mut self, delay: Duration, ctx: &mut Context<Self>) {
        self.running = None;
        self.give_up_waiting();
        self.set_connected(false);
        ctx.run_later(delay, |conn, ctx| conn.open_link(ctx));
    }

    /// Nothing waiting is acked or told (the broker redelivers it).
    fn give_up_waiting(&mut self) {
        self.order.forget();
        self.statuses.forget();
        self.unsent.clear();
    }

    fn current_link(&self) -> Option<u64> {
        self.running.as_ref().map(|r| r.id)
    }

    fn set_connected(&mut self, connected: bool) {
        self.health.connected = connected;
        self.links.health.do_send(self.health.clone());
    }

    fn connected(&mut self, session_present: bool, generation: u64, ctx: &mut Context<Self>) {
        Event::UpstreamConnected {
            connection: &self.name,
            broker: &self.health.broker,
            session_present,
        }
        .emit(&self.telemetry);
        let had_session = std::mem::replace(&mut self.had_session, true);
        let key = (
            self.health.broker.clone(),
            self.settings.client_id_of(self.index),
        );
        let noted = self.links.sessions.note_upstream(key, session_present);
        ctx.spawn(noted.into_actor(self).map(move |lost, conn, _| {
            if lost.unwrap_or(had_session && !session_present) {
                conn.session_lost();
            }
        }));
        self.health.session_present = session_present;
        self.health.failed_attempts = 0;
        self.reopen.reset();
        debug_assert_eq!(generation, self.generation.load(Ordering::Relaxed));
        self.set_connected(true);
    }

    /// The broker no longer has the session it held for Eliot: what it kept meanwhile is
    /// gone (a possible gap, which nothing can repair). Logged, counted, and in `/health`.
    fn session_lost(&mut self) {
        Event::UpstreamSessionLost {
            connection: &self.name,
        }
        .emit(&self.telemetry);
        self.health.sessions_lost += 1;
        self.links.health.do_send(self.health.clone());
    }

    fn delivered(
        &mut self,
        delivery: Delivery,
        slot: Slot,
        generation: u64,
        ctx: &mut Context<Self>,
    ) {
        let status = match self.links.pattern.device_id(&delivery.topic) {
            Some(_) => None,
            None => self.statuses.device_of(&delivery.topic).map(str::to_owned),
        };
        if let Some(device) = status {
            let seq = self.order.arrive(delivery.ack, generation, None);
            self.order.stored(seq, 1);
            self.statuses.arrived(seq, device, &delivery.payload, slot);
            return self.send_due();
        }
        // The origin is the device the topic names; a topic that names none is dead-lettered
        // by validation, under this connection's client id.
        let origin = match self.links.pattern.device_id(&delivery.topic) {
            Some(device) => device.to_owned(),
            None => self.settings.client_id_of(self.index),
        };
        Event::PublishReceived {
            client_id: &origin,
            qos: delivery.ack.qos,
            bytes: delivery.payload.len(),
        }
        .emit(&self.telemetry);
        let seq = self.order.arrive(delivery.ack, generation, Some(slot));
        if self.unsent.is_empty() {
            self.unsent_from = seq;
            self.unsent_since = Instant::now();
            // Runs once this turn's messages are in: they go down the pipeline together.
            ctx.spawn(actix::fut::ready(()).map(|(), conn: &mut Self, ctx| conn.flush(ctx)));
        }
        // The broker authenticated the publisher, not Eliot: no identity to bind to.
        self.unsent.push(Pipeline::message(
            delivery.topic,
            delivery.payload,
            (origin, None),
            delivery.dup,
        ));
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        let messages = std::mem::take(&mut self.unsent);
        if messages.is_empty() {
            return;
        }
        let (first, count, read_at) = (self.unsent_from, messages.len(), self.unsent_since);
        let link = self.current_link();
        let origins: Vec<String> = messages.iter().map(|m| m.client_id.clone()).collect();
        ctx.spawn(self.links.pipeline.ingest(messages).into_actor(self).map(
            move |committed, conn, ctx| {
                if conn.current_link() != link {
                    return; // dropped meanwhile: the broker redelivers these
                }
                match committed {
                    Ok(ingested) => {
                        conn.committed(first, count, read_at, &origins, &ingested);
                    }
                    Err(not_stored) => conn.not_stored(count, not_stored, ctx),
                }
            },
        ));
    }

    fn committed(
        &mut self,
        first: u64,
        count: usize,
        read_at: Instant,
        origins: &[String],
        ingested: &[Ingested],
    ) {
        Event::OutcomesCommitted {
            client_id: &self.name,
            messages: count,
            waited: read_at.elapsed(),
        }
        .emit(&self.telemetry);
        self.order.stored(first, count);
        for (origin, how) in origins.iter().zip(ingested) {
            if *how == Ingested::DeadLettered {
                // A device cannot be refused at the broker: its rejections are counted and
                // its trips logged, and its messages are still validated one by one.
                self.links.guard.do_send(Rejected {
                    client_id: origin.clone(),
                });
            }
        }
        self.send_due();
    }

    /// Sends the acks now due, in receipt order, and tells the fleet the statuses among
    /// them.
    fn send_due(&mut self) {
        let current = self.generation.load(Ordering::Relaxed);
        let due = self.order.due(current);
        let pubacks = due.iter().filter(|a| a.token.qos > 0).count();
        if let Some(running) = &self.running {
            for ack in due {
                // Unbounded, yet bounded by the broker: each ack is for a message it holds
                // unacked, and it sends no more than its in-flight limit (receive maximum).
                let _ = running.to_acker.send(ack);
            }
        }
        if pubacks > 0 {
            Event::AcksSent {
                client_id: &self.name,
                pubacks,
                pubrecs: 0,
            }
            .emit(&self.telemetry);
        }
        let fleet = self.links.pipeline.fleet();
        self.statuses.due(self.order.front(), fleet);
    }

    fn not_stored(&mut self, count: usize, not_stored: NotStored, ctx: &mut Context<Self>) {
        Event::UpstreamNotStored {
            connection: &self.name,
            messages: count,
            error: &not_stored.0,
        }
        .emit(&self.telemetry);
        self.health.last_error = Some(format!("messages not stored: {}", not_stored.0));
        let delay = jitter(self.reopen.next_delay());
        self.drop_link(delay, ctx);
    }
}

impl Actor for UpstreamConnection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.links.health.do_send(self.health.clone());
        self.restarts.start(ctx, |conn, ctx| conn.open_link(ctx));
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.running = None;
    }
}

impl Supervised for UpstreamConnection {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.running = None;
        self.give_up_waiting();
        self.restarts.restarting("stopped".into());
    }
}

crate::answers_pings!(UpstreamConnection);

impl StreamHandler<FromLink> for UpstreamConnection {
    /// A panic stops the actor (so its supervisor restarts it, with a new link) instead of
    /// making it vanish; what it had not acked, the broker redelivers.
    fn handle(&mut self, news: FromLink, ctx: &mut Context<Self>) {
        if let Err(panic) = catch_panic(|| self.on_news(news, ctx)) {
            Event::ActorPanicked { panic: &panic }.emit(&self.telemetry);
            ctx.stop();
        }
    }

    /// A link's stream ends when the link is dropped: that is not a reason to stop.
    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl UpstreamConnection {
    fn on_news(&mut self, news: FromLink, ctx: &mut Context<Self>) {
        if Some(news.link) != self.current_link() {
            return;
        }
        match news.what {
            LinkNews::Connected {
                session_present,
                generation,
            } => self.connected(session_present, generation, ctx),
            LinkNews::Delivered {
                delivery,
                slot,
                generation,
            } => self.delivered(delivery, slot, generation, ctx),
            LinkNews::Subscribed { refused } => {
                let refused = refused.join(", ");
                Event::UpstreamSubscribed {
                    connection: &self.name,
                    filters: self.filters.len(),
                    refused: &refused,
                }
                .emit(&self.telemetry);
                if !refused.is_empty() {
                    self.health.last_error = Some(format!("subscriptions refused: {refused}"));
                    self.links.health.do_send(self.health.clone());
                }
            }
            LinkNews::SubscribeFailed(error) | LinkNews::Disconnected(error) => {
                Event::UpstreamDisconnected {
                    connection: &self.name,
                    reason: &error,
                }
                .emit(&self.telemetry);
            }
            LinkNews::Failed {
                error,
                attempt,
                retry_in,
            } => {
                Event::UpstreamConnectFailed {
                    connection: &self.name,
                    error: &error,
                    attempt,
                    retry_in,
                }
                .emit(&self.telemetry);
                self.health.failed_attempts = attempt;
                self.health.last_error = Some(error);
                self.set_connected(false);
            }
        }
    }
}

impl Handler<StopUpstream> for UpstreamConnection {
    type Result = ();

    fn handle(&mut self, _: StopUpstream, _: &mut Context<Self>) {
        self.stopped_intake = true;
        self.running = None;
        self.give_up_waiting();
    }
}
